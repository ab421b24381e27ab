/**
 * Turn the agent's raw result of one op (docs/agent-protocol.md) into an Outcome, the terms the
 * model predicts in. Numbers that are not part of any contract (fd numbers, addresses) are
 * dropped here; anything the agent reports that cannot happen is an AgentAnomaly (a harness
 * problem, never a kernel finding).
 */
import type { Op } from '../program/types.js';
import { errnoName, signalName } from '../program/errno.js';
import type { Outcome } from '../program/outcome.js';
import { slotAddress, type SlotTable } from './wire.js';

export interface RawResult {
  ret: bigint;
  errno: number;
  signal: number;
  data: string;
  aux: string;
}

export class AgentAnomaly extends Error {}

const SIGBUS = 7;
const SIGSEGV = 11;
/** errno the agent reports for an op whose task died while doing it */
export const ERRNO_TASK_DIED = -1;

export function observe(op: Op, raw: RawResult, slots: SlotTable): Outcome {
  if (raw.errno === ERRNO_TASK_DIED) return { kind: 'died', signal: signalName(raw.signal) };
  if (raw.signal !== 0) {
    if (raw.signal === SIGSEGV) return { kind: 'signal', signal: 'SIGSEGV' };
    if (raw.signal === SIGBUS) return { kind: 'signal', signal: 'SIGBUS' };
    throw new AgentAnomaly(`op ${op.op}: agent reports signal ${raw.signal}, which it does not catch`);
  }
  if (raw.ret < 0n) {
    if (raw.errno <= 0) throw new AgentAnomaly(`op ${op.op}: ret ${raw.ret} with errno ${raw.errno}`);
    return { kind: 'errno', errno: errnoName(raw.errno) };
  }
  switch (op.op) {
    case 'open':
      // the path the agent opened: it shows which node (and uacce id) the open reached
      return { kind: 'ok', value: raw.data };
    case 'dup':
    case 'close':
    case 'munmap':
    case 'madvise':
    case 'fork':
    case 'exit':
    case 'remove':
    case 'add':
      return { kind: 'ok' };
    case 'mmap':
    case 'alloc':
      checkAddress(op.op, raw.aux, slots.maps.get(op.map));
      return { kind: 'ok' };
    case 'mremap': {
      const slot = op.move || op.dontunmap ? slots.maps.get(op.to!) : slots.maps.get(op.map);
      const expected = slot === undefined ? undefined : slotAddress(slot) + BigInt(op.move || op.dontunmap ? 0 : op.page * 4096);
      if (expected !== undefined && raw.aux !== '' && parseAddr(raw.aux) !== expected) {
        throw new AgentAnomaly(`mremap: result at ${raw.aux}, expected 0x${expected.toString(16)}`);
      }
      return { kind: 'ok' };
    }
    case 'touch':
    case 'poll':
    case 'submit':
    case 'sysfs_read':
      return { kind: 'ok', value: raw.data };
    case 'ioctl':
    case 'sysfs_write':
      return { kind: 'ok', value: raw.ret.toString() };
  }
}

function parseAddr(s: string): bigint | undefined {
  return /^0x[0-9a-f]+$/i.test(s) ? BigInt(s) : undefined;
}

function checkAddress(kind: string, aux: string, slot: number | undefined): void {
  if (slot === undefined) return;
  const got = parseAddr(aux);
  if (got !== slotAddress(slot)) {
    throw new AgentAnomaly(`${kind}: mapping landed at ${aux || '?'}, not at its slot 0x${slotAddress(slot).toString(16)}`);
  }
}
