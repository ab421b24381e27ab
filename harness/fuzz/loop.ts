/**
 * The fuzzing loop: program i of the stream for `seed` → run on the guest → model check and
 * kernel log oracle → findings, until the time is up or the user interrupts. The guest is
 * rebooted after a splat, a hang, a dead guest or a failed teardown. Findings are written as
 * they are found (atomically, by the store); the loop's own position is saved so that a run
 * that is interrupted continues where it stopped with the same --seed and --out.
 */
import { join } from 'node:path';
import { MAX_PRECEDING, type FindingStore, type KernelId, type RecordResult } from '../findings/store.js';
import { generateProgram, type GeneratorOptions } from '../generator/index.js';
import type { KernelProfile } from '../model/index.js';
import type { Program } from '../program/types.js';
import { executeProgram, findingCandidates, type ExecResult } from '../run/execute.js';
import { atomicWriteJson, readJsonIfExists } from '../util/fsx.js';
import type { Guest } from '../vm/guest.js';

export interface FuzzState {
  format: 'svadiff-fuzz-state';
  version: 1;
  kernel: string;
  seed: number;
  /** the next program index of the stream */
  nextIndex: number;
  programs: number;
  ops: number;
  reboots: number;
  elapsedMs: number;
}

export interface FuzzStats {
  programs: number;
  /** ops the model checked */
  checkedOps: number;
  /** ops executed (checked or not) */
  executedOps: number;
  /** findings (titles) first seen in this run */
  findings: number;
  /** of those, not known */
  newFindings: number;
  /** bugs first seen in this run (a new title of a bug seen before is not one) */
  bugs: number;
  /** of those, not known on this kernel */
  newBugs: number;
  reboots: number;
  divergences: number;
  crashes: number;
  hangs: number;
  /** results the agent could not have produced (harness problems) */
  anomalies: number;
  elapsedMs: number;
  /** time spent booting guests */
  bootMs: number;
}

export interface FuzzHooks {
  /** a guest that works: the loop calls it at start and after every reboot */
  boot: () => Promise<Guest>;
  onProgress?: (s: FuzzStats) => void;
  onFinding?: (id: string, title: string, rec: RecordResult) => void;
  onProgram?: (index: number, program: Program, r: ExecResult) => void;
  onAnomaly?: (index: number, message: string) => void;
}

export interface FuzzConfig {
  seed: number;
  timeMs: number;
  /** stop after this many programs (for benchmarks and tests) */
  maxPrograms?: number;
  outDir: string;
  kernel: KernelId;
  profile: KernelProfile;
  store: FindingStore;
  generator?: Partial<GeneratorOptions>;
  /** start the stream at 0 even when a saved state exists */
  fresh?: boolean;
  /** the run id findings are counted under (default: the store's) */
  runId?: string;
  /** where fuzz-state.json goes (default: outDir) */
  stateDir?: string;
  /** checked between programs: stop when true */
  shouldStop: () => boolean;
}

export function statePath(outDir: string): string {
  return join(outDir, 'fuzz-state.json');
}

export async function loadState(outDir: string): Promise<FuzzState | undefined> {
  return readJsonIfExists<FuzzState>(statePath(outDir));
}

