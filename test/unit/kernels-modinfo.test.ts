import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkVermagic, parseModInfo, releaseOfVermagic } from '../../kernels/modinfo.js';

// .modinfo sections of uacce.ko as built by svadiff for three Debian kernels (README.md)
const FIX = join(import.meta.dirname, '..', 'fixtures', 'kernels');
const cases = [
  { file: 'modinfo-uacce-6.1.192.elf', release: '6.1.0-56-amd64', modversions: true },
  { file: 'modinfo-uacce-6.12.117.elf', release: '6.12.117+deb12-amd64', modversions: true },
  { file: 'modinfo-uacce-7.2.13.elf', release: '7.2.13+deb14-amd64', modversions: false },
];

describe('.modinfo', () => {
  for (const c of cases) {
    it(`reads vermagic and license of ${c.file}`, async () => {
      const info = parseModInfo(readFileSync(join(FIX, c.file)));
      const vermagic = info.get('vermagic')?.[0] ?? '';
      expect(releaseOfVermagic(vermagic)).toBe(c.release);
      expect(vermagic.includes('modversions')).toBe(c.modversions);
      expect(info.get('license')).toEqual(['GPL']);
      expect(info.get('name')).toEqual(['uacce']);
      expect(await checkVermagic(join(FIX, c.file), c.release)).toBe(vermagic.trim());
      await expect(checkVermagic(join(FIX, c.file), '6.1.0-55-amd64')).rejects.toThrow(`was built for ${c.release}`);
    });
  }

  it('rejects files that are not ELF or are cut short', () => {
    const good = readFileSync(join(FIX, cases[0]!.file));
    expect(() => parseModInfo(Buffer.from('not an elf file at all, but long enough to have a header.'))).toThrow('not an ELF');
    expect(() => parseModInfo(good.subarray(0, 200))).toThrow(/out of range/);
  });
});
