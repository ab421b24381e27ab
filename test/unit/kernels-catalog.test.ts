import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  abiTagOfRelease,
  buildCatalog,
  exactSpecOf,
  isFetchable,
  parseAptShow,
  parseDepends,
  relevantPackageName,
  resolveSpec,
  type SeriesCatalog,
} from '../../kernels/catalog.js';
import { parseKernelSpec } from '../../kernels/spec.js';
import { UserError } from '../../harness/util/errors.js';

// Recorded from the private apt state (see test/fixtures/kernels/README.md).
const FIX = join(import.meta.dirname, '..', 'fixtures', 'kernels');
const pkgnames = readFileSync(join(FIX, 'apt-pkgnames-linux-amd64.txt'), 'utf8').split('\n').filter((l) => l.length > 0);
const records = parseAptShow(readFileSync(join(FIX, 'apt-show-kernels-amd64.txt'), 'utf8'));
const catalog = buildCatalog(records, 'amd64');

function series(s: string): SeriesCatalog {
  const sc = catalog.find((c) => c.series === s);
  if (!sc) throw new Error(`no series ${s}`);
  return sc;
}
const resolve = (s: string) => resolveSpec(catalog, parseKernelSpec(s));

describe('apt-cache show parsing', () => {
  it('reads every record with its fields', () => {
    const img = records.find((r) => r.package === 'linux-image-6.1.0-56-amd64-unsigned');
    expect(img).toMatchObject({ version: '6.1.192-2', architecture: 'amd64' });
    expect(img?.size).toBeGreaterThan(10_000_000);
    expect(img?.sha256).toMatch(/^[0-9a-f]{64}$/);
    const hdr = records.find((r) => r.package === 'linux-headers-6.1.0-56-amd64');
    expect(hdr?.depends).toContain('linux-kbuild-6.1 (>= 6.1.192-2)');
  });

  it('drops duplicate paragraphs and ignores junk', () => {
    const text = 'Package: a\nVersion: 1\nSize: 3\n\nPackage: a\nVersion: 1\nSize: 3\n\nnonsense without colon\n\nVersion: 2\n';
    expect(parseAptShow(text)).toEqual([{ package: 'a', version: '1', architecture: '', size: 3, depends: '' }]);
  });

  it('parses Depends with versions and alternatives', () => {
    const deps = parseDepends(
      'linux-base (>= 4.12~), linux-headers-6.12.117+deb12-common (= 6.12.117-1~deb12u1), linux-image-6.12.117+deb12-amd64 (= 6.12.117-1~deb12u1) | linux-image-6.12.117+deb12-amd64-unsigned (= 6.12.117-1~deb12u1), linux-kbuild-6.12.117+deb12, gcc-12',
    );
    expect(deps).toHaveLength(5);
    expect(deps[1]).toEqual([{ name: 'linux-headers-6.12.117+deb12-common', op: '=', version: '6.12.117-1~deb12u1' }]);
    expect(deps[2]?.map((r) => r.name)).toEqual(['linux-image-6.12.117+deb12-amd64', 'linux-image-6.12.117+deb12-amd64-unsigned']);
    expect(deps[3]).toEqual([{ name: 'linux-kbuild-6.12.117+deb12' }]);
  });
});

describe('package name filter', () => {
  it('keeps the image, base, headers, kbuild and source packages of the flavour only', () => {
    const kept = pkgnames.filter((n) => relevantPackageName(n, 'amd64'));
    for (const n of [
      'linux-image-6.1.0-56-amd64-unsigned',
      'linux-image-6.12.117+deb12-amd64',
      'linux-binary-unsigned-7.2.13+deb14-amd64',
      'linux-base-7.2.13+deb14-amd64',
      'linux-headers-6.1.0-56-common',
      'linux-kbuild-6.1',
      'linux-kbuild-7.2.13+deb14',
      'linux-source-6.12',
    ]) {
      expect(kept).toContain(n);
    }
    for (const n of kept) expect(n).not.toMatch(/-(dbg|cloud-amd64|rt-amd64)$|^linux-image-amd64$|^linux-doc/);
    expect(pkgnames.filter((n) => relevantPackageName(n, 'arm64'))).not.toContain('linux-image-6.1.0-56-amd64');
  });
});

