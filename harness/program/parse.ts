import { UserError } from '../util/errors.js';
import {
  DEFAULT_DEVICE,
  LIMITS,
  OP_KINDS,
  PROGRAM_FORMAT,
  PROGRAM_VERSION,
  ROOT_TASK,
  SYSFS_ATTRS,
  type DeviceParams,
  type IoctlCmd,
  type Op,
  type OpKind,
  type Program,
} from './types.js';

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
  if (raw.version !== PROGRAM_VERSION) {
    fail('field "version"', `this svadiff reads version ${PROGRAM_VERSION}, got ${JSON.stringify(raw.version)}`);
  }
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
  raw.ops.forEach((o: unknown, i: number) => {
    const kind = isObj(o) && typeof o.op === 'string' ? o.op : '?';
    try {
      const op = checkOp(o);
      scope.apply(op);
      ops.push(op);
    } catch (e) {
      if (e instanceof FieldError) fail(`ops[${i}] (${kind})`, e.message);
      throw e;
    }
  });
  const prog: Program = { format: PROGRAM_FORMAT, version: PROGRAM_VERSION, device, ops };
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

function name(o: Obj, field: string): string {
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
  noExtra(v, Object.keys(DEFAULT_DEVICE));
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
  return {
    devices: int(v, 'devices', 1, LIMITS.maxDevices, d.devices),
    mmio_pages: int(v, 'mmio_pages', 0, LIMITS.maxRegionPages, d.mmio_pages),
    dus_pages: int(v, 'dus_pages', 0, LIMITS.maxRegionPages, d.dus_pages),
    queue_limit: int(v, 'queue_limit', 1, LIMITS.maxQueueLimit, d.queue_limit),
    sva: bool(v, 'sva', d.sva),
    isolate_ops: oneOf(v, 'isolate_ops', ['none', 'read', 'write', 'both'] as const, d.isolate_ops),
    isolate_state: bool(v, 'isolate_state', d.isolate_state),
    ioctl: bool(v, 'ioctl', d.ioctl),
    api,
    algorithms: [...(algs as string[])],
  };
}

const P = LIMITS.maxPages;

