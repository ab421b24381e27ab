/**
 * The program generator. fast-check draws a list of raw decisions (an op kind and a few small
 * numbers per step); a deterministic builder turns them into a valid program by resolving every
 * choice against what exists at that point (live tasks, the names each task has, mappings and
 * their sizes). Because the builder repairs choices instead of rejecting them, every shrink of
 * the decision list is again a valid program, and the same seed gives the same programs.
 *
 * Bias: most choices pick objects the task really has (so that ops reach the code paths where
 * the model has something to say: second mmap of a mapped region, partial unmaps, use after
 * fork or removal), a minority pick wrong ones on purpose (another task's mapping, a closed fd).
 */
import fc from 'fast-check';
import { OP_DESCS } from '../ops/index.js';
import {
  DEFAULT_DEVICE,
  LIMITS,
  PROGRAM_FORMAT,
  PROGRAM_VERSION,
  ROOT_TASK,
  SYSFS_ATTRS,
  type DeviceParams,
  type IsolateOps,
  type Op,
  type OpKind,
  type Program,
} from '../program/types.js';

export type Weights = Record<OpKind, number>;

/** Default relative frequency of each op kind: its description's weight. */
export const DEFAULT_WEIGHTS: Weights = Object.fromEntries(OP_DESCS.map((d) => [d.op, d.weight])) as Weights;

export interface GeneratorOptions {
  minOps: number;
  maxOps: number;
  weights: Weights;
  /** device parameters to use instead of random ones */
  device?: DeviceParams;
}

export const DEFAULT_GENERATOR: GeneratorOptions = { minOps: 4, maxOps: 48, weights: DEFAULT_WEIGHTS };

/** One raw decision: which kind of op, and numbers the builder interprets. */
interface Step {
  kind: number;
  r: number[];
}

const STEP_RANDOMS = 8;

const deviceArb: fc.Arbitrary<DeviceParams> = fc
  .record({
    devices: fc.integer({ min: 1, max: 2 }),
    mmio_pages: fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 1, max: 4 }) }, { weight: 1, arbitrary: fc.constant(0) }),
    dus_pages: fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 1, max: 4 }) }, { weight: 1, arbitrary: fc.constant(0) }),
    queue_limit: fc.integer({ min: 1, max: 4 }),
    sva: fc.boolean().chain((b) => (b ? fc.boolean() : fc.constant(false))), // 25 %
    isolate_ops: fc.constantFrom<IsolateOps>('none', 'read', 'write', 'both'),
    isolate_state: fc.boolean(),
    ioctl: fc.boolean(),
  })
  .map((d) => ({ ...d, api: DEFAULT_DEVICE.api, algorithms: [...DEFAULT_DEVICE.algorithms] }));

function stepArb(nKinds: number): fc.Arbitrary<Step> {
  return fc.record({
    kind: fc.integer({ min: 0, max: nKinds - 1 }),
    r: fc.array(fc.nat({ max: 0xffff }), { minLength: STEP_RANDOMS, maxLength: STEP_RANDOMS }),
  });
}

/** The arbitrary of programs (usable in fast-check properties and for sampling). */
export function programArbitrary(opts: Partial<GeneratorOptions> = {}): fc.Arbitrary<Program> {
  const o: GeneratorOptions = { ...DEFAULT_GENERATOR, ...opts };
  const table = weightTable(o.weights);
  const dev = o.device ? fc.constant(o.device) : deviceArb;
  return fc
    .record({ device: dev, steps: fc.array(stepArb(table.length), { minLength: o.minOps, maxLength: o.maxOps, size: 'max' }) })
    .map(({ device, steps }) => buildProgram(device, steps, table));
}

/** Program number `index` of the stream for `seed`: the same pair always gives the same program. */
export function generateProgram(seed: number, index: number, opts: Partial<GeneratorOptions> = {}): Program {
  const [p] = fc.sample(programArbitrary(opts), { seed: mixSeed(seed, index), numRuns: 1 });
  if (!p) throw new Error('generator produced nothing');
  p.comment = `generated: seed ${seed}, program ${index}`;
  return p;
}

/** A 32-bit seed per (seed, index), well spread (splitmix-like). */
export function mixSeed(seed: number, index: number): number {
  let x = (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca6b)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d) >>> 0;
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) | 0;
}

/** Kinds repeated by weight, so a uniform draw picks them with the given frequencies. */
function weightTable(w: Weights): OpKind[] {
  const t: OpKind[] = [];
  for (const [k, n] of Object.entries(w) as [OpKind, number][]) for (let i = 0; i < n; i++) t.push(k);
  if (t.length === 0) throw new Error('all op weights are zero');
  return t;
}

