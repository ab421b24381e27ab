/**
 * svadiff repro <finding-dir> [--kernel K] [--runs 5] [--no-minimize]
 *
 * Turns a finding into a report a kernel developer can act on, next to the finding:
 *   program.min.json  the program, minimized on a real guest (harness/repro/minimize.ts)
 *   repro.c           a standalone C reproducer of it, with the model's expected outcomes
 *   report.txt        the bug report (harness/repro/report.ts)
 *   repro.json        ops before/after, minimization time and runs, reliability k/N, QEMU's
 *                     exact command (report.txt names its files without this machine's paths)
 * repro.c is verified on a fresh guest --runs times. A finding that does not reproduce is
 * reported as flaky with its measured rate, never dropped and never called reliable. Every file
 * is written atomically, repro.json last: its presence means the directory is complete.
 */
import { promises as fs } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { FindingStore, programLog, type Finding, type FindingBug } from '../findings/store.js';
import { seriesOf } from '../findings/known.js';
import { profileFor, type KernelProfile } from '../model/index.js';
import { formatOutcomeSet } from '../program/outcome.js';
import { formatProgram, parseProgram } from '../program/parse.js';
import type { Program } from '../program/types.js';
import { generateC, modelExpectations } from '../repro/csource.js';
import { ReproBudget } from '../repro/budget.js';
import { GuestTester, findingSignature, minimize, type MinimizeResult, type Trial } from '../repro/minimize.js';
import { readPreceding, reducePreceding, replayAfterPreceding, type ReducedPreceding, type SequenceResult, type SequenceTester } from '../repro/preceding.js';
import { findingCandidates } from '../run/execute.js';
import { REGRESS_FORMAT, REGRESS_VERSION, type RegressEntry } from '../repro/regress.js';
import { REPRO_CFLAGS, replay } from '../repro/replay.js';
import type { BisectReport } from '../bisect/run.js';
import { fixCheckForFinding } from '../fixcheck/verdict.js';
import { FIXCHECK_FORMAT, type FixcheckFile } from './fixcheck.js';
import { loadSemanticsSheet, reliabilityText, renderReport, reportPathNames, type ReportInput } from '../repro/report.js';
import { errorMessage, UserError } from '../util/errors.js';
import { atomicWrite, atomicWriteJson, readJsonIfExists } from '../util/fsx.js';
import { fmtDuration, info, warn } from '../util/log.js';
import { cacheDir } from '../util/paths.js';
import { guestCompiler } from '../../guest/build.js';
import type { Arch } from '../../kernels/types.js';
import { safeLine } from '../util/sanitize.js';
import { machineForDevice } from '../vm/machine.js';
import { readFinding } from './known.js';
import { bootGuest, kernelIdOf, parseDuration, parseIntOption, prepare, profileOf, setupFor, type GuestSetup } from './common.js';

export const REPRO_FORMAT = 'svadiff-repro';
export const REPRO_VERSION = 1;
/** confirmation runs of the minimized program (the minimizer's default, named for the budget) */
const CONFIRM_RUNS = 3;

const USAGE = 'usage: svadiff repro <finding-dir> [--kernel K] [--uacce-src S] [--runs 5] [--no-minimize] [--max-runs 400] [--max-time 20m] [--total-time T]';

/** A finding directory as the store wrote it: finding.json and program.json. */
export async function readFindingDir(dir: string): Promise<{ finding: Finding; program: Program }> {
  const finding = await readFinding(dir);
  const ppath = join(dir, 'program.json');
  let ptext: string;
  try {
    ptext = await fs.readFile(ppath, 'utf8');
  } catch {
    throw new UserError(`${ppath} is missing: this finding has no program to reproduce (crashes seen outside a program cannot be minimized)`);
  }
  return { finding, program: parseProgram(ptext, ppath) };
}