function checkOp(o: unknown): Op {
  if (!isObj(o)) throw new FieldError('must be an object');
  const kind = o.op;
  if (typeof kind !== 'string' || !(OP_KINDS as readonly string[]).includes(kind)) {
    throw new FieldError(`field "op": must be one of ${OP_KINDS.join(', ')}, got ${JSON.stringify(kind)}`);
  }
  const task = o.task === undefined ? ROOT_TASK : name(o, 'task');
  const k = kind as OpKind;
  switch (k) {
    case 'open': {
      noExtra(o, ['op', 'task', 'fd', 'dev', 'via', 'of']);
      const via = oneOf(o, 'via', ['path', 'mknod', 'procfd'] as const, 'path');
      const op: Op = { op: k, task, fd: name(o, 'fd'), dev: int(o, 'dev', 0, LIMITS.maxDevices - 1, 0), via };
      if (via === 'procfd') op.of = name(o, 'of');
      else if (o.of !== undefined) throw new FieldError('field "of": only with via "procfd"');
      return op;
    }
    case 'close':
      noExtra(o, ['op', 'task', 'fd']);
      return { op: k, task, fd: name(o, 'fd') };
    case 'dup':
      noExtra(o, ['op', 'task', 'fd', 'as']);
      return { op: k, task, fd: name(o, 'fd'), as: name(o, 'as') };
    case 'mmap':
      noExtra(o, ['op', 'task', 'map', 'fd', 'region', 'pages', 'prot', 'shared']);
      return {
        op: k,
        task,
        map: name(o, 'map'),
        fd: name(o, 'fd'),
        region: int(o, 'region', 0, 1024),
        pages: int(o, 'pages', 1, P),
        prot: oneOf(o, 'prot', ['r', 'rw', 'none'] as const, 'rw'),
        shared: bool(o, 'shared', true),
      };
    case 'alloc':
      noExtra(o, ['op', 'task', 'map', 'pages']);
      return { op: k, task, map: name(o, 'map'), pages: int(o, 'pages', 1, P, 1) };
    case 'munmap':
      noExtra(o, ['op', 'task', 'map', 'page', 'pages']);
      return { op: k, task, map: name(o, 'map'), page: int(o, 'page', 0, P - 1, 0), pages: int(o, 'pages', 1, P) };
    case 'mremap': {
      noExtra(o, ['op', 'task', 'map', 'page', 'old_pages', 'new_pages', 'move', 'dontunmap', 'to']);
      const op: Op = {
        op: k,
        task,
        map: name(o, 'map'),
        page: int(o, 'page', 0, P - 1, 0),
        old_pages: int(o, 'old_pages', 1, P),
        new_pages: int(o, 'new_pages', 1, P),
        move: bool(o, 'move', false),
        dontunmap: bool(o, 'dontunmap', false),
      };
      if (op.move || op.dontunmap) op.to = name(o, 'to');
      else if (o.to !== undefined) throw new FieldError('field "to": only with move or dontunmap');
      return op;
    }
    case 'madvise':
      noExtra(o, ['op', 'task', 'map', 'page', 'pages', 'advice']);
      return {
        op: k,
        task,
        map: name(o, 'map'),
        page: int(o, 'page', 0, P - 1, 0),
        pages: int(o, 'pages', 1, P),
        advice: oneOf(o, 'advice', ['dofork'] as const, 'dofork'),
      };
    case 'touch': {
      noExtra(o, ['op', 'task', 'map', 'page', 'offset', 'access', 'value']);
      const access = oneOf(o, 'access', ['read', 'write'] as const);
      const offset = int(o, 'offset', 0, 4088, 0);
      if (offset % 8 !== 0) throw new FieldError(`field "offset": must be a multiple of 8, got ${offset}`);
      const op: Op = { op: k, task, map: name(o, 'map'), page: int(o, 'page', 0, P - 1, 0), offset, access };
      if (access === 'write') op.value = hex(o, 'value');
      else if (o.value !== undefined) throw new FieldError('field "value": only with access "write"');
      return op;
    }
    case 'submit': {
      noExtra(o, ['op', 'task', 'mmio', 'dus', 'work', 'target', 'page', 'offset', 'value', 'ack']);
      const work = oneOf(o, 'work', ['write', 'read', 'invalid'] as const);
      const offset = int(o, 'offset', 0, 4088, 0);
      if (offset % 8 !== 0) throw new FieldError(`field "offset": must be a multiple of 8, got ${offset}`);
      const op: Op = {
        op: k,
        task,
        mmio: name(o, 'mmio'),
        dus: name(o, 'dus'),
        work,
        target: name(o, 'target'),
        page: int(o, 'page', 0, P - 1, 0),
        offset,
        ack: bool(o, 'ack', true),
      };
      if (work === 'write') op.value = hex(o, 'value');
      else if (o.value !== undefined) throw new FieldError('field "value": only with work "write"');
      return op;
    }
    case 'ioctl': {
      noExtra(o, ['op', 'task', 'fd', 'cmd']);
      const c = o.cmd;
      let cmd: IoctlCmd;
      if (c === 'START_Q' || c === 'PUT_Q' || c === 'PING') cmd = c;
      else if (typeof c === 'number' && Number.isInteger(c) && c >= 0 && c <= 0xffffffff) cmd = c;
      else throw new FieldError(`field "cmd": must be START_Q, PUT_Q, PING or a command number, got ${JSON.stringify(c)}`);
      return { op: k, task, fd: name(o, 'fd'), cmd };
    }
    case 'poll':
      noExtra(o, ['op', 'task', 'fd', 'timeout_ms']);
      return { op: k, task, fd: name(o, 'fd'), timeout_ms: int(o, 'timeout_ms', 0, LIMITS.maxPollMs, 0) };
    case 'fork':
      noExtra(o, ['op', 'task', 'child']);
      return { op: k, task, child: name(o, 'child') };
    case 'exit':
      noExtra(o, ['op', 'task']);
      return { op: k, task };
    case 'remove':
    case 'add':
      noExtra(o, ['op', 'task', 'dev']);
      return { op: k, task, dev: int(o, 'dev', 0, LIMITS.maxDevices - 1, 0) };
    case 'sysfs_read':
      noExtra(o, ['op', 'task', 'dev', 'attr']);
      return { op: k, task, dev: int(o, 'dev', 0, LIMITS.maxDevices - 1, 0), attr: oneOf(o, 'attr', SYSFS_ATTRS) };
    case 'sysfs_write': {
      noExtra(o, ['op', 'task', 'dev', 'attr', 'value']);
      const value = o.value;
      if (typeof value !== 'string' || value.length > LIMITS.maxString || /[\x00-\x1f\x7f]/.test(value.replace(/\n$/, ''))) {
        throw new FieldError(`field "value": must be a string of printable characters (at most ${LIMITS.maxString}), got ${JSON.stringify(value)}`);
      }
      return { op: k, task, dev: int(o, 'dev', 0, LIMITS.maxDevices - 1, 0), attr: oneOf(o, 'attr', SYSFS_ATTRS), value };
    }
  }
}

