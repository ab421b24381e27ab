/**
 * Parallel fuzzing (`svadiff fuzz --jobs N`): N fuzz loops, each with its own guest, its own
 * program stream and its own saved position, writing into one findings store (the store
 * serializes its writes, so two jobs recording the same title add their counts). Pure helpers:
 * how many jobs a host allows, each job's seed and state directory, and the sum of their stats.
 */
import { join } from 'node:path';
import { Coverage, type TimelinePoint } from '../coverage/signal.js';
import type { FuzzStats } from './loop.js';

/** Memory one guest takes from the host: its RAM and QEMU's own (TCG translation cache, devices). */
export const GUEST_HOST_MB = 1024 + 384;

/**
 * The default number of jobs: one per core, as many as the free memory holds guests, at least
 * one. `why` says what decided it (printed at start).
 */
export function defaultJobs(cpus: number, freeMb: number, guestMb = GUEST_HOST_MB): { jobs: number; why: string } {
  const byMem = Math.floor(freeMb / guestMb);
  const jobs = Math.max(1, Math.min(cpus, byMem));
  const limit = byMem < cpus ? `memory: ${(freeMb / 1024).toFixed(1)} GiB free, ${(guestMb / 1024).toFixed(1)} GiB a guest` : `${cpus} cores`;
  return { jobs, why: limit };
}

/**
 * The seed of job j: job 0 has the run's own seed (so `--jobs 1` is the plain run and resumes
 * its state), the others a fixed mix of seed and j (splitmix32's finalizer), in 0 .. 2^31-1.
 */
export function jobSeed(seed: number, job: number): number {
  if (job === 0) return seed;
  let z = (seed + Math.imul(job, 0x9e3779b9)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 1;
}

/** Where job j keeps its position (fuzz-state.json, fuzz-corpus.json): job 0 in the output directory itself. */
export function jobStateDir(outDir: string, job: number): string {
  return job === 0 ? outDir : join(outDir, 'jobs', String(job));
}

/** Fuzzing time of a job's stats: elapsed without booting (what the rates are per). */
function fuzzSecs(s: FuzzStats): number {
  return Math.max(0.001, (s.elapsedMs - s.bootMs) / 1000);
}

/** Programs and checked ops per second summed over jobs (each job's own rate, added). */
export function summedRates(all: readonly FuzzStats[]): { programsPerS: number; checkedOpsPerS: number } {
  return {
    programsPerS: all.reduce((a, s) => a + s.programs / fuzzSecs(s), 0),
    checkedOpsPerS: all.reduce((a, s) => a + s.checkedOps / fuzzSecs(s), 0),
  };
}

/**
 * The stats of all jobs as one: counts added, times of the longest job, coverage united, the
 * timeline the running maximum of the jobs' rule counts (a lower bound of the union's).
 */
export function sumStats(all: readonly FuzzStats[]): FuzzStats {
  if (all.length === 1) return all[0]!;
  const add = (k: keyof FuzzStats) => all.reduce((a, s) => a + (s[k] as number), 0);
  const coverage = new Coverage();
  const j = coverage.toJSON();
  for (const s of all) {
    const c = s.coverage.toJSON();
    for (const key of ['rules', 'pairs', 'extra'] as const) for (const [k, v] of Object.entries(c[key])) j[key][k] = (j[key][k] ?? 0) + v;
    for (const [kind, m] of Object.entries(c.byKind)) {
      const into = (j.byKind[kind] ??= {});
      for (const [k, v] of Object.entries(m)) into[k] = (into[k] ?? 0) + v;
    }
  }
  let best = 0;
  const timeline: TimelinePoint[] = all
    .flatMap((s) => s.timeline)
    .sort((a, b) => a.ms - b.ms)
    .map((p) => {
      best = Math.max(best, p.rules);
      return { ...p, rules: best };
    });
  const longest = all.reduce((a, s) => (s.elapsedMs > a.elapsedMs ? s : a));
  return {
    programs: add('programs'),
    checkedOps: add('checkedOps'),
    executedOps: add('executedOps'),
    findings: add('findings'),
    newFindings: add('newFindings'),
    bugs: add('bugs'),
    newBugs: add('newBugs'),
    reboots: add('reboots'),
    divergences: add('divergences'),
    crashes: add('crashes'),
    hangs: add('hangs'),
    anomalies: add('anomalies'),
    elapsedMs: longest.elapsedMs,
    bootMs: longest.bootMs,
    groups: add('groups'),
    groupDivergences: add('groupDivergences'),
    mutated: add('mutated'),
    leaks: add('leaks'),
    leakCheckMs: add('leakCheckMs'),
    coverage: Coverage.fromJSON(j),
    timeline,
    corpusSize: add('corpusSize'),
  };
}
