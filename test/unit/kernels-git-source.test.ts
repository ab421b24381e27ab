/**
 * Kernels from git trees and bisection, on real git repositories made here: bad trees and
 * revisions give one-line errors, a build that fails leaves nothing that looks built, and
 * git bisect's own output is read right.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBisectOutput } from '../../harness/bisect/run.js';
import { UserError } from '../../harness/util/errors.js';
import { defaultModuleSources } from '../../kernels/fetch.js';
import { buildSourceKernel } from '../../kernels/kbuild.js';
import { GIT_TOOL, gitSourceTree } from '../../kernels/source.js';
import { ensureHostTools } from '../../harness/util/host.js';

const scratch = mkdtempSync(join(tmpdir(), 'svadiff-git-'));
const cache = join(scratch, 'cache');
const oldCache = process.env.SVADIFF_CACHE;
afterAll(() => {
  if (oldCache === undefined) delete process.env.SVADIFF_CACHE;
  else process.env.SVADIFF_CACHE = oldCache;
  rmSync(scratch, { recursive: true, force: true });
});

function git(dir: string, ...args: string[]): string {
  return execFileSync('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@t', '-c', 'init.defaultBranch=main', ...args], { encoding: 'utf8' });
}

function repo(name: string, files: Record<string, string>): string {
  const dir = join(scratch, name);
  mkdirSync(dir, { recursive: true });
  git(dir, 'init', '-q');
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(join(dir, f, '..'), { recursive: true });
    writeFileSync(join(dir, f), text);
  }
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '-m', 'first');
  return dir;
}

async function userError(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    expect((e as Error).message).not.toContain('\n');
    return (e as Error).message;
  }
  throw new Error('expected a UserError');
}

beforeAll(async () => {
  process.env.SVADIFF_CACHE = cache;
  // the tests run git themselves: installed like every program svadiff runs
  await ensureHostTools(GIT_TOOL);
});

describe('git trees', () => {
  it('a revision that does not exist, a directory that is no git tree, a tree that is no kernel: one line each', async () => {
    const notKernel = repo('not-kernel', { 'README': 'hello\n' });
    expect(await userError(gitSourceTree(notKernel, 'v9.9'))).toMatch(/has no commit "v9\.9"/);
    const plain = join(scratch, 'plain');
    mkdirSync(plain);
    expect(await userError(gitSourceTree(plain, 'HEAD'))).toMatch(/is not a git tree/);
    expect(await userError(gitSourceTree(join(scratch, 'missing'), 'HEAD'))).toMatch(/does not exist/);
    expect(await userError(gitSourceTree(notKernel, 'HEAD'))).toMatch(/at HEAD is not a kernel tree \(it has no Makefile\)/);
  });

  it('a build that fails says the first error, keeps its log, and leaves no kernel entry behind', { timeout: 120_000 }, async () => {
    // a tree with the files a kernel tree has, whose build fails the way a compiler does
    const tree = repo('fake-kernel', {
      Makefile: [
        'VERSION = 6', 'PATCHLEVEL = 99', 'SUBLEVEL = 0', 'EXTRAVERSION =',
        'allnoconfig:', '\tcp $(KCONFIG_ALLCONFIG) $(O)/.config',
        'bzImage modules:', '\t@echo "  CC      kernel/boom.o"', '\t@echo "kernel/boom.c:3:1: error: expected identifier"', '\t@false', '',
      ].join('\n'),
      Kconfig: '',
      'arch/x86/Kconfig': '',
      'scripts/kconfig/merge_config.sh': 'while [ "$1" != "-O" ]; do shift; done; out=$2; shift 2; cat "$@" > "$out/.config"\n',
    });
    const msg = await userError(buildSourceKernel({ kind: 'git', tree, rev: 'HEAD', fragments: [], text: `git:${tree}` }, { moduleSources: defaultModuleSources(), jobs: 1 }));
    expect(msg).toMatch(/failed \(make exit 2\): kernel\/boom\.c:3:1: error: expected identifier; full log: /);
    const log = /full log: (\S+)$/.exec(msg)![1]!;
    expect(readFileSync(log, 'utf8')).toContain('error: expected identifier');
    // nothing under kernels/ looks like a kernel; the build directory says it failed
    const entries = existsSync(join(cache, 'kernels')) ? readdirSync(join(cache, 'kernels')).filter((n) => !n.endsWith('.lock')) : [];
    expect(entries).toEqual([]);
    const builds = readdirSync(join(cache, 'kernel-build')).filter((n) => !n.endsWith('.lock'));
    expect(builds).toHaveLength(1);
    expect(JSON.parse(readFileSync(join(cache, 'kernel-build', builds[0]!, 'svadiff-build.json'), 'utf8')).status).toBe('failed');
    // the user's tree is untouched: svadiff built from its private clone
    expect(git(tree, 'status', '--porcelain')).toBe('');
  });
});

describe('git bisect output', () => {
  it('is read as git prints it: the first bad commit, or the skipped candidates', { timeout: 120_000 }, () => {
    const dir = repo('bisect', { f: '0\n' });
    const commits = [git(dir, 'rev-parse', 'HEAD').trim()];
    for (let i = 1; i <= 4; i++) {
      writeFileSync(join(dir, 'f'), `${i}\n`);
      git(dir, 'commit', '-q', '-am', `change ${i}`);
      commits.push(git(dir, 'rev-parse', 'HEAD').trim());
    }
    const run = (...a: string[]) => {
      try {
        return git(dir, ...a);
      } catch (e) {
        return String((e as { stdout?: string }).stdout ?? '');
      }
    };
    let out = run('bisect', 'start', '--no-checkout', commits[4]!, commits[0]!);
    expect(parseBisectOutput(out)).toEqual({});
    // commit 2 introduced it
    for (let i = 0; i < 5 && !parseBisectOutput(out).firstBad; i++) {
      const cand = git(dir, 'rev-parse', 'BISECT_HEAD').trim();
      out = run('bisect', commits.indexOf(cand) >= 2 ? 'bad' : 'good', cand);
    }
    expect(parseBisectOutput(out)).toEqual({ firstBad: commits[2] });
    run('bisect', 'reset');
    // every commit in between skipped
    out = run('bisect', 'start', '--no-checkout', commits[4]!, commits[0]!);
    for (let i = 0; i < 5 && !parseBisectOutput(out).candidates; i++) out = run('bisect', 'skip', git(dir, 'rev-parse', 'BISECT_HEAD').trim());
    expect(parseBisectOutput(out).candidates?.sort()).toEqual(commits.slice(1).sort());
    run('bisect', 'reset');
  });
});
