/**
 * Replaying a finding on a real guest, several times, to tell a deterministic finding from a
 * flaky one:
 *
 *   - a program (program.json): run through the agent like the fuzzer does; it reproduces when
 *     the run has the expected title among its findings (divergence, kernel report, hang), or
 *     any finding when no title is expected;
 *   - a reproducer (repro.c, harness/repro/csource.ts): compiled statically on the host, put
 *     into the guest's initramfs, run by the agent while the test device is set up with the
 *     program's parameters (protocol line U). It reproduces when it exits 1 (some step diverged)
 *     or the kernel log has a report; with an expected title, when its FINDING line or a report
 *     has that title.
 *
 * Every run starts from a freshly loaded test module; the guest is rebooted after a run that
 * left it in doubt (a kernel report that taints it, a hang, a failed teardown), as the fuzzer
 * does (harness/run/execute.ts).
 */
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve as resolvePath } from 'node:path';
import { buildAgent, ensureGuestToolchain, guestCompiler, staticElfProblem } from '../../guest/build.js';
import { buildInitramfs } from '../../guest/initramfs.js';
import { fetchKernel } from '../../kernels/index.js';
import type { Arch, KernelArtifacts } from '../../kernels/types.js';
import { AgentClosedError, type ExecutableRun } from '../agent/session.js';
import { currentDivergenceTitle, DIVERGENCE_TITLE_RE } from '../oracle/check.js';
import { sameCrash, type CrashReport } from '../oracle/report.js';
import { profileFor } from '../model/index.js';
import type { DeviceParams, Program } from '../program/types.js';
import { awaitHangReport, guarded, requestReports, type GuardOptions } from '../run/guard.js';
import { executeProgram, findingCandidates } from '../run/execute.js';
import type { AccelChoice } from '../vm/accel.js';
import { Guest, GuestBootError, type GuestImage } from '../vm/guest.js';
import { sleep } from '../vm/qemu.js';
import { UserError } from '../util/errors.js';
import { exists, readJsonIfExists, sha256 } from '../util/fsx.js';
import { warn } from '../util/log.js';
import { cacheDir } from '../util/paths.js';
import { safeLine, stripControl } from '../util/sanitize.js';
import { machineForDevice } from '../vm/machine.js';
import { parseReproSource, REPRO_EXIT, REPRO_FINDING_PREFIX } from './csource.js';
import { parseProgramOrEntry } from './regress.js';

/** Compiler flags of reproducers (the file says to build it the same way). */
export const REPRO_CFLAGS = ['-static', '-O2', '-Wall'] as const;
/** Where reproducer binaries are in the guest. */
export const GUEST_REPRO_DIR = '/repro';
/** Default time a reproducer may run in the guest before the agent kills it. */
export const DEFAULT_REPRO_TIMEOUT_MS = 180_000;

// ---------------------------------------------------------------------------------------------
// Compiling

async function compilerId(cc: string): Promise<string> {
  const v = await execa(cc, ['--version'], { reject: false });
  if (v.exitCode !== 0) throw new UserError(`${cc} does not run; reinstall it (svadiff installs it with the guest agent's toolchain, guest/build.ts)`);
  return String(v.stdout).split('\n')[0] ?? '';
}

/**
 * Compile a reproducer into a static binary for guests of arch (the agent's toolchain: gcc, or
 * bookworm's aarch64-linux-gnu-gcc for arm64), cached by the hash of the source, flags and
 * compiler under cacheDir()/repro/<hash>/repro. extraFlags e.g. ['-Werror'].
 */
