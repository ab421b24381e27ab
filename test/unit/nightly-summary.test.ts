/**
 * A night's summary against its history (new, regressed, known, seen before, fixed; the exit
 * status), its JUnit XML read back by a real XML parser (saxes), and merging stores of shards
 * (counts, first/last seen, idempotence, the same bugs as one unsharded store). The 6.1 store is
 * recorded from a real run (test/fixtures/findings/README.md).
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SaxesParser } from 'saxes';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mergeStores } from '../../harness/findings/merge.js';
import { FindingStore, type FindingCandidate } from '../../harness/findings/store.js';
import { renderJunit } from '../../harness/nightly/junit.js';
import { NIGHT_FORMAT, nightPath, type CellResult, type NightRun } from '../../harness/nightly/run.js';
import { summarizeNight, writeSummary } from '../../harness/nightly/summary.js';
import { atomicWriteJson } from '../../harness/util/fsx.js';

const STORE_61 = join(import.meta.dirname, '..', 'fixtures', 'findings', 'fuzz-6.1-seed101');
const R61 = '6.1.0-57-amd64';
const R612 = '6.12.118+deb12-amd64';

let tmp: string;
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'svadiff-nightly-'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

function cell(kernel: string, release: string, seed = 1, extra: Partial<CellResult> = {}): CellResult {
  const series = kernel.replace('debian:', '');
  return {
    name: `${kernel.replace(':', '-')}-s${seed}`,
    index: 0,
    kernel,
    seed,
    exact_spec: `debian:${series}.1`,
    release,
    version: `${series}.1`,
    status: 'ok',
    run_id: `night ${kernel}`,
    programs: 468,
    checked_ops: 9675,
    executed_ops: 10019,
    reboots: 29,
    anomalies: 0,
    elapsed_ms: 612_000,
    boot_ms: 470_000,
    started: '2026-12-04T14:36:00.000Z',
    finished: '2026-12-04T14:46:00.000Z',
    ...extra,
  };
}

async function writeNight(out: string, night: string, cells: CellResult[], kernels = [...new Set(cells.map((c) => c.kernel))]): Promise<NightRun> {
  const n: NightRun = {
    format: NIGHT_FORMAT,
    version: 1,
    night,
    started: '2026-12-04T14:36:00.000Z',
    finished: '2026-12-04T14:50:00.000Z',
    config: { kernels, seeds: [1], time_ms: 600_000, ops: ['open'], jobs: 1, repro: { enabled: false, timeMs: 0, perBugMs: 0, runs: 1 } },
    shards: [{ index: 0, count: 1 }],
    cells: cells.map((c, i) => ({ ...c, index: i })),
    repros: [],
  };
  await atomicWriteJson(nightPath(out), n);
  return n;
}

const K61 = { spec: 'debian:6.1.192', release: R61 };
const warn = (title = 'WARNING in uacce_fops_release', at = '2026-12-04T14:40:00Z'): FindingCandidate => ({ kind: 'crash', title, kernel: K61, excerpt: '', console: '', at: new Date(at) });

/** The 6.1 store of a real run, in a night's directory, plus one bug the known-issue list does not have. */
async function night61(name: string, night: string, opts: { extra?: string[]; version?: string } = {}): Promise<string> {
  const out = join(tmp, name);
  cpSync(STORE_61, out, { recursive: true });
  const store = await FindingStore.open(out, { runId: `${night} 6.1` });
  for (const t of opts.extra ?? []) await store.recordProgram([warn(t)], 'test');
  await writeNight(out, night, [cell('debian:6.1', R61, 1, opts.version ? { version: opts.version } : {})]);
  return out;
}

