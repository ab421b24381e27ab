/**
 * svadiff nightly sharded on real debian:6.12 guests: the matrix (one kernel x two seeds, a
 * fixed number of programs per cell) run whole, and as two shards merged with svadiff merge,
 * must give the same bugs, titles and counts; merging a shard again changes nothing; the
 * summary's exit status and files are there. About 3 minutes under TCG on a 2-core machine.
 */
import { execa } from 'execa';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { NightlySummary } from '../../harness/nightly/summary.js';

const CLI = join(process.cwd(), 'bin', 'svadiff.js');
// ops narrowed to the mapping calls, where seed 5 meets the known region bug (mmap.exists) within
// 25 programs on 6.12 (probed 2026-12-04 with seeds 1 to 6: only seed 5 found a bug); seed 1
// finds nothing, so the comparison covers a cell with findings and one without
const MATRIX = ['--kernels', 'debian:6.12', '--seeds', '1,5', '--programs', '25', '--ops', 'open,close,mmap,munmap,mremap', '--time', '30m', '--no-repro', '--night', 'test-night'];

const svadiff = (args: string[]) => execa('node', [CLI, ...args], { reject: false, stdin: 'ignore', env: { ...process.env, CI: 'true' } });

/** Findings of an output directory: id → count. */
function counts(out: string): Record<string, number> {
  const r: Record<string, number> = {};
  if (!existsSync(join(out, 'findings'))) return r; // a store without findings has no directory
  for (const d of readdirSync(join(out, 'findings')).filter((x) => !x.startsWith('.'))) {
    r[d] = (JSON.parse(readFileSync(join(out, 'findings', d, 'finding.json'), 'utf8')) as { count: number }).count;
  }
  return r;
}

const bugs = (s: NightlySummary) => s.kernels.map((k) => ({ spec: k.spec, release: k.release, bugs: k.bugs.map((b) => [b.id, [...b.titles].sort(), b.count]).sort() }));

describe('svadiff nightly --shard and svadiff merge on debian:6.12', () => {
  it('two shards merged give what the whole matrix gives', { timeout: 30 * 60_000 }, async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'svadiff-shards-'));
    const whole = await svadiff(['nightly', ...MATRIX, '--out', join(tmp, 'whole'), '--history', join(tmp, 'h1')]);
    expect([0, 1], whole.stderr.slice(-2000)).toContain(whole.exitCode);
    for (const i of [0, 1]) {
      const r = await svadiff(['nightly', ...MATRIX, '--shard', `${i}/2`, '--out', join(tmp, `shard-${i}`), '--history', join(tmp, 'h2')]);
      expect(r.exitCode, r.stderr.slice(-2000)).toBe(0);
      expect(r.stdout).toContain(`shard ${i}/2 of night test-night: 1 cells`);
    }
    const m = await svadiff(['merge', '--out', join(tmp, 'merged'), join(tmp, 'shard-0'), join(tmp, 'shard-1')]);
    expect(m.exitCode, m.stderr).toBe(0);
    const rep = await svadiff(['nightly', '--report', join(tmp, 'merged'), '--history', join(tmp, 'h2')]);
    expect(rep.exitCode).toBe(whole.exitCode);

    const a = JSON.parse(readFileSync(join(tmp, 'whole', 'summary.json'), 'utf8')) as NightlySummary;
    const b = JSON.parse(readFileSync(join(tmp, 'merged', 'summary.json'), 'utf8')) as NightlySummary;
    expect(b.kernels[0]!.cells.map((c) => [c.name, c.programs])).toEqual([
      ['debian-6.12-s1', 25],
      ['debian-6.12-s5', 25],
    ]);
    expect(bugs(b)).toEqual(bugs(a));
    expect(counts(join(tmp, 'merged'))).toEqual(counts(join(tmp, 'whole')));
    // seed 5 finds the region bug in its first programs: the comparison is not empty
    expect(Object.keys(counts(join(tmp, 'whole'))).length).toBeGreaterThan(0);

    // merging a shard again changes nothing
    const before = readdirSync(join(tmp, 'merged', 'findings')).map((d) => readFileSync(join(tmp, 'merged', 'findings', d, 'finding.json'), 'utf8'));
    const again = await svadiff(['merge', '--out', join(tmp, 'merged'), join(tmp, 'shard-1')]);
    expect(again.stdout).toMatch(/0 added, 0 updated/);
    expect(readdirSync(join(tmp, 'merged', 'findings')).map((d) => readFileSync(join(tmp, 'merged', 'findings', d, 'finding.json'), 'utf8'))).toEqual(before);
    for (const f of ['summary.json', 'junit.xml', 'index.html']) expect(readdirSync(join(tmp, 'merged'))).toContain(f);
  });
});
