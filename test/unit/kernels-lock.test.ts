import { execa } from 'execa';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../harness/util/errors.js';
import { withLock } from '../../kernels/lock.js';

const scratchDirs: string[] = [];
function scratch(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  scratchDirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of scratchDirs) rmSync(d, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('cache entry lock', () => {
  it('excludes a second holder until the first is done, then removes the file', async () => {
    const path = join(scratch('svadiff-lock-'), 'entry.lock');
    const events: string[] = [];
    const a = withLock(path, { what: 'a' }, async () => {
      events.push('a in');
      await sleep(300);
      events.push('a out');
    });
    await sleep(50);
    const b = withLock(path, { what: 'b' }, async () => {
      events.push('b in');
    });
    await Promise.all([a, b]);
    expect(events).toEqual(['a in', 'a out', 'b in']);
    expect(existsSync(path)).toBe(false);
  });

  it('breaks the lock of a process that is gone', async () => {
    const path = join(scratch('svadiff-lock-'), 'entry.lock');
    const dead = await execa('sh', ['-c', 'echo $$']);
    writeFileSync(path, JSON.stringify({ pid: Number(dead.stdout), host: hostname(), since: 0, what: 'crashed' }));
    const t0 = Date.now();
    expect(await withLock(path, { what: 'x', timeoutMs: 5000 }, async () => 42)).toBe(42);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('waits for a live holder in another process, and times out with a UserError', async () => {
    const path = join(scratch('svadiff-lock-'), 'entry.lock');
    const holder = execa('sleep', ['10']);
    try {
      writeFileSync(path, JSON.stringify({ pid: holder.pid, host: hostname(), since: 0, what: 'busy' }));
      await expect(withLock(path, { what: 'x', timeoutMs: 600 }, async () => 1)).rejects.toThrow(UserError);
      expect(existsSync(path)).toBe(true);
    } finally {
      holder.kill();
      await holder.catch(() => undefined);
    }
  });
});
