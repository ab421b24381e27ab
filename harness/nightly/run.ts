/**
 * One night (or one shard of it): for each cell of the matrix (kernel × seed), the newest
 * kernel of the series, fuzzed for its share of the kernel's time into one findings store;
 * then every new bug (not known, not seen on its series in an earlier night) reproduced within
 * a time bound. What ran is kept in <out>/night.json (cells, their numbers, reproductions):
 * the summary (summary.ts) and merge (findings/merge.ts) read it.
 *
 * A night that is interrupted and run again with the same --out continues: finished cells are
 * not run again, an unfinished one resumes its program stream, bugs already reproduced are not
 * reproduced again.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { FindingStore } from '../findings/store.js';
import { fuzzLoop, type FuzzStats } from '../fuzz/loop.js';
import { bootGuest, fuzzMachine, prepare, profileOf, type GuestSetup } from '../commands/common.js';
import { errorMessage } from '../util/errors.js';
import { atomicWriteJson, exists, readJsonIfExists } from '../util/fsx.js';
import { fmtDuration, info, StatusLine, warn } from '../util/log.js';
import { safeLine } from '../util/sanitize.js';
import { cells as allCells, shardCells, weightsFor, type Cell, type NightlyConfig, type Shard } from './config.js';

export const NIGHT_FORMAT = 'svadiff-night';
export const NIGHT_VERSION = 1;

export interface CellResult {
  name: string;
  index: number;
  /** the kernel as configured ("debian:6.12") */
  kernel: string;
  seed: number;
  /** what it resolved to tonight */
  exact_spec?: string;
  release?: string;
  version?: string;
  debian_version?: string;
  status: 'ok' | 'failed' | 'interrupted';
  error?: string;
  run_id: string;
  programs: number;
  checked_ops: number;
  executed_ops: number;
  reboots: number;
  anomalies: number;
  elapsed_ms: number;
  boot_ms: number;
  started: string;
  finished?: string;
}

export interface ReproRecord {
  bug: string;
  finding: string;
  kernel: string;
  status: 'reproduced' | 'flaky' | 'not-reproduced' | 'failed' | 'skipped';
  /** what happened, one line */
  note: string;
  reliability?: { hits: number; runs: number };
  ops_before?: number;
  ops_after?: number;
  time_ms: number;
}

export interface NightRun {
  format: typeof NIGHT_FORMAT;
  version: typeof NIGHT_VERSION;
  /** the night's id: every shard of one night has the same one */
  night: string;
  started: string;
  finished?: string;
  config: { kernels: string[]; seeds: number[]; time_ms: number; programs?: number; ops: string[]; jobs: number; repro: NightlyConfig['repro'] };
  /** the shard this store is, or the shards merged into it */
  shards: { index: number; count: number }[];
  cells: CellResult[];
  repros: ReproRecord[];
}

/** What a night needs of a reproduction's summary (commands/repro.ts ReproSummary). */
export interface ReproResult {
  reproduced: boolean;
  /** runs of repro.c; `what` says what ran, or why nothing did */
  reliability: { hits: number; runs: number; what: string };
  ops_before: number;
  ops_after: number;
}

/**
 * What a night says of one reproduction: reproduced when repro.c showed the bug in every run,
 * flaky in some, failed when repro.c did not run at all (it did not build or verify: the reason
 * is in reliability.what), not reproduced when the program did not show it again.
 */
export function reproOutcome(s: ReproResult): { status: ReproRecord['status']; note: string } {
  const { hits, runs, what } = s.reliability;
  const ops = `${s.ops_before} -> ${s.ops_after} ops`;
  if (!s.reproduced) return { status: 'not-reproduced', note: `${ops}; the program did not show it again` };
  if (runs === 0) return { status: 'failed', note: `${ops}; ${safeLine(what, 300)}` };
  return { status: hits === runs ? 'reproduced' : 'flaky', note: `${ops}; repro.c showed it in ${hits} of ${runs} runs` };
}

export function nightPath(out: string): string {
  return join(out, 'night.json');
}

export async function readNight(out: string): Promise<NightRun | undefined> {
  const n = await readJsonIfExists<NightRun>(nightPath(out));
  if (n && (n.format !== NIGHT_FORMAT || n.version !== NIGHT_VERSION || !Array.isArray(n.cells))) return undefined;
  return n;
}

/** A night id from a time: "2026-12-04T15-04-05Z" (sortable, a file name). */
export function nightId(at: Date): string {
  return at.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/:/g, '-');
}

