/**
 * The cpio writer and the initramfs builder, checked by reading the archives back with
 * readCpio, which is itself checked against an archive written by another program (busybox
 * cpio, test/fixtures/cpio/README.md). No cpio program is needed on the host; the kernel
 * unpacking these archives is what the integration tests boot.
 */
import { execa } from 'execa';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAgent } from '../../guest/build.js';
import { buildInitramfs, readCpio, writeCpio, type CpioEntry, type CpioMember } from '../../guest/initramfs.js';
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

/** The names of an archive's members, a symlink as "name -> target" (as cpio -t shows it). */
async function listing(archive: string): Promise<string[]> {
  return readCpio(await fs.readFile(archive)).map((m) => (m.kind === 'symlink' ? `${m.path} -> ${m.data.toString()}` : m.path));
}

async function member(archive: string, path: string): Promise<CpioMember> {
  const m = readCpio(await fs.readFile(archive)).find((x) => x.path === path);
  if (!m) throw new Error(`${path} is not in ${archive}`);
  return m;
}

describe('writeCpio', () => {
  it('writes a deterministic newc archive with every entry as given', () => {
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
    const data = writeCpio(entries);
    expect(data.length % 4).toBe(0);
    // deterministic: same entries, same bytes
    expect(writeCpio(entries).equals(data)).toBe(true);

    const members = readCpio(data);
    expect(members.map((m) => m.path)).toEqual(['bin', 'bin/tool', 'bin/sh', 'etc', 'etc/odd', 'etc/empty', 'dev', 'dev/console', 'tmp']);
    const by = new Map(members.map((m) => [m.path, m]));
    expect(by.get('bin/tool')).toMatchObject({ kind: 'file', perm: 0o755, uid: 0, gid: 0, mtime: 0 });
    expect(by.get('bin/tool')!.data.equals(big)).toBe(true);
    expect(by.get('bin/sh')).toMatchObject({ kind: 'symlink', perm: 0o777 });
    expect(by.get('bin/sh')!.data.toString()).toBe('tool');
    expect(by.get('etc')).toMatchObject({ kind: 'dir', perm: 0o700 });
    expect(by.get('etc/odd')!.data.equals(odd)).toBe(true);
    expect(by.get('etc/odd')!.perm).toBe(0o644);
    expect(by.get('etc/empty')!.data.length).toBe(0);
    expect(by.get('dev/console')).toMatchObject({ kind: 'chardev', perm: 0o600, rdevMajor: 5, rdevMinor: 1 });
    expect(by.get('tmp')).toMatchObject({ kind: 'dir', perm: 0o1777 });
  });

  it('reads back whatever it wrote (any names, sizes and modes)', () => {
    const name = fc.stringMatching(/^[a-z0-9_.-]{1,12}$/).filter((n) => n !== '.' && n !== '..');
    const entry = fc.oneof(
      fc.record({ kind: fc.constant('file' as const), data: fc.uint8Array({ maxLength: 300 }), mode: fc.integer({ min: 0, max: 0o7777 }) }),
      fc.record({ kind: fc.constant('dir' as const), mode: fc.integer({ min: 0, max: 0o7777 }) }),
      fc.record({ kind: fc.constant('symlink' as const), target: fc.string({ minLength: 1, maxLength: 40 }) }),
      fc.record({ kind: fc.constant('chardev' as const), major: fc.nat(4095), minor: fc.nat(0xfffff), mode: fc.integer({ min: 0, max: 0o7777 }) }),
    );
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(name, entry), { selector: (x) => x[0], maxLength: 20 }), (list) => {
        const entries = list.map(([n, e]) => ({ ...e, path: `d/${n}` }) as CpioEntry);
        const members = readCpio(writeCpio([{ kind: 'dir', path: 'd' }, ...entries]));
        expect(members.map((m) => m.path)).toEqual(['d', ...entries.map((e) => e.path)]);
        entries.forEach((e, i) => {
          const m = members[i + 1]!;
          expect(m.kind).toBe(e.kind);
          if (e.kind === 'file') expect([m.perm, m.data.equals(Buffer.from(e.data))]).toEqual([e.mode, true]);
          if (e.kind === 'dir') expect([m.perm, m.data.length]).toEqual([e.mode, 0]);
          if (e.kind === 'symlink') expect(m.data.toString()).toBe(e.target);
          if (e.kind === 'chardev') expect([m.perm, m.rdevMajor, m.rdevMinor]).toEqual([e.mode, e.major, e.minor]);
        });
      }),
    );
  });

  it('refuses paths it cannot write correctly', () => {
    const f = (path: string): CpioEntry => ({ kind: 'file', path, data: new Uint8Array(1) });
    expect(() => writeCpio([f('a/b')])).toThrow(/before its directory/);
    expect(() => writeCpio([f('x'), f('x')])).toThrow(/duplicate/);
    expect(() => writeCpio([f('../x')])).toThrow(/bad cpio path/);
    expect(() => writeCpio([f('')])).toThrow(/bad cpio path/);
  });
});

