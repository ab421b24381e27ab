/**
 * qemu/build.ts on recorded apt and patch output (test/fixtures/qemu/README.md), and the
 * inputs that key the cache.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  cTokens,
  describePatchFailure,
  parsePatchFailure,
  parseShowSrc,
  qemuInputs,
  selectMeson,
  selectSourceVersion,
} from '../../qemu/build.js';
import { CONFIGURE_ARGS, MESON, QEMU_SOURCE } from '../../qemu/recipe.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/qemu/${name}`, import.meta.url), 'utf8');

describe('the QEMU source package', () => {
  it('lists every version of the source lists, newest first, with the bytes to download', () => {
    const v = parseShowSrc(fixture('showsrc-qemu.txt'), 'qemu');
    expect(v.map((x) => x.version)).toEqual([
      '1:11.1.3+ds-1',
      '1:11.1.2+ds-3',
      '1:10.2.2+ds-1',
      '1:10.0.13+ds-0+deb13u1',
    ]);
    expect(v.find((x) => x.version === '1:10.2.2+ds-1')?.size).toBe(10994 + 38669728 + 127324);
  });

  it("takes the newest version of the recipe's series, not a newer series", () => {
    const v = parseShowSrc(fixture('showsrc-qemu.txt'), 'qemu');
    expect(selectSourceVersion(v, QEMU_SOURCE.upstreamSeries)?.version).toBe('1:10.2.2+ds-1');
    expect(selectSourceVersion(v, '10.0')?.version).toBe('1:10.0.13+ds-0+deb13u1');
    expect(selectSourceVersion(v, '9.2')).toBeUndefined();
  });

  it("meson: bookworm-backports' build of a version QEMU accepts, not sid's, not bookworm's 1.0", () => {
    expect(selectMeson(fixture('show-meson.txt'), MESON.minVersion, MESON.preferVersionTag)).toEqual({ version: '1.7.0-1~bpo12+1', size: 639044 });
    // without a build for the host's release: the oldest acceptable one
    expect(selectMeson(fixture('show-meson.txt'), '1.8', '~bpo12')?.version).toBe('1.12.1-2');
    expect(selectMeson(fixture('show-meson.txt'), '2.0', MESON.preferVersionTag)).toBeUndefined();
  });
});

describe('a patch that does not apply', () => {
  it('names the file and the hunks that failed', () => {
    const f = parsePatchFailure(fixture('patch-dry-run-failure.txt'));
    expect(f).toEqual([
      { file: 'hw/i386/intel_iommu.c', hunks: [{ hunk: 12, line: 5444 }] },
      { file: 'hw/i386/intel_iommu_internal.h', hunks: [{ hunk: 1, line: 193 }] },
    ]);
    expect(describePatchFailure('0001-intel-iommu-svm-option.patch', '1:11.1.3+ds-1', f, '')).toBe(
      'the svadiff patch 0001-intel-iommu-svm-option.patch does not apply to qemu 1:11.1.3+ds-1: hw/i386/intel_iommu.c hunk #12 (at line 5444); hw/i386/intel_iommu_internal.h hunk #1 (at line 193); refresh qemu/patches/ for this version (or build the series qemu/recipe.ts names)',
    );
  });

  it('names a file the source does not have', () => {
    expect(parsePatchFailure(fixture('patch-dry-run-missing-file.txt'))).toEqual([
      { file: 'hw/misc/Kconfig', hunks: [], message: 'no such file in the source' },
      { file: 'hw/misc/meson.build', hunks: [], message: 'no such file in the source' },
    ]);
  });
});

describe('the inputs of a build', () => {
  it('are the patch series, the files and the contract headers; comments do not count', async () => {
    const i = await qemuInputs();
    expect(i.patches.map((p) => p.split('/').pop())).toEqual(['0001-intel-iommu-svm-option.patch', '0002-hw-misc-svadiff-sva.patch']);
    expect(i.copies.map((c) => c.to).sort()).toEqual([
      'configs/devices/x86_64-softmmu/svadiff.mak',
      'hw/misc/svadiff-sva.c',
      'hw/misc/svt_abi.h',
      'hw/misc/svt_endpoint.h',
    ]);
    expect(i.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(cTokens('int a; /* x */ int b; // y\n  char *s = "/* not a comment */";\n')).toBe(cTokens('int a;  int b;\nchar *s = "/* not a comment */";'));
    expect(cTokens('#define A 1\n#define B 2')).not.toBe(cTokens('#define A 1\n#define B 3'));
  });

  it('configure builds one target with the machine device list and no downloads', () => {
    expect(CONFIGURE_ARGS).toContain('--target-list=x86_64-softmmu');
    expect(CONFIGURE_ARGS).toContain('--with-devices-x86_64=svadiff');
    expect(CONFIGURE_ARGS).toContain('--disable-download');
    const mak = readFileSync(new URL('../../qemu/files/configs/devices/x86_64-softmmu/svadiff.mak', import.meta.url), 'utf8');
    for (const c of ['CONFIG_Q35=y', 'CONFIG_VTD=y', 'CONFIG_PCIE_PORT=y', 'CONFIG_SVADIFF_SVA=y']) expect(mak).toContain(c);
  });
});
