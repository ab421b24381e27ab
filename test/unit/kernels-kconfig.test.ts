import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configDir, configInputs, FRAGMENT_NAMES, FRAGMENTS, parseConfigRequests, unmetRequests } from '../../kernels/kconfig.js';
import { BuildProgress, sourceEntryName } from '../../kernels/kbuild.js';

describe('config fragments', () => {
  it('every fragment in the table has a file, and every file is in the table (or the base)', () => {
    const files = readdirSync(configDir()).filter((f) => f.endsWith('.config')).map((f) => f.replace(/\.config$/, ''));
    expect(files.sort()).toEqual(['base', ...FRAGMENT_NAMES].sort());
    // the list: kasan, lockdep, kfence, iommufd with vfio cdev, uacce=y, kcov, fault injection
    expect(Object.keys(FRAGMENTS).sort()).toEqual(['fault-injection', 'iommufd', 'kasan', 'kcov', 'kfence', 'lockdep', 'uacce-builtin']);
  });

  it('files hold only CONFIG_ settings and comments, and ask for what their name says', () => {
    for (const name of ['base', ...FRAGMENT_NAMES]) {
      const text = readFileSync(join(configDir(), `${name}.config`), 'utf8');
      for (const line of text.split('\n')) {
        expect(line === '' || line.startsWith('#') || /^CONFIG_[A-Z0-9_]+=/.test(line), `${name}: ${line}`).toBe(true);
      }
    }
    const req = (n: string) => parseConfigRequests(readFileSync(join(configDir(), `${n}.config`), 'utf8'));
    // what the guest needs (harness/vm/machine.ts, guest/): serial, PCI, VT-d scalable mode, virtio, devtmpfs, initramfs, modules, uacce
    const base = req('base');
    for (const [k, v] of Object.entries({
      CONFIG_SERIAL_8250_CONSOLE: 'y',
      CONFIG_PCI: 'y',
      CONFIG_INTEL_IOMMU_SVM: 'y',
      CONFIG_INTEL_IOMMU_SCALABLE_MODE_DEFAULT_ON: 'y',
      CONFIG_VIRTIO_PCI: 'y',
      CONFIG_DEVTMPFS: 'y',
      CONFIG_BLK_DEV_INITRD: 'y',
      CONFIG_MODULES: 'y',
      CONFIG_UACCE: 'm',
      CONFIG_SIGNALFD: 'y',
      CONFIG_ADVISE_SYSCALLS: 'y',
    })) {
      expect(base.get(k), k).toBe(v);
    }
    expect(req('kasan').get('CONFIG_KASAN')).toBe('y');
    expect(req('lockdep').get('CONFIG_PROVE_LOCKING')).toBe('y');
    expect(req('kfence').get('CONFIG_KFENCE')).toBe('y');
    expect(req('iommufd').get('CONFIG_IOMMUFD')).toBe('y');
    expect(req('iommufd').get('CONFIG_VFIO_DEVICE_CDEV')).toBe('y');
    expect(req('uacce-builtin').get('CONFIG_UACCE')).toBe('y');
    expect(req('kcov').get('CONFIG_KCOV')).toBe('y');
    expect(req('fault-injection').get('CONFIG_FAILSLAB')).toBe('y');
  });

  it('the configuration key depends on the fragments and their contents, not their order', async () => {
    const a = await configInputs(['kasan', 'lockdep']);
    const b = await configInputs(['kasan']);
    expect(a.key).not.toBe(b.key);
    expect(a.files.map((f) => f.split('/').pop())).toEqual(['base.config', 'kasan.config', 'lockdep.config']);
    expect((await configInputs(['kasan', 'lockdep'])).key).toBe(a.key);
  });

  it('finds requests that did not take in the final configuration', () => {
    const requested = [
      { file: 'base.config', text: 'CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_S="x"\n' },
      { file: 'kasan.config', text: 'CONFIG_C=y\nCONFIG_A=m\n' },
    ];
    const final = 'CONFIG_A=m\n# CONFIG_B is not set\nCONFIG_S="x"\n# CONFIG_C is not set\n';
    expect(unmetRequests(requested, final)).toEqual([{ symbol: 'CONFIG_C', want: 'y', got: 'n', file: 'kasan.config' }]);
    expect(unmetRequests([{ file: 'f', text: 'CONFIG_GONE=y\n' }], '')).toEqual([{ symbol: 'CONFIG_GONE', want: 'y', got: 'absent', file: 'f' }]);
    // asked off and absent from the tree: that is what was asked
    expect(unmetRequests([{ file: 'f', text: '# CONFIG_GONE is not set\n' }], '')).toEqual([]);
  });
});

describe('kernel build progress', () => {
  it('counts compiled files and says where the build is (a real build log)', () => {
    const p = new BuildProgress();
    const lines = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'kernels', 'kbuild-6.12.118-minimal.log'), 'utf8').split('\n');
    let sawDir = false;
    for (const l of lines) {
      p.feed(l);
      if (p.where.startsWith('arch/x86') || p.where.startsWith('kernel')) sawDir = true;
    }
    expect(p.compiled).toBe(lines.filter((l) => /^ {2}(CC|AS) {6}/.test(l) || /^ {2}CC \[M\] /.test(l)).length);
    expect(p.compiled).toBeGreaterThan(50);
    expect(sawDir).toBe(true);
    expect(p.where).toBe('linking arch/x86/boot/bzImage');
    expect(p.text(200)).toMatch(/^\d+ files compiled \(~\d+% of a full build\), now /);
  });

  it('names cache entries by source, commit and fragments', () => {
    const deb = { id: 'debian-6.12.118-1-deb12u1', dir: '/c', kernelVersion: '6.12.118', distro: 'debian' as const, label: 'x', identity: 'y' };
    expect(sourceEntryName(deb, ['kasan', 'lockdep'], 'x86_64')).toBe('src-debian-6.12.118+kasan+lockdep-x86_64');
    const g = { ...deb, id: 'git-0123456789abcdef', commit: 'fedcba9876543210fedcba9876543210fedcba98' };
    expect(sourceEntryName(g, [], 'x86_64')).toBe('git-01234567-fedcba987654-x86_64');
  });
});

describe('configuration key', () => {
  it('changes with a setting, not with a comment', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'svadiff-cfg-'));
    try {
      cpSync(configDir(), dir, { recursive: true });
      const text = readFileSync(join(dir, 'kasan.config'), 'utf8');
      const a = await configInputs(['kasan'], dir);
      expect(a.key).toBe((await configInputs(['kasan'])).key);
      writeFileSync(join(dir, 'kasan.config'), `# a comment added\n${text}\n# and another\n`);
      expect((await configInputs(['kasan'], dir)).key).toBe(a.key);
      writeFileSync(join(dir, 'kasan.config'), `${text}CONFIG_KASAN_VMALLOC=y\n`);
      expect((await configInputs(['kasan'], dir)).key).not.toBe(a.key);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
