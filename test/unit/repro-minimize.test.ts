/**
 * Tests of the minimizer's search algorithm and program edits. The "tester" here is a synthetic
 * predicate over the program text, not a kernel: these tests only show that the search finds
 * small programs, keeps them valid, stays within its budget and reports flakiness honestly.
 * That minimization works on real findings is shown on a real guest: test/integration/
 * corpus.test.ts ("minimization on a real … guest") and `svadiff repro` runs on fuzz findings.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateProgram, mixSeed, programArbitrary } from '../../harness/generator/index.js';
import {
  complexity,
  divergenceKey,
  findingSignature,
  generatedOrigin,
  isValidProgram,
  minimize,
  programKey,
  repairProgram,
  simplerDevices,
  simplerOps,
  withoutTask,
  type Signature,
  type Tester,
  type Trial,
} from '../../harness/repro/minimize.js';
import { parseProgram } from '../../harness/program/parse.js';
import type { Op, Program } from '../../harness/program/types.js';

const prog = (ops: unknown[], device: object = {}): Program =>
  parseProgram(JSON.stringify({ format: 'svadiff-program', version: 1, device, ops }), 'test');

const SIG: Signature = { kind: 'crash', key: 'crash: SYNTHETIC' };

/** A synthetic tester: the "signature" shows when `holds(program)` is true (and `rate` of the time). */
function synthetic(holds: (p: Program) => boolean, rate = 1, rng = () => 0): Tester & { runs: number; seen: Program[] } {
  const t = {
    runs: 0,
    seen: [] as Program[],
    async run(p: Program): Promise<Trial> {
      t.runs++;
      t.seen.push(p);
      const show = holds(p) && rng() < rate;
      return { keys: show ? [SIG.key] : [] };
    },
  };
  return t;
}

/** "private region 1 mapping unmapped, then region 1 mapped again on the same queue" */
function privateRemapPattern(p: Program): boolean {
  const ops = p.ops;
  for (let i = 0; i < ops.length; i++) {
    const a = ops[i]!;
    if (a.op !== 'mmap' || a.shared || a.region !== 1) continue;
    const un = ops.findIndex((b, j) => j > i && b.op === 'munmap' && b.map === a.map);
    if (un < 0) continue;
    if (ops.some((c, k) => k > un && c.op === 'mmap' && c.fd === a.fd && c.region === 1)) return true;
  }
  return false;
}

const NOISY = prog(
  [
    { op: 'open', task: 't0', fd: 'q0', dev: 1, via: 'path' },
    { op: 'mmap', task: 't0', map: 'm0', fd: 'q0', region: 0, pages: 1, prot: 'rw', shared: true },
    { op: 'open', task: 't0', fd: 'q1', dev: 1, via: 'path' },
    { op: 'fork', task: 't0', child: 't1' },
    { op: 'touch', task: 't1', map: 'm0', page: 0, offset: 48, access: 'read' },
    { op: 'fork', task: 't1', child: 't2' },
    { op: 'ioctl', task: 't2', fd: 'q1', cmd: 'START_Q' },
    { op: 'munmap', task: 't0', map: 'm0', page: 0, pages: 1 },
    { op: 'mmap', task: 't0', map: 'm1', fd: 'q1', region: 0, pages: 3, prot: 'rw', shared: true },
    { op: 'sysfs_write', task: 't0', dev: 1, attr: 'isolate_strategy', value: '12\n' },
    { op: 'mmap', task: 't0', map: 'm3', fd: 'q0', region: 1, pages: 1, prot: 'r', shared: false },
    { op: 'exit', task: 't2' },
    { op: 'munmap', task: 't0', map: 'm3', page: 0, pages: 1 },
    { op: 'sysfs_read', task: 't1', dev: 1, attr: 'isolate_strategy' },
    { op: 'mmap', task: 't0', map: 'm4', fd: 'q0', region: 1, pages: 1, prot: 'rw', shared: true },
    { op: 'close', task: 't0', fd: 'q1' },
  ],
  { devices: 2, mmio_pages: 3, dus_pages: 1, isolate_ops: 'write', isolate_state: true },
);

