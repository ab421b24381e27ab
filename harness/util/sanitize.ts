/**
 * Guest output is untrusted: a misbehaving kernel or agent can print anything, of any length.
 * These helpers make it safe to store and to show on a terminal.
 */

// CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), other two-byte ESC sequences, and C1 CSI.
// eslint-disable-next-line no-control-regex
const ANSI_RE = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[PX^_][^\x1b]*(?:\x1b\\)?|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]/g;
// Every C0 control but TAB and LF, DEL, and C1 controls; CR is dropped too (serial consoles send CRLF).
// eslint-disable-next-line no-control-regex
const CTRL_RE = /[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]/g;

/** Remove terminal escape sequences and control characters, keeping TAB and LF. */
export function stripControl(text: string): string {
  return text.replace(ANSI_RE, '').replace(CTRL_RE, '');
}

/**
 * Text as XML or HTML character data or an attribute value: the five markup characters escaped,
 * characters XML 1.0 cannot carry (most controls, lone surrogates) removed.
 */
export function escapeMarkup(text: string): string {
  return text
    .replace(/[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** Cut a string to at most max characters, saying how much was dropped. */
export function bound(text: string, max: number): string {
  if (text.length <= max) return text;
  return text.slice(0, max) + `… [${text.length - max} more characters dropped]`;
}

/** One line safe for a terminal: control characters removed, length bounded. */
export function safeLine(text: string, max = 240): string {
  return bound(stripControl(text).replace(/\n/g, ' '), max);
}

/**
 * A streaming line splitter with a bound on the length of one line, so that a guest that never
 * prints a newline cannot make the host buffer grow without limit.
 */
export class LineSplitter {
  private partial = '';
  constructor(private readonly maxLine = 64 * 1024) {}

  push(chunk: string): string[] {
    const text = this.partial + chunk;
    const parts = text.split('\n');
    this.partial = parts.pop() ?? '';
    if (this.partial.length > this.maxLine) {
      parts.push(this.partial.slice(0, this.maxLine));
      this.partial = '';
    }
    return parts.map((l) => (l.length > this.maxLine ? l.slice(0, this.maxLine) : l));
  }

  /** Whatever is left without a final newline. */
  flush(): string[] {
    const rest = this.partial;
    this.partial = '';
    return rest ? [rest] : [];
  }
}

/** /dev/kmsg escapes non-printable bytes of a record as \xNN (newlines of multi-line records too). */
export function unescapeKmsg(s: string): string {
  return s.replace(/\\x([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}