describe('catalog of the recorded registry', () => {
  it('has the series newest first', () => {
    expect(catalog.map((c) => c.series)).toEqual(['7.2', '6.12', '6.1']);
  });

  it('6.1: ABI-named packages, the upstream version from the Version field', () => {
    const sc = series('6.1');
    expect(sc.versions.filter(isFetchable).map((b) => b.version)).toEqual(['6.1.192', '6.1.190', '6.1.187', '6.1.176', '6.1.170']);
    const v192 = sc.versions[0];
    // 6.1.192 exists as 6.1.0-55 (6.1.192-1) and 6.1.0-56 (6.1.192-2): the newer build wins
    expect(v192).toMatchObject({ version: '6.1.192', release: '6.1.0-56-amd64', debianVersion: '6.1.192-2', abiTag: '' });
    expect(v192?.image?.name).toBe('linux-image-6.1.0-56-amd64-unsigned');
    expect(v192?.source).toMatchObject({ name: 'linux-source-6.1', version: '6.1.192-2' });
    expect(v192?.compilerHint).toBe('gcc-12');
    // one kbuild-6.1 package serves several ABIs: the headers ask for >= their version
    const v190 = sc.versions.find((b) => b.version === '6.1.190');
    expect(v190?.kbuild).toMatchObject({ name: 'linux-kbuild-6.1', version: '6.1.192-2' });
    expect(v190?.source?.version).toBe('6.1.190-1');
    const old = sc.versions.find((b) => b.version === '6.1.180');
    expect(old?.missing).toEqual(['linux-headers-6.1.0-52-amd64', 'linux-source-6.1 6.1.180']);
  });

  it('6.12: +deb12 builds are preferred, +deb13 used when it is the only fetchable one', () => {
    const sc = series('6.12');
    expect(sc.versions[0]).toMatchObject({ version: '6.12.117', release: '6.12.117+deb12-amd64', debianVersion: '6.12.117-1~deb12u1' });
    const v107 = sc.versions.find((b) => b.version === '6.12.107');
    expect(v107?.release).toBe('6.12.107+deb12-amd64');
    const deb13 = sc.builds.find((b) => b.release === '6.12.107+deb13-amd64');
    expect(deb13 && isFetchable(deb13)).toBe(true);
    expect(deb13 && exactSpecOf(sc, deb13)).toBe('debian:6.12.107+deb13');
    expect(v107 && exactSpecOf(sc, v107)).toBe('debian:6.12.107');
    // 6.12.94 has a +deb12 image but headers only for +deb13 (trixie, gcc-14)
    const v94 = sc.versions.find((b) => b.version === '6.12.94');
    expect(v94).toMatchObject({ release: '6.12.94+deb13-amd64', compilerHint: 'gcc-14', missing: [] });
    // two non-fetchable builds of 6.12.90: the newer Debian version is shown
    expect(sc.versions.find((b) => b.version === '6.12.90')?.release).toBe('6.12.90+deb12.1-amd64');
  });

  it('7.2: the image comes from linux-binary-unsigned, config from linux-base; the linux-image metapackage is not an image', () => {
    const v = series('7.2').versions[0];
    expect(v).toMatchObject({ version: '7.2.13', release: '7.2.13+deb14-amd64', compilerHint: 'gcc-16', missing: [] });
    expect(v?.image?.name).toBe('linux-binary-unsigned-7.2.13+deb14-amd64');
    expect(v?.base?.name).toBe('linux-base-7.2.13+deb14-amd64');
    expect(v?.kbuild?.name).toBe('linux-kbuild-7.2.13+deb14');
    expect(series('7.2').builds.some((b) => b.image?.name.startsWith('linux-image-'))).toBe(false);
  });

  it('ABI tags of release names', () => {
    expect(abiTagOfRelease('6.12.90+deb12.1-amd64')).toBe('+deb12');
    expect(abiTagOfRelease('6.1.0-56-amd64')).toBe('');
  });
});

describe('spec resolution', () => {
  it('a series means its newest fetchable version', () => {
    expect(resolve('debian:6.12').release).toBe('6.12.117+deb12-amd64');
    expect(resolve('debian:6.1').release).toBe('6.1.0-56-amd64');
    expect(resolve('debian:7.2').release).toBe('7.2.13+deb14-amd64');
  });

  it('exact versions and ABI tags', () => {
    expect(resolve('debian:6.1.192').debianVersion).toBe('6.1.192-2');
    expect(resolve('debian:6.12.107+deb13').release).toBe('6.12.107+deb13-amd64');
    expect(resolve('debian:6.12.94').release).toBe('6.12.94+deb13-amd64');
  });

  it('unknown or unfetchable versions fail with the list of what is available', () => {
    expect(() => resolve('debian:6.1.999')).toThrow(UserError);
    expect(() => resolve('debian:6.1.999')).toThrow('fetchable 6.1 versions: 6.1.192, 6.1.190, 6.1.187, 6.1.176, 6.1.170');
    expect(() => resolve('debian:6.1.180')).toThrow(/not fetchable any more: missing linux-headers-6\.1\.0-52-amd64/);
    expect(() => resolve('debian:6.12.117+deb13')).toThrow(/no kernel debian:6\.12\.117\+deb13/);
    expect(() => resolve('debian:5.10')).toThrow('available series: 7.2, 6.12, 6.1');
  });
});