describe('program edits', () => {
  it('repair drops the users of names no longer created, transitively', () => {
    const p = prog([
      { op: 'open', fd: 'a', dev: 0 },
      { op: 'dup', fd: 'a', as: 'b' },
      { op: 'mmap', map: 'm', fd: 'b', region: 0, pages: 1 },
      { op: 'touch', map: 'm', page: 0, offset: 0, access: 'read' },
      { op: 'open', fd: 'c', dev: 0 },
      { op: 'close', fd: 'c' },
    ]);
    const cut = { ...p, ops: p.ops.slice(1) }; // no open of "a"
    const r = repairProgram(cut);
    expect(r.ops.map((o) => o.op)).toEqual(['open', 'close']);
    expect(isValidProgram(r)).toBe(true);
  });

  it('removing a task removes its descendants and their ops', () => {
    const forkAt = NOISY.ops.findIndex((o) => o.op === 'fork' && o.child === 't1');
    const r = repairProgram(withoutTask(NOISY, forkAt));
    expect(r.ops.some((o) => ['t1', 't2'].includes(o.task))).toBe(false);
    expect(r.ops.some((o) => o.op === 'fork')).toBe(false);
    expect(isValidProgram(r)).toBe(true);
    expect(r.ops.length).toBe(NOISY.ops.length - 6);
  });

  it('repair keeps every valid program as it is and always gives a valid one', () => {
    fc.assert(
      fc.property(programArbitrary({ maxOps: 30 }), fc.array(fc.nat(), { maxLength: 8 }), (p, cuts) => {
        expect(programKey(repairProgram(p))).toBe(programKey(p));
        let q = p;
        for (const c of cuts) if (q.ops.length > 0) q = { ...q, ops: q.ops.filter((_, i) => i !== c % q.ops.length) };
        expect(isValidProgram(repairProgram(q))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('simplifications go toward the defaults and are all valid', () => {
    const mm = NOISY.ops[10]! as Op & { op: 'mmap' };
    const s = simplerOps(mm);
    expect(s[0]).toMatchObject({ prot: 'rw', shared: true });
    expect(s.every((o) => o.op === 'mmap')).toBe(true);
    const ds = simplerDevices(NOISY.device);
    expect(ds[0]).toMatchObject({ devices: 1, mmio_pages: 2, dus_pages: 2, isolate_ops: 'none', isolate_state: false });
    expect(ds.length).toBe(1 + 5);
    expect(complexity(prog([]))).toBe(0);
  });

  it('program keys ignore the comment and the order of fields', () => {
    const a = prog([{ op: 'open', fd: 'q', dev: 0 }, { op: 'mmap', map: 'm', fd: 'q', region: 1, pages: 1 }]);
    const b = JSON.parse(JSON.stringify(a)) as Program;
    b.comment = 'another comment';
    b.ops[1] = { shared: true, prot: 'rw', pages: 1, region: 1, fd: 'q', map: 'm', task: 't0', op: 'mmap' };
    expect(programKey(b)).toBe(programKey(a));
    expect(programKey({ ...a, ops: a.ops.slice(0, 1) })).not.toBe(programKey(a));
  });

  it('knows the origin of generated programs', () => {
    const g = generateProgram(7, 216);
    expect(generatedOrigin(g)).toEqual({ seed: 7, index: 216 });
    expect(generatedOrigin(NOISY)).toBeUndefined();
    // fast-check regenerates the same value from the same seed (the shrink pass relies on it)
    const [again] = fc.sample(programArbitrary(), { seed: mixSeed(7, 216), numRuns: 1 });
    expect(programKey(again!)).toBe(programKey(g));
  });
});

describe('signatures', () => {
  const p = prog([
    { op: 'open', fd: 'q', dev: 0 },
    { op: 'mmap', map: 'm', fd: 'q', region: 1, pages: 1 },
  ]);
  it('a divergence keeps op, expected and observed, not the rule', () => {
    const s = findingSignature({ kind: 'divergence', title: 'mmap: expected ok, got EEXIST [mmap.ok]', expected: 'ok', observed: 'EEXIST', op_index: 1 }, p);
    expect(s.key).toBe(divergenceKey({ op: p.ops[1]!, expected: 'ok', observed: 'EEXIST' }));
    expect(s.key).toBe('divergence: mmap: expected ok, got EEXIST []');
  });
  it('a crash keeps its exact title', () => {
    expect(findingSignature({ kind: 'crash', title: 'WARNING in uacce_remove' }, p).key).toBe('crash: WARNING in uacce_remove');
  });
});

describe('search (synthetic predicates, not a kernel)', () => {
  it('shrinks to the ops the predicate needs and simplifies parameters', async () => {
    const t = synthetic(privateRemapPattern);
    const r = await minimize(NOISY, SIG, t, { fastCheckRuns: 0 });
    expect(r.reproduced).toBe(true);
    expect(r.opsBefore).toBe(16);
    // open, private mmap of region 1, munmap, mmap of region 1 again
    expect(r.program.ops.map((o) => o.op)).toEqual(['open', 'mmap', 'munmap', 'mmap']);
    expect(privateRemapPattern(r.program)).toBe(true);
    expect(isValidProgram(r.program)).toBe(true);
    // parameters the predicate does not care about went to their defaults
    expect(r.program.device).toMatchObject({ devices: 1, mmio_pages: 2, isolate_ops: 'none' });
    expect(r.program.ops[0]).toMatchObject({ dev: 0 });
    expect(r.program.ops[1]).toMatchObject({ prot: 'rw', shared: false });
    expect(r.confirm).toEqual({ hits: 3, runs: 3, firstHit: 1 });
    expect(r.runs).toBe(t.runs);
    // every candidate that ran was a valid program
    expect(t.seen.every(isValidProgram)).toBe(true);
  });

  it('cuts a divergence program after the diverging op without a run', async () => {
    const runs: Program[] = [];
    const tester: Tester = {
      async run(p) {
        runs.push(p);
        const at = p.ops.findIndex((o) => o.op === 'mmap' && o.map === 'm4');
        return at >= 0 && privateRemapPattern(p) ? { keys: [SIG.key], divergenceIndex: at } : { keys: [] };
      },
    };
    const r = await minimize(NOISY, SIG, tester, { fastCheckRuns: 0 });
    expect(r.program.ops[r.program.ops.length - 1]).toMatchObject({ op: 'mmap', map: 'm4' });
    expect(r.program.ops.length).toBe(4);
  });

  it('a program that never shows the signature is returned unchanged, as not reproduced', async () => {
    const t = synthetic(() => false);
    const r = await minimize(NOISY, SIG, t, { initialTries: 2 });
    expect(r.reproduced).toBe(false);
    expect(programKey(r.program)).toBe(programKey(NOISY));
    expect(r.confirm).toEqual({ hits: 0, runs: 2 });
    expect(t.runs).toBe(2);
  });

  it('without a search the program is only confirmed, not changed', async () => {
    const t = synthetic(privateRemapPattern);
    const r = await minimize(NOISY, SIG, t, { noSearch: true, confirmRuns: 2 });
    expect(programKey(r.program)).toBe(programKey(NOISY));
    expect(r.confirm).toEqual({ hits: 2, runs: 2, firstHit: 1 });
    expect(t.runs).toBe(3);
    expect(r.passes).toEqual([]);
  });

  it('stays within its run budget', async () => {
    const t = synthetic(privateRemapPattern);
    const r = await minimize(NOISY, SIG, t, { maxRuns: 5, confirmRuns: 2, fastCheckRuns: 0 });
    expect(r.stoppedBy).toBe('runs');
    // 1 original + 5 search runs + 2 confirmations
    expect(t.runs).toBe(8);
    expect(privateRemapPattern(r.program)).toBe(true);
  });

  it("stops its search when the whole reproduction's time left (timeLeftMs) runs out", async () => {
    const t = synthetic(privateRemapPattern);
    // time left as the reproduction budget would say: 4 candidate runs' worth, then none
    const r = await minimize(NOISY, SIG, t, { timeLeftMs: () => 4 - (t.runs - 1), confirmRuns: 2, fastCheckRuns: 0 });
    expect(r.stoppedBy).toBe('time');
    // 1 original + 4 search runs + 2 confirmations (confirmation is what the reserve is kept for)
    expect(t.runs).toBe(7);
    expect(privateRemapPattern(r.program)).toBe(true);
  });

  it('a flaky signature never yields a program that did not show it, and its rate is reported', async () => {
    // deterministic pseudo-random: the signature shows 40 % of the time when the pattern is there
    let x = 12345;
    const rng = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const t = synthetic(privateRemapPattern, 0.4, rng);
    const r = await minimize(NOISY, SIG, t, { fastCheckRuns: 0, initialTries: 10, confirmRuns: 5 });
    expect(r.reproduced).toBe(true);
    expect(privateRemapPattern(r.program)).toBe(true);
    expect(r.confirm.runs).toBe(5);
    expect(r.confirm.hits).toBeGreaterThan(0);
    expect(r.confirm.hits).toBeLessThan(5);
  });

  it('steps back when the final program does not show the signature again', async () => {
    // shows the signature exactly once for the smallest program, always for larger ones
    let smallSeen = 0;
    const t: Tester = {
      async run(p) {
        if (!privateRemapPattern(p)) return { keys: [] };
        if (p.ops.length <= 4) return { keys: smallSeen++ === 0 ? [SIG.key] : [] };
        return { keys: [SIG.key] };
      },
    };
    const r = await minimize(NOISY, SIG, t, { fastCheckRuns: 0, confirmRuns: 3 });
    expect(r.rolledBack).toBeGreaterThanOrEqual(1);
    expect(r.program.ops.length).toBeGreaterThan(4);
    expect(r.confirm).toEqual({ hits: 3, runs: 3, firstHit: 1 });
  });

  it('runs fast-check shrinking on generated programs and keeps what is smaller', async () => {
    // find a generated program with a fork and a private mapping: the predicate wants both
    const want = (p: Program) => p.ops.some((o) => o.op === 'fork') && p.ops.some((o) => o.op === 'mmap' && !o.shared);
    let g: Program | undefined;
    for (let i = 0; i < 500 && !g; i++) {
      const c = generateProgram(3, i);
      if (want(c) && c.ops.length > 15) g = c;
    }
    expect(g).toBeDefined();
    const t = synthetic(want);
    const r = await minimize(g!, SIG, t, { fastCheckRuns: 30 });
    expect(r.fastCheck === 'shrunk' || r.fastCheck === 'no-smaller').toBe(true);
    const fcPass = r.passes.find((x) => x.pass === 'fast-check');
    expect(fcPass).toBeDefined();
    expect(fcPass!.runs).toBeLessThanOrEqual(30);
    expect(want(r.program)).toBe(true);
    expect(r.program.ops.length).toBeLessThanOrEqual(3);
  });

  it('skips fast-check when the seed regenerates another program', async () => {
    const g = generateProgram(3, 1);
    const changed: Program = { ...g, ops: [...g.ops, { op: 'open', task: 't0', fd: 'zz', dev: 0, via: 'path' }] };
    const r = await minimize(changed, SIG, synthetic((p) => p.ops.length > 0), { fastCheckRuns: 10 });
    expect(r.fastCheck).toBe('regenerated-differs');
  });
});
