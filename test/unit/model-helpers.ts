/**
 * Helpers for the model's unit tests: run a small program (written as in a program file, with
 * the format's defaults) through the model and look at outcomes and states.
 */
import { expect } from 'vitest';
import { checkInvariants, initialState, predict, profileFor, type ModelState, type Prediction } from '../../harness/model/index.js';
import { formatOutcome } from '../../harness/program/outcome.js';
import { checkProgram } from '../../harness/program/parse.js';
import type { DeviceParams, Op } from '../../harness/program/types.js';

export interface RunOptions {
  device?: Partial<DeviceParams>;
  /** kernel release, default 6.12.117+deb12-amd64 */
  kernel?: string;
  arch?: string;
  distro?: 'debian' | 'upstream';
  /** which prediction to follow at op i when there are several (default: the first) */
  pick?: (i: number, ps: Prediction[]) => number;
}

export interface Run {
  /** per op: the outcome of the followed prediction */
  out: string[];
  /** per op: every predicted outcome, joined with "|" */
  alts: string[];
  rules: string[];
  states: ModelState[];
  final: ModelState;
}

export function parseOps(rawOps: unknown[], device: Partial<DeviceParams> = {}): { device: DeviceParams; ops: Op[] } {
  const p = checkProgram({ format: 'svadiff-program', version: 1, device, ops: rawOps }, 'test');
  return { device: p.device, ops: p.ops };
}

/** Run ops through the model, checking the invariants after every op. */
export function run(rawOps: unknown[], opts: RunOptions = {}): Run {
  const { device, ops } = parseOps(rawOps, opts.device);
  const profile = profileFor(opts.kernel ?? '6.12.117+deb12-amd64', { arch: opts.arch ?? 'x86_64', distro: opts.distro ?? 'debian' });
  let s = initialState(device, profile);
  expect(checkInvariants(s)).toEqual([]);
  const r: Run = { out: [], alts: [], rules: [], states: [], final: s };
  ops.forEach((op, i) => {
    const ps = predict(s, op);
    const k = opts.pick?.(i, ps) ?? 0;
    const p = ps[k]!;
    r.out.push(formatOutcome(p.outcome));
    r.alts.push(ps.map((x) => formatOutcome(x.outcome)).join('|'));
    r.rules.push(p.rule);
    const inv = checkInvariants(p.next);
    if (inv.length > 0) throw new Error(`invariants broken after op ${i} (${op.op}): ${inv.join('; ')}`);
    s = p.next;
    r.states.push(s);
  });
  r.final = s;
  return r;
}

/** Shorthands for ops (task t0 unless given). */
export const O = {
  open: (fd: string, extra: Record<string, unknown> = {}) => ({ op: 'open', fd, ...extra }),
  close: (fd: string, task = 't0') => ({ op: 'close', fd, task }),
  mmap: (map: string, fd: string, region: number, pages = 1, extra: Record<string, unknown> = {}) => ({
    op: 'mmap',
    map,
    fd,
    region,
    pages,
    ...extra,
  }),
  alloc: (map: string, pages = 1, task = 't0') => ({ op: 'alloc', map, pages, task }),
  munmap: (map: string, page: number, pages: number, task = 't0') => ({ op: 'munmap', map, page, pages, task }),
  mprotect: (map: string, page: number, pages: number, prot: string, task = 't0') => ({ op: 'mprotect', map, page, pages, prot, task }),
  read: (map: string, page = 0, offset = 0, task = 't0') => ({ op: 'touch', map, page, offset, access: 'read', task }),
  write: (map: string, value: string, page = 0, offset = 0, task = 't0') => ({
    op: 'touch',
    map,
    page,
    offset,
    access: 'write',
    value,
    task,
  }),
  ioctl: (fd: string, cmd: string | number, task = 't0') => ({ op: 'ioctl', fd, cmd, task }),
  poll: (fd: string, task = 't0') => ({ op: 'poll', fd, timeout_ms: 10, task }),
  fork: (child: string, task = 't0') => ({ op: 'fork', child, task }),
  exit: (task: string) => ({ op: 'exit', task }),
  remove: (dev = 0) => ({ op: 'remove', dev }),
  add: (dev = 0) => ({ op: 'add', dev }),
  sread: (attr: string, dev = 0) => ({ op: 'sysfs_read', dev, attr }),
  swrite: (attr: string, value: string, dev = 0) => ({ op: 'sysfs_write', dev, attr, value }),
  submit: (mmio: string, dus: string, work: string, target: string, extra: Record<string, unknown> = {}) => ({
    op: 'submit',
    mmio,
    dus,
    work,
    target,
    ...extra,
  }),
};
