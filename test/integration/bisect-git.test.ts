/**
 * svadiff bisect over a git range, on real guests (Debian 6.12 under QEMU): a small history made
 * here from Debian's own uacce sources, five commits of which the third drops the clearing of
 * q->qfrs[] in uacce_vma_close() (6.1's region-never-freed bug). The range touches only
 * drivers/misc/uacce/, so every step rebuilds only uacce.ko; the bisection must name the third
 * commit, with its subject and a Fixes: line, and write bisect.json and bisect.log. A range
 * whose good end already reproduces ends with that answer, not an invented boundary.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bisectGit, type BisectReport } from '../../harness/bisect/run.js';
import { parseProgram } from '../../harness/program/parse.js';
import type { ReplayTarget } from '../../harness/repro/replay.js';
import { UserError } from '../../harness/util/errors.js';
import { fetchKernel } from '../../kernels/index.js';
import { GIT_TOOL } from '../../kernels/source.js';
import { ensureHostTools } from '../../harness/util/host.js';

const KERNEL = 'debian:6.12';
const TITLE = 'mmap: expected ok, got EEXIST [mmap.ok]';
const FIX = '\t\tmutex_lock(&q->mutex);\n\t\tq->qfrs[vma->vm_pgoff] = NULL;\n\t\tmutex_unlock(&q->mutex);\n\t\tkfree(qfr);';
const dir = mkdtempSync(join(tmpdir(), 'svadiff-bisect-'));
const tree = join(dir, 'uacce-history');
const commits: string[] = [];
let target: ReplayTarget;

function git(...args: string[]): string {
  return execFileSync('git', ['-C', tree, '-c', 'user.name=svadiff test', '-c', 'user.email=test@svadiff.invalid', ...args], { encoding: 'utf8' }).trim();
}

function commit(subject: string, edit: (uacceC: string) => string): void {
  const path = join(tree, 'drivers', 'misc', 'uacce', 'uacce.c');
  const before = readFileSync(path, 'utf8');
  const after = edit(before);
  if (after === before) throw new Error(`commit "${subject}" changes nothing`);
  writeFileSync(path, after);
  git('commit', '-q', '-am', subject);
  commits.push(git('rev-parse', 'HEAD'));
}

beforeAll(async () => {
  await ensureHostTools(GIT_TOOL);
  const stock = await fetchKernel(KERNEL);
  mkdirSync(tree, { recursive: true });
  cpSync(join(stock.dir, 'src', 'uacce'), tree, { recursive: true });
  git('init', '-q');
  git('add', '-A');
  git('commit', '-q', '-m', `uacce: import Debian ${stock.version}'s uacce`);
  commits.push(git('rev-parse', 'HEAD'));
  commit('uacce: say why open takes the mutex', (t) => t.replace('static int uacce_fops_open(', '/* the mutex orders open against removal */\nstatic int uacce_fops_open('));
  commit('uacce: simplify uacce_vma_close', (t) => {
    if (!t.includes(FIX)) throw new Error("Debian's uacce_vma_close() no longer has the lines this test removes");
    return t.replace(FIX, '\t\tkfree(qfr);');
  });
  commit('uacce: note on release', (t) => t.replace('static int uacce_fops_release(', '/* release: the last reference of the file */\nstatic int uacce_fops_release('));
  commit('uacce: note on mmap', (t) => t.replace('static int uacce_fops_mmap(', '/* mmap: one region per vma */\nstatic int uacce_fops_mmap('));
  const entry = JSON.parse(readFileSync('corpus/regress/uacce-6.1-region-never-freed.json', 'utf8')) as { program: unknown };
  const programPath = join(dir, 'region.json');
  writeFileSync(programPath, JSON.stringify(entry.program));
  target = { kind: 'program', path: programPath, program: parseProgram(JSON.stringify(entry.program), programPath), title: TITLE };
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('svadiff bisect over a git range, module-only steps', () => {
  it('finds the commit that drops the qfrs[] clearing', { timeout: 1_800_000 }, async () => {
    const out = join(dir, 'out');
    const lines: string[] = [];
    const r: BisectReport = await bisectGit({ target, runs: 3, threshold: 1, outDir: out, tree, good: commits[0]!, bad: commits[4]!, kernel: KERNEL, onLine: (l) => lines.push(l) });
    process.stderr.write(lines.map((l) => `bisect: ${l}\n`).join(''));
    expect(r.outcome).toBe('first-bad');
    expect(r.first_bad).toBe(commits[2]);
    expect(r.subject).toBe('uacce: simplify uacce_vma_close');
    expect(r.fixes).toBe(`Fixes: ${commits[2]!.slice(0, 12)} ("uacce: simplify uacce_vma_close")`);
    expect(r.build_mode?.mode).toBe('module');
    // every step built only uacce.ko; the ends were tested; each bad step showed the title
    expect(r.steps.every((s) => s.build === 'module')).toBe(true);
    expect(r.steps.map((s) => s.role).slice(0, 2)).toEqual(['bad end', 'good end']);
    for (const s of r.steps) {
      expect(s.verdict).toBe(commits.indexOf(s.id) >= 2 ? 'bad' : 'good');
      if (s.verdict === 'bad') expect(s.titles).toContain(TITLE);
      expect(s.ms).toBeGreaterThanOrEqual(s.build_ms + s.test_ms - 5);
    }
    expect(r.steps.length).toBeLessThanOrEqual(5);
    expect(r.confidence?.statement).toMatch(/runs/);
    const json = JSON.parse(readFileSync(join(out, 'bisect.json'), 'utf8')) as BisectReport;
    expect(json.first_bad).toBe(commits[2]);
    const log = readFileSync(join(out, 'bisect.log'), 'utf8');
    expect(log).toContain(r.fixes!);
    expect(log).toMatch(/git bisect log/);
    // the user's tree is left as it was
    expect(git('rev-parse', 'HEAD')).toBe(commits[4]);
    expect(git('status', '--porcelain')).toBe('');
  });

  it('a good end that already reproduces is the answer, in one line', { timeout: 900_000 }, async () => {
    const r = await bisectGit({ target, runs: 1, threshold: 1, outDir: join(dir, 'out2'), tree, good: commits[3]!, bad: commits[4]!, kernel: KERNEL });
    expect(r.outcome).toBe('good-reproduces');
    expect(r.conclusion).toMatch(/^--good \S+ \([0-9a-f]{12}\) already reproduces it \(1 of 1\); give an older good commit$/);
    expect(r.steps).toHaveLength(2);
  });

  it('bad input: a revision that does not exist, no kernel to load uacce.ko into', async () => {
    const err = async (p: Promise<unknown>) => {
      try {
        await p;
      } catch (e) {
        expect(e).toBeInstanceOf(UserError);
        return (e as Error).message;
      }
      throw new Error('expected a UserError');
    };
    const base = { target, runs: 1, threshold: 1, outDir: join(dir, 'out3'), tree };
    expect(await err(bisectGit({ ...base, good: 'v0.0-nope', bad: commits[4]! }))).toMatch(/has no commit "v0\.0-nope"/);
    expect(await err(bisectGit({ ...base, good: commits[0]!, bad: commits[4]! }))).toMatch(/is not a kernel tree.*--kernel/);
    expect(await err(bisectGit({ ...base, good: commits[4]!, bad: commits[0]!, kernel: KERNEL }))).toMatch(/is not an ancestor/);
  });
});
