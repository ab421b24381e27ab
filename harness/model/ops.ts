/**
 * One handler per operation of the program format: what the kernel is meant to do, as an
 * outcome plus changes to a Draft. Where the kernel may legitimately do one of several things,
 * the handler asks the Chooser and predict() explores each branch.
 *
 * Outcome values (what `ok(value)` carries; an `ok` without value accepts any value):
 *   open          the path opened: "/dev/svt<N>-<id>" (path), "/tmp/svt<N>.node" (mknod);
 *                 none for procfd (the fd number is the agent's)
 *   touch read    the u64 read, "0x…" lowercase without leading zeros; none when unknown
 *   submit        the agent's data: "done", "done 0x…" (read), "fault", "badop", "status N"
 *   ioctl         PING: the queue id in decimal; START_Q/PUT_Q/VFS commands: none
 *   poll          revents: "0x1" or "0x0" (timed out). uacce_fops_poll() returns
 *                 EPOLLIN|EPOLLRDNORM, but fs/select.c do_pollfd() masks it with the requested
 *                 events (the agent asks for POLLIN only)
 *   sysfs_read    the file's exact contents
 *   everything else: none
 */
import { err, ok, sig, type Outcome } from '../program/outcome.js';
import type {
  Op,
  OpAdd,
  OpClose,
  OpDup,
  OpFork,
  OpIoctl,
  OpMadvise,
  OpMmap,
  OpMremap,
  OpOpen,
  OpPoll,
  OpRemove,
  OpSubmit,
  OpSysfsRead,
  OpSysfsWrite,
  OpTouch,
} from '../program/types.js';
import { ioctlNumber } from '../agent/wire.js';
import {
  REG_WORD,
  SVT_PAGE_SIZE,
  SVT_STATUS_BADOP,
  SVT_STATUS_FAULT,
  SVT_STATUS_OK,
  SVT_UACCE_CMD_PUT_Q,
  SVT_UACCE_CMD_START_Q,
  SVT_UACCE_DEV_SVA,
} from '../device/abi.js';
import { BASE_UNKNOWN, devBase, diff32, emptyPage, hex64, parseHex64, setWord, u32, type Page, type Word } from '../device/memory.js';
import {
  PARENT_FACTS,
  availableInstances,
  descriptorWords,
  driverIoctl,
  driverStart,
  initialCounters,
  initialRegisters,
  isQueueUpdated,
  isolateState,
  nodeName,
  regionPages,
} from '../device/testdev.js';
import {
  addRef,
  addrHalves,
  beginRacy,
  cdevPut,
  dropPages,
  dropRef,
  findVma,
  findVmaFrom,
  insertVma,
  isWild,
  purgeCdev,
  putQueue,
  regs,
  slotPage,
  stopQueue,
  unmapRange,
  userLoad,
  userStore,
  type Access,
} from './kernel.js';
import type { KernelProfile } from './profile.js';
import type { RuleId } from './rules.js';
import type { AnonVma, Chooser, Draft, Instance, ModelState, Queue, Task, Vma } from './state.js';

export interface OpResult {
  outcome: Outcome;
  rule: RuleId;
}

const res = (outcome: Outcome, rule: RuleId): OpResult => ({ outcome, rule });

/** Names that create a mapping slot: the host numbers them in order of first creation (wire.ts slotTable). */
function createdMapName(op: Op): string | undefined {
  if (op.op === 'mmap' || op.op === 'alloc') return op.map;
  if (op.op === 'mremap') return op.to;
  return undefined;
}

export function applyOp(d: Draft, op: Op, ch: Chooser): OpResult {
  const created = createdMapName(op);
  if (created !== undefined && !d.s.mapSlots.has(created)) d.setMapSlot(created, d.s.mapSlots.size);
  const task = d.s.tasks.get(op.task);
  if (task === undefined || !task.alive) return res(err('ESRCH'), 'task.dead');
  switch (op.op) {
    case 'open':
      return doOpen(d, task, op);
    case 'close':
      return doClose(d, task, op);
    case 'dup':
      return doDup(d, task, op);
    case 'mmap':
      return doMmap(d, task, op);
    case 'alloc': {
      const start = slotPage(d.s.mapSlots.get(op.map)!);
      const mm = d.s.mms.get(task.mm)!;
      if (mm.vmas.some((v) => v.start < start + op.pages && start < v.start + v.pages)) {
        return res(err('EEXIST'), 'program.malformed');
      }
      const v: AnonVma = { kind: 'anon', start, pages: op.pages, prot: 'rw', pgoff: start, anonVma: null, forked: false };
      insertVma(d, task.mm, v);
      return res(ok(), 'alloc.ok');
    }
    case 'munmap': {
      const slot = d.s.mapSlots.get(op.map);
      if (slot !== undefined) unmapRange(d, task.mm, slotPage(slot) + op.page, slotPage(slot) + op.page + op.pages);
      return res(ok(), 'munmap.ok');
    }
    case 'mremap':
      return doMremap(d, task, op);
    case 'madvise':
      return doMadvise(d, task, op);
    case 'touch':
      return doTouch(d, task, op);
    case 'submit':
      return doSubmit(d, task, op, ch);
    case 'ioctl':
      return doIoctl(d, task, op, ch);
    case 'poll':
      return doPoll(d, task, op, ch);
    case 'fork':
      return doFork(d, task, op);
    case 'exit':
      return doExit(d, task);
    case 'remove':
      return doRemove(d, op);
    case 'add':
      return doAdd(d, op);
    case 'sysfs_read':
      return doSysfsRead(d, op, ch);
    case 'sysfs_write':
      return doSysfsWrite(d, op);
  }
}

// ---------------------------------------------------------------------------------------------
// Devices

/** The bound uacce instance of device index `dev`, if any. */
function boundInstance(s: ModelState, dev: number): Instance | undefined {
  const key = s.devs[dev]?.instance;
  return key === null || key === undefined ? undefined : s.instances.get(key);
}