export async function compileRepro(cFile: string, extraFlags: readonly string[] = [], arch: Arch = 'x86_64'): Promise<string> {
  const cc = guestCompiler(arch);
  // the compiler and its static C library, installed with the agent's toolchain
  await ensureGuestToolchain(arch);
  let source: Buffer;
  try {
    source = await fs.readFile(cFile);
  } catch (e) {
    throw new UserError(`cannot read ${cFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const flags = [...REPRO_CFLAGS, ...extraFlags];
  const hash = sha256([sha256(source), flags.join(' '), await compilerId(cc)].join('\n'));
  const dir = join(cacheDir(), 'repro', hash);
  const out = join(dir, 'repro');
  if (await exists(out)) return out;
  await fs.mkdir(dir, { recursive: true });
  const tmp = join(dir, `.repro.${process.pid}.${Date.now()}.tmp`);
  const r = await execa(cc, [...flags, '-o', tmp, '-x', 'c', resolvePath(cFile)], { reject: false, all: true });
  if (r.exitCode !== 0) {
    await fs.rm(tmp, { force: true });
    const tail = stripControl(String(r.all ?? '')).split('\n').slice(-12).join('\n');
    throw new UserError(`${cc} could not compile ${cFile} (exit ${r.exitCode}); fix the C file:\n${tail}`);
  }
  const problem = staticElfProblem(await fs.readFile(tmp), arch);
  if (problem) {
    await fs.rm(tmp, { force: true });
    throw new Error(`${cc} built an unusable reproducer from ${cFile}: ${problem}`);
  }
  await fs.rename(tmp, out);
  return out;
}

/** The guest path of a compiled reproducer (its name is its content hash). */
export function guestReproPath(binary: string): string {
  return `${GUEST_REPRO_DIR}/${basename(dirname(binary)).slice(0, 16)}`;
}

/** The guest image (agent, initramfs) for a kernel with the given reproducer binaries in /repro. */
export async function prepareReproImage(kernel: KernelArtifacts, binaries: readonly string[]): Promise<GuestImage> {
  const agent = await buildAgent(kernel.arch);
  const extraFiles = await Promise.all(binaries.map(async (b) => ({ path: guestReproPath(b).slice(1), data: await fs.readFile(b), mode: 0o755 })));
  const initrd = await buildInitramfs({ kernel, agent, extraFiles });
  return { initrd, agent };
}

// ---------------------------------------------------------------------------------------------
// Running a reproducer in a guest

export interface ReproRun {
  exec?: ExecutableRun;
  exitCode?: number;
  /** its output (stripped of control sequences) */
  output: string;
  /** the FINDING line it printed: the divergence or hang it saw, in svadiff's title format */
  finding?: string;
  /** kernel reports while it ran (module load and unload included), test device lines apart */
  reports: CrashReport[];
  deviceReports: CrashReport[];
  kmsgText: string;
  timedOut: boolean;
  /** the guest went away while it ran */
  guestDied?: string;
  /** the guest must be rebooted before the next run */
  needsReboot: boolean;
}

/**
 * Run a reproducer that is in the guest's initramfs (prepareReproImage) while the test device
 * is set up with `device`, and read the kernel log of the run.
 */
export async function runReproOnGuest(
  guest: Guest,
  guestPath: string,
  device: DeviceParams,
  opts: { progId?: number; timeoutMs?: number } & GuardOptions = {},
): Promise<ReproRun> {
  const g = await guarded(guest, () => guest.session.runExecutable(opts.progId ?? 1, device, guestPath, opts.timeoutMs ?? DEFAULT_REPRO_TIMEOUT_MS), opts);
  const exec: ExecutableRun | undefined = g.value;
  const hang = g.hang !== undefined;
  if (hang && guest.alive) await awaitHangReport(guest, g.consoleFrom, opts.hangGraceMs);
  let guestDied = g.guestDied;
  if (!guest.alive && !guestDied && !hang) guestDied = 'QEMU exited';
  if (guestDied) await sleep(200);
  const { reports, deviceReports, kmsgText } = requestReports(guest, g.consoleFrom, exec?.kmsg ?? [], !exec || Boolean(guestDied) || hang);
  const output = exec?.output ?? '';
  const run: ReproRun = {
    output,
    reports,
    deviceReports,
    kmsgText,
    timedOut: exec?.timedOut ?? hang,
    needsReboot: !exec || hang || Boolean(guestDied) || exec.timedOut || (exec.finished?.status ?? 1) !== 0 || reports.some((r) => r.needsReboot),
  };
  if (exec) run.exec = exec;
  if (exec?.exitCode !== undefined) run.exitCode = exec.exitCode;
  if (guestDied) run.guestDied = guestDied;
  const finding = reproFindingLine(output);
  if (finding) run.finding = finding;
  return run;
}

/** The title a reproducer printed on its FINDING line (the first one). */
export function reproFindingLine(output: string): string | undefined {
  const line = output.split('\n').find((l) => l.startsWith(REPRO_FINDING_PREFIX));
  return line === undefined ? undefined : safeLine(line.slice(REPRO_FINDING_PREFIX.length), 300).trim();
}

// ---------------------------------------------------------------------------------------------
// Titles

/** Is this the title of a divergence (harness/oracle/check.ts divergenceTitle) or of a hang? */
export function isModelTitle(title: string): boolean {
  return DIVERGENCE_TITLE_RE.test(title) || /^hang: \S+ did not return$/.test(title);
}

/**
 * Does a reproducer's divergence title match the finding's? Equal, or the same call, the same
 * observed outcome and a rule in common: the reproducer follows every branch of the model, so
 * its expected set can be wider than the one checkProgram printed along the kernel's path.
 */
export function sameDivergence(expectedTitle: string, gotTitle: string): boolean {
  // either may come from an older svadiff, whose titles carried values
  const expected = currentDivergenceTitle(expectedTitle);
  const got = currentDivergenceTitle(gotTitle);
  if (expected === got) return true;
  const a = DIVERGENCE_TITLE_RE.exec(expected);
  const b = DIVERGENCE_TITLE_RE.exec(got);
  if (!a || !b) return false;
  const rulesA = a[4]!.split(', ');
  const rulesB = new Set(b[4]!.split(', '));
  return a[1] === b[1] && a[3] === b[3] && rulesA.some((r) => rulesB.has(r));
}

// ---------------------------------------------------------------------------------------------
// Replay

export type ReplayTarget =
  | { kind: 'program'; path: string; program: Program; title?: string; kernel?: string }
  | { kind: 'repro'; path: string; program: Program; title?: string; kernel?: string };

/**
 * Read what to replay: a program.json, a finding directory (its program.json and title), or a
 * reproducer .c file (its embedded program, title and kernel).
 */
export async function loadReplayTarget(path: string): Promise<ReplayTarget> {
  let st;
  try {
    st = await fs.stat(path);
  } catch (e) {
    throw new UserError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const file = st.isDirectory() ? join(path, 'program.json') : path;
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; give a program.json, a finding directory or a repro.c`);
  }
  if (file.endsWith('.c')) {
    const r = parseReproSource(text, file);
    const t: ReplayTarget = { kind: 'repro', path: file, program: r.program };
    if (r.title) t.title = r.title;
    const spec = r.kernel ? /\((\S+:\S+)\)/.exec(r.kernel)?.[1] : undefined;
    if (spec) t.kernel = spec;
    return t;
  }
  const { program, entry } = parseProgramOrEntry(text, file);
  const t: ReplayTarget = { kind: 'program', path: file, program };
  // a regression corpus entry: its recorded outcome, on the kernel it was recorded on
  if (entry) return { ...t, title: entry.outcome.title, kernel: entry.recorded.kernel };
  // a program of a finding directory: the finding says what to look for, and on which kernel
  const finding = await readJsonIfExists<{ title?: unknown; kernel?: { spec?: unknown } }>(join(dirname(file), 'finding.json')).catch(() => undefined);
  if (typeof finding?.title === 'string') t.title = finding.title;
  if (typeof finding?.kernel?.spec === 'string') t.kernel = finding.kernel.spec;
  return t;
}

