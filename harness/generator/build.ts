/**
 * The builder: decisions (an op kind and a few random numbers per step) into a valid program,
 * generated op by op from the model's state. Each step asks its kind's generator (the op
 * families', harness/generator/<family>.ts) for an op whose preconditions hold in the current
 * state (or, at the chosen rate, one invalid on purpose), makes what it needs first when they
 * do not hold (an open before an mmap, the steps toward a work item), or, at the chosen rate,
 * a concurrent group from a family's races; then the model predicts the op and the builder goes
 * on from the state after it (the first outcome where several are allowed).
 *
 * Every decision list builds a valid program (choices are resolved against the state, never
 * rejected), so fast-check's shrinking and the fuzzer's mutations of decision lists always give
 * programs again.
 */
import { initialState, predict, type KernelProfile, type ModelState, type Task } from '../model/index.js';
import { svaBinds } from '../model/profile.js';
import { createdNames, OP_DESCS, OP_KINDS, type Op, type OpKind } from '../ops/index.js';
import { LIMITS, ROOT_TASK } from '../program/limits.js';
import { PROGRAM_FORMAT, PROGRAM_VERSION, type DeviceParams, type Program } from '../program/types.js';
import { Rand, type FamilyGen, type GenCtx, type Intent, type KindGen, type Made } from './context.js';
import { CORE_GEN } from './core.js';
import { SVA_GEN } from './sva.js';
import { UACCE_GEN } from './uacce.js';
import { VFIO_GEN } from './vfio.js';
import { IOMMUFD_GEN } from './iommufd.js';
import { StateView } from './view.js';

/** One step: the op kind asked for, and the random numbers its generator draws from first. */
export interface Decision {
  kind: OpKind;
  r: number[];
}

export type Weights = Record<OpKind, number>;

export interface BuildOptions {
  profile: KernelProfile;
  /** percent of ops made invalid on purpose */
  invalidPct: number;
  /** percent of steps that make a concurrent group */
  groupPct: number;
  /** a program has at most this many ops */
  maxProgramOps: number;
  /** kinds drawn when the asked kind has nothing to do in the state */
  weights: Weights;
}

export interface Built {
  program: Program;
  /** per op: preconditions hold, or invalid on purpose */
  intents: Intent[];
}

const FAMILIES: readonly FamilyGen[] = [CORE_GEN, UACCE_GEN, SVA_GEN, VFIO_GEN, IOMMUFD_GEN];

const KIND_GEN = Object.fromEntries(FAMILIES.flatMap((f) => Object.entries(f.kinds))) as Record<OpKind, KindGen>;
for (const k of OP_KINDS) if (KIND_GEN[k] === undefined) throw new Error(`generator: no arguments for ${k}`);

const RACES = FAMILIES.flatMap((f) => (f.race ? [f.race] : []));

/** A kind by weight for a draw v (0..0xffff). */
export function kindFor(weights: Weights, v: number): OpKind {
  const total = OP_KINDS.reduce((n, k) => n + Math.max(0, weights[k] ?? 0), 0);
  if (total <= 0) throw new Error('all op weights are zero');
  let x = Math.floor((v / 0x10000) * total);
  for (const k of OP_KINDS) {
    const w = Math.max(0, weights[k] ?? 0);
    if (x < w) return k;
    x -= w;
  }
  return OP_KINDS[OP_KINDS.length - 1]!;
}

/**
 * The weights a program on `device` draws its kinds by. The SVA family's ops read what a bind
 * gave a queue, so they are drawn only where queues bind (device.sva on a kernel whose binds
 * succeed: svaBinds); elsewhere they take no draws, and the op mix of programs without SVA is
 * the one it was before the family existed (the reach baseline, test/fixtures/reach, measures
 * it). Weights that name SVA ops alone are kept as they are (their ops then read `none`).
 */
export function deviceWeights(weights: Weights, device: DeviceParams, profile: KernelProfile): Weights {
  if (device.sva && svaBinds(profile)) return weights;
  const out = { ...weights };
  for (const d of OP_DESCS) if (d.family === 'sva') out[d.op as OpKind] = 0;
  return OP_KINDS.some((k) => out[k] > 0) ? out : weights;
}

