/**
 * State features of an op: what the objects it names are like in the model's state just before
 * it (the queue behind a descriptor, the vma at a mapping's page, the task), plus a few facts
 * about the whole state (a device removed, an engine running in the background). Coverage counts
 * (rule, feature) pairs, so that a rule reached only on a fresh INIT queue is told apart from
 * the same rule reached on a STARTED queue whose engine is busy, or through a fork child.
 *
 * Generic over op descriptions (harness/ops): every descriptor field and every mapping field of
 * an op gets the features of what it names. Pure: state and op in, names out.
 */
import { descOf, fieldsOf, type Op } from '../ops/index.js';
import { ROOT_TASK } from '../program/limits.js';
import { findVma, slotPage } from './kernel.js';
import type { ModelState, Task } from './state.js';

/** Pages of one mapping slot's window the model looks at (a mapping never exceeds LIMITS.maxPages). */
const WINDOW_PAGES = 64;

/** The features of `op` in `s` (sorted, each once). */
export function opFeatures(s: ModelState, op: Op): string[] {
  const out = new Set<string>();
  const task = s.tasks.get(op.task);
  if (op.task !== ROOT_TASK) out.add('task:child');
  if (op.group !== undefined) out.add('concurrent');
  for (const q of s.queues.values()) if (q.racy) out.add('engine:busy');
  if (s.devs.some((d) => d.instance === null)) out.add('device:removed');
  if (task === undefined || !task.alive) return [...out].sort();
  const o = fieldsOf(op);
  for (const [field, f] of Object.entries(descOf(op.op).fields)) {
    const v = o[field];
    if (f.spec.t !== 'handle' || f.spec.role !== 'use' || typeof v !== 'string') continue;
    if (f.spec.kind === 'fd') for (const x of fdFeatures(s, task, v)) out.add(x);
    if (f.spec.kind === 'map') {
      const page = typeof o.page === 'number' && (field === 'map' || field === 'target') ? o.page : 0;
      for (const x of mapFeatures(s, task, v, page)) out.add(`${field === 'map' ? 'map' : field}:${x}`);
    }
  }
  return [...out].sort();
}

function fdFeatures(s: ModelState, task: Task, name: string): string[] {
  const qid = task.fds.get(name);
  if (qid === undefined) return ['fd:none'];
  const q = s.queues.get(qid);
  if (q === undefined) return ['fd:none'];
  const out = [`queue:${q.state}`];
  if (q.openerTask !== task.name) out.push('queue:inherited');
  if (q.regions.some((r) => r !== null)) out.push('queue:mapped');
  const inode = s.inodes.get(q.inode);
  if (inode?.kind === 'mknod') out.push('queue:mknod');
  return out;
}

function mapFeatures(s: ModelState, task: Task, name: string, page: number): string[] {
  const slot = s.mapSlots.get(name);
  const mm = s.mms.get(task.mm);
  if (slot === undefined || mm === undefined) return ['none'];
  const start = slotPage(slot);
  const inWindow = mm.vmas.filter((v) => v.start < start + WINDOW_PAGES && v.start + v.pages > start);
  const v = findVma(mm, start + page);
  if (v === undefined) return inWindow.length > 0 ? ['hole'] : ['none'];
  const out: string[] = [v.kind];
  if (inWindow.length > 1 || v.start !== start) out.push('split');
  if (v.prot !== 'rw') out.push(`prot-${v.prot}`);
  if (v.kind === 'uacce') {
    if (!v.shared) out.push('private');
    const q = s.queues.get(v.queue);
    if (q !== undefined && q.state === 'ZOMBIE') out.push('zombie');
  }
  return out;
}
