/**
 * The reference model of svadiff: for every op of a program, the outcomes the kernel may
 * legitimately produce and the state after each. It encodes what uacce, the mm and the test
 * device are *meant* to do (the uacce semantics sheet, docs/test-device.md, the kernel sources
 * cited at each rule), never a kernel's observed bug.
 *
 *   const s0 = initialState(program.device, profileFor('6.12.117+deb12-amd64', { arch: 'x86_64', distro: 'debian' }));
 *   const [p] = predict(s0, program.ops[0]);   // p.outcome, p.next, p.rule
 *
 * Outcome values are described in ops.ts. States are immutable: predict() never changes its
 * input, and its results share unchanged parts with it.
 */
import type { Outcome } from '../program/outcome.js';
import { formatOutcome } from '../program/outcome.js';
import type { DeviceParams, Op } from '../program/types.js';
import { ROOT_TASK } from '../program/types.js';
import { nodeName } from '../device/testdev.js';
import { slotOfPage } from './kernel.js';
import { applyOp, opStatesDuring, probe } from './ops.js';
import { openAcrossRemove, sysfsReadAcrossRemove } from './uacce.js';
import { describeOwnership, initialVfio } from './vfio.js';
import { describeIommufd } from './iommufd.js';
import type { KernelProfile } from './profile.js';
import { Chooser, Draft, type ModelState } from './state.js';

export { profileFor, type KernelProfile, type Arch, type Distro } from './profile.js';
export { checkInvariants } from './invariants.js';
export { RULES, describeRule, type RuleId } from './rules.js';
export type { ModelState, Queue, Task, Mm, Vma, Instance } from './state.js';

export interface Prediction {
  outcome: Outcome;
  next: ModelState;
  /** the rule (RULES key) that decided the outcome */
  rule: string;
}

/** More branches than this in one op would mean the model has lost track; it never gets close. */
const MAX_BRANCHES = 16;

/** The state right after the agent set the device up: every device probed in order, task t0. */
export function initialState(device: DeviceParams, profile: KernelProfile): ModelState {
  const empty: ModelState = {
    profile,
    device,
    devs: Array.from({ length: device.devices }, (_, index) => ({ index, instance: null, lastId: -1, mknodInode: null })),
    instances: new Map(),
    cdevs: new Map(),
    inodes: new Map(),
    queues: new Map(),
    tasks: new Map(),
    mms: new Map(),
    mapSlots: new Map(),
    nextQueueId: 1,
    nextKey: 1,
    ops: 0,
  };
  const vfio = initialVfio(device);
  if (vfio) empty.vfio = vfio;
  const d = new Draft(empty);
  // platform devices svadiff_test.0..N-1 are probed in order at module load: uacce ids 0..N-1
  for (let i = 0; i < device.devices; i++) probe(d, i);
  const mm = d.newKey();
  d.put('mms', mm, { id: mm, alive: true, vmas: [], pages: new Map(), pasid: null });
  d.put('tasks', ROOT_TASK, { name: ROOT_TASK, alive: true, mm, fds: new Map(), pasidsSeen: [] });
  return d.s;
}

/**
 * What `op` may do in `state`: usually one prediction; several where the kernel may
 * legitimately do either (each names its rule; see ops.ts for which). Never changes `state`.
 */
export function predict(state: ModelState, op: Op): Prediction[] {
  const out: Prediction[] = [];
  const work: number[][] = [[]];
  while (work.length > 0 && out.length < MAX_BRANCHES) {
    const prefix = work.shift()!;
    const d = new Draft(state);
    const ch = new Chooser(prefix);
    const r = applyOp(d, op, ch);
    d.s.ops = state.ops + 1;
    out.push({ outcome: r.outcome, next: d.s, rule: r.rule });
    work.push(...ch.pending);
  }
  return out;
}

/**
 * The states `op` passes through that a reader running at the same time may see, besides the
 * ones before and after it: uacce_remove() puts its queues one by one before it removes the
 * device's attributes (uacce.ts removeSteps). Empty for an op every reader sees as atomic.
 */
