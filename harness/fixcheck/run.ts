/**
 * A fix check on real guests: for each kernel, the stock uacce.ko and one built with the patch
 * (kernels/uacce-src.ts), every program of the kernel's series (regression entries, the ones its
 * known-issue list links, the seeds, findings of an output directory) run on both builds, then
 * fuzzing: the patched build for the given time, the unpatched build for as many programs of the
 * same stream (the plain stream, no feedback, so both run the same programs), and every title only
 * the patched build found replayed on both. The verdict is verdict.ts's.
 */
import { promises as fs } from 'node:fs';
import { basename, join } from 'node:path';
import { fetchKernel } from '../../kernels/index.js';
import type { KernelArtifacts } from '../../kernels/types.js';
import { kernelIdOf, profileOf } from '../commands/common.js';
import { loadKnownIssues, seriesOf } from '../findings/known.js';
import { FindingStore, type FindingCandidate } from '../findings/store.js';
import { fuzzLoop } from '../fuzz/loop.js';
import { parseProgram } from '../program/parse.js';
import type { Program } from '../program/types.js';
import { loadRegressCorpus } from '../repro/regress.js';
import { executeProgram, findingCandidates } from '../run/execute.js';
import type { AccelChoice } from '../vm/accel.js';
import { Guest, GuestBootError, prepareGuestImage, type GuestImage } from '../vm/guest.js';
import { readJsonIfExists } from '../util/fsx.js';
import { info, warn } from '../util/log.js';
import { projectRoot } from '../util/paths.js';
import { safeLine } from '../util/sanitize.js';
import { UserError } from '../util/errors.js';
import { sameTitle, type CaseEvidence, type CaseResult, type CaseSource, type ConfirmRuns, type FuzzOnly, type FuzzResult, type KernelCheck } from './verdict.js';

/** How often a program runs again on each build when the patched build gave a title the unpatched one did not. */
export const CONFIRM_RUNS = 2;

/** A program to run on both builds. */
export interface CheckCase {
  name: string;
  source: CaseSource;
  program: Program;
  recorded?: string;
}

/**
 * The programs of a kernel series: regression entries recorded on it or linked from its
 * known-issue list, the seeds, and the findings of `findingsDir` seen on that series; `only`
 * keeps the named ones.
 */
export async function casesForSeries(series: string, opts: { findingsDir?: string; only?: readonly string[] } = {}): Promise<CheckCase[]> {
  const known = await loadKnownIssues(series);
  const linked = new Set(known.issues.map((i) => /corpus\/regress\/([^/\s]+)\.json$/.exec(i.link ?? '')?.[1]).filter((x): x is string => x !== undefined));
  const out: CheckCase[] = [];
  for (const e of await loadRegressCorpus()) {
    if (e.recorded.series === series || linked.has(e.name)) out.push({ name: e.name, source: 'regress', program: e.program, recorded: e.outcome.title });
  }
  const seedDir = join(projectRoot(), 'corpus', 'seeds');
  for (const n of (await fs.readdir(seedDir)).filter((x) => x.endsWith('.json')).sort()) {
    const path = join(seedDir, n);
    out.push({ name: `seed:${n.slice(0, -5)}`, source: 'seed', program: parseProgram(await fs.readFile(path, 'utf8'), path) });
  }
  if (opts.findingsDir) {
    const dir = join(opts.findingsDir, 'findings');
    const ids = await fs.readdir(dir).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') throw new UserError(`--findings ${opts.findingsDir}: it has no findings/ directory; give a svadiff output directory`);
      throw e;
    });
    for (const id of ids.sort()) {
      const f = await readJsonIfExists<{ title?: unknown; kernels?: Record<string, unknown>; kernel?: { release?: unknown } }>(join(dir, id, 'finding.json')).catch(() => undefined);
      if (!f || typeof f.title !== 'string') continue;
      const releases = [...Object.keys(f.kernels ?? {}), ...(typeof f.kernel?.release === 'string' ? [f.kernel.release] : [])];
      if (!releases.some((r) => seriesOf(r) === series)) continue;
      const text = await fs.readFile(join(dir, id, 'program.json'), 'utf8').catch(() => undefined);
      if (text === undefined) continue;
      out.push({ name: id, source: 'finding', program: parseProgram(text, join(dir, id, 'program.json')), recorded: f.title });
    }
  }
  if (opts.only && opts.only.length > 0) {
    const unknown = opts.only.filter((n) => !out.some((c) => c.name === n));
    if (unknown.length > 0) throw new UserError(`--only: no program named ${unknown.join(', ')} for ${series}; the names are: ${out.map((c) => c.name).join(', ')}`);
    return out.filter((c) => opts.only!.includes(c.name));
  }
  return out;
}

