/**
 * Watching host processes from tests through /proc: a process's parent, its name, whether it
 * is gone. A process killed after its parent died may stay a zombie until PID 1 reaps it (in a
 * container PID 1 may never do so): a zombie runs nothing and counts as gone.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcInfo {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  /** field 22 of /proc/<pid>/stat: tells a process from a later one with the same pid */
  starttime: string;
}

export function procInfo(pid: number): ProcInfo | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  const rest = text.slice(close + 2).split(' ');
  return { pid, comm, state: rest[0]!, ppid: Number(rest[1]), starttime: rest[19]! };
}

/** The processes whose parent is pid. */
export function childrenOf(pid: number): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = procInfo(Number(name));
    if (p && p.ppid === pid) out.push(p);
  }
  return out;
}

/** Gone: no such process any more (or another one with its pid), or a zombie. */
export function isGone(p: ProcInfo): boolean {
  const now = procInfo(p.pid);
  return now === undefined || now.starttime !== p.starttime || now.state === 'Z' || now.state === 'X';
}

/** Wait until every process is gone; the time it took, or undefined if one still runs after limitMs. */
export async function waitGone(ps: readonly ProcInfo[], limitMs: number): Promise<number | undefined> {
  const t0 = Date.now();
  for (;;) {
    if (ps.every(isGone)) return Date.now() - t0;
    if (Date.now() - t0 > limitMs) return undefined;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** SIGKILL whatever of these still runs (a test's cleanup). */
export function killLeft(ps: readonly ProcInfo[]): void {
  for (const p of ps) {
    if (!isGone(p)) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        /* gone meanwhile */
      }
    }
  }
}
