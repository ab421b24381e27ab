import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inheritedAptSettings, privateSourcesList } from '../../kernels/apt.js';

const FIX = join(import.meta.dirname, '..', 'fixtures', 'kernels');

describe('private apt configuration', () => {
  it('inherits only the network settings from the host configuration', () => {
    // lines of this host's `apt-config dump` (test/fixtures/kernels/README.md)
    const dump = readFileSync(join(FIX, 'apt-config-dump-host.txt'), 'utf8');
    expect(dump).toContain('Dir::Cache::pkgcache ""');
    expect(inheritedAptSettings(dump)).toEqual(['Acquire::Check-Valid-Until "false";', 'Acquire::Check-Date "false";']);
    expect(inheritedAptSettings('Acquire::http::Proxy "http://proxy.invalid:3128";\nAcquire::http::Proxy::mirror.invalid "DIRECT";\nAcquire::http::Proxy "x\\"y";\n')).toEqual([
      'Acquire::http::Proxy "http://proxy.invalid:3128";',
      'Acquire::http::Proxy::mirror.invalid "DIRECT";',
    ]);
  });

  it('lists every suite from the right mirror', () => {
    const { text, skipped } = privateSourcesList({
      archive: 'http://a.invalid/debian',
      security: 'http://s.invalid/debian-security',
      origin: { archive: 'x' },
    });
    expect(skipped).toEqual([]);
    const lines = text.trim().split('\n');
    expect(lines.map((l) => l.split(' ').slice(2, 4).join(' '))).toEqual([
      'http://a.invalid/debian bookworm',
      'http://s.invalid/debian-security bookworm-security',
      'http://a.invalid/debian bookworm-backports',
      'http://a.invalid/debian trixie',
      'http://a.invalid/debian forky',
      'http://a.invalid/debian sid',
    ]);
    for (const l of lines) expect(l).toMatch(/^deb \[signed-by=\/usr\/share\/keyrings\/debian-archive-keyring\.gpg\] \S+ \S+ main$/);
    expect(privateSourcesList({ archive: 'http://a.invalid/debian', origin: { archive: 'x' } }).skipped).toEqual(['bookworm-security']);
  });
});
