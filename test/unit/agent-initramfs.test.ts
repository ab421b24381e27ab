/**
 * The cpio writer and the initramfs builder, checked by reading the archives back with the
 * system's GNU cpio.
 */
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgent } from '../../guest/build.js';
import { buildInitramfs, writeCpio, type CpioEntry } from '../../guest/initramfs.js';
import type { KernelArtifacts } from '../../kernels/types.js';
import { UserError } from '../../harness/util/errors.js';
import { cleanupAgentCache, useTestCache } from './agent-local.js';

let work: string;
beforeAll(async () => {
  useTestCache();
  work = await fs.mkdtemp(join(tmpdir(), 'svadiff-cpio-test-'));
});
afterAll(async () => {
  await fs.rm(work, { recursive: true, force: true });
  cleanupAgentCache();
});

async function listing(archive: string): Promise<string[]> {
  const r = await execa('cpio', ['-itv', '--quiet'], { inputFile: archive });
  return String(r.stdout).split('\n');
}

/** the name column of `cpio -tv` (after the date, whose year is 1970: the archive's mtime is 0) */
const nameOf = (line: string) => / 1970 (.*)$/.exec(line)?.[1] ?? `?${line}`;

async function extract(archive: string, dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  // no device nodes: extracting them needs root and is not what is being checked here
  await execa('cpio', ['-id', '--quiet', '--no-absolute-filenames', '--nonmatching', 'dev/*'], { inputFile: archive, cwd: dir });
}

