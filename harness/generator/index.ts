/**
 * The program generator. fast-check draws the device's parameters and a list of decisions (an
 * op kind and a few small numbers per step); the builder (build.ts) turns them into a valid
 * program op by op from the reference model's state: mostly ops whose preconditions hold (live
 * descriptors, mapped pages, pieces of split mappings, started queues, engines running), a chosen
 * share invalid on purpose, and concurrent groups of ops of different tasks. Because the builder
 * resolves choices against the state instead of rejecting them, every shrink or mutation of the
 * decision list is again a valid program, and the same seed gives the same programs.
 *
 * Op kinds are drawn by their descriptions' weights (harness/ops); the fuzz loop may pass other
 * weights (coverage feedback, harness/fuzz/corpus.ts).
 */
import fc from 'fast-check';
import { profileFor, type KernelProfile } from '../model/index.js';
import { svaBinds } from '../model/profile.js';
import { OP_DESCS } from '../ops/index.js';
import { DEFAULT_DEVICE, type DeviceParams, type IsolateOps, type Program } from '../program/types.js';
import { buildProgram, deviceWeights, kindFor, type Built, type Decision, type Weights } from './build.js';
import type { Intent } from './context.js';
import { VFIO_DEVICE, vfioWeights } from './vfio.js';

export { buildProgram, deviceWeights, kindFor, type Built, type Decision, type Weights } from './build.js';
export type { Intent } from './context.js';

/** Default relative frequency of each op kind: its description's weight. */
export const DEFAULT_WEIGHTS: Weights = Object.fromEntries(OP_DESCS.map((d) => [d.op, d.weight])) as Weights;

/** The model profile programs are generated with when none is given (the default kernel's). */
export const DEFAULT_PROFILE: KernelProfile = profileFor('6.12', { arch: 'x86_64', distro: 'debian' });

export interface GeneratorOptions {
  /** decisions per program */
  minOps: number;
  maxOps: number;
  weights: Weights;
  /** device parameters to use instead of random ones */
  device?: DeviceParams;
  /** the kernel's model profile (generation follows the model) */
  profile: KernelProfile;
  /** percent of ops invalid on purpose (a descriptor or mapping the task lacks, a removed device) */
  invalidPct: number;
  /** percent of steps that make a concurrent group */
  groupPct: number;
  /** ops per program at most */
  maxProgramOps: number;
  /**
   * The op family of the programs: uacce (the default: the device and the core ops) or vfio (DMA
   * ownership on the IOMMU-group machine: generator/vfio.ts, its device and weights).
   */
  family?: 'uacce' | 'vfio';
}

export const DEFAULT_GENERATOR: GeneratorOptions = {
  minOps: 4,
  maxOps: 40,
  weights: DEFAULT_WEIGHTS,
  profile: DEFAULT_PROFILE,
  invalidPct: 10,
  groupPct: 6,
  maxProgramOps: 64,
};

/** One step as fast-check draws it: a kind (by weight) and the numbers its generator starts from. */
interface Step {
  kind: number;
  r: number[];
}

export const STEP_RANDOMS = 8;

/**
 * The device parameters of generated programs: regions that can be mapped, a few queues; the
 * PCI backend (sva) in a quarter of them on a kernel whose SVA binds succeed (svaBinds), never
 * elsewhere (Debian's 6.1 and 6.12 refuse every bind: a fact tested by hand-written programs).
 */
export function deviceArbFor(profile: KernelProfile): fc.Arbitrary<DeviceParams> {
  const binds = svaBinds(profile);
  return fc
    .record({
      devices: fc.integer({ min: 1, max: 2 }),
      mmio_pages: fc.oneof({ weight: 19, arbitrary: fc.integer({ min: 1, max: 4 }) }, { weight: 1, arbitrary: fc.constant(0) }),
      dus_pages: fc.oneof({ weight: 19, arbitrary: fc.integer({ min: 1, max: 4 }) }, { weight: 1, arbitrary: fc.constant(0) }),
      queue_limit: fc.integer({ min: 1, max: 4 }),
      sva: fc
        .boolean()
        .chain((b) => (b ? fc.boolean() : fc.constant(false)))
        .map((b) => b && binds), // 25 %
      isolate_ops: fc.constantFrom<IsolateOps>('none', 'read', 'write', 'both'),
      isolate_state: fc.boolean(),
      ioctl: fc.boolean(),
    })
    .map((d) => ({ ...d, api: DEFAULT_DEVICE.api, algorithms: [...DEFAULT_DEVICE.algorithms] }));
}