/**
 * uacce_alloc() flags: up to 6.15 uacce_enable_sva() keeps UACCE_DEV_SVA only if the parent can
 * enable IOPF and SVA (iommu_dev_enable_feature(), which fails without an IOMMU group); from
 * 6.16 the flag is kept as requested.
 */
function negotiatedFlags(profile: KernelProfile, sva: boolean): number {
  if (!sva) return 0;
  if (profile.sva === 'bind-every-open') return SVT_UACCE_DEV_SVA;
  return PARENT_FACTS.hasIommuGroup ? SVT_UACCE_DEV_SVA : 0;
}

/**
 * Probe of device index `dev`: uacce_alloc() (xa_alloc: the lowest free id, which is also the
 * minor), uacce_register() (cdev_device_add: a cdev in cdev_map and a devtmpfs node).
 */
export function probe(d: Draft, dev: number): void {
  const used = new Set<number>();
  for (const inst of d.s.instances.values()) if (inst.present) used.add(inst.id);
  let id = 0;
  while (used.has(id)) id++;
  const cdevKey = d.newKey();
  d.put('cdevs', cdevKey, { key: cdevKey, minor: id, mapped: true, refs: 0 });
  const inodeKey = d.newKey();
  d.put('inodes', inodeKey, { key: inodeKey, kind: 'devtmpfs', devIndex: dev, minor: id, iCdev: null });
  const key = d.newKey();
  d.put('instances', key, {
    key,
    devIndex: dev,
    id,
    present: true,
    flags: negotiatedFlags(d.s.profile, d.s.device.sva),
    liveQueues: 0,
    faultTotal: 0,
    threshold: 0,
    cdev: cdevKey,
    pathInode: inodeKey,
  });
  const slot = d.dev(dev);
  slot.instance = key;
  slot.lastId = id;
}

function doRemove(d: Draft, op: OpRemove): OpResult {
  if (op.dev >= d.s.devs.length) return res(err('ENODEV'), 'dev.nonexistent');
  const inst = boundInstance(d.s, op.dev);
  if (inst === undefined) return res(err('ENODEV'), 'remove.unbound');
  // uacce_remove(): for each queue: uacce_put_queue(), unbind, unmap_mapping_range(q->mapping)
  for (const q of d.s.queues.values()) {
    if (q.instance !== inst.key || (q.state !== 'INIT' && q.state !== 'STARTED')) continue;
    putQueue(d, q.id);
    zapQueueMappings(d, q.id);
  }
  // cdev_device_del(): the node and the cdev_map entry go; xa_erase() frees the id
  const c = d.cdev(inst.cdev);
  c.mapped = false;
  if (c.refs === 0) purgeCdev(d, inst.cdev);
  d.instance(inst.key).present = false;
  const slot = d.dev(op.dev);
  slot.instance = null;
  slot.lastId = inst.id;
  return res(ok(), 'remove.ok');
}

/**
 * unmap_mapping_range(q->mapping, 0, 0, 1): every PTE of every mapping of the queue goes,
 * private COW copies included (even_cows = 1). The vmas stay (and keep their references);
 * touching them faults with SIGBUS since the queue is ZOMBIE.
 */
function zapQueueMappings(d: Draft, qid: number): void {
  for (const mm of d.s.mms.values()) {
    for (const v of mm.vmas) {
      if (v.kind === 'uacce' && v.queue === qid && !v.shared) dropPages(d, mm.id, v.start, v.start + v.pages);
    }
  }
}

function doAdd(d: Draft, op: OpAdd): OpResult {
  if (op.dev >= d.s.devs.length) return res(err('ENODEV'), 'dev.nonexistent');
  if (boundInstance(d.s, op.dev) !== undefined) return res(err('EBUSY'), 'add.bound');
  probe(d, op.dev);
  return res(ok(), 'add.ok');
}

// ---------------------------------------------------------------------------------------------
// open, close, dup

