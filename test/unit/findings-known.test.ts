import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { knownIssuesDir, loadKnownIssues, parseKnownIssues, seriesOf } from '../../harness/findings/known.js';
import { currentDivergenceTitle } from '../../harness/oracle/check.js';
import { loadRegressCorpus } from '../../harness/repro/regress.js';
import { UserError } from '../../harness/util/errors.js';

const file = (issues: unknown[], extra: Record<string, unknown> = {}) =>
  JSON.stringify({ format: 'svadiff-known-issues', version: 1, series: '6.12', issues, ...extra });

describe('known issues', () => {
  it('the shipped files are valid, one per series, and every link into the repository exists', async () => {
    const names = (await readdir(knownIssuesDir())).filter((n) => n.endsWith('.json')).sort();
    expect(names).toEqual(['6.1-arm64.json', '6.1.json', '6.12-arm64.json', '6.12.json', '7.2.json']);
    for (const n of names) {
      const [series, arch] = n.replace(/\.json$/, '').split('-') as [string, 'arm64' | undefined];
      const k = await loadKnownIssues(series, undefined, arch);
      expect(k.source).toMatch(new RegExp(`corpus/known/${n.replace('.', '\\.')}$`));
      for (const issue of k.issues) {
        if (issue.link?.startsWith('corpus/')) expect(existsSync(join(knownIssuesDir(), '..', '..', issue.link)), issue.link).toBe(true);
      }
    }
  });

  it("6.1's slab family entry covers the titles one double free gave on 6.1, and nothing outside uacce's paths", async () => {
    const k = await loadKnownIssues('6.1');
    // titles of the 6.1 fuzz run (seed 101), all minimized to the same 3-op failed mremap move
    for (const t of [
      'BUG: double free in vma_close',
      'BUG: double free in kernfs_put',
      'BUG: slab wrong object count in uacce_fops_mmap',
      'BUG: slab left redzone overwritten in vma_close',
      'BUG: slab slab has n allocated objects but n are to be freed in vma_close',
    ]) {
      expect(k.match(t)?.link, t).toBe('corpus/regress/uacce-6.1-failed-mremap-double-free.json');
    }
    expect(k.match('BUG: double free in ext4_put_super')).toBeUndefined();
    expect(k.match('BUG: KASAN: slab-use-after-free in vma_close')).toBeUndefined();
  });

  it('shipped titles are current divergence titles (no values), and both 6.1 removal-bug observations are known', async () => {
    for (const series of ['6.1', '6.12', '7.2']) {
      for (const issue of (await loadKnownIssues(series)).issues) if (issue.title) expect(currentDivergenceTitle(issue.title)).toBe(issue.title);
    }
    for (const e of await loadRegressCorpus()) expect(currentDivergenceTitle(e.outcome.title), e.name).toBe(e.outcome.title);
    const k = await loadKnownIssues('6.1');
    const removal = k.match('touch: expected SIGBUS, got ok [touch.zombie]');
    expect(removal?.link).toBe('corpus/regress/uacce-6.1-removal-keeps-mknod-mapping.json');
    // what older svadiff versions called it, e.g. in a findings directory written before
    expect(k.match('touch: expected SIGBUS, got ok() [touch.zombie]')).toBe(removal);
    expect(k.match('touch: expected SIGBUS, got ok(0x0) [touch.zombie]')).toBe(removal);
  });

  it('a series without a file has no known issues', async () => {
    const k = await loadKnownIssues('5.10');
    expect(k.issues).toEqual([]);
    expect(k.match('anything')).toBeUndefined();
  });

  it('matches exact titles and regular expressions', () => {
    const k = parseKnownIssues(
      file([
        { title: 'WARNING in f', note: 'n1', link: 'https://example.invalid/1' },
        { title_regex: '^INFO: rcu detected stall in ', note: 'n2', reason: 'TCG' },
      ]),
      'x.json',
      '6.12',
    );
    expect(k.match('WARNING in f')?.note).toBe('n1');
    expect(k.match('WARNING in f2')).toBeUndefined();
    expect(k.match('INFO: rcu detected stall in g')?.note).toBe('n2');
    expect(k.match('x INFO: rcu detected stall in g')).toBeUndefined();
  });

  it('matches a known divergence seen inside a concurrent group, but not a group-only outcome', () => {
    const k = parseKnownIssues(file([{ title: 'mmap: expected EEXIST, got ok [mmap.exists]', note: 'n1', link: 'corpus/regress/x.json' }]), 'x.json', '6.12');
    expect(k.match('mmap (concurrent with exit): expected EEXIST, got ok [mmap.exists]')?.note).toBe('n1');
    expect(k.match('mmap (concurrent with close, open): expected EEXIST, got ok [mmap.exists]')?.note).toBe('n1');
    expect(k.match('mmap (concurrent with exit): expected EEXIST, got ok (no order of the group gives it) [mmap.exists]')).toBeUndefined();
    expect(k.match('mmap (concurrent with exit): expected one of {EEXIST, ok}, got EINVAL [mmap.exists, mmap.ok]')).toBeUndefined();
    expect(k.match('munmap (concurrent with exit): expected EEXIST, got ok [mmap.exists]')).toBeUndefined();
  });

  const bad: [string, string, RegExp][] = [
    ['both title forms', file([{ title: 'a', title_regex: 'a', note: 'n', reason: 'r' }]), /issues\[0\]: give exactly one of "title" and "title_regex"/],
    ['no title', file([{ note: 'n', reason: 'r' }]), /issues\[0\]: give exactly one/],
    ['no note', file([{ title: 'a', reason: 'r' }]), /issues\[0\]: field "note"/],
    ['neither link nor reason', file([{ title: 'a', note: 'n' }]), /issues\[0\]: give a "link".*or a "reason"/],
    ['bad regex', file([{ title_regex: '(', note: 'n', reason: 'r' }]), /issues\[0\]: field "title_regex" is not a valid regular expression/],
    ['unknown field', file([{ title: 'a', note: 'n', reason: 'r', severity: 1 }]), /issues\[0\]: unknown field "severity"/],
    ['wrong series', file([], { series: '6.1' }), /field "series" must be "6\.12"/],
    ['wrong format', file([], { format: 'x' }), /field "format"/],
    ['not JSON', '{', /not valid JSON/],
    ['issues missing', JSON.stringify({ format: 'svadiff-known-issues', version: 1, series: '6.12' }), /field "issues" must be an array/],
  ];
  for (const [what, text, msg] of bad) {
    it(`rejects a file with ${what}, naming the file and the fix`, () => {
      let err: unknown;
      try {
        parseKnownIssues(text, 'corpus/known/6.12.json', '6.12');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toMatch(/^corpus\/known\/6\.12\.json: /);
      expect((err as Error).message).toMatch(msg);
      expect((err as Error).message).not.toContain('\n');
    });
  }

  it('loads from a directory and rejects a malformed file there', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'svadiff-known-'));
    try {
      writeFileSync(join(dir, '6.12.json'), file([{ title: 'WARNING in f', note: 'n', reason: 'r' }]));
      writeFileSync(join(dir, '7.2.json'), '[]');
      expect((await loadKnownIssues('6.12', dir)).issues).toHaveLength(1);
      await expect(loadKnownIssues('7.2', dir)).rejects.toThrow(/7\.2\.json: must be a JSON object/);
      await expect(loadKnownIssues('../x', dir)).rejects.toThrow(UserError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('finds the series of releases and specs', () => {
    expect(seriesOf('6.12.117+deb12-amd64')).toBe('6.12');
    expect(seriesOf('7.2.13+deb14-amd64')).toBe('7.2');
    expect(seriesOf('6.1.0-56-amd64')).toBe('6.1');
    expect(seriesOf('debian:6.12.117+deb12')).toBe('6.12');
    expect(seriesOf('debian:6.1')).toBe('6.1');
    expect(seriesOf('unknown')).toBeUndefined();
  });
});