export interface ReproSummary {
  format: typeof REPRO_FORMAT;
  version: typeof REPRO_VERSION;
  finding: string;
  kind: string;
  title: string;
  kernel: { spec: string; release: string; config_sha256: string };
  minimized: boolean;
  ops_before: number;
  ops_after: number;
  minimization: {
    time_ms: number;
    runs: number;
    stopped_by: string | null;
    fast_check: string;
    rolled_back: number;
    passes: MinimizeResult['passes'];
    /** re-runs of the minimized program through the agent */
    confirm: { hits: number; runs: number };
  } | null;
  reliability: { hits: number; runs: number; flaky: boolean; what: string };
  /** the title repro.c was checked against (the minimized program's own) */
  repro_title: string;
  /** one line per run of repro.c */
  repro_runs: string[];
  /** QEMU exactly as it ran here (report.txt shows it with file names instead of these paths) */
  qemu?: { argv: string[]; kernel_image: string; initrd: string };
  verify_error?: string;
  /** the original program showed the finding again at all */
  reproduced: boolean;
  /** crashes whose program alone did not reproduce: the same program after preceding.json's */
  after_preceding?: {
    what: string;
    programs: number;
    hits: number;
    runs: number;
    shown_by: (number | null)[];
    runs_detail: string[];
    /** the preceding programs it needs (preceding.min.json) and how that sequence did */
    reduced?: { file: string; programs: number; origins: string[]; time_ms: number; runs: number; stopped_by_time: boolean; hits: number; confirm_runs: number };
  };
  /** the whole reproduction: its wall time, and its budget (--total-time, a nightly's per-bug time) */
  time: { total_ms: number; budget_ms: number | null };
  created: string;
}

export async function cmdRepro(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      kernel: { type: 'string' },
      runs: { type: 'string' },
      'no-minimize': { type: 'boolean' },
      'max-runs': { type: 'string' },
      'max-time': { type: 'string' },
      'total-time': { type: 'string' },
      accel: { type: 'string' },
      'uacce-src': { type: 'string' },
    },
  });
  if (positionals.length !== 1) throw new UserError(USAGE);
  const dir = resolve(positionals[0]!);
  const runs = parseIntOption('runs', values.runs, 1, 100) ?? 5;
  const maxRuns = parseIntOption('max-runs', values['max-runs'], 1, 100_000);
  const maxTimeMs = values['max-time'] !== undefined ? parseDuration(values['max-time']) : undefined;
  const totalTimeMs = values['total-time'] !== undefined ? parseDuration(values['total-time']) : undefined;
  const r = await reproFinding(dir, {
    runs,
    ...(totalTimeMs !== undefined ? { totalTimeMs } : {}),
    ...(maxRuns !== undefined ? { maxRuns } : {}),
    ...(maxTimeMs !== undefined ? { maxTimeMs } : {}),
    ...(values.kernel !== undefined ? { kernel: values.kernel } : {}),
    ...(values.accel !== undefined ? { accel: values.accel } : {}),
    ...(values['uacce-src'] !== undefined ? { uacceSrc: values['uacce-src'] } : {}),
    noMinimize: values['no-minimize'] ?? false,
  });
  return r.verify_error ? 1 : 0;
}

export interface ReproOptions {
  /** runs of repro.c (and of the preceding-program replays) */
  runs: number;
  maxRuns?: number;
  /** the minimizer's (and the preceding reduction's) time budget */
  maxTimeMs?: number;
  /**
   * the whole reproduction's time budget: search, preceding replays, confirmation and repro.c
   * runs (harness/repro/budget.ts); the search gets what the rest is estimated not to need
   */
  totalTimeMs?: number;
  /** the kernel to reproduce on (default: the finding's) */
  kernel?: string;
  accel?: string;
  /** --uacce-src: a uacce built from the user's source (kernels/uacce-src.ts) */
  uacceSrc?: string;
  noMinimize?: boolean;
}

/**
 * Reproduce one finding (see the top of this file) and write its files. The titles the
 * reproduction runs showed besides the finding's own become grouping evidence in the finding's
 * store (findings/bugs.ts), and report.txt lists every title of the bug and why.
 */
