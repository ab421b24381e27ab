/**
 * svadiff bisect, the part that makes kernels and runs guests:
 *
 *   - over Debian builds of one series: the archive's fetchable versions between --good and
 *     --bad, a binary search (plan.ts ListBisect), each step a fetch and N replays;
 *   - over a git range: `git bisect` in svadiff's private clone of the tree (the user's tree is
 *     never touched; kernels/source.ts), each step either only uacce.ko rebuilt from that
 *     commit's uacce sources (when the range touches nothing else, or only --paths) or the
 *     kernel rebuilt incrementally in its persistent build directory; a step that does not
 *     build is `git bisect skip`.
 *
 * Both ends are tested first: a bad end that does not reproduce, or a good end that does, ends
 * the bisection with that answer instead of inventing a boundary. bisect.json and bisect.log
 * are rewritten (atomically) after every step, so an interrupted run keeps its steps.
 */
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { fetchKernel, listAvailable, parseKernelSpec } from '../../kernels/index.js';
import { defaultModuleSources } from '../../kernels/fetch.js';
import { compareKernelVersions } from '../../kernels/debversion.js';
import { FRAGMENT_NAMES } from '../../kernels/kconfig.js';
import { checkKernelTree, commitSubject, git, gitTopLevel, privateClone, resolveRev } from '../../kernels/source.js';
import { checkFragments } from '../../kernels/spec.js';
import type { KernelArtifacts } from '../../kernels/types.js';
import { withUacceSource } from '../../kernels/uacce-src.js';
import { replay, type ReplayTarget } from '../repro/replay.js';
import type { AccelChoice } from '../vm/accel.js';
import { errorMessage, isUserError, UserError } from '../util/errors.js';
import { atomicWrite, atomicWriteJson } from '../util/fsx.js';
import { fmtDuration } from '../util/log.js';
import { safeLine } from '../util/sanitize.js';
import { confidenceOf, fixesLine, goodEndReproducesText, ListBisect, onlyUnder, shortId, UACCE_PATHS, verdictOf, verdictText, type BisectStep, type Confidence } from './plan.js';

export const BISECT_FORMAT = 'svadiff-bisect';

export interface BisectCommon {
  target: ReplayTarget;
  runs: number;
  /** bad when reproduced in at least this many of `runs` */
  threshold: number;
  accel?: AccelChoice;
  /** where bisect.json, bisect.log and the guests' console logs go */
  outDir: string;
  /** printed as the bisection goes */
  onLine?: (line: string) => void;
}

export interface DebianBisectOptions extends BisectCommon {
  good: string;
  bad: string;
}

export interface GitBisectOptions extends BisectCommon {
  tree: string;
  good: string;
  bad: string;
  /** the kernel each module-only step's uacce.ko is loaded into (default: the tree at --bad) */
  kernel?: string;
  /** paths whose changes a module-only step picks up (default: uacce's directory and headers) */
  paths?: string[];
  /** config fragments of full kernel builds */
  fragments?: string[];
  jobs?: number;
}

export type BisectOutcome =
  /** found: the first bad version or commit */
  | 'first-bad'
  /** the good end reproduces too */
  | 'good-reproduces'
  /** the bad end does not reproduce */
  | 'bad-does-not-reproduce'
  /** only skipped steps separate the last good from the first bad */
  | 'ambiguous';

export interface BisectReport {
  format: typeof BISECT_FORMAT;
  version: 1;
  mode: 'debian' | 'git';
  target: { path: string; kind: string; title: string | null };
  good: string;
  bad: string;
  runs: number;
  threshold: number;
  tree?: string;
  /** git: how the steps were built, and why */
  build_mode?: { mode: 'module' | 'kernel'; why: string; kernel?: string; paths: string[]; fragments: string[] };
  /** Debian: the versions in the range, oldest first */
  versions?: string[];
  steps: BisectStep[];
  outcome: BisectOutcome | null;
  /** one paragraph: the answer */
  conclusion: string;
  first_bad?: string;
  last_good?: string;
  subject?: string;
  fixes?: string;
  /** versions or commits only skipped steps separate */
  candidates?: string[];
  confidence?: Confidence;
  started: string;
  finished?: string;
  elapsed_ms?: number;
}

