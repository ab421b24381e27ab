/**
 * Turn the agent's raw result of one op (docs/agent-protocol.md) into an Outcome, the terms the
 * model predicts in. Numbers that are not part of any contract (fd numbers, addresses) are
 * dropped here; anything the agent reports that cannot happen is an AgentAnomaly (a harness
 * problem, never a kernel finding).
 */
import type { Op } from '../program/types.js';
import { errnoName, signalName } from '../program/errno.js';
import type { Outcome } from '../program/outcome.js';
import { SVT_PAGE_SIZE } from '../device/abi.js';
import { descOf } from '../ops/index.js';
import { slotAddress } from './conventions.js';
import type { SlotTable } from './wire.js';

export interface RawResult {
  ret: bigint;
  errno: number;
  signal: number;
  data: string;
  aux: string;
  /** an op of a concurrent group: when it began and ended (guest CLOCK_MONOTONIC, ns) */
  t0?: number;
  t1?: number;
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
  const d = descOf(op.op);
  if (d.placed !== undefined) {
    // the mapping it made must be at its slot: the address plan of the program depends on it
    const at = d.placed(op as never);
    const slot = slots.maps.get(at.map);
    if (slot !== undefined) {
      const want = slotAddress(slot) + BigInt(at.page * SVT_PAGE_SIZE);
      if (parseAddr(raw.aux) !== want) {
        throw new AgentAnomaly(`${op.op}: mapping landed at ${raw.aux || '?'}, not at its slot 0x${want.toString(16)}`);
      }
    }
  }
  switch (d.result) {
    case 'data':
    case 'text':
      return { kind: 'ok', value: raw.data };
    case 'return':
      return { kind: 'ok', value: raw.ret.toString() };
    case 'none':
      return { kind: 'ok' };
  }
}

function parseAddr(s: string): bigint | undefined {
  return /^0x[0-9a-f]+$/i.test(s) ? BigInt(s) : undefined;
}
