/**
 * The line protocol between host and guest agent (docs/agent-protocol.md): encoding programs
 * into host lines, and parsing agent lines defensively (guest output is untrusted).
 */
import type { DeviceParams, IoctlCmd, Op, Program } from '../program/types.js';
import { ROOT_TASK, SYSFS_ATTRS } from '../program/types.js';

export const PROTO_VERSION = 1;
export const MAX_LINE = 4096;

/** Base and stride of the agent's mapping slots (see docs/agent-protocol.md). */
export const MAP_BASE = 0x2000_0000_0000n;
export const MAP_STRIDE = 0x100_0000n;

export const OPCODES = {
  open: 1,
  close: 2,
  dup: 3,
  mmap: 4,
  alloc: 5,
  munmap: 6,
  mremap: 7,
  madvise: 8,
  touch: 9,
  submit: 10,
  ioctl: 11,
  poll: 12,
  fork: 13,
  exit: 14,
  remove: 15,
  add: 16,
  sysfs_read: 17,
  sysfs_write: 18,
} as const satisfies Record<Op['op'], number>;

/** _IO('W', nr) */
const IO_W = (nr: number) => (0x57 << 8) | nr;
export const IOCTL_NUMBERS: Record<Exclude<IoctlCmd, number>, number> = {
  START_Q: IO_W(0),
  PUT_Q: IO_W(1),
  PING: IO_W(0x20),
};

export function ioctlNumber(cmd: IoctlCmd): number {
  return typeof cmd === 'number' ? cmd : IOCTL_NUMBERS[cmd];
}

export function hexEncode(s: string): string {
  return s.length === 0 ? '-' : Buffer.from(s, 'utf8').toString('hex');
}

export function hexDecode(h: string): string | undefined {
  if (h === '-') return '';
  if (!/^(?:[0-9a-f]{2})+$/i.test(h)) return undefined;
  return Buffer.from(h, 'hex').toString('latin1');
}

/** Slot numbers for the symbolic names of a program. */
export interface SlotTable {
  tasks: Map<string, number>;
  fds: Map<string, number>;
  maps: Map<string, number>;
}

export function slotTable(p: Program): SlotTable {
  const tasks = new Map<string, number>([[ROOT_TASK, 0]]);
  const fds = new Map<string, number>();
  const maps = new Map<string, number>();
  const fd = (n: string) => {
    if (!fds.has(n)) fds.set(n, fds.size);
  };
  const map = (n: string) => {
    if (!maps.has(n)) maps.set(n, maps.size);
  };
  for (const op of p.ops) {
    switch (op.op) {
      case 'open':
        fd(op.fd);
        break;
      case 'dup':
        fd(op.as);
        break;
      case 'mmap':
      case 'alloc':
        map(op.map);
        break;
      case 'mremap':
        if (op.to !== undefined) map(op.to);
        break;
      case 'fork':
        if (!tasks.has(op.child)) tasks.set(op.child, tasks.size);
        break;
      default:
        break;
    }
  }
  return { tasks, fds, maps };
}

/** The address the agent gives mapping slot s. */
export function slotAddress(slot: number): bigint {
  return MAP_BASE + BigInt(slot) * MAP_STRIDE;
}

function b(v: boolean): number {
  return v ? 1 : 0;
}

const ISOLATE = { none: 0, read: 1, write: 2, both: 3 } as const;

export function encodeDevice(progId: number, d: DeviceParams): string {
  return [
    'D',
    progId,
    d.devices,
    d.mmio_pages,
    d.dus_pages,
    d.queue_limit,
    b(d.sva),
    ISOLATE[d.isolate_ops],
    b(d.isolate_state),
    b(d.ioctl),
    hexEncode(d.api),
    hexEncode(d.algorithms.join(',')),
  ].join(' ');
}

const WORK = { write: 1, read: 2, invalid: 7 } as const;
const PROT = { none: 0, r: 1, rw: 3 } as const;
const VIA = { path: 0, mknod: 1, procfd: 2 } as const;

