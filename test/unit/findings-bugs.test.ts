/**
 * Bugs: findings grouped by root cause on evidence (harness/findings/bugs.ts), in the store
 * (harness/findings/store.ts). The console logs and the 6.1 store are recorded from real runs
 * (test/fixtures/console/README.md, test/fixtures/findings/README.md).
 */
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { groupBugs, slabObjectSignatures, type FindingForBugs } from '../../harness/findings/bugs.js';
import { parseKnownIssues, type KnownIssues } from '../../harness/findings/known.js';
import { FindingStore, findingId, type Finding, type FindingCandidate } from '../../harness/findings/store.js';

const FIX = join(import.meta.dirname, '..', 'fixtures');
const consoleLog = (name: string) => readFileSync(join(FIX, 'console', name), 'utf8');
const STORE_61 = join(FIX, 'findings', 'fuzz-6.1-seed101');
const noKnown = async (series: string): Promise<KnownIssues> => parseKnownIssues(JSON.stringify({ format: 'svadiff-known-issues', version: 1, series, issues: [] }), 'none', series);

let out: string;
beforeEach(() => {
  out = mkdtempSync(join(tmpdir(), 'svadiff-bugs-'));
});
afterEach(() => rmSync(out, { recursive: true, force: true }));

describe('slab object signatures', () => {
  it("name a 6.1 double free's uacce object by its allocation and free sites, and the bad frees by cache and caller", () => {
    const sigs = slabObjectSignatures(consoleLog('fuzz-6.1-double-free.log'));
    expect(sigs).toContain('allocated in uacce_fops_mmap [uacce], freed in vma_close');
    expect(sigs).toContain('kmalloc-8 object freed in vma_close');
    // the second report (wrong object count) was made freeing from kobject_put
    expect(sigs).toContain('kmalloc-8 object freed in kobject_put');
    // no address, offset, age or pid gets in
    for (const s of sigs) expect(s).not.toMatch(/0x|age=|pid=|\+/);
  });

  it('are the same in two recordings of one bug whose addresses and ages differ', () => {
    const a = slabObjectSignatures(consoleLog('6.12-doublefree.log'), ['splat']);
    const b = slabObjectSignatures(consoleLog('arm64-6.12-doublefree.log'), ['splat']);
    expect(a).toContain('allocated in splat_double_free [splat], freed in splat_double_free [splat]');
    expect(b).toContain('allocated in splat_double_free [splat], freed in splat_double_free [splat]');
  });

  it('pair allocation and free sites only for objects of the modules under test', () => {
    // the splat module is not uacce: no allocated/freed signature by default
    expect(slabObjectSignatures(consoleLog('6.12-doublefree.log')).filter((s) => s.startsWith('allocated in'))).toEqual([]);
  });

  it("read KFENCE's allocation and free stacks", () => {
    expect(slabObjectSignatures(consoleLog('6.12-kfence.log'), ['splat'])).toEqual(['allocated in splat_kfence_uaf [splat], freed in splat_kfence_uaf [splat]']);
  });

  it('find nothing in reports without slab objects', () => {
    for (const f of ['6.12-warn.log', '6.12-null.log', '6.12-hung.log', 'boot-6.1.log']) expect(slabObjectSignatures(consoleLog(f)), f).toEqual([]);
  });
});

const finding = (title: string, count: number, extra: Partial<FindingForBugs> = {}): FindingForBugs => ({
  id: findingId(title),
  kind: 'crash',
  title,
  count,
  first_seen: '2026-01-01T00:00:00.000Z',
  last_seen: '2026-01-01T00:00:00.000Z',
  kernels: { '6.1.0-57-amd64': { spec: 'debian:6.1.192', count, first_seen: '2026-01-01T00:00:00.000Z', last_seen: '2026-01-01T00:00:00.000Z' } },
  ...extra,
});