describe('the summary of a night', () => {
  it('gives bugs per kernel next to their titles; known bugs are no failure (exit 0)', async () => {
    const out = await night61('n1', '2026-12-01');
    const s = await summarizeNight(out, join(tmp, 'history'));
    expect(s.exit_code).toBe(0);
    expect(s.result).toBe('no-new-bugs');
    const k = s.kernels[0]!;
    expect(k).toMatchObject({ spec: 'debian:6.1', series: '6.1', release: R61, status: 'ok', titles: 10 });
    expect(k.bugs).toHaveLength(3);
    expect(k.bugs.every((b) => b.status === 'known')).toBe(true);
    expect(k.bugs[0]!.titles).toHaveLength(7);
    expect(k.bugs[0]!.links.finding).toMatch(/^findings\/bug-double-free-in-vma-close-[0-9a-f]{10}\/finding\.json$/);
    expect(k.checked_ops_per_s).toBeCloseTo(9675 / 142, 0);
  });

  it('new, then seen before, not seen tonight, regressed; exit 1 only for new bugs', async () => {
    const history = join(tmp, 'history');
    const n1 = await night61('n1', '2026-12-01', { extra: ['WARNING in uacce_fops_release'] });
    const s1 = await summarizeNight(n1, history);
    expect(s1.exit_code).toBe(1);
    expect(s1.kernels[0]!.bugs.find((b) => b.title === 'WARNING in uacce_fops_release')?.status).toBe('new');
    await writeSummary(n1, history, s1);
    expect(readdirSync(join(history, 'nights'))).toEqual(['2026-12-01.json']);

    const n2 = await night61('n2', '2026-12-02', { extra: ['WARNING in uacce_fops_release'] });
    const s2 = await summarizeNight(n2, history);
    expect(s2.exit_code).toBe(0);
    expect(s2.compared_with).toEqual(['2026-12-01']);
    const w2 = s2.kernels[0]!.bugs.find((b) => b.title === 'WARNING in uacce_fops_release')!;
    expect(w2).toMatchObject({ status: 'seen-before', first_night: '2026-12-01', last_night: '2026-12-01' });
    await writeSummary(n2, history, s2);

    // the same kernel as last night: the warning not found tonight is not a fix
    const n3 = await night61('n3', '2026-12-03');
    const s3 = await summarizeNight(n3, history);
    expect(s3.kernels[0]!.gone.map((f) => [f.title, f.status])).toEqual([['WARNING in uacce_fops_release', 'not-seen']]);
    expect(s3.totals.fixed).toBe(0);
    expect(s3.totals['not-seen']).toBe(1);
    expect(s3.exit_code).toBe(0);
    await writeSummary(n3, history, s3);

    const n4 = await night61('n4', '2026-12-04', { extra: ['WARNING in uacce_fops_release'] });
    const s4 = await summarizeNight(n4, history);
    expect(s4.kernels[0]!.bugs.find((b) => b.title === 'WARNING in uacce_fops_release')?.status).toBe('regressed');
    expect(s4.exit_code).toBe(0);
    // a night summarized again is compared with the nights before it only, and replaces its own history entry
    await writeSummary(n4, history, s4);
    await writeSummary(n4, history, await summarizeNight(n4, history));
    expect(readdirSync(join(history, 'nights'))).toHaveLength(4);
    expect((await summarizeNight(n2, history)).compared_with).toEqual(['2026-12-01']);
  });

  it('a bug of the last night not seen tonight is fixed only when the kernel changed (another Debian version, even under the same release name)', async () => {
    const history = join(tmp, 'history');
    const n1 = await night61('n1', '2026-12-01', { extra: ['WARNING in uacce_fops_release'] });
    await writeSummary(n1, history, await summarizeNight(n1, history));
    const n2 = await night61('n2', '2026-12-02', { version: '6.1.2' });
    const s2 = await summarizeNight(n2, history);
    expect(s2.kernels[0]!.gone.map((f) => [f.title, f.status])).toEqual([['WARNING in uacce_fops_release', 'fixed']]);
    expect(s2.kernels[0]!.counts).toMatchObject({ fixed: 1, 'not-seen': 0 });
    const xml = renderJunit(s2);
    expect(xml).toContain('fixed: not seen tonight on a changed kernel');
  });

  it('a bug known under another title, or seen before under another title, is not new', async () => {
    const history = join(tmp, 'history');
    const n1 = await night61('n1', '2026-12-01', { extra: ['WARNING in uacce_fops_release'] });
    await writeSummary(n1, history, await summarizeNight(n1, history));
    // tonight the warning comes with a second title in one run: the bug is seen before
    const n2 = await night61('n2', '2026-12-02');
    const store = await FindingStore.open(n2);
    await store.recordProgram([warn('WARNING in uacce_put_queue'), warn('WARNING in uacce_fops_release')], 'test');
    const s2 = await summarizeNight(n2, history);
    const b = s2.kernels[0]!.bugs.find((x) => x.titles.includes('WARNING in uacce_put_queue'))!;
    expect(b.titles.sort()).toEqual(['WARNING in uacce_fops_release', 'WARNING in uacce_put_queue']);
    expect(b.status).toBe('seen-before');
    expect(s2.exit_code).toBe(0);
  });

  it('a history written before a title format change still matches (sets in titles are sorted now)', async () => {
    const history = join(tmp, 'history');
    const div = (title: string): FindingCandidate => ({ kind: 'divergence', title, kernel: K61, excerpt: '', console: '', expected: 'one of {ENOENT, ok}', observed: 'EINVAL' });
    const n1 = await night61('n1', '2026-12-01');
    const now = 'open (concurrent with remove): expected one of {ENOENT, ok}, got EINVAL [open.ok, open.path-gone]';
    const before = 'open (concurrent with remove): expected one of {ok, ENOENT}, got EINVAL [open.ok, open.path-gone]';
    await (await FindingStore.open(n1)).recordProgram([div(now)], 'test');
    await writeSummary(n1, history, await summarizeNight(n1, history));
    // the night's summary in the history as an svadiff of before the change wrote it
    const kept = join(history, 'nights', '2026-12-01.json');
    writeFileSync(kept, readFileSync(kept, 'utf8').split(now).join(before));
    expect(readFileSync(kept, 'utf8')).toContain(before);
    const n2 = await night61('n2', '2026-12-02');
    await (await FindingStore.open(n2)).recordProgram([div(now)], 'test');
    const s2 = await summarizeNight(n2, history);
    expect(s2.kernels[0]!.bugs.find((b) => b.title.startsWith('open'))).toMatchObject({ status: 'seen-before', first_night: '2026-12-01' });
    expect(s2.kernels[0]!.gone).toEqual([]);
    expect(s2.exit_code).toBe(0);
  });

  it('a kernel that could not be fetched, or a cell no shard ran, fails the run (exit 2)', async () => {
    const out = await night61('n1', '2026-12-01');
    await writeNight(out, '2026-12-01', [cell('debian:6.1', R61), { ...cell('debian:7.2', '', 1), release: undefined, status: 'failed', error: 'no such kernel' } as CellResult]);
    const s = await summarizeNight(out, undefined);
    expect(s.exit_code).toBe(2);
    expect(s.kernels.find((k) => k.spec === 'debian:7.2')).toMatchObject({ status: 'failed', errors: ['debian-7.2-s1: no such kernel'] });
    await writeNight(out, '2026-12-01', [cell('debian:6.1', R61)], ['debian:6.1', 'debian:6.12']);
    const m = await summarizeNight(out, undefined);
    expect(m.exit_code).toBe(2);
    expect(m.kernels.find((k) => k.spec === 'debian:6.12')?.errors[0]).toMatch(/not run/);
  });
});

interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  text: string;
}

/** Parse XML with saxes (a conformant, non-validating parser): a tree, or the first error. */
function parseXml(xml: string): XmlElement {
  const parser = new SaxesParser({ xmlns: false });
  const root: XmlElement = { name: '#document', attributes: {}, children: [], text: '' };
  const stack: XmlElement[] = [root];
  let error: Error | undefined;
  parser.on('error', (e) => {
    error ??= e;
  });
  parser.on('opentag', (t) => {
    const el: XmlElement = { name: t.name, attributes: { ...(t.attributes as Record<string, string>) }, children: [], text: '' };
    stack[stack.length - 1]!.children.push(el);
    stack.push(el);
  });
  parser.on('closetag', () => void stack.pop());
  parser.on('text', (t) => {
    stack[stack.length - 1]!.text += t;
  });
  parser.write(xml).close();
  if (error) throw error;
  return root.children[0]!;
}

const all = (el: XmlElement, name: string): XmlElement[] => [...(el.name === name ? [el] : []), ...el.children.flatMap((c) => all(c, name))];

describe('JUnit XML', () => {
  it('is well-formed, one test case per kernel and bug, a failure per new bug, counts that add up', async () => {
    const history = join(tmp, 'history');
    const out = await night61('n1', '2026-12-01', { extra: ['WARNING in uacce_fops_release', 'BUG: <&"weird\'> title & more'] });
    await writeNight(out, '2026-12-01', [cell('debian:6.1', R61), cell('debian:6.12', R612)]);
    const s = await summarizeNight(out, history);
    await writeSummary(out, history, s);
    const doc = parseXml(readFileSync(join(out, 'junit.xml'), 'utf8'));
    expect(doc.name).toBe('testsuites');
    const suites = doc.children.filter((c) => c.name === 'testsuite');
    expect(suites.map((x) => x.attributes.name)).toEqual([`debian:6.1 (${R61})`, `debian:6.12 (${R612})`]);
    for (const suite of suites) {
      const cases = suite.children.filter((c) => c.name === 'testcase');
      expect(Number(suite.attributes.tests)).toBe(cases.length);
      expect(Number(suite.attributes.failures)).toBe(all(suite, 'failure').length);
      expect(Number(suite.attributes.errors)).toBe(all(suite, 'error').length);
      for (const c of cases) {
        expect(c.attributes.classname).toMatch(/^svadiff\.nightly\./);
        expect(c.attributes.name).toBeTruthy();
      }
    }
    const k61 = suites[0]!;
    const cases61 = k61.children.filter((c) => c.name === 'testcase');
    // fuzzing + 3 known bugs + 2 new ones
    expect(cases61.map((c) => c.attributes.name)).toContain('fuzzing');
    expect(cases61).toHaveLength(1 + s.kernels[0]!.bugs.length);
    const failed = cases61.filter((c) => c.children.some((x) => x.name === 'failure')).map((c) => c.attributes.name).sort();
    expect(failed).toEqual(['BUG: <&"weird\'> title & more', 'WARNING in uacce_fops_release']);
    expect(Number(doc.attributes.failures)).toBe(2);
    expect(Number(doc.attributes.tests)).toBe(all(doc, 'testcase').length);
    // the 6.12 kernel ran and found nothing: its fuzzing case passes
    expect(suites[1]!.children.filter((c) => c.name === 'testcase').map((c) => c.attributes.name)).toEqual(['fuzzing']);
  });

  it('carries a failed kernel as an error and strips what XML cannot hold', async () => {
    const out = await night61('n1', '2026-12-01');
    await writeNight(out, '2026-12-01', [{ ...cell('debian:7.2', '', 1), release: undefined, status: 'failed', error: 'boot failed \x01\x1b[31m' } as CellResult]);
    const s = await summarizeNight(out, undefined);
    const xml = renderJunit(s);
    const doc = parseXml(xml);
    expect(all(doc, 'error')).toHaveLength(1);
    expect(doc.attributes.errors).toBe('1');
    expect(xml).not.toMatch(/[\x01\x1b]/);
  });
});

