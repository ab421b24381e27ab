import { safeLine } from './sanitize.js';

/**
 * Messages for the user go to stderr, prefixed, one line each; stdout is kept for results
 * (`--json` output, tables) so that it can be piped.
 */
let quiet = false;
export function setQuiet(q: boolean): void {
  quiet = q;
}

export function info(msg: string): void {
  if (!quiet) process.stderr.write(`svadiff: ${msg}\n`);
}

export function warn(msg: string): void {
  process.stderr.write(`svadiff: warning: ${msg}\n`);
}

/** Format a duration in ms for humans. */
export function fmtDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  const rs = Math.round(s - m * 60);
  if (m < 60) return `${m}m${String(rs).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}

/**
 * A status line for long work. On a terminal it is redrawn in place; elsewhere (CI, pipes) it
 * is printed at most every `everyMs` so that logs stay readable.
 */
export class StatusLine {
  private lastPrint = 0;
  private shown = false;
  private readonly tty = Boolean(process.stderr.isTTY);
  constructor(private readonly everyMs = 10_000) {}

  update(text: string, force = false): void {
    if (quiet) return;
    const line = safeLine(text, 200);
    if (this.tty) {
      process.stderr.write(`\r\x1b[2K${line}`);
      this.shown = true;
      return;
    }
    const now = Date.now();
    if (force || now - this.lastPrint >= this.everyMs) {
      this.lastPrint = now;
      process.stderr.write(`${line}\n`);
    }
  }

  /** Leave the status line; following output starts on a clean line. */
  done(finalText?: string): void {
    if (quiet) return;
    if (this.tty && this.shown) process.stderr.write('\r\x1b[2K');
    this.shown = false;
    if (finalText) process.stderr.write(`${safeLine(finalText, 400)}\n`);
  }
}

/** Run a step, saying what it is and how long it took. */
export async function step<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  info(`${label} …`);
  const r = await fn();
  info(`${label}: done in ${fmtDuration(Date.now() - t0)}`);
  return r;
}
