/**
 * harness/util/proc.ts: a child started with execaTiedToParent dies when the process that
 * started it is SIGKILLed; one started with plain execa lives on (the control: what happened to
 * QEMU before). Runs the compiled module (dist/, built by `npm test`'s tsc) in a node process
 * that the test kills.
 */
import { execa } from 'execa';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { childrenOf, killLeft, waitGone, type ProcInfo } from './process-state.js';

const PROC_JS = join(import.meta.dirname, '..', '..', 'dist', 'harness', 'util', 'proc.js');

/** A node process that starts `sleep 600` (tied or not), and the sleep once it runs. */
async function parentWithSleep(tied: boolean): Promise<{ parent: ReturnType<typeof execa>; sleep: ProcInfo }> {
  const start = tied ? `(await import(${JSON.stringify(PROC_JS)})).execaTiedToParent('sleep', ['600'])` : "(await import('execa')).execa('sleep', ['600'])";
  const parent = execa('node', ['--input-type=module', '-e', `const c = ${start}; c.catch(() => {}); console.log('started'); setInterval(() => {}, 1000);`], {
    reject: false,
    cwd: join(import.meta.dirname, '..', '..'),
  });
  await new Promise<void>((resolve) => parent.stdout?.on('data', (b: Buffer) => b.toString().includes('started') && resolve()));
  for (let i = 0; i < 500; i++) {
    const sleep = childrenOf(parent.pid!).find((p) => p.comm === 'sleep');
    if (sleep) return { parent, sleep };
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('the sleep did not start');
}

describe('execaTiedToParent', () => {
  it('the child dies with its parent, however the parent dies', { timeout: 30_000 }, async () => {
    const { parent, sleep } = await parentWithSleep(true);
    try {
      parent.kill('SIGKILL');
      await parent;
      expect(await waitGone([sleep], 5000), 'sleep still runs after its parent was SIGKILLed').toBeDefined();
    } finally {
      killLeft([sleep]);
    }
  });

  it('(control) a child started with plain execa outlives a SIGKILLed parent', { timeout: 30_000 }, async () => {
    const { parent, sleep } = await parentWithSleep(false);
    try {
      parent.kill('SIGKILL');
      await parent;
      expect(await waitGone([sleep], 1000)).toBeUndefined();
    } finally {
      killLeft([sleep]);
    }
  });
});