export interface ReplayRun {
  index: number;
  reproduced: boolean;
  /** one line: what this run showed */
  summary: string;
  /** titles of everything the run found (divergence, reports, hang) */
  titles: string[];
  exitCode?: number;
  rebooted: boolean;
}

export interface ReplayResult {
  target: ReplayTarget;
  kernel: { spec: string; release: string; uacce?: string };
  /** what counted as reproducing */
  expectTitle?: string;
  runs: ReplayRun[];
  reproduced: number;
}

export interface ReplayOptions {
  runs?: number;
  /** overrides the finding's or reproducer's own title; '' looks for any finding */
  expectTitle?: string;
  accel?: AccelChoice;
  /** where console logs go (default: a temporary directory) */
  logDir?: string;
  timeoutMs?: number;
  onRun?: (r: ReplayRun) => void;
  /** build uacce.ko from this source for the kernel (kernels/uacce-src.ts) */
  uacceSrc?: string;
  /** the kernel, already fetched (then kernelSpec only names it) */
  kernel?: KernelArtifacts;
}

/**
 * Replay a program or reproducer `runs` times on one kernel and count the runs that reproduce.
 * A setup problem (the reproducer exits 2, the device cannot be set up) is an error, not a
 * run that did not reproduce.
 */
export async function replay(target: ReplayTarget | string, kernelSpec: string, opts: ReplayOptions = {}): Promise<ReplayResult> {
  const t = typeof target === 'string' ? await loadReplayTarget(target) : target;
  const runs = opts.runs ?? 3;
  if (!Number.isInteger(runs) || runs < 1 || runs > 1000) throw new UserError(`--runs must be 1..1000, got ${runs}`);
  const kernel = opts.kernel ?? (await fetchKernel(kernelSpec, opts.uacceSrc !== undefined ? { uacceSrc: opts.uacceSrc } : {}));
  const given = opts.expectTitle !== undefined ? opts.expectTitle || undefined : t.title;
  // a finding or reproducer of an older svadiff may have a title with values in it
  const expectTitle = given !== undefined ? currentDivergenceTitle(given) : undefined;
  const logDir = opts.logDir ?? (await fs.mkdtemp(join(tmpdir(), 'svadiff-replay-')));
  await fs.mkdir(logDir, { recursive: true });

  let guestPath: string | undefined;
  let image: GuestImage;
  if (t.kind === 'repro') {
    const binary = await compileRepro(t.path, [], kernel.arch);
    guestPath = guestReproPath(binary);
    image = await prepareReproImage(kernel, [binary]);
  } else {
    image = await prepareReproImage(kernel, []);
  }
  const profile = profileFor(kernel.release, { arch: kernel.arch, distro: kernel.distro ?? 'debian' });
  const kernelId = { spec: kernel.exactSpec, release: kernel.release, ...(kernel.uacce ? { uacce: kernel.uacce.text } : {}) };
  const bootOnce = (i: number) =>
    Guest.boot(kernel, image, {
      ...(opts.accel ? { accel: opts.accel } : {}),
      machine: machineForDevice(kernel.arch, t.program.device).name,
      consolePath: join(logDir, `replay-${i}.console.log`),
    });
  // A boot that fails before the agent answers is retried once: under TCG on a loaded host the
  // kernel now and then panics early (e.g. "timer doesn't work through Interrupt-remapped IO-APIC").
  const boot = async (i: number): Promise<Guest> => {
    try {
      return await bootOnce(i);
    } catch (e) {
      if (!(e instanceof GuestBootError) && !(e instanceof AgentClosedError)) throw e;
      warn(`the guest did not boot (${safeLine((e as Error).message, 200)}); trying once more`);
      return bootOnce(i + 1000);
    }
  };

  const result: ReplayResult = { target: t, kernel: kernelId, runs: [], reproduced: 0 };
  if (expectTitle) result.expectTitle = expectTitle;
  let guest: Guest | undefined;
  let boots = 0;
  try {
    for (let i = 0; i < runs; i++) {
      let rebooted = false;
      if (!guest) {
        guest = await boot(boots++);
        rebooted = i > 0;
      }
      let run: ReplayRun;
      let needsReboot: boolean;
      if (t.kind === 'program') {
        const r = await executeProgram(guest, i + 1, t.program, profile);
        if (r.run && !r.run.started) throw new UserError(`the test device could not be set up for ${t.path}: ${r.run.finished?.msg ?? 'no answer'}`);
        const titles = findingCandidates(r, kernelId).map((c) => c.title);
        const reproduced = expectTitle ? titles.some((x) => x === expectTitle || (!isModelTitle(expectTitle) && sameCrash(x, expectTitle))) : titles.length > 0;
        const summary = r.check.anomaly
          ? `agent anomaly at op ${r.check.anomaly.index}: ${r.check.anomaly.message}`
          : titles.length > 0
            ? titles.join('; ')
            : `no divergence, no kernel report (${r.check.checked} ops checked)`;
        run = { index: i, reproduced, summary: safeLine(summary, 400), titles, rebooted };
        needsReboot = r.needsReboot;
      } else {
        const r = await runReproOnGuest(guest, guestPath!, t.program.device, { progId: i + 1, ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) });
        if (r.exitCode === REPRO_EXIT.setup) {
          const why = r.output.split('\n').filter((l) => /SETUP PROBLEM/.test(l)).join(' ') || r.output.split('\n').slice(-3).join(' ');
          throw new UserError(`the reproducer reports a setup problem in the guest: ${safeLine(why, 400)}`);
        }
        const titles = [...(r.finding ? [r.finding] : []), ...r.reports.map((x) => x.title)];
        const reproduced = expectTitle
          ? (r.finding !== undefined && (isModelTitle(expectTitle) ? sameDivergence(expectTitle, r.finding) : false)) || r.reports.some((x) => sameCrash(x.title, expectTitle))
          : r.exitCode === REPRO_EXIT.diverged || r.reports.length > 0 || r.timedOut;
        const how = r.guestDied
          ? `the guest died (${r.guestDied})`
          : r.timedOut
            ? 'killed at its timeout'
            : r.exitCode !== undefined
              ? `exit ${r.exitCode}`
              : `killed by signal ${r.exec?.signal ?? '?'}`;
        const result = r.output.split('\n').find((l) => l.startsWith('RESULT: '))?.slice('RESULT: '.length);
        const what = titles.length ? titles.join('; ') : result;
        run = { index: i, reproduced, summary: safeLine(`${how}${what ? ': ' + what : ''}`, 400), titles, rebooted };
        if (r.exitCode !== undefined) run.exitCode = r.exitCode;
        needsReboot = r.needsReboot;
      }
      result.runs.push(run);
      if (run.reproduced) result.reproduced++;
      opts.onRun?.(run);
      if (needsReboot && guest) {
        await guest.kill();
        guest = undefined;
      }
    }
  } finally {
    if (guest) await guest.shutdown().catch(() => guest?.kill());
  }
  return result;
}
