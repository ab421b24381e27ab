import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  buildEnvFor,
  crossMakeVars,
  ccVersionTextOfConfig,
  compilerFromVersionText,
  selectCompiler,
  seriesProfile,
  SERIES_PROFILES,
} from '../../kernels/profiles.js';
import { compareKernelVersions } from '../../kernels/debversion.js';

const FIX = join(import.meta.dirname, '..', 'fixtures', 'kernels');
// "<release> CONFIG_CC_VERSION_TEXT=..." lines taken from the fetched kernels' configs
const ccLines = readFileSync(join(FIX, 'cc-version-text.txt'), 'utf8')
  .split('\n')
  .filter((l) => l.length > 0 && !l.startsWith('#'))
  .map((l) => {
    const [release, ...rest] = l.split(' ');
    return { release: release ?? '', configLine: rest.join(' ') };
  });

describe('compiler selection', () => {
  it('reads the compiler from the configs of the real kernels', () => {
    const got = Object.fromEntries(ccLines.map((c) => [c.release, selectCompiler(`# x\n${c.configLine}\nCONFIG_Y=y\n`, SERIES_PROFILES[0]!).compiler]));
    expect(got).toEqual({ '6.1.0-56-amd64': 'gcc-12', '6.12.117+deb12-amd64': 'gcc-12', '7.2.13+deb14-amd64': 'gcc-16' });
    expect(ccVersionTextOfConfig(ccLines[2]!.configLine)).toBe('x86_64-linux-gnu-gcc-16 (Debian 16.2.0-4) 16.2.0');
  });

  it('falls back to the series profile without CONFIG_CC_VERSION_TEXT', () => {
    const p72 = seriesProfile('7.2')!;
    expect(selectCompiler('CONFIG_X=y\n', p72)).toEqual({ compiler: 'gcc-16', versionText: undefined });
    expect(compilerFromVersionText('clang version 19.1.7')).toBeUndefined();
    expect(compilerFromVersionText('gcc (Debian 14.2.0-19) 14.2.0')).toBe('gcc-14');
  });

  it('maps compilers to build environments', () => {
    expect(buildEnvFor('gcc-12')).toEqual({ kind: 'host', hostPackage: 'gcc-12' });
    expect(buildEnvFor('gcc-16')).toMatchObject({ kind: 'chroot', suite: 'sid' });
    expect(buildEnvFor('gcc-14')).toMatchObject({ kind: 'chroot', suite: 'trixie' });
    expect(buildEnvFor('gcc-99')).toBeUndefined();
  });

  it("arm64 kernels: Debian's cross compilers (gcc-12 from bookworm on the host, gcc-16 in a sid root of its own) and ARCH/CROSS_COMPILE", () => {
    expect(buildEnvFor('gcc-12', 'arm64')).toEqual({ kind: 'host', hostPackage: 'gcc-12-aarch64-linux-gnu', cmd: 'aarch64-linux-gnu-gcc-12' });
    expect(buildEnvFor('gcc-16', 'arm64')).toMatchObject({ kind: 'chroot', suite: 'sid', root: 'sid-arm64' });
    expect((buildEnvFor('gcc-16', 'arm64') as { packages: string[] }).packages).toContain('gcc-16-aarch64-linux-gnu');
    expect(buildEnvFor('gcc-14', 'arm64')).toBeUndefined();
    expect(crossMakeVars('arm64')).toEqual({ ARCH: 'arm64', CROSS_COMPILE: 'aarch64-linux-gnu-' });
    expect(crossMakeVars('x86_64')).toEqual({});
  });
});

describe('series profiles', () => {
  it('pick the last profile not newer than the series', () => {
    expect(seriesProfile('6.1')?.layout).toBe('boot');
    expect(seriesProfile('6.12')?.preferredAbiTags).toEqual(['+deb12', '+deb13']);
    expect(seriesProfile('7.2')?.layout).toBe('split');
    expect(seriesProfile('7.5')?.fromSeries).toBe('7.2');
    expect(seriesProfile('6.6')?.fromSeries).toBe('6.1');
    expect(seriesProfile('5.10')).toBeUndefined();
    expect(compareKernelVersions('6.1', '6.12')).toBeLessThan(0);
  });
});
