/**
 * Consistency conditions of a model state, recomputed from scratch. They check the incremental
 * bookkeeping in kernel.ts/ops.ts (reference counts, region tables, live-queue counts) against
 * what the state's objects say; property tests run them after every op.
 */
import { REG_WORD } from '../device/abi.js';
import { regionPages } from '../device/testdev.js';
import { readDev } from './kernel.js';
import type { ModelState } from './state.js';

export function checkInvariants(s: ModelState): string[] {
  const bad: string[] = [];
  const fdRefs = new Map<number, number>();
  const pieceRefs = new Map<number, number>();
  const liveMapIds = new Map<number, { queue: number; region: number; mm: number }>();

  for (const t of s.tasks.values()) {
    const mm = s.mms.get(t.mm);
    if (mm === undefined) bad.push(`task ${t.name}: no mm ${t.mm}`);
    else if (t.alive !== mm.alive) bad.push(`task ${t.name} alive=${t.alive} but its mm alive=${mm.alive}`);
    if (!t.alive && t.fds.size > 0) bad.push(`exited task ${t.name} still has descriptors`);
    for (const [name, qid] of t.fds) {
      const q = s.queues.get(qid);
      if (q === undefined) bad.push(`task ${t.name} fd ${name}: queue ${qid} is released`);
      fdRefs.set(qid, (fdRefs.get(qid) ?? 0) + 1);
    }
  }

  for (const mm of s.mms.values()) {
    let prevEnd = -Infinity;
    for (const v of mm.vmas) {
      if (v.pages <= 0) bad.push(`mm ${mm.id}: empty vma at ${v.start}`);
      if (v.start < prevEnd) bad.push(`mm ${mm.id}: vmas overlap or are unsorted at ${v.start}`);
      prevEnd = v.start + v.pages;
      if (!mm.alive) bad.push(`mm ${mm.id} is gone but has a vma at ${v.start}`);
      if (v.kind !== 'uacce') continue;
      const q = s.queues.get(v.queue);
      if (q === undefined) bad.push(`mm ${mm.id}: mapping of released queue ${v.queue}`);
      pieceRefs.set(v.queue, (pieceRefs.get(v.queue) ?? 0) + 1);
      if (v.regionPage < 0 || v.regionPage + v.pages > regionPages(s.device, v.region)) {
        bad.push(`mm ${mm.id}: piece at ${v.start} maps region ${v.region} pages ${v.regionPage}+${v.pages} beyond the region`);
      }
      const other = liveMapIds.get(v.mapId);
      if (other !== undefined && (other.queue !== v.queue || other.region !== v.region || other.mm !== mm.id)) {
        bad.push(`mapping ${v.mapId} has pieces of different queues/regions/address spaces`);
      }
      liveMapIds.set(v.mapId, { queue: v.queue, region: v.region, mm: mm.id });
    }
    for (const p of mm.pages.keys()) {
      if (!mm.vmas.some((v) => v.start <= p && p < v.start + v.pages)) bad.push(`mm ${mm.id}: page ${p} outside any vma`);
    }
  }

  const live = new Map<number, number>();
  const cdevRefs = new Map<number, number>();
  for (const q of s.queues.values()) {
    const refs = (fdRefs.get(q.id) ?? 0) + (pieceRefs.get(q.id) ?? 0);
    // uacce_fops_release() frees the queue: a released queue leaves the state
    if (q.state === 'RELEASED') bad.push(`released queue ${q.id} is still in the state`);
    if (q.refs !== refs) bad.push(`queue ${q.id}: refs ${q.refs} but ${fdRefs.get(q.id) ?? 0} fds + ${pieceRefs.get(q.id) ?? 0} pieces`);
    if (q.refs <= 0) bad.push(`queue ${q.id} is not released but has no reference`);
    cdevRefs.set(q.cdev, (cdevRefs.get(q.cdev) ?? 0) + 1);
    for (const region of [0, 1] as const) {
      const mapId = q.regions[region];
      const piece = [...liveMapIds].find(([, m]) => m.queue === q.id && m.region === region);
      if (mapId === null && piece !== undefined) bad.push(`queue ${q.id} region ${region} is free but mapping ${piece[0]} has live pieces`);
      if (mapId !== null && (piece === undefined || piece[0] !== mapId)) {
        bad.push(`queue ${q.id} region ${region} held by mapping ${mapId} with no live piece`);
      }
    }
    const inst = s.instances.get(q.instance);
    if (inst === undefined) {
      bad.push(`queue ${q.id}: no instance ${q.instance}`);
      continue;
    }
    if (q.state === 'ZOMBIE') {
      if (inst.present) bad.push(`queue ${q.id} is ZOMBIE but its device is present`);
      if (q.drv !== 'RELEASED') bad.push(`ZOMBIE queue ${q.id}: driver state ${q.drv}`);
      if (q.racy) bad.push(`ZOMBIE queue ${q.id} is racy`);
    } else {
      if (!inst.present) bad.push(`queue ${q.id} is ${q.state} but its device was removed`);
      live.set(inst.key, (live.get(inst.key) ?? 0) + 1);
      const want = q.state === 'STARTED' ? 'STARTED' : ['INIT', 'STOPPED'];
      if (Array.isArray(want) ? !want.includes(q.drv) : q.drv !== want) bad.push(`queue ${q.id}: uacce ${q.state} vs driver ${q.drv}`);
    }
    if (q.racy && q.state !== 'STARTED') bad.push(`queue ${q.id} is racy but not started`);
    if (q.state === 'STARTED' && !q.racy) {
      const db = readDev(s, q.id, 0, 0, REG_WORD.DOORBELL);
      if (db === null || q.ctr.consumed === null || db !== q.ctr.consumed) {
        bad.push(`started queue ${q.id}: DOORBELL ${db} != consumed ${q.ctr.consumed} but the engine is not running`);
      }
    }
  }

  const ids = new Set<number>();
  for (const inst of s.instances.values()) {
    if ((live.get(inst.key) ?? 0) !== inst.liveQueues && inst.present) {
      bad.push(`device ${inst.devIndex} (id ${inst.id}): liveQueues ${inst.liveQueues} but ${live.get(inst.key) ?? 0} live queues`);
    }
    if (inst.present && inst.liveQueues > s.device.queue_limit) bad.push(`device ${inst.devIndex}: more live queues than queue_limit`);
    if (!inst.present) continue;
    if (ids.has(inst.id)) bad.push(`uacce id ${inst.id} used twice`);
    ids.add(inst.id);
    const slot = s.devs[inst.devIndex];
    if (slot?.instance !== inst.key) bad.push(`present instance ${inst.key} is not bound to device ${inst.devIndex}`);
    const c = s.cdevs.get(inst.cdev);
    if (c === undefined || !c.mapped) bad.push(`present device ${inst.devIndex}: its cdev is not registered`);
  }
  for (const c of s.cdevs.values()) {
    if ((cdevRefs.get(c.key) ?? 0) !== c.refs) bad.push(`cdev ${c.key}: refs ${c.refs} but ${cdevRefs.get(c.key) ?? 0} open files`);
    if (!c.mapped && c.refs === 0) bad.push(`cdev ${c.key} is deleted and unreferenced but not released`);
  }
  for (const ino of s.inodes.values()) {
    if (ino.iCdev !== null && !s.cdevs.has(ino.iCdev)) bad.push(`inode ${ino.key} caches released cdev ${ino.iCdev}`);
  }
  for (const slot of s.devs) {
    if (slot.instance !== null && !s.instances.get(slot.instance)?.present) bad.push(`device ${slot.index} bound to a removed instance`);
  }
  return bad;
}