function doOpen(d: Draft, task: Task, op: OpOpen): OpResult {
  if (task.fds.has(op.fd)) return res(err('EINVAL'), 'program.malformed');
  const slot = d.s.devs[op.dev];
  if (slot === undefined) return res(err('ENOENT'), 'open.path-gone');
  let inodeKey: number;
  let path: string | undefined;
  switch (op.via) {
    case 'path': {
      const inst = boundInstance(d.s, op.dev);
      if (inst === undefined) return res(err('ENOENT'), 'open.path-gone');
      inodeKey = inst.pathInode;
      path = `/dev/${nodeName(op.dev, inst.id)}`;
      break;
    }
    case 'mknod': {
      // the agent makes /tmp/svt<N>.node once, from the current or last seen node's major:minor
      if (slot.mknodInode === null) {
        const key = d.newKey();
        d.put('inodes', key, { key, kind: 'mknod', devIndex: op.dev, minor: boundInstance(d.s, op.dev)?.id ?? slot.lastId, iCdev: null });
        d.dev(op.dev).mknodInode = key;
      }
      inodeKey = d.s.devs[op.dev]!.mknodInode!;
      path = `/tmp/svt${op.dev}.node`;
      break;
    }
    case 'procfd': {
      const of = op.of === undefined ? undefined : task.fds.get(op.of);
      if (of === undefined) return res(err('ENOENT'), 'open.procfd-nofd');
      // /proc/self/fd/N reopens the same inode, even if the node was unlinked since
      inodeKey = d.s.queues.get(of)!.inode;
      break;
    }
  }

  // fs/char_dev.c chrdev_open(): cached i_cdev (cdev_get succeeds while the cdev is alive), or
  // kobj_lookup(cdev_map, i_rdev) which caches it in the inode
  const inode = d.s.inodes.get(inodeKey)!;
  let cdevKey = inode.iCdev;
  if (cdevKey === null) {
    let found: number | null = null;
    for (const c of d.s.cdevs.values()) if (c.mapped && c.minor === inode.minor) found = c.key;
    if (found === null) return res(err('ENXIO'), 'open.no-cdev');
    cdevKey = found;
    d.inode(inodeKey).iCdev = cdevKey;
  }
  d.cdev(cdevKey).refs++;

  // uacce_fops_open(): xa_load(&uacce_xa, iminor(inode))
  let inst: Instance | undefined;
  for (const i of d.s.instances.values()) if (i.present && i.id === inode.minor) inst = i;
  if (inst === undefined) {
    cdevPut(d, cdevKey);
    return res(err('ENODEV'), 'open.no-device');
  }
  // uacce_bind_queue(): only with UACCE_DEV_SVA in the negotiated flags
  if ((inst.flags & SVT_UACCE_DEV_SVA) !== 0) {
    const e = !PARENT_FACTS.hasIommuGroup
      ? res(err('ENODEV'), 'open.sva-nogroup')
      : d.s.profile.svaBindKillSwitch
        ? res(err('EOPNOTSUPP'), 'open.sva-killswitch')
        : undefined;
    // A parent with an IOMMU group and a working bind is not something the test device has;
    // the queue would get a PASID the model does not know (read as unknown below).
    if (e !== undefined) {
      cdevPut(d, cdevKey);
      return e;
    }
  }
  // the driver's get_queue
  if (inst.liveQueues >= d.s.device.queue_limit) {
    cdevPut(d, cdevKey);
    return res(err('EBUSY'), 'open.busy');
  }
  const qid = d.s.nextQueueId++;
  const pasid: Word = (inst.flags & SVT_UACCE_DEV_SVA) !== 0 ? null : 0;
  const regPage: Page = emptyPage(devBase(0, 0));
  for (const [idx, v] of initialRegisters(qid, pasid, inst.devIndex)) setWord(regPage, idx, v);
  const q: Queue = {
    id: qid,
    instance: inst.key,
    devIndex: inst.devIndex,
    state: 'INIT',
    drv: 'INIT',
    openerTask: task.name,
    openerMm: task.mm,
    pasid,
    ctr: initialCounters(),
    racy: false,
    regions: [null, null],
    refs: 1,
    inode: inodeKey,
    cdev: cdevKey,
    mem: new Map([[devBase(0, 0), d.adopt(regPage)]]),
  };
  d.put('queues', qid, q);
  d.instance(inst.key).liveQueues++;
  d.taskFds(task.name).set(op.fd, qid);
  return res(ok(path), 'open.ok');
}

function doClose(d: Draft, task: Task, op: OpClose): OpResult {
  const qid = task.fds.get(op.fd);
  if (qid === undefined) return res(err('EBADF'), 'fd.ebadf');
  d.taskFds(task.name).delete(op.fd);
  dropRef(d, qid);
  return res(ok(), 'close.ok');
}

function doDup(d: Draft, task: Task, op: OpDup): OpResult {
  const qid = task.fds.get(op.fd);
  if (qid === undefined) return res(err('EBADF'), 'fd.ebadf');
  if (task.fds.has(op.as)) return res(err('EINVAL'), 'program.malformed');
  d.taskFds(task.name).set(op.as, qid);
  addRef(d, qid);
  return res(ok(), 'dup.ok');
}

// ---------------------------------------------------------------------------------------------
// mmap, mremap, madvise

function doMmap(d: Draft, task: Task, op: OpMmap): OpResult {
  const qid = task.fds.get(op.fd);
  if (qid === undefined) return res(err('EBADF'), 'fd.ebadf');
  const q = d.s.queues.get(qid)!;
  if (op.region >= 2) return res(err('EINVAL'), 'mmap.region-invalid');
  if (q.state !== 'INIT' && q.state !== 'STARTED') return res(err('ENXIO'), 'mmap.zombie');
  const region = op.region as 0 | 1;
  if (q.regions[region] !== null) return res(err('EEXIST'), 'mmap.exists');
  const limit = regionPages(d.s.device, region);
  if (limit === 0) return res(err('EINVAL'), 'mmap.no-region');
  if (op.pages > limit) return res(err('EINVAL'), 'mmap.too-long');
  const start = slotPage(d.s.mapSlots.get(op.map)!);
  const mm = d.s.mms.get(task.mm)!;
  if (mm.vmas.some((v) => v.start < start + op.pages && start < v.start + v.pages)) {
    return res(err('EEXIST'), 'program.malformed');
  }
  const mapId = d.newKey();
  insertVma(d, task.mm, {
    kind: 'uacce',
    start,
    pages: op.pages,
    prot: op.prot,
    shared: op.shared,
    queue: qid,
    region,
    regionPage: 0,
    mapId,
  });
  const regions: [number | null, number | null] = [...q.regions];
  regions[region] = mapId;
  d.queue(qid).regions = regions;
  addRef(d, qid);
  return res(ok(), 'mmap.ok');
}

type Fail = OpResult;

/**
 * The vma checks of mm/mremap.c (vma_to_resize() 6.1/6.12, check_prep_vma() 7.2) for
 * [addr, addr + oldLen) growing to newLen. oldLen is already min(old, new) for a shrinking move.
 */
function resizeCheck(v: Vma, addr: number, oldLen: number, newLen: number, dontunmap: boolean): Fail | null {
  // VM_DONTEXPAND | VM_PFNMAP: set on uacce vmas by remap_pfn_range()
  if (dontunmap && v.kind === 'uacce') return res(err('EINVAL'), 'mremap.dontunmap-special');
  if (oldLen > v.start + v.pages - addr) return res(err('EFAULT'), 'mremap.cross-vma');
  if (newLen === oldLen) return null;
  if (v.kind === 'uacce') return res(err('EFAULT'), 'mremap.grow-special');
  return null;
}

