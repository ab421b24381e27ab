/**
 * The model of the uacce ops (harness/ops/uacce.ts): devices (probe, removal, re-adding), opening
 * a queue, mapping its regions, work items, the ioctls, poll and sysfs. Each op's `check` says
 * what the kernel is meant to do in a state (the outcome, the rule that decides it, the changes
 * to a Draft), as a fast-check command checks its model; the agent runs the op on the system
 * (its description's C). Every rule cites its source (rules.ts).
 *
 * Outcome values (what `ok(value)` carries; an `ok` without value accepts any value):
 *   open          the path opened: "/dev/svt<N>-<id>" (path), "/tmp/svt<N>.node" (mknod);
 *                 none for procfd (the fd number is the agent's)
 *   submit        the agent's data: "done", "done 0x…" (read), "fault", "badop", "status N"
 *   ioctl         PING: the queue id in decimal; START_Q/PUT_Q/VFS commands: none
 *   poll          revents: "0x1" or "0x0" (timed out). uacce_fops_poll() returns
 *                 EPOLLIN|EPOLLRDNORM, but fs/select.c do_pollfd() masks it with the requested
 *                 events (the agent asks for POLLIN only)
 *   sysfs_read    the file's exact contents
 */
import { err, ok, sig } from '../program/outcome.js';
import type { DeviceParams, Op, OpAdd, OpIoctl, OpMmap, OpOpen, OpPoll, OpRemove, OpSubmit, OpSysfsRead, OpSysfsWrite } from '../program/types.js';
import type { Outcome } from '../program/outcome.js';
import { ioctlNumber, workOpcode } from '../ops/uacce.js';
import {
  REG_WORD,
  SVT_PAGE_SIZE,
  SVT_STATUS_BADOP,
  SVT_STATUS_FAULT,
  SVT_STATUS_OK,
  SVT_STATUS_PENDING,
  SVT_UACCE_CMD_PUT_Q,
  SVT_UACCE_CMD_START_Q,
  SVT_UACCE_DEV_SVA,
} from '../device/abi.js';
import { devBase, diff32, emptyPage, hex64, parseHex64, setWord, u32, type Page, type Word } from '../device/memory.js';
import {
  parentFacts,
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
  insertVma,
  purgeCdev,
  putQueue,
  regs,
  slotPage,
  stopQueue,
  userLoad,
  userStore,
} from './kernel.js';
import { res, sigResult, type ModelOps, type OpResult } from './result.js';
import type { KernelProfile } from './profile.js';
import type { RuleId } from './rules.js';
import { Draft, type Chooser, type Instance, type ModelState, type Queue, type Task } from './state.js';
import { bindQueue, isBound } from './sva.js';

