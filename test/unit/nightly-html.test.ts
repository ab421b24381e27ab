/**
 * The nightly page (harness/nightly/html.ts) opened in a real headless browser: Debian's
 * chromium (installed by the host-package step, harness/nightly/browser.ts) driven by
 * playwright-core. Three nights on one history, from the store of a real 6.1 run
 * (test/fixtures/findings/README.md): the bugs-by-kernel table, its statuses and links, the
 * plots over the nights, no script errors and no request leaving the page's directory.
 * SVADIFF_KEEP_SCREENSHOT=<file.png> keeps a picture of the page.
 */
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FindingStore } from '../../harness/findings/store.js';
import { ensureChromium, HEADLESS_FLAGS } from '../../harness/nightly/browser.js';
import { NIGHT_FORMAT, nightPath, type CellResult, type NightRun } from '../../harness/nightly/run.js';
import { summarizeNight, writeSummary, type NightlySummary } from '../../harness/nightly/summary.js';
import { atomicWrite, atomicWriteJson } from '../../harness/util/fsx.js';

const STORE_61 = join(import.meta.dirname, '..', 'fixtures', 'findings', 'fuzz-6.1-seed101');
const R61 = '6.1.0-57-amd64';
const R612 = '6.12.118+deb12-amd64';

let tmp: string;
let browser: Browser;
let tonight: NightlySummary;
let page: string;

function cell(kernel: string, release: string, version: string, index: number, checked: number): CellResult {
  return {
    name: `${kernel.replace(':', '-')}-s1`,
    index,
    kernel,
    seed: 1,
    exact_spec: `debian:${version}`,
    release,
    version,
    status: 'ok',
    run_id: 'r',
    programs: 400,
    checked_ops: checked,
    executed_ops: checked,
    reboots: 3,
    anomalies: 0,
    elapsed_ms: 600_000,
    boot_ms: 100_000,
    started: '2026-12-04T00:00:00.000Z',
  };
}

/** A night of the 6.1 store (with `extra` crash titles) and an empty 6.12 cell, summarized into the history. */
async function night(name: string, extra: string[], checked: number, v61 = '6.1.192'): Promise<{ out: string; s: NightlySummary }> {
  const out = join(tmp, name);
  cpSync(STORE_61, out, { recursive: true });
  const store = await FindingStore.open(out);
  for (const t of extra) await store.recordProgram([{ kind: 'crash', title: t, kernel: { spec: 'debian:6.1.192', release: R61 }, excerpt: '', console: '' }], 'test');
  const n: NightRun = {
    format: NIGHT_FORMAT,
    version: 1,
    night: name,
    started: '2026-12-04T00:00:00.000Z',
    finished: '2026-12-04T00:30:00.000Z',
    config: { kernels: ['debian:6.1', 'debian:6.12'], seeds: [1], time_ms: 600_000, ops: ['open'], jobs: 1, repro: { enabled: true, timeMs: 1, perBugMs: 1, runs: 1 } },
    shards: [{ index: 0, count: 1 }],
    cells: [cell('debian:6.1', R61, v61, 0, checked), cell('debian:6.12', R612, '6.12.118', 1, checked * 2)],
    repros: [],
  };
  await atomicWriteJson(nightPath(out), n);
  const history = join(tmp, 'history');
  const s = await summarizeNight(out, history);
  await writeSummary(out, history, s);
  return { out, s };
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'svadiff-html-'));
  await night('2026-12-01', ['WARNING in uacce_put_queue'], 30_000);
  // Debian kept the release name 6.1.0-57-amd64 from 6.1.191 to 6.1.192
  await night('2026-12-02', ['WARNING in uacce_put_queue'], 36_000, '6.1.191');
  const t = await night('2026-12-03', ['BUG: <script>alert(1)</script> in uacce_fops_open'], 42_000);
  tonight = t.s;
  // a reproduction's files for the new bug, as svadiff repro leaves them
  const newBug = tonight.kernels[0]!.bugs.find((b) => b.status === 'new')!;
  await atomicWrite(join(t.out, 'findings', newBug.id, 'report.txt'), '[BUG] uacce: …\n');
  await atomicWrite(join(t.out, 'findings', newBug.id, 'repro.c'), 'int main(void) { return 0; }\n');
  tonight = await summarizeNight(t.out, join(tmp, 'history'));
  await writeSummary(t.out, join(tmp, 'history'), tonight);
  page = join(t.out, 'index.html');
  const executablePath = await ensureChromium();
  browser = await chromium.launch({ executablePath, headless: true, args: HEADLESS_FLAGS.filter((f) => f !== '--headless') });
}, 15 * 60_000);

