import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateProgram, programArbitrary } from '../../harness/generator/index.js';
import { profileFor, type KernelProfile } from '../../harness/model/index.js';
import { OP_DESCS } from '../../harness/ops/index.js';
import { checkProgram, formatProgram, parseProgram } from '../../harness/program/parse.js';
import { OP_KINDS, type OpKind } from '../../harness/program/types.js';
import { descOf } from '../../harness/ops/index.js';

describe('generator', () => {
  it('the same seed and index give the same program; other seeds give other programs', () => {
    const a = formatProgram(generateProgram(42, 7));
    const b = formatProgram(generateProgram(42, 7));
    expect(a).toBe(b);
    const others = new Set([1, 2, 3, 4, 5].map((s) => formatProgram(generateProgram(s, 7))));
    expect(others.size).toBe(5);
  });

  it('every generated program is valid and survives a format/parse round trip', () => {
    fc.assert(
      fc.property(programArbitrary(), (p) => {
        const checked = checkProgram(JSON.parse(JSON.stringify(p)), 'generated');
        expect(parseProgram(formatProgram(checked), 'generated')).toEqual(checked);
      }),
      { numRuns: 300, seed: 1 },
    );
  });

  it('shrunk programs stay valid (the builder repairs choices)', () => {
    // Make fast-check shrink a failing property and check every candidate it tries is valid.
    let tried = 0;
    try {
      fc.assert(
        fc.property(programArbitrary({ minOps: 10, maxOps: 40 }), (p) => {
          tried++;
          checkProgram(JSON.parse(JSON.stringify(p)), 'shrunk');
          return p.ops.length < 5; // fails, forcing shrinking
        }),
        { numRuns: 20, seed: 3 },
      );
    } catch (e) {
      expect(String(e)).toMatch(/Property failed/);
    }
    expect(tried).toBeGreaterThan(20);
  });

  it('covers the whole op vocabulary: SVA ops where binds succeed, every other op everywhere', () => {
    const kinds = (profile: KernelProfile) => {
      const seen = new Set<OpKind>();
      const via = new Set<string>();
      let sva = 0;
      for (let i = 0; i < 300; i++) {
        const p = generateProgram(9, i, { profile });
        if (p.device.sva) sva++;
        for (const op of p.ops) {
          seen.add(op.op);
          if (op.op === 'open') via.add(op.via);
        }
      }
      return { seen: [...seen].sort(), via: [...via].sort(), sva };
    };
    const svaKinds = OP_DESCS.filter((d) => d.family === 'sva').map((d) => d.op);
    expect(svaKinds).toEqual(['pasid']);
    // the vfio ops are another family's programs (generator/vfio.ts: test/unit/model-vfio.test.ts)
    const uacceKinds = OP_KINDS.filter((k) => !OP_DESCS.some((d) => d.op === k && d.family === 'vfio'));
    // 6.12 refuses every bind (Debian's kill switch): no SVA device, no SVA op
    const k612 = kinds(profileFor('6.12.118+deb12-amd64', { arch: 'x86_64', distro: 'debian' }));
    expect(k612.seen).toEqual(uacceKinds.filter((k) => !svaKinds.includes(k)).sort());
    expect(k612.sva).toBe(0);
    expect(k612.via).toEqual(['mknod', 'path', 'procfd']);
    // 7.2 binds: a quarter of the programs are SVA ones, and every op kind shows
    const k72 = kinds(profileFor('7.2.13+deb14-amd64', { arch: 'x86_64', distro: 'debian' }));
    expect(k72.seen).toEqual([...uacceKinds].sort());
    expect(k72.sva).toBeGreaterThan(40);
    expect(k72.sva).toBeLessThan(110);
    expect(k72.via).toEqual(['mknod', 'path', 'procfd']);
  });

  it('draws SVA ops only for a device whose queues bind', () => {
    const p72 = profileFor('7.2.13+deb14-amd64', { arch: 'x86_64', distro: 'debian' });
    for (let i = 0; i < 200; i++) {
      const p = generateProgram(3, i, { profile: p72 });
      if (!p.device.sva) expect(p.ops.filter((op) => op.op === 'pasid')).toEqual([]);
    }
  });
});