// ---------------------------------------------------------------------------------------------

interface MapInfo {
  name: string;
  /** the task that created it */
  owner: string;
  pages: number;
  /** queue mapping: fd name and region; anonymous: undefined */
  fd?: string;
  region?: number;
}

interface TaskInfo {
  name: string;
  fds: string[];
  maps: string[];
}

class Builder {
  readonly ops: Op[] = [];
  private readonly tasks = new Map<string, TaskInfo>([[ROOT_TASK, { name: ROOT_TASK, fds: [], maps: [] }]]);
  private taskCount = 1;
  private readonly allFds: string[] = [];
  private readonly maps = new Map<string, MapInfo>();
  private fdCounter = 0;
  private mapCounter = 0;
  private bufCounter = 0;

  constructor(private readonly device: DeviceParams) {}

  private pick<T>(xs: readonly T[], r: number): T | undefined {
    return xs.length === 0 ? undefined : xs[r % xs.length];
  }

  /** r in 0..0xffff as a probability test: true with chance pct %. */
  private chance(r: number, pct: number): boolean {
    return r % 100 < pct;
  }

  private aliveTasks(): TaskInfo[] {
    return [...this.tasks.values()];
  }

  private newFdName(): string {
    return `q${this.fdCounter++}`;
  }

  private newMapName(prefix = 'm'): string {
    return prefix === 'b' ? `b${this.bufCounter++}` : `m${this.mapCounter++}`;
  }

  /** A descriptor name for `task`: mostly one it has, sometimes any (EBADF paths). */
  private fdFor(t: TaskInfo, r: number, r2: number): string | undefined {
    if (t.fds.length > 0 && !this.chance(r2, 8)) return this.pick(t.fds, r);
    return this.pick(this.allFds, r);
  }

  private mapFor(t: TaskInfo, r: number, r2: number, filter?: (m: MapInfo) => boolean): MapInfo | undefined {
    const own = t.maps.map((n) => this.maps.get(n)!).filter((m) => !filter || filter(m));
    if (own.length > 0 && !this.chance(r2, 10)) return this.pick(own, r);
    const any = [...this.maps.values()].filter((m) => !filter || filter(m));
    return this.pick(any, r);
  }

  private regionPages(region: number): number {
    return region === 0 ? this.device.mmio_pages : region === 1 ? this.device.dus_pages : 1;
  }