export interface FixcheckOptions {
  patch: string;
  kernels: readonly string[];
  /** fuzzing time per build (0: no fuzzing) */
  timeMs: number;
  seed: number;
  runs: number;
  outDir: string;
  accel?: AccelChoice;
  findingsDir?: string;
  only?: readonly string[];
  onLine?: (line: string) => void;
}

/** Titles a program gave on a guest, rebooting it when the run left it in doubt. */
class Runner {
  private guest: Guest | undefined;
  private boots = 0;
  constructor(
    private readonly kernel: KernelArtifacts,
    private readonly image: GuestImage,
    private readonly logDir: string,
    private readonly what: string,
    private readonly accel?: AccelChoice,
  ) {}

  async boot(): Promise<Guest> {
    for (let attempt = 1; ; attempt++) {
      const consolePath = join(this.logDir, `${this.what}-${this.boots++}.console.log`);
      try {
        return await Guest.boot(this.kernel, this.image, { ...(this.accel ? { accel: this.accel } : {}), consolePath });
      } catch (e) {
        if (!(e instanceof GuestBootError) || attempt >= 3) throw e;
        warn(`${this.what}: boot ${attempt} failed (${safeLine(e.message, 200)}); trying again`);
      }
    }
  }

  async findings(program: Program, id: number): Promise<FindingCandidate[]> {
    this.guest ??= await this.boot();
    const r = await executeProgram(this.guest, id, program, profileOf(this.kernel));
    if (r.run && !r.run.started) throw new UserError(`the test device could not be set up for a program: ${r.run.finished?.msg ?? 'no answer'}`);
    if (r.check.anomaly) throw new Error(`the agent reported something impossible at op ${r.check.anomaly.index}: ${r.check.anomaly.message}`);
    const found = findingCandidates(r, kernelIdOf(this.kernel));
    if (r.needsReboot) await this.stop(true);
    return found;
  }

  async stop(kill = false): Promise<void> {
    const g = this.guest;
    this.guest = undefined;
    if (g) await (kill ? g.kill() : g.shutdown().catch(() => g.kill()));
  }
}

/** Most of a kernel report a fix check keeps (the report shows the first lines). */
const MAX_EXCERPT = 8 * 1024;

/** What a run showed of one title: where and how it diverged, or the kernel's report. */
function evidenceOf(c: FindingCandidate): CaseEvidence {
  const e: CaseEvidence = { title: c.title, kind: c.kind };
  if (c.opIndex !== undefined) e.opIndex = c.opIndex;
  if (c.kind === 'divergence') {
    if (c.expected !== undefined) e.expected = c.expected;
    if (c.observed !== undefined) e.observed = c.observed;
  } else if (c.excerpt) e.excerpt = c.excerpt.slice(0, MAX_EXCERPT);
  return e;
}