describe('writeCpio', () => {
  it('writes a newc archive that GNU cpio reads back exactly', async () => {
    const odd = randomBytes(5);
    const big = randomBytes(70_001);
    const entries: CpioEntry[] = [
      { kind: 'dir', path: 'bin' },
      { kind: 'file', path: 'bin/tool', data: big, mode: 0o755 },
      { kind: 'symlink', path: 'bin/sh', target: 'tool' },
      { kind: 'dir', path: 'etc', mode: 0o700 },
      { kind: 'file', path: 'etc/odd', data: odd },
      { kind: 'file', path: 'etc/empty', data: new Uint8Array(0) },
      { kind: 'dir', path: 'dev' },
      { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
      { kind: 'dir', path: 'tmp', mode: 0o1777 },
    ];
    const archive = join(work, 'a.cpio');
    const data = writeCpio(entries);
    expect(data.length % 4).toBe(0);
    await fs.writeFile(archive, data);
    // deterministic: same entries, same bytes
    expect(writeCpio(entries).equals(data)).toBe(true);

    const lines = await listing(archive);
    const names = lines.map(nameOf);
    expect(names).toEqual(['bin', 'bin/tool', 'bin/sh -> tool', 'etc', 'etc/odd', 'etc/empty', 'dev', 'dev/console', 'tmp']);
    const dev = lines.find((l) => l.endsWith('dev/console'))!;
    expect(dev).toMatch(/^crw------- +1 root +root +5, +1 /);
    expect(lines.find((l) => l.endsWith(' tmp'))).toMatch(/^drwxrwxrwt /);

    const out = join(work, 'x');
    await extract(archive, out);
    expect((await fs.readFile(join(out, 'bin/tool'))).equals(big)).toBe(true);
    expect((await fs.stat(join(out, 'bin/tool'))).mode & 0o777).toBe(0o755);
    expect(await fs.readlink(join(out, 'bin/sh'))).toBe('tool');
    expect((await fs.readFile(join(out, 'etc/odd'))).equals(odd)).toBe(true);
    expect((await fs.stat(join(out, 'etc/empty'))).size).toBe(0);
    expect((await fs.stat(join(out, 'etc'))).mode & 0o777).toBe(0o700);
  });

  it('refuses paths it cannot write correctly', () => {
    const f = (path: string): CpioEntry => ({ kind: 'file', path, data: new Uint8Array(1) });
    expect(() => writeCpio([f('a/b')])).toThrow(/before its directory/);
    expect(() => writeCpio([f('x'), f('x')])).toThrow(/duplicate/);
    expect(() => writeCpio([f('../x')])).toThrow(/bad cpio path/);
    expect(() => writeCpio([f('')])).toThrow(/bad cpio path/);
  });
});

describe('buildInitramfs', () => {
  async function fakeKernel(tag: string): Promise<KernelArtifacts> {
    const dir = join(work, `kernel-${tag}`);
    await fs.mkdir(dir, { recursive: true });
    const mod = async (name: string) => {
      const p = join(dir, name);
      await fs.writeFile(p, `${name} ${tag} ${randomBytes(8).toString('hex')}`);
      return p;
    };
    return {
      spec: 'debian:6.12', exactSpec: 'debian:6.12.117', version: '6.12.117', debianVersion: '6.12.117-1~deb12u1',
      release: '6.12.117+deb12-amd64', arch: 'x86_64', image: join(dir, 'vmlinuz'), config: join(dir, 'config'),
      systemMap: join(dir, 'System.map'), configHash: '0', compiler: 'gcc-12',
      modules: { uacce: await mod('uacce.ko'), svadiffTest: await mod('svadiff_test.ko') },
      uacceSourceVersion: '6.12.117', extraModules: [await mod('virtio_extra.ko')], dir,
    };
  }

  it('packs busybox, the agent, the modules in load order and /init; caches by content', { timeout: 120_000 }, async () => {
    const kernel = await fakeKernel('a');
    const agent = await buildAgent('x86_64');
    const path = await buildInitramfs({ kernel, agent });
    expect(path).toMatch(/\/initramfs\/[0-9a-f]{64}\.cpio$/);
    const names = (await listing(path)).map(nameOf);
    for (const n of ['init', 'bin/busybox', 'bin/sh -> busybox', 'bin/mount -> busybox', 'bin/svadiff-agent', 'dev/console', 'proc', 'sys', 'tmp',
      'lib/modules/svadiff/uacce.ko', 'lib/modules/svadiff/virtio_extra.ko', 'lib/modules/svadiff/svadiff_test.ko', 'lib/modules/svadiff/load-order']) {
      expect(names).toContain(n);
    }
    const out = join(work, 'initramfs-a');
    await extract(path, out);
    expect(await fs.readFile(join(out, 'lib/modules/svadiff/load-order'), 'utf8')).toBe('virtio_extra.ko\nuacce.ko\n');
    expect((await fs.readFile(join(out, 'lib/modules/svadiff/uacce.ko'))).equals(await fs.readFile(kernel.modules.uacce))).toBe(true);
    expect((await fs.readFile(join(out, 'bin/svadiff-agent'))).equals(await fs.readFile(agent))).toBe(true);
    const init = await fs.readFile(join(out, 'init'), 'utf8');
    expect(init.startsWith('#!/bin/sh\n')).toBe(true);
    expect(init).toContain('mount -t devtmpfs devtmpfs /dev');
    expect(init).toContain('exec /bin/svadiff-agent --tty /dev/ttyS1');
    expect(init).not.toContain('/dev/ttyS0');
    expect((await fs.stat(join(out, 'init'))).mode & 0o111).not.toBe(0);
    // the busybox in it is the host's static one and runs
    const r = await execa(join(out, 'bin/busybox'), ['echo', 'hi']);
    expect(r.stdout).toBe('hi');

    // cached: the same inputs give the same file, untouched
    const mtime = (await fs.stat(path)).mtimeMs;
    expect(await buildInitramfs({ kernel, agent })).toBe(path);
    expect((await fs.stat(path)).mtimeMs).toBe(mtime);
    // a changed module or the debug shell give another archive
    await fs.writeFile(kernel.modules.svadiffTest, 'rebuilt');
    const other = await buildInitramfs({ kernel, agent });
    expect(other).not.toBe(path);
    const debug = await buildInitramfs({ kernel, agent, debugShell: true });
    expect(debug).not.toBe(other);
    await extract(debug, join(work, 'initramfs-debug'));
    expect(await fs.readFile(join(work, 'initramfs-debug', 'init'), 'utf8')).toContain('/bin/sh </dev/ttyS0 >/dev/ttyS0 2>&1 &');
  });

  it('names the missing module', async () => {
    const kernel = await fakeKernel('b');
    await fs.rm(kernel.modules.uacce);
    await expect(buildInitramfs({ kernel, agent: await buildAgent('x86_64') })).rejects.toThrow(UserError);
    await expect(buildInitramfs({ kernel, agent: await buildAgent('x86_64') })).rejects.toThrow(/uacce module .*uacce\.ko is missing/);
  });
});
