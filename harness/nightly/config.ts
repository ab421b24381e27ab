/**
 * The nightly matrix: which kernels, seeds, how long, which op families, how many guests at
 * once, how long to reproduce new bugs. From a small JSON file (docs/nightly.md; an example is
 * examples/nightly.json) and/or flags, flags winning. The matrix is kernels × seeds; a shard
 * (`--shard i/N`, i from 0) takes every N-th cell, so N shards together run each cell once.
 */
import { promises as fs } from 'node:fs';
import { parseKernelSpec } from '../../kernels/spec.js';
import { DEFAULT_WEIGHTS, type Weights } from '../generator/index.js';
import { OP_KINDS, type OpKind } from '../program/types.js';
import { parseJsonObject, UserError } from '../util/errors.js';

export const NIGHTLY_CONFIG_FORMAT = 'svadiff-nightly-config';

export interface NightlyConfig {
  /** kernel specs, a series each ("debian:6.12": the newest 6.12 tonight) or an exact version */
  kernels: string[];
  /** guest architectures; only x86_64 for now */
  arches: ('x86_64')[];
  /** fuzzing time per kernel, shared by its seeds */
  timeMs: number;
  /** stop a cell after this many programs (fixed work: tests, comparing shards) */
  programs?: number;
  seeds: number[];
  /** op kinds the generator uses (default: all) */
  ops: OpKind[];
  /** cells run at once (one guest each) */
  jobs: number;
  repro: {
    /** reproduce new bugs after fuzzing */
    enabled: boolean;
    /** time for all reproductions of a night (or shard); each gets what is left, at most perBugMs */
    timeMs: number;
    perBugMs: number;
    /** runs of repro.c per bug */
    runs: number;
  };
}

export const DEFAULT_CONFIG: NightlyConfig = {
  kernels: ['debian:6.1', 'debian:6.12', 'debian:7.2'],
  arches: ['x86_64'],
  timeMs: 20 * 60_000,
  seeds: [1],
  ops: [...OP_KINDS],
  jobs: 1,
  repro: { enabled: true, timeMs: 30 * 60_000, perBugMs: 10 * 60_000, runs: 3 },
};

/** One cell of the matrix. */
export interface Cell {
  /** position in the whole matrix (kernels outer, seeds inner) */
  index: number;
  kernel: string;
  seed: number;
  /** "debian-6.12-s1": a directory name */
  name: string;
}

export function cells(cfg: Pick<NightlyConfig, 'kernels' | 'seeds'>): Cell[] {
  const out: Cell[] = [];
  for (const kernel of cfg.kernels) {
    for (const seed of cfg.seeds) out.push({ index: out.length, kernel, seed, name: `${kernel.replace(/[^a-z0-9.+-]+/gi, '-')}-s${seed}` });
  }
  return out;
}

export interface Shard {
  index: number;
  count: number;
}

/** "--shard 0/3": the first of three shards (indices from 0, like a Kubernetes JOB_COMPLETION_INDEX). */
export function parseShard(s: string): Shard {
  const m = /^(\d{1,4})\/(\d{1,4})$/.exec(s.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index >= count) throw new UserError(`--shard must be i/N with 0 <= i < N (e.g. 0/3 for the first of three shards), got "${s.slice(0, 40)}"`);
  return { index, count };
}

/** The cells a shard runs: every N-th, from its index. Deterministic: the same config and shard give the same cells. */
export function shardCells(all: readonly Cell[], shard: Shard | undefined): Cell[] {
  if (!shard) return [...all];
  return all.filter((c) => c.index % shard.count === shard.index);
}

/** Generator weights for a list of op kinds (the others get 0). */
export function weightsFor(ops: readonly OpKind[]): Weights {
  const w = { ...DEFAULT_WEIGHTS };
  for (const k of OP_KINDS) if (!ops.includes(k)) w[k] = 0;
  return w;
}

type Obj = Record<string, unknown>;
const FIELDS = ['format', 'version', 'comment', 'kernels', 'arches', 'time', 'programs', 'seeds', 'ops', 'jobs', 'repro'];
const REPRO_FIELDS = ['enabled', 'time', 'per_bug', 'runs'];

