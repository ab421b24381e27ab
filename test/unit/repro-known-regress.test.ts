/**
 * `svadiff known add/list` against a temporary known-issue directory and a finding written by
 * the real findings store, and the regression corpus format (the shipped entries must parse).
 */
import { mkdtempSync, promises as fs, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { cmdKnown } from '../../harness/commands/known.js';
import { loadKnownIssues, parseKnownIssues } from '../../harness/findings/known.js';
import { FindingStore, type FindingCandidate } from '../../harness/findings/store.js';
import { parseProgram } from '../../harness/program/parse.js';
import { loadRegressCorpus, parseRegressEntry } from '../../harness/repro/regress.js';
import { UserError } from '../../harness/util/errors.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SEED = parseProgram(readFileSync(join(ROOT, 'corpus', 'seeds', 'basic-lifecycle.json'), 'utf8'), 'seed');
const K612 = { spec: 'debian:6.12', release: '6.12.117+deb12-amd64' };
const TITLE = 'mmap: expected ok, got EEXIST [mmap.ok]';

let tmp: string;
let knownDir: string;
let findingDir: string;
const candidate = (): FindingCandidate => ({ kind: 'divergence', title: TITLE, kernel: K612, program: SEED, expected: 'ok', observed: 'EEXIST', opIndex: 3, rule: 'mmap.ok' });

beforeEach(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'svadiff-known-'));
  knownDir = join(tmp, 'known');
  await fs.mkdir(knownDir);
  const store = await FindingStore.open(join(tmp, 'out'), { knownIssues: (s) => loadKnownIssues(s, knownDir) });
  const rec = await store.record(candidate());
  expect(rec.known).toBe(false);
  findingDir = join(tmp, 'out', 'findings', rec.id);
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(tmp, { recursive: true, force: true });
});