describe('grouping', () => {
  const A = finding('BUG: double free in vma_close', 5);
  const B = finding('BUG: slab wrong object count in kobject_put', 3);
  const C = finding('BUG: kernel NULL pointer dereference in get_partial_node', 1);
  const D = finding('mmap: expected ok, got EEXIST [mmap.ok]', 9, { kind: 'divergence' });

  it('links titles by evidence, transitively, and leaves the rest alone', () => {
    const bugs = groupBugs({
      findings: [A, B, C, D],
      evidence: [{ kind: 'same-run', titles: [A.title, B.title], why: 'one program' }],
    });
    expect(bugs.map((b) => b.titles.map((t) => t.title))).toEqual([[D.title], [A.title, B.title], [C.title]]);
    const ab = bugs[1]!;
    expect(ab).toMatchObject({ id: A.id, title: A.title, count: 8, findings: [A.id, B.id] });
    expect(ab.why).toEqual([`same-run: "${A.title}" + "${B.title}": one program`]);
    const all = groupBugs({
      findings: [A, B, C, D],
      evidence: [
        { kind: 'same-run', titles: [A.title, B.title], why: 'one program' },
        { kind: 'minimized-program', titles: [B.title, C.title], why: 'program.min.json' },
      ],
    });
    expect(all.find((b) => b.id === A.id)?.titles.map((t) => t.title)).toEqual([A.title, B.title, C.title]);
  });

  it('does not depend on the order of findings or evidence', () => {
    const ev = [
      { kind: 'same-run' as const, titles: [B.title, C.title], why: 'x' },
      { kind: 'same-run' as const, titles: [A.title, B.title], why: 'y' },
    ];
    const one = groupBugs({ findings: [A, B, C, D], evidence: ev });
    const two = groupBugs({ findings: [D, C, B, A], evidence: [...ev].reverse() });
    const shape = (bs: typeof one) => bs.map((b) => [b.id, b.titles.map((t) => t.title)]);
    expect(shape(two)).toEqual(shape(one));
  });

  it('never puts a divergence and a crash in one bug', () => {
    const bugs = groupBugs({ findings: [A, D], evidence: [{ kind: 'same-run', titles: [A.title, D.title], why: 'one program' }] });
    expect(bugs).toHaveLength(2);
  });

  it('keeps titles that only a reproduction showed, with the bug they were seen with', () => {
    const bugs = groupBugs({ findings: [A], evidence: [{ kind: 'minimized-program', titles: [A.title, 'BUG: slab poison overwritten in vma_close'], why: 'repro' }] });
    expect(bugs).toHaveLength(1);
    expect(bugs[0]!.titles).toEqual([
      { title: A.title, finding: A.id, count: 5 },
      { title: 'BUG: slab poison overwritten in vma_close', count: 0 },
    ]);
  });

  it('groups on a uacce object named by two reports, and on a bad free where a uacce object is freed', () => {
    const x = finding('BUG: double free in vma_close', 2, { slab_objects: ['allocated in uacce_fops_mmap [uacce], freed in vma_close', 'kmalloc-8 object freed in vma_close'] });
    const y = finding('BUG: slab left redzone overwritten in vma_close', 1, { slab_objects: ['allocated in uacce_fops_mmap [uacce], freed in vma_close'] });
    const z = finding('BUG: slab slab has N allocated objects but N are to be freed in vma_close', 1, { slab_objects: ['kmalloc-8 object freed in vma_close'] });
    // a bad free in a function no uacce object is freed in proves nothing
    const w = finding('BUG: slab wrong object count in kobject_put', 1, { slab_objects: ['kmalloc-8 object freed in kobject_put'] });
    const w2 = finding('BUG: slab wrong object count in kernfs_put', 1, { slab_objects: ['kmalloc-8 object freed in kobject_put'] });
    const bugs = groupBugs({ findings: [x, y, z, w, w2], evidence: [] });
    expect(bugs.map((b) => b.titles.map((t) => t.title).sort())).toEqual([[x.title, y.title, z.title].sort(), [w2.title], [w.title]]);
    expect(bugs[0]!.why.some((l) => l.startsWith('slab-object:') && l.includes('allocated in uacce_fops_mmap [uacce], freed in vma_close'))).toBe(true);
  });

  it('is known on a kernel when any of its titles is listed for its series, saying which', () => {
    const known = parseKnownIssues(
      JSON.stringify({ format: 'svadiff-known-issues', version: 1, series: '6.1', issues: [{ title: A.title, note: 'the 6.1 double free', link: 'corpus/regress/x.json' }] }),
      'k',
      '6.1',
    );
    const bugs = groupBugs({
      findings: [A, B],
      evidence: [{ kind: 'same-run', titles: [A.title, B.title], why: 'one program' }],
      knownFor: (s) => (s === '6.1' ? known : undefined),
      seriesOf: () => '6.1',
    });
    expect(bugs).toHaveLength(1);
    expect(bugs[0]!.known).toBe(true);
    const onlyB = groupBugs({
      findings: [B, { ...A, count: 1 }],
      evidence: [{ kind: 'same-run', titles: [A.title, B.title], why: 'one program' }],
      knownFor: () => known,
      seriesOf: () => '6.1',
    });
    // B leads (more reports); the note says which title the list has
    expect(onlyB[0]!.title).toBe(B.title);
    expect(onlyB[0]!.known_note).toBe(`the 6.1 double free (listed as "${A.title}")`);
  });
});