/** Writes bisect.json and bisect.log after every change. */
class BisectRecorder {
  private readonly log: string[] = [];
  private readonly t0 = Date.now();
  constructor(
    readonly dir: string,
    readonly report: BisectReport,
    private readonly onLine?: (line: string) => void,
  ) {}

  line(text: string): void {
    const l = `[${fmtDuration(Date.now() - this.t0)}] ${text}`;
    this.log.push(l);
    this.onLine?.(text);
  }

  async step(s: Omit<BisectStep, 'n'>): Promise<BisectStep> {
    const step: BisectStep = { n: this.report.steps.length + 1, ...s };
    this.report.steps.push(step);
    const what = `${shortId(step.id)}${step.subject ? ` ("${step.subject}")` : ''}`;
    this.line(
      `step ${step.n} (${step.role}) ${what}: ${verdictText(step)}; ${step.build === 'fetch' ? 'fetch' : step.build === 'module' ? 'uacce.ko' : 'kernel'} ${fmtDuration(step.build_ms)}, runs ${fmtDuration(step.test_ms)}, step ${fmtDuration(step.ms)}${step.titles.length ? `; seen: ${step.titles.join(' | ')}` : ''}`,
    );
    await this.save();
    return step;
  }

  async save(extraLog: string[] = []): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    await atomicWriteJson(join(this.dir, 'bisect.json'), this.report);
    await atomicWrite(join(this.dir, 'bisect.log'), [...this.log, ...extraLog].join('\n') + '\n');
  }

  async finish(outcome: BisectOutcome, conclusion: string, extraLog: string[] = []): Promise<BisectReport> {
    this.report.outcome = outcome;
    this.report.conclusion = conclusion;
    this.report.confidence = confidenceOf(this.report.steps, this.report.runs);
    this.report.finished = new Date().toISOString();
    this.report.elapsed_ms = Date.now() - this.t0;
    this.line(conclusion);
    if (outcome === 'first-bad' || outcome === 'ambiguous') this.line(`confidence ${this.report.confidence.statement}`);
    await this.save(extraLog);
    return this.report;
  }
}

/** Replay the target on one kernel: how many of the runs reproduced, and what was seen. */
async function testOn(kernel: KernelArtifacts, o: BisectCommon, label: string): Promise<{ reproduced: number; titles: string[]; ms: number }> {
  const t0 = Date.now();
  const r = await replay(o.target, kernel.exactSpec, {
    kernel,
    runs: o.runs,
    ...(o.accel ? { accel: o.accel } : {}),
    logDir: join(o.outDir, 'logs', label.replace(/[^A-Za-z0-9.+-]/g, '_')),
  });
  const titles = [...new Set(r.runs.flatMap((x) => x.titles))].map((t) => safeLine(t, 200));
  return { reproduced: r.reproduced, titles, ms: Date.now() - t0 };
}

function newReport(mode: 'debian' | 'git', o: BisectCommon, good: string, bad: string): BisectReport {
  return {
    format: BISECT_FORMAT,
    version: 1,
    mode,
    target: { path: o.target.path, kind: o.target.kind, title: o.target.title ?? null },
    good,
    bad,
    runs: o.runs,
    threshold: o.threshold,
    steps: [],
    outcome: null,
    conclusion: '',
    started: new Date().toISOString(),
  };
}

// ---------------------------------------------------------------------------------------------
// Debian versions of one series

