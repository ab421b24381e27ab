/**
 * The reference model's ops: one `check` per op kind, in the shape of fast-check's commands —
 * check on the model (what the kernel is meant to do: an outcome, the rule that decides it, the
 * changes to a Draft of the state), while the system runs the op itself (the agent, with the C of
 * the op's description, harness/ops). Where the kernel may legitimately do one of several things,
 * a check asks the Chooser and predict() explores each branch. Each op family keeps its checks
 * next to its rules: core.ts (processes and memory), uacce.ts (the uacce device), sva.ts (what a bind adds).
 */
import { err } from '../program/outcome.js';
import { createdNames, type OpKind } from '../ops/index.js';
import type { Op } from '../program/types.js';
import { CORE_MODEL } from './core.js';
import { DMA_MODEL } from './dma.js';
import { res, type ModelOp, type ModelOps, type OpResult } from './result.js';
import type { Chooser, Draft, ModelState } from './state.js';
import { SVA_MODEL } from './sva.js';
import { UACCE_MODEL } from './uacce.js';
import { VFIO_MODEL } from './vfio.js';
import { IOMMUFD_MODEL } from './iommufd.js';

export type { OpResult } from './result.js';

/** Every op kind's model (a kind without one does not compile). */
const MODEL: ModelOps<OpKind> = { ...CORE_MODEL, ...UACCE_MODEL, ...SVA_MODEL, ...VFIO_MODEL, ...IOMMUFD_MODEL, ...DMA_MODEL };

export function applyOp(d: Draft, op: Op, ch: Chooser): OpResult {
  // mapping names get slots in order of first creation (the host's slot table, wire.ts)
  for (const [kind, name] of createdNames(op)) if (kind === 'map' && !d.s.mapSlots.has(name)) d.setMapSlot(name, d.s.mapSlots.size);
  const task = d.s.tasks.get(op.task);
  if (task === undefined || !task.alive) return res(err('ESRCH'), 'task.dead');
  return (MODEL[op.op] as ModelOp<OpKind>).check(d, task, op as never, ch);
}

export { probe } from './uacce.js';
export { kstrtoul } from './uacce.js';

/** What a reader running at the same time may see while `op` runs (see statesDuring in index.ts). */
export function opStatesDuring(s: ModelState, op: Op): ModelState[] {
  const task = s.tasks.get(op.task);
  if (task === undefined || !task.alive) return [];
  const m = MODEL[op.op] as ModelOp<OpKind>;
  return m.during ? m.during(s, op as never) : [];
}
