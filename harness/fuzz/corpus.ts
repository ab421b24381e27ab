/**
 * Coverage feedback of the fuzz loop: a corpus of the programs that first reached a rule or a
 * (rule, state feature) pair (harness/coverage/signal.ts), kept as their generator decisions,
 * and the choice of the next program: a fresh one from the stream, or a mutation of a corpus
 * entry (decisions replaced, inserted, deleted, retuned; two entries spliced; the device
 * changed), as coverage-guided fuzzers do. Entries whose keys have fired least are chosen most
 * often, and new decisions draw op kinds by weights raised for the kinds whose rules have fired
 * least. Because the builder resolves decisions against the model's state, every mutation is a
 * valid program again.
 *
 * Pure but for the corpus it keeps: the same seed, index, corpus and coverage give the same
 * next program.
 */
import { DEFAULT_DEVICE, type DeviceParams } from '../program/types.js';
import { LIMITS } from '../program/limits.js';
import { OP_KINDS } from '../ops/index.js';
import type { Coverage } from '../coverage/signal.js';
import { build, DEFAULT_PROFILE, DEFAULT_WEIGHTS, deviceWeights, generate, kindFor, mixSeed, STEP_RANDOMS, type Built, type Decision, type Decisions, type GeneratorOptions, type Weights } from '../generator/index.js';

export interface CorpusEntry {
  /** the program index (of the run's stream) that found it */
  from: number;
  decisions: Decisions;
  /** the coverage keys it reached first (rules and rule @ feature pairs) */
  reached: string[];
  /** times it was mutated */
  picks: number;
}

export interface CorpusJson {
  format: 'svadiff-fuzz-corpus';
  version: 1;
  entries: CorpusEntry[];
}

/** Entries kept at most (the ones whose keys fired most go first when it is full). */
export const MAX_CORPUS = 2000;
/** Decisions of a mutated program at most. */
const MAX_STEPS = 64;

/** A small seeded generator (mulberry32) for the feedback's own choices. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const int = (r: () => number, n: number) => (n <= 1 ? 0 : Math.floor(r() * n));

export class Corpus {
  readonly entries: CorpusEntry[] = [];

  static fromJSON(j: Partial<CorpusJson> | undefined): Corpus {
    const c = new Corpus();
    for (const e of j?.entries ?? []) {
      if (Array.isArray(e?.decisions?.steps) && typeof e.decisions.device === 'object') c.entries.push({ from: e.from ?? -1, decisions: e.decisions, reached: e.reached ?? [], picks: e.picks ?? 0 });
    }
    return c;
  }

  toJSON(): CorpusJson {
    return { format: 'svadiff-fuzz-corpus', version: 1, entries: this.entries };
  }

  get size(): number {
    return this.entries.length;
  }

  add(e: CorpusEntry, cov: Coverage): void {
    this.entries.push(e);
    if (this.entries.length <= MAX_CORPUS) return;
    // full: drop the entry with the least energy (what it reached has fired most since)
    let worst = 0;
    for (let i = 1; i < this.entries.length; i++) if (energy(this.entries[i]!, cov) < energy(this.entries[worst]!, cov)) worst = i;
    this.entries.splice(worst, 1);
  }

  /** An entry, by energy: the rarer what it first reached, the likelier. */
  choose(r: () => number, cov: Coverage): CorpusEntry | undefined {
    if (this.entries.length === 0) return undefined;
    const w = this.entries.map((e) => energy(e, cov));
    const total = w.reduce((a, b) => a + b, 0);
    let x = r() * total;
    for (let i = 0; i < w.length; i++) {
      if (x < w[i]!) return this.entries[i];
      x -= w[i]!;
    }
    return this.entries[this.entries.length - 1];
  }
}

/** How much an entry is worth mutating: its first-reached keys, each by 1/count, less for entries picked often. */
export function energy(e: CorpusEntry, cov: Coverage): number {
  let s = 0;
  for (const k of e.reached) s += 1 / Math.max(1, cov.pairs.get(k) ?? cov.rules.get(k) ?? cov.extra.get(k) ?? 1);
  return (0.05 + s) / Math.sqrt(1 + e.picks);
}

/**
 * Op kind weights raised for the kinds whose rules have fired least (Coverage.want): a kind
 * with rules never reached gets up to four times its description's weight.
 */
export function biasedWeights(base: Weights, cov: Coverage): Weights {
  const out = { ...base };
  for (const k of OP_KINDS) if (base[k] > 0) out[k] = Math.max(1, Math.round(base[k] * (1 + 3 * cov.want(k))));
  return out;
}

function freshStep(r: () => number, weights: Weights): Decision {
  return { kind: kindFor(weights, int(r, 0x10000)), r: Array.from({ length: STEP_RANDOMS }, () => int(r, 0x10000)) };
}

export type Mutation = 'replace' | 'insert' | 'delete' | 'retune' | 'splice' | 'device';

