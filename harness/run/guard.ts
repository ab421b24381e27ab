/**
 * One request to the guest agent (a program, a reproducer) with the guest's ways of failing
 * turned into facts: the agent fell silent (a hang), the guest went away, or the kernel printed
 * a tainting report and the agent then stopped answering. Shared by harness/run/execute.ts and
 * harness/repro/replay.ts; the kernel log of the request is turned into reports here too.
 */
import { AgentClosedError, AgentTimeoutError } from '../agent/session.js';
import type { KmsgRecord } from '../oracle/report.js';
import { isReportStart, parseConsole, type CrashReport, type LogLine } from '../oracle/report.js';
import type { Guest } from '../vm/guest.js';
import { sleep } from '../vm/qemu.js';

export interface GuardOptions {
  /** after a hang, how long to wait for the kernel's hung-task report on the console */
  hangGraceMs?: number;
  /** how long a request may go on after a tainting kernel report before the guest is stopped */
  stuckAfterReportMs?: number;
}

/** Requests take well under a second in the guest; 8 s after an oops the agent is stuck. */
const STUCK_AFTER_REPORT_MS = 8000;
/** ... if it has also said nothing for this long */
const SILENT_AFTER_REPORT_MS = 5000;

export interface Guarded<T> {
  value?: T;
  /** why the request is considered hung */
  hang?: string;
  /** the guest went away */
  guestDied?: string;
  /** first console line of the request */
  consoleFrom: number;
}

export async function guarded<T>(guest: Guest, request: () => Promise<T>, opts: GuardOptions = {}): Promise<Guarded<T>> {
  const consoleFrom = guest.vm.consoleLineCount;
  const stuckMs = opts.stuckAfterReportMs ?? STUCK_AFTER_REPORT_MS;
  // A tainting report (an oops, slab corruption) often leaves the agent stuck (a lock held,
  // interrupts off). Rather than wait for its silence limit (a minute), stop the guest once the
  // agent has been silent for a while some seconds after such a report: the report is on the
  // console, and the guest is rebooted anyway.
  let reportAt: number | undefined;
  let stoppedAfterReport = false;
  const stopWatching = guest.vm.onConsoleLine((line) => {
    if (reportAt === undefined && isReportStart(line) && parseConsole([line]).reports.some((r) => r.needsReboot)) reportAt = Date.now();
  });
  const ticker = setInterval(() => {
    if (reportAt !== undefined && !stoppedAfterReport && Date.now() - reportAt > stuckMs && guest.session.silentMs > SILENT_AFTER_REPORT_MS) {
      stoppedAfterReport = true;
      void guest.kill();
    }
  }, 250);
  const g: Guarded<T> = { consoleFrom };
  try {
    g.value = await request();
  } catch (e) {
    if (e instanceof AgentTimeoutError) g.hang = e.message;
    else if (e instanceof AgentClosedError) g.guestDied = e.message;
    else throw e;
  } finally {
    clearInterval(ticker);
    stopWatching();
  }
  if (stoppedAfterReport && g.value === undefined) {
    delete g.guestDied;
    g.hang = `the agent stopped answering within ${stuckMs / 1000} s of a kernel report; the guest was stopped`;
  }
  return g;
}

/** After a hang: give the kernel's hung-task detector (sysctl set at boot) a chance to report. */
export async function awaitHangReport(guest: Guest, consoleFrom: number, graceMs = 25_000): Promise<void> {
  const until = Date.now() + graceMs;
  while (Date.now() < until && guest.alive) {
    if (guest.consoleSince(consoleFrom).some((l) => /blocked for more than \d+ seconds|rcu.*detected stall/.test(l))) {
      await sleep(2000); // let the report finish
      return;
    }
    await sleep(500);
  }
}

export interface RequestReports {
  /** crash, warning, hang and iommu-fault reports */
  reports: CrashReport[];
  /** the test device's own lines (expected behaviour: the model judges them) */
  deviceReports: CrashReport[];
  kmsgText: string;
}

/**
 * The reports of a request: from its kernel log records (complete while the agent lives), and
 * from the console when the agent could not deliver them (a panic, a hang); each title once.
 */
export function requestReports(guest: Guest, consoleFrom: number, kmsg: readonly KmsgRecord[], useConsole: boolean): RequestReports {
  const lines: LogLine[] = [];
  for (const r of kmsg) for (const text of r.text.split('\n')) lines.push({ text, seq: r.seq });
  const parsed = [...parseConsole(lines).reports];
  if (useConsole) {
    const titles = new Set(parsed.map((r) => r.title));
    for (const r of parseConsole(guest.consoleSince(consoleFrom)).reports) if (!titles.has(r.title)) parsed.push(r);
  }
  return {
    reports: parsed.filter((r) => r.kind !== 'device'),
    deviceReports: parsed.filter((r) => r.kind === 'device'),
    kmsgText: kmsg.map((r) => `[${(r.usec / 1e6).toFixed(6)}] ${r.text}`).join('\n'),
  };
}