/** Adjacent anonymous vmas merge when they are the same mapping's pieces (mm/vma.c). */
function canMerge(a: AnonVma, b: AnonVma): boolean {
  if (a.prot !== b.prot || a.start + a.pages !== b.start || a.pgoff + a.pages !== b.pgoff) return false;
  // is_mergeable_anon_vma(): the same anon_vma, or one unset and the other not from a fork
  if (a.anonVma === b.anonVma) return true;
  if (a.anonVma === null) return !b.forked;
  if (b.anonVma === null) return !a.forked;
  return false;
}

function doMremap(d: Draft, task: Task, op: OpMremap): OpResult {
  const p = d.s.profile;
  const slot = d.s.mapSlots.get(op.map);
  const mmId = task.mm;
  // guest/agent/agent.c OP_MREMAP: move -> MAYMOVE|FIXED; dontunmap -> MAYMOVE|DONTUNMAP, and
  // FIXED too since `to` always names the destination
  const fixed = op.move || op.dontunmap;
  const dontunmap = op.dontunmap;
  const oldLen = op.old_pages;
  const newLen = op.new_pages;
  const toSlot = op.to === undefined ? undefined : d.s.mapSlots.get(op.to);
  if (slot === undefined || ((fixed || dontunmap) && toSlot === undefined)) return res(err('EINVAL'), 'program.malformed');
  const addr = slotPage(slot) + op.page;
  const newAddr = toSlot === undefined ? 0 : slotPage(toSlot);
  const implied = fixed || dontunmap;

  // SYSCALL mremap 6.1/6.12 / check_mremap_params 7.2: before any vma lookup
  if (dontunmap && oldLen !== newLen) return res(err('EINVAL'), 'mremap.dontunmap-resize');
  const overlaps = implied && addr + oldLen > newAddr && newAddr + newLen > addr;
  if (p.mremapMultiVmaMove) {
    if (overlaps) return res(err('EINVAL'), 'mremap.overlap');
    // 7.2 do_mremap(): vrm_move_only() (MREMAP_FIXED, same size) -> remap_move()
    if (fixed && oldLen === newLen) return remapMove(d, mmId, addr, oldLen, newAddr, dontunmap);
  }
  const mm = d.s.mms.get(mmId)!;
  const v = findVma(mm, addr);
  if (v === undefined) return res(err('EFAULT'), 'mremap.no-vma');
  if (implied) {
    if (overlaps) return res(err('EINVAL'), 'mremap.overlap'); // 6.1/6.12 mremap_to()
    return mremapTo(d, mmId, addr, oldLen, newAddr, newLen, fixed, dontunmap);
  }
  if (oldLen >= newLen) {
    if (oldLen === newLen) return res(ok(), 'mremap.same');
    // "Always allow a shrinking remap: that just unmaps the unnecessary pages"
    unmapRange(d, mmId, addr + newLen, addr + oldLen);
    return res(ok(), 'mremap.shrink');
  }
  const e = resizeCheck(v, addr, oldLen, newLen, false);
  if (e !== null) return e;
  // expand in place when [addr, addr+old) ends the vma and the space after it is free
  const vEnd = v.start + v.pages;
  const delta = newLen - oldLen;
  if (addr + oldLen === vEnd && !mm.vmas.some((x) => x.start < vEnd + delta && x.start + x.pages > vEnd)) {
    growInPlace(d, mmId, v as AnonVma, delta);
    return res(ok(), 'mremap.grow');
  }
  return res(err('ENOMEM'), 'mremap.grow-nospace');
}

function growInPlace(d: Draft, mmId: number, v: AnonVma, delta: number): void {
  const mm = d.mm(mmId);
  const vmas = [...mm.vmas];
  const i = vmas.indexOf(v);
  const grown: AnonVma = { ...v, pages: v.pages + delta };
  vmas[i] = grown;
  // vma_merge_extend(): the grown vma may merge with the next one
  const next = vmas[i + 1];
  if (next !== undefined && next.kind === 'anon' && canMerge(grown, next)) {
    vmas.splice(i, 2, { ...grown, pages: grown.pages + next.pages, anonVma: grown.anonVma ?? next.anonVma });
  }
  mm.vmas = vmas;
}

/** mremap_to(): a move to newAddr (MREMAP_FIXED) or with MREMAP_DONTUNMAP. */
function mremapTo(
  d: Draft,
  mmId: number,
  addr: number,
  oldLen: number,
  newAddr: number,
  newLen: number,
  fixed: boolean,
  dontunmap: boolean,
): OpResult {
  const vAt = () => findVma(d.s.mms.get(mmId)!, addr);
  let len = oldLen;
  if (!d.s.profile.mremapMultiVmaMove) {
    // 6.1/6.12: unmap the destination, then the tail of a shrinking move, then vma_to_resize()
    if (fixed) unmapRange(d, mmId, newAddr, newAddr + newLen);
    if (len > newLen) {
      unmapRange(d, mmId, addr + newLen, addr + len);
      len = newLen;
    }
    const v = vAt();
    if (v === undefined) return res(err('EFAULT'), 'mremap.no-vma');
    const e = resizeCheck(v, addr, len, newLen, dontunmap);
    if (e !== null) return e;
  } else {
    // 7.2: check_prep_vma() first (a shrink is checked at its new length), then mremap_to()
    const e = resizeCheck(vAt()!, addr, Math.min(len, newLen), newLen, dontunmap);
    if (e !== null) return e;
    if (fixed) unmapRange(d, mmId, newAddr, newAddr + newLen);
    if (vAt() === undefined) return res(err('EFAULT'), 'mremap.no-vma');
    if (len > newLen) {
      unmapRange(d, mmId, addr + newLen, addr + len);
      len = newLen;
    }
  }
  return moveVma(d, mmId, addr, len, newAddr, newLen, dontunmap);
}