const stepArb: fc.Arbitrary<Step> = fc.record({
  kind: fc.nat({ max: 0xffff }),
  r: fc.array(fc.nat({ max: 0xffff }), { minLength: STEP_RANDOMS, maxLength: STEP_RANDOMS }),
});

/** What a program is built from: its device and its decisions. */
export interface Decisions {
  device: DeviceParams;
  steps: Decision[];
}

function options(opts: Partial<GeneratorOptions>): GeneratorOptions {
  // a vfio program has its fixed layout and its family's kinds whatever else is asked
  // (no concurrent groups: the races are the uacce family's)
  if (opts.family === 'vfio') {
    const weights = opts.weights ?? vfioWeights((opts.profile ?? DEFAULT_GENERATOR.profile).vfioPaths);
    return { ...DEFAULT_GENERATOR, ...opts, device: VFIO_DEVICE, weights, groupPct: 0 };
  }
  return { ...DEFAULT_GENERATOR, ...opts };
}

/** The arbitrary of decisions (device and steps, kinds drawn by o.weights as the device takes them: deviceWeights). */
export function decisionsArbitrary(opts: Partial<GeneratorOptions> = {}): fc.Arbitrary<Decisions> {
  const o = options(opts);
  return fc
    .record({ device: o.device ? fc.constant(o.device) : deviceArbFor(o.profile), steps: fc.array(stepArb, { minLength: o.minOps, maxLength: o.maxOps, size: 'max' }) })
    .map(({ device, steps }) => {
      const w = deviceWeights(o.weights, device, o.profile);
      return { device, steps: steps.map((s) => ({ kind: kindFor(w, s.kind), r: s.r })) };
    });
}

/** Build the program of a set of decisions. */
export function build(d: Decisions, opts: Partial<GeneratorOptions> = {}): Built {
  const o = options(opts);
  return buildProgram(o.family === 'vfio' ? VFIO_DEVICE : d.device, d.steps, o);
}

/** The arbitrary of programs (usable in fast-check properties and for sampling). */
export function programArbitrary(opts: Partial<GeneratorOptions> = {}): fc.Arbitrary<Program> {
  return decisionsArbitrary(opts).map((d) => build(d, opts).program);
}

/** Program number `index` of the stream for `seed`, with its decisions and each op's intent. */
export function generate(seed: number, index: number, opts: Partial<GeneratorOptions> = {}): Built & { decisions: Decisions } {
  const [d] = fc.sample(decisionsArbitrary(opts), { seed: mixSeed(seed, index), numRuns: 1 });
  if (!d) throw new Error('generator produced nothing');
  const b = build(d, opts);
  b.program.comment = `generated: seed ${seed}, program ${index}`;
  return { ...b, decisions: d };
}

/** Program number `index` of the stream for `seed`: the same pair (and options) always gives the same program. */
export function generateProgram(seed: number, index: number, opts: Partial<GeneratorOptions> = {}): Program {
  return generate(seed, index, opts).program;
}

/** The program and its ops' intents (for measurements: harness/coverage/stats.ts). */
export function generateWithIntents(seed: number, index: number, opts: Partial<GeneratorOptions> = {}): { program: Program; intents: Intent[] } {
  const g = generate(seed, index, opts);
  return { program: g.program, intents: g.intents };
}

/** A 32-bit seed per (seed, index), well spread (splitmix-like). */
export function mixSeed(seed: number, index: number): number {
  let x = (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d) >>> 0;
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) | 0;
}