export interface RunNightOptions {
  out: string;
  night?: string;
  shard?: Shard;
  accel?: string;
  /** decides which bugs are new (summary.ts); undefined: reproduce none */
  newBugs?: (store: FindingStore, night: NightRun) => Promise<{ bug: string; finding: string; release: string }[]>;
  /** stop early (Ctrl-C) */
  shouldStop: () => boolean;
  /** reproduce one finding (commands/repro.ts reproFinding); injected to keep this module free of the repro command */
  repro?: (dir: string, o: { runs: number; totalTimeMs: number; kernel: string; accel?: string }) => Promise<ReproResult>;
}

/** Run this night's (or shard's) cells, then reproduce new bugs. Returns night.json's content. */
export async function runNight(cfg: NightlyConfig, o: RunNightOptions): Promise<NightRun> {
  await fs.mkdir(o.out, { recursive: true });
  const prev = await readNight(o.out);
  const started = new Date();
  const night: NightRun = {
    format: NIGHT_FORMAT,
    version: NIGHT_VERSION,
    night: o.night ?? prev?.night ?? nightId(started),
    started: prev?.started ?? started.toISOString(),
    config: {
      kernels: cfg.kernels,
      seeds: cfg.seeds,
      time_ms: cfg.timeMs,
      ...(cfg.programs !== undefined ? { programs: cfg.programs } : {}),
      ops: cfg.ops,
      jobs: cfg.jobs,
      repro: cfg.repro,
    },
    shards: [o.shard ? { index: o.shard.index, count: o.shard.count } : { index: 0, count: 1 }],
    cells: prev?.cells.filter((c) => c.status === 'ok') ?? [],
    repros: prev?.repros ?? [],
  };
  const save = () => atomicWriteJson(nightPath(o.out), night);
  await save();
  const mine = shardCells(allCells(cfg), o.shard).filter((c) => !night.cells.some((d) => d.name === c.name));
  const timePerCell = Math.max(1000, Math.floor(cfg.timeMs / cfg.seeds.length));
  info(
    `night ${night.night}${o.shard ? `, shard ${o.shard.index}/${o.shard.count}` : ''}: ${mine.length} cells (${[...new Set(mine.map((c) => c.kernel))].join(', ') || 'none left'}), ` +
      `${fmtDuration(timePerCell)} each${cfg.programs !== undefined ? ` or ${cfg.programs} programs` : ''}, ${cfg.jobs} at once; output in ${o.out}`,
  );

  // the kernels, newest of their series tonight: fetched (and their modules built) once each
  const setups = new Map<string, GuestSetup | Error>();
  for (const k of [...new Set(mine.map((c) => c.kernel))]) {
    try {
      setups.set(k, await prepare(k, o.accel, o.out));
    } catch (e) {
      warn(`${k}: ${errorMessage(e)}`);
      setups.set(k, e instanceof Error ? e : new Error(String(e)));
    }
  }

  const store = await FindingStore.open(o.out);
  const status = new StatusLine(60_000);
  const live = new Map<string, string>();
  const show = () => status.update([...live.entries()].map(([k, v]) => `${k}: ${v}`).join(' | '));

  const runCell = async (cell: Cell): Promise<void> => {
    const setup = setups.get(cell.kernel);
    const runId = `${night.night} ${cell.name}`;
    const t0 = new Date();
    const base = { name: cell.name, index: cell.index, kernel: cell.kernel, seed: cell.seed, run_id: runId, started: t0.toISOString() };
    const zero = { programs: 0, checked_ops: 0, executed_ops: 0, reboots: 0, anomalies: 0, elapsed_ms: 0, boot_ms: 0 };
    if (!setup || setup instanceof Error) {
      night.cells.push({ ...base, ...zero, status: 'failed', error: safeLine(setup ? setup.message : 'not prepared', 400), finished: new Date().toISOString() });
      return;
    }
    const k = setup.kernel;
    const kernelFacts = { exact_spec: k.exactSpec, release: k.release, version: k.version, debian_version: k.debianVersion };
    let stats: FuzzStats | undefined;
    try {
      stats = await fuzzLoop(
        {
          seed: cell.seed,
          timeMs: timePerCell,
          ...(cfg.programs !== undefined ? { maxPrograms: cfg.programs } : {}),
          outDir: o.out,
          stateDir: join(o.out, 'cells', cell.name),
          kernel: { spec: k.exactSpec, release: k.release },
          profile: profileOf(k),
          store,
          generator: { weights: weightsFor(cfg.ops) },
          runId,
          shouldStop: o.shouldStop,
        },
        {
          boot: () => bootGuest(setup, `nightly-${cell.name}`, fuzzMachine(setup, profileOf(k))),
          onProgress: (s) => {
            const secs = Math.max(0.001, (s.elapsedMs - s.bootMs) / 1000);
            live.set(cell.name, `${s.programs} programs, ${(s.checkedOps / secs).toFixed(0)} checked ops/s, ${s.bugs} bugs first seen`);
            show();
          },
          onFinding: (_id, title, rec) => {
            if (rec.newBug) status.update(`${cell.name}: bug${rec.bugKnown ? ' (known issue)' : ''}: ${safeLine(title, 160)}  [${rec.bug}]`, true);
          },
          onAnomaly: (index, message) => warn(`${cell.name}: program ${index}: the agent reported something impossible (${safeLine(message, 200)}); rebooting`),
        },
      );
      const interrupted = o.shouldStop();
      night.cells.push({
        ...base,
        ...kernelFacts,
        status: interrupted ? 'interrupted' : 'ok',
        programs: stats.programs,
        checked_ops: stats.checkedOps,
        executed_ops: stats.executedOps,
        reboots: stats.reboots,
        anomalies: stats.anomalies,
        elapsed_ms: stats.elapsedMs,
        boot_ms: stats.bootMs,
        finished: new Date().toISOString(),
      });
    } catch (e) {
      warn(`${cell.name}: ${errorMessage(e)}`);
      night.cells.push({ ...base, ...kernelFacts, ...zero, status: 'failed', error: safeLine(errorMessage(e), 400), elapsed_ms: Date.now() - t0.getTime(), finished: new Date().toISOString() });
    } finally {
      live.delete(cell.name);
      await save();
    }
  };

  // cells run `jobs` at a time, in matrix order
  const queue = [...mine];
  await Promise.all(
    Array.from({ length: Math.min(cfg.jobs, queue.length) }, async () => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        if (o.shouldStop()) break;
        await runCell(c);
      }
    }),
  );
  status.done();
  night.cells.sort((a, b) => a.index - b.index);
  await save();

  if (cfg.repro.enabled && o.repro && o.newBugs && !o.shouldStop()) await reproduceNewBugs(cfg, o, night, save);
  night.finished = new Date().toISOString();
  await save();
  return night;
}