export function statesDuring(state: ModelState, op: Op): ModelState[] {
  return opStatesDuring(state, op);
}

/**
 * May `reader` see the states during `writer` (statesDuring)? Only a sysfs attribute read: the
 * uacce attribute shows (drivers/misc/uacce/uacce.c *_show) take no lock that uacce_remove()
 * holds, while open, release, mmap, ioctl and poll take uacce->mutex or q->mutex and so see the
 * queue before or after its put. A reader changes nothing, so it can go inside.
 */
export function seesInside(reader: Op, writer: Op): boolean {
  return reader.op === 'sysfs_read' && writer.op === 'remove';
}

/**
 * What `op` may give only because it overlapped `writer` in real time, placed after the writer
 * (`before` and `after`: the states around the writer): an open that found its device before a
 * removal and waited for it gives EINVAL, a sysfs read of a file opened before the removal
 * ENODEV (uacce.ts openAcrossRemove, sysfsReadAcrossRemove).
 */
export function predictAcross(before: ModelState, after: ModelState, op: Op, writer: Op): Prediction[] {
  return [...openAcrossRemove(before, after, op, writer), ...sysfsReadAcrossRemove(before, after, op, writer)];
}

/** May `op` straddle `writer` (predictAcross)? */
export function straddles(op: Op, writer: Op): boolean {
  return (op.op === 'open' || op.op === 'sysfs_read') && writer.op === 'remove';
}

/** A short, human-readable summary of a state for reports. */
export function describeState(s: ModelState): string {
  const lines: string[] = [];
  const devs = s.devs.map((slot) => {
    const inst = slot.instance === null ? undefined : s.instances.get(slot.instance);
    if (inst === undefined) return `svt${slot.index}: removed`;
    const iso = inst.threshold > 0 ? ` threshold ${inst.threshold} faults ${inst.faultTotal ?? '?'}` : '';
    return `${nodeName(slot.index, inst.id)} ${inst.liveQueues}/${s.device.queue_limit} queues${iso}`;
  });
  lines.push(`devices: ${devs.join('; ')}`);
  const mapNames = new Map<number, string>();
  for (const [name, slot] of s.mapSlots) mapNames.set(slot, name);
  for (const q of s.queues.values()) {
    if (q.state === 'RELEASED') continue;
    const regions = q.regions.map((m) => (m === null ? '-' : 'mapped')).join(',');
    const drv = q.drv === q.state ? '' : `/${q.drv}`;
    lines.push(
      `q${q.id} svt${q.devIndex} ${q.state}${drv}${q.racy ? ' (engine running)' : ''} refs ${q.refs} regions [${regions}] opener ${q.openerTask}`,
    );
  }
  for (const t of s.tasks.values()) {
    if (!t.alive) {
      lines.push(`${t.name}: exited`);
      continue;
    }
    const fds = [...t.fds].map(([n, q]) => `${n}=q${q}`).join(' ');
    const mm = s.mms.get(t.mm)!;
    const maps = mm.vmas.map((v) => {
      const at = slotOfPage(v.start);
      const name = mapNames.get(at.slot) ?? `slot${at.slot}`;
      const what = v.kind === 'anon' ? 'anon' : `q${v.queue}.r${v.region}${v.shared ? '' : ' private'}`;
      return `${name}[${at.page}+${v.pages}] ${what} ${v.prot}`;
    });
    lines.push(`${t.name}: fds {${fds}} maps [${maps.join(', ')}]`);
  }
  if (s.vfio) lines.push(`IOMMU groups: ${describeOwnership(s.vfio)}`, ...describeIommufd(s.vfio));
  return lines.join('\n');
}

/** The predicted outcomes, for messages: "ok" or "one of {…}". */
export function formatPredictions(ps: readonly Prediction[]): string {
  const set = [...new Set(ps.map((p) => formatOutcome(p.outcome)))];
  return set.length === 1 ? set[0]! : `one of {${set.join(', ')}}`;
}
