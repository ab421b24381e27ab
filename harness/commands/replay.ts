/**
 * svadiff replay <program.json | finding dir | repro.c> [--kernel K] [--runs N] [--expect-title T]
 *
 * Runs a finding's program, or a standalone reproducer, N times on fresh guest state and says
 * how often it reproduced. What counts: the expected title (a finding directory's, the
 * reproducer's own, or --expect-title; --expect-title "" means any finding), see
 * harness/repro/replay.ts. Exit status: 0 reproduced in every run, 1 in none, 3 in some (flaky).
 */
import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { promises as fs } from 'node:fs';
import { loadReplayTarget, replay, type ReplayRun } from '../repro/replay.js';
import { parseAccel } from '../vm/accel.js';
import { UserError } from '../util/errors.js';
import { info } from '../util/log.js';
import { safeLine } from '../util/sanitize.js';
import { DEFAULT_KERNEL, DEFAULT_OUT, parseIntOption } from './common.js';
import { parseArch } from '../../kernels/index.js';
import { withArch } from '../../kernels/spec.js';

export const REPLAY_EXIT = { always: 0, never: 1, flaky: 3 } as const;

export async function cmdReplay(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      kernel: { type: 'string' },
      runs: { type: 'string' },
      'expect-title': { type: 'string' },
      accel: { type: 'string' },
      out: { type: 'string' },
      timeout: { type: 'string' },
      'uacce-src': { type: 'string' },
      arch: { type: 'string' },
    },
  });
  if (positionals.length !== 1) {
    throw new UserError('usage: svadiff replay <program.json | finding dir | repro.c> [--kernel debian:6.12] [--arch arm64] [--uacce-src S] [--runs 3] [--expect-title T]');
  }
  const runs = parseIntOption('runs', values.runs, 1, 1000) ?? 3;
  const timeoutS = parseIntOption('timeout', values.timeout, 1, 600);
  const target = await loadReplayTarget(positionals[0]!);
  // a finding's or reproducer's own kernel carries its architecture (debian:6.12.118/arm64)
  const kernelSpec = withArch(values.kernel ?? target.kernel ?? DEFAULT_KERNEL, values.arch === undefined ? undefined : parseArch(values.arch));
  const logDir = join(resolve(values.out ?? DEFAULT_OUT), 'logs');
  await fs.mkdir(logDir, { recursive: true });
  const expect = values['expect-title'] ?? target.title;
  info(
    `replaying ${target.kind === 'repro' ? 'reproducer' : 'program'} ${target.path} ${runs} time${runs === 1 ? '' : 's'} on ${kernelSpec}; ` +
      (expect ? `reproduced means: ${safeLine(expect, 200)}` : target.kind === 'repro' ? 'reproduced means: exit status 1 or a kernel report' : 'reproduced means: any divergence, kernel report or hang'),
  );
  const line = (r: ReplayRun) => `run ${r.index + 1}/${runs}: ${r.reproduced ? 'reproduced' : 'not reproduced'}${r.rebooted ? ' (after a reboot)' : ''}: ${r.summary}`;
  const res = await replay(target, kernelSpec, {
    runs,
    ...(values['expect-title'] !== undefined ? { expectTitle: values['expect-title'] } : {}),
    accel: parseAccel(values.accel),
    logDir,
    ...(timeoutS !== undefined ? { timeoutMs: timeoutS * 1000 } : {}),
    ...(values['uacce-src'] !== undefined ? { uacceSrc: values['uacce-src'] } : {}),
    onRun: (r) => process.stdout.write(line(r) + '\n'),
  });
  const v = replayVerdict(res.reproduced, runs);
  process.stdout.write(`${v.text} on ${res.kernel.spec} (${res.kernel.release})${res.kernel.uacce && values['uacce-src'] !== undefined ? `; ${res.kernel.uacce}` : ''}\n`);
  return v.exitCode;
}

/** "reproduced k of N" with what it means, and the exit status: 0 every run, 1 none, 3 some (flaky). */
export function replayVerdict(k: number, n: number): { text: string; exitCode: number } {
  if (k === n) return { text: `reproduced ${k} of ${n}`, exitCode: REPLAY_EXIT.always };
  if (k === 0) return { text: `reproduced 0 of ${n}: does not reproduce`, exitCode: REPLAY_EXIT.never };
  return { text: `reproduced ${k} of ${n}: flaky (${k}/${n})`, exitCode: REPLAY_EXIT.flaky };
}
