/**
 * Replaying a crash after the programs that ran before it (harness/repro/preceding.ts). The
 * tester is synthetic (a list of which program "shows" the signature): these tests show the
 * control logic (fresh guest per run, stop at the first hit, stop when the guest is gone, honest
 * counts). That the replay works on a real guest is shown by `svadiff repro` on 6.1 findings.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseProgram } from '../../harness/program/parse.js';
import type { Program } from '../../harness/program/types.js';
import type { Signature, Trial } from '../../harness/repro/minimize.js';
import { readPreceding, reducePreceding, replayAfterPreceding, type SequenceTester } from '../../harness/repro/preceding.js';
import { renderReport } from '../../harness/repro/report.js';
import type { ExecResult } from '../../harness/run/execute.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SEED = parseProgram(readFileSync(join(ROOT, 'corpus', 'seeds', 'basic-lifecycle.json'), 'utf8'), 'seed');
const SIG: Signature = { kind: 'crash', key: 'crash: BUG: double free in' };
const named = (comment: string): Program => ({ ...SEED, comment });

/** Program `name` shows the signature in the runs listed in `shows[name]`; `kills` ends the guest. */
function scripted(shows: Record<string, number[]>, kills: Record<string, number[]> = {}): SequenceTester & { log: string[]; closes: number } {
  let run = -1;
  const t = {
    log: [] as string[],
    closes: 0,
    async close() {
      t.closes++;
    },
    async run(p: Program): Promise<Trial> {
      const name = p.comment ?? '';
      if (name === 'p0') run++;
      t.log.push(`${run}:${name}`);
      const keys = shows[name]?.includes(run) ? [SIG.key] : kills[name]?.includes(run) ? ['crash: general protection fault in'] : [];
      return { keys, result: { needsReboot: keys.length > 0 } as ExecResult };
    },
  };
  return t;
}

describe('replayAfterPreceding', () => {
  it('runs the preceding programs then the finding, on a fresh guest each time, and stops at the first program that shows it', async () => {
    const t = scripted({ p1: [0, 2], final: [1] });
    const r = await replayAfterPreceding([named('p0'), named('p1'), named('p2')], named('final'), SIG, t, 4);
    expect(r).toMatchObject({ programs: 4, hits: 3, runs: 4, shownBy: [1, 3, 1, null] });
    expect(t.log).toEqual(['0:p0', '0:p1', '1:p0', '1:p1', '1:p2', '1:final', '2:p0', '2:p1', '3:p0', '3:p1', '3:p2', '3:final']);
    expect(t.closes).toBe(5);
    expect(r.lines[0]).toBe('run 1/4: shown by program 2 of 4 (p1)');
    expect(r.lines[3]).toBe('run 4/4: not shown after all 4 programs');
  });

  it('a different splat ends the sequence and does not count', async () => {
    const t = scripted({ final: [0] }, { p0: [0] });
    const r = await replayAfterPreceding([named('p0')], named('final'), SIG, t, 1);
    expect(r).toMatchObject({ hits: 0, shownBy: [null] });
    expect(r.lines[0]).toMatch(/program 1 of 2 showed something else \(crash: general protection fault in\), sequence stopped/);
    expect(t.log).toEqual(['0:p0']);
  });
});

/** The final program shows the signature when the guest, since its last fresh boot, ran every program of `needs`. */
function needing(needs: string[]): SequenceTester & { runs: number } {
  let ran = new Set<string>();
  const t = {
    runs: 0,
    async close() {
      ran = new Set();
    },
    async run(p: Program): Promise<Trial> {
      t.runs++;
      const name = p.comment ?? '';
      ran.add(name);
      const show = name === 'final' && needs.every((n) => ran.has(n));
      return { keys: show ? [SIG.key] : [], result: { needsReboot: show } as ExecResult };
    },
  };
  return t;
}

