import { mkdtempSync, rmSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildErrorLines, isBuildProduct, relocateHeadersMakefile } from '../../kernels/build.js';
import { entryName, hashModuleSources } from '../../kernels/fetch.js';

const scratchDirs: string[] = [];
function scratch(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  scratchDirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of scratchDirs) rmSync(d, { recursive: true, force: true });
});

const FIX = join(import.meta.dirname, '..', 'fixtures', 'kernels');

describe('headers Makefile relocation', () => {
  it('points the absolute include of the -common Makefile into the cache (6.1 headers as shipped)', () => {
    const text = readFileSync(join(FIX, 'headers-Makefile-6.1.0-56-amd64'), 'utf8');
    expect(relocateHeadersMakefile(text, '/c/k/headers')).toBe('include /c/k/headers/usr/src/linux-headers-6.1.0-56-common/Makefile\n');
  });

  it('also moves KBUILD_OUTPUT (7.2 headers as shipped)', () => {
    const text = readFileSync(join(FIX, 'headers-Makefile-7.2.13+deb14-amd64'), 'utf8');
    expect(relocateHeadersMakefile(text, '/c')).toBe(
      'KBUILD_OUTPUT=/c/usr/src/linux-headers-7.2.13+deb14-amd64\ninclude /c/usr/src/linux-headers-7.2.13+deb14-common/Makefile\n',
    );
    // idempotent: a relocated Makefile stays as it is
    const once = relocateHeadersMakefile(text, '/c');
    expect(relocateHeadersMakefile(once, '/c')).toBe(once);
  });
});

describe('build failure reports', () => {
  it('quote the compiler error, not make noise', () => {
    const log = readFileSync(join(FIX, 'make-failure-6.12.log'), 'utf8');
    expect(buildErrorLines(log, 1)[0]).toMatch(/svadiff_test\.c:13:1: error: unknown type name/);
    expect(buildErrorLines(log)).toHaveLength(3);
  });

  it('quote modpost errors (a missing KBUILD_EXTRA_SYMBOLS)', () => {
    const log = readFileSync(join(FIX, 'make-modpost-failure-6.12.log'), 'utf8');
    expect(buildErrorLines(log, 1)).toEqual([expect.stringMatching(/^ERROR: modpost: "uacce_alloc" .* undefined!$/)]);
  });
});

describe('module source hashing', () => {
  function tree(): string {
    const dir = scratch('svadiff-mod-');
    mkdirSync(join(dir, 'module'));
    mkdirSync(join(dir, 'include'));
    writeFileSync(join(dir, 'module', 'Kbuild'), 'obj-m := t.o\n');
    writeFileSync(join(dir, 'module', 't.c'), 'int x;\n');
    writeFileSync(join(dir, 'include', 'abi.h'), '#define A 1\n');
    return dir;
  }
  const src = (d: string) => ({ moduleDir: join(d, 'module'), includeDir: join(d, 'include') });

  it('changes with sources and headers, not with build products', async () => {
    const d = tree();
    const h0 = (await hashModuleSources(src(d))).hash;
    writeFileSync(join(d, 'module', 't.o'), 'junk');
    writeFileSync(join(d, 'module', '.t.o.cmd'), 'junk');
    writeFileSync(join(d, 'module', 'Module.symvers'), 'junk');
    expect((await hashModuleSources(src(d))).hash).toBe(h0);
    writeFileSync(join(d, 'include', 'abi.h'), '#define A 2\n');
    const h1 = (await hashModuleSources(src(d))).hash;
    expect(h1).not.toBe(h0);
    writeFileSync(join(d, 'module', 't.c'), 'int y;\n');
    expect((await hashModuleSources(src(d))).hash).not.toBe(h1);
  });

  it('a missing module directory is a UserError naming it', async () => {
    await expect(hashModuleSources({ moduleDir: '/nonexistent/guest/module', includeDir: '/nonexistent' })).rejects.toThrow('/nonexistent/guest/module has no Kbuild');
  });

  it('build products', () => {
    for (const p of ['a.o', 'a.ko', 'a.mod', 'a.mod.c', '.a.o.cmd', 'Module.symvers', 'modules.order', 'sub/.tmp']) expect(isBuildProduct(p)).toBe(true);
    for (const p of ['a.c', 'Kbuild', 'Makefile', 'a.h']) expect(isBuildProduct(p)).toBe(false);
  });

  it('cache entry names', () => {
    expect(entryName('debian:6.12.117', 'x86_64')).toBe('debian-6.12.117-x86_64');
    expect(entryName('debian:6.12.107+deb13', 'x86_64')).toBe('debian-6.12.107+deb13-x86_64');
  });
});
