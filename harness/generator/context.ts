/**
 * What an op family's generator gets for one op (GenCtx) and what it gives back (Gen): the
 * model's state to choose from (StateView), the step's random numbers (Rand), whether this op
 * is to be invalid on purpose, the task it must use (in a concurrent group), and new names.
 */
import type { KernelProfile, ModelState } from '../model/index.js';
import type { Op, OpKind } from '../ops/index.js';
import type { DeviceParams } from '../program/types.js';
import type { Task } from '../model/index.js';
import { StateView } from './view.js';

/**
 * The random numbers of one step: first the step's own (fast-check shrinks those toward 0),
 * then a generator seeded from them. Every helper maps 0 to the plainest choice: chance() is
 * false, pick() the first element, int() 0, so a shrunk step is a simple one.
 */
export class Rand {
  private i = 0;
  private s: number;

  constructor(private readonly r: readonly number[]) {
    let h = 0x2545f491;
    for (const x of r) h = Math.imul(h ^ x, 0x9e3779b1) >>> 0;
    this.s = h || 1;
  }

  /** 0..0xffff */
  next(): number {
    if (this.i < this.r.length) return (this.r[this.i++] ?? 0) & 0xffff;
    // xorshift32
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s & 0xffff;
  }

  int(n: number): number {
    return n <= 1 ? 0 : this.next() % n;
  }

  /** true with `pct` percent (0 draws false) */
  chance(pct: number): boolean {
    return (this.next() % 10000) / 100 >= 100 - pct;
  }

  pick<T>(xs: readonly T[]): T | undefined {
    return xs.length === 0 ? undefined : xs[this.int(xs.length)];
  }

  /** one of the items, by weight (the first item for a draw of 0) */
  weighted<T>(items: readonly (readonly [T, number])[]): T {
    const total = items.reduce((n, [, w]) => n + w, 0);
    let x = total <= 0 ? 0 : this.next() % total;
    for (const [v, w] of items) {
      if (x < w) return v;
      x -= w;
    }
    return items[0]![0];
  }
}

/** Why an op of a generated program is what it is: preconditions hold, or it is invalid on purpose. */
export type Intent = 'valid' | 'invalid';

export interface GenCtx {
  readonly view: StateView;
  readonly device: DeviceParams;
  readonly profile: KernelProfile;
  readonly r: Rand;
  /** make this op invalid on purpose (a descriptor or mapping the task does not have, a removed device) */
  readonly invalid: boolean;
  /** every descriptor name an earlier op created (a name a program may use) */
  fdNames(): readonly string[];
  /** new names: descriptors, mappings, anonymous buffers, tasks (undefined: no task left) */
  fdName(): string;
  mapName(): string;
  bufName(): string;
  /** a new iommufd object name */
  objName(): string;
  taskName(): string | undefined;
  /** tasks a fork can still create (LIMITS.maxTasks in all) */
  tasksLeft(): number;
  /** a task of `cands`: t0 often, any other as often together */
  pickTask(cands: readonly Task[]): Task | undefined;
}

/** One op the generator made, and why it is what it is. */
export interface Made {
  op: Op;
  intent: Intent;
  /** the op prepares what was asked for (a step toward a submit): ask the same kind again after it */
  again?: boolean;
}

/** What a kind's generator gives: an op, another kind to make first, or nothing possible now. */
export type Gen = Made | { need: OpKind } | undefined;

export type KindGen = (c: GenCtx) => Gen;

/**
 * A family's proposal of ops to run at the same time (a concurrent group): each of a
 * different task, all made against the same state. Undefined: nothing to race now; `need`:
 * make that first (a second task).
 */
export type RaceGen = (c: GenCtx) => Made[] | { need: OpKind } | undefined;

export interface FamilyGen {
  kinds: Partial<Record<OpKind, KindGen>>;
  race?: RaceGen;
}

export function stateView(s: ModelState): StateView {
  return new StateView(s);
}
