/**
 * The line protocol between host and guest agent (docs/agent-protocol.md): encoding programs
 * into host lines, and parsing agent lines defensively (guest output is untrusted).
 */
import { HANDLES, WIRE_ARGS, wireLayout, type Field, type HandleKind } from '../ops/describe.js';
import { createdNames, descOf, fieldsOf } from '../ops/index.js';
import type { DeviceParams, Op, Program } from '../program/types.js';
import { ROOT_TASK } from '../program/types.js';
import { groupSpans } from '../program/parse.js';

export const PROTO_VERSION = 1;
/** Longest protocol line, without its newline (the agent's MAX_LINE). */
export const MAX_LINE = 4096;

export function hexEncode(s: string): string {
  return s.length === 0 ? '-' : Buffer.from(s, 'utf8').toString('hex');
}

export function hexDecode(h: string): string | undefined {
  if (h === '-') return '';
  if (!/^(?:[0-9a-f]{2})+$/i.test(h)) return undefined;
  return Buffer.from(h, 'hex').toString('latin1');
}

/** Slot numbers for the symbolic names of a program, by handle kind. */
export interface SlotTable {
  tasks: Map<string, number>;
  fds: Map<string, number>;
  maps: Map<string, number>;
  objs: Map<string, number>;
}

/** Names get slots in the order the program first creates them (task t0 is slot 0). */
export function slotTable(p: Program): SlotTable {
  const t: SlotTable = { tasks: new Map<string, number>([[ROOT_TASK, 0]]), fds: new Map(), maps: new Map(), objs: new Map() };
  for (const op of p.ops) {
    for (const [kind, name] of createdNames(op)) {
      const m = t[HANDLES[kind].slots];
      if (!m.has(name)) m.set(name, m.size);
    }
  }
  return t;
}

function b(v: boolean): number {
  return v ? 1 : 0;
}

const ISOLATE = { none: 0, read: 1, write: 2, both: 3 } as const;

/**
 * How the agent gives a program a fresh test device: `reload` (rmmod and insmod, the D line's
 * default) or `reset` (the module's control file: down at the end of a program, up with the
 * next one's parameters; a 13th D field of 1). Both leave the device as a fresh load does
 * (docs/test-device.md "Reset").
 */
export type DeviceSetup = 'reload' | 'reset';

export function encodeDevice(progId: number, d: DeviceParams, setup: DeviceSetup = 'reload'): string {
  const fields: (string | number)[] = [
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
  ];
  if (setup === 'reset') fields.push(1);
  return fields.join(' ');
}

/** The wire number of one field's value. */
function wireValue(f: Field, v: unknown, slot: (kind: HandleKind, name: string) => number): number {
  const s = f.spec;
  switch (s.t) {
    case 'int':
      return v as number;
    case 'bool':
      return b(v as boolean);
    case 'enum':
      return s.values[v as string]!.wire;
    case 'handle':
      return v === undefined ? -1 : slot(s.kind, v as string);
    case 'ioctl':
      return typeof v === 'number' ? v : s.names[v as string]!.number;
    case 'hex64':
    case 'text':
      throw new Error('a string field is not a number');
  }
}

/** Encode one op as an `O` line. */
export function encodeOp(idx: number, op: Op, t: SlotTable): string {
  const task = t.tasks.get(op.task);
  if (task === undefined) throw new Error(`op ${idx}: unknown task ${op.task}`);
  const slot = (kind: HandleKind, name: string) => {
    const s = t[HANDLES[kind].slots].get(name);
    if (s === undefined) throw new Error(`op ${idx}: unknown ${HANDLES[kind].noun} ${name}`);
    return s;
  };
  const d = descOf(op.op);
  const o = fieldsOf(op);
  const layout = wireLayout(d);
  const a = layout.args.map((arg) =>
    typeof arg === 'string'
      ? wireValue(d.fields[arg]!, o[arg], slot)
      : Object.entries(arg.bits).reduce((acc, [field, bit]) => acc | (o[field] === true ? bit : 0), 0),
  );
  while (a.length < WIRE_ARGS) a.push(0);
  const str = layout.str !== undefined ? ((o[layout.str] as string | undefined) ?? '') : '';
  return ['O', idx, task, d.opcode, ...a, hexEncode(str)].join(' ');
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

/** All host lines for running a program in batch mode (B lines: its concurrent groups). */
export function encodeProgram(progId: number, p: Program, setup: DeviceSetup = 'reload'): string[] {
  const t = slotTable(p);
  return [
    encodeDevice(progId, p.device, setup),
    ...p.ops.map((op, i) => encodeOp(i, op, t)),
    ...groupSpans(p).map(([first, n]) => `B ${first} ${n}`),
    `G ${progId} ${t.tasks.size}`,
  ];
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
      /** an op of a concurrent group: when it began and ended (guest CLOCK_MONOTONIC, ns) */
      t0?: number;
      t1?: number;
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
  | {
      t: 'endpoint-left';
      prog: number;
      /** the endpoint's PCI address */
      address: string;
      /** unbind from vfio-pci, or bind to the test driver, failed at the program's end */
      what: 'unbind' | 'bind';
      /** the write's errno; ETIMEDOUT when it did not return in time */
      errno: number;
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
        (f.length !== 8 && f.length !== 10)
      ) {
        return garbage;
      }
      if (f.length === 10) {
        const t0 = n(8);
        const t1 = n(9);
        if (t0 === undefined || t1 === undefined || t0 < 0 || t1 < t0) return garbage;
        return { t: 'result', prog, idx, ret: BigInt(retS), errno, signal, data, aux, t0, t1 };
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
    case 'L': {
      const prog = n(1);
      const address = h(2);
      const what = f[3];
      const errno = n(4);
      if (prog === undefined || address === undefined || !/^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/.test(address) || (what !== 'unbind' && what !== 'bind') || errno === undefined || f.length !== 5) {
        return garbage;
      }
      return { t: 'endpoint-left', prog, address, what, errno };
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
