/**
 * An exclusive lock between processes (two CLI runs, vitest workers) on one cache entry: a lock
 * file created with O_EXCL that names its owner. A lock whose owner is gone (same host, pid not
 * alive) is stale and broken; breaking it is itself guarded by a short-lived second lock so that
 * two waiters cannot both break it and then both own it.
 */
import { promises as fs } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { info } from '../harness/util/log.js';
import { UserError } from '../harness/util/errors.js';

interface Owner {
  pid: number;
  host: string;
  since: number;
  what: string;
}

const POLL_MS = 250;
/** a breaker lock older than this was left by a process that died while breaking a lock */
const BREAKER_STALE_MS = 10_000;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function tryCreate(path: string, content: string): Promise<boolean> {
  try {
    const fh = await fs.open(path, 'wx', 0o644);
    try {
      await fh.writeFile(content);
    } finally {
      await fh.close();
    }
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

async function readOwner(path: string): Promise<{ raw: string; owner?: Owner } | undefined> {
  let raw: string;
  try {
    raw = await fs.readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const o = JSON.parse(raw) as Owner;
    if (typeof o.pid === 'number' && typeof o.host === 'string') return { raw, owner: o };
  } catch {
    // a lock file being written right now, or garbage: judged by its age below
  }
  return { raw };
}

async function isStale(path: string, owner: Owner | undefined): Promise<boolean> {
  if (owner) return owner.host === hostname() && !pidAlive(owner.pid);
  // unreadable content: stale only if it has stayed like that for a while
  try {
    const st = await fs.stat(path);
    return Date.now() - st.mtimeMs > BREAKER_STALE_MS;
  } catch {
    return false;
  }
}

async function breakStale(path: string, staleRaw: string): Promise<void> {
  const breaker = `${path}.breaker`;
  if (!(await tryCreate(breaker, String(process.pid)))) {
    try {
      const st = await fs.stat(breaker);
      if (Date.now() - st.mtimeMs > BREAKER_STALE_MS) await fs.rm(breaker, { force: true });
    } catch {
      /* gone already */
    }
    return;
  }
  try {
    const now = await readOwner(path);
    // only remove the lock we judged stale, not one a faster process has taken since
    if (now && now.raw === staleRaw) await fs.rm(path, { force: true });
  } finally {
    await fs.rm(breaker, { force: true });
  }
}

export interface LockOptions {
  /** what the lock protects, for the waiting message ("building debian-6.12.117-x86_64") */
  what: string;
  /** give up after this long (default: wait for ever) */
  timeoutMs?: number;
}

/** Run fn while holding the lock file at path. */
export async function withLock<T>(path: string, opts: LockOptions, fn: () => Promise<T>): Promise<T> {
  const me: Owner = { pid: process.pid, host: hostname(), since: Date.now(), what: opts.what };
  const content = JSON.stringify(me);
  const t0 = Date.now();
  await fs.mkdir(dirname(path), { recursive: true });
  let announced = false;
  for (;;) {
    if (await tryCreate(path, content)) break;
    const cur = await readOwner(path);
    if (cur === undefined) continue; // released between our two calls
    if (await isStale(path, cur.owner)) {
      await breakStale(path, cur.raw);
      continue;
    }
    if (!announced) {
      const who = cur.owner ? `pid ${cur.owner.pid}${cur.owner.host !== me.host ? ` on ${cur.owner.host}` : ''}` : 'another process';
      info(`waiting for ${who}, which is ${cur.owner?.what ?? 'holding ' + path}`);
      announced = true;
    }
    if (opts.timeoutMs !== undefined && Date.now() - t0 > opts.timeoutMs) {
      throw new UserError(`timed out waiting for the lock ${path} (${opts.what}); if no svadiff is running, delete it`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  try {
    return await fn();
  } finally {
    const cur = await readOwner(path).catch(() => undefined);
    if (cur?.raw === content) await fs.rm(path, { force: true });
  }
}