export async function bisectDebian(o: DebianBisectOptions): Promise<BisectReport> {
  const good = parseKernelSpec(o.good);
  const bad = parseKernelSpec(o.bad);
  if (!good.version || !bad.version) throw new UserError('--good and --bad take exact Debian versions, e.g. --good debian:6.12.95 --bad debian:6.12.118 (see svadiff kernels list --available)');
  if (good.series !== bad.series) throw new UserError(`--good ${o.good} and --bad ${o.bad} are of different series; bisect within one series (Debian builds of different series share no history)`);
  if (compareKernelVersions(good.version, bad.version) >= 0) throw new UserError(`--good ${o.good} is not older than --bad ${o.bad}`);
  const series = (await listAvailable()).find((s) => s.series === good.series);
  const fetchable = (series?.versions ?? []).filter((v) => v.fetchable).map((v) => v.version).sort(compareKernelVersions);
  for (const [flag, v] of [['--good', good.version], ['--bad', bad.version]] as const) {
    if (!fetchable.includes(v)) throw new UserError(`${flag} debian:${v} is not fetchable from Debian's archive; fetchable ${good.series} versions: ${fetchable.join(', ') || 'none'}`);
  }
  const versions = fetchable.filter((v) => compareKernelVersions(v, good.version!) >= 0 && compareKernelVersions(v, bad.version!) <= 0);
  const report = newReport('debian', o, `debian:${good.version}`, `debian:${bad.version}`);
  report.versions = versions;
  const rec = new BisectRecorder(o.outDir, report, o.onLine);
  rec.line(`bisecting ${o.target.path} over ${versions.length} Debian ${good.series} versions (${versions.join(', ')}); ${o.runs} runs per step, bad when reproduced in ${o.threshold}+`);
  if (o.target.title) rec.line(`reproduced means: ${o.target.title}`);

  const test = async (version: string, role: BisectStep['role']): Promise<BisectStep> => {
    const t0 = Date.now();
    let kernel: KernelArtifacts;
    try {
      kernel = await fetchKernel(`debian:${version}`);
    } catch (e) {
      if (!isUserError(e)) throw e;
      return rec.step({ role, id: `debian:${version}`, build: 'fetch', verdict: 'skip', reproduced: 0, runs: 0, flaky: false, note: `not usable: ${safeLine(errorMessage(e), 200)}`, titles: [], build_ms: Date.now() - t0, test_ms: 0, ms: Date.now() - t0 });
    }
    const buildMs = Date.now() - t0;
    const r = await testOn(kernel, o, `debian-${version}`);
    const v = verdictOf(r.reproduced, o.runs, o.threshold);
    return rec.step({ role, id: `debian:${version}`, build: 'fetch', verdict: v.verdict, reproduced: r.reproduced, runs: o.runs, flaky: v.flaky, titles: r.titles, build_ms: buildMs, test_ms: r.ms, ms: Date.now() - t0 });
  };

  const badEnd = await test(bad.version, 'bad end');
  if (badEnd.verdict !== 'bad') {
    const why = badEnd.verdict === 'skip' ? `could not be tested (${badEnd.note})` : `does not reproduce it (${badEnd.reproduced} of ${o.runs})`;
    return rec.finish('bad-does-not-reproduce', `--bad debian:${bad.version} ${why}: nothing to bisect`);
  }
  const goodEnd = await test(good.version, 'good end');
  if (goodEnd.verdict === 'skip') return rec.finish('ambiguous', `--good debian:${good.version} could not be tested (${goodEnd.note}); pick another good version`);
  if (goodEnd.verdict === 'bad') {
    const unusableOlder = (series?.versions ?? [])
      .filter((v) => !v.fetchable && fetchable[0] !== undefined && compareKernelVersions(v.version, fetchable[0]) < 0)
      .map((v) => v.version)
      .sort(compareKernelVersions);
    const conclusion = goodEndReproducesText({ series: good.series, good: good.version, bad: bad.version, reproduced: goodEnd.reproduced, runs: o.runs, fetchable, unusableOlder });
    return rec.finish('good-reproduces', conclusion);
  }

  const search = new ListBisect(versions);
  for (let i = search.next(); i !== undefined; i = search.next()) {
    const step = await test(versions[i]!, 'step');
    search.record(i, step.verdict);
  }
  const res = search.result();
  report.first_bad = `debian:${res.firstBad}`;
  report.last_good = `debian:${res.lastGood}`;
  if (res.between.length > 0) {
    report.candidates = [...res.between, res.firstBad].map((v) => `debian:${v}`);
    return rec.finish('ambiguous', `the first bad version is one of ${report.candidates.join(', ')} (between them the versions could not be tested); last good debian:${res.lastGood}`);
  }
  return rec.finish('first-bad', `first bad version: debian:${res.firstBad} (last good: debian:${res.lastGood})`);
}

// ---------------------------------------------------------------------------------------------
// A git range

