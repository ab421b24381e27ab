import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateProgram, programArbitrary } from '../../harness/generator/index.js';
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

  it('covers the whole op vocabulary', () => {
    const seen = new Set<OpKind>();
    const via = new Set<string>();
    for (let i = 0; i < 300; i++) {
      for (const op of generateProgram(9, i).ops) {
        seen.add(op.op);
        if (op.op === 'open') via.add(op.via);
      }
    }
    // the vfio ops are another family's programs (generator/vfio.ts: test/unit/model-vfio.test.ts)
    expect([...seen].sort()).toEqual(OP_KINDS.filter((k) => descOf(k).family !== 'vfio').sort());
    expect([...via].sort()).toEqual(['mknod', 'path', 'procfd']);
  });
});