export async function reproFinding(dir: string, o: ReproOptions): Promise<ReproSummary> {
  const { runs, maxRuns, maxTimeMs } = o;
  const values = { 'no-minimize': o.noMinimize ?? false };
  const { finding, program } = await readFindingDir(dir);
  const t0 = Date.now();
  const budget = new ReproBudget(o.totalTimeMs, finding.kind !== 'divergence');

  // logs of the guests go where the fuzzing run keeps its logs (<out>/logs), else next to the finding
  const inStore = basename(dirname(dir)) === 'findings';
  const outDir = inStore ? dirname(dirname(dir)) : dir;
  const setup = await setupFor(await prepare(o.kernel ?? finding.kernel.spec, o.accel, outDir, o.uacceSrc), program);
  const profile = profileOf(setup.kernel);
  const kernelId = kernelIdOf(setup.kernel);
  const sig = findingSignature(finding, program);
  info(`finding ${finding.id}: ${safeLine(finding.title, 160)}`);
  info(`signature: ${safeLine(sig.key, 160)}; kernel ${kernelId.spec} (${kernelId.release})`);

  const preceding = await readPreceding(dir);
  let afterPreceding: SequenceResult | undefined;
  let reduced: (ReducedPreceding & { confirm: SequenceResult }) | undefined;
  const machine = machineForDevice(setup.kernel.arch, program.device).name;
  const guestTester = new GuestTester({ boot: () => bootGuest(setup, 'repro', { machine }), profile, kernel: kernelId, budget });
  if (o.totalTimeMs !== undefined) info(`time budget of the whole reproduction: ${fmtDuration(o.totalTimeMs)} (the search gets what confirmation and ${runs} repro.c runs are estimated not to need)`);
  const tester = new TitleRecorder(guestTester, kernelId);
  let min: MinimizeResult;
  try {
    min = await minimize(program, sig, tester, {
      ...(values['no-minimize'] ? { noSearch: true } : {}),
      ...(maxRuns !== undefined ? { maxRuns } : {}),
      ...(maxTimeMs !== undefined ? { maxTimeMs } : {}),
      ...(o.totalTimeMs !== undefined ? { timeLeftMs: () => budget.searchLeftMs(CONFIRM_RUNS, runs) } : {}),
      confirmRuns: CONFIRM_RUNS,
      profile,
      onProgress: (m) => info(m),
    });
    const replayNeedMs = budget.sequenceRunsMs(runs, preceding.length + 1) + budget.reproRunsMs(runs);
    const needsPreceding = !min.reproduced && finding.kind !== 'divergence' && preceding.length > 0;
    if (needsPreceding && budget.leftMs() < replayNeedMs) {
      warn(`the program alone did not show it, and ${fmtDuration(Math.max(0, budget.leftMs()))} of the time budget is too little to replay it after the ${preceding.length} preceding programs (about ${fmtDuration(replayNeedMs)}); run svadiff repro on this finding with more --total-time`);
    } else if (needsPreceding) {
      info(`the program alone did not show it; replaying it after the ${preceding.length} programs the guest ran before it since boot (preceding.json), ${runs} times`);
      afterPreceding = await replayAfterPreceding(preceding, program, sig, tester, runs, (m) => info(m));
      if (afterPreceding.hits === afterPreceding.runs && preceding.length > 1) {
        info(`reproduced every time; dropping the preceding programs it does not need (one run each)`);
        // keep time for confirming the reduced sequence and for repro.c
        const reduceLeft = budget.searchLeftMs(0, runs) - budget.sequenceRunsMs(runs, preceding.length + 1);
        const r = await reducePreceding(preceding, program, sig, tester, { maxTimeMs: Math.min(maxTimeMs ?? 10 * 60_000, Math.max(0, reduceLeft)), onProgress: (m) => info(m) });
        const confirm = await replayAfterPreceding(r.kept, program, sig, tester, runs, (m) => info(m));
        reduced = { ...r, confirm };
        info(`${r.kept.length} of ${preceding.length} preceding programs needed (${fmtDuration(r.timeMs)}, ${r.runs} runs); with them it reproduced ${confirm.hits}/${confirm.runs}`);
        await atomicWriteJson(join(dir, 'preceding.min.json'), programLog(r.kept, 'the preceding programs svadiff repro found the finding needs, oldest first; run them, then program.json, on one guest'));
      }
    }
  } finally {
    await tester.close();
  }
  if (!min.reproduced) warn(`the finding's program did not show "${safeLine(finding.title, 120)}" in ${min.confirm.runs} runs; reporting it as flaky, unminimized`);
  else if (values['no-minimize']) info(`not minimized (--no-minimize); the program showed it in ${min.confirm.hits}/${min.confirm.runs} runs`);
  else info(`minimized ${min.opsBefore} -> ${min.opsAfter} ops in ${fmtDuration(min.timeMs)} (${min.runs} runs); the minimized program reproduced ${min.confirm.hits}/${min.confirm.runs}`);

  const minProgram: Program = { ...min.program, comment: `minimized from ${finding.id}${program.comment ? ` (${program.comment})` : ''}` };
  await atomicWrite(join(dir, 'program.min.json'), formatProgram(minProgram));

  const witness = min.witness;
  const d = witness?.result?.check.divergence;
  // the minimized program's own title: a divergence may have moved to another rule
  const title = d?.title ?? finding.title;
  const reproRuns = budget.reproRunsThatFit(runs);
  if (reproRuns < runs) warn(`the time budget leaves room for ${reproRuns} of the ${runs} runs of repro.c (about ${fmtDuration(budget.reproRunsMs(1))} each)`);
  const verify = await verifyReproducer(dir, setup, profile, minProgram, title, reproRuns);
  const reliability = verify.reliability;
  const bug = await recordReproEvidence(dir, inStore ? outDir : undefined, finding, minProgram, preceding, tester);

  const semantics = await loadSemanticsSheet();
  const reportInput: ReportInput = {
    kind: finding.kind,
    title: finding.title,
    findingId: finding.id,
    kernel: {
      exactSpec: setup.kernel.exactSpec,
      version: setup.kernel.version,
      release: setup.kernel.release,
      debianVersion: setup.kernel.debianVersion,
      arch: setup.kernel.arch,
      configHash: setup.kernel.configHash,
      compiler: setup.kernel.compiler,
      ...(setup.kernel.uacce ? { uacce: setup.kernel.uacce.text } : {}),
    },
    ...(guestTester.qemu ? { qemu: { commandLine: guestTester.qemu.portable, kernelFile: guestTester.qemu.kernelFile, initrdFile: guestTester.qemu.initrdFile } } : {}),
    pathNames: reportPathNames({ uacceKo: setup.kernel.modules.uacce, testModuleKo: setup.kernel.modules.svadiffTest, cache: cacheDir(), home: homedir() }),
    program: minProgram,
    expected: expectedTexts(minProgram, profile),
    bootModules: [...setup.kernel.extraModules.map((p) => p.split('/').pop()!), ...(setup.kernel.uacce?.builtin ? [] : ['uacce.ko'])],
    reliability,
    minimization: {
      opsBefore: min.opsBefore,
      opsAfter: min.opsAfter,
      runs: min.runs,
      timeMs: min.timeMs,
      note: [
        `${values['no-minimize'] ? 'the program' : 'the minimized program'} showed it again in ${min.confirm.hits}/${min.confirm.runs} runs through the agent`,
        ...(min.stoppedBy ? [`the search stopped at its ${min.stoppedBy} budget`] : []),
      ].join('; '),
      ...(values['no-minimize'] ? { skipped: true } : {}),
    },
    howToRun: verify.howToRun,
    ...(afterPreceding
      ? {
          afterPreceding: {
            programs: afterPreceding.programs,
            hits: afterPreceding.hits,
            runs: afterPreceding.runs,
            shownBy: afterPreceding.shownBy,
            ...(reduced
              ? { reduced: { origins: reduced.kept.map((p, i) => p.comment ?? `program ${i + 1}`), timeMs: reduced.timeMs, stoppedByTime: reduced.stoppedByTime, hits: reduced.confirm.hits, runs: reduced.confirm.runs } }
              : {}),
          },
        }
      : {}),
    semantics,
    ...(program.comment ? { origin: program.comment } : {}),
    ...(bug && bug.titles.length > 1 ? { bug: { titles: bug.titles, why: bug.why } } : {}),
  };
  Object.assign(reportInput, await reportExtras(dir, inStore ? outDir : undefined, finding));
  if (d) reportInput.divergence = { index: d.index, expected: d.expected, observed: d.observed, rules: d.rules, stateBefore: d.stateBefore };
  else if (finding.kind === 'divergence' && finding.op_index !== undefined && !min.reproduced) {
    reportInput.divergence = { index: finding.op_index, expected: finding.expected, observed: finding.observed, rules: (finding.rule ?? '').split(', ').filter(Boolean) };
  }
  const kernelReport = kernelReportOf(witness, finding.title) ?? (await fs.readFile(join(dir, 'dmesg.txt'), 'utf8').catch(() => undefined));
  if (finding.kind !== 'divergence' && kernelReport) reportInput.kernelReport = kernelReport;
  else if (witness?.result?.reports.length) reportInput.kernelReport = witness.result.reports.map((r) => r.excerpt).join('\n');
  await atomicWrite(join(dir, 'report.txt'), renderReport(reportInput));

  const summary: ReproSummary = {
    format: REPRO_FORMAT,
    version: REPRO_VERSION,
    finding: finding.id,
    kind: finding.kind,
    title: finding.title,
    kernel: { spec: kernelId.spec, release: kernelId.release, config_sha256: setup.kernel.configHash },
    minimized: !values['no-minimize'] && min.reproduced,
    ops_before: min.opsBefore,
    ops_after: min.opsAfter,
    minimization: values['no-minimize']
      ? null
      : {
          time_ms: min.timeMs,
          runs: min.runs,
          stopped_by: min.stoppedBy ?? null,
          fast_check: min.fastCheck,
          rolled_back: min.rolledBack,
          passes: min.passes,
          confirm: min.confirm,
        },
    reliability: { ...reliability, flaky: reliability.runs === 0 || reliability.hits < reliability.runs },
    ...(afterPreceding
      ? {
          after_preceding: {
            what: 'preceding.json then program.json, on a fresh guest, through the agent',
            programs: afterPreceding.programs,
            hits: afterPreceding.hits,
            runs: afterPreceding.runs,
            shown_by: afterPreceding.shownBy,
            runs_detail: afterPreceding.lines,
            ...(reduced
              ? {
                  reduced: {
                    file: 'preceding.min.json',
                    programs: reduced.kept.length,
                    origins: reduced.kept.map((p) => p.comment ?? ''),
                    time_ms: reduced.timeMs,
                    runs: reduced.runs,
                    stopped_by_time: reduced.stoppedByTime,
                    hits: reduced.confirm.hits,
                    confirm_runs: reduced.confirm.runs,
                  },
                }
              : {}),
          },
        }
      : {}),
    repro_title: title,
    repro_runs: verify.runs,
    ...(guestTester.qemu ? { qemu: { argv: guestTester.qemu.argv, kernel_image: guestTester.qemu.kernelImage, initrd: guestTester.qemu.initrd } } : {}),
    ...(verify.error ? { verify_error: verify.error } : {}),
    reproduced: min.reproduced,
    time: { total_ms: budget.elapsedMs(), budget_ms: o.totalTimeMs ?? null },
    created: new Date().toISOString(),
  };
  if (min.reproduced && reliability.runs > 0 && reliability.hits === reliability.runs) {
    await atomicWriteJson(join(dir, 'regress.json'), regressCandidate(finding, title, minProgram, kernelId, reliability, program.comment));
  }
  await atomicWriteJson(join(dir, 'repro.json'), summary);

  process.stdout.write(
    `${finding.id}: ${min.opsBefore} -> ${min.opsAfter} ops, ${values['no-minimize'] ? 'not minimized' : 'minimized'} in ${fmtDuration(min.timeMs)} (${min.runs} runs), ` +
      `${reliabilityText(reliability.hits, reliability.runs)} (${reliability.what}); total ${fmtDuration(Date.now() - t0)}\n` +
      `  ${join(dir, 'report.txt')}\n`,
  );
  return summary;
}

