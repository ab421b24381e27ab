/**
 * The fuzzing loop: the next program (fresh from the stream for `seed`, or a mutation of the
 * corpus of programs that reached new coverage: harness/fuzz/corpus.ts) → run on the guest →
 * model check and kernel log oracle → findings and coverage (the model rules and (rule, state
 * feature) pairs its ops fired), until the time is up or the user interrupts. The guest is
 * rebooted after a splat, a hang, a dead guest or a failed teardown. Findings are written as
 * they are found (atomically, by the store); the loop's own position is saved so that a run
 * that is interrupted continues where it stopped with the same --seed and --out.
 */
import { join } from 'node:path';
import { Coverage, signalsOf, thinTimeline, type CoverageJson, type SignalSource, type TimelinePoint } from '../coverage/signal.js';
import { MAX_PRECEDING, type FindingStore, type KernelId, type RecordResult } from '../findings/store.js';
import { generate, type GeneratorOptions } from '../generator/index.js';
import type { KernelProfile } from '../model/index.js';
import { groupSpans } from '../program/parse.js';
import type { Program } from '../program/types.js';
import { executeProgram, findingCandidates, type ExecResult } from '../run/execute.js';
import { atomicWriteJson, readJsonIfExists } from '../util/fsx.js';
import type { DeviceSetup } from '../agent/wire.js';
import type { Guest } from '../vm/guest.js';
import { Corpus, nextProgram, type CorpusJson, type NextProgram } from './corpus.js';

/**
 * The loop's position and what it found out, saved in DIR/fuzz-state.json (version 1, without
 * coverage, still resumes).
 */
export interface FuzzState {
  format: 'svadiff-fuzz-state';
  version: 2;
  kernel: string;
  seed: number;
  /** the next program index of the stream */
  nextIndex: number;
  programs: number;
  ops: number;
  reboots: number;
  elapsedMs: number;
  /** model rules and (rule, state feature) pairs fired so far, with counts */
  coverage: CoverageJson;
  /** how many rules and pairs were reached over time */
  timeline: TimelinePoint[];
  /** rules of the model no op has fired yet (on this kernel's profile, the unreachable ones included) */
  neverReached: string[];
  /** concurrent groups run, and how many of them diverged */
  groups: number;
  groupDivergences: number;
  /** programs that were mutations of the corpus (the rest are fresh from the stream) */
  mutated: number;
  /** entries of the corpus (DIR/fuzz-corpus.json) */
  corpus: number;
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
  /** concurrent groups run (every op of the group got a result) and how many diverged */
  groups: number;
  groupDivergences: number;
  /** programs mutated from the corpus */
  mutated: number;
  /** programs that left something behind (harness/leaks), and the time the leak checks took */
  leaks: number;
  leakCheckMs: number;
  /** coverage so far (resumed runs included) */
  coverage: Coverage;
  timeline: TimelinePoint[];
  corpusSize: number;
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
  /** coverage feedback (a corpus, mutations, biased weights); false: the plain program stream */
  feedback?: boolean;
  /** more coverage than the model's rules, e.g. KCOV of a kernel built with it (none yet) */
  signals?: readonly SignalSource<ExecResult>[];
  /**
   * how programs get a fresh test device: `reset` (default) through the module's control file,
   * `reload` with rmmod and insmod. A reset run still reloads after a program the kernel
   * reported on (ExecResult.needsReload); the first program after a boot loads the module.
   */
  deviceSetup?: DeviceSetup;
  /** checked between programs: stop when true */
  shouldStop: () => boolean;
}

export function statePath(outDir: string): string {
  return join(outDir, 'fuzz-state.json');
}

export function corpusPath(outDir: string): string {
  return join(outDir, 'fuzz-corpus.json');
}

/** The saved state of an output directory (a version 1 state has no coverage: it starts empty). */
export async function loadState(outDir: string): Promise<FuzzState | undefined> {
  const s = await readJsonIfExists<Omit<Partial<FuzzState>, 'version'> & { version: number }>(statePath(outDir));
  if (s === undefined || (s.version !== 1 && s.version !== 2)) return undefined;
  return {
    format: 'svadiff-fuzz-state',
    version: 2,
    kernel: s.kernel ?? '',
    seed: s.seed ?? 0,
    nextIndex: s.nextIndex ?? 0,
    programs: s.programs ?? 0,
    ops: s.ops ?? 0,
    reboots: s.reboots ?? 0,
    elapsedMs: s.elapsedMs ?? 0,
    coverage: s.coverage ?? { rules: {}, pairs: {}, extra: {}, byKind: {} },
    timeline: s.timeline ?? [],
    neverReached: s.neverReached ?? [],
    groups: s.groups ?? 0,
    groupDivergences: s.groupDivergences ?? 0,
    mutated: s.mutated ?? 0,
    corpus: s.corpus ?? 0,
  };
}

