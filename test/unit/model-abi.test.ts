/**
 * harness/device/abi.ts must mirror every #define of guest/include/svt_abi.h.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as abi from '../../harness/device/abi.js';

const HEADER = new URL('../../guest/include/svt_abi.h', import.meta.url);

/** #define NAME value lines (continuation lines joined), comments stripped. */
function defines(): Map<string, string> {
  const text = readFileSync(HEADER, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\\\n/g, ' ');
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^#define\s+([A-Z0-9_]+)(\([^)]*\))?\s*(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, m[3]!.trim());
  }
  return out;
}

/** Evaluate the header's simple value forms: literals, _IO('W', n), (A * B) of earlier names. */
function evaluate(expr: string, env: Map<string, number>): number | string {
  const e = expr.replace(/\b(0x[0-9a-f]+|\d+)u\b/gi, '$1').trim();
  const str = /^"(.*)"$/.exec(e);
  if (str) return str[1]!;
  const io = /^_IO\('(.)',\s*(0x[0-9a-f]+|\d+)\)$/i.exec(e);
  if (io) return (io[1]!.charCodeAt(0) << 8) | Number(io[2]);
  const mul = /^\(([A-Z0-9_]+)\s*\*\s*([A-Z0-9_]+)\)$/.exec(e);
  if (mul) return env.get(mul[1]!)! * env.get(mul[2]!)!;
  return Number(e);
}

describe('svt_abi.h mirror', () => {
  it('has every constant of the header with the same value', () => {
    const env = new Map<string, number>();
    const seen: string[] = [];
    for (const [name, expr] of defines()) {
      if (name === 'SVT_ABI_H') continue;
      seen.push(name);
      expect(Object.keys(abi), `abi.ts lacks ${name}`).toContain(name);
      if (name === 'SVT_FILL') continue; // a macro: checked below
      const v = evaluate(expr, env);
      expect((abi as Record<string, unknown>)[name], name).toBe(v);
      if (typeof v === 'number') env.set(name, v);
    }
    expect(seen.length).toBeGreaterThan(40);
  });

  it('SVT_FILL matches the header formula', () => {
    expect(defines().get('SVT_FILL')).toContain('0x5356000000000000ull');
    expect(abi.SVT_FILL(0, 0, 0x100)).toBe(0x5356000000000100n);
    expect(abi.SVT_FILL(1, 3, 0x8)).toBe(0x5356010003000008n);
  });

  it('register word indexes are the byte offsets / 4', () => {
    expect(abi.REG_WORD.DOORBELL * 4).toBe(abi.SVT_REG_DOORBELL);
    expect(abi.REG_WORD.DEV_INDEX * 4).toBe(abi.SVT_REG_DEV_INDEX);
  });
});
