/**
 * A headless browser for the nightly page: Debian's chromium, installed by the host-package
 * step like every other program svadiff runs (util/host.ts). `svadiff nightly --screenshot`
 * takes a picture of index.html with it, and the tests open the page in it. The network stays
 * closed to it: no background requests, no component updates, a fresh profile every time.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { UserError } from '../util/errors.js';
import { ensureHostTools, which, type HostTool } from '../util/host.js';
import { execaTiedToParent } from '../util/proc.js';

export const CHROMIUM: HostTool = { cmd: 'chromium', pkg: 'chromium', why: 'a headless browser for the nightly page' };

/** Flags for a headless run that needs no sandbox setup, no GPU and no network of its own. */
export const HEADLESS_FLAGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** The chromium binary, installed first when it is missing (root) or a one-line error naming the apt-get line. */
export async function ensureChromium(): Promise<string> {
  await ensureHostTools([CHROMIUM]);
  const path = which(CHROMIUM.cmd);
  if (!path) throw new UserError('chromium is not on PATH after installing it; install it with: apt-get install chromium');
  return path;
}

/** A PNG of an HTML file as a 1280-pixel-wide window shows it (the top `height` pixels). */
export async function screenshotPage(htmlPath: string, pngPath: string, height = 1600): Promise<void> {
  await ensureChromium();
  const profile = await mkdtemp(join(tmpdir(), 'svadiff-chromium-'));
  try {
    const r = await execaTiedToParent(
      'chromium',
      [...HEADLESS_FLAGS, `--user-data-dir=${profile}`, '--hide-scrollbars', `--window-size=1280,${height}`, `--screenshot=${pngPath}`, pathToFileURL(htmlPath).href],
      { reject: false, all: true, timeout: 120_000 },
    );
    if (r.exitCode !== 0) throw new UserError(`chromium could not take a screenshot of ${htmlPath} (exit ${r.exitCode}): ${String(r.all ?? '').split('\n').slice(-3).join(' | ')}`);
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}
