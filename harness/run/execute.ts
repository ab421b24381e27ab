/**
 * Run one program on a guest and judge it: the model's check of every op (harness/oracle/
 * check.ts), the kernel's log during the program (harness/oracle/report.ts), hangs and guest
 * deaths. Each program starts from a fresh test device (the agent reloads the module) and a
 * fresh task tree. Turns the verdict into finding candidates; never writes anything itself.
 */
import { AgentClosedError, AgentTimeoutError, type ProgramRun } from '../agent/session.js';
import type { FindingCandidate, KernelId } from '../findings/store.js';
import type { KernelProfile } from '../model/index.js';
import { checkProgram, type CheckResult } from '../oracle/check.js';
import { isReportStart, parseConsole, type CrashReport, type LogLine } from '../oracle/report.js';
import type { Program } from '../program/types.js';
import type { Guest } from '../vm/guest.js';
import { sleep } from '../vm/qemu.js';

export interface ExecResult {
  program: Program;
  run?: ProgramRun;
  check: CheckResult;
  /** kernel reports of this program (crash, warning, hang, iommu-fault), device lines apart */
  reports: CrashReport[];
  deviceReports: CrashReport[];
  hang?: { opIndex?: number; reason: string };
  /** the guest went away (QEMU exited or the channel closed) */
  guestDied?: string;
  /** the guest must be rebooted before the next program */
  needsReboot: boolean;
  /** kernel log of this program, one record a line */
  kmsgText: string;
  /** serial console lines written while the program ran */
  consoleText: string;
  elapsedMs: number;
}

export interface ExecOptions {
  /** agent silence limit while the program runs (default: the session's) */
  deadlineMs?: number;
  /** after a hang, how long to wait for the kernel's hung-task report on the console */
  hangGraceMs?: number;
  /** how long a program may go on after a tainting kernel report before the guest is stopped */
  stuckAfterReportMs?: number;
}

/** Programs take well under a second in the guest; 8 s after an oops the agent is stuck. */
const STUCK_AFTER_REPORT_MS = 8000;

export async function executeProgram(
  guest: Guest,
  progId: number,
  program: Program,
  profile: KernelProfile,
  opts: ExecOptions = {},
): Promise<ExecResult> {
  const t0 = Date.now();
  const consoleFrom = guest.vm.consoleLineCount;
  let run: ProgramRun | undefined;
  let hang: ExecResult['hang'];
  let guestDied: string | undefined;
  // A kernel report that taints the kernel (an oops, slab corruption) often leaves the agent
  // stuck (a lock held, interrupts off). Rather than wait for the agent's silence limit (a
  // minute), stop the guest once the agent has been silent for 5 s some seconds after such a
  // report: the report is on the console, and the guest is rebooted anyway.
  let reportAt: number | undefined;
  let stoppedAfterReport = false;
  const stopWatching = guest.vm.onConsoleLine((line) => {
    if (reportAt === undefined && isReportStart(line) && parseConsole([line]).reports.some((r) => r.needsReboot)) reportAt = Date.now();
  });
  const ticker = setInterval(() => {
    if (reportAt !== undefined && !stoppedAfterReport && Date.now() - reportAt > (opts.stuckAfterReportMs ?? STUCK_AFTER_REPORT_MS) && guest.session.silentMs > 5000) {
      stoppedAfterReport = true;
      void guest.kill();
    }
  }, 250);
  try {
    run = await guest.session.runProgram(progId, program, opts.deadlineMs !== undefined ? { deadlineMs: opts.deadlineMs } : {});
  } catch (e) {
    if (e instanceof AgentTimeoutError) hang = { reason: e.message };
    else if (e instanceof AgentClosedError) guestDied = e.message;
    else throw e;
  } finally {
    clearInterval(ticker);
    stopWatching();
  }
  if (stoppedAfterReport && !run) {
    guestDied = undefined;
    hang = { reason: `the agent did not finish the program within ${(opts.stuckAfterReportMs ?? STUCK_AFTER_REPORT_MS) / 1000} s of a kernel report; the guest was stopped` };
  }
  if (run?.timeout) hang = { opIndex: run.timeout.idx, reason: `op ${run.timeout.idx} did not finish within ${run.timeout.ms} ms` };
  if (hang && guest.alive) {
    // give the kernel's hung-task detector (sysctl set at boot) a chance to say where it is stuck
    const grace = opts.hangGraceMs ?? 25_000;
    const until = Date.now() + grace;
    while (Date.now() < until && guest.alive) {
      if (guest.consoleSince(consoleFrom).some((l) => /blocked for more than \d+ seconds|rcu.*detected stall/.test(l))) {
        await sleep(2000); // let the report finish
        break;
      }
      await sleep(500);
    }
  }
  if (!guest.alive && !guestDied) guestDied = 'QEMU exited';
  if (guestDied) await sleep(200); // the last console bytes

  const results = run?.results ?? [];
  const check = checkProgram(program, profile, results);
  const kmsgLines: LogLine[] = [];
  for (const r of run?.kmsg ?? []) for (const text of r.text.split('\n')) kmsgLines.push({ text, seq: r.seq });
  const consoleLines = guest.consoleSince(consoleFrom);
  // kmsg is complete (every level) while the agent lives; the console is what is left when it
  // does not (a panic, a hang): use both and keep each title once.
  const parsed = [...parseConsole(kmsgLines).reports];
  if (hang || guestDied || !run) {
    const titles = new Set(parsed.map((r) => r.title));
    for (const r of parseConsole(consoleLines).reports) if (!titles.has(r.title)) parsed.push(r);
  }
  const reports = parsed.filter((r) => r.kind !== 'device');
  const deviceReports = parsed.filter((r) => r.kind === 'device');
  const needsReboot =
    Boolean(hang) ||
    Boolean(guestDied) ||
    !run ||
    (run.finished?.status ?? 1) !== 0 ||
    check.anomaly !== undefined ||
    reports.some((r) => r.needsReboot);
  const res: ExecResult = {
    program,
    check,
    reports,
    deviceReports,
    needsReboot,
    kmsgText: (run?.kmsg ?? []).map((r) => `[${(r.usec / 1e6).toFixed(6)}] ${r.text}`).join('\n'),
    consoleText: consoleLines.join('\n'),
    elapsedMs: Date.now() - t0,
  };
  if (run) res.run = run;
  if (hang) res.hang = hang;
  if (guestDied) res.guestDied = guestDied;
  return res;
}

