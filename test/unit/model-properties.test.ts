/**
 * Properties of the model on random programs. The program arbitrary is local to this file
 * (random "intents" folded into a valid program: names exist before use, tasks are alive).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkInvariants, initialState, predict, profileFor, type ModelState } from '../../harness/model/index.js';
import { checkProgram } from '../../harness/program/parse.js';
import { SYSFS_ATTRS, type DeviceParams, type Op, type Program } from '../../harness/program/types.js';

const KINDS = [
  'open', 'open', 'close', 'dup', 'mmap', 'mmap', 'mmap', 'mmap', 'alloc', 'alloc', 'munmap', 'munmap', 'mremap',
  'mremap', 'madvise', 'touch', 'touch', 'touch', 'touch', 'submit', 'submit', 'submit', 'submit', 'ioctl',
  'ioctl', 'ioctl', 'poll', 'poll', 'fork', 'exit', 'remove', 'add', 'sysfs_read', 'sysfs_write', 'mprotect', 'mprotect',
] as const;
const OFFSETS = [0, 0x8, 0x10, 0x18, 0x20, 0x28, 0x30, 0x100, 0x7f8, 0x800, 0xff8];
const VALUES = ['0x0', '0x1', '0x2', '0x100000001', '0xffffffff', '0x5356000000000100', '0x200000000000'];
const CMDS = ['START_Q', 'START_Q', 'PUT_Q', 'PING', 0x5702, 0x5451, 0x5421] as const;
const SYSFS_VALUES = ['0', '1', '3', '0x10', '70000', 'x', ''];

const intent = fc.record({
  kind: fc.constantFrom(...KINDS),
  a: fc.nat(1000),
  b: fc.nat(1000),
  c: fc.nat(1000),
  e: fc.nat(1000),
});

const deviceArb: fc.Arbitrary<Partial<DeviceParams>> = fc.record({
  devices: fc.integer({ min: 1, max: 2 }),
  mmio_pages: fc.integer({ min: 0, max: 3 }),
  dus_pages: fc.integer({ min: 0, max: 3 }),
  queue_limit: fc.integer({ min: 1, max: 4 }),
  sva: fc.boolean(),
  isolate_ops: fc.constantFrom('none', 'read', 'write', 'both'),
  isolate_state: fc.boolean(),
  ioctl: fc.boolean(),
});

type Intent = { kind: (typeof KINDS)[number]; a: number; b: number; c: number; e: number };

/**
 * Fold random intents into a program that parse.ts accepts. With `setup`, the program starts
 * with a started queue, its two regions mapped and a buffer, so that random ops find something
 * to work on.
 */