/** Reproduce the new bugs (one finding each: the bug's lead) within the night's repro time. */
async function reproduceNewBugs(cfg: NightlyConfig, o: RunNightOptions, night: NightRun, save: () => Promise<void>): Promise<void> {
  const store = await FindingStore.open(o.out);
  const todo = await o.newBugs!(store, night);
  const t0 = Date.now();
  for (const b of todo) {
    if (o.shouldStop()) break;
    if (night.repros.some((r) => r.bug === b.bug && r.status !== 'skipped' && r.status !== 'failed')) continue;
    const dir = join(store.dir, b.finding);
    const kernel = night.cells.find((c) => c.release === b.release)?.exact_spec;
    const left = cfg.repro.timeMs - (Date.now() - t0);
    const record = (r: Omit<ReproRecord, 'bug' | 'finding' | 'kernel'>) => {
      night.repros = night.repros.filter((x) => x.bug !== b.bug);
      night.repros.push({ bug: b.bug, finding: b.finding, kernel: kernel ?? b.release, ...r });
    };
    if (await exists(join(dir, 'repro.json'))) {
      record({ status: 'skipped', note: 'reproduced before (repro.json exists)', time_ms: 0 });
      continue;
    }
    if (!kernel || !(await exists(join(dir, 'program.json')))) {
      record({ status: 'skipped', note: kernel ? 'no program to reproduce' : `no cell ran ${b.release} tonight`, time_ms: 0 });
      continue;
    }
    if (left < 60_000) {
      record({ status: 'skipped', note: `the night's reproduction time (${fmtDuration(cfg.repro.timeMs)}) is used up`, time_ms: 0 });
      continue;
    }
    const budget = Math.min(cfg.repro.perBugMs, left);
    info(`reproducing new bug ${b.bug} on ${kernel} (at most ${fmtDuration(budget)} in all: minimization, confirmation, repro.c runs)`);
    const r0 = Date.now();
    try {
      const s = await o.repro!(dir, { runs: cfg.repro.runs, totalTimeMs: budget, kernel, ...(o.accel !== undefined ? { accel: o.accel } : {}) });
      const { hits, runs } = s.reliability;
      record({ ...reproOutcome(s), reliability: { hits, runs }, ops_before: s.ops_before, ops_after: s.ops_after, time_ms: Date.now() - r0 });
    } catch (e) {
      warn(`reproducing ${b.bug}: ${errorMessage(e)}`);
      record({ status: 'failed', note: safeLine(errorMessage(e), 300), time_ms: Date.now() - r0 });
    }
    await save();
  }
}
