/**
 * svadiff run <program.json> [--kernel K] [--json]: run one program on a fresh guest and print,
 * for every op, what the model expected and what the kernel did. Exit status 1 when the kernel
 * diverged from the model or the kernel log has a report (crash, warning, hang).
 */
import { promises as fs } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatOutcome } from '../program/outcome.js';
import type { Op, Program } from '../program/types.js';
import { parseProgramOrEntry } from '../repro/regress.js';
import { executeProgram, type ExecResult } from '../run/execute.js';
import { UserError } from '../util/errors.js';
import { safeLine } from '../util/sanitize.js';
import type { KernelId } from '../findings/store.js';
import { machineForDevice } from '../vm/machine.js';
import { bootGuest, kernelIdOf, prepare, profileOf, setupFor } from './common.js';

export async function loadProgram(path: string): Promise<Program> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseProgramOrEntry(text, path).program;
}

export async function cmdRun(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { kernel: { type: 'string' }, json: { type: 'boolean' }, accel: { type: 'string' }, out: { type: 'string' }, 'uacce-src': { type: 'string' }, arch: { type: 'string' } },
  });
  if (positionals.length !== 1) throw new UserError('usage: svadiff run <program.json> [--kernel debian:6.12] [--uacce-src S] [--json]');
  const program = await loadProgram(positionals[0]!);
  const setup = await setupFor(await prepare(values.kernel, values.accel, values.out, values['uacce-src'], values.arch), program);
  const profile = profileOf(setup.kernel);
  const guest = await bootGuest(setup, 'run', { machine: machineForDevice(setup.kernel.arch, program.device).name });
  let r: ExecResult;
  try {
    r = await executeProgram(guest, 1, program, profile);
  } finally {
    await guest.shutdown();
  }
  const bad = r.check.divergence !== undefined || r.reports.length > 0 || r.hang !== undefined || r.guestDied !== undefined;
  if (values.json) process.stdout.write(JSON.stringify(runJson(r, kernelIdOf(setup.kernel)), null, 2) + '\n');
  else process.stdout.write(`${setup.kernel.exactSpec} (${setup.kernel.release}); ${setup.kernel.uacce?.text ?? ''}\n` + renderRun(r));
  if (r.check.anomaly) throw new Error(`the agent reported something impossible at op ${r.check.anomaly.index}: ${r.check.anomaly.message}`);
  return bad ? 1 : 0;
}

/** One line per op: index, task, the op in short, expected, observed, verdict. */
export function describeOp(op: Op): string {
  const { op: kind, task, ...rest } = op;
  const args = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${task} ${kind} ${args}`;
}

const MARK = { match: 'ok', divergence: 'DIVERGES', 'no-result': 'no result', unchecked: '-', anomaly: 'AGENT ANOMALY' } as const;

export function renderRun(r: ExecResult): string {
  const L: string[] = [];
  for (const c of r.check.ops) {
    const obs = c.observed ? formatOutcome(c.observed) : '';
    L.push(
      `${String(c.index).padStart(3)}  ${safeLine(describeOp(c.op), 70).padEnd(70)}  expected ${(c.expected ?? '').padEnd(14)} got ${obs.padEnd(14)} ${MARK[c.verdict]}`,
    );
  }
  const d = r.check.divergence;
  if (d) {
    L.push('', `DIVERGENCE at op ${d.index}: ${d.title}`, `model state before the op:`, ...d.stateBefore.split('\n').map((l) => `  ${l}`));
  }
  for (const rep of r.reports) L.push('', `KERNEL REPORT: ${rep.title}`, ...rep.excerpt.split('\n').slice(0, 40).map((l) => `  ${safeLine(l, 200)}`));
  if (r.hang) L.push('', `HANG: ${r.hang.reason}`);
  if (r.guestDied) L.push('', `GUEST DIED: ${r.guestDied}`);
  if (!d && r.reports.length === 0 && !r.hang && !r.guestDied) L.push('', `no divergence, no kernel report (${r.check.checked} ops checked)`);
  return L.join('\n') + '\n';
}

function runJson(r: ExecResult, kernel: KernelId) {
  return {
    kernel,
    ops: r.check.ops.map((c) => ({ index: c.index, op: c.op, verdict: c.verdict, expected: c.expected, observed: c.observed ? formatOutcome(c.observed) : undefined, rules: c.rules })),
    divergence: r.check.divergence ?? null,
    reports: r.reports.map((x) => ({ title: x.title, kind: x.kind, frame: x.frame, excerpt: x.excerpt })),
    hang: r.hang ?? null,
    guest_died: r.guestDied ?? null,
  };
}