/** One mutation of `d` (with `other` for a splice); the mutation's name says which. */
export function mutate(d: Decisions, other: Decisions | undefined, r: () => number, weights: Weights): { decisions: Decisions; how: Mutation } {
  const steps = d.steps.map((s) => ({ kind: s.kind, r: [...s.r] }));
  const how: Mutation = (['replace', 'insert', 'delete', 'retune', 'splice', 'device'] as const)[
    pickWeighted(r, other === undefined ? [25, 25, 12, 20, 0, 6] : [22, 22, 10, 16, 22, 6])
  ]!;
  let device: DeviceParams = d.device;
  switch (how) {
    case 'replace':
      for (let n = 1 + int(r, 3); n > 0 && steps.length > 0; n--) steps[int(r, steps.length)] = freshStep(r, weights);
      break;
    case 'insert': {
      const at = int(r, steps.length + 1);
      steps.splice(at, 0, ...Array.from({ length: 1 + int(r, 4) }, () => freshStep(r, weights)));
      break;
    }
    case 'delete':
      if (steps.length > 1) steps.splice(int(r, steps.length), 1 + int(r, Math.min(4, steps.length - 1)));
      break;
    case 'retune':
      for (let n = 1 + int(r, 2); n > 0 && steps.length > 0; n--) {
        const s = steps[int(r, steps.length)]!;
        s.r[int(r, s.r.length)] = int(r, 0x10000);
      }
      break;
    case 'splice': {
      const o = other!.steps;
      const keep = steps.slice(0, 1 + int(r, steps.length));
      const tail = o.slice(int(r, o.length)).map((s) => ({ kind: s.kind, r: [...s.r] }));
      steps.splice(0, steps.length, ...keep, ...tail);
      break;
    }
    case 'device':
      device = mutateDevice(d.device, r);
      break;
  }
  if (steps.length === 0) steps.push(freshStep(r, weights));
  return { decisions: { device, steps: steps.slice(0, MAX_STEPS) }, how };
}

function pickWeighted(r: () => number, w: readonly number[]): number {
  const total = w.reduce((a, b) => a + b, 0);
  let x = r() * total;
  for (let i = 0; i < w.length; i++) {
    if (x < w[i]!) return i;
    x -= w[i]!;
  }
  return w.length - 1;
}

/** One device parameter changed within what generated programs use. */
function mutateDevice(d: DeviceParams, r: () => number): DeviceParams {
  const out: DeviceParams = { ...d, algorithms: [...d.algorithms] };
  switch (int(r, 6)) {
    case 0:
      out.devices = 1 + int(r, 2);
      break;
    case 1:
      out.mmio_pages = int(r, 5);
      break;
    case 2:
      out.dus_pages = int(r, 5);
      break;
    case 3:
      out.queue_limit = 1 + int(r, 4);
      break;
    case 4:
      out.ioctl = !d.ioctl;
      break;
    default:
      out.isolate_ops = (['none', 'read', 'write', 'both'] as const)[int(r, 4)]!;
      break;
  }
  out.devices = Math.min(out.devices, LIMITS.maxDevices);
  if (out.api === undefined) out.api = DEFAULT_DEVICE.api;
  return out;
}

/** The feedback's random choices for program `index` of the stream for `seed`. */
export function feedbackRng(seed: number, index: number): () => number {
  return rng(mixSeed(seed ^ 0x5bd1e995, index));
}

/** The next program of a run: fresh from the stream, or a mutation of a corpus entry. */
export interface NextProgram {
  built: Built;
  decisions: Decisions;
  /** 'fresh', or the mutation made */
  how: 'fresh' | Mutation;
  /** the corpus entry mutated (its program index) */
  parent?: number;
}

/** Share of programs made by mutating the corpus once it has entries. */
export const MUTATE_SHARE = 0.6;

export function nextProgram(seed: number, index: number, corpus: Corpus, cov: Coverage, gen: Partial<GeneratorOptions> = {}): NextProgram {
  const r = feedbackRng(seed, index);
  if (corpus.size === 0 || r() >= MUTATE_SHARE) {
    const g = generate(seed, index, gen);
    return { built: { program: g.program, intents: g.intents }, decisions: g.decisions, how: 'fresh' };
  }
  const parent = corpus.choose(r, cov)!;
  parent.picks++;
  const other = corpus.choose(r, cov);
  const weights = deviceWeights(biasedWeights(gen.weights ?? DEFAULT_WEIGHTS, cov), parent.decisions.device, gen.profile ?? DEFAULT_PROFILE);
  const m = mutate(parent.decisions, other === parent ? undefined : other?.decisions, r, weights);
  const built = build(m.decisions, gen);
  built.program.comment = `mutated (${m.how}): seed ${seed}, program ${index}, from program ${parent.from}`;
  return { built, decisions: m.decisions, how: m.how, parent: parent.from };
}
