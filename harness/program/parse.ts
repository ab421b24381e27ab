import { HANDLES, onlyHolds, onlyText, type Field, type HandleKind } from '../ops/describe.js';
import { descOf, fieldsOf } from '../ops/index.js';
import { UserError } from '../util/errors.js';
import { DEFAULT_DEVICE, LIMITS, OP_KINDS, PROGRAM_FORMAT, PROGRAM_VERSIONS, ROOT_TASK, type DeviceParams, type Op, type Program, type ProgramVersion } from './types.js';

/**
 * Parse and check a program. Every problem is reported as one line naming the op index, its
 * kind and the field, e.g. `prog.json: ops[3] (mmap): field "pages": must be an integer in
 * 1..64, got 0`.
 */
export function parseProgram(text: string, source = 'program'): Program {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${source}: not valid JSON: ${(e as Error).message}`);
  }
  return checkProgram(raw, source);
}

class FieldError extends Error {}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const NAME_RE = /^[A-Za-z][A-Za-z0-9_]{0,31}$/;
const STRING_RE = /^[A-Za-z0-9._-]+$/;
const HEX_RE = /^0x[0-9a-fA-F]{1,16}$/;

export function checkProgram(raw: unknown, source = 'program'): Program {
  const fail = (where: string, msg: string): never => {
    throw new UserError(`${source}: ${where}: ${msg}`);
  };
  if (!isObj(raw)) return fail('top level', 'must be a JSON object');
  if (raw.format !== PROGRAM_FORMAT) {
    fail('field "format"', `must be "${PROGRAM_FORMAT}", got ${JSON.stringify(raw.format)}`);
  }
  if (!(PROGRAM_VERSIONS as readonly unknown[]).includes(raw.version)) {
    fail('field "version"', `this svadiff reads versions ${PROGRAM_VERSIONS.join(' and ')}, got ${JSON.stringify(raw.version)}`);
  }
  const version = raw.version as ProgramVersion;
  const known = new Set(['format', 'version', 'comment', 'device', 'ops']);
  for (const k of Object.keys(raw)) if (!known.has(k)) fail(`field "${k}"`, 'unknown field');
  if (raw.comment !== undefined && typeof raw.comment !== 'string') fail('field "comment"', 'must be a string');

  let device: DeviceParams;
  try {
    device = checkDevice(raw.device);
  } catch (e) {
    if (e instanceof FieldError) return fail('device', e.message);
    throw e;
  }

  if (!Array.isArray(raw.ops)) return fail('field "ops"', 'must be an array of operations');
  if (raw.ops.length > LIMITS.maxOps) fail('field "ops"', `at most ${LIMITS.maxOps} operations, got ${raw.ops.length}`);

  const ops: Op[] = [];
  const scope = new Scope(device);
  const groups = new Groups();
  raw.ops.forEach((o: unknown, i: number) => {
    const kind = isObj(o) && typeof o.op === 'string' ? o.op : '?';
    try {
      const op = checkOp(o, version);
      groups.apply(op);
      scope.apply(op);
      ops.push(op);
    } catch (e) {
      if (e instanceof FieldError) fail(`ops[${i}] (${kind})`, e.message);
      throw e;
    }
  });
  const vfioOp = ops.findIndex((op) => descOf(op.op).family === 'vfio');
  if (vfioOp >= 0 && !placesEvery(device)) {
    fail(`ops[${vfioOp}] (${ops[vfioOp]!.op})`, 'the vfio ops need "sva": true and device.groups placing every endpoint 0..devices-1 in an IOMMU group, e.g. "groups": [[0], [1, 2]]');
  }
  const prog: Program = { format: PROGRAM_FORMAT, version, device, ops };
  if (typeof raw.comment === 'string') prog.comment = raw.comment;
  return prog;
}

function int(o: Obj, field: string, min: number, max: number, dflt?: number): number {
  const v = o[field];
  if (v === undefined && dflt !== undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new FieldError(`field "${field}": must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function bool(o: Obj, field: string, dflt?: boolean): boolean {
  const v = o[field];
  if (v === undefined && dflt !== undefined) return dflt;
  if (typeof v !== 'boolean') throw new FieldError(`field "${field}": must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function oneOf<T extends string>(o: Obj, field: string, values: readonly T[], dflt?: T): T {
  const v = o[field];
  if (v === undefined && dflt !== undefined) return dflt;
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
    throw new FieldError(`field "${field}": must be one of ${values.join(', ')}, got ${JSON.stringify(v)}`);
  }
  return v as T;
}

function checkName(o: Obj, field: string): string {
  const v = o[field];
  if (typeof v !== 'string' || !NAME_RE.test(v)) {
    throw new FieldError(
      `field "${field}": must be a name (a letter, then letters, digits or _; at most 32), got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

function hex(o: Obj, field: string): string {
  const v = o[field];
  if (typeof v !== 'string' || !HEX_RE.test(v)) {
    throw new FieldError(`field "${field}": must be a hex string "0x…" of at most 16 digits, got ${JSON.stringify(v)}`);
  }
  return '0x' + v.slice(2).toLowerCase();
}

function noExtra(o: Obj, allowed: string[]): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new FieldError(`field "${k}": unknown for this operation`);
  }
}

function checkDevice(v: unknown): DeviceParams {
  if (v === undefined) return { ...DEFAULT_DEVICE, algorithms: [...DEFAULT_DEVICE.algorithms] };
  if (!isObj(v)) throw new FieldError('must be an object');
  noExtra(v, [...Object.keys(DEFAULT_DEVICE), 'groups']);
  const d = DEFAULT_DEVICE;
  const api = v.api === undefined ? d.api : v.api;
  if (typeof api !== 'string' || !STRING_RE.test(api) || api.length > LIMITS.maxString) {
    throw new FieldError(`field "api": must match [A-Za-z0-9._-]+ (at most ${LIMITS.maxString}), got ${JSON.stringify(api)}`);
  }
  const algs = v.algorithms === undefined ? d.algorithms : v.algorithms;
  if (
    !Array.isArray(algs) ||
    algs.length === 0 ||
    algs.length > 8 ||
    !algs.every((a) => typeof a === 'string' && STRING_RE.test(a) && a.length <= 16)
  ) {
    throw new FieldError(`field "algorithms": must be 1..8 names matching [A-Za-z0-9._-]+, got ${JSON.stringify(algs)}`);
  }
  const devices = int(v, 'devices', 1, LIMITS.maxDevices, d.devices);
  const sva = bool(v, 'sva', d.sva);
  const groups = v.groups === undefined ? undefined : checkGroups(v.groups, devices, sva);
  return {
    devices,
    mmio_pages: int(v, 'mmio_pages', 0, LIMITS.maxRegionPages, d.mmio_pages),
    dus_pages: int(v, 'dus_pages', 0, LIMITS.maxRegionPages, d.dus_pages),
    queue_limit: int(v, 'queue_limit', 1, LIMITS.maxQueueLimit, d.queue_limit),
    sva,
    isolate_ops: oneOf(v, 'isolate_ops', ['none', 'read', 'write', 'both'] as const, d.isolate_ops),
    isolate_state: bool(v, 'isolate_state', d.isolate_state),
    ioctl: bool(v, 'ioctl', d.ioctl),
    api,
    algorithms: [...(algs as string[])],
    ...(groups ? { groups } : {}),
  };
}

/** Does device.groups place every endpoint (what the vfio model needs to know the layout)? */
function placesEvery(d: DeviceParams): boolean {
  return d.sva && d.groups !== undefined && d.groups.flat().length === d.devices;
}

/** device.groups: disjoint, non-empty sets of existing endpoint indexes, sorted (sva only). */
function checkGroups(v: unknown, devices: number, sva: boolean): number[][] {
  const want = `1..${LIMITS.maxDevices} lists of distinct device indexes below devices (${devices}), each index in one list only`;
  if (!sva) throw new FieldError('field "groups": IOMMU groups are those of the PCI endpoints; set "sva": true');
  if (!Array.isArray(v) || v.length === 0 || v.length > LIMITS.maxDevices) throw new FieldError(`field "groups": must be ${want}, got ${JSON.stringify(v)}`);
  const seen = new Set<number>();
  return v.map((g) => {
    if (!Array.isArray(g) || g.length === 0) throw new FieldError(`field "groups": must be ${want}, got ${JSON.stringify(v)}`);
    for (const x of g) {
      if (!Number.isInteger(x) || x < 0 || x >= devices || seen.has(x)) throw new FieldError(`field "groups": must be ${want}, got ${JSON.stringify(v)}`);
      seen.add(x);
    }
    return [...(g as number[])].sort((a, b) => a - b);
  });
}

/** One field of an op, checked (the field's default when absent and it has one). */
function checkField(o: Obj, name: string, f: Field): unknown {
  const s = f.spec;
  switch (s.t) {
    case 'int': {
      const v = int(o, name, s.min, s.max, f.default as number | undefined);
      if (s.multipleOf && v % s.multipleOf !== 0) throw new FieldError(`field "${name}": must be a multiple of ${s.multipleOf}, got ${v}`);
      return v;
    }
    case 'bool':
      return bool(o, name, f.default as boolean | undefined);
    case 'enum':
      return oneOf(o, name, Object.keys(s.values), f.default as string | undefined);
    case 'handle':
      return checkName(o, name);
    case 'hex64':
      return hex(o, name);
    case 'text': {
      const v = o[name];
      if (typeof v !== 'string' || v.length > s.max || /[\x00-\x1f\x7f]/.test(v.replace(/\n$/, ''))) {
        throw new FieldError(`field "${name}": must be a string of printable characters (at most ${s.max}), got ${JSON.stringify(v)}`);
      }
      return v;
    }
    case 'ioctl': {
      const c = o[name];
      if (typeof c === 'string' && Object.hasOwn(s.names, c)) return c;
      if (typeof c === 'number' && Number.isInteger(c) && c >= 0 && c <= 0xffffffff) return c;
      throw new FieldError(`field "${name}": must be ${Object.keys(s.names).join(', ')} or a command number, got ${JSON.stringify(c)}`);
    }
  }
}

function checkOp(o: unknown, version: ProgramVersion): Op {
  if (!isObj(o)) throw new FieldError('must be an object');
  const kind = o.op;
  if (typeof kind !== 'string' || !(OP_KINDS as readonly string[]).includes(kind)) {
    throw new FieldError(`field "op": must be one of ${OP_KINDS.join(', ')}, got ${JSON.stringify(kind)}`);
  }
  const task = o.task === undefined ? ROOT_TASK : checkName(o, 'task');
  const d = descOf(kind);
  noExtra(o, ['op', 'task', 'group', ...Object.keys(d.fields)]);
  const op: Obj = { op: kind, task };
  if (o.group !== undefined) {
    if (version < 2) throw new FieldError('field "group": concurrent groups need "version": 2');
    op.group = int(o, 'group', 1, LIMITS.maxOps);
    if (Object.values(d.fields).some((f) => f.spec.t === 'handle' && f.spec.kind === 'task' && f.spec.role !== 'use')) {
      throw new FieldError(`field "group": a ${kind} creates a task and cannot be part of a concurrent group`);
    }
  }
  for (const [name, f] of Object.entries(d.fields)) {
    if (f.only !== undefined && !onlyHolds(f.only, op)) {
      if (o[name] !== undefined) throw new FieldError(`field "${name}": only with ${onlyText(f.only)}`);
      continue;
    }
    op[name] = checkField(o, name, f);
  }
  return op as unknown as Op;
}

/**
 * Concurrent groups: the ops of one group are consecutive and of different tasks (each task
 * does one thing at a time); a group number is not used again after its group ended.
 */
class Groups {
  private cur: number | undefined;
  private tasks = new Set<string>();
  private readonly done = new Set<number>();

  apply(op: Op): void {
    const g = op.group;
    if (g !== this.cur) {
      if (this.cur !== undefined) this.done.add(this.cur);
      this.cur = g;
      this.tasks = new Set();
      if (g !== undefined && this.done.has(g)) throw new FieldError(`field "group": group ${g} ended earlier; the ops of a group are consecutive`);
    }
    if (g === undefined) return;
    if (this.tasks.has(op.task)) throw new FieldError(`field "group": task "${op.task}" already has an op in group ${g}; a group's ops are of different tasks`);
    this.tasks.add(op.task);
  }
}

/**
 * Names must be created before they are used and created once; tasks must exist and be alive.
 * Whether a task *has* a descriptor or mapping of that name is not checked: using one that the
 * task does not have is a legitimate test (EBADF, SIGSEGV). Every check of an op comes before
 * any change, so a failed check leaves the scope unchanged.
 */
class Scope {
  /** descriptor, mapping and iommufd object names: one namespace */
  private readonly names: Record<Exclude<HandleKind, 'task'>, Set<string>> = { fd: new Set(), map: new Set(), obj: new Set() };
  private readonly tasks = new Set<string>([ROOT_TASK]);
  private readonly exited = new Set<string>();
  private readonly allTasks = new Set<string>([ROOT_TASK]);

  constructor(private readonly device: DeviceParams) {}

  apply(op: Op): void {
    if (!this.tasks.has(op.task)) {
      if (this.exited.has(op.task)) throw new FieldError(`field "task": task "${op.task}" has exited`);
      throw new FieldError(`field "task": no task "${op.task}" (tasks come from "${ROOT_TASK}" and fork)`);
    }
    const d = descOf(op.op);
    const o = fieldsOf(op);
    const creates: [HandleKind, string][] = [];
    for (const [field, f] of Object.entries(d.fields)) {
      const v = o[field];
      if (v === undefined) continue;
      const s = f.spec;
      if (s.t === 'int' && s.device && (v as number) >= this.device.devices) {
        throw new FieldError(`field "${field}": device ${v} does not exist (device.devices is ${this.device.devices})`);
      }
      if (s.t !== 'handle') continue;
      const name = v as string;
      if (s.kind === 'task') {
        if (this.allTasks.has(name) || creates.some(([k, n]) => k === 'task' && n === name)) {
          throw new FieldError(`field "${field}": task "${name}" already exists`);
        }
        if (this.allTasks.size >= LIMITS.maxTasks) throw new FieldError(`field "${field}": at most ${LIMITS.maxTasks} tasks`);
      } else if (s.role === 'use') {
        if (!this.names[s.kind].has(name)) throw new FieldError(`field "${field}": ${HANDLES[s.kind].noun} "${name}" is not created by an earlier op`);
      } else if (s.role === 'place' && this.names[s.kind].has(name)) {
        continue; // an existing name of the right kind: its slot
      } else {
        if (this.names.fd.has(name) || this.names.map.has(name) || this.names.obj.has(name) || creates.some(([, n]) => n === name)) {
          throw new FieldError(`field "${field}": name "${name}" is already used`);
        }
        const max = s.kind === 'fd' ? LIMITS.maxFds : s.kind === 'obj' ? LIMITS.maxObjs : LIMITS.maxMaps;
        if (this.names[s.kind].size >= max) throw new FieldError(`field "${field}": at most ${max} ${HANDLES[s.kind].noun} names`);
      }
      if (s.role !== 'use') creates.push([s.kind, name]);
    }
    if (d.extent !== undefined) {
      const [page, pages] = d.extent;
      if ((o[page] as number) + (o[pages] as number) > LIMITS.maxPages) {
        throw new FieldError(`field "${pages}": ${page} + ${pages} must be at most ${LIMITS.maxPages}`);
      }
    }
    for (const [kind, name] of creates) {
      if (kind === 'task') {
        this.tasks.add(name);
        this.allTasks.add(name);
      } else {
        this.names[kind].add(name);
      }
    }
    if (d.endsTask) {
      this.tasks.delete(op.task);
      this.exited.add(op.task);
    }
  }
}

/**
 * Drop every op that no longer makes sense after others were removed (by a minimizer): ops of
 * tasks whose fork is gone or that have exited, ops using descriptors or mappings that no op
 * creates any more, ops creating a name twice, devices beyond `device.devices`. Forward, so that
 * dropping a creation drops its users too. Uses the checker's own scope rules (a failed check
 * leaves the scope unchanged), so the result passes checkProgram whenever each op's fields do.
 */
export function repairProgram(p: Program): Program {
  const scope = new Scope(p.device);
  const kept = p.ops.filter((op) => {
    try {
      scope.apply(op);
      return true;
    } catch (e) {
      if (e instanceof FieldError) return false;
      throw e;
    }
  });
  // a group left with one op is that op alone
  const size = new Map<number, number>();
  for (const op of kept) if (op.group !== undefined) size.set(op.group, (size.get(op.group) ?? 0) + 1);
  const ops = kept.map((op) => {
    if (op.group === undefined || size.get(op.group)! > 1) return op;
    const { group: _g, ...rest } = op;
    return rest as Op;
  });
  return { ...p, ops };
}

/** The ops of each concurrent group of a program (groups of two or more ops), in order: [first index, count]. */
export function groupSpans(p: Program): [first: number, count: number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < p.ops.length; ) {
    const g = p.ops[i]!.group;
    let j = i + 1;
    if (g !== undefined) while (j < p.ops.length && p.ops[j]!.group === g) j++;
    if (j - i > 1) out.push([i, j - i]);
    i = j;
  }
  return out;
}

/** The canonical JSON text of a program (stable field order, two-space indent). */
export function formatProgram(p: Program): string {
  const ops = p.ops.map((op) => '    ' + JSON.stringify(op)).join(',\n');
  const head: Record<string, unknown> = { format: p.format, version: p.version };
  if (p.comment !== undefined) head.comment = p.comment;
  head.device = p.device;
  const headText = JSON.stringify(head, null, 2);
  return `${headText.slice(0, -2)},\n  "ops": [\n${ops}\n  ]\n}\n`;
}