/** Extract the uacce sources of a commit (git archive) into dest, as a tree --uacce-src reads. */
async function uacceSourcesAt(clone: string, commit: string, paths: readonly string[], dest: string): Promise<void> {
  await fs.rm(dest, { recursive: true, force: true });
  await fs.mkdir(dest, { recursive: true });
  const present: string[] = [];
  for (const p of paths) {
    const r = await git(clone, ['cat-file', '-e', `${commit}:${p.replace(/\/$/, '')}`]);
    if (r.code === 0) present.push(p.replace(/\/$/, ''));
  }
  if (present.length === 0) throw new UserError(`${shortId(commit)} has none of ${paths.join(', ')}`);
  const r = await execa('git', ['-C', clone, 'archive', '--format=tar', commit, '--', ...present], { reject: false, buffer: { stdout: false } }).pipe(
    'tar',
    ['-x', '-f', '-', '-C', dest],
    { reject: false },
  );
  const failed = [r, ...r.pipedFrom].find((p) => p.exitCode !== 0);
  if (failed) throw new Error(`git archive ${commit} failed: ${safeLine(String(failed.stderr ?? ''), 200)}`);
}

/** Parse `git bisect good|bad|skip|start` output: the first bad commit, or the skipped-only candidates. */
export function parseBisectOutput(out: string): { firstBad?: string; candidates?: string[] } {
  const m = /^([0-9a-f]{40,64}) is the first bad commit/m.exec(out);
  if (m) return { firstBad: m[1]! };
  if (/There are only 'skip'ped commits left to test/.test(out)) {
    const candidates = [...out.matchAll(/^([0-9a-f]{40,64})$/gm)].map((x) => x[1]!);
    return { candidates };
  }
  return {};
}

