/**
 * svadiff fuzz --jobs: the per-job seeds, the default number of jobs, the sum of the jobs'
 * stats, and one findings store written by several jobs at once (the same title from two jobs
 * counts both). The guests themselves: test/integration/fuzz-interrupt.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Coverage } from '../../harness/coverage/signal.js';
import { FindingStore, type FindingCandidate } from '../../harness/findings/store.js';
import { defaultJobs, jobSeed, jobStateDir, summedRates, sumStats } from '../../harness/fuzz/jobs.js';
import type { FuzzStats } from '../../harness/fuzz/loop.js';
import { parseProgram } from '../../harness/program/parse.js';

const ROOT = join(import.meta.dirname, '..', '..');

describe('job seeds', () => {
  it('job 0 has the run seed; the others are fixed, distinct and in range', () => {
    expect(jobSeed(1, 0)).toBe(1);
    for (const seed of [0, 1, 5, 12345, 2 ** 31 - 1]) {
      const seeds = Array.from({ length: 64 }, (_, j) => jobSeed(seed, j));
      expect(new Set(seeds).size).toBe(64);
      for (const s of seeds) expect(Number.isInteger(s) && s >= 0 && s < 2 ** 31).toBe(true);
      expect(seeds).toEqual(Array.from({ length: 64 }, (_, j) => jobSeed(seed, j)));
    }
    // the same job of neighbouring seeds does not get neighbouring streams
    expect(Math.abs(jobSeed(1, 1) - jobSeed(2, 1))).toBeGreaterThan(1000);
  });

  it('job 0 keeps its state in the output directory, the others in jobs/<j>', () => {
    expect(jobStateDir('/o', 0)).toBe('/o');
    expect(jobStateDir('/o', 3)).toBe(join('/o', 'jobs', '3'));
  });
});

describe('default jobs', () => {
  it('one per core while memory holds the guests, at least one', () => {
    expect(defaultJobs(2, 20_000).jobs).toBe(2);
    expect(defaultJobs(2, 20_000).why).toBe('2 cores');
    expect(defaultJobs(16, 4_000, 1_400)).toEqual({ jobs: 2, why: 'memory: 3.9 GiB free, 1.4 GiB a guest' });
    expect(defaultJobs(4, 100).jobs).toBe(1);
  });
});

function stats(programs: number, checkedOps: number, elapsedMs: number, bootMs: number, rules: string[]): FuzzStats {
  const coverage = Coverage.fromJSON({ rules: Object.fromEntries(rules.map((r) => [r, 1])), pairs: {}, extra: {}, byKind: {} });
  return {
    programs,
    checkedOps,
    executedOps: checkedOps,
    findings: 1,
    newFindings: 0,
    bugs: 1,
    newBugs: 0,
    reboots: 1,
    divergences: 1,
    crashes: 0,
    hangs: 0,
    anomalies: 0,
    elapsedMs,
    bootMs,
    groups: 0,
    groupDivergences: 0,
    leaks: 0,
    leakCheckMs: 0,
    mutated: 0,
    coverage,
    timeline: [{ ms: elapsedMs, programs, rules: rules.length, pairs: 0 }],
    corpusSize: 0,
  };
}

describe('stats over jobs', () => {
  it('adds counts and rates, unites coverage, keeps the longest time', () => {
    const a = stats(10, 100, 11_000, 1_000, ['open.ok', 'mmap.ok']);
    const b = stats(30, 300, 12_000, 2_000, ['open.ok', 'touch.ok']);
    const s = sumStats([a, b]);
    expect(s.programs).toBe(40);
    expect(s.checkedOps).toBe(400);
    expect(s.reboots).toBe(2);
    expect(s.elapsedMs).toBe(12_000);
    expect([...s.coverage.rules.keys()].sort()).toEqual(['mmap.ok', 'open.ok', 'touch.ok']);
    expect(s.coverage.rules.get('open.ok')).toBe(2);
    expect(summedRates([a, b])).toEqual({ programsPerS: 1 + 3, checkedOpsPerS: 10 + 30 });
    expect(sumStats([a])).toBe(a);
  });
});

describe('one store, several jobs', () => {
  it('records the same title from two jobs at once: one finding, both counted', async () => {
    const out = mkdtempSync(join(tmpdir(), 'svadiff-jobs-store-'));
    try {
      const program = parseProgram(readFileSync(join(ROOT, 'corpus', 'seeds', 'basic-lifecycle.json'), 'utf8'), 'seed');
      const store = await FindingStore.open(out, { onProblem: () => undefined });
      const c = (i: number): FindingCandidate => ({
        kind: 'crash',
        title: 'WARNING in splat_warn',
        kernel: { spec: 'debian:6.12', release: '6.12.118+deb12-amd64' },
        program: { ...program, comment: `job ${i % 2}` },
        console: 'WARNING: CPU: 0 PID: 1 at x.c:1 splat_warn+0x1/0x2\n',
        excerpt: 'WARNING: CPU: 0 PID: 1 at x.c:1 splat_warn+0x1/0x2',
        report: { kind: 'warning', pattern: 'warning', frame: 'splat_warn', corrupted: false },
      });
      // two jobs, ten programs each, all at once
      const recs = await Promise.all(Array.from({ length: 20 }, (_, i) => store.recordProgram([c(i)], `program ${i}`)));
      expect(recs.flat().filter((r) => r.isNew)).toHaveLength(1);
      expect(store.list()).toHaveLength(1);
      const id = store.list()[0]!.id;
      const onDisk = JSON.parse(readFileSync(join(out, 'findings', id, 'finding.json'), 'utf8')) as { count: number };
      expect(onDisk.count).toBe(20);
      const again = await FindingStore.open(out, { onProblem: () => undefined });
      expect(again.list()[0]!.count).toBe(20);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