/**
 * Names must be created before they are used and created once; tasks must exist and be alive.
 * Whether a task *has* a descriptor or mapping of that name is not checked: using one that the
 * task does not have is a legitimate test (EBADF, SIGSEGV).
 */
class Scope {
  private readonly fds = new Set<string>();
  private readonly maps = new Set<string>();
  private readonly tasks = new Set<string>([ROOT_TASK]);
  private readonly exited = new Set<string>();
  private readonly allTasks = new Set<string>([ROOT_TASK]);

  constructor(private readonly device: DeviceParams) {}

  apply(op: Op): void {
    if (!this.tasks.has(op.task)) {
      if (this.exited.has(op.task)) throw new FieldError(`field "task": task "${op.task}" has exited`);
      throw new FieldError(`field "task": no task "${op.task}" (tasks come from "${ROOT_TASK}" and fork)`);
    }
    const useFd = (n: string, f = 'fd') => {
      if (!this.fds.has(n)) throw new FieldError(`field "${f}": descriptor "${n}" is not created by an earlier op`);
    };
    const newFd = (n: string, f: string) => {
      if (this.fds.has(n) || this.maps.has(n)) throw new FieldError(`field "${f}": name "${n}" is already used`);
      if (this.fds.size >= LIMITS.maxFds) throw new FieldError(`field "${f}": at most ${LIMITS.maxFds} descriptor names`);
      this.fds.add(n);
    };
    const useMap = (n: string, f = 'map') => {
      if (!this.maps.has(n)) throw new FieldError(`field "${f}": mapping "${n}" is not created by an earlier op`);
    };
    const newMap = (n: string, f: string) => {
      if (this.maps.has(n) || this.fds.has(n)) throw new FieldError(`field "${f}": name "${n}" is already used`);
      if (this.maps.size >= LIMITS.maxMaps) throw new FieldError(`field "${f}": at most ${LIMITS.maxMaps} mapping names`);
      this.maps.add(n);
    };
    const dev = (d: number) => {
      if (d >= this.device.devices) {
        throw new FieldError(`field "dev": device ${d} does not exist (device.devices is ${this.device.devices})`);
      }
    };
    switch (op.op) {
      case 'open':
        dev(op.dev);
        if (op.of !== undefined) useFd(op.of, 'of');
        newFd(op.fd, 'fd');
        break;
      case 'close':
      case 'ioctl':
      case 'poll':
        useFd(op.fd);
        break;
      case 'dup':
        useFd(op.fd);
        newFd(op.as, 'as');
        break;
      case 'mmap':
        useFd(op.fd);
        newMap(op.map, 'map');
        break;
      case 'alloc':
        newMap(op.map, 'map');
        break;
      case 'munmap':
      case 'madvise':
      case 'touch':
        useMap(op.map);
        if (op.op !== 'touch' && op.page + op.pages > LIMITS.maxPages) {
          throw new FieldError(`field "pages": page + pages must be at most ${LIMITS.maxPages}`);
        }
        break;
      case 'mremap':
        useMap(op.map);
        if (op.to !== undefined) newMap(op.to, 'to');
        break;
      case 'submit':
        useMap(op.mmio, 'mmio');
        useMap(op.dus, 'dus');
        useMap(op.target, 'target');
        break;
      case 'fork':
        if (this.allTasks.has(op.child)) throw new FieldError(`field "child": task "${op.child}" already exists`);
        if (this.allTasks.size >= LIMITS.maxTasks) throw new FieldError(`field "child": at most ${LIMITS.maxTasks} tasks`);
        this.tasks.add(op.child);
        this.allTasks.add(op.child);
        break;
      case 'exit':
        this.tasks.delete(op.task);
        this.exited.add(op.task);
        break;
      case 'remove':
      case 'add':
      case 'sysfs_read':
      case 'sysfs_write':
        dev(op.dev);
        break;
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
  const ops = p.ops.filter((op) => {
    try {
      scope.apply(op);
      return true;
    } catch (e) {
      if (e instanceof FieldError) return false;
      throw e;
    }
  });
  return { ...p, ops };
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
