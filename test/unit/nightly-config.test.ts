/**
 * The nightly matrix: the config file format (docs/nightly.md, examples/nightly.json) and the
 * deterministic split of kernels × seeds into shards.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../harness/commands/common.js';
import { cells, DEFAULT_CONFIG, parseNightlyConfig, parseShard, shardCells, weightsFor } from '../../harness/nightly/config.js';
import { UserError } from '../../harness/util/errors.js';

const ROOT = join(import.meta.dirname, '..', '..');
const parse = (o: Record<string, unknown>) => parseNightlyConfig(JSON.stringify({ format: 'svadiff-nightly-config', version: 1, ...o }), 'n.json', parseDuration);

describe('nightly configuration', () => {
  it('reads the shipped example', () => {
    const c = parseNightlyConfig(readFileSync(join(ROOT, 'examples', 'nightly.json'), 'utf8'), 'examples/nightly.json', parseDuration);
    expect(c.kernels).toEqual(['debian:6.1', 'debian:6.12', 'debian:7.2']);
    expect(c.timeMs).toBe(20 * 60_000);
    expect(c.seeds?.length).toBeGreaterThan(0);
    expect(c.repro?.enabled).toBe(true);
  });

  it('takes every field, and op families as generator weights', () => {
    const c = parse({ kernels: ['debian:6.12'], arches: ['x86_64'], time: '1h30m', programs: 50, seeds: [3, 4], ops: ['open', 'mmap', 'munmap'], jobs: 2, repro: { enabled: false, time: '5m', per_bug: '2m', runs: 2 } });
    expect(c).toMatchObject({ kernels: ['debian:6.12'], timeMs: 90 * 60_000, programs: 50, seeds: [3, 4], jobs: 2, repro: { enabled: false, timeMs: 300_000, perBugMs: 120_000, runs: 2 } });
    const w = weightsFor(c.ops!);
    expect(w.mmap).toBeGreaterThan(0);
    expect(w.fork).toBe(0);
    expect(weightsFor(DEFAULT_CONFIG.ops).fork).toBeGreaterThan(0);
  });

  it('refuses mistakes with one line naming the file and the field', () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ kernels: ['6.12'] }, /n\.json: field "kernels": .*debian:6\.12/],
      [{ kernels: [] }, /field "kernels"/],
      [{ time: 20 }, /field "time" must be a duration/],
      [{ time: '20 minutes' }, /field "time": cannot read the duration/],
      [{ seeds: [1, 1] }, /a seed is listed twice/],
      [{ ops: ['mmap'] }, /"open" must be among/],
      [{ ops: ['open', 'teleport'] }, /unknown op kind "teleport"/],
      [{ arches: ['arm64'] }, /x86_64 guests for now/],
      [{ jobs: 0 }, /field "jobs"/],
      [{ repro: { when: 'always' } }, /unknown field "repro.when"/],
      [{ colour: 'blue' }, /unknown field "colour"/],
    ];
    for (const [o, re] of bad) {
      let err: unknown;
      try {
        parse(o);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(o)).toBeInstanceOf(UserError);
      expect((err as Error).message, JSON.stringify(o)).toMatch(re);
      expect((err as Error).message).not.toContain('\n');
    }
    expect(() => parseNightlyConfig('{', 'x.json', parseDuration)).toThrow(/x\.json: not valid JSON/);
    expect(() => parseNightlyConfig(JSON.stringify({ format: 'x', version: 1 }), 'x.json', parseDuration)).toThrow(/field "format"/);
  });
});

describe('shards', () => {
  const matrix = cells({ kernels: ['debian:6.1', 'debian:6.12', 'debian:7.2'], seeds: [1, 2, 3, 4] });

  it('parse as i/N with i from 0', () => {
    expect(parseShard('0/3')).toEqual({ index: 0, count: 3 });
    expect(parseShard('2/3')).toEqual({ index: 2, count: 3 });
    for (const s of ['3/3', '1/0', '-1/3', 'a/b', '1', '1/3/4']) expect(() => parseShard(s), s).toThrow(/--shard must be i\/N/);
  });

  it('split the kernels × seeds matrix so that every cell runs exactly once, the same way every time', () => {
    expect(matrix).toHaveLength(12);
    expect(new Set(matrix.map((c) => c.name)).size).toBe(12);
    for (const n of [1, 2, 3, 5, 12, 20]) {
      const parts = Array.from({ length: n }, (_, i) => shardCells(matrix, { index: i, count: n }));
      const names = parts.flat().map((c) => c.name).sort();
      expect(names, `${n} shards`).toEqual(matrix.map((c) => c.name).sort());
      // balanced: no shard has two cells more than another
      const sizes = parts.map((p) => p.length);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      expect(Array.from({ length: n }, (_, i) => shardCells(matrix, { index: i, count: n }))).toEqual(parts);
    }
    expect(shardCells(matrix, undefined)).toEqual(matrix);
  });
});