afterAll(async () => {
  await browser?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('the nightly page in a headless browser', () => {
  it('shows the result, one row per bug with its status per kernel, links that lead to files, and the plots', { timeout: 120_000 }, async () => {
    const p = await browser.newPage({ viewport: { width: 1280, height: 1200 } });
    const problems: string[] = [];
    p.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    p.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    const requests: string[] = [];
    p.on('request', (r) => requests.push(r.url()));
    await p.goto(pathToFileURL(page).href);

    expect(await p.title()).toBe('svadiff nightly 2026-12-03: 1 new bug');
    expect(await p.locator('.result').innerText()).toBe('1 new bug');
    // the rows are bugs; a bug on two kernels is one (the totals after it count per kernel)
    expect(await p.locator('p', { has: p.locator('.result') }).innerText()).toContain('4 bugs on 2 kernels; counted per kernel: 1 new, 0 regressed, 3 known');

    // tonight: the 6.1 store's 3 known bugs and the new one; the warning of the last nights is fixed
    const rows = p.locator('table.bugs tbody tr[data-bug]');
    expect(await rows.count()).toBe(5);
    const k61 = tonight.kernels[0]!;
    expect(k61.counts).toEqual({ new: 1, regressed: 0, known: 3, 'seen-before': 0, fixed: 1, 'not-seen': 0 });
    const newRow = p.locator('tr', { has: p.locator('.badge.new') });
    expect(await newRow.count()).toBe(1);
    // the title from the guest is text, not markup
    expect(await newRow.locator('.title').innerText()).toBe('BUG: <script>alert(1)</script> in uacce_fops_open');
    expect(await p.locator('script').count()).toBe(0);
    expect(await p.locator('tr', { has: p.locator('.badge.fixed') }).locator('.title').innerText()).toBe('WARNING in uacce_put_queue');
    expect(await p.locator('.badge.known').count()).toBe(3);
    // every status badge is white on its colour (no other rule of the page overrides it)
    const colours = await p.locator('.badge').evaluateAll((bs) => bs.map((b) => getComputedStyle(b).color));
    expect(colours.length).toBeGreaterThanOrEqual(5);
    for (const c of colours) expect(c).toBe('rgb(255, 255, 255)');
    // the kernels say their version, and that 6.1's changed under the same release name
    const heads = await p.locator('table.bugs thead th.k').allInnerTexts();
    expect(heads[0]).toContain('6.1.192 (6.1.0-57-amd64)');
    expect(heads[0]).toContain('was 6.1.191 in the last night');
    expect(heads[1]).toContain('6.12.118 (6.12.118+deb12-amd64)');
    expect(heads[1]).not.toContain('was ');
    expect(await newRow.locator('.count').innerText()).toBe('1 report');

    // the slab bug keeps its seven titles and says why they are one
    const slab = p.locator('tr', { hasText: 'BUG: double free in vma_close' }).first();
    await slab.locator('summary').click();
    expect(await slab.locator('ul.titles li').count()).toBe(6);
    expect(await slab.locator('ul.why li').count()).toBeGreaterThanOrEqual(2);
    expect(await slab.locator('ul.why li').first().isVisible()).toBe(true);

    // every link of the table leads to a file next to the page
    const hrefs = await p.locator('table.bugs a').evaluateAll((as) => as.map((a) => (a as HTMLAnchorElement).href));
    expect(hrefs.length).toBeGreaterThanOrEqual(4 + 2);
    for (const h of hrefs) expect(existsSync(fileURLToPath(h)), h).toBe(true);
    expect(await newRow.locator('a', { hasText: 'report' }).count()).toBe(1);
    expect(await newRow.locator('a', { hasText: 'repro.c' }).count()).toBe(1);

    // per kernel, two plots over the three nights, laid out with a size
    const plots = p.locator('svg.plot');
    expect(await plots.count()).toBe(4);
    for (let i = 0; i < 4; i++) {
      const box = await plots.nth(i).boundingBox();
      expect(box && box.width > 100 && box.height > 50, `plot ${i}`).toBe(true);
    }
    const ops61 = p.locator('section[data-kernel="debian:6.1"] svg.plot').first();
    const points = await ops61.locator('polyline').getAttribute('points');
    expect(points?.trim().split(/\s+/)).toHaveLength(3);
    // checked ops/s rose every night: the line climbs (SVG y grows downwards)
    const ys = points!.trim().split(/\s+/).map((xy) => Number(xy.split(',')[1]));
    expect(ys[0]!).toBeGreaterThan(ys[1]!);
    expect(ys[1]!).toBeGreaterThan(ys[2]!);
    expect(await p.locator('section[data-kernel="debian:6.1"] svg.plot').nth(1).locator('rect.bar:not(.new)').count()).toBe(3);
    expect(await p.locator('section[data-kernel="debian:6.1"] svg.plot').nth(1).locator('rect.bar.new').count()).toBe(2);
    expect(await p.locator('section[data-kernel="debian:6.1"]').innerText()).toContain('4 bugs under 11 distinct titles');

    expect(problems).toEqual([]);
    expect(requests.every((u) => u.startsWith('file://'))).toBe(true);
    const png = await p.screenshot({ fullPage: true });
    expect(png.length).toBeGreaterThan(20_000);
    const keep = process.env.SVADIFF_KEEP_SCREENSHOT;
    if (keep) {
      const shot = join(tmp, 'page.png');
      await p.screenshot({ path: shot, fullPage: true });
      await copyFile(shot, keep);
    }
    await p.close();
  });
});