/** Per program: the titles of `runs` runs (union) and the first evidence of each. */
async function runCases(runner: Runner, cases: readonly CheckCase[], runs: number, onCase: (c: CheckCase, titles: string[]) => void): Promise<{ titles: string[]; evidence: CaseEvidence[] }[]> {
  const out: { titles: string[]; evidence: CaseEvidence[] }[] = [];
  let id = 1;
  try {
    for (const c of cases) {
      const seen: string[] = [];
      const evidence: CaseEvidence[] = [];
      for (let i = 0; i < runs; i++) {
        for (const f of await runner.findings(c.program, id++)) {
          if (seen.includes(f.title)) continue;
          seen.push(f.title);
          evidence.push(evidenceOf(f));
        }
      }
      onCase(c, seen);
      out.push({ titles: seen, evidence });
    }
  } finally {
    await runner.stop();
  }
  return out;
}

async function fuzzSide(k: KernelArtifacts, image: GuestImage, dir: string, seed: number, timeMs: number, maxPrograms: number | undefined, accel?: AccelChoice): Promise<{ store: FindingStore; programs: number }> {
  await fs.mkdir(join(dir, 'logs'), { recursive: true });
  const store = await FindingStore.open(dir);
  const runner = new Runner(k, image, join(dir, 'logs'), 'fuzz', accel);
  // the time is fuzzing time: the first guest is up before the loop's clock starts (a TCG boot
  // on a loaded host can take a minute)
  let first: Guest | undefined = await runner.boot();
  const stats = await fuzzLoop(
    { seed, timeMs, ...(maxPrograms !== undefined ? { maxPrograms } : {}), outDir: dir, kernel: kernelIdOf(k), profile: profileOf(k), store, fresh: true, feedback: false, shouldStop: () => false },
    {
      boot: async () => {
        const g = first ?? (await runner.boot());
        first = undefined;
        return g;
      },
    },
  ).finally(() => first?.kill());
  return { store, programs: stats.programs };
}