export async function fuzzLoop(cfg: FuzzConfig, hooks: FuzzHooks): Promise<FuzzStats> {
  const t0 = Date.now();
  const stateDir = cfg.stateDir ?? cfg.outDir;
  const prev = cfg.fresh ? undefined : await loadState(stateDir);
  const resume = prev && prev.seed === cfg.seed && prev.kernel === cfg.kernel.spec ? prev : undefined;
  let index = resume?.nextIndex ?? 0;
  const stats: FuzzStats = {
    programs: 0,
    checkedOps: 0,
    executedOps: 0,
    findings: 0,
    newFindings: 0,
    bugs: 0,
    newBugs: 0,
    reboots: 0,
    divergences: 0,
    crashes: 0,
    hangs: 0,
    anomalies: 0,
    elapsedMs: 0,
    bootMs: 0,
  };
  const saveState = () =>
    atomicWriteJson(statePath(stateDir), {
      format: 'svadiff-fuzz-state',
      version: 1,
      kernel: cfg.kernel.spec,
      seed: cfg.seed,
      nextIndex: index,
      programs: (resume?.programs ?? 0) + stats.programs,
      ops: (resume?.ops ?? 0) + stats.executedOps,
      reboots: (resume?.reboots ?? 0) + stats.reboots,
      elapsedMs: (resume?.elapsedMs ?? 0) + (Date.now() - t0),
    } satisfies FuzzState);

  // programs this guest ran since it booted (newest last): a crash is often the delayed effect of
  // an earlier program (slab corruption found when the cache is next used), so crash and hang
  // findings keep them (preceding.json) for `svadiff repro` to replay when the program alone
  // does not reproduce
  let sinceBoot: Program[] = [];
  let tb = Date.now();
  let guest: Guest | undefined = await hooks.boot();
  stats.bootMs += Date.now() - tb;
  let lastSave = Date.now();
  try {
    while (!cfg.shouldStop() && Date.now() - t0 < cfg.timeMs && (cfg.maxPrograms === undefined || stats.programs < cfg.maxPrograms)) {
      if (!guest) {
        tb = Date.now();
        guest = await hooks.boot();
        stats.bootMs += Date.now() - tb;
        stats.reboots++;
        sinceBoot = [];
      }
      const program = generateProgram(cfg.seed, index, cfg.generator);
      const r = await executeProgram(guest, index + 1, program, cfg.profile);
      index++;
      stats.programs++;
      stats.checkedOps += r.check.checked;
      stats.executedOps += r.run?.results.filter((x) => x !== undefined).length ?? 0;
      const recorded: { title: string; rec: RecordResult }[] = [];
      const candidates = findingCandidates(r, cfg.kernel);
      for (const c of candidates) {
        if (c.kind !== 'divergence' && sinceBoot.length > 0) c.preceding = sinceBoot.slice();
        if (cfg.runId !== undefined) c.runId = cfg.runId;
      }
      // reports of one program run are one bug (the store keeps that as evidence)
      const recs = candidates.length > 0 ? await cfg.store.recordProgram(candidates, `${program.comment ?? `program ${index}`} on ${cfg.kernel.release}`) : [];
      const newBugs = new Set<string>();
      candidates.forEach((c, i) => {
        const rec = recs[i]!;
        if (c.kind === 'divergence') stats.divergences++;
        else if (c.kind === 'hang') stats.hangs++;
        else stats.crashes++;
        if (rec.isNew) {
          stats.findings++;
          if (!rec.known) stats.newFindings++;
        }
        if (rec.newBug && !newBugs.has(rec.bug)) {
          newBugs.add(rec.bug);
          stats.bugs++;
          if (!rec.bugKnown) stats.newBugs++;
        }
        recorded.push({ title: c.title, rec });
      });
      if (recorded.length > 0) {
        // the stream position goes with the findings on disk: a run killed from here on (no
        // finally then) resumes after this program instead of recording its findings again
        await saveState();
        lastSave = Date.now();
      }
      // a bug is announced once per program, however many of its titles the program showed
      const announced = new Set<string>();
      for (const { title, rec } of recorded) {
        hooks.onFinding?.(rec.id, title, rec.newBug && announced.has(rec.bug) ? { ...rec, newBug: false } : rec);
        if (rec.newBug) announced.add(rec.bug);
      }
      sinceBoot.push(program);
      if (sinceBoot.length > MAX_PRECEDING) sinceBoot.shift();
      hooks.onProgram?.(index - 1, program, r);
      if (r.check.anomaly) {
        // a harness problem, never a kernel finding: say it, reboot to be safe, go on
        stats.anomalies++;
        hooks.onAnomaly?.(index - 1, `op ${r.check.anomaly.index}: ${r.check.anomaly.message}`);
      }
      if (r.needsReboot) {
        await guest.kill();
        guest = undefined;
      }
      stats.elapsedMs = Date.now() - t0;
      hooks.onProgress?.(stats);
      if (Date.now() - lastSave > 5000) {
        await saveState();
        lastSave = Date.now();
      }
    }
  } finally {
    stats.elapsedMs = Date.now() - t0;
    await saveState();
    if (guest) await guest.shutdown().catch(() => guest?.kill());
  }
  return stats;
}