/** Encode one op as an `O` line. */
export function encodeOp(idx: number, op: Op, t: SlotTable): string {
  const task = t.tasks.get(op.task);
  if (task === undefined) throw new Error(`op ${idx}: unknown task ${op.task}`);
  const F = (n: string) => {
    const s = t.fds.get(n);
    if (s === undefined) throw new Error(`op ${idx}: unknown descriptor ${n}`);
    return s;
  };
  const M = (n: string) => {
    const s = t.maps.get(n);
    if (s === undefined) throw new Error(`op ${idx}: unknown mapping ${n}`);
    return s;
  };
  let a: number[] = [];
  let str = '';
  switch (op.op) {
    case 'open':
      a = [F(op.fd), op.dev, VIA[op.via], op.of !== undefined ? F(op.of) : -1];
      break;
    case 'close':
      a = [F(op.fd)];
      break;
    case 'dup':
      a = [F(op.fd), F(op.as)];
      break;
    case 'mmap':
      a = [M(op.map), F(op.fd), op.region, op.pages, PROT[op.prot], b(op.shared)];
      break;
    case 'alloc':
      a = [M(op.map), op.pages];
      break;
    case 'munmap':
      a = [M(op.map), op.page, op.pages];
      break;
    case 'mremap':
      a = [
        M(op.map),
        op.page,
        op.old_pages,
        op.new_pages,
        (op.move ? 1 : 0) | (op.dontunmap ? 2 : 0),
        op.to !== undefined ? M(op.to) : -1,
      ];
      break;
    case 'madvise':
      a = [M(op.map), op.page, op.pages, 0];
      break;
    case 'touch':
      a = [M(op.map), op.page, op.offset, op.access === 'write' ? 1 : 0];
      str = op.value ?? '';
      break;
    case 'submit':
      a = [M(op.mmio), M(op.dus), WORK[op.work], M(op.target), op.page, op.offset, b(op.ack)];
      str = op.value ?? '';
      break;
    case 'ioctl':
      a = [F(op.fd), ioctlNumber(op.cmd)];
      break;
    case 'poll':
      a = [F(op.fd), op.timeout_ms];
      break;
    case 'fork': {
      const c = t.tasks.get(op.child);
      if (c === undefined) throw new Error(`op ${idx}: unknown task ${op.child}`);
      a = [c];
      break;
    }
    case 'exit':
      a = [];
      break;
    case 'remove':
    case 'add':
      a = [op.dev];
      break;
    case 'sysfs_read':
      a = [op.dev, SYSFS_ATTRS.indexOf(op.attr)];
      break;
    case 'sysfs_write':
      a = [op.dev, SYSFS_ATTRS.indexOf(op.attr)];
      str = op.value;
      break;
  }
  while (a.length < 8) a.push(0);
  return ['O', idx, task, OPCODES[op.op], ...a, hexEncode(str)].join(' ');
}

/** Longest executable path the agent accepts in a U line (bytes). */
export const EXEC_PATH_MAX = 255;
/** Longest run of an executable the agent accepts (ms). */
export const EXEC_TIMEOUT_MAX_MS = 600_000;

/**
 * The host lines that run an executable in the guest while the program's test device is set
 * up (D, then U; docs/agent-protocol.md "Executables").
 */
export function encodeExec(progId: number, device: DeviceParams, path: string, timeoutMs: number): string[] {
  if (!path.startsWith('/') || Buffer.byteLength(path, 'utf8') > EXEC_PATH_MAX || path.includes('\0') || path.includes('\n')) {
    throw new Error(`executable path must be absolute and at most ${EXEC_PATH_MAX} bytes: ${JSON.stringify(path)}`);
  }
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > EXEC_TIMEOUT_MAX_MS) {
    throw new Error(`executable timeout must be 1..${EXEC_TIMEOUT_MAX_MS} ms, got ${timeoutMs}`);
  }
  return [encodeDevice(progId, device), `U ${progId} ${hexEncode(path)} ${timeoutMs}`];
}

/** All host lines for running a program in batch mode. */
export function encodeProgram(progId: number, p: Program): string[] {
  const t = slotTable(p);
  return [encodeDevice(progId, p.device), ...p.ops.map((op, i) => encodeOp(i, op, t)), `G ${progId} ${t.tasks.size}`];
}

// ---------------------------------------------------------------------------------------------
// Agent → host

export type AgentMsg =
  | { t: 'hello'; proto: number; release: string }
  | { t: 'kmsg'; seq: number; level: number; usec: number; text: string }
  | { t: 'started'; prog: number }
  | {
      t: 'result';
      prog: number;
      idx: number;
      ret: bigint;
      errno: number;
      signal: number;
      data: string;
      aux: string;
    }
  | { t: 'task-end'; prog: number; task: number; how: 'signal' | 'status'; value: number }
  | { t: 'timeout'; prog: number; idx: number; ms: number }
  | { t: 'finished'; prog: number; status: number; msg: string }
  | { t: 'exec-output'; prog: number; data: string }
  | {
      t: 'exec-end';
      prog: number;
      /** exit status, -1 if it did not exit (killed by a signal, or stuck) */
      exit: number;
      /** the signal that killed it, 0 if none */
      signal: number;
      timedOut: boolean;
      /** output bytes the agent did not relay (over its cap) */
      dropped: number;
    }
  | { t: 'pong'; nonce: string }
  | { t: 'file'; nonce: string; errno: number; content: string }
  | { t: 'error'; msg: string }
  | { t: 'garbage'; line: string };