/**
 * move_vma() (6.1/6.12) / copy_vma_and_data() (7.2). A uacce vma refuses in its ->mremap
 * (uacce_vma_mremap: -EPERM); the page tables move back and the copy is unmapped, so the
 * original stays intact and its region mapped (Spec "mremap": what the failed move must leave).
 */
function moveVma(d: Draft, mmId: number, addr: number, oldLen: number, newAddr: number, newLen: number, dontunmap: boolean): OpResult {
  const v = findVma(d.s.mms.get(mmId)!, addr)!;
  if (v.kind === 'uacce') return res(err('EPERM'), 'mremap.move-uacce');
  const moved: AnonVma = {
    ...v,
    start: newAddr,
    pages: newLen,
    pgoff: v.pgoff + (addr - v.start),
  };
  const pages = d.s.mms.get(mmId)!.pages;
  const carried: Array<[number, Page]> = [];
  for (let pg = addr; pg < addr + oldLen; pg++) {
    const c = pages.get(pg);
    if (c !== undefined) carried.push([newAddr + (pg - addr), c]);
  }
  if (dontunmap) {
    // the old range stays mapped but empty; a whole vma loses its anon_vma (unlink_anon_vmas)
    dropPages(d, mmId, addr, addr + oldLen);
    if (v.start === addr && v.pages === oldLen) {
      const mm = d.mm(mmId);
      mm.vmas = mm.vmas.map((x) => (x === v ? { ...v, anonVma: null, forked: false } : x));
    }
  } else {
    unmapRange(d, mmId, addr, addr + oldLen);
  }
  insertVma(d, mmId, moved);
  if (carried.length > 0) {
    const dst = d.mmPages(mmId);
    for (const [pg, c] of carried) dst.set(pg, c);
  }
  return res(ok(), 'mremap.move');
}

/**
 * 7.2 remap_move(): a MREMAP_FIXED move of the same size may span several vmas; each is moved
 * in turn keeping the gaps between them; a gap at the start, or no vma at all, is -EFAULT.
 */
function remapMove(d: Draft, mmId: number, addr: number, len: number, newAddr: number, dontunmap: boolean): OpResult {
  const end = addr + len;
  let cur = addr;
  let first = true;
  let lastEnd = 0;
  let target = newAddr;
  for (;;) {
    const v = findVmaFrom(d.s.mms.get(mmId)!, cur);
    if (v === undefined || v.start >= end) break;
    if (first && addr < v.start) return res(err('EFAULT'), 'mremap.no-vma');
    const a = Math.max(v.start, addr);
    const vEnd = v.start + v.pages;
    const n = Math.min(end, vEnd) - a;
    const offset = first ? 0 : v.start - lastEnd;
    lastEnd = vEnd;
    const dst = target + offset;
    const e = resizeCheck(v, a, n, n, dontunmap);
    if (e !== null) return e;
    unmapRange(d, mmId, dst, dst + n);
    const r = moveVma(d, mmId, a, n, dst, n, dontunmap);
    if (r.outcome.kind !== 'ok') return r;
    first = false;
    target = dst + n;
    cur = vEnd;
  }
  if (first) return res(err('EFAULT'), 'mremap.no-vma');
  return res(ok(), 'mremap.move');
}

/** mm/madvise.c madvise_walk_vmas() with MADV_DOFORK. */
function doMadvise(d: Draft, task: Task, op: OpMadvise): OpResult {
  const slot = d.s.mapSlots.get(op.map);
  if (slot === undefined) return res(err('ENOMEM'), 'madvise.unmapped');
  const mm = d.s.mms.get(task.mm)!;
  const end = slotPage(slot) + op.page + op.pages;
  let cur = slotPage(slot) + op.page;
  let unmapped = false;
  for (;;) {
    const v = findVmaFrom(mm, cur);
    if (v === undefined) return res(err('ENOMEM'), 'madvise.unmapped');
    if (cur < v.start) {
      unmapped = true;
      cur = v.start;
      if (cur >= end) break;
    }
    if (v.kind === 'uacce') return res(err('EINVAL'), 'madvise.dofork-io');
    cur = Math.min(v.start + v.pages, end);
    if (cur >= end) break;
  }
  return unmapped ? res(err('ENOMEM'), 'madvise.unmapped') : res(ok(), 'madvise.ok');
}

// ---------------------------------------------------------------------------------------------
// touch and submit

function sigResult(a: Extract<Access, { ok: false }>): OpResult {
  return res(sig(a.signal), a.rule);
}

function doTouch(d: Draft, task: Task, op: OpTouch): OpResult {
  const slot = d.s.mapSlots.get(op.map);
  if (slot === undefined) return res(sig('SIGSEGV'), 'touch.unmapped');
  const pageNo = slotPage(slot) + op.page;
  const idx = op.offset / 4;
  if (op.access === 'read') {
    const a = userLoad(d, task.mm, pageNo, idx, 2);
    if (!a.ok) return sigResult(a);
    const [lo, hi] = a.v;
    return res(lo === null || hi === null || lo === undefined || hi === undefined ? ok() : ok(hex64(lo, hi)), 'touch.read');
  }
  const { lo, hi } = parseHex64(op.value ?? '0x0');
  const r = userStore(d, task.mm, pageNo, idx, [lo, hi], 'raw');
  if (!r.ok) return sigResult(r);
  return res(ok(), 'touch.write');
}

/** the agent's opcodes for work kinds (docs/agent-protocol.md, submit a2) */
const WORK_OPCODE = { write: 1, read: 2, invalid: 7 } as const;

/** The agent's `data` for a completed submit, from the descriptor's STATUS and RESULT. */
const SUBMIT_STATUS_TEXT = (status: number, work: OpSubmit['work'], rlo: Word, rhi: Word): string | undefined => {
  if (status === SVT_STATUS_OK) {
    if (work !== 'read') return 'done';
    return rlo === null || rhi === null ? undefined : `done ${hex64(rlo, rhi)}`;
  }
  if (status === SVT_STATUS_FAULT) return 'fault';
  if (status === SVT_STATUS_BADOP) return 'badop';
  return `status ${status}`;
};

