/**
 * Run one program on a guest and judge it: the model's check of every op (harness/oracle/
 * check.ts), the kernel's log during the program (harness/oracle/report.ts), hangs and guest
 * deaths. Each program starts from a fresh test device (the agent reloads the module, or resets
 * it in place: ExecOptions.setup) and a fresh task tree. Turns the verdict into finding candidates; never writes anything itself.
 */
import type { ProgramRun } from '../agent/session.js';
import type { DeviceSetup } from '../agent/wire.js';
import type { FindingCandidate, KernelId } from '../findings/store.js';
import type { KernelProfile } from '../model/index.js';
import { checkProgram, type CheckResult } from '../oracle/check.js';
import { splitExpectedFaults } from '../oracle/faults.js';
import type { CrashReport } from '../oracle/report.js';
import type { Program } from '../program/types.js';
import type { Guest } from '../vm/guest.js';
import { checkGroupLayout } from '../vm/groups.js';
import { compareResources, type Leak } from '../leaks/compare.js';
import { leakBaseline, readResources } from '../leaks/read.js';
import { sleep } from '../vm/qemu.js';
import { awaitHangReport, guarded, requestReports, type GuardOptions } from './guard.js';

export interface ExecResult {
  program: Program;
  run?: ProgramRun;
  check: CheckResult;
  /** kernel reports of this program (crash, warning, hang, iommu-fault), device lines apart */
  reports: CrashReport[];
  deviceReports: CrashReport[];
  /** DMA remapping faults of endpoints the model said would fault (check.dmaFaults): expected, not findings */
  expectedFaults: CrashReport[];
  hang?: { opIndex?: number; reason: string };
  /** the guest went away (QEMU exited or the channel closed) */
  guestDied?: string;
  /** the guest must be rebooted before the next program */
  needsReboot: boolean;
  /**
   * the next program must reload the test module, not reset it in place: the kernel reported
   * something (the module's state is not trusted), or the device itself said a queue was left
   * behind (its faults are ordinary work-item outcomes and need nothing). A program that removed
   * a device needs nothing more: its stale-node use-after-free (general protection fault in
   * __mutex_lock, corpus/regress/uacce-stale-node-open-use-after-free.json) happens inside the
   * program (the queue a stale node opened on the re-added device is released after the
   * program's own second removal freed that device), and what comes after is the same either
   * way: control "down" and rmmod both run svt_down() (uacce_remove() of every device), and the
   * open files pin uacce (its cdev owner), not the test module. Measured on 6.12.118: the UAF's
   * programs reproduced 36 of 36 times set up by reset, after a reset that followed a removal
   * too, as with reload; the generator's first 200 programs of seed 12345 (63 remove a device)
   * gave the same titles program by program with reset as with reload, the UAF in the same
   * program, one that follows a removal (an earlier 0 against 2 was two feedback streams that
   * had diverged)
   */
  needsReload: boolean;
  /**
   * what the program left behind (harness/leaks): compared with the guest's state after setup;
   * a leak makes the guest be rebooted (a module reference, a DMA owner or a stuck unbind cannot
   * be undone in place)
   */
  leaks: Leak[];
  /** how long the leak check took (ms); absent when it did not run */
  leakCheckMs?: number;
  /** kernel log of this program, one record a line */
  kmsgText: string;
  /** serial console lines written while the program ran */
  consoleText: string;
  elapsedMs: number;
}

export interface ExecOptions extends GuardOptions {
  /** agent silence limit while the program runs (default: the session's) */
  deadlineMs?: number;
  /** how the program gets a fresh test device (default reload: rmmod and insmod) */
  setup?: DeviceSetup;
  /** check what the program left behind (harness/leaks; default true) */
  leaks?: boolean;
}

export async function executeProgram(
  guest: Guest,
  progId: number,
  program: Program,
  profile: KernelProfile,
  opts: ExecOptions = {},
): Promise<ExecResult> {
  const t0 = Date.now();
  // a program written for an IOMMU group layout runs only where the guest has it
  const read = (p: string) => guest.readFile(p);
  await checkGroupLayout(guest, read, guest.machine, program.device.groups);
  // the guest's state before its first program, to find what later ones leave behind
  const baseline = opts.leaks === false ? undefined : await leakBaseline(guest, read);
  const g = await guarded(guest, () => guest.session.runProgram(progId, program, { ...(opts.deadlineMs !== undefined ? { deadlineMs: opts.deadlineMs } : {}), ...(opts.setup ? { setup: opts.setup } : {}) }), opts);
  const run = g.value;
  let hang: ExecResult['hang'] = g.hang !== undefined ? { reason: g.hang } : undefined;
  if (run?.timeout) hang = { opIndex: run.timeout.idx, reason: `op ${run.timeout.idx} did not finish within ${run.timeout.ms} ms` };
  if (hang && guest.alive) await awaitHangReport(guest, g.consoleFrom, opts.hangGraceMs);
  let guestDied = g.guestDied;
  if (!guest.alive && !guestDied && !hang) guestDied = 'QEMU exited';
  if (guestDied) await sleep(200); // the last console bytes

  const check = checkProgram(program, profile, run?.results ?? []);
  const requested = requestReports(guest, g.consoleFrom, run?.kmsg ?? [], Boolean(hang || guestDied || !run));
  const { deviceReports, kmsgText } = requested;
  // DMA remapping faults the model predicted (an ep_dma the domain refuses) are not findings
  const { reports, expected: expectedFaults } = splitExpectedFaults(requested.reports, check.dmaFaults, guest.machine.endpointAddresses);
  let leaks: Leak[] = [];
  let leakCheckMs: number | undefined;
  let leakCheckFailed = false;
  if (baseline && run?.finished && !hang && !guestDied && guest.alive) {
    const t = Date.now();
    try {
      leaks = compareResources(baseline, await readResources(read), run.endpointsLeft);
    } catch {
      leakCheckFailed = true; // the agent did not answer: the guest is not trusted
    }
    leakCheckMs = Date.now() - t;
  }
  const needsReboot =
    leaks.length > 0 ||
    leakCheckFailed ||
    Boolean(hang) ||
    Boolean(guestDied) ||
    !run ||
    (run.finished?.status ?? 1) !== 0 ||
    check.anomaly !== undefined ||
    reports.some((r) => r.needsReboot);
  const needsReload = needsReboot || reports.length > 0 || deviceReports.some((r) => !r.title.startsWith('svadiff_test fault'));
  const res: ExecResult = {
    program,
    check,
    reports,
    deviceReports,
    expectedFaults,
    needsReboot,
    needsReload,
    leaks,
    kmsgText,
    consoleText: guest.consoleSince(g.consoleFrom).join('\n'),
    elapsedMs: Date.now() - t0,
  };
  if (run) res.run = run;
  if (leakCheckMs !== undefined) res.leakCheckMs = leakCheckMs;
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
  // What a program left behind after a kernel report is that report's consequence too.
  if (r.reports.length === 0) {
    const observed = r.leaks.map((l) => l.detail).join('\n');
    for (const l of r.leaks) {
      out.push({
        ...base,
        kind: 'crash',
        title: l.title,
        expected: 'after the program (every task gone, the endpoints given back) the guest is as before it: module references, endpoint drivers, /dev/vfio, IOMMU groups, no new kmemleak object',
        observed,
        excerpt: r.kmsgText,
      });
    }
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