const INT_RE = /^-?\d{1,20}$/;

/** Parse one agent line. Anything malformed becomes `garbage` (never an exception). */
export function parseAgentLine(line: string): AgentMsg {
  const garbage: AgentMsg = { t: 'garbage', line: line.slice(0, 512) };
  if (line.length > MAX_LINE) return garbage;
  const f = line.split(' ');
  const n = (i: number): number | undefined => {
    const v = f[i];
    if (v === undefined || !INT_RE.test(v)) return undefined;
    const x = Number(v);
    return Number.isSafeInteger(x) ? x : undefined;
  };
  const h = (i: number): string | undefined => (f[i] === undefined ? undefined : hexDecode(f[i]!));
  switch (f[0]) {
    case 'H': {
      const proto = n(2);
      const rel = h(3);
      if (f[1] !== 'svadiff-agent' || proto === undefined || rel === undefined || f.length !== 4) return garbage;
      return { t: 'hello', proto, release: rel };
    }
    case 'K': {
      const seq = n(1);
      const level = n(2);
      const usec = n(3);
      const text = h(4);
      if (seq === undefined || level === undefined || usec === undefined || text === undefined || f.length !== 5) {
        return garbage;
      }
      return { t: 'kmsg', seq, level, usec, text };
    }
    case 'S': {
      const prog = n(1);
      if (prog === undefined || f.length !== 2) return garbage;
      return { t: 'started', prog };
    }
    case 'R': {
      const prog = n(1);
      const idx = n(2);
      const retS = f[3];
      const errno = n(4);
      const signal = n(5);
      const data = h(6);
      const aux = h(7);
      if (
        prog === undefined ||
        idx === undefined ||
        retS === undefined ||
        !INT_RE.test(retS) ||
        errno === undefined ||
        signal === undefined ||
        data === undefined ||
        aux === undefined ||
        f.length !== 8
      ) {
        return garbage;
      }
      return { t: 'result', prog, idx, ret: BigInt(retS), errno, signal, data, aux };
    }
    case 'X': {
      const prog = n(1);
      const task = n(2);
      const how = f[3];
      const value = n(4);
      if (prog === undefined || task === undefined || value === undefined || (how !== 'signal' && how !== 'status')) {
        return garbage;
      }
      return { t: 'task-end', prog, task, how, value };
    }
    case 'T': {
      const prog = n(1);
      const idx = n(2);
      const ms = n(3);
      if (prog === undefined || idx === undefined || ms === undefined) return garbage;
      return { t: 'timeout', prog, idx, ms };
    }
    case 'F': {
      const prog = n(1);
      const status = n(2);
      const msg = h(3);
      if (prog === undefined || status === undefined || msg === undefined) return garbage;
      return { t: 'finished', prog, status, msg };
    }
    case 'w': {
      const prog = n(1);
      const data = h(2);
      if (prog === undefined || data === undefined || f.length !== 3) return garbage;
      return { t: 'exec-output', prog, data };
    }
    case 'W': {
      const prog = n(1);
      const exit = n(2);
      const signal = n(3);
      const timedOut = n(4);
      const dropped = n(5);
      if (
        prog === undefined ||
        exit === undefined ||
        signal === undefined ||
        (timedOut !== 0 && timedOut !== 1) ||
        dropped === undefined ||
        dropped < 0 ||
        f.length !== 6
      ) {
        return garbage;
      }
      return { t: 'exec-end', prog, exit, signal, timedOut: timedOut === 1, dropped };
    }
    case 'P':
      if (f.length !== 2 || !/^[0-9A-Za-z]{1,32}$/.test(f[1] ?? '')) return garbage;
      return { t: 'pong', nonce: f[1]! };
    case 'N': {
      const errno = n(2);
      const content = h(3);
      if (f.length !== 4 || !/^[0-9A-Za-z]{1,32}$/.test(f[1] ?? '') || errno === undefined || content === undefined) {
        return garbage;
      }
      return { t: 'file', nonce: f[1]!, errno, content };
    }
    case 'E': {
      const msg = h(1);
      if (msg === undefined) return garbage;
      return { t: 'error', msg };
    }
    default:
      return garbage;
  }
}
