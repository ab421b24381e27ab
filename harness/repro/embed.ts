/**
 * What a reproducer carries besides C: its program (embedded at the end, so that `svadiff
 * replay repro.c` can read it back), the finding's title and kernel in its header, and comment
 * text that cannot break out of a C comment.
 */
import { formatProgram, parseProgram } from '../program/parse.js';
import type { Program } from '../program/types.js';
import { UserError } from '../util/errors.js';
import { stripControl } from '../util/sanitize.js';

export const REPRO_PROGRAM_MARKER = 'svadiff-program:';
export const REPRO_TITLE_MARKER = 'svadiff-title:';
export const REPRO_KERNEL_MARKER = 'svadiff-kernel:';

export interface ReproSource {
  program: Program;
  title?: string;
  kernel?: string;
}

/** The program (and title, kernel) embedded in a reproducer's text. */
export function parseReproSource(text: string, source = 'repro.c'): ReproSource {
  const start = text.indexOf(`/* ${REPRO_PROGRAM_MARKER}`);
  if (start < 0) {
    throw new UserError(`${source}: no embedded program (a "/* ${REPRO_PROGRAM_MARKER}" comment); svadiff replay needs a reproducer written by svadiff`);
  }
  const bodyStart = start + `/* ${REPRO_PROGRAM_MARKER}`.length;
  const end = text.indexOf('*/', bodyStart);
  if (end < 0) throw new UserError(`${source}: the embedded program's comment is not closed`);
  const program = parseProgram(text.slice(bodyStart, end), `${source} (embedded program)`);
  const r: ReproSource = { program };
  const title = new RegExp(`^ \\* ${REPRO_TITLE_MARKER} (.+)$`, 'm').exec(text)?.[1]?.trim();
  const kernel = new RegExp(`^ \\* ${REPRO_KERNEL_MARKER} (.+)$`, 'm').exec(text)?.[1]?.trim();
  if (title) r.title = title;
  if (kernel) r.kernel = kernel;
  return r;
}

/** Text for a C comment: one line, printable ASCII, no comment end, no trigraphs. */
export function commentText(s: string): string {
  return stripControl(s)
    .replace(/\s+/g, ' ')
    .replace(/[^\x20-\x7e]/g, '?')
    .replace(/\*\//g, '* /')
    .replace(/\?\?/g, '? ?')
    .trim();
}

/** JSON for the embedding comment: ASCII only, no comment end, no trigraphs. */
function commentSafeJson(text: string): string {
  return text
    .replace(/[^\x00-\x7e]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))
    .replace(/\*\//g, '*\\/')
    .replace(/\?/g, '\\u003f');
}

/** The program for the embedding comment, in its canonical text. */
export function embeddedJson(p: Program): string {
  return commentSafeJson(formatProgram(p));
}

/**
 * The program as compact JSON for the embedding comment (compact form): the device on one line,
 * one line per op. parseReproSource reads either.
 */
export function embeddedJsonCompact(p: Program): string {
  const head: Record<string, unknown> = { format: p.format, version: p.version };
  if (p.comment !== undefined) head.comment = p.comment;
  return commentSafeJson(
    `${JSON.stringify(head).slice(0, -1)},\n"device": ${JSON.stringify(p.device)},\n"ops": [\n${p.ops.map((o) => JSON.stringify(o)).join(',\n')}\n]}`,
  );
}

/** The embedding comment itself. */
export function programComment(json: string): string[] {
  return [`/* ${REPRO_PROGRAM_MARKER}`, json.trimEnd(), '*/', ''];
}