export async function bisectGit(o: GitBisectOptions): Promise<BisectReport> {
  const top = await gitTopLevel(o.tree);
  const good = await resolveRev(top, o.good);
  const bad = await resolveRev(top, o.bad);
  if (good === bad) throw new UserError('--good and --bad are the same commit');
  if ((await git(top, ['merge-base', '--is-ancestor', good, bad])).code !== 0) {
    throw new UserError(`--good ${o.good} is not an ancestor of --bad ${o.bad} in ${top}; give a good commit older than the bad one`);
  }
  const fragments = checkFragments(o.fragments ?? [], FRAGMENT_NAMES, '--fragments');
  const paths = o.paths && o.paths.length > 0 ? o.paths : [...UACCE_PATHS];
  const changed = (await git(top, ['diff', '--name-only', good, bad], { reject: true })).out.split('\n').filter(Boolean);
  const under = onlyUnder(changed, paths);
  const moduleOnly = under.ok;
  const report = newReport('git', o, good, bad);
  report.tree = top;
  const rec = new BisectRecorder(o.outDir, report, o.onLine);
  const src = defaultModuleSources();

  let baseKernel: KernelArtifacts | undefined;
  let why: string;
  if (moduleOnly) {
    why = `the range changes only ${paths.join(', ')} (${changed.length} file${changed.length === 1 ? '' : 's'}): each step rebuilds only uacce.ko`;
    let kernelSpec = o.kernel;
    if (kernelSpec === undefined) {
      try {
        await checkKernelTree(top, bad, o.bad);
      } catch {
        throw new UserError(`${top} is not a kernel tree, so it cannot give the kernel to load each step's uacce.ko into: add --kernel (e.g. --kernel debian:6.12)`);
      }
      kernelSpec = `git:${top}@${bad}${fragments.map((f) => `+${f}`).join('')}`;
    }
    rec.line(`kernel for the module-only steps: ${kernelSpec}`);
    baseKernel = await fetchKernel(kernelSpec, o.jobs ? { jobs: o.jobs } : {});
    if (baseKernel.uacce?.builtin) throw new UserError(`${baseKernel.exactSpec} has uacce built in; a module-only bisection needs a kernel with uacce as a module (drop +uacce-builtin)`);
  } else {
    why = `the range changes files outside ${paths.join(', ')} (e.g. ${under.outside.slice(0, 3).join(', ')}): each step rebuilds the kernel (incrementally)`;
    if (o.kernel !== undefined) throw new UserError(`--kernel only applies when the range changes nothing but ${paths.join(', ')}; this one also changes ${under.outside.slice(0, 3).join(', ')} (add those to --paths to force module-only steps)`);
    await checkKernelTree(top, bad, o.bad);
  }
  report.build_mode = { mode: moduleOnly ? 'module' : 'kernel', why, ...(baseKernel ? { kernel: baseKernel.exactSpec } : {}), paths, fragments };
  rec.line(`bisecting ${o.target.path} over ${top} ${shortId(good)}..${shortId(bad)}; ${why}; ${o.runs} runs per step`);
  if (o.target.title) rec.line(`reproduced means: ${o.target.title}`);

  const clone = await privateClone(top);
  const work = join(o.outDir, '.uacce-tree');

  const test = async (commit: string, role: BisectStep['role']): Promise<BisectStep> => {
    const t0 = Date.now();
    const subject = await commitSubject(top, commit);
    let kernel: KernelArtifacts;
    try {
      if (baseKernel) {
        await uacceSourcesAt(clone, commit, paths, work);
        kernel = await withUacceSource(baseKernel, work, src, { label: `uacce.c: ${top} at ${shortId(commit)}` });
      } else {
        kernel = await fetchKernel(`git:${top}@${commit}${fragments.map((f) => `+${f}`).join('')}`, o.jobs ? { jobs: o.jobs } : {});
      }
    } catch (e) {
      if (!isUserError(e)) throw e;
      return rec.step({ role, id: commit, subject, build: baseKernel ? 'module' : 'kernel', verdict: 'skip', reproduced: 0, runs: 0, flaky: false, note: `did not build: ${safeLine(errorMessage(e), 200)}`, titles: [], build_ms: Date.now() - t0, test_ms: 0, ms: Date.now() - t0 });
    }
    const buildMs = Date.now() - t0;
    const r = await testOn(kernel, o, shortId(commit));
    const v = verdictOf(r.reproduced, o.runs, o.threshold);
    return rec.step({ role, id: commit, subject, build: baseKernel ? 'module' : 'kernel', verdict: v.verdict, reproduced: r.reproduced, runs: o.runs, flaky: v.flaky, titles: r.titles, build_ms: buildMs, test_ms: r.ms, ms: Date.now() - t0 });
  };

  try {
    const badEnd = await test(bad, 'bad end');
    if (badEnd.verdict !== 'bad') {
      const how = badEnd.verdict === 'skip' ? `could not be tested (${badEnd.note})` : `does not reproduce it (${badEnd.reproduced} of ${o.runs})`;
      return await rec.finish('bad-does-not-reproduce', `--bad ${o.bad} (${shortId(bad)}) ${how}: nothing to bisect`);
    }
    const goodEnd = await test(good, 'good end');
    if (goodEnd.verdict === 'skip') return await rec.finish('ambiguous', `--good ${o.good} (${shortId(good)}) could not be tested (${goodEnd.note}); pick another good commit`);
    if (goodEnd.verdict === 'bad') {
      return await rec.finish('good-reproduces', `--good ${o.good} (${shortId(good)}) already reproduces it (${goodEnd.reproduced} of ${o.runs}); give an older good commit`);
    }

    await git(clone, ['bisect', 'reset', '--quiet']);
    const start = await git(clone, ['bisect', 'start', '--no-checkout', bad, good]);
    if (start.code !== 0) throw new Error(`git bisect start failed: ${safeLine(start.err, 300)}`);
    let state = parseBisectOutput(start.out);
    for (let guard = 0; !state.firstBad && !state.candidates && guard < 64; guard++) {
      const cand = (await git(clone, ['rev-parse', 'BISECT_HEAD'], { reject: true })).out;
      const step = await test(cand, 'step');
      const r = await git(clone, ['bisect', step.verdict, cand]);
      if (r.code !== 0) throw new Error(`git bisect ${step.verdict} failed: ${safeLine(r.err, 300)}`);
      state = parseBisectOutput(r.out);
    }
    const gitLog = (await git(clone, ['bisect', 'log'])).out.split('\n');
    const extra = ['', '# git bisect log (in svadiff\'s private clone of the tree):', ...gitLog];
    if (state.candidates) {
      report.candidates = state.candidates;
      return await rec.finish('ambiguous', `the first bad commit is one of ${state.candidates.map(shortId).join(', ')} (the others could not be built)`, extra);
    }
    const first = state.firstBad;
    if (!first) throw new Error('git bisect did not converge within 64 steps');
    const subject = await commitSubject(top, first);
    report.first_bad = first;
    report.subject = subject;
    report.fixes = fixesLine(first, subject);
    return await rec.finish('first-bad', `first bad commit: ${first} ("${subject}")\n${report.fixes}`, extra);
  } finally {
    await git(clone, ['bisect', 'reset', '--quiet']);
    await fs.rm(work, { recursive: true, force: true });
  }
}