/** Concurrent groups of a run that ran to the end (every op of the group has a result). */
function groupsRun(program: Program, r: ExecResult): number {
  return groupSpans(program).filter(([first, n]) => Array.from({ length: n }, (_, k) => r.run?.results[first + k]).every((x) => x !== undefined)).length;
}

export async function fuzzLoop(cfg: FuzzConfig, hooks: FuzzHooks): Promise<FuzzStats> {
  const t0 = Date.now();
  const stateDir = cfg.stateDir ?? cfg.outDir;
  const prev = cfg.fresh ? undefined : await loadState(stateDir);
  const resume = prev && prev.seed === cfg.seed && prev.kernel === cfg.kernel.spec ? prev : undefined;
  let index = resume?.nextIndex ?? 0;
  const coverage = Coverage.fromJSON(resume?.coverage);
  const corpus = resume ? Corpus.fromJSON(await readJsonIfExists<CorpusJson>(corpusPath(stateDir))) : new Corpus();
  let corpusDirty = false;
  const gen: Partial<GeneratorOptions> = { profile: cfg.profile, ...cfg.generator };
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
    groups: 0,
    groupDivergences: 0,
    mutated: 0,
    leaks: 0,
    leakCheckMs: 0,
    coverage,
    timeline: resume?.timeline ?? [],
    corpusSize: corpus.size,
  };
  const totalMs = () => (resume?.elapsedMs ?? 0) + (Date.now() - t0);
  const saveState = async () => {
    if (corpusDirty) {
      await atomicWriteJson(corpusPath(stateDir), corpus.toJSON());
      corpusDirty = false;
    }
    await atomicWriteJson(statePath(stateDir), {
      format: 'svadiff-fuzz-state',
      version: 2,
      kernel: cfg.kernel.spec,
      seed: cfg.seed,
      nextIndex: index,
      programs: (resume?.programs ?? 0) + stats.programs,
      ops: (resume?.ops ?? 0) + stats.executedOps,
      reboots: (resume?.reboots ?? 0) + stats.reboots,
      elapsedMs: totalMs(),
      coverage: coverage.toJSON(),
      timeline: stats.timeline,
      neverReached: coverage.neverReached(),
      groups: (resume?.groups ?? 0) + stats.groups,
      groupDivergences: (resume?.groupDivergences ?? 0) + stats.groupDivergences,
      mutated: (resume?.mutated ?? 0) + stats.mutated,
      corpus: corpus.size,
    } satisfies FuzzState);
  };
  const note = () => {
    const last = stats.timeline[stats.timeline.length - 1];
    const p: TimelinePoint = { ms: totalMs(), programs: (resume?.programs ?? 0) + stats.programs, rules: coverage.rules.size, pairs: coverage.pairs.size };
    if (last !== undefined && last.rules === p.rules && last.pairs === p.pairs && p.ms - last.ms < 10_000) return;
    stats.timeline = thinTimeline([...stats.timeline, p]);
  };
  if (stats.timeline.length === 0) note();

  // programs this guest ran since it booted (newest last): a crash is often the delayed effect of
  // an earlier program (slab corruption found when the cache is next used), so crash and hang
  // findings keep them (preceding.json) for `svadiff repro` to replay when the program alone
  // does not reproduce
  let sinceBoot: Program[] = [];
  // the next program reloads the module: after a program the kernel reported on (after a boot
  // the agent loads it anyway)
  let reloadNext = false;
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
      const next: NextProgram =
        cfg.feedback === false
          ? (() => {
              const g = generate(cfg.seed, index, gen);
              return { built: g, decisions: g.decisions, how: 'fresh' as const };
            })()
          : nextProgram(cfg.seed, index, corpus, coverage, gen);
      const program = next.built.program;
      if (next.how !== 'fresh') stats.mutated++;
      const setup: DeviceSetup = cfg.deviceSetup === 'reload' || reloadNext ? 'reload' : 'reset';
      const r = await executeProgram(guest, index + 1, program, cfg.profile, { setup });
      reloadNext = r.needsReload;
      index++;
      stats.programs++;
      stats.checkedOps += r.check.checked;
      stats.executedOps += r.run?.results.filter((x) => x !== undefined).length ?? 0;
      stats.groups += groupsRun(program, r);
      if (r.check.divergence?.concurrent !== undefined) stats.groupDivergences++;
      if (r.leaks.length > 0) stats.leaks++;
      stats.leakCheckMs += r.leakCheckMs ?? 0;
      // coverage: what the matched ops fired; a program that reached something first joins the corpus
      const fresh = coverage.add(signalsOf(r.check), (cfg.signals ?? []).flatMap((src) => src.keys(r)));
      const reached = [...fresh.rules, ...fresh.pairs, ...fresh.extra];
      if (reached.length > 0) {
        corpus.add({ from: index - 1, decisions: next.decisions, reached, picks: 0 }, coverage);
        corpusDirty = true;
        stats.corpusSize = corpus.size;
      }
      note();
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
    note();
    await saveState();
    if (guest) await guest.shutdown().catch(() => guest?.kill());
  }
  return stats;
}