/** The tester of a reproduction that also notes the crash and hang titles each program showed. */
class TitleRecorder implements SequenceTester {
  /** program (as JSON, comment left out) → crash and hang titles its runs showed */
  readonly titles = new Map<string, Set<string>>();
  constructor(
    private readonly inner: GuestTester,
    private readonly kernel: { spec: string; release: string },
  ) {}

  static key(p: Program): string {
    const { comment: _c, ...rest } = p;
    return JSON.stringify(rest);
  }

  async run(p: Program): Promise<Trial> {
    const t = await this.inner.run(p);
    if (t.result) {
      const shown = findingCandidates(t.result, this.kernel).filter((c) => c.kind !== 'divergence').map((c) => c.title);
      if (shown.length > 0) {
        const k = TitleRecorder.key(p);
        const set = this.titles.get(k) ?? new Set<string>();
        for (const x of shown) set.add(x);
        this.titles.set(k, set);
      }
    }
    return t;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * Grouping evidence from a reproduction (findings/bugs.ts): other crash titles the minimized
 * program showed (minimized-program), and crash titles that preceding programs the crash needs
 * showed when they ran before it (preceding-program). Written to the finding's store; returns
 * the finding's bug as the store now has it.
 */
async function recordReproEvidence(
  dir: string,
  storeDir: string | undefined,
  finding: Finding,
  minProgram: Program,
  preceding: readonly Program[],
  rec: TitleRecorder,
): Promise<FindingBug | undefined> {
  const evidence: { kind: 'minimized-program' | 'preceding-program'; titles: string[]; why: string }[] = [];
  if (finding.kind !== 'divergence') {
    const shown = [...(rec.titles.get(TitleRecorder.key(minProgram)) ?? [])];
    if (shown.some((t) => t !== finding.title)) {
      evidence.push({ kind: 'minimized-program', titles: [finding.title, ...shown], why: `program.min.json of finding ${finding.id} showed them when svadiff repro ran it` });
    }
    for (const [i, p] of preceding.entries()) {
      const shownBy = [...(rec.titles.get(TitleRecorder.key(p)) ?? [])].filter((t) => t !== finding.title);
      if (shownBy.length === 0) continue;
      evidence.push({
        kind: 'preceding-program',
        titles: [finding.title, ...shownBy],
        why: `preceding program ${i + 1} of finding ${finding.id} (${p.comment ?? 'preceding.json'}) showed the others when svadiff repro replayed the programs before it`,
      });
    }
  }
  for (const e of evidence) info(`same bug: ${safeLine(e.titles.join(' + '), 300)} (${e.kind})`);
  if (!storeDir) return undefined;
  const store = await FindingStore.open(storeDir);
  if (evidence.length > 0) await store.addEvidence(evidence.map((e) => ({ ...e, at: new Date().toISOString() })));
  return store.get(finding.id)?.bug;
}

/** The excerpt of the kernel report with this title in a reproducing run. */
function kernelReportOf(witness: Trial | undefined, title: string): string | undefined {
  return witness?.result?.reports.find((r) => r.title === title)?.excerpt;
}

function regressCandidate(
  f: Finding,
  title: string,
  p: Program,
  k: { spec: string; release: string },
  rel: { hits: number; runs: number },
  origin: string | undefined,
): RegressEntry {
  const { comment: _c, ...prog } = p;
  return {
    format: REGRESS_FORMAT,
    version: REGRESS_VERSION,
    name: f.id,
    note: 'TODO: what the bug is and why the semantics sheet is right about it',
    outcome: { kind: f.kind, title },
    recorded: {
      series: seriesOf(k.release) ?? '',
      kernel: k.spec,
      release: k.release,
      date: new Date().toISOString().slice(0, 10),
      how: `svadiff repro of finding ${f.id}${origin ? ` (${origin})` : ''}`,
      reliability: `${rel.hits}/${rel.runs}`,
    },
    program: prog as Program,
  };
}

interface VerifyResult {
  reliability: { hits: number; runs: number; what: string };
  howToRun: ReportInput['howToRun'];
  /** why repro.c could not be verified (the runs did not happen) */
  error?: string;
  /** one line per run */
  runs: string[];
}

/**
 * How to build and run repro.c for a kernel of arch: natively with gcc, or for arm64 also from
 * an x86_64 machine with Debian's cross compiler (what svadiff itself runs, guest/build.ts).
 */
function howToRun(arch: Arch): ReportInput['howToRun'] {
  const build =
    arch === 'x86_64'
      ? [`gcc ${REPRO_CFLAGS.join(' ')} -o repro repro.c`]
      : [
          `${guestCompiler(arch)} ${REPRO_CFLAGS.join(' ')} -o repro repro.c`,
          `(on x86_64 Debian: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross; on an ${arch} machine plain gcc)`,
        ];
  return {
    build,
    run: ['./repro', 'rmmod svadiff_test'],
    note:
      'Load svadiff_test.ko fresh before every run (node names and queue ids assume it); some reports appear only at rmmod. Exit status 1: a step did not do what the model expects (reproduced); 0: every checked step did; 2: a setup problem.',
  };
}

/** Write repro.c (the model's expectations for every op) and run it on a fresh guest `runs` times. */
async function verifyReproducer(
  dir: string,
  setup: GuestSetup,
  profile: KernelProfile,
  program: Program,
  title: string,
  runs: number,
): Promise<VerifyResult> {
  const m = modelExpectations(program, profile);
  const notes = [`Minimized by svadiff repro from finding ${basename(dir)}.`];
  if (m.lostAt !== undefined) notes.push(`Steps from ${m.lostAt} on are not checked: the model allows too many outcomes before them to follow.`);
  notes.push(`Expectations: svadiff's reference model for ${profile.release} (${profile.distro}, ${profile.arch}).`);
  const source = generateC(program, { expected: m.expected, rules: m.rules, title, kernel: `${setup.kernel.release} (${setup.kernel.exactSpec})`, notes });
  const path = join(dir, 'repro.c');
  await atomicWrite(path, source);
  info(`wrote ${path}; running it ${runs} times on a fresh ${setup.kernel.exactSpec} guest`);
  const lines: string[] = [];
  try {
    const r = await replay({ kind: 'repro', path, program, title }, setup.kernel.exactSpec, {
      kernel: setup.kernel,
      runs,
      accel: setup.accel,
      logDir: join(setup.outDir, 'logs'),
      onRun: (x) => {
        const line = `repro.c run ${x.index + 1}/${runs}: ${x.reproduced ? 'reproduced' : 'did not reproduce'} (${x.summary})`;
        lines.push(line);
        info(safeLine(line, 300));
      },
    });
    return { reliability: { hits: r.reproduced, runs: r.runs.length, what: 'repro.c on a fresh guest' }, howToRun: howToRun(setup.kernel.arch), runs: lines };
  } catch (e) {
    const msg = errorMessage(e);
    warn(`repro.c could not be verified: ${safeLine(msg, 300)}`);
    return { reliability: { hits: 0, runs: 0, what: `repro.c not verified: ${safeLine(msg, 200)}` }, howToRun: howToRun(setup.kernel.arch), error: msg, runs: lines };
  }
}

/** The model's expected outcomes of each op, as text ('' where it expects nothing). */
export function expectedTexts(program: Program, profile: KernelProfile): string[] {
  const m = modelExpectations(program, profile);
  return program.ops.map((_, i) => {
    const e = m.expected[i];
    return e ? formatOutcomeSet(e) : '';
  });
}

/**
 * What report.txt says besides the run: where the bug came in, when `svadiff bisect` found it
 * (bisect.json next to the finding), and the fix checks that covered it (`svadiff fixcheck`
 * with --claims or --findings of this output directory: DIR/fixcheck/<patch>/fixcheck.json).
 */
async function reportExtras(dir: string, outDir: string | undefined, finding: { id: string; title: string }): Promise<Pick<ReportInput, 'introducedBy' | 'fixChecks'>> {
  const out: Pick<ReportInput, 'introducedBy' | 'fixChecks'> = {};
  const b = await readJsonIfExists<Partial<BisectReport>>(join(dir, 'bisect.json')).catch(() => undefined);
  if (b?.outcome === 'first-bad' && typeof b.first_bad === 'string') {
    out.introducedBy = { firstBad: b.first_bad, ...(b.last_good ? { lastGood: b.last_good } : {}), ...(b.subject ? { subject: b.subject } : {}), ...(b.fixes ? { fixes: b.fixes } : {}) };
  }
  if (outDir) {
    const checks = [];
    for (const name of (await fs.readdir(join(outDir, 'fixcheck')).catch(() => [] as string[])).sort()) {
      const f = await readJsonIfExists<FixcheckFile>(join(outDir, 'fixcheck', name, 'fixcheck.json')).catch(() => undefined);
      if (f?.format !== FIXCHECK_FORMAT) continue;
      const c = fixCheckForFinding(f, finding);
      if (c) checks.push(c);
    }
    if (checks.length > 0) out.fixChecks = checks;
  }
  return out;
}