class Builder {
  readonly ops: Op[] = [];
  readonly intents: Intent[] = [];
  private state: ModelState;
  private fdN = 0;
  private mapN = 0;
  private bufN = 0;
  private objN = 0;
  private taskN = 1;
  private groupN = 0;
  private readonly fds: string[] = [];
  private readonly weights: Weights;

  constructor(
    private readonly device: DeviceParams,
    private readonly o: BuildOptions,
  ) {
    this.state = initialState(device, o.profile);
    this.weights = deviceWeights(o.weights, device, o.profile);
  }

  private full(): boolean {
    return this.ops.length >= this.o.maxProgramOps;
  }

  private ctx(r: Rand, invalid: boolean): GenCtx {
    const view = new StateView(this.state);
    return {
      view,
      device: this.device,
      profile: this.o.profile,
      r,
      invalid,
      fdNames: () => this.fds,
      fdName: () => `q${this.fdN++}`,
      mapName: () => `m${this.mapN++}`,
      bufName: () => `b${this.bufN++}`,
      objName: () => `o${this.objN++}`,
      taskName: () => (this.taskN < LIMITS.maxTasks ? `t${this.taskN++}` : undefined),
      tasksLeft: () => LIMITS.maxTasks - this.taskN,
      pickTask: (cands: readonly Task[]) => {
        const root = cands.find((t) => t.name === ROOT_TASK);
        if (root !== undefined && r.chance(40)) return root;
        return r.pick(cands);
      },
    };
  }

  /** Append an op and follow the model to the state after it. */
  private emit(m: Made, group?: number): void {
    const { op: kind, task, ...fields } = m.op;
    const op = (group === undefined ? m.op : { op: kind, task, group, ...fields }) as Op;
    this.ops.push(op);
    this.intents.push(m.intent);
    for (const [kind, name] of createdNames(op)) if (kind === 'fd') this.fds.push(name);
    this.state = predict(this.state, op)[0]!.next;
  }

  step(d: Decision): void {
    if (this.full()) return;
    const r = new Rand(d.r);
    const grouped = r.chance(this.o.groupPct);
    const invalid = r.chance(this.o.invalidPct);
    if (grouped && this.group(r)) return;
    // a kind this device does not draw (a mutation's step from another program or family) is drawn again
    let kind = (this.weights[d.kind] ?? 0) > 0 ? d.kind : kindFor(this.weights, r.next());
    for (let tries = 0; tries < 4; tries++) {
      if (this.make(kind, r, invalid, 0)) return;
      kind = kindFor(this.weights, r.next());
    }
  }

  /** Make an op of `kind` (or what it needs first); false: nothing of that kind is possible now. */
  private make(kind: OpKind, r: Rand, invalid: boolean, depth: number): boolean {
    for (let n = 0; n < 8 && !this.full(); n++) {
      const g = KIND_GEN[kind](this.ctx(r, invalid));
      if (g === undefined) return n > 0;
      if ('need' in g) return depth < 3 && this.make(g.need, r, false, depth + 1);
      this.emit(g);
      if (!g.again) return true;
    }
    return true;
  }

  private group(r: Rand): boolean {
    const race = r.pick(RACES);
    const g = race?.(this.ctx(r, false));
    if (g === undefined) return false;
    if ('need' in g) return this.make(g.need, r, false, 1);
    if (this.ops.length + g.length > this.o.maxProgramOps) return false;
    // every member was made against the state before the group; the model follows them in
    // program order, one of the orders the kernel may run them in
    const n = ++this.groupN;
    for (const m of g) this.emit(m, n);
    return true;
  }
}

export function buildProgram(device: DeviceParams, decisions: readonly Decision[], o: BuildOptions): Built {
  const b = new Builder(device, o);
  for (const d of decisions) b.step(d);
  return { program: { format: PROGRAM_FORMAT, version: PROGRAM_VERSION, device, ops: b.ops }, intents: b.intents };
}
