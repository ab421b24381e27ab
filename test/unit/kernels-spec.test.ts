import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../harness/util/errors.js';
import { formatKernelSpec, parseKernelSpec, withArch } from '../../kernels/spec.js';
import { entryName } from '../../kernels/fetch.js';
import { parseArch } from '../../kernels/index.js';

describe('kernel specs', () => {
  it('series, exact versions and ABI tags', () => {
    expect(parseKernelSpec('debian:6.12')).toEqual({ distro: 'debian', series: '6.12', text: 'debian:6.12' });
    expect(parseKernelSpec(' debian:6.1.192 ')).toEqual({ distro: 'debian', series: '6.1', version: '6.1.192', text: 'debian:6.1.192' });
    expect(parseKernelSpec('debian:7.2')).toEqual({ distro: 'debian', series: '7.2', text: 'debian:7.2' });
    expect(parseKernelSpec('debian:6.12.107+deb13')).toMatchObject({ series: '6.12', version: '6.12.107', abiTag: '+deb13' });
  });

  it('rejects anything else with a one-line UserError naming the syntax', () => {
    for (const bad of ['6.12', 'debian:', 'debian:6', 'debian:6.12.x', 'ubuntu:6.8', 'debian:6.12.1.2', 'debian:6.12+deb12', 'debian:6.12.1-1', '']) {
      expect(() => parseKernelSpec(bad)).toThrow(UserError);
    }
    expect(() => parseKernelSpec('6.12')).toThrow('write debian:6.12');
    expect(() => parseKernelSpec('ubuntu:6.8')).toThrow(/use debian:<series>/);
    expect(() => parseKernelSpec('x\n'.repeat(100))).toThrow(/^[^\n]*$/);
  });

  it('format is the inverse of parse for canonical specs', () => {
    fc.assert(
      fc.property(fc.nat(20), fc.nat(30), fc.option(fc.nat(300)), fc.option(fc.integer({ min: 10, max: 15 })), (a, b, c, tag) => {
        const text = `debian:${a}.${b}${c === null ? '' : `.${c}${tag === null ? '' : `+deb${tag}`}`}`;
        expect(formatKernelSpec(parseKernelSpec(text))).toBe(text);
      }),
    );
  });

  it('an architecture suffix: debian:<series|version>/arm64; x86_64 specs keep their old text', () => {
    expect(parseKernelSpec('debian:6.12/arm64')).toEqual({ distro: 'debian', series: '6.12', arch: 'arm64', text: 'debian:6.12/arm64' });
    expect(parseKernelSpec('debian:6.12.107+deb13/aarch64')).toMatchObject({ version: '6.12.107', abiTag: '+deb13', arch: 'arm64' });
    expect(parseKernelSpec('debian:6.1/amd64').arch).toBe('x86_64');
    expect(formatKernelSpec(parseKernelSpec('debian:6.12.118/arm64'))).toBe('debian:6.12.118/arm64');
    expect(formatKernelSpec(parseKernelSpec('debian:6.12.118/x86_64'))).toBe('debian:6.12.118');
    expect(() => parseKernelSpec('debian:6.12/riscv64')).toThrow(/write \/arm64 or \/x86_64/);
    expect(() => parseKernelSpec('debian:6.12/')).toThrow(UserError);
    expect(entryName('debian:6.12.118/arm64', 'arm64')).toBe('debian-6.12.118-arm64');
  });

  it("--arch joins a spec that names none, and conflicts are errors", () => {
    expect(withArch('debian:6.12', 'arm64')).toBe('debian:6.12/arm64');
    expect(withArch('debian:6.12', 'x86_64')).toBe('debian:6.12');
    expect(withArch('debian:6.12/arm64', 'arm64')).toBe('debian:6.12/arm64');
    expect(withArch('debian:6.12', undefined)).toBe('debian:6.12');
    expect(() => withArch('debian:6.12/arm64', 'x86_64')).toThrow(/names arm64 but --arch is x86_64/);
  });

  it('architectures', () => {
    expect(parseArch(undefined)).toBe('x86_64');
    expect(parseArch('amd64')).toBe('x86_64');
    expect(parseArch('aarch64')).toBe('arm64');
    expect(() => parseArch('riscv64')).toThrow(UserError);
  });
});