describe('reducePreceding', () => {
  const before = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5'].map(named);
  it('keeps exactly the preceding programs the signature needs, in their order', async () => {
    const t = needing(['p1', 'p4']);
    const r = await reducePreceding(before, named('final'), SIG, t);
    expect(r.kept.map((p) => p.comment)).toEqual(['p1', 'p4']);
    expect(r.runs).toBe(6);
    expect(r.stoppedByTime).toBe(false);
    expect(await replayAfterPreceding(r.kept, named('final'), SIG, t, 3)).toMatchObject({ hits: 3, runs: 3 });
  });

  it('stops at its time budget and says so, keeping what it has not tried', async () => {
    const r = await reducePreceding(before, named('final'), SIG, needing([]), { maxTimeMs: -1 });
    expect(r).toMatchObject({ runs: 0, stoppedByTime: true });
    expect(r.kept).toHaveLength(6);
  });
});

describe('readPreceding', () => {
  it('reads preceding.json, is empty without it, and names the file and the fix when it is malformed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'svadiff-preceding-'));
    try {
      expect(await readPreceding(dir)).toEqual([]);
      writeFileSync(join(dir, 'preceding.json'), JSON.stringify({ format: 'svadiff-program-log', version: 1, note: '', programs: [SEED] }));
      expect(await readPreceding(dir)).toEqual([SEED]);
      writeFileSync(join(dir, 'preceding.json'), JSON.stringify({ format: 'svadiff-program-log', version: 1, programs: [{ ...SEED, ops: [{ op: 'open' }] }] }));
      await expect(readPreceding(dir)).rejects.toThrow(/preceding\.json: programs\[0\].*ops\[0\]/);
      writeFileSync(join(dir, 'preceding.json'), '{');
      await expect(readPreceding(dir)).rejects.toThrow(/preceding\.json: not valid JSON .*delete it/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('report.txt', () => {
  const base = {
    kind: 'crash' as const,
    title: 'BUG: double free in kernfs_put',
    kernel: { exactSpec: 'debian:6.1.192', version: '6.1.192', release: '6.1.0-56-amd64', arch: 'x86_64', configHash: 'f75010e906eac59e85ab3fab9de8f197af2fc9dbd37415d3f3b74d11b7de2438' },
    program: SEED,
    bootModules: ['uacce.ko'],
    reliability: { hits: 0, runs: 5, what: 'repro.c on a fresh guest' },
    howToRun: { build: ['gcc -static -o repro repro.c'], run: ['./repro'] },
    semantics: '',
  };
  it('says how the program did after its preceding programs', () => {
    const text = renderReport({ ...base, afterPreceding: { programs: 9, hits: 3, runs: 5, shownBy: [7, null, 7, 8, null] } });
    const flat = text.replace(/\s+/g, ' ');
    expect(flat).toContain('did not reproduce (0/5), flaky');
    expect(flat).toContain('Replayed after the 8 programs the guest had run before it since boot');
    expect(flat).toContain('flaky (3/5), shown by program 8, 9 of 9. The report is the delayed effect');
    expect(text.split('\n').every((l) => l.length <= 80)).toBe(true);
    expect(renderReport({ ...base, afterPreceding: { programs: 3, hits: 0, runs: 2, shownBy: [null, null] } }).replace(/\s+/g, ' ')).toContain('(0/2), flaky. The cause is not among the programs svadiff kept.');
    const reducedText = renderReport({
      ...base,
      afterPreceding: { programs: 16, hits: 5, runs: 5, shownBy: [15, 15, 15, 15, 15], reduced: { origins: ['generated: seed 101, program 580'], timeMs: 151_000, stoppedByTime: false, hits: 5, runs: 5 } },
    });
    expect(reducedText.replace(/\s+/g, ' ')).toContain(
      'It needs 1 of the 15 (preceding.min.json: generated: seed 101, program 580), found in 151 s; those, then program.json, on a fresh guest: reproduced 5/5.',
    );
    expect(reducedText.split('\n').every((l) => l.length <= 80)).toBe(true);
  });
});