describe('readCpio', () => {
  it('reads an archive written by busybox cpio (another newc writer)', () => {
    const members = readCpio(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'cpio', 'busybox-newc.cpio')));
    const when = Date.parse('2026-12-04T12:00:00Z') / 1000;
    expect(members.map((m) => [m.path, m.kind, m.perm.toString(8), m.data.toString()])).toEqual([
      ['bin', 'dir', '755', ''],
      ['bin/tool', 'file', '755', 'hello, cpio\n'],
      ['bin/sh', 'symlink', '777', 'tool'],
      ['etc', 'dir', '700', ''],
      ['etc/odd', 'file', '644', 'odd'],
      ['etc/empty', 'file', '644', ''],
      ['dev', 'dir', '755', ''],
      ['dev/console', 'chardev', '600', ''],
    ]);
    expect(members.every((m) => m.mtime === when && m.uid === 0 && m.gid === 0)).toBe(true);
    expect(members.find((m) => m.path === 'dev/console')).toMatchObject({ rdevMajor: 5, rdevMinor: 1 });
  });

  it('refuses what is not a whole newc archive, naming the offset', () => {
    const good = writeCpio([{ kind: 'file', path: 'a', data: Buffer.from('abc') }]);
    expect(() => readCpio(Buffer.from('hello'))).toThrow(/at byte 0: truncated header/);
    const magic = Buffer.from(good);
    magic.write('070707', 0, 'latin1');
    expect(() => readCpio(magic)).toThrow(/at byte 0: magic "070707"/);
    expect(() => readCpio(good.subarray(0, 116))).toThrow(/at byte 116: truncated header \(no TRAILER!!!\)/);
    expect(() => readCpio(good.subarray(0, 230))).toThrow(/at byte 116: name runs past the end/);
    const hexless = Buffer.from(good);
    hexless.write('zz', 14, 'latin1');
    expect(() => readCpio(hexless)).toThrow(/field mode is "zz/);
    expect(() => readCpio(good.subarray(0, 113))).toThrow(/data of a runs past the end/);
    const unterminated = Buffer.from(good);
    unterminated[111] = 0x41;
    expect(() => readCpio(unterminated)).toThrow(/name is not NUL-terminated/);
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
    const names = await listing(path);
    for (const n of ['init', 'bin/busybox', 'bin/sh -> busybox', 'bin/mount -> busybox', 'bin/svadiff-agent', 'dev/console', 'proc', 'sys', 'tmp',
      'lib/modules/svadiff/uacce.ko', 'lib/modules/svadiff/virtio_extra.ko', 'lib/modules/svadiff/svadiff_test.ko', 'lib/modules/svadiff/load-order']) {
      expect(names).toContain(n);
    }
    expect((await member(path, 'lib/modules/svadiff/load-order')).data.toString()).toBe('virtio_extra.ko\nuacce.ko\n');
    expect((await member(path, 'lib/modules/svadiff/uacce.ko')).data.equals(await fs.readFile(kernel.modules.uacce))).toBe(true);
    expect((await member(path, 'bin/svadiff-agent')).data.equals(await fs.readFile(agent))).toBe(true);
    const init = await member(path, 'init');
    expect(init.data.toString().startsWith('#!/bin/sh\n')).toBe(true);
    expect(init.data.toString()).toContain('mount -t devtmpfs devtmpfs /dev');
    expect(init.data.toString()).toContain('exec /bin/svadiff-agent --tty /dev/ttyS1');
    expect(init.data.toString()).not.toContain('/dev/ttyS0');
    expect(init.perm & 0o111).not.toBe(0);
    expect(await member(path, 'dev/console')).toMatchObject({ kind: 'chardev', rdevMajor: 5, rdevMinor: 1 });
    // the busybox in it is the host's static one and runs
    const bb = join(work, 'busybox-a');
    await fs.writeFile(bb, (await member(path, 'bin/busybox')).data, { mode: 0o755 });
    const r = await execa(bb, ['echo', 'hi']);
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
    expect((await member(debug, 'init')).data.toString()).toContain('/bin/sh </dev/ttyS0 >/dev/ttyS0 2>&1 &');
  });

  it('names the missing module', async () => {
    const kernel = await fakeKernel('b');
    await fs.rm(kernel.modules.uacce);
    await expect(buildInitramfs({ kernel, agent: await buildAgent('x86_64') })).rejects.toThrow(UserError);
    await expect(buildInitramfs({ kernel, agent: await buildAgent('x86_64') })).rejects.toThrow(/uacce module .*uacce\.ko is missing/);
  });
});