/** The findings a result holds: its divergence, each kernel report, a hang. */
export function findingCandidates(r: ExecResult, kernel: KernelId): FindingCandidate[] {
  const out: FindingCandidate[] = [];
  const base = { kernel, program: r.program, console: r.consoleText };
  const d = r.check.divergence;
  if (d) {
    out.push({
      ...base,
      kind: 'divergence',
      title: d.title,
      expected: d.expected,
      observed: d.observed,
      opIndex: d.index,
      rule: d.rules.join(', '),
      excerpt: r.kmsgText,
    });
  }
  for (const rep of r.reports) {
    const c: FindingCandidate = {
      ...base,
      kind: rep.kind === 'hang' ? 'hang' : 'crash',
      title: rep.title,
      excerpt: rep.excerpt,
      report: { kind: rep.kind, pattern: rep.pattern, corrupted: rep.corrupted, ...(rep.frame ? { frame: rep.frame } : {}) },
    };
    const at = opIndexOfReport(r, rep);
    if (at !== undefined) c.opIndex = at;
    out.push(c);
  }
  // A hang after a kernel report is that report's consequence (an oops with a lock held, slab
  // corruption): the report is the finding. Only a hang the kernel said nothing about is one.
  if (r.hang && r.reports.length === 0) {
    const op = r.hang.opIndex !== undefined ? r.program.ops[r.hang.opIndex] : undefined;
    const c: FindingCandidate = {
      ...base,
      kind: 'hang',
      title: op ? `hang: ${op.op} did not return` : 'hang: the guest agent stopped answering',
      observed: r.hang.reason,
      excerpt: r.kmsgText,
    };
    if (r.hang.opIndex !== undefined) c.opIndex = r.hang.opIndex;
    out.push(c);
  }
  if (r.guestDied && r.reports.length === 0 && !r.hang) {
    out.push({ ...base, kind: 'crash', title: 'lost connection to the guest (no kernel report)', observed: r.guestDied, excerpt: r.consoleText.split('\n').slice(-80).join('\n') });
  }
  return out;
}

/** The op during which a report's first kmsg record arrived (the agent drains kmsg before every result). */
function opIndexOfReport(r: ExecResult, rep: CrashReport): number | undefined {
  if (rep.startSeq === undefined || !r.run) return undefined;
  const idx = r.run.kmsg.findIndex((k) => k.seq === rep.startSeq);
  const op = idx < 0 ? undefined : r.run.kmsgOp[idx];
  return op === undefined || op < 0 || op >= r.program.ops.length ? undefined : op;
}
