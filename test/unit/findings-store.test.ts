import { mkdtempSync, promises as fs, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseKnownIssues } from '../../harness/findings/known.js';
import { cleanTitle, findingId, FindingStore, MAX_CONSOLE, type Finding, type FindingCandidate } from '../../harness/findings/store.js';
import { parseReports } from '../../harness/oracle/report.js';
import { formatProgram, parseProgram } from '../../harness/program/parse.js';
import type { Program } from '../../harness/program/types.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SEED = parseProgram(readFileSync(join(ROOT, 'corpus', 'seeds', 'basic-lifecycle.json'), 'utf8'), 'seed');
const shorter = (p: Program, n: number): Program => ({ ...p, ops: p.ops.slice(0, n) });

const K612 = { spec: 'debian:6.12', release: '6.12.117+deb12-amd64' };
const K72 = { spec: 'debian:7.2', release: '7.2.13+deb14-amd64' };

let out: string;
const problems: string[] = [];
const open = (opts = {}) => FindingStore.open(out, { onProblem: (m) => problems.push(m), ...opts });

beforeEach(() => {
  out = mkdtempSync(join(tmpdir(), 'svadiff-findings-'));
  problems.length = 0;
});
afterEach(() => rmSync(out, { recursive: true, force: true }));

const crash = (extra: Partial<FindingCandidate> = {}): FindingCandidate => ({
  kind: 'crash',
  title: 'WARNING in splat_warn',
  kernel: K612,
  program: SEED,
  console: 'boot\nWARNING: CPU: 0 PID: 1 at x.c:1 splat_warn+0x1/0x2\n',
  excerpt: 'WARNING: CPU: 0 PID: 1 at x.c:1 splat_warn+0x1/0x2',
  report: { kind: 'warning', pattern: 'warning', frame: 'splat_warn', corrupted: false },
  at: new Date('2026-01-01T00:00:00Z'),
  ...extra,
});

async function readJson(path: string): Promise<Record<string, unknown>> {
  return JSON.parse(await fs.readFile(path, 'utf8')) as Record<string, unknown>;
}

describe('finding ids', () => {
  it('are readable, file-system safe, at most 64 characters and stable', () => {
    const id = findingId('WARNING in splat_warn');
    expect(id).toMatch(/^warning-in-splat-warn-[0-9a-f]{10}$/);
    expect(findingId('WARNING in splat_warn')).toBe(id);
    for (const t of ['x'.repeat(500), 'BUG: KASAN: slab-use-after-free Read in uacce_fops_release', '../../etc/passwd', '', '∂∂∂', 'a/b\\c:d*e?f"g<h>i|j']) {
      const i = findingId(t);
      expect(i.length).toBeLessThanOrEqual(64);
      expect(i).toMatch(/^[a-z0-9][a-z0-9-]*[a-z0-9]$/);
    }
  });

  it('differ for titles that differ only in case or punctuation', () => {
    expect(findingId('WARNING in f')).not.toBe(findingId('warning in f'));
    expect(findingId('BUG: x')).not.toBe(findingId('BUG x'));
  });

  it('titles are cleaned of control characters and new lines before use', () => {
    expect(cleanTitle('WARNING in \x1b[31mf\x1b[0m\n  again')).toBe('WARNING in f again');
  });
});