describe('the store groups bugs', () => {
  it('an older 6.1 store: ten titles, four bugs on its own evidence, three with the reviewed known-issue list', async () => {
    cpSync(STORE_61, join(out, 'a'), { recursive: true });
    const store = await FindingStore.open(join(out, 'a'), { knownIssues: noKnown, onProblem: () => {} });
    expect(store.list()).toHaveLength(10);
    const bugs = store.bugs();
    expect(bugs).toHaveLength(4);
    const slab = bugs[0]!;
    expect(slab.title).toBe('BUG: double free in vma_close');
    expect(slab.titles.map((t) => t.title).sort()).toEqual(
      [
        'BUG: double free in vma_close',
        'BUG: kernel NULL pointer dereference in get_partial_node',
        'BUG: slab slab has N allocated objects but N are to be freed in vma_close',
        'BUG: slab wrong object count in kernfs_put',
        'BUG: slab wrong object count in kobject_put',
        'BUG: slab wrong object count in uacce_fops_mmap',
        'BUG: slab wrong object count in vma_close',
      ].sort(),
    );
    expect(slab.why.some((w) => w.startsWith('same-run:'))).toBe(true);
    expect(slab.why.some((w) => w.startsWith('slab-object:'))).toBe(true);
    // every finding.json of the bug shows it, with all titles and why
    for (const id of slab.findings) {
      const f = JSON.parse(await fs.readFile(join(out, 'a', 'findings', id, 'finding.json'), 'utf8')) as Finding;
      expect(f.bug).toEqual({ id: slab.id, title: slab.title, titles: slab.titles.map((t) => t.title), why: slab.why });
    }
    const file = JSON.parse(await fs.readFile(join(out, 'a', 'bugs.json'), 'utf8')) as { format: string; evidence: unknown[]; bugs: { id: string }[] };
    expect(file.format).toBe('svadiff-bugs');
    expect(file.bugs.map((b) => b.id)).toEqual(bugs.map((b) => b.id));
    expect(file.evidence.length).toBeGreaterThan(0);

    cpSync(STORE_61, join(out, 'b'), { recursive: true });
    const reviewed = await FindingStore.open(join(out, 'b'), { onProblem: () => {} });
    const rb = reviewed.bugs();
    expect(rb).toHaveLength(3);
    expect(rb.every((b) => b.known)).toBe(true);
    expect(rb.find((b) => b.title === 'mmap: expected ok, got EEXIST [mmap.ok]')?.titles.map((t) => t.title)).toEqual([
      'mmap: expected ok, got EEXIST [mmap.ok]',
      'mmap: expected EINVAL, got EEXIST [mmap.too-long]',
    ]);
  });

  it('reports of one program run are one bug: a second title of a known bug is neither a new bug nor new', async () => {
    const store = await FindingStore.open(out, { knownIssues: noKnown });
    const K = { spec: 'debian:6.1', release: '6.1.0-57-amd64' };
    const c = (title: string): FindingCandidate => ({ kind: 'crash', title, kernel: K, excerpt: '', console: '' });
    const first = await store.recordProgram([c('BUG: double free in vma_close')], 'program 1');
    expect(first[0]).toMatchObject({ isNew: true, newBug: true });
    const both = await store.recordProgram([c('BUG: double free in vma_close'), c('BUG: slab wrong object count in kobject_put')], 'program 2');
    expect(both[1]).toMatchObject({ isNew: true, newBug: false, bug: findingId('BUG: double free in vma_close') });
    expect(store.bugs()).toHaveLength(1);
    // reopening keeps the evidence
    const again = await FindingStore.open(out, { knownIssues: noKnown });
    expect(again.bugs()).toHaveLength(1);
    expect(again.bugs()[0]!.why[0]).toContain('program 2');
    // a divergence of the same program is not part of it
    await store.recordProgram([{ ...c('mmap: expected ok, got EEXIST [mmap.ok]'), kind: 'divergence' }, c('BUG: double free in vma_close')], 'program 3');
    expect(store.bugs()).toHaveLength(2);
  });
});