/**
 * The agent's submit (docs/agent-protocol.md "submit"; guest/agent/agent.c t_submit()), access
 * by access: 1. tail = u32 DOORBELL through `mmio`; 2. descriptor (opcode u32, status u32 0,
 * addr u64, value u64) at slot tail % 64 through `dus`; 3. DOORBELL = tail + 1; 4. wait until
 * CQ_HEAD - (tail + 1) >= 0 (signed), 200 ms at most, else ETIMEDOUT; 5. if completed and ack:
 * ACK = CQ_HEAD; 6. STATUS (and RESULT of a completed read) through `dus`. Any access may fault,
 * which the agent reports as a signal.
 */
function doSubmit(d: Draft, task: Task, op: OpSubmit, ch: Chooser): OpResult {
  const mmSlot = d.s.mapSlots.get(op.mmio);
  const dusSlot = d.s.mapSlots.get(op.dus);
  const tgtSlot = d.s.mapSlots.get(op.target);
  if (mmSlot === undefined || dusSlot === undefined) return res(sig('SIGSEGV'), 'touch.unmapped');
  const mmio = slotPage(mmSlot);
  const dus = slotPage(dusSlot);
  const mm = task.mm;

  const a1 = userLoad(d, mm, mmio, REG_WORD.DOORBELL, 1);
  if (!a1.ok) return sigResult(a1);
  const tail = a1.v[0]!;
  const addr = tgtSlot === undefined ? { lo: 0, hi: 0 } : addrHalves(slotPage(tgtSlot) + op.page, op.offset);
  const value = op.work === 'write' ? parseHex64(op.value ?? '0x0') : { lo: 0, hi: 0 };
  const desc: Word[] = [WORK_OPCODE[op.work], 0, addr.lo, addr.hi, value.lo, value.hi];
  // with an unknown tail the descriptor may land in any slot
  const slots = tail === null ? Array.from({ length: 64 }, (_, i) => i) : [tail % 64];
  for (const s of slots) {
    const w = descriptorWords(s);
    const vals = tail === null ? desc.map(() => null) : desc;
    for (const [idx, words] of [
      [w.opcode, [vals[0]!]],
      [w.status, [vals[1]!]],
      [w.addrLo, [vals[2]!, vals[3]!]],
      [w.valueLo, [vals[4]!, vals[5]!]],
    ] as Array<[number, Word[]]>) {
      const r = userStore(d, mm, dus, idx, words, 'raw');
      if (!r.ok) return sigResult(r);
    }
  }
  const newTail = tail === null ? null : u32(tail + 1);
  const a3 = userStore(d, mm, mmio, REG_WORD.DOORBELL, [newTail], 'submit');
  if (!a3.ok) return sigResult(a3);

  // 4. the wait
  let completed: boolean;
  let early = false;
  const sync = a3.sync;
  if (sync !== null && newTail !== null) {
    // the engine ran the n new descriptors while the agent polled: CQ_HEAD read c0 first, then
    // from+1 … from+n
    let firstK = -1;
    for (let k = 0; k <= sync.n; k++) {
      if (diff32(k === 0 ? sync.c0 : u32(sync.from + k), newTail) >= 0) {
        firstK = k;
        break;
      }
    }
    completed = firstK >= 0;
    early = firstK >= 0 && firstK < sync.n;
    // the agent stopped waiting before the engine was done: later ops may see its work or not
    if (early && a3.rung !== null) beginRacy(d, a3.rung);
  } else {
    const a4 = userLoad(d, mm, mmio, REG_WORD.CQ_HEAD, 1);
    if (!a4.ok) return sigResult(a4);
    const cq = a4.v[0]!;
    if (cq === null || newTail === null) {
      // CQ_HEAD is being written by an engine running in the background (or was left unknown
      // by one): the agent may see it pass the tail within 200 ms or not; both are legitimate
      completed = ch.choose(2) === 0;
      early = true;
    } else {
      completed = diff32(cq, newTail) >= 0;
    }
  }

  // 5. with ack (only once completed): ACK = CQ_HEAD
  if (completed && op.ack) {
    const cq = userLoad(d, mm, mmio, REG_WORD.CQ_HEAD, 1);
    if (!cq.ok) return sigResult(cq);
    const r = userStore(d, mm, mmio, REG_WORD.ACK, [early ? null : cq.v[0]!], 'raw');
    if (!r.ok) return sigResult(r);
  }
  // 6. the descriptor's STATUS (read even after a timeout), RESULT for a completed read
  const w = descriptorWords(tail ?? 0);
  const st = userLoad(d, mm, dus, w.status, 1);
  if (!st.ok) return sigResult(st);
  if (!completed) return res(err('ETIMEDOUT'), sync === null && early ? 'submit.unknown' : 'submit.timeout');
  const status = st.v[0]!;
  let result: Word[] = [null, null];
  if (status === SVT_STATUS_OK && op.work === 'read') {
    const rr = userLoad(d, mm, dus, w.resultLo, 2);
    if (!rr.ok) return sigResult(rr);
    result = rr.v;
  }
  const text = early || tail === null || status === null ? undefined : SUBMIT_STATUS_TEXT(status, op.work, result[0]!, result[1]!);
  const rule: RuleId = sync !== null ? (early ? 'submit.race' : 'submit.done') : early ? 'submit.unknown' : 'submit.done';
  return res(ok(text), rule);
}

// ---------------------------------------------------------------------------------------------
// ioctl and poll

/**
 * fs/ioctl.c do_vfs_ioctl(): commands the VFS handles before the driver (x86_64 and arm64 use
 * the asm-generic numbers). The agent passes arg 0, so commands that copy from/to arg fault.
 * Every device node the agent opens lives on devtmpfs or the initramfs (tmpfs/ramfs).
 */