describe('FindingStore', () => {
  it('writes a new finding as four files, atomically and without leftovers', async () => {
    const store = await open();
    const r = await store.record(crash());
    expect(r).toEqual({ id: findingId('WARNING in splat_warn'), isNew: true, count: 1, known: false, bug: findingId('WARNING in splat_warn'), newBug: true, bugKnown: false });
    const dir = join(out, 'findings', r.id);
    expect((await fs.readdir(dir)).sort()).toEqual(['console.log', 'dmesg.txt', 'finding.json', 'program.json']);
    const f = await readJson(join(dir, 'finding.json'));
    expect(f).toMatchObject({
      format: 'svadiff-finding',
      version: 1,
      id: r.id,
      kind: 'crash',
      title: 'WARNING in splat_warn',
      kernel: K612,
      count: 1,
      first_seen: '2026-01-01T00:00:00.000Z',
      last_seen: '2026-01-01T00:00:00.000Z',
      expected: '',
      observed: '',
      known: false,
      program_ops: SEED.ops.length,
      report: { kind: 'warning', pattern: 'warning', frame: 'splat_warn', corrupted: false },
    });
    expect(f.kernels).toEqual({ [K612.release]: { spec: K612.spec, count: 1, first_seen: '2026-01-01T00:00:00.000Z', last_seen: '2026-01-01T00:00:00.000Z' } });
    expect(await fs.readFile(join(dir, 'program.json'), 'utf8')).toBe(formatProgram(SEED));
    expect(parseProgram(await fs.readFile(join(dir, 'program.json'), 'utf8'), 'kept')).toEqual(SEED);
    expect(await fs.readFile(join(dir, 'dmesg.txt'), 'utf8')).toBe(crash().excerpt);
  });

  it('deduplicates by title, keeps the first program and counts per kernel', async () => {
    const store = await open();
    await store.record(crash());
    const again = await store.record(crash({ program: shorter(SEED, 2), console: 'second run', at: new Date('2026-01-02T00:00:00Z') }));
    expect(again).toMatchObject({ isNew: false, count: 2 });
    const dir = join(out, 'findings', again.id);
    expect(await fs.readFile(join(dir, 'program.json'), 'utf8')).toBe(formatProgram(SEED));
    expect(await fs.readFile(join(dir, 'console.log'), 'utf8')).toBe(crash().console);
    const other = await store.record(crash({ kernel: K72, program: shorter(SEED, 1), at: new Date('2026-01-03T00:00:00Z') }));
    expect(other).toMatchObject({ id: again.id, isNew: false, count: 3 });
    expect(await fs.readFile(join(dir, 'program.json'), 'utf8')).toBe(formatProgram(SEED));
    expect(await fs.readFile(join(dir, 'console.log'), 'utf8')).toBe(crash().console);
    const f = await readJson(join(dir, 'finding.json'));
    expect(f).toMatchObject({ count: 3, first_seen: '2026-01-01T00:00:00.000Z', last_seen: '2026-01-03T00:00:00.000Z', kernel: K612 });
    expect(f.kernels).toEqual({
      [K612.release]: { spec: K612.spec, count: 2, first_seen: '2026-01-01T00:00:00.000Z', last_seen: '2026-01-02T00:00:00.000Z' },
      [K72.release]: { spec: K72.spec, count: 1, first_seen: '2026-01-03T00:00:00.000Z', last_seen: '2026-01-03T00:00:00.000Z' },
    });
    expect(store.list().map((x) => x.id)).toEqual([again.id]);
  });

  it('with keepShortest, a shorter program replaces the kept one together with its evidence', async () => {
    const store = await open({ keepShortest: true });
    const r = await store.record(crash({ program: shorter(SEED, 6) }));
    await store.record(crash({ program: SEED, console: 'longer' }));
    const dir = join(out, 'findings', r.id);
    expect(await fs.readFile(join(dir, 'program.json'), 'utf8')).toBe(formatProgram(shorter(SEED, 6)));
    await store.record(crash({ program: shorter(SEED, 3), console: 'shortest', excerpt: 'x', opIndex: 2 }));
    expect(await fs.readFile(join(dir, 'program.json'), 'utf8')).toBe(formatProgram(shorter(SEED, 3)));
    expect(await fs.readFile(join(dir, 'console.log'), 'utf8')).toBe('shortest');
    expect(await readJson(join(dir, 'finding.json'))).toMatchObject({ count: 3, program_ops: 3, op_index: 2 });
  });

  it('keeps the programs run before a crash since boot (preceding.json), and drops them with the evidence they went with', async () => {
    const store = await open({ keepShortest: true });
    const before = [shorter(SEED, 2), shorter(SEED, 4)];
    const r = await store.record(crash({ program: SEED, preceding: before }));
    const dir = join(out, 'findings', r.id);
    const log = await readJson(join(dir, 'preceding.json'));
    expect(log).toMatchObject({ format: 'svadiff-program-log', version: 1 });
    expect((log.programs as unknown[]).map((p) => parseProgram(JSON.stringify(p), 'log'))).toEqual(before);
    expect(await readJson(join(dir, 'finding.json'))).toMatchObject({ preceding_programs: 2 });
    // a shorter program seen right after boot replaces the evidence: its (empty) history too
    await store.record(crash({ program: shorter(SEED, 3) }));
    await expect(fs.access(join(dir, 'preceding.json'))).rejects.toThrow();
    expect(await readJson(join(dir, 'finding.json'))).not.toHaveProperty('preceding_programs');
  });

  it('never keeps preceding programs for divergences (they start from a fresh device and task tree)', async () => {
    const store = await open();
    const r = await store.record({ kind: 'divergence', title: 'mmap: expected ok, got EEXIST [mmap.ok]', kernel: K612, program: SEED, preceding: [SEED], expected: 'ok', observed: 'EEXIST', opIndex: 1 });
    await expect(fs.access(join(out, 'findings', r.id, 'preceding.json'))).rejects.toThrow();
  });

  it('keeps divergences apart from crashes and stores what was expected and observed', async () => {
    const store = await open();
    const d = await store.record({
      kind: 'divergence',
      title: 'mmap region 1 beyond its size: expected EINVAL, got ok',
      kernel: K612,
      expected: 'EINVAL',
      observed: 'ok',
      opIndex: 4,
      rule: 'uacce_fops_mmap: vma longer than the region (drivers/misc/uacce/uacce.c, 6.12)',
      program: SEED,
    });
    await store.record(crash());
    const f = await readJson(join(out, 'findings', d.id, 'finding.json'));
    expect(f).toMatchObject({ kind: 'divergence', expected: 'EINVAL', observed: 'ok', op_index: 4 });
    expect(f.rule).toMatch(/^uacce_fops_mmap/);
    expect(store.list()).toHaveLength(2);
  });

  it('resumes the counts of an existing output directory', async () => {
    const first = await open();
    await first.record(crash());
    await first.record(crash());
    const second = await open();
    expect(second.list().map((f) => f.count)).toEqual([2]);
    const r = await second.record(crash({ program: shorter(SEED, 1) }));
    expect(r).toMatchObject({ isNew: false, count: 3 });
    expect(await fs.readFile(join(out, 'findings', r.id, 'program.json'), 'utf8')).toBe(formatProgram(SEED));
    expect(problems).toEqual([]);
  });

  it('reports corrupt and partial files, skips them and records such a finding anew', async () => {
    const first = await open();
    const good = await first.record(crash());
    const broken = await first.record(crash({ title: 'BUG: corrupted list in f' }));
    const wrongId = await first.record(crash({ title: 'kernel BUG in g' }));
    const findings = join(out, 'findings');
    await fs.writeFile(join(findings, broken.id, 'finding.json'), '{"format": "svadiff-finding", "vers');
    await fs.mkdir(join(findings, 'partial-0123456789'));
    await fs.writeFile(join(findings, 'partial-0123456789', 'program.json'), '{}');
    await fs.writeFile(join(findings, 'stray-file'), 'x');
    const f = await readJson(join(findings, wrongId.id, 'finding.json'));
    await fs.writeFile(join(findings, wrongId.id, 'finding.json'), JSON.stringify({ ...f, count: -1 }));

    const second = await open();
    expect(second.list().map((x) => x.id)).toEqual([good.id]);
    expect(problems).toHaveLength(4);
    expect(problems.find((p) => p.includes(broken.id))).toMatch(/not valid JSON/);
    expect(problems.find((p) => p.includes('partial-0123456789'))).toMatch(/missing/);
    expect(problems.find((p) => p.includes('stray-file'))).toMatch(/not a finding directory/);
    expect(problems.find((p) => p.includes(wrongId.id))).toMatch(/"count"/);

    const again = await second.record(crash({ title: 'BUG: corrupted list in f' }));
    expect(again).toMatchObject({ id: broken.id, isNew: true, count: 1 });
    expect(await readJson(join(findings, broken.id, 'finding.json'))).toMatchObject({ count: 1, title: 'BUG: corrupted list in f' });
  });

  it('serializes concurrent records: no lost update, no temporary file left', async () => {
    const store = await open();
    const results = await Promise.all(Array.from({ length: 25 }, (_, i) => store.record(crash({ kernel: i % 2 ? K72 : K612 }))));
    expect(results.map((r) => r.count).sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect(results.filter((r) => r.isNew)).toHaveLength(1);
    const dir = join(out, 'findings', results[0]!.id);
    const f = await readJson(join(dir, 'finding.json'));
    expect(f.count).toBe(25);
    expect(Object.values(f.kernels as Record<string, { count: number }>).map((k) => k.count).sort()).toEqual([12, 13]);
    expect((await fs.readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('stores guest output without control sequences and bounded', async () => {
    const store = await open();
    const huge = '\x1b[2J\x1b]0;title\x07' + 'y'.repeat(MAX_CONSOLE + 1000) + 'END';
    const r = await store.record(crash({ console: huge }));
    const text = await fs.readFile(join(out, 'findings', r.id, 'console.log'), 'utf8');
    expect(text).not.toMatch(/\x1b/);
    expect(text.endsWith('END')).toBe(true);
    expect(text.length).toBeLessThan(MAX_CONSOLE + 200);
    expect(text).toMatch(/^\[svadiff: \d+ earlier characters dropped\]/);
  });

  it('labels known issues per kernel series: known only when every kernel lists it', async () => {
    const known612 = parseKnownIssues(
      JSON.stringify({
        format: 'svadiff-known-issues',
        version: 1,
        series: '6.12',
        issues: [{ title_regex: '^WARNING in splat_', note: 'the test module warns on purpose', reason: 'test fixture' }],
      }),
      'test',
      '6.12',
    );
    const asked: string[] = [];
    const store = await open({
      knownIssues: async (series: string) => {
        asked.push(series);
        return series === '6.12' ? known612 : parseKnownIssues(`{"format":"svadiff-known-issues","version":1,"series":"${series}","issues":[]}`, 'test', series);
      },
    });
    const a = await store.record(crash());
    expect(a.known).toBe(true);
    const f1 = store.get(a.id)!;
    expect(f1.known_note).toBe('the test module warns on purpose — test fixture');
    expect(f1.kernels[K612.release]!.known).toBe(f1.known_note);
    const b = await store.record(crash({ kernel: K72 }));
    expect(b.known).toBe(false);
    expect(store.get(a.id)!.kernels[K72.release]!.known).toBeUndefined();
    const other = await store.record(crash({ title: 'KFENCE: use-after-free read in f' }));
    expect(other.known).toBe(false);
    expect([...new Set(asked)].sort()).toEqual(['6.12', '7.2']);
  });

  it('relabels findings already on disk when it opens: a title listed since shows as known', async () => {
    const none = async (series: string) => parseKnownIssues(`{"format":"svadiff-known-issues","version":1,"series":"${series}","issues":[]}`, 'test', series);
    const first = await open({ knownIssues: none });
    const a = await first.record(crash());
    expect(a.known).toBe(false);
    const listed = async (series: string) =>
      parseKnownIssues(
        JSON.stringify({ format: 'svadiff-known-issues', version: 1, series, issues: [{ title: crash().title, note: 'reviewed', link: 'corpus/regress/x.json' }] }),
        'test',
        series,
      );
    const second = await open({ knownIssues: listed });
    expect(second.get(a.id)!.known).toBe(true);
    const onDisk = JSON.parse(readFileSync(join(out, 'findings', a.id, 'finding.json'), 'utf8')) as { known: boolean; count: number };
    expect(onDisk).toMatchObject({ known: true, count: 1 });
  });

  describe('a directory written when divergence titles carried values', () => {
    const K61 = { spec: 'debian:6.1', release: '6.1.0-56-amd64' };
    const OLD_EMPTY = 'touch: expected SIGBUS, got ok() [touch.zombie]';
    const OLD_ZERO = 'touch: expected SIGBUS, got ok(0x0) [touch.zombie]';
    const NOW = 'touch: expected SIGBUS, got ok [touch.zombie]';
    const listed = async (series: string) =>
      parseKnownIssues(JSON.stringify({ format: 'svadiff-known-issues', version: 1, series, issues: [{ title: NOW, note: 'reviewed', link: 'corpus/regress/x.json' }] }), 'test', series);

    /** A finding directory as an older svadiff wrote it. */
    async function oldFinding(title: string, count: number, at: string, ops: number, kernel = K61): Promise<string> {
      const id = findingId(title);
      const f: Finding = {
        format: 'svadiff-finding', version: 1, id, kind: 'divergence', title, kernel,
        kernels: { [kernel.release]: { spec: kernel.spec, count, first_seen: at, last_seen: at } },
        count, first_seen: at, last_seen: at, expected: 'SIGBUS', observed: title.includes('0x0') ? 'ok(0x0)' : 'ok()',
        known: false, op_index: ops - 1, rule: 'touch.zombie', program_ops: ops,
      };
      await fs.mkdir(join(out, 'findings', id), { recursive: true });
      await fs.writeFile(join(out, 'findings', id, 'program.json'), formatProgram(shorter(SEED, ops)));
      await fs.writeFile(join(out, 'findings', id, 'finding.json'), JSON.stringify(f));
      return id;
    }

    it('brings them to the current title: one finding, counts and kernels added up, known again, nothing lost', async () => {
      const emptyId = await oldFinding(OLD_EMPTY, 3, '2026-11-20T10:00:00.000Z', 3);
      const zeroId = await oldFinding(OLD_ZERO, 2, '2026-11-21T10:00:00.000Z', 2, K612);
      const store = await open({ knownIssues: listed });
      expect(problems).toEqual([]);
      const id = findingId(NOW);
      expect(store.list().map((f) => [f.id, f.title, f.count, f.known])).toEqual([[id, NOW, 5, true]]);
      const f = await readJson(join(out, 'findings', id, 'finding.json'));
      expect(f).toMatchObject({ id, title: NOW, count: 5, first_seen: '2026-11-20T10:00:00.000Z', last_seen: '2026-11-21T10:00:00.000Z', kernel: K61 });
      expect(f.former_ids).toEqual([emptyId, zeroId].sort());
      expect(Object.keys(f.kernels as object).sort()).toEqual([K61.release, K612.release]);
      // the first (by directory name) was renamed with its evidence, the other kept aside
      const [renamed, merged] = [emptyId, zeroId].sort();
      expect(await fs.readFile(join(out, 'findings', id, 'program.json'), 'utf8')).toBe(formatProgram(shorter(SEED, renamed === emptyId ? 3 : 2)));
      expect((await fs.readdir(join(out, 'findings'))).sort()).toEqual(['.merged', id]);
      expect(await fs.readdir(join(out, 'findings', '.merged'))).toEqual([merged]);
      // again: nothing changes; the same divergence seen now counts on
      const again = await open({ knownIssues: listed });
      expect(again.list().map((x) => x.count)).toEqual([5]);
      expect(await again.record({ kind: 'divergence', title: OLD_ZERO, kernel: K61, expected: 'SIGBUS', observed: 'ok(0x0)' })).toMatchObject({ id, isNew: false, count: 6, known: true });
    });

    it('finishes a rename that was interrupted (directory renamed, finding.json not rewritten yet)', async () => {
      const id = findingId(NOW);
      const emptyId = await oldFinding(OLD_EMPTY, 3, '2026-11-20T10:00:00.000Z', 3);
      await fs.rename(join(out, 'findings', emptyId), join(out, 'findings', id));
      const store = await open();
      expect(problems).toEqual([]);
      expect(store.list().map((f) => [f.id, f.title, f.count, f.former_ids])).toEqual([[id, NOW, 3, [emptyId]]]);
      expect(await readJson(join(out, 'findings', id, 'finding.json'))).toMatchObject({ id, title: NOW, count: 3 });
    });

    it('finishes a merge that was interrupted (target written, old directory still there) without counting twice', async () => {
      const id = findingId(NOW);
      const zeroId = await oldFinding(OLD_ZERO, 2, '2026-11-21T10:00:00.000Z', 2);
      const old = await readJson(join(out, 'findings', zeroId, 'finding.json'));
      await fs.mkdir(join(out, 'findings', id));
      await fs.writeFile(join(out, 'findings', id, 'finding.json'), JSON.stringify({ ...old, id, title: NOW, count: 5, former_ids: ['x-0123456789', zeroId] }));
      const store = await open();
      expect(problems).toEqual([]);
      expect(store.list().map((f) => [f.id, f.count])).toEqual([[id, 5]]);
      expect((await fs.readdir(join(out, 'findings'))).sort()).toEqual(['.merged', id]);
      expect(await fs.readdir(join(out, 'findings', '.merged'))).toEqual([zeroId]);
    });
  });

  it('the shipped known-issue files do not list test titles', async () => {
    const store = await open();
    expect((await store.record(crash())).known).toBe(false);
  });

  it('takes the oracle reports of a real transcript: four hung-task reports make one finding seen four times', async () => {
    const store = await open();
    const console = readFileSync(join(ROOT, 'test', 'fixtures', 'console', '6.12-hung.log'), 'utf8');
    for (const rep of parseReports(console)) {
      await store.record({
        kind: rep.kind === 'hang' ? 'hang' : 'crash',
        title: rep.title,
        kernel: K612,
        program: SEED,
        console,
        excerpt: rep.excerpt,
        report: { kind: rep.kind, pattern: rep.pattern, frame: rep.frame!, corrupted: rep.corrupted },
      });
    }
    const all = store.list();
    expect(all.map((f) => [f.title, f.kind, f.count])).toEqual([['INFO: task hung in splat_hung_task', 'hang', 4]]);
    const dmesg = await fs.readFile(join(out, 'findings', all[0]!.id, 'dmesg.txt'), 'utf8');
    expect(dmesg).toMatch(/^INFO: task sh:\d+ blocked for more than 2 seconds\./);
  });
});
