import { describe, expect, it } from 'vitest';
import { UserError } from '../../harness/util/errors.js';
import { FRAGMENT_NAMES } from '../../kernels/kconfig.js';
import { checkFragments, formatSourceSpec, parseAnyKernelSpec, type SourceKernelSpec } from '../../kernels/spec.js';

const parse = (s: string) => parseAnyKernelSpec(s, FRAGMENT_NAMES, { cwd: '/work', home: '/home/u' });

describe('source kernel specs', () => {
  it('src:debian with a series or a version and fragments (sorted, deduplicated)', () => {
    expect(parse('src:debian:7.2+lockdep+kasan')).toEqual({ kind: 'src-debian', series: '7.2', fragments: ['kasan', 'lockdep'], text: 'src:debian:7.2+lockdep+kasan' });
    expect(parse('src:debian:6.12.118')).toEqual({ kind: 'src-debian', series: '6.12', version: '6.12.118', fragments: [], text: 'src:debian:6.12.118' });
    expect(parse('src:debian:6.12+kfence+kfence')).toMatchObject({ fragments: ['kfence'] });
  });

  it('git trees: path, revision (default HEAD), fragments; relative and ~ paths resolved', () => {
    expect(parse('git:/src/linux@v6.13+iommufd')).toEqual({ kind: 'git', tree: '/src/linux', rev: 'v6.13', fragments: ['iommufd'], text: 'git:/src/linux@v6.13+iommufd' });
    expect(parse('git:linux')).toMatchObject({ tree: '/work/linux', rev: 'HEAD', fragments: [] });
    expect(parse('git:~/linux+kasan')).toMatchObject({ tree: '/home/u/linux', rev: 'HEAD', fragments: ['kasan'] });
    expect(parse('git:/a@b/c@1a2b3c4')).toMatchObject({ tree: '/a@b/c', rev: '1a2b3c4' });
    expect(parse('git:/src/linux@HEAD~3')).toMatchObject({ rev: 'HEAD~3' });
  });

  it('Debian binary specs are still what parseKernelSpec gives', () => {
    expect(parse('debian:6.12')).toEqual({ kind: 'debian', distro: 'debian', series: '6.12', text: 'debian:6.12' });
  });

  it('an unknown fragment names every known one', () => {
    const err = (() => {
      try {
        parse('src:debian:7.2+kasn');
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(UserError);
    expect(err?.message).toMatch(/unknown config fragment "kasn"/);
    for (const f of FRAGMENT_NAMES) expect(err?.message).toContain(f);
    expect(err?.message).not.toContain('\n');
  });

  it('refuses what is not a spec, in one line each', () => {
    for (const bad of ['src:debian:7', 'src:ubuntu:6.8', 'src:debian:6.12.107+deb13', 'git:', 'git:/x@', 'git:/x@a..b', 'git:/x@rev+Bad', '7.2', 'linux']) {
      expect(() => parse(bad), bad).toThrow(UserError);
      try {
        parse(bad);
      } catch (e) {
        expect((e as Error).message).not.toContain('\n');
      }
    }
    expect(() => parse('src:debian:6.12.107+deb13')).toThrow(/no ABI tag/);
  });

  it('canonical texts', () => {
    const s = parse('src:debian:7.2+lockdep+kasan') as SourceKernelSpec;
    expect(formatSourceSpec(s)).toBe('src:debian:7.2+kasan+lockdep');
    expect(formatSourceSpec(s, { version: '7.2.13' })).toBe('src:debian:7.2.13+kasan+lockdep');
    const g = parse('git:/src/linux@main+kcov') as SourceKernelSpec;
    expect(formatSourceSpec(g, { commit: '0123456789abcdef0123456789abcdef01234567' })).toBe('git:/src/linux@0123456789ab+kcov');
    expect(checkFragments(['b', 'a', 'b'], ['a', 'b'], 'x')).toEqual(['a', 'b']);
  });
});