function vfsIoctl(cmd: number, profile: KernelProfile, ch: Chooser): OpResult | undefined {
  switch (cmd) {
    case 0x5450: // FIONCLEX
    case 0x5451: // FIOCLEX
      return res(ok(), 'ioctl.vfs');
    case 0x5421: // FIONBIO: get_user(on, NULL)
    case 0x5452: // FIOASYNC: get_user(on, NULL)
    case 0x2: // FIGETBSZ: put_user(blocksize, NULL)
    case 0x4020940d: // FICLONERANGE: copy_from_user(NULL)
    case 0xc0189436: // FIDEDUPERANGE: get_user(dest_count, NULL)
    case 0x40086602: // FS_IOC_SETFLAGS: get_user(flags, NULL)
    case 0x401c5820: // FS_IOC_FSSETXATTR: copy_from_user(NULL)
      return res(err('EFAULT'), 'ioctl.vfs');
    case 0x5460: // FIOQSIZE on a character device
      return res(err('ENOTTY'), 'ioctl.vfs');
    case 0xc020660b: // FS_IOC_FIEMAP: no i_op->fiemap on a device node
    case 0xc0045877: // FIFREEZE: shmem/ramfs have no freeze_fs
      return res(err('EOPNOTSUPP'), 'ioctl.vfs');
    case 0xc0045878: // FITHAW: thaw_super() of a filesystem that is not frozen
      return res(err('EINVAL'), 'ioctl.vfs');
    case 0x40049409: {
      // FICLONE with source fd 0: depends on what the agent's fd 0 is
      const alt = ['EBADF', 'EXDEV', 'EINVAL'] as const;
      return res(err(alt[ch.choose(alt.length)]!), 'ioctl.vfs-env');
    }
    case 0x80111500: // FS_IOC_GETFSUUID: tmpfs has a uuid (copy to NULL faults), ramfs none
      if (!profile.vfsFsInfoIoctls) return undefined;
      return res(err(ch.choose(2) === 0 ? 'EFAULT' : 'ENOTTY'), 'ioctl.vfs-env');
    case 0x80811501: // FS_IOC_GETFSSYSFSPATH: no sysfs name for tmpfs/ramfs
      if (!profile.vfsFsInfoIoctls) return undefined;
      return res(err('ENOTTY'), 'ioctl.vfs');
    default:
      // FS_IOC_GETFLAGS/FSGETXATTR: no fileattr_get on device inodes -> -ENOIOCTLCMD -> driver;
      // FIONREAD on a non-regular file -> the driver
      return undefined;
  }
}

function doIoctl(d: Draft, task: Task, op: OpIoctl, ch: Chooser): OpResult {
  const qid = task.fds.get(op.fd);
  if (qid === undefined) return res(err('EBADF'), 'fd.ebadf');
  const cmd = ioctlNumber(op.cmd) >>> 0;
  const vfs = vfsIoctl(cmd, d.s.profile, ch);
  if (vfs !== undefined) return vfs;
  const q = d.s.queues.get(qid)!;
  if (q.state !== 'INIT' && q.state !== 'STARTED') return res(err('ENXIO'), 'ioctl.zombie');
  if (cmd === SVT_UACCE_CMD_START_Q) {
    if (q.state !== 'INIT') return res(err('EINVAL'), 'ioctl.start-started');
    const ctr = d.queueCounters(qid);
    driverStart(regs(d, qid), ctr);
    const m = d.queue(qid);
    m.state = 'STARTED';
    m.drv = 'STARTED';
    // consumed = DOORBELL; if the doorbell word is unknown the engine may or may not have work
    if (ctr.consumed === null) beginRacy(d, qid);
    return res(ok(), 'ioctl.start');
  }
  if (cmd === SVT_UACCE_CMD_PUT_Q) {
    if (q.state !== 'STARTED') return res(ok(), 'ioctl.put-init');
    stopQueue(d, qid);
    return res(ok(), 'ioctl.put-stop');
  }
  if (!d.s.device.ioctl) return res(err('EINVAL'), 'ioctl.no-driver-op');
  const r = driverIoctl(cmd, q.id);
  return 'ret' in r ? res(ok(String(r.ret)), 'ioctl.driver') : res(err(r.errno), 'ioctl.driver');
}

function doPoll(d: Draft, task: Task, op: OpPoll, ch: Chooser): OpResult {
  const qid = task.fds.get(op.fd);
  if (qid === undefined) return res(ok('0x0'), 'poll.nofd');
  const q = d.s.queues.get(qid)!;
  if (q.state !== 'INIT' && q.state !== 'STARTED') return res(ok('0x0'), 'poll.zombie');
  // while the engine runs unobserved the consumed count is unknown
  const news = q.racy ? null : isQueueUpdated(regs(d, qid), q.ctr.consumed);
  if (news === true) return res(ok('0x1'), 'poll.news');
  if (news === false && !q.racy) return res(ok('0x0'), 'poll.none');
  // an engine running in the background may complete work before or during the wait
  return res(ok(ch.choose(2) === 0 ? '0x1' : '0x0'), 'poll.maybe');
}

// ---------------------------------------------------------------------------------------------
// fork and exit

function doFork(d: Draft, task: Task, op: OpFork): OpResult {
  if (d.s.tasks.has(op.child)) return res(err('EINVAL'), 'program.malformed');
  const parent = d.s.mms.get(task.mm)!;
  const wild = isWild(d.s, parent.id);
  const mmId = d.newKey();
  const vmas: Vma[] = [];
  const pages = new Map<number, Page>();
  for (const v of parent.vmas) {
    // uacce vmas are VM_DONTCOPY (uacce_fops_mmap): the child has no mapping there
    if (v.kind !== 'anon') continue;
    // anon_vma_fork(): the child's vma gets its own anon_vma
    vmas.push({ ...v, anonVma: v.anonVma === null ? null : d.newKey(), forked: v.anonVma !== null });
    for (let pg = v.start; pg < v.start + v.pages; pg++) {
      if (wild) pages.set(pg, d.adopt(emptyPage(BASE_UNKNOWN)));
      else {
        const c = parent.pages.get(pg);
        if (c !== undefined) pages.set(pg, c);
      }
    }
  }
  d.put('mms', mmId, { id: mmId, alive: true, vmas, pages });
  d.put('tasks', op.child, { name: op.child, alive: true, mm: mmId, fds: new Map(task.fds) });
  for (const qid of task.fds.values()) addRef(d, qid);
  return res(ok(), 'fork.ok');
}

