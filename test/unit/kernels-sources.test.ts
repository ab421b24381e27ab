import { mkdtempSync, rmSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../harness/util/errors.js';
import { findDebianMirrors, parseDeb822Sources, parseOneLineSources, readHostSourceEntries, resolveDebianMirrors } from '../../kernels/sources.js';

const scratchDirs: string[] = [];
function scratch(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  scratchDirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of scratchDirs) rmSync(d, { recursive: true, force: true });
});

// Copies of this machine's apt sources, host names replaced (test/fixtures/kernels/README.md).
const FIX = join(import.meta.dirname, '..', 'fixtures', 'kernels');

describe('host apt sources', () => {
  it('reads the deb822 files apt reads and skips the others', async () => {
    const entries = await readHostSourceEntries(join(FIX, 'host-apt'));
    // *.disabled-by-farm files are not read by apt, so not by svadiff either
    expect(entries.map((e) => e.suites)).toEqual([['bookworm', 'bookworm-updates'], ['bookworm-security']]);
    expect(entries[0]).toMatchObject({ types: ['deb'], uris: ['http://archive.mirror.invalid/debian'], components: ['main'], enabled: true });
    expect(findDebianMirrors(entries)).toEqual({
      archive: { uri: 'http://archive.mirror.invalid/debian', file: join(FIX, 'host-apt', 'sources.list.d', 'debian.sources') },
      security: { uri: 'http://archive.mirror.invalid/debian-security', file: join(FIX, 'host-apt', 'sources.list.d', 'debian.sources') },
    });
  });

  it('reads the one-line format, options and deb-src included', async () => {
    const entries = await readHostSourceEntries(join(FIX, 'oneline-apt'));
    expect(entries).toHaveLength(7);
    expect(entries[6]).toMatchObject({ types: ['deb-src'], suites: ['bookworm'] });
    const m = findDebianMirrors(entries);
    expect(m.archive?.uri).toBe('http://archive.mirror.invalid/debian');
    expect(m.security?.uri).toBe('http://archive.mirror.invalid/debian-security');
  });

  it('third-party repositories are not mistaken for Debian', () => {
    const text = readFileSync(join(FIX, 'host-apt', 'sources.list.d', 'nodesource.sources.disabled-by-farm'), 'utf8');
    const oneLine = readFileSync(join(FIX, 'host-apt', 'sources.list.d', 'google-cloud-sdk.list.disabled-by-farm'), 'utf8');
    const entries = [...parseDeb822Sources(text, 'a'), ...parseOneLineSources(oneLine, 'b')];
    expect(entries).toHaveLength(2);
    expect(findDebianMirrors(entries)).toEqual({ archive: undefined, security: undefined });
  });

  it('disabled entries, continuation lines and the legacy security suite', () => {
    const text = [
      'Types: deb',
      'URIs: http://a.invalid/debian',
      'Suites: trixie',
      'Components: main',
      'Enabled: no',
      '',
      'Types: deb deb-src',
      'URIs: cdrom:[x]/ http://b.invalid/debian',
      'Suites: stable',
      'Components: main',
      'Signed-By:',
      ' -----BEGIN PGP PUBLIC KEY BLOCK-----',
      ' .',
      ' -----END PGP PUBLIC KEY BLOCK-----',
      '',
    ].join('\n');
    const entries = parseDeb822Sources(text, 'f');
    expect(entries.map((e) => e.enabled)).toEqual([false, true]);
    expect(findDebianMirrors(entries).archive?.uri).toBe('http://b.invalid/debian');
    const legacy = parseOneLineSources('deb http://s.invalid/debian-security buster/updates main\n# deb http://x.invalid/ sid main\n', 'g');
    expect(legacy).toHaveLength(1);
    expect(findDebianMirrors(legacy).security?.uri).toBe('http://s.invalid/debian-security');
  });
});

describe('mirror resolution', () => {
  it('environment overrides win; host sources fill the rest', async () => {
    const m = await resolveDebianMirrors({ SVADIFF_DEBIAN_MIRROR: 'http://override.invalid/debian/' }, join(FIX, 'host-apt'));
    expect(m.archive).toBe('http://override.invalid/debian');
    expect(m.security).toBe('http://archive.mirror.invalid/debian-security');
    expect(m.origin.archive).toBe('SVADIFF_DEBIAN_MIRROR');
  });

  it('no Debian source and no override: a UserError naming the variable', async () => {
    const dir = scratch('svadiff-sources-');
    mkdirSync(join(dir, 'sources.list.d'));
    writeFileSync(join(dir, 'sources.list.d', 'vendor.list'), 'deb https://vendor.invalid/apt cloud-sdk-bookworm main\n');
    await expect(resolveDebianMirrors({}, dir)).rejects.toThrow(/set SVADIFF_DEBIAN_MIRROR=/);
    await expect(resolveDebianMirrors({ SVADIFF_DEBIAN_MIRROR: 'ftp.invalid/debian' }, dir)).rejects.toThrow(UserError);
  });
});