/** The rules of these ops, with where each comes from (rules.ts says how sources are cited). */
export const UACCE_RULES = {
  'open.path-gone':
    'Spec "open": removed device: the agent opens the last node name, which device_del() removed from devtmpfs: ENOENT',
  'open.procfd-nofd': 'the agent opens /proc/self/fd/-1 when the task lacks the descriptor `of`: ENOENT',
  'open.no-cdev':
    'fs/char_dev.c chrdev_open() 6.1-7.2: inode->i_cdev unset and kobj_lookup() finds no cdev for i_rdev (the device is gone): ENXIO',
  'open.no-device':
    'uacce_fops_open() 6.1-7.2: xa_load(&uacce_xa, iminor(inode)) is NULL (stale node of a removed device): ENODEV; Spec "open"',
  'open.parent-gone':
    'uacce_fops_open() 6.1-7.2: an open that found the device (xa_load) before uacce_remove() erased it, and took uacce->mutex after the removal let go of it: !uacce->parent -> -EINVAL (only an open overlapping the removal in time)',
  'sysfs.read-removed':
    'fs/kernfs/file.c kernfs_seq_start() 6.1-7.2: the attribute file was opened before cdev_device_del() removed it and read after kernfs deactivated the node (kernfs_get_active() fails): -ENODEV (only a read overlapping the removal in time)',
  'open.sva-nogroup':
    'uacce_bind_queue() -> iommu_sva_bind_device(): parent without IOMMU group: ENODEV (drivers/iommu/iommu-sva.c 7.2); Spec "open" 6.16+',
  'open.sva-killswitch': 'Debian x86 6.1/6.12 stable patch: every SVA bind fails with EOPNOTSUPP (profile fact)',
  'open.sva-unsupported':
    'uacce_bind_queue() -> iommu_sva_bind_device(): the !CONFIG_IOMMU_SVA stub (include/linux/iommu.h 7.2) returns ERR_PTR(-ENODEV): ENODEV (Debian arm64, profile fact iommuSva)',
  'open.busy': 'TD "get_queue": -EBUSY once queue_limit queues are live; uacce_fops_open() returns it',
  'open.ok': 'uacce_fops_open(): new queue in UACCE_Q_INIT bound to the opener mm; TD get_queue initialises its pages',
  'mmap.region-invalid':
    'uacce_fops_mmap() 6.1-7.2: vm_pgoff >= UACCE_MAX_REGION -> -EINVAL before any state check (Spec "mmap")',
  'mmap.zombie': 'uacce_fops_mmap(): !uacce_queue_is_valid(q) -> -ENXIO (Spec "Device removal")',
  'mmap.exists': 'uacce_fops_mmap(): q->qfrs[type] set -> -EEXIST: one live mapping per region per queue (Spec "mmap")',
  'mmap.no-region': 'TD "mmap": -EINVAL if the region has 0 pages',
  'mmap.too-long': 'TD "mmap": -EINVAL if the vma is longer than the region',
  'mmap.ok': 'uacce_fops_mmap() + TD mmap: remap_pfn_range of the region from its first page; the region is mapped',
  'submit.done': 'AP "submit" + TD "The engine": the work item completed; data from its descriptor',
  'submit.timeout': 'AP "submit": CQ_HEAD did not pass the new tail within 1000 looks 200 µs apart (queue not started, or no device doorbell): ETIMEDOUT',
  'submit.race':
    'the agent\'s wait ended before the engine finished (CQ_HEAD was already past the tail): what it read is timing-dependent',
  'submit.unknown': 'the engine runs asynchronously on this queue (doorbell rung outside a submit): completion and data are timing-dependent',
  'ioctl.vfs': 'fs/ioctl.c do_vfs_ioctl(): generic command handled before the driver (argument 0)',
  'ioctl.vfs-env': 'fs/ioctl.c do_vfs_ioctl(): generic command whose result depends on the agent environment or filesystem',
  'ioctl.zombie': 'uacce_fops_unl_ioctl(): !uacce_queue_is_valid(q) -> -ENXIO for every command (Spec "ioctl")',
  'ioctl.start': 'uacce_start_queue(): INIT -> driver start_queue -> STARTED, 0 (TD start_queue)',
  'ioctl.start-started': 'uacce_start_queue(): state != UACCE_Q_INIT -> -EINVAL (Spec "ioctl")',
  'ioctl.put-stop': 'UACCE_CMD_PUT_Q -> uacce_stop_queue(): driver stop_queue, back to INIT, 0 (Spec "ioctl")',
  'ioctl.put-init': 'UACCE_CMD_PUT_Q on an INIT queue: 0, nothing changes (Spec "ioctl")',
  'ioctl.driver': 'uacce_fops_unl_ioctl() default: the driver ioctl (TD: PING returns the queue id, others -ENOTTY)',
  'ioctl.no-driver-op': 'uacce_fops_unl_ioctl() default without ops->ioctl: -EINVAL, not -ENOTTY (Spec "ioctl")',
  'poll.nofd': 'fs/select.c do_pollfd(): a negative fd is ignored (the agent passes -1): poll times out with 0',
  'poll.zombie': 'uacce_fops_poll(): invalid queue -> no events, poll times out (Spec "Device removal")',
  'poll.news': 'uacce_fops_poll(): is_q_updated (TD: CQ_HEAD != ACK) -> EPOLLIN|EPOLLRDNORM; do_pollfd() keeps the requested POLLIN',
  'poll.none': 'uacce_fops_poll(): no news and nothing can complete during the wait: timeout, 0',
  'poll.maybe': 'news depends on an asynchronously running engine: either readable or a timeout',
  'remove.ok':
    'uacce_remove(): every queue stopped, put, ZOMBIE; every mapping zapped; cdev deleted; id freed (Spec "Device removal")',
  'remove.unbound': 'drivers/base/bus.c unbind_store(): device not bound to the driver -> -ENODEV',
  'add.ok': 'drivers/base/bus.c bind_store() -> probe: a fresh uacce device; uacce_alloc() xa_alloc gives the lowest free id',
  'add.bound': 'drivers/base/dd.c __driver_probe_device(): dev->driver already set -> -EBUSY',
  'dev.nonexistent': 'bus_find_device_by_name() finds no svadiff_test.<N>: -ENODEV',
  'sysfs.gone': 'the device\'s class directory is gone after removal (the agent uses the last name): ENOENT',
  'sysfs.hidden':
    'uacce_dev_is_visible(): region size without pages, isolate without get_isolate_state, isolate_strategy without either op, isolate files before 6.2: ENOENT',
  'sysfs.read': 'uacce attribute show functions (sysfs_emit "%s\\n" / "%u\\n" / "%d\\n")',
  'sysfs.read-noop': 'isolate_strategy_show(): no isolate_err_threshold_read -> -ENOENT',
  'sysfs.readonly':
    'fs/kernfs/file.c kernfs_fop_open() (KERNFS_ROOT_EXTRA_OPEN_PERM_CHECK): opening a read-only attribute for writing -> EACCES',
  'sysfs.write-empty': 'fs/sysfs/file.c sysfs_kf_write(): a zero-length write returns 0 before the store',
  'sysfs.write-noop': 'isolate_strategy_store(): no isolate_err_threshold_write -> -ENOENT',
  'sysfs.write-invalid': 'isolate_strategy_store(): kstrtoul() fails or value > UACCE_MAX_ERR_THRESHOLD (65535) -> -EINVAL',
  'sysfs.write': 'isolate_strategy_store(): the driver stores the threshold; the write returns count',
} as const;