/** Check the patch on one kernel. */
export async function checkKernel(spec: string, o: FixcheckOptions): Promise<KernelCheck> {
  const say = o.onLine ?? (() => undefined);
  const t0 = Date.now();
  const stock = await fetchKernel(spec);
  const tb = Date.now();
  const patched = await fetchKernel(spec, { uacceSrc: o.patch });
  const buildMs = Date.now() - tb;
  const series = seriesOf(stock.release);
  if (!series) throw new Error(`internal: no series in ${stock.release}`);
  const cases = await casesForSeries(series, { ...(o.findingsDir ? { findingsDir: o.findingsDir } : {}), ...(o.only ? { only: o.only } : {}) });
  const kdir = join(o.outDir, stock.exactSpec.replace(/[^A-Za-z0-9.+-]/g, '_'));
  const logDir = join(kdir, 'logs');
  await fs.mkdir(logDir, { recursive: true });
  const images = { unpatched: await prepareGuestImage(stock), patched: await prepareGuestImage(patched) };

  info(`${stock.exactSpec}: ${cases.length} programs on the unpatched and the patched uacce (${o.runs} run${o.runs === 1 ? '' : 's'} each)`);
  const tr = Date.now();
  const results: Record<'unpatched' | 'patched', { titles: string[]; evidence: CaseEvidence[] }[]> = { unpatched: [], patched: [] };
  const confirms = new Map<string, ConfirmRuns[]>();
  for (const side of ['unpatched', 'patched'] as const) {
    const k = side === 'patched' ? patched : stock;
    results[side] = await runCases(new Runner(k, images[side], logDir, `replay-${side}`, o.accel), cases, o.runs, (c, titles) =>
      say(`  ${side.padEnd(9)} ${c.name}: ${titles.length ? titles.join('; ') : 'no finding'}`),
    );
  }
  // a title only one build gave: both builds run the program again, to tell a change the patch
  // made from a one-off (a guest timing out on an overloaded host)
  for (const [i, c] of cases.entries()) {
    const u = results.unpatched[i]!.titles;
    const p = results.patched[i]!.titles;
    const fresh = [...p.filter((t) => !u.some((x) => sameTitle(x, t))), ...u.filter((t) => !p.some((x) => sameTitle(x, t)))];
    if (fresh.length === 0) continue;
    const again = { unpatched: [] as string[][], patched: [] as string[][] };
    for (const side of ['unpatched', 'patched'] as const) {
      const k = side === 'patched' ? patched : stock;
      const runner = new Runner(k, images[side], logDir, `confirm-${side}`, o.accel);
      again[side] = (await runCases(runner, Array.from({ length: CONFIRM_RUNS }, () => c), 1, () => undefined)).map((r) => r.titles);
    }
    confirms.set(
      c.name,
      fresh.map((t) => ({ title: t, runs: CONFIRM_RUNS, patched: again.patched.filter((x) => x.some((y) => sameTitle(y, t))).length, unpatched: again.unpatched.filter((x) => x.some((y) => sameTitle(y, t))).length })),
    );
    for (const r of confirms.get(c.name)!) say(`  again     ${c.name}: ${r.title}: patched ${r.patched}/${r.runs}, unpatched ${r.unpatched}/${r.runs}`);
  }
  const replayMs = Date.now() - tr;
  const caseResults: CaseResult[] = cases.map((c, i) => ({
    name: c.name,
    source: c.source,
    ...(c.recorded ? { recorded: c.recorded } : {}),
    unpatched: results.unpatched[i]!.titles,
    patched: results.patched[i]!.titles,
    runs: o.runs,
    evidence: { unpatched: results.unpatched[i]!.evidence, patched: results.patched[i]!.evidence },
    ...(confirms.has(c.name) ? { confirm: confirms.get(c.name)! } : {}),
  }));

  let fuzz: FuzzResult | undefined;
  const tf = Date.now();
  if (o.timeMs > 0) {
    info(`${stock.exactSpec}: fuzzing the patched uacce for ${Math.round(o.timeMs / 1000)} s (seed ${o.seed}), then the unpatched one for as many programs`);
    const p = await fuzzSide(patched, images.patched, join(kdir, 'fuzz-patched'), o.seed, o.timeMs, undefined, o.accel);
    // the same programs: the time limit only guards against a build far slower than the other
    const u = p.programs > 0 ? await fuzzSide(stock, images.unpatched, join(kdir, 'fuzz-unpatched'), o.seed, o.timeMs * 4, p.programs, o.accel) : undefined;
    const pTitles = p.store.list().map((f) => f.title);
    const uTitles = u ? u.store.list().map((f) => f.title) : [];
    const knownUnpatched = [...uTitles, ...caseResults.flatMap((c) => c.unpatched)];
    const only = p.store.list().filter((f) => !knownUnpatched.includes(f.title));
    const patchedOnly: FuzzOnly[] = [];
    for (const f of only) {
      const progPath = join(kdir, 'fuzz-patched', 'findings', f.id, 'program.json');
      const program = parseProgram(await fs.readFile(progPath, 'utf8'), progPath);
      const one = { name: f.id, source: 'fuzz' as const, program };
      const [uu] = await runCases(new Runner(stock, images.unpatched, logDir, 'confirm-unpatched', o.accel), [one], o.runs, () => undefined);
      const [pp] = await runCases(new Runner(patched, images.patched, logDir, 'confirm-patched', o.accel), [one], o.runs, () => undefined);
      patchedOnly.push({ title: f.title, finding: f.id, replay: { unpatched: uu!.titles, patched: pp!.titles } });
    }
    fuzz = { timeMs: o.timeMs, seed: o.seed, programs: { patched: p.programs, unpatched: u?.programs ?? 0 }, patched: pTitles, unpatched: uTitles, patchedOnly };
  }
  const fuzzMs = Date.now() - tf;
  return {
    spec: stock.exactSpec,
    release: stock.release,
    uacce: { unpatched: stock.uacce?.text ?? 'the kernel\'s own uacce.ko', patched: patched.uacce?.text ?? basename(o.patch) },
    cases: caseResults,
    ...(fuzz ? { fuzz } : {}),
    times: { buildMs, replayMs, fuzzMs, totalMs: Date.now() - t0 },
  };
}
