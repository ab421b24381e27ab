import { homedir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (works from both the sources and dist/). */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  // harness/util -> root, or dist/harness/util -> root
  for (let i = 0; i < 5; i++) {
    if (dir.endsWith('/harness/util')) {
      const up = dirname(dirname(dir));
      return up.endsWith('/dist') ? dirname(up) : up;
    }
    dir = dirname(dir);
  }
  throw new Error('cannot locate the svadiff project root');
}

/**
 * Where downloads, extracted kernels, built modules and build roots live.
 * SVADIFF_CACHE overrides; otherwise $XDG_CACHE_HOME/svadiff or ~/.cache/svadiff.
 */
export function cacheDir(): string {
  const env = process.env.SVADIFF_CACHE;
  if (env) return env;
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), '.cache'), 'svadiff');
}