describe('svadiff known', () => {
  it('add puts the exact title into the series file, and the store then labels the finding known', async () => {
    await cmdKnown(['add', findingDir, '--link', 'https://lore.kernel.org/some-thread', '--note', 'private mappings never free their region'], knownDir);
    const text = await fs.readFile(join(knownDir, '6.12.json'), 'utf8');
    const k = parseKnownIssues(text, '6.12.json', '6.12');
    expect(k.issues).toEqual([{ title: TITLE, note: 'private mappings never free their region', link: 'https://lore.kernel.org/some-thread' }]);
    // a second run of the store over the same out dir relabels it
    const store = await FindingStore.open(join(tmp, 'out'), { knownIssues: (s) => loadKnownIssues(s, knownDir) });
    const rec = await store.record(candidate());
    expect(rec.known).toBe(true);
    expect(store.get(rec.id)?.known_note).toBe('private mappings never free their region — https://lore.kernel.org/some-thread');
  });

  it('add writes the current title of a finding an older svadiff wrote (its title had values)', async () => {
    const f = JSON.parse(await fs.readFile(join(findingDir, 'finding.json'), 'utf8')) as Record<string, unknown>;
    await fs.writeFile(join(findingDir, 'finding.json'), JSON.stringify({ ...f, title: 'touch: expected SIGBUS, got ok(0x0) [touch.zombie]' }));
    await cmdKnown(['add', findingDir, '--reason', 'checked', '--note', 'n'], knownDir);
    const k = parseKnownIssues(await fs.readFile(join(knownDir, '6.12.json'), 'utf8'), '6.12.json', '6.12');
    expect(k.issues.map((i) => i.title)).toEqual(['touch: expected SIGBUS, got ok [touch.zombie]']);
  });

  it('adding the same title twice leaves the file unchanged', async () => {
    const args = ['add', findingDir, '--reason', 'checked by hand', '--note', 'n'];
    await cmdKnown(args, knownDir);
    const once = await fs.readFile(join(knownDir, '6.12.json'), 'utf8');
    await cmdKnown(args, knownDir);
    expect(await fs.readFile(join(knownDir, '6.12.json'), 'utf8')).toBe(once);
  });

  it('keeps the existing entries and other fields of a series file, and honours --series', async () => {
    const existing = { format: 'svadiff-known-issues', version: 1, series: '7.2', comment: 'keep me', issues: [{ title_regex: '^INFO: rcu', note: 'stalls', reason: 'TCG' }] };
    await fs.writeFile(join(knownDir, '7.2.json'), JSON.stringify(existing));
    await cmdKnown(['add', findingDir, '--reason', 'r', '--note', 'n', '--series', '7.2'], knownDir);
    const doc = JSON.parse(await fs.readFile(join(knownDir, '7.2.json'), 'utf8'));
    expect(doc.comment).toBe('keep me');
    expect(doc.issues).toHaveLength(2);
    expect(doc.issues[1].title).toBe(TITLE);
  });

  it('refuses bad input with one line naming the fix, and never overwrites a broken file', async () => {
    await expect(cmdKnown(['add', findingDir, '--note', 'n'], knownDir)).rejects.toThrow(/--link URL .* or --reason TEXT/);
    await expect(cmdKnown(['add', findingDir, '--link', 'x', '--note', 'n'], knownDir)).rejects.toThrow(/--link must be a URL/);
    await expect(cmdKnown(['add', findingDir, '--reason', 'r'], knownDir)).rejects.toThrow(/--note/);
    await expect(cmdKnown(['add', tmp, '--reason', 'r', '--note', 'n'], knownDir)).rejects.toThrow(/not a finding directory/);
    await expect(cmdKnown(['add', findingDir, '--reason', 'r', '--note', 'n', '--series', 'x'], knownDir)).rejects.toThrow(/--series must look like 6.12/);
    await fs.writeFile(join(knownDir, '6.12.json'), '{ broken');
    await expect(cmdKnown(['add', findingDir, '--reason', 'r', '--note', 'n'], knownDir)).rejects.toBeInstanceOf(UserError);
    expect(await fs.readFile(join(knownDir, '6.12.json'), 'utf8')).toBe('{ broken');
    await expect(cmdKnown(['frobnicate'], knownDir)).rejects.toThrow(/say add or list/);
  });

  it('list prints every series with its entries', async () => {
    await cmdKnown(['add', findingDir, '--reason', 'an artefact', '--note', 'n1'], knownDir);
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
    await cmdKnown(['list'], knownDir);
    expect(out.join('')).toBe(`6.12: 1 known issue\n  ${TITLE}\n      n1\n      reason: an artefact\n`);
  });
});

describe('regression corpus format', () => {
  const entry = () => ({
    format: 'svadiff-regress',
    version: 1,
    name: 'x',
    note: 'a bug',
    outcome: { kind: 'divergence', title: TITLE },
    recorded: { series: '6.12', kernel: 'debian:6.12.117', release: '6.12.117+deb12-amd64', date: '2026-11-21', how: 'svadiff repro', reliability: '5/5' },
    program: JSON.parse(JSON.stringify(SEED)),
  });

  it('parses a good entry and names what is wrong in a bad one', () => {
    expect(parseRegressEntry(JSON.stringify(entry()), 'x.json', 'x').outcome.title).toBe(TITLE);
    expect(() => parseRegressEntry(JSON.stringify({ ...entry(), name: 'y' }), 'x.json', 'x')).toThrow(/"name" must be "x"/);
    expect(() => parseRegressEntry(JSON.stringify({ ...entry(), note: 'TODO: fill in' }), 'x.json', 'x')).toThrow(/not TODO/);
    expect(() => parseRegressEntry(JSON.stringify({ ...entry(), extra: 1 }), 'x.json', 'x')).toThrow(/unknown field "extra"/);
    const bad = entry();
    (bad.program.ops as unknown[]).push({ op: 'close', task: 't0', fd: 'nope' });
    expect(() => parseRegressEntry(JSON.stringify(bad), 'x.json', 'x')).toThrow(/descriptor "nope"/);
  });

  it('every shipped entry parses', async () => {
    const all = await loadRegressCorpus();
    for (const e of all) expect(e.program.ops.length).toBeGreaterThan(0);
  });
});
