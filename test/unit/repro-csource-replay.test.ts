/**
 * The host-side pieces of replay (harness/repro/replay.ts, harness/commands/replay.ts) that need
 * no guest: what to replay and what to look for, title matching, the verdict, compiling.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { buildAgent } from '../../guest/build.js';
import { buildInitramfs, extraEntries, readCpio, type CpioEntry } from '../../guest/initramfs.js';
import type { KernelArtifacts } from '../../kernels/types.js';
import { replayVerdict } from '../../harness/commands/replay.js';
import { loadProgram } from '../../harness/commands/run.js';
import { profileFor } from '../../harness/model/index.js';
import { formatProgram, parseProgram } from '../../harness/program/parse.js';
import { reproForProgram } from '../../harness/repro/csource.js';
import { compileRepro, guestReproPath, isModelTitle, loadReplayTarget, reproFindingLine, sameDivergence } from '../../harness/repro/replay.js';
import { UserError } from '../../harness/util/errors.js';
import { cleanupAgentCache, useTestCache } from './agent-local.js';

const dir = mkdtempSync(join(tmpdir(), 'svadiff-replay-test-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  cleanupAgentCache();
});

const FIXTURE = 'test/fixtures/repro/mmap-ok-finding.program.json';
const TITLE = 'mmap: expected ok, got EEXIST [mmap.ok]';
const profile = profileFor('6.12.117+deb12-amd64', { arch: 'x86_64', distro: 'debian' });

describe('what to replay', () => {
  it('a finding directory: its program, its title and its kernel', async () => {
    const f = join(dir, 'findings', 'some-id');
    mkdirSync(f, { recursive: true });
    writeFileSync(join(f, 'program.json'), readFileSync(FIXTURE));
    writeFileSync(join(f, 'finding.json'), JSON.stringify({ title: TITLE, kernel: { spec: 'debian:6.12.117', release: 'r' } }));
    for (const path of [f, join(f, 'program.json')]) {
      const t = await loadReplayTarget(path);
      expect(t).toMatchObject({ kind: 'program', title: TITLE, kernel: 'debian:6.12.117' });
      expect(t.program.ops.length).toBe(42);
    }
  });

  it('a bare program: no title (any finding counts)', async () => {
    const p = join(dir, 'bare.json');
    writeFileSync(p, readFileSync(FIXTURE));
    const t = await loadReplayTarget(p);
    expect(t.kind).toBe('program');
    expect(t.title).toBeUndefined();
    expect(t.kernel).toBeUndefined();
  });

  it('a regression corpus entry: its program, its recorded title and kernel', async () => {
    const src = 'corpus/regress/uacce-partial-munmap-frees-region.json';
    const entry = JSON.parse(readFileSync(src, 'utf8')) as { outcome: { title: string }; recorded: { kernel: string }; program: unknown };
    // a copy under another name is read too (the file-name rule is the corpus's, not the reader's)
    const p = join(dir, 'my-copy.json');
    writeFileSync(p, readFileSync(src));
    for (const path of [src, p]) {
      const t = await loadReplayTarget(path);
      expect(t).toMatchObject({ kind: 'program', title: entry.outcome.title, kernel: entry.recorded.kernel });
      expect(formatProgram(t.program)).toBe(formatProgram(parseProgram(JSON.stringify(entry.program), 'entry')));
      // svadiff run takes it too (README: svadiff run corpus/regress/x.json --uacce-src .)
      expect(formatProgram(await loadProgram(path))).toBe(formatProgram(t.program));
    }
    // the entry is checked like the corpus checks it
    writeFileSync(p, JSON.stringify({ ...entry, note: 'TODO' }));
    await expect(loadReplayTarget(p)).rejects.toThrow(/not TODO/);
  });

  it('a reproducer: its embedded program, title and kernel spec', async () => {
    const prog = parseProgram(readFileSync(FIXTURE, 'utf8'), 'fixture');
    const c = join(dir, 'repro.c');
    writeFileSync(c, reproForProgram(prog, profile, { title: TITLE, kernel: '6.12.117+deb12-amd64 (debian:6.12.117)' }));
    const t = await loadReplayTarget(c);
    expect(t).toMatchObject({ kind: 'repro', title: TITLE, kernel: 'debian:6.12.117' });
    expect(formatProgram(t.program)).toBe(formatProgram(prog));
  });

  it('bad input: one line that names the fix', async () => {
    await expect(loadReplayTarget(join(dir, 'nope.json'))).rejects.toThrow(UserError);
    const c = join(dir, 'plain.c');
    writeFileSync(c, 'int main(void) { return 0; }\n');
    await expect(loadReplayTarget(c)).rejects.toThrow(/no embedded program/);
    const j = join(dir, 'broken.json');
    writeFileSync(j, '{"format": "svadiff-program", "version": 1, "ops": [{"op": "mmap"}]}');
    await expect(loadReplayTarget(j)).rejects.toThrow(/ops\[0\] \(mmap\)/);
  });
});

describe('titles', () => {
  it('tells divergence and hang titles from kernel report titles', () => {
    expect(isModelTitle(TITLE)).toBe(true);
    expect(isModelTitle('ioctl PUT_Q: expected ok, got ESRCH [ioctl.put-stop]')).toBe(true);
    expect(isModelTitle('hang: poll did not return')).toBe(true);
    expect(isModelTitle('general protection fault in __mutex_lock')).toBe(false);
    expect(isModelTitle('WARNING in uacce_remove')).toBe(false);
  });

  it('a reproducer divergence matches the same call and outcome even with a wider expected set', () => {
    expect(sameDivergence(TITLE, TITLE)).toBe(true);
    expect(sameDivergence('poll: expected ok(0x1), got ok(0x0) [poll.ready]', 'poll: expected one of {ok(0x1), ok(0x0x)}, got ok(0x0) [poll.ready, poll.racy]')).toBe(true);
    expect(sameDivergence(TITLE, 'mmap: expected ok, got EINVAL [mmap.ok]')).toBe(false); // other outcome
    expect(sameDivergence(TITLE, 'munmap: expected ok, got EEXIST [mmap.ok]')).toBe(false); // other call
    expect(sameDivergence(TITLE, 'mmap: expected ok, got EEXIST [mmap.other]')).toBe(false); // no rule in common
    expect(sameDivergence('general protection fault in f', 'general protection fault in f')).toBe(true);
  });

  it('reads the FINDING line of a reproducer, bounded and without control characters', () => {
    expect(reproFindingLine(`step 1\nRESULT: x\nFINDING: ${TITLE}\nstep 2\n`)).toBe(TITLE);
    expect(reproFindingLine('RESULT: every checked step (3 of 3) did what the model expects\n')).toBeUndefined();
    expect(reproFindingLine('FINDING: a\x1b[31mred\x07 title\n')).toBe('ared title');
    expect(reproFindingLine('FINDING: ' + 'x'.repeat(5000))!.length).toBeLessThan(400);
  });

  it('the verdict: every run, no run, some runs (flaky)', () => {
    expect(replayVerdict(3, 3)).toEqual({ text: 'reproduced 3 of 3', exitCode: 0 });
    expect(replayVerdict(0, 3)).toEqual({ text: 'reproduced 0 of 3: does not reproduce', exitCode: 1 });
    expect(replayVerdict(1, 3)).toEqual({ text: 'reproduced 1 of 3: flaky (1/3)', exitCode: 3 });
  });
});

describe('compileRepro', () => {
  it('compiles once per content (cached), names the guest path by its hash', { timeout: 120_000 }, async () => {
    useTestCache();
    const prog = parseProgram(readFileSync(FIXTURE, 'utf8'), 'fixture');
    const c = join(dir, 'c1.c');
    writeFileSync(c, reproForProgram(prog, profile, { title: TITLE }));
    const a = await compileRepro(c, ['-Werror']);
    expect(await compileRepro(c, ['-Werror'])).toBe(a);
    expect(guestReproPath(a)).toMatch(/^\/repro\/[0-9a-f]{16}$/);
    writeFileSync(c, reproForProgram(prog, profile, { title: 'another title' }));
    expect(await compileRepro(c, ['-Werror'])).not.toBe(a);
  });

  it('a C file that does not compile is a user error with the compiler output', { timeout: 120_000 }, async () => {
    useTestCache();
    const c = join(dir, 'bad.c');
    writeFileSync(c, 'int main(void) { return undeclared; }\n');
    const e = await compileRepro(c).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UserError);
    expect((e as Error).message).toMatch(/gcc could not compile .*bad\.c.*\n.*undeclared/s);
  });
});

describe('initramfs extra files (reproducer binaries)', () => {
  it('adds the files and their directories after the standard layout, never over it', () => {
    const std: CpioEntry[] = [{ kind: 'dir', path: 'bin' }, { kind: 'file', path: 'bin/busybox', data: new Uint8Array(1) }, { kind: 'dir', path: 'tmp' }];
    const data = new Uint8Array([1, 2]);
    expect(extraEntries(std, [{ path: '/repro/a', data }, { path: 'repro/sub/b', data, mode: 0o700 }, { path: 'tmp/c', data }])).toEqual([
      { kind: 'dir', path: 'repro' },
      { kind: 'file', path: 'repro/a', data, mode: 0o755 },
      { kind: 'dir', path: 'repro/sub' },
      { kind: 'file', path: 'repro/sub/b', data, mode: 0o700 },
      { kind: 'file', path: 'tmp/c', data, mode: 0o755 },
    ]);
    expect(() => extraEntries(std, [{ path: 'bin/busybox', data }])).toThrow(/replace/);
    expect(() => extraEntries(std, [{ path: 'bin/busybox/x', data }])).toThrow(/not a directory/);
    expect(() => extraEntries(std, [{ path: 'repro/../init', data }])).toThrow(/bad extra/);
    expect(() => extraEntries(std, [{ path: 'r/a', data }, { path: 'r/a', data }])).toThrow(/replace/);
  });

  it('the files are in the archive, executable, and part of the cache key', { timeout: 120_000 }, async () => {
    useTestCache();
    const kdir = join(dir, 'kernel');
    mkdirSync(kdir, { recursive: true });
    const mod = (name: string) => {
      const p = join(kdir, name);
      writeFileSync(p, `${name} ${randomBytes(8).toString('hex')}`);
      return p;
    };
    const kernel: KernelArtifacts = {
      spec: 'debian:6.12', exactSpec: 'debian:6.12.117', version: '6.12.117', debianVersion: '6.12.117-1~deb12u1',
      release: '6.12.117+deb12-amd64', arch: 'x86_64', image: join(kdir, 'vmlinuz'), config: join(kdir, 'config'),
      systemMap: join(kdir, 'System.map'), configHash: '0', compiler: 'gcc-12',
      modules: { uacce: mod('uacce.ko'), svadiffTest: mod('svadiff_test.ko') }, uacceSourceVersion: '6.12.117', extraModules: [], dir: kdir,
    };
    const agent = await buildAgent('x86_64');
    const plain = await buildInitramfs({ kernel, agent });
    const one = await buildInitramfs({ kernel, agent, extraFiles: [{ path: 'repro/aaaa', data: Buffer.from('#!/bin/sh\necho one\n') }] });
    const two = await buildInitramfs({ kernel, agent, extraFiles: [{ path: 'repro/aaaa', data: Buffer.from('#!/bin/sh\necho two\n') }] });
    expect(new Set([plain, one, two]).size).toBe(3);
    expect(await buildInitramfs({ kernel, agent, extraFiles: [] })).toBe(plain); // no extra files: the plain image
    const members = readCpio(readFileSync(one));
    expect(members.find((m) => m.path === 'repro')).toMatchObject({ kind: 'dir', perm: 0o755 });
    expect(members.find((m) => m.path === 'repro/aaaa')).toMatchObject({ kind: 'file', perm: 0o755 });
    expect(members.find((m) => m.path === 'repro/aaaa')!.data.toString()).toBe('#!/bin/sh\necho one\n');
  });
});
