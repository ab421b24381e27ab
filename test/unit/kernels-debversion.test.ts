import { execa } from 'execa';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { which } from '../../harness/util/host.js';
import { compareDebVersions, compareKernelVersions, satisfies, upstreamKernelVersion } from '../../kernels/debversion.js';

const FIX = join(import.meta.dirname, '..', 'fixtures', 'kernels');
const versions = [...new Set([...readFileSync(join(FIX, 'apt-show-kernels-amd64.txt'), 'utf8').matchAll(/^Version: (.+)$/gm)].map((m) => m[1] ?? ''))];

describe('Debian version order', () => {
  it('known dpkg orderings', () => {
    const lt = (a: string, b: string) => expect(compareDebVersions(a, b), `${a} < ${b}`).toBeLessThan(0);
    lt('6.12.95-1~bpo12+1', '6.12.95-1');
    lt('6.12.107-1~deb12u1', '6.12.107-1');
    lt('6.1.192-1', '6.1.192-2');
    lt('6.12.9-1', '6.12.10-1');
    lt('1.0~rc1', '1.0');
    lt('1.0', '1.0a');
    lt('1.0', '1.0+');
    lt('9.9', '1:0.1');
    lt('6.12.90-1~bpo12+1', '6.12.90-2~bpo12+1');
    expect(compareDebVersions('1.0-1', '1.0-1')).toBe(0);
    expect(compareDebVersions('0:1.0', '1.0')).toBe(0);
    expect(compareDebVersions('1.01', '1.1')).toBe(0);
  });

  it('is antisymmetric', () => {
    const arb = fc.stringMatching(/^[0-9]{1,2}(\.[0-9a-z~+]{1,3}){0,3}(-[0-9a-z~+.]{1,4})?$/);
    fc.assert(fc.property(arb, arb, (a, b) => Math.sign(compareDebVersions(a, b)) === -Math.sign(compareDebVersions(b, a))));
  });

  it.skipIf(which('dpkg') === undefined)('agrees with dpkg --compare-versions on the recorded kernel versions', async () => {
    const sorted = [...versions].sort(compareDebVersions);
    for (let i = 0; i + 1 < sorted.length; i++) {
      const a = sorted[i] ?? '';
      const b = sorted[i + 1] ?? '';
      const r = await execa('dpkg', ['--compare-versions', a, 'le', b], { reject: false });
      expect(r.exitCode, `${a} <= ${b}`).toBe(0);
    }
    expect(sorted.length).toBeGreaterThan(20);
  });

  it('Depends relations', () => {
    expect(satisfies('6.1.192-2', '>=', '6.1.190-1')).toBe(true);
    expect(satisfies('6.1.176-1', '>=', '6.1.190-1')).toBe(false);
    expect(satisfies('7.2.13-1', '=', '7.2.13-1')).toBe(true);
    expect(satisfies('7.2.13-1', '<<', '7.2.13-1')).toBe(false);
    expect(satisfies('1', '??', '1')).toBe(false);
  });
});

describe('upstream kernel versions', () => {
  it('from Debian versions', () => {
    expect(upstreamKernelVersion('6.12.117-1~deb12u1')).toBe('6.12.117');
    expect(upstreamKernelVersion('6.1.192-2')).toBe('6.1.192');
    expect(upstreamKernelVersion('7.2-1')).toBe('7.2.0');
    expect(upstreamKernelVersion('7.3~rc4-1~exp1')).toBeUndefined();
    expect(upstreamKernelVersion('6.12.95-1~bpo12+1')).toBe('6.12.95');
  });

  it('numeric order', () => {
    expect(compareKernelVersions('6.12.9', '6.12.10')).toBeLessThan(0);
    expect(compareKernelVersions('7.2.0', '6.12.117')).toBeGreaterThan(0);
  });
});