function build(device: Partial<DeviceParams>, intents: Intent[], setup: boolean): Program {
  const fds: string[] = [];
  const maps: string[] = [];
  // mappings made by mmap of region 0 / 1, and anonymous ones, so that some submits make sense
  const byRegion: [string[], string[]] = [[], []];
  const anon: string[] = [];
  const alive = ['t0'];
  let tasks = 1;
  const ops: Record<string, unknown>[] = [];
  if (setup) {
    fds.push('q');
    maps.push('mm', 'du', 'buf');
    byRegion[0].push('mm');
    byRegion[1].push('du');
    anon.push('buf');
    ops.push(
      { op: 'open', fd: 'q', dev: 0 },
      { op: 'mmap', map: 'mm', fd: 'q', region: 0, pages: 1 },
      { op: 'mmap', map: 'du', fd: 'q', region: 1, pages: 1 },
      { op: 'alloc', map: 'buf', pages: 2 },
      { op: 'ioctl', fd: 'q', cmd: 'START_Q' },
    );
  }
  const devices = device.devices ?? 1;
  const pick = <T,>(xs: readonly T[], n: number): T => xs[n % xs.length]!;
  for (const { kind, a, b, c, e } of intents) {
    if (alive.length === 0) break;
    // stay within the format's name limits (LIMITS.maxFds / maxMaps)
    if (fds.length >= 60 && (kind === 'open' || kind === 'dup')) continue;
    if (maps.length >= 60 && (kind === 'mmap' || kind === 'alloc' || kind === 'mremap')) continue;
    // mostly the first live task and recent names, so that ops build on each other
    const task = a % 10 < 7 ? alive[0]! : pick(alive, a);
    const recent = <T,>(xs: readonly T[]): T => (b % 3 === 0 ? pick(xs, b) : xs[xs.length - 1 - (b % Math.min(2, xs.length))]!);
    const fd = () => recent(fds);
    const map = () => recent(maps);
    const newMap = () => {
      const n = `m${maps.length}`;
      maps.push(n);
      return n;
    };
    switch (kind) {
      case 'open': {
        const via = fds.length > 0 ? pick(['path', 'mknod', 'procfd'] as const, c) : 'path';
        const op: Record<string, unknown> = { op: 'open', task, fd: `f${fds.length}`, dev: b % devices, via };
        if (via === 'procfd') op.of = fd();
        fds.push(op.fd as string);
        ops.push(op);
        break;
      }
      case 'close':
      case 'poll':
        if (fds.length > 0) ops.push({ op: kind, task, fd: fd(), ...(kind === 'poll' ? { timeout_ms: 0 } : {}) });
        break;
      case 'dup':
        if (fds.length > 0) {
          ops.push({ op: 'dup', task, fd: fd(), as: `f${fds.length}` });
          fds.push(`f${fds.length}`);
        }
        break;
      case 'ioctl':
        if (fds.length > 0) ops.push({ op: 'ioctl', task, fd: fd(), cmd: pick(CMDS, c) });
        break;
      case 'mmap':
        if (fds.length > 0) {
          const region = c % 7 === 6 ? 2 : c % 2;
          const name = newMap();
          if (region < 2) byRegion[region as 0 | 1].push(name);
          ops.push({
            op: 'mmap',
            task,
            fd: fd(),
            map: name,
            region,
            pages: 1 + (e % 3),
            prot: pick(['rw', 'rw', 'r', 'none'] as const, e >> 2),
            shared: e % 5 !== 0,
          });
        }
        break;
      case 'alloc': {
        const name = newMap();
        anon.push(name);
        ops.push({ op: 'alloc', task, map: name, pages: 1 + (c % 3) });
        break;
      }
      case 'munmap':
      case 'madvise':
        if (maps.length > 0) ops.push({ op: kind, task, map: map(), page: c % 3, pages: 1 + (e % 3) });
        break;
      case 'mprotect':
        if (maps.length > 0) ops.push({ op: kind, task, map: map(), page: c % 3, pages: 1 + (e % 3), prot: pick(['none', 'r', 'rw'] as const, b) });
        break;
      case 'mremap':
        if (maps.length > 0) {
          const move = c % 3 === 0;
          const dontunmap = c % 5 === 0;
          const op: Record<string, unknown> = { op: 'mremap', task, map: map(), page: e % 2, old_pages: 1 + (e % 3), new_pages: 1 + ((e >> 2) % 3), move, dontunmap };
          if (move || dontunmap) op.to = newMap();
          ops.push(op);
        }
        break;
      case 'touch':
        if (maps.length > 0) {
          const write = c % 2 === 0;
          ops.push({
            op: 'touch',
            task,
            map: map(),
            page: e % 3,
            offset: pick(OFFSETS, c >> 1),
            access: write ? 'write' : 'read',
            ...(write ? { value: pick(VALUES, e >> 2) } : {}),
          });
        }
        break;
      case 'submit':
        if (maps.length > 0) {
          const work = pick(['write', 'read', 'invalid'] as const, c);
          const sensible = e % 4 !== 0 && byRegion[0].length > 0 && byRegion[1].length > 0;
          ops.push({
            op: 'submit',
            task,
            mmio: sensible ? recent(byRegion[0]) : pick(maps, b),
            dus: sensible ? recent(byRegion[1]) : pick(maps, b + 1 + (e % 2)),
            target: anon.length > 0 && c % 5 !== 0 ? recent(anon) : pick(maps, c >> 2),
            work,
            page: e % 2,
            offset: pick(OFFSETS, e >> 1),
            ack: e % 3 !== 0,
            ...(work === 'write' ? { value: pick(VALUES, c) } : {}),
          });
        }
        break;
      case 'fork':
        if (tasks < 6) {
          const child = `t${tasks++}`;
          ops.push({ op: 'fork', task, child });
          alive.push(child);
        }
        break;
      case 'exit':
        if (c % 4 === 0 && (task !== 't0' || c % 3 === 0)) {
          ops.push({ op: 'exit', task });
          alive.splice(alive.indexOf(task), 1);
        }
        break;
      case 'remove':
      case 'add':
        ops.push({ op: kind, task, dev: b % devices });
        break;
      case 'sysfs_read':
        ops.push({ op: 'sysfs_read', task, dev: b % devices, attr: pick(SYSFS_ATTRS, c) });
        break;
      case 'sysfs_write':
        ops.push({ op: 'sysfs_write', task, dev: b % devices, attr: pick(SYSFS_ATTRS, c), value: pick(SYSFS_VALUES, e) });
        break;
    }
  }
  return checkProgram({ format: 'svadiff-program', version: 1, device, ops }, 'generated');
}

const programArb = fc
  .tuple(deviceArb, fc.array(intent, { minLength: 10, maxLength: 80, size: 'max' }), fc.boolean())
  .map(([device, intents, setup]) => build(device, intents, setup));
