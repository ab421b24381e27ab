/**
 * Helpers of the C reproducer tests (test/unit/repro-csource*.test.ts): compile a reproducer
 * for real (gcc -static -O2 -Wall -Wextra -Werror), run a program through the real agent on
 * this host, read the outcome a reproducer printed for each step.
 */
import { execa } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { observe } from '../../harness/agent/observe.js';
import { slotTable } from '../../harness/agent/wire.js';
import { formatOutcome } from '../../harness/program/outcome.js';
import { parseProgram } from '../../harness/program/parse.js';
import { DEFAULT_DEVICE, type Op, type Program } from '../../harness/program/types.js';
import { stepCalls } from '../../harness/repro/csource.js';
import { startLocalAgent, useTestCache } from './agent-local.js';

export const FLAGS = ['-static', '-O2', '-Wall', '-Wextra', '-Werror'];

/** A scratch directory for C files and binaries, removed by its cleanup. */
export function scratch(prefix: string): { dir: string; compile: (source: string) => Promise<string>; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let n = 0;
  return {
    dir,
    compile: async (source: string) => {
      const i = n++;
      const c = join(dir, `r${i}.c`);
      const bin = join(dir, `r${i}`);
      writeFileSync(c, source);
      const r = await execa('gcc', [...FLAGS, '-o', bin, c], { reject: false, all: true });
      if (r.exitCode !== 0) throw new Error(`gcc failed for ${c}:\n${String(r.all).split('\n').slice(0, 30).join('\n')}`);
      return bin;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A program through the parser: the same checks as any program file. */
export function program(ops: Op[], device = DEFAULT_DEVICE): Program {
  return parseProgram(JSON.stringify({ format: 'svadiff-program', version: 1, device, ops }), 'test');
}

/** No expectation for any step (nothing checked). */
export const none = (p: Program) => ({ expected: p.ops.map(() => undefined) });

/** The outcome a reproducer printed for each step ("step N (task): <call> = <outcome> (…)"). */
export function printedOutcomes(p: Program, stdout: string): (string | undefined)[] {
  const calls = stepCalls(p);
  const lines = stdout.split('\n');
  return p.ops.map((op, i) => {
    const prefix = `step ${i} (${op.task}): ${calls[i]} = `;
    const line = lines.find((l) => l.startsWith(prefix));
    if (line === undefined) return undefined;
    const rest = line.slice(prefix.length);
    const m = /^(.*?) \((?:expected |not checked)/.exec(rest);
    return m ? m[1] : rest;
  });
}

/** Every op's outcome through the real agent on this host (no test device), as svadiff writes it. */
export async function viaAgent(p: Program): Promise<string[]> {
  useTestCache();
  const agent = await startLocalAgent();
  try {
    await agent.session.waitHello(10_000);
    const run = await agent.session.runProgram(1, p);
    const slots = slotTable(p);
    return p.ops.map((op, i) => {
      const raw = run.results[i];
      return raw ? formatOutcome(observe(op, raw, slots)) : 'no result';
    });
  } finally {
    await agent.stop();
  }
}

/** Every single-task op kind, every variant the agent distinguishes (via, prot, region, work, ioctl, attr). */
export const EVERY_SINGLE_TASK_OP: Op[] = [
  { op: 'open', task: 't0', fd: 'q', dev: 0, via: 'path' },
  { op: 'open', task: 't0', fd: 'k', dev: 0, via: 'mknod' },
  { op: 'open', task: 't0', fd: 'p', dev: 1, via: 'procfd', of: 'q' },
  { op: 'dup', task: 't0', fd: 'q', as: 'q2' },
  { op: 'mmap', task: 't0', map: 'm', fd: 'q', region: 0, pages: 1, prot: 'rw', shared: true },
  { op: 'mmap', task: 't0', map: 'd', fd: 'q', region: 1, pages: 2, prot: 'r', shared: false },
  { op: 'mmap', task: 't0', map: 'x', fd: 'q', region: 5, pages: 1, prot: 'none', shared: true },
  { op: 'alloc', task: 't0', map: 'b', pages: 4 },
  { op: 'touch', task: 't0', map: 'b', page: 1, offset: 8, access: 'write', value: '0x1122334455667788' },
  { op: 'touch', task: 't0', map: 'b', page: 1, offset: 8, access: 'read' },
  { op: 'touch', task: 't0', map: 'm', page: 0, offset: 0x20, access: 'read' },
  { op: 'touch', task: 't0', map: 'b', page: 0, offset: 0, access: 'read' },
  { op: 'submit', task: 't0', mmio: 'm', dus: 'd', work: 'write', target: 'b', page: 0, offset: 0, value: '0x5', ack: true },
  { op: 'submit', task: 't0', mmio: 'b', dus: 'b', work: 'read', target: 'b', page: 2, offset: 16, ack: false },
  { op: 'submit', task: 't0', mmio: 'm', dus: 'd', work: 'invalid', target: 'b', page: 0, offset: 0, ack: false },
  { op: 'ioctl', task: 't0', fd: 'q', cmd: 'START_Q' },
  { op: 'ioctl', task: 't0', fd: 'q', cmd: 'PING' },
  { op: 'ioctl', task: 't0', fd: 'q', cmd: 0x5710 },
  { op: 'ioctl', task: 't0', fd: 'q', cmd: 'PUT_Q' },
  { op: 'poll', task: 't0', fd: 'q', timeout_ms: 20 },
  { op: 'madvise', task: 't0', map: 'b', page: 0, pages: 2, advice: 'dofork' },
  { op: 'mremap', task: 't0', map: 'b', page: 0, old_pages: 2, new_pages: 3, move: true, dontunmap: false, to: 'c' },
  { op: 'mremap', task: 't0', map: 'b', page: 2, old_pages: 1, new_pages: 1, move: false, dontunmap: true, to: 'e' },
  { op: 'mremap', task: 't0', map: 'b', page: 2, old_pages: 2, new_pages: 1, move: false, dontunmap: false },
  { op: 'touch', task: 't0', map: 'c', page: 1, offset: 8, access: 'read' },
  { op: 'touch', task: 't0', map: 'b', page: 0, offset: 0, access: 'read' },
  { op: 'touch', task: 't0', map: 'b', page: 2, offset: 0, access: 'write', value: '0x7' },
  { op: 'munmap', task: 't0', map: 'c', page: 1, pages: 1 },
  { op: 'touch', task: 't0', map: 'c', page: 1, offset: 0, access: 'read' },
  { op: 'remove', task: 't0', dev: 1 },
  { op: 'add', task: 't0', dev: 1 },
  ...(['api', 'flags', 'available_instances', 'algorithms', 'region_mmio_size', 'region_dus_size', 'isolate', 'isolate_strategy'] as const).map(
    (attr): Op => ({ op: 'sysfs_read', task: 't0', dev: 0, attr }),
  ),
  { op: 'sysfs_write', task: 't0', dev: 0, attr: 'isolate_strategy', value: 'a "quoted" ?? value\n' },
  { op: 'close', task: 't0', fd: 'q' },
  { op: 'close', task: 't0', fd: 'q' },
  { op: 'alloc', task: 't0', map: 'g', pages: 3 },
  { op: 'touch', task: 't0', map: 'g', page: 1, offset: 0, access: 'write', value: '0x44' },
  { op: 'mprotect', task: 't0', map: 'g', page: 1, pages: 1, prot: 'none' },
  { op: 'touch', task: 't0', map: 'g', page: 1, offset: 0, access: 'read' },
  { op: 'mprotect', task: 't0', map: 'g', page: 0, pages: 3, prot: 'r' },
  { op: 'touch', task: 't0', map: 'g', page: 1, offset: 0, access: 'read' },
  { op: 'touch', task: 't0', map: 'g', page: 2, offset: 0, access: 'write', value: '0x45' },
  { op: 'mprotect', task: 't0', map: 'g', page: 0, pages: 4, prot: 'rw' },
  { op: 'touch', task: 't0', map: 'g', page: 2, offset: 0, access: 'write', value: '0x46' },
  { op: 'mprotect', task: 't0', map: 'm', page: 0, pages: 1, prot: 'r' },
  // pasid reads SVT_REG_PASID (0x1c) of page 0: here of anonymous memory, 0 then a stored 5
  { op: 'pasid', task: 't0', map: 'g' },
  { op: 'touch', task: 't0', map: 'g', page: 0, offset: 0x18, access: 'write', value: '0x500000000' },
  { op: 'pasid', task: 't0', map: 'g' },
];