  step(kind: OpKind, r: number[]): void {
    const R = (i: number) => r[i] ?? 0;
    const tasks = this.aliveTasks();
    // Most ops come from t0 or the newest task; the bias keeps interleavings short and readable.
    const t = this.chance(R(0), 55) ? tasks[0]! : this.pick(tasks, R(1))!;
    const task = t.name;
    switch (kind) {
      case 'open': {
        const dev = R(2) % this.device.devices;
        const fd = this.newFdName();
        const v = R(3) % 100;
        if (v < 10 && t.fds.length > 0) {
          const of = this.pick(t.fds, R(4))!;
          this.ops.push({ op: 'open', task, fd, dev, via: 'procfd', of });
        } else {
          this.ops.push({ op: 'open', task, fd, dev, via: v < 22 ? 'mknod' : 'path' });
        }
        t.fds.push(fd);
        this.allFds.push(fd);
        return;
      }
      case 'close': {
        const fd = this.fdFor(t, R(2), R(3));
        if (fd === undefined) return this.step('open', r);
        this.ops.push({ op: 'close', task, fd });
        t.fds = t.fds.filter((x) => x !== fd);
        return;
      }
      case 'dup': {
        const fd = this.fdFor(t, R(2), R(3));
        if (fd === undefined) return this.step('open', r);
        const as = this.newFdName();
        this.ops.push({ op: 'dup', task, fd, as });
        t.fds.push(as);
        this.allFds.push(as);
        return;
      }
      case 'mmap': {
        const fd = this.fdFor(t, R(2), R(3));
        if (fd === undefined) return this.step('open', r);
        const rr = R(4) % 100;
        const region = rr < 47 ? 0 : rr < 94 ? 1 : 2 + (R(5) % 3);
        const max = Math.max(1, this.regionPages(region));
        const pr = R(5) % 100;
        // mostly within the region, sometimes exactly one page too many
        const pages = pr < 85 ? 1 + (R(6) % max) : Math.min(LIMITS.maxPages, max + 1);
        const protR = R(7) % 100;
        const prot = protR < 75 ? 'rw' : protR < 92 ? 'r' : 'none';
        const shared = !this.chance(R(3) >> 4, 20);
        const map = this.newMapName();
        this.ops.push({ op: 'mmap', task, map, fd, region, pages, prot, shared });
        this.maps.set(map, { name: map, owner: task, pages, fd, region });
        t.maps.push(map);
        return;
      }
      case 'alloc': {
        const map = this.newMapName('b');
        const pages = 1 + (R(2) % 2);
        this.ops.push({ op: 'alloc', task, map, pages });
        this.maps.set(map, { name: map, owner: task, pages });
        t.maps.push(map);
        return;
      }
      case 'munmap': {
        const m = this.mapFor(t, R(2), R(3));
        if (!m) return this.step('mmap', r);
        const [page, pages] = this.subRange(m.pages, R(4), R(5));
        this.ops.push({ op: 'munmap', task, map: m.name, page, pages });
        return;
      }
      case 'mremap': {
        const m = this.mapFor(t, R(2), R(3), (x) => x.fd !== undefined);
        if (!m) return this.step('mmap', r);
        const k = R(4) % 4;
        if (k === 0) {
          // grow
          this.ops.push({ op: 'mremap', task, map: m.name, page: 0, old_pages: m.pages, new_pages: m.pages + 1, move: false, dontunmap: false });
        } else if (k === 1 && m.pages > 1) {
          // shrink: keep the head
          const keep = 1 + (R(5) % (m.pages - 1));
          this.ops.push({ op: 'mremap', task, map: m.name, page: 0, old_pages: m.pages, new_pages: keep, move: false, dontunmap: false });
        } else {
          const to = this.newMapName();
          const dontunmap = k === 3;
          this.ops.push({ op: 'mremap', task, map: m.name, page: 0, old_pages: m.pages, new_pages: m.pages, move: !dontunmap, dontunmap, to });
          this.maps.set(to, { name: to, owner: task, pages: m.pages, fd: m.fd!, region: m.region! });
          t.maps.push(to);
        }
        return;
      }
      case 'madvise': {
        const m = this.mapFor(t, R(2), R(3));
        if (!m) return this.step('mmap', r);
        this.ops.push({ op: 'madvise', task, map: m.name, page: 0, pages: m.pages, advice: 'dofork' });
        return;
      }
      case 'mprotect': {
        // any mapping or buffer, often a part of it; PROT_NONE and PROT_READ make later touches
        // and work items fault, rw brings them back (and lets split anonymous pieces merge)
        const m = this.mapFor(t, R(2), R(3));
        if (!m) return this.step('mmap', r);
        const [page, pages] = this.subRange(m.pages, R(4), R(5));
        const pr = R(6) % 100;
        this.ops.push({ op: 'mprotect', task, map: m.name, page, pages, prot: pr < 30 ? 'none' : pr < 65 ? 'r' : 'rw' });
        return;
      }
      case 'touch': {
        const m = this.mapFor(t, R(2), R(3));
        if (!m) return this.step('mmap', r);
        const page = R(4) % 100 < 80 ? 0 : R(5) % (m.pages + 1);
        const write = this.chance(R(6), 30);
        let offset: number;
        if (m.fd !== undefined && page === 0 && !write) {
          // registers (MMIO) or ring (DUS) most of the time
          offset = this.chance(R(7), 70) ? (R(7) % 8) * 8 : 0x100 + (R(7) % 64) * 8;
        } else if (m.fd !== undefined && page === 0) {
          // writes only to scratch: the register block and the ring belong to submit
          offset = 0x800 + (R(7) % 256) * 8;
        } else {
          offset = (R(7) % 512) * 8;
        }
        if (write) {
          const value = '0x' + (((R(5) << 16) | R(6)) >>> 0).toString(16);
          this.ops.push({ op: 'touch', task, map: m.name, page, offset, access: 'write', value });
        } else {
          this.ops.push({ op: 'touch', task, map: m.name, page, offset, access: 'read' });
        }
        return;
      }
      case 'submit': {
        // a queue with both regions mapped in this task, ideally
        const own = t.maps.map((n) => this.maps.get(n)!);
        const mmio = this.pick(own.filter((m) => m.region === 0 && m.fd !== undefined), R(2));
        if (!mmio) return this.step('mmap', [R(0), R(1), R(2), R(3), 10, R(5), 0, 0]);
        const dus =
          this.pick(own.filter((m) => m.region === 1 && m.fd === mmio.fd), R(3)) ??
          this.pick(own.filter((m) => m.region === 1), R(3));
        if (!dus) return this.step('mmap', [R(0), R(1), R(2), R(3), 60, R(5), 0, 0]);
        let target = this.mapFor(t, R(4), R(5), (m) => m.fd === undefined);
        if (!target) {
          const map = this.newMapName('b');
          this.ops.push({ op: 'alloc', task, map, pages: 1 });
          this.maps.set(map, { name: map, owner: task, pages: 1 });
          t.maps.push(map);
          target = this.maps.get(map)!;
        }
        const w = R(6) % 100;
        const work = w < 55 ? 'write' : w < 95 ? 'read' : 'invalid';
        const offset = (R(7) % 512) * 8;
        const base = { op: 'submit' as const, task, mmio: mmio.name, dus: dus.name, target: target.name, page: 0, offset, ack: !this.chance(R(5), 25) };
        if (work === 'write') {
          this.ops.push({ ...base, work, value: '0x' + ((R(4) * 0x10001 + R(7)) >>> 0).toString(16) });
        } else {
          this.ops.push({ ...base, work });
        }
        return;
      }
      case 'ioctl': {
        const fd = this.fdFor(t, R(2), R(3));
        if (fd === undefined) return this.step('open', r);
        const c = R(4) % 100;
        const cmd = c < 45 ? 'START_Q' : c < 80 ? 'PUT_Q' : c < 90 ? 'PING' : [0x5702, 0x5710, 0x80085701, 0x1234][R(5) % 4]!;
        this.ops.push({ op: 'ioctl', task, fd, cmd });
        return;
      }
      case 'poll': {
        const fd = this.fdFor(t, R(2), R(3));
        if (fd === undefined) return this.step('open', r);
        this.ops.push({ op: 'poll', task, fd, timeout_ms: this.chance(R(4), 75) ? 0 : 10 });
        return;
      }
      case 'fork': {
        if (this.taskCount >= LIMITS.maxTasks) return this.step('touch', r);
        const child = `t${this.taskCount++}`;
        this.ops.push({ op: 'fork', task, child });
        // fds are inherited; names of mappings are known to the child too (it will find its
        // anonymous copies there and nothing where the queue mappings were)
        this.tasks.set(child, { name: child, fds: [...t.fds], maps: [...t.maps] });
        return;
      }
      case 'exit': {
        // the last task never exits (the program would have nobody left to run its ops)
        if (tasks.length <= 1) return this.step('fork', r);
        const others = tasks.filter((x) => x.name !== ROOT_TASK);
        // t0 exits only rarely: the rest of the program then runs in its children
        const victim = others.length > 0 && !this.chance(R(2), 5) ? this.pick(others, R(3))! : t;
        this.ops.push({ op: 'exit', task: victim.name });
        this.tasks.delete(victim.name);
        return;
      }
      case 'remove':
      case 'add': {
        const dev = R(2) % this.device.devices;
        this.ops.push({ op: kind, task, dev });
        return;
      }
      case 'sysfs_read': {
        const attr = this.pick(SYSFS_ATTRS, R(2))!;
        this.ops.push({ op: 'sysfs_read', task, dev: R(3) % this.device.devices, attr });
        return;
      }
      case 'sysfs_write': {
        const attr = this.chance(R(2), 85) ? 'isolate_strategy' : this.pick(SYSFS_ATTRS, R(3))!;
        const values = ['0', '1', '5', '65535', '65536', '4294967296', 'abc', '-1', '0x10', '12\n'];
        this.ops.push({ op: 'sysfs_write', task, dev: R(4) % this.device.devices, attr, value: this.pick(values, R(5))! });
        return;
      }
      default: {
        const missing: never = kind; // every op kind has its arguments here
        throw new Error(`generator: no arguments for ${String(missing)}`);
      }
    }
  }

  /** whole, head, tail or middle of a mapping of n pages */
  private subRange(n: number, r1: number, r2: number): [number, number] {
    const k = r1 % 100;
    if (n === 1 || k < 40) return [0, n];
    if (k < 60) return [0, 1 + (r2 % (n - 1))];
    if (k < 80) {
      const start = 1 + (r2 % (n - 1));
      return [start, n - start];
    }
    if (n >= 3) return [1, 1 + (r2 % (n - 2))];
    return [1, 1];
  }
}

function buildProgram(device: DeviceParams, steps: Step[], table: OpKind[]): Program {
  const b = new Builder(device);
  for (const s of steps) {
    if (b.ops.length >= LIMITS.maxOps - 2) break;
    b.step(table[s.kind % table.length]!, s.r);
  }
  return { format: PROGRAM_FORMAT, version: PROGRAM_VERSION, device, ops: b.ops };
}