/** Check a config file's text; every problem is one line naming the file, the field and the fix. */
export function parseNightlyConfig(text: string, source: string, parseDuration: (s: string) => number): Partial<NightlyConfig> {
  const fail = (msg: string): never => {
    throw new UserError(`${source}: ${msg}`);
  };
  const o = parseJsonObject(text, source, 'see docs/nightly.md', 'see docs/nightly.md');
  if (o.format !== NIGHTLY_CONFIG_FORMAT) fail(`field "format" must be "${NIGHTLY_CONFIG_FORMAT}"`);
  if (o.version !== 1) fail('field "version" must be 1');
  for (const k of Object.keys(o)) if (!FIELDS.includes(k)) fail(`unknown field "${k}" (fields: ${FIELDS.join(', ')})`);
  const out: Partial<NightlyConfig> = {};
  const duration = (name: string, v: unknown): number => {
    if (typeof v !== 'string') return fail(`field "${name}" must be a duration string such as "20m"`);
    try {
      return parseDuration(v);
    } catch (e) {
      return fail(`field "${name}": ${(e as Error).message}`);
    }
  };
  if (o.kernels !== undefined) out.kernels = kernelList(o.kernels, (m) => fail(`field "kernels": ${m}`));
  if (o.arches !== undefined) out.arches = archList(o.arches, (m) => fail(`field "arches": ${m}`));
  if (o.time !== undefined) out.timeMs = duration('time', o.time);
  if (o.programs !== undefined) {
    if (!Number.isInteger(o.programs) || (o.programs as number) < 1) fail('field "programs" must be a positive integer');
    out.programs = o.programs as number;
  }
  if (o.seeds !== undefined) out.seeds = seedList(o.seeds, (m) => fail(`field "seeds": ${m}`));
  if (o.ops !== undefined) out.ops = opList(o.ops, (m) => fail(`field "ops": ${m}`));
  if (o.jobs !== undefined) {
    if (!Number.isInteger(o.jobs) || (o.jobs as number) < 1 || (o.jobs as number) > 64) fail('field "jobs" must be an integer in 1..64');
    out.jobs = o.jobs as number;
  }
  if (o.repro !== undefined) {
    if (typeof o.repro !== 'object' || o.repro === null || Array.isArray(o.repro)) fail('field "repro" must be an object');
    const r = o.repro as Obj;
    for (const k of Object.keys(r)) if (!REPRO_FIELDS.includes(k)) fail(`unknown field "repro.${k}" (fields: ${REPRO_FIELDS.join(', ')})`);
    const repro = { ...DEFAULT_CONFIG.repro };
    if (r.enabled !== undefined) {
      if (typeof r.enabled !== 'boolean') fail('field "repro.enabled" must be true or false');
      repro.enabled = r.enabled as boolean;
    }
    if (r.time !== undefined) repro.timeMs = duration('repro.time', r.time);
    if (r.per_bug !== undefined) repro.perBugMs = duration('repro.per_bug', r.per_bug);
    if (r.runs !== undefined) {
      if (!Number.isInteger(r.runs) || (r.runs as number) < 1 || (r.runs as number) > 100) fail('field "repro.runs" must be an integer in 1..100');
      repro.runs = r.runs as number;
    }
    out.repro = repro;
  }
  return out;
}

export function kernelList(v: unknown, fail: (m: string) => never): string[] {
  const list = typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v;
  if (!Array.isArray(list) || list.length === 0 || !list.every((k) => typeof k === 'string')) return fail('give one or more kernel specs, e.g. debian:6.1,debian:6.12');
  for (const k of list as string[]) {
    try {
      parseKernelSpec(k);
    } catch (e) {
      fail((e as Error).message);
    }
  }
  if (new Set(list).size !== list.length) fail('a kernel is listed twice');
  return list as string[];
}

export function seedList(v: unknown, fail: (m: string) => never): number[] {
  const list = typeof v === 'string' ? v.split(',').map((s) => Number(s.trim())) : v;
  if (!Array.isArray(list) || list.length === 0 || !list.every((n) => Number.isInteger(n) && n >= 0 && n < 2 ** 31)) return fail('give one or more seeds, integers in 0..2147483647, e.g. 1,2,3');
  if (new Set(list).size !== list.length) fail('a seed is listed twice');
  return list as number[];
}

export function opList(v: unknown, fail: (m: string) => never): OpKind[] {
  const list = typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v;
  if (!Array.isArray(list) || list.length === 0) return fail(`give op kinds from: ${OP_KINDS.join(', ')}`);
  for (const k of list) if (!OP_KINDS.includes(k as OpKind)) fail(`unknown op kind ${JSON.stringify(String(k).slice(0, 40))}; op kinds: ${OP_KINDS.join(', ')}`);
  if (!list.includes('open')) fail('"open" must be among the op kinds: every other op needs a queue');
  return list as OpKind[];
}

export function archList(v: unknown, fail: (m: string) => never): ('x86_64')[] {
  const list = typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v;
  if (!Array.isArray(list) || list.length === 0) return fail('give one or more architectures');
  for (const a of list) if (a !== 'x86_64') fail(`${JSON.stringify(String(a).slice(0, 40))}: nightly runs x86_64 guests for now (svadiff fuzz does too)`);
  return ['x86_64'];
}

/** Read a config file (a missing or malformed one is a one-line error). */
export async function loadNightlyConfig(path: string, parseDuration: (s: string) => number): Promise<Partial<NightlyConfig>> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read the nightly configuration ${path}: ${(e as Error).message}; see docs/nightly.md (an example: examples/nightly.json)`);
  }
  return parseNightlyConfig(text, path, parseDuration);
}