describe('merging stores', () => {
  const K = { spec: 'debian:6.12.118', release: R612 };
  // the double free comes with a real slub report: its slab objects are part of what merges
  const slub = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'console', 'fuzz-6.1-double-free.log'), 'utf8');
  const obs = (title: string, at: string, runId: string, kind: FindingCandidate['kind'] = 'crash'): FindingCandidate => ({
    kind,
    title,
    kernel: K,
    excerpt: title.startsWith('BUG:') ? slub : '',
    console: '',
    at: new Date(at),
    runId,
  });
  /** what three cells of a matrix saw: cell → observations (program by program) */
  const cells: Record<string, FindingCandidate[][]> = {
    a: [[obs('WARNING in uacce_put_queue', '2026-12-04T10:00:00Z', 'a')], [obs('WARNING in uacce_put_queue', '2026-12-04T10:05:00Z', 'a'), obs('BUG: double free in vma_close', '2026-12-04T10:05:00Z', 'a')]],
    b: [[obs('BUG: double free in vma_close', '2026-12-04T09:00:00Z', 'b')], [obs('mmap: expected ok, got EEXIST [mmap.ok]', '2026-12-04T09:30:00Z', 'b', 'divergence')]],
    c: [[obs('WARNING in uacce_put_queue', '2026-12-04T11:00:00Z', 'c')], [obs('BUG: slab wrong object count in kobject_put', '2026-12-04T11:01:00Z', 'c'), obs('WARNING in uacce_put_queue', '2026-12-04T11:01:00Z', 'c')]],
  };
  const noKnown = { knownIssues: async (series: string) => ({ series, source: '', issues: [], match: () => undefined }) };
  const record = async (dir: string, names: string[]) => {
    const s = await FindingStore.open(dir, noKnown);
    for (const n of names) for (const prog of cells[n]!) await s.recordProgram(prog, `cell ${n}`);
    return s;
  };
  const shape = (s: FindingStore) => ({
    findings: s.list().map((f) => ({ id: f.id, count: f.count, first: f.first_seen, last: f.last_seen, kernels: f.kernels })),
    bugs: s.bugs().map((b) => ({ id: b.id, titles: b.titles.map((t) => t.title).sort(), count: b.count })),
  });
  const files = (dir: string) =>
    readdirSync(join(dir, 'findings'))
      .sort()
      .map((d) => readFileSync(join(dir, 'findings', d, 'finding.json'), 'utf8'))
      .concat(readFileSync(join(dir, 'bugs.json'), 'utf8'));

  it('three shards merged equal one unsharded store; merging again, or a shard twice, changes nothing', async () => {
    const whole = await record(join(tmp, 'whole'), ['a', 'b', 'c']);
    for (const n of ['a', 'b', 'c']) await record(join(tmp, `shard-${n}`), [n]);
    const target = join(tmp, 'merged');
    const r = await mergeStores(target, ['a', 'b', 'c'].map((n) => join(tmp, `shard-${n}`)));
    expect(r).toMatchObject({ sources: 3, findings: 4, bugs: 2 });
    const before = files(target);
    expect(before.join('\n')).toContain('allocated in uacce_fops_mmap [uacce], freed in vma_close');
    const again = await mergeStores(target, [join(tmp, 'shard-b'), join(tmp, 'shard-a'), join(tmp, 'shard-a'), join(tmp, 'shard-c')]);
    expect(again).toMatchObject({ added: 0, updated: 0 });
    expect(files(target)).toEqual(before);
    const merged = await FindingStore.open(target, noKnown);
    expect(shape(merged)).toEqual(shape(whole));
    // one bug: the warning, the double free and the slab count were reported in one run each
    expect(merged.bugs().find((b) => b.titles.length > 1)?.titles.map((t) => t.title).sort()).toEqual([
      'BUG: double free in vma_close',
      'BUG: slab wrong object count in kobject_put',
      'WARNING in uacce_put_queue',
    ]);
    // first and last seen over all shards
    const w = merged.list().find((f) => f.title === 'WARNING in uacce_put_queue')!;
    expect(w).toMatchObject({ count: 4, first_seen: '2026-12-04T10:00:00.000Z', last_seen: '2026-12-04T11:01:00.000Z' });
  });

  it('a shard that ran on since the last merge brings only what is new', async () => {
    const shard = join(tmp, 'shard');
    const s = await record(shard, ['a']);
    const target = join(tmp, 'merged');
    await mergeStores(target, [shard]);
    await s.recordProgram([obs('WARNING in uacce_put_queue', '2026-12-04T12:00:00Z', 'a')], 'cell a');
    await mergeStores(target, [shard]);
    await mergeStores(target, [shard]);
    expect((await FindingStore.open(target)).list().find((f) => f.title === 'WARNING in uacce_put_queue')).toMatchObject({ count: 3, last_seen: '2026-12-04T12:00:00.000Z' });
  });

  it("merges the shards' night records: every cell once, the earliest start", async () => {
    const a = join(tmp, 'a');
    const b = join(tmp, 'b');
    cpSync(STORE_61, a, { recursive: true });
    await fs.mkdir(b, { recursive: true });
    const n = await writeNight(a, '2026-12-01', [cell('debian:6.1', R61)], ['debian:6.1', 'debian:6.12']);
    await atomicWriteJson(nightPath(b), { ...n, started: '2026-12-04T14:30:00.000Z', shards: [{ index: 1, count: 2 }], cells: [{ ...cell('debian:6.12', R612), index: 1 }] });
    await atomicWriteJson(nightPath(a), { ...n, shards: [{ index: 0, count: 2 }] });
    const target = join(tmp, 'm');
    expect((await mergeStores(target, [a, b, b])).cells).toBe(2);
    const m = JSON.parse(readFileSync(nightPath(target), 'utf8')) as NightRun;
    expect(m.cells.map((c) => c.kernel)).toEqual(['debian:6.1', 'debian:6.12']);
    expect(m.shards).toEqual([
      { index: 0, count: 2 },
      { index: 1, count: 2 },
    ]);
    expect(m.started).toBe('2026-12-04T14:30:00.000Z');
    const s = await summarizeNight(target, undefined);
    expect(s.kernels.map((k) => k.status)).toEqual(['ok', 'ok']);
  });
});