function doExit(d: Draft, task: Task): OpResult {
  // exit_mm(): every mapping goes (the mm is gone: mmget_not_zero() fails from now on) ...
  unmapRange(d, task.mm, -Infinity, Infinity);
  d.mm(task.mm).alive = false;
  // ... then exit_files()
  const fds = [...task.fds.values()];
  d.taskFds(task.name).clear();
  for (const qid of fds) dropRef(d, qid);
  d.task(task.name).alive = false;
  return res(ok(), 'exit.ok');
}

// ---------------------------------------------------------------------------------------------
// sysfs

const RO_ATTRS = new Set(['api', 'flags', 'available_instances', 'algorithms', 'region_mmio_size', 'region_dus_size', 'isolate']);

/** uacce_dev_is_visible() (and the attributes' existence per kernel). */
function attrVisible(s: ModelState, attr: string): boolean {
  const dev = s.device;
  switch (attr) {
    case 'region_mmio_size':
      return dev.mmio_pages > 0;
    case 'region_dus_size':
      return dev.dus_pages > 0;
    case 'isolate':
      return s.profile.sysfsIsolate && dev.isolate_state;
    case 'isolate_strategy':
      return s.profile.sysfsIsolate && dev.isolate_ops !== 'none';
    default:
      return true;
  }
}

function doSysfsRead(d: Draft, op: OpSysfsRead, ch: Chooser): OpResult {
  const inst = boundInstance(d.s, op.dev);
  if (inst === undefined) return res(err('ENOENT'), 'sysfs.gone');
  if (!attrVisible(d.s, op.attr)) return res(err('ENOENT'), 'sysfs.hidden');
  const dev = d.s.device;
  switch (op.attr) {
    case 'api':
      return res(ok(`${dev.api}\n`), 'sysfs.read');
    case 'flags':
      return res(ok(`${inst.flags}\n`), 'sysfs.read');
    case 'available_instances':
      return res(ok(`${availableInstances(dev, inst.liveQueues)}\n`), 'sysfs.read');
    case 'algorithms':
      // the driver hands uacce its names one per line; algorithms_show prints "%s\n"
      return res(ok(`${dev.algorithms.join('\n')}\n`), 'sysfs.read');
    case 'region_mmio_size':
      return res(ok(`${dev.mmio_pages * SVT_PAGE_SIZE}\n`), 'sysfs.read');
    case 'region_dus_size':
      return res(ok(`${dev.dus_pages * SVT_PAGE_SIZE}\n`), 'sysfs.read');
    case 'isolate': {
      const st = isolateState(inst.threshold, inst.faultTotal);
      if (st !== null) return res(ok(`${st}\n`), 'sysfs.read');
      // the fault total is unknown (an engine ran unobserved): either state is legitimate
      return res(ok(ch.choose(2) === 0 ? '0\n' : '1\n'), 'sysfs.read');
    }
    case 'isolate_strategy':
      if (dev.isolate_ops !== 'read' && dev.isolate_ops !== 'both') return res(err('ENOENT'), 'sysfs.read-noop');
      return res(ok(`${inst.threshold}\n`), 'sysfs.read');
  }
}

/** lib/kstrtox.c kstrtoull(s, 0): optional '+', 0x/0 prefix, digits, one optional '\n'. */
export function kstrtoul(s: string): number | 'EINVAL' | 'ERANGE' {
  let i = 0;
  if (s[i] === '+') i++;
  let base = 10;
  if (s[i] === '0') {
    base = (s[i + 1] === 'x' || s[i + 1] === 'X') && /[0-9a-fA-F]/.test(s[i + 2] ?? '') ? 16 : 8;
  }
  if (base === 16) i += 2;
  let val = 0n;
  let digits = 0;
  for (; i < s.length; i++) {
    const c = s[i]!.toLowerCase();
    const dv = c >= '0' && c <= '9' ? c.charCodeAt(0) - 48 : c >= 'a' && c <= 'f' ? c.charCodeAt(0) - 87 : 99;
    if (dv >= base) break;
    val = val * BigInt(base) + BigInt(dv);
    digits++;
  }
  if (val > 0xffffffffffffffffn) return 'ERANGE';
  if (digits === 0) return 'EINVAL';
  if (s[i] === '\n') i++;
  if (i !== s.length) return 'EINVAL';
  return val > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(val);
}

function doSysfsWrite(d: Draft, op: OpSysfsWrite): OpResult {
  const inst = boundInstance(d.s, op.dev);
  if (inst === undefined) return res(err('ENOENT'), 'sysfs.gone');
  if (!attrVisible(d.s, op.attr)) return res(err('ENOENT'), 'sysfs.hidden');
  if (RO_ATTRS.has(op.attr)) return res(err('EACCES'), 'sysfs.readonly');
  if (op.value.length === 0) return res(ok(), 'sysfs.write-empty');
  const ops = d.s.device.isolate_ops;
  if (ops !== 'write' && ops !== 'both') return res(err('ENOENT'), 'sysfs.write-noop');
  const v = kstrtoul(op.value);
  if (typeof v !== 'number' || v > 65535) return res(err('EINVAL'), 'sysfs.write-invalid');
  d.instance(inst.key).threshold = v;
  return res(ok(), 'sysfs.write');
}