// ---------------------------------------------------------------------------------------------
// Devices

/** The bound uacce instance of device index `dev`, if any. */
function boundInstance(s: ModelState, dev: number): Instance | undefined {
  const key = s.devs[dev]?.instance;
  return key === null || key === undefined ? undefined : s.instances.get(key);
}

/**
 * uacce_alloc() flags: up to 6.15 uacce_enable_sva() keeps UACCE_DEV_SVA only if the parent can
 * enable IOPF and SVA (iommu_dev_enable_feature(), which fails without an IOMMU group; the
 * svadiff-sva endpoint has one and both features enable: sysfs flags reads 1 on Debian 6.12);
 * from 6.16 the flag is kept as requested.
 */
function negotiatedFlags(profile: KernelProfile, device: DeviceParams): number {
  if (!device.sva) return 0;
  if (profile.sva === 'bind-every-open') return SVT_UACCE_DEV_SVA;
  // without IOMMU SVA (Debian arm64) the IOPF feature cannot be enabled: profile.iommuSva
  return parentFacts(device).hasIommuGroup && profile.iommuSva ? SVT_UACCE_DEV_SVA : 0;
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
    flags: negotiatedFlags(d.s.profile, d.s.device),
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

/** The queues uacce_remove() puts: the instance's queues not put yet. */
function queuesToPut(s: ModelState, inst: Instance): number[] {
  return [...s.queues.values()].filter((q) => q.instance === inst.key && (q.state === 'INIT' || q.state === 'STARTED')).map((q) => q.id);
}

function doRemove(d: Draft, op: OpRemove): OpResult {
  if (op.dev >= d.s.devs.length) return res(err('ENODEV'), 'dev.nonexistent');
  const inst = boundInstance(d.s, op.dev);
  if (inst === undefined) return res(err('ENODEV'), 'remove.unbound');
  // uacce_remove(): for each queue: uacce_put_queue(), unbind, unmap_mapping_range(q->mapping)
  for (const qid of queuesToPut(d.s, inst)) {
    putQueue(d, qid);
    zapQueueMappings(d, qid);
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
 * What a sysfs read running at the same time may see while uacce_remove() runs: the state after
 * each queue's uacce_put_queue() (the driver's count of live queues already down, so
 * available_instances is higher), the device's attributes still there. uacce_remove() puts the
 * queues one by one and only then calls cdev_device_del(), which removes the attributes and
 * waits for the reads in progress; available_instances_show() and the other attribute shows
 * take neither uacce->mutex nor q->mutex (drivers/misc/uacce/uacce.c, 6.1 and 6.12). The
 * states before the first put and after the removal are the ones around the op.
 */
function removeSteps(s: ModelState, op: OpRemove): ModelState[] {
  const inst = op.dev < s.devs.length ? boundInstance(s, op.dev) : undefined;
  if (inst === undefined) return [];
  const qids = queuesToPut(s, inst);
  return qids.map((_, k) => {
    const d = new Draft(s);
    for (const qid of qids.slice(0, k + 1)) {
      putQueue(d, qid);
      zapQueueMappings(d, qid);
    }
    return d.s;
  });
}

/**
 * What an open that overlapped a removal of its device in time may give besides the outcomes of
 * the orders open-then-remove and remove-then-open, placed after the removal (`after`: the
 * state after it; the failed open changes nothing). uacce_fops_open() (6.1-7.2) looks the device
 * up with xa_load() without uacce->mutex, then waits for the mutex that uacce_remove() holds
 * from its first queue put to after xa_erase() and `uacce->parent = NULL`: found before the
 * erase, the open then fails its !uacce->parent check with EINVAL. (The cdev reference
 * chrdev_open() took keeps uacce->dev, the cdev's kobject parent, alive meanwhile.) And
 * chrdev_open() may find the cdev before uacce_remove()'s cdev_device_del() while
 * uacce_fops_open()'s xa_load() runs after the xa_erase() that follows it (uacce.c 7.2.13:
 * uacce_fops_open() lines 157-159, uacce_remove() lines 644-645; the same order in 6.12.118):
 * ENODEV, as for a stale node. Seen on debian:7.2.13 in a 10-minute fuzz run.
 */
export function openAcrossRemove(before: ModelState, after: ModelState, op: Op, writer: Op): { outcome: Outcome; rule: RuleId; next: ModelState }[] {
  if (op.op !== 'open' || writer.op !== 'remove' || op.dev !== writer.dev) return [];
  if (op.dev >= before.devs.length || boundInstance(before, op.dev) === undefined) return [];
  const task = after.tasks.get(op.task);
  if (task === undefined || !task.alive || task.fds.has(op.fd)) return [];
  const next = { ...after, ops: after.ops + 1 };
  return [
    { outcome: err('EINVAL'), rule: 'open.parent-gone', next },
    { outcome: err('ENODEV'), rule: 'open.no-device', next },
  ];
}

/**
 * The same for a sysfs read of the removed device: the agent opens the attribute file, then
 * reads it. Opened before cdev_device_del() (device_del()) removed the attributes and read after
 * kernfs deactivated them, the read fails in kernfs_seq_start() with ENODEV (fs/kernfs/file.c:
 * kernfs_get_active() refuses a deactivated node).
 */
export function sysfsReadAcrossRemove(before: ModelState, after: ModelState, op: Op, writer: Op): { outcome: Outcome; rule: RuleId; next: ModelState }[] {
  if (op.op !== 'sysfs_read' || writer.op !== 'remove' || op.dev !== writer.dev) return [];
  if (op.dev >= before.devs.length || boundInstance(before, op.dev) === undefined || !attrVisible(before, op.attr)) return [];
  const task = after.tasks.get(op.task);
  if (task === undefined || !task.alive) return [];
  return [{ outcome: err('ENODEV'), rule: 'sysfs.read-removed', next: { ...after, ops: after.ops + 1 } }];
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
    const e = !d.s.profile.iommuSva
      ? res(err('ENODEV'), 'open.sva-unsupported')
      : !parentFacts(d.s.device).hasIommuGroup
        ? res(err('ENODEV'), 'open.sva-nogroup')
      : d.s.profile.svaBindKillSwitch
        ? res(err('EOPNOTSUPP'), 'open.sva-killswitch')
        : undefined;
    // a working bind (the PCI backend on a kernel without the kill switch): sva.ts bindQueue
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
  const bound = (inst.flags & SVT_UACCE_DEV_SVA) !== 0;
  const pasid: Word = bound ? bindQueue(d, task.mm) : 0;
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
  return res(ok(path), bound ? 'open.sva-bind' : 'open.ok');
}

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
 * by access: 1. tail = u32 DOORBELL through `mmio`; 2. descriptor (opcode u32, status u32 PENDING,
 * addr u64, value u64) at slot tail % 64 through `dus`; 3. DOORBELL = tail + 1; 4. wait until
 * CQ_HEAD - (tail + 1) >= 0 (signed), 1000 looks (200 ms or more) or 2 s at most, else ETIMEDOUT; 5. if completed and ack:
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
  const desc: Word[] = [workOpcode(op.work), SVT_STATUS_PENDING, addr.lo, addr.hi, value.lo, value.hi];
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
  let rule: RuleId = sync !== null ? (early ? 'submit.race' : 'submit.done') : early ? 'submit.unknown' : 'submit.done';
  // a bound queue's work item went through the IOMMU (sva.ts): its rule says how it ended
  const rungQ = a3.rung === null ? undefined : d.s.queues.get(a3.rung);
  if (rule === 'submit.done' && op.work !== 'invalid' && rungQ !== undefined && isBound(rungQ)) {
    rule = status === SVT_STATUS_FAULT && d.s.mms.get(rungQ.openerMm)?.alive === false ? 'submit.sva-mm-gone' : 'submit.sva-translated';
  }
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

// ---------------------------------------------------------------------------------------------
// The uacce ops' model

export const UACCE_MODEL: ModelOps<'open' | 'mmap' | 'submit' | 'ioctl' | 'poll' | 'remove' | 'add' | 'sysfs_read' | 'sysfs_write'> = {
  open: { check: doOpen },
  mmap: { check: doMmap },
  submit: { check: doSubmit },
  ioctl: { check: doIoctl },
  poll: { check: doPoll },
  remove: { check: (d, _task, op) => doRemove(d, op), during: removeSteps },
  add: { check: (d, _task, op) => doAdd(d, op) },
  sysfs_read: { check: (d, _task, op, ch) => doSysfsRead(d, op, ch) },
  sysfs_write: { check: (d, _task, op) => doSysfsWrite(d, op) },
};
