/** A C string literal of the bytes of s (latin1), escaped so that nothing can break out of it. */
export function cString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.charCodeAt(0) & 0xff;
    let piece: string;
    if (ch === '"') piece = '\\"';
    else if (ch === '\\') piece = '\\\\';
    else if (ch === '?') piece = '\\?'; // no trigraphs
    else if (ch === '\n') piece = '\\n';
    else if (ch === '\t') piece = '\\t';
    else if (c < 0x20 || c >= 0x7f || ch.charCodeAt(0) > 0xff) piece = '\\' + c.toString(8).padStart(3, '0');
    else piece = ch;
    // a digit right after an octal escape is fine: octal escapes stop at 3 digits
    out += piece;
  }
  return out + '"';
}