const kernelArb = fc.constantFrom('6.1.0-41-amd64', '6.12.117+deb12-amd64', '7.2.13+deb14-amd64');

/** A deep, order-stable rendering of a state (Maps included), to detect mutation. */
function snapshot(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (x instanceof Map) return { map: [...x.entries()] };
    if (x instanceof Uint32Array || x instanceof Uint8Array) {
      // page contents: a checksum is enough to see a change, and much cheaper than the text
      let h = 0x811c9dc5;
      for (let i = 0; i < x.length; i++) h = Math.imul(h ^ x[i]!, 16777619) >>> 0;
      return `${x.length}:${h}`;
    }
    if (typeof x === 'bigint') return `${x}n`;
    return x;
  });
}

/** Walk a program, following prediction `choice(i, n)` at op i; calls `visit` before each step. */
function walk(p: Program, kernel: string, choice: (i: number, n: number) => number, visit?: (s: ModelState, op: Op, i: number) => void): ModelState[] {
  let s = initialState(p.device, profileFor(kernel, { arch: 'x86_64', distro: 'debian' }));
  const states = [s];
  p.ops.forEach((op, i) => {
    visit?.(s, op, i);
    const ps = predict(s, op);
    s = ps[choice(i, ps.length) % ps.length]!.next;
    states.push(s);
  });
  return states;
}

describe('model properties on random programs', () => {
  it('predict never throws, always predicts something, never mutates its input, and keeps every invariant', () => {
    fc.assert(
      fc.property(programArb, kernelArb, fc.array(fc.nat(), { minLength: 1, maxLength: 100 }), (p, kernel, choices) => {
        walk(p, kernel, (i, n) => (choices[i % choices.length] ?? 0) % n, (s, op, i) => {
          const before = snapshot(s);
          const ps = predict(s, op);
          expect(ps.length).toBeGreaterThan(0);
          expect(snapshot(s), `predict mutated its input at op ${i}`).toBe(before);
          for (const q of ps) expect(checkInvariants(q.next), `op ${i} ${JSON.stringify(op)} (${q.rule})`).toEqual([]);
        });
      }),
      { numRuns: 150 },
    );
  });

  it('queue references = descriptors in all tasks + live VMA pieces; a released queue has no mapping', () => {
    fc.assert(
      fc.property(programArb, kernelArb, (p, kernel) => {
        for (const s of walk(p, kernel, () => 0)) {
          // released queues leave the state: nothing may still refer to one
          for (const t of s.tasks.values()) for (const x of t.fds.values()) expect(s.queues.has(x)).toBe(true);
          for (const mm of s.mms.values()) for (const v of mm.vmas) if (v.kind === 'uacce') expect(s.queues.has(v.queue)).toBe(true);
          for (const q of s.queues.values()) {
            let fds = 0;
            let pieces = 0;
            for (const t of s.tasks.values()) for (const x of t.fds.values()) if (x === q.id) fds++;
            for (const mm of s.mms.values()) for (const v of mm.vmas) if (v.kind === 'uacce' && v.queue === q.id) pieces++;
            if (q.state === 'RELEASED') expect(fds + pieces).toBe(0);
            else expect(q.refs).toBe(fds + pieces);
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it('a region is mapped exactly when some live piece of a mapping made for it exists', () => {
    fc.assert(
      fc.property(programArb, kernelArb, (p, kernel) => {
        for (const s of walk(p, kernel, () => 0)) {
          for (const q of s.queues.values()) {
            if (q.state === 'RELEASED') continue;
            for (const region of [0, 1] as const) {
              const live = [...s.mms.values()].some((mm) => mm.vmas.some((v) => v.kind === 'uacce' && v.queue === q.id && v.region === region));
              expect(q.regions[region] !== null).toBe(live);
            }
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it('is deterministic, and reading sysfs api changes nothing else', () => {
    fc.assert(
      fc.property(programArb, kernelArb, fc.nat(80), (p, kernel, at) => {
        const outcomes = (prog: Program) => {
          const out: string[] = [];
          walk(prog, kernel, () => 0, (s, op) => out.push(JSON.stringify(predict(s, op).map((x) => x.outcome))));
          return out;
        };
        const base = outcomes(p);
        expect(outcomes(p)).toEqual(base);
        const k = at % (p.ops.length + 1);
        const extra: Op = { op: 'sysfs_read', task: 't0', dev: 0, attr: 'api' };
        // only where t0 is alive (parse.ts refuses ops of exited tasks)
        if (p.ops.slice(0, k).some((o) => o.op === 'exit' && o.task === 't0')) return;
        const withRead = outcomes({ ...p, ops: [...p.ops.slice(0, k), extra, ...p.ops.slice(k)] });
        withRead.splice(k, 1);
        expect(withRead).toEqual(base);
      }),
      { numRuns: 100 },
    );
  });
});
