/**
 * The model of DMA through a user-owned domain (harness/ops/dma.ts): the type1 backend's
 * mappings of task memory (VFIO_IOMMU_MAP_DMA / UNMAP_DMA), what an endpoint can reach by DMA
 * (`Reach`: the blocking domain, or IOVA pages that reach pinned task memory), and the
 * endpoint's engine run against one IOVA page (ep_dma): what it reads, what it writes back, and
 * whether the IOMMU refuses an access (a DMA remapping fault the model expects: `dmaFaults`).
 * Rules: docs/ownership-semantics.md "What the device can reach by DMA" (Own), from Debian's
 * 6.12.118 sources (drivers/vfio/vfio_iommu_type1.c, container.c, pci/vfio_pci_*.c, mm/) and
 * the endpoint's model qemu/files/hw/misc/svadiff-sva.c (svt_ep_run_one()).
 */
import { EP_DMA_CONSUMED, EP_DMA_RING } from '../agent/conventions.js';
import { REG_WORD, SVT_OP_READ64, SVT_OP_WRITE64, SVT_STATUS_BADOP } from '../device/abi.js';
import { BASE_ZERO, emptyPage, pageWord, setWord, u32, type Word } from '../device/memory.js';
import { descriptorWords, ENGINE_BATCH } from '../device/testdev.js';
import type { OpOf } from '../ops/index.js';
import { err, ok } from '../program/outcome.js';
import { findVma, isWild, noteWriteFault, slotPage } from './kernel.js';
import { res, type ModelOps, type OpResult } from './result.js';
import type { Draft, ModelState, Task } from './state.js';
import { iommufdReach } from './iommufd.js';
import { editVfio, vfioFile } from './vfio.js';

export const DMA_RULES = {
  'dma.ebadf': 'the descriptor is not open in the task -> EBADF (fdget)',
  'dma.not-vfio': 'the descriptor is not a vfio file (the generator never makes this; the model does not follow other files\' ioctls)',
  'dma.enotty':
    'a vfio group fd knows no container or device ioctl (drivers/vfio/group.c vfio_group_fops_unl_ioctl() default), a device fd not VFIO_IOMMU_UNMAP_DMA (VFIO_BASE + 14: vfio_pci_core_ioctl() default), a container with its backend no device ioctl (vfio_iommu_type1_ioctl() default) -> -ENOTTY (Own "The type1 backend")',
  'dma.device-hot-reset':
    'include/uapi/linux/vfio.h: VFIO_IOMMU_MAP_DMA is VFIO_BASE + 13, the number of VFIO_DEVICE_PCI_HOT_RESET: on a device fd drivers/vfio/pci/vfio_pci_core.c vfio_pci_ioctl_pci_hot_reset() reads the map\'s flags (READ set) as hot reset flags -> -EINVAL',
  'dma.iommufd-compat':
    'drivers/iommu/iommufd/vfio_compat.c iommufd_vfio_ioctl(): /dev/iommu takes MAP_DMA/UNMAP_DMA as vfio compat ioctls; get_compat_ioas(): no compat IOAS (the ops never set one) -> -ENODEV',
  'dma.cdev-unbound':
    'drivers/vfio/vfio_main.c vfio_device_fops_unl_ioctl(): a device cdev not yet bound to an iommufd (access_granted unset) takes no ioctl -> -EINVAL',
  'dma.no-backend': 'drivers/vfio/container.c vfio_fops_unl_ioctl(): a container without a backend passes no ioctl on -> -EINVAL (Own "The type1 backend")',
  'type1.map-exists': 'drivers/vfio/vfio_iommu_type1.c vfio_dma_do_map(): vfio_find_dma() finds a mapping in the IOVA range -> -EEXIST (Own "The type1 backend")',
  'type1.map-efault':
    'vfio_pin_map_dma() -> vaddr_get_pfns() -> pin_user_pages_remote(FOLL_LONGTERM[|FOLL_WRITE]): a page without an anonymous vma that allows the access (mm/gup.c check_vma_flags(); a queue mapping is VM_PFNMAP and its pages are not reserved) -> -EFAULT, the mapping undone (Own "The type1 backend")',
  'type1.map-ok':
    'vfio_dma_do_map(): the pages are pinned (a writeable mapping write-faults them in; a read-only pin of a never written page pins the zero page: include/linux/mm.h folio_is_longterm_pinnable()) and mapped at the IOVA (Own "The type1 backend")',
  'type1.unmap-bisect': 'vfio_dma_do_unmap() (v2): the range starts or ends inside a mapping -> -EINVAL (Own "The type1 backend")',
  'type1.unmap-ok': 'vfio_dma_do_unmap(): every mapping inside the range is unmapped and unpinned, unmap.size says how much (0 for none) (Own "The type1 backend")',
  'epdma.blocked':
    'the group is user owned without a backend domain (blocking domain: a group whose iommufd-bound device is attached to no HWPT) or the IOVA is not mapped: the first DMA read (DOORBELL) faults, the queue stops with DMA_ERROR (svt_ep_run_one()) -> dma-error 0 and a DMA remapping fault (Own "What the device can reach by DMA")',
  'epdma.read-only':
    'the IOVA page is mapped read-only (no VFIO_DMA_MAP_FLAG_WRITE): the engine reads DOORBELL and the descriptor, its STATUS write faults -> dma-error N and a DMA remapping fault (Own "The endpoint\'s engine")',
  'epdma.done':
    'svt_ep_run_one() from CONSUMED 0xffffffff: each descriptor up to DOORBELL that is not WRITE64/READ64 completes with STATUS BADOP written into it and CQ_HEAD = CONSUMED+1, in the memory pinned behind the IOVA (Own "The endpoint\'s engine")',
  'epdma.unknown':
    'the engine reads words the model does not know (a page no task sees any more, memory a racing engine may write), meets a WRITE64/READ64 descriptor (PASID access of a vfio-owned endpoint, not modelled) or more than one look of descriptors: the op succeeds, what it did is not predicted (Own "Not covered yet")',
} as const;

/** Where a pinned page is: the address space and page it was pinned in, and how to find it again. */
export interface DmaPin {
  mm: number;
  pageNo: number;
  /** the vma's anon_vma and the page's index in it (vm_pgoff): the page's identity in that mm */
  anonVma: number | null;
  index: number;
  /** a read-only pin of a page never written: the shared zero page */
  zero: boolean;
}

/** One VFIO_IOMMU_MAP_DMA of a container's type1 backend. */
export interface DmaMapping {
  iova: number;
  pages: number;
  write: boolean;
  task: string;
  map: string;
  page: number;
  pins: DmaPin[];
}

/**
 * What an endpoint can reach by DMA: nothing (the blocking domain), or per IOVA page the task
 * memory behind it. harness/model/iommufd.ts gives the IOAS's (without `pin`: the page the
 * task's mapping holds now).
 */
export type Reach = 'blocked' | Map<number, { task: string; map: string; page: number; write: boolean; pin?: DmaPin }>;

/** The type1 reach of endpoint ep on the group path, undefined if its group is not user owned. */
export function groupReach(s: ModelState, ep: number): Reach | undefined {
  const v = s.vfio;
  if (v === undefined || v.drivers[ep] !== 'vfio') return undefined;
  const key = v.groups[v.groupOf[ep]!]!.vgroup;
  const vg = key === null ? undefined : v.vgroups.get(key);
  if (vg === undefined || vg.container === null) return undefined;
  const c = v.containers.get(vg.container)!;
  if (!c.iommu) return 'blocked';
  const out = new Map<number, { task: string; map: string; page: number; write: boolean; pin?: DmaPin }>();
  for (const m of c.dma ?? []) for (let k = 0; k < m.pages; k++) out.set(m.iova + k, { task: m.task, map: m.map, page: m.page + k, write: m.write, pin: m.pins[k]! });
  return out;
}

/**
 * What endpoint ep can reach now: through iommufd when an iommufd context owns its group
 * (harness/model/iommufd.ts iommufdReach: the IOAS behind the group's HWPT, or blocked), else
 * through the group path's container.
 */
export function reachOf(s: ModelState, ep: number): Reach | undefined {
  return iommufdReach(s, ep) ?? groupReach(s, ep);
}

// ---------------------------------------------------------------------------------------------
// VFIO_IOMMU_MAP_DMA / UNMAP_DMA

/** The container of a container-ioctl's descriptor, or the outcome for another descriptor. */
function containerOf(d: Draft, task: Task, fd: string, map: boolean): number | OpResult {
  const key = vfioFile(d.s, task.name, fd);
  if (key === undefined) return task.fds.has(fd) ? res(err('EINVAL'), 'dma.not-vfio') : res(err('EBADF'), 'dma.ebadf');
  const f = d.s.vfio!.files.get(key)!;
  if (f.kind === 'iommufd') return res(err('ENODEV'), 'dma.iommufd-compat');
  if (f.kind === 'cdev' && f.ctx === null) return res(err('EINVAL'), 'dma.cdev-unbound');
  if ((f.kind === 'device' || f.kind === 'cdev') && map) return res(err('EINVAL'), 'dma.device-hot-reset');
  if (f.kind !== 'container') return res(err('ENOTTY'), 'dma.enotty');
  if (!d.s.vfio!.containers.get(f.container)!.iommu) return res(err('EINVAL'), 'dma.no-backend');
  return f.container;
}

function doMap(d: Draft, task: Task, op: OpOf<'vfio_map_dma'>): OpResult {
  const ck = containerOf(d, task, op.container, true);
  if (typeof ck !== 'number') return ck;
  const c = d.s.vfio!.containers.get(ck)!;
  const end = op.iova + op.pages;
  if ((c.dma ?? []).some((m) => m.iova < end && op.iova < m.iova + m.pages)) return res(err('EEXIST'), 'type1.map-exists');
  const mmId = task.mm;
  const slot = d.s.mapSlots.get(op.map);
  if (slot === undefined) return res(err('EFAULT'), 'type1.map-efault');
  const first = slotPage(slot) + op.page;
  for (let p = first; p < first + op.pages; p++) {
    const v = findVma(d.s.mms.get(mmId)!, p);
    if (v === undefined || v.kind !== 'anon' || v.prot === 'none' || (op.write && v.prot !== 'rw')) return res(err('EFAULT'), 'type1.map-efault');
  }
  const pins: DmaPin[] = [];
  for (let p = first; p < first + op.pages; p++) {
    let zero = false;
    if (op.write) {
      // FOLL_WRITE: the write fault gives the page (and its vma an anon_vma) before the pin
      d.mmPage(mmId, p, () => emptyPage(BASE_ZERO));
      noteWriteFault(d, mmId, p);
    } else {
      zero = !d.s.mms.get(mmId)!.pages.has(p);
    }
    const v = findVma(d.s.mms.get(mmId)!, p)!;
    if (v.kind !== 'anon') throw new Error('model: pinned a non-anonymous page');
    pins.push({ mm: mmId, pageNo: p, anonVma: v.anonVma, index: v.pgoff + (p - v.start), zero });
  }
  const vc = editVfio(d).containers.get(ck)!;
  vc.dma = [...(vc.dma ?? []), { iova: op.iova, pages: op.pages, write: op.write, task: task.name, map: op.map, page: op.page, pins }];
  return res(ok(), 'type1.map-ok');
}

function doUnmap(d: Draft, task: Task, op: OpOf<'vfio_unmap_dma'>): OpResult {
  const ck = containerOf(d, task, op.container, false);
  if (typeof ck !== 'number') return ck;
  const maps = d.s.vfio!.containers.get(ck)!.dma ?? [];
  const end = op.iova + op.pages;
  const at = (p: number) => maps.find((m) => m.iova <= p && p < m.iova + m.pages);
  const a = at(op.iova);
  const b = at(end - 1);
  if ((a && a.iova !== op.iova) || (b && b.iova + b.pages !== end)) return res(err('EINVAL'), 'type1.unmap-bisect');
  const gone = maps.filter((m) => m.iova >= op.iova && m.iova + m.pages <= end);
  if (gone.length > 0) editVfio(d).containers.get(ck)!.dma = maps.filter((m) => !gone.includes(m));
  return res(ok(String(gone.reduce((n, m) => n + m.pages, 0))), 'type1.unmap-ok');
}

// ---------------------------------------------------------------------------------------------
// ep_dma: the endpoint's engine against one IOVA page

/** The memory behind an IOVA page as the engine sees it. */
interface Target {
  /** a word (u32 index in the page); null: unknown */
  read(idx: number): Word;
  /** the device may write (the mapping is writeable) */
  writable: boolean;
  /** where a write shows: the address space and page of a task that sees it, if any */
  visible?: { mm: number; pageNo: number };
}

/** Where a pinned page is now in the address space it was pinned in (Own "Pinned pages stay with the task"). */
function pinnedAt(s: ModelState, pin: DmaPin): number | undefined {
  const mm = s.mms.get(pin.mm);
  if (mm === undefined || !mm.alive) return undefined; // the task exited: the page is no task's any more
  for (const v of mm.vmas) {
    // munmap or a new mapping at the address leaves no vma of that anon_vma and index there
    if (v.kind === 'anon' && v.anonVma === pin.anonVma && v.pgoff <= pin.index && pin.index < v.pgoff + v.pages) return v.start + (pin.index - v.pgoff);
  }
  return undefined;
}

function targetOf(s: ModelState, e: { task: string; map: string; page: number; write: boolean; pin?: DmaPin }): Target {
  if (e.pin?.zero) return { read: () => 0, writable: e.write };
  let mmId: number | undefined;
  let pageNo: number | undefined;
  if (e.pin) {
    mmId = e.pin.mm;
    pageNo = pinnedAt(s, e.pin);
  } else {
    const t = s.tasks.get(e.task);
    const slot = s.mapSlots.get(e.map);
    if (t?.alive && slot !== undefined) {
      mmId = t.mm;
      pageNo = slotPage(slot) + e.page;
    }
  }
  if (mmId === undefined || pageNo === undefined) return { read: () => null, writable: e.write };
  const mm = s.mms.get(mmId)!;
  const wild = isWild(s, mmId);
  const p = mm.pages.get(pageNo);
  return { read: (idx) => (wild ? null : pageWord(p, BASE_ZERO, idx)), writable: e.write, visible: { mm: mmId, pageNo } };
}

const RING_WORD = EP_DMA_RING / 4;

/**
 * svt_ep_run_one() (qemu/files/hw/misc/svadiff-sva.c) from CONSUMED = EP_DMA_CONSUMED with the
 * register page and ring in one IOVA page, for the first look (the op stops the queue once
 * CONSUMED moved): the descriptors it completes, whether it stopped on a refused write, and the
 * words it wrote; null: the model cannot say.
 */
function runEngine(t: Target): { n: number; writeFault: boolean; writes: [number, number][] } | null {
  let consumed = EP_DMA_CONSUMED;
  const writes: [number, number][] = [];
  for (let n = 0; ; n++) {
    const doorbell = t.read(REG_WORD.DOORBELL);
    if (doorbell === null) return null;
    if (doorbell === consumed) return { n, writeFault: false, writes };
    if (n === ENGINE_BATCH) return null; // a later look may run before the op stops the queue
    const w = descriptorWords(consumed);
    const opcode = t.read(RING_WORD + w.opcode);
    if (opcode === null || opcode === SVT_OP_WRITE64 || opcode === SVT_OP_READ64) return null;
    if (!t.writable) return { n, writeFault: true, writes };
    writes.push([RING_WORD + w.status, SVT_STATUS_BADOP]);
    consumed = u32(consumed + 1);
    writes.push([REG_WORD.CQ_HEAD, consumed]);
  }
}

/** The engine's run changes words of the page the task sees (null values: unknown). */
function applyWrites(d: Draft, at: { mm: number; pageNo: number }, writes: readonly [number, Word][]): void {
  const pg = d.mmPage(at.mm, at.pageNo, () => emptyPage(BASE_ZERO));
  for (const [idx, v] of writes) setWord(pg, idx, v);
}

function expectFault(d: Draft, ep: number): void {
  d.s.dmaFaults = [...(d.s.dmaFaults ?? []), ep];
}

function doEpDma(d: Draft, task: Task, op: OpOf<'ep_dma'>): OpResult {
  const key = vfioFile(d.s, task.name, op.device);
  if (key === undefined) return task.fds.has(op.device) ? res(err('EINVAL'), 'dma.not-vfio') : res(err('EBADF'), 'dma.ebadf');
  const f = d.s.vfio!.files.get(key)!;
  if (f.kind === 'group' || f.kind === 'iommufd') return res(err('ENOTTY'), 'dma.enotty');
  if (f.kind === 'cdev' && f.ctx === null) return res(err('EINVAL'), 'dma.cdev-unbound');
  if (f.kind === 'container') return d.s.vfio!.containers.get(f.container)!.iommu ? res(err('ENOTTY'), 'dma.enotty') : res(err('EINVAL'), 'dma.no-backend');
  const reach = reachOf(d.s, f.ep);
  const e = reach === undefined || reach === 'blocked' ? undefined : reach.get(op.iova);
  if (reach === undefined) return res(ok(), 'epdma.unknown');
  if (e === undefined) {
    expectFault(d, f.ep);
    return res(ok('dma-error 0'), 'epdma.blocked');
  }
  const t = targetOf(d.s, e);
  const run = runEngine(t);
  if (run === null) {
    // unknown what it read: any of the words it may write is unknown, and a read-only mapping may fault
    if (!t.writable) expectFault(d, f.ep);
    if (t.visible && t.writable) {
      const all: [number, Word][] = [[REG_WORD.CQ_HEAD, null]];
      for (let k = 0; k < 64; k++) all.push([RING_WORD + descriptorWords(k).status, null]);
      applyWrites(d, t.visible, all);
    }
    return res(ok(), 'epdma.unknown');
  }
  if (t.visible && run.writes.length > 0) applyWrites(d, t.visible, run.writes);
  if (run.writeFault) {
    expectFault(d, f.ep);
    return res(ok(`dma-error ${run.n}`), 'epdma.read-only');
  }
  return res(ok(`done ${run.n}`), 'epdma.done');
}

export const DMA_MODEL: ModelOps<'ep_dma' | 'vfio_map_dma' | 'vfio_unmap_dma'> = {
  ep_dma: { check: doEpDma },
  vfio_map_dma: { check: doMap },
  vfio_unmap_dma: { check: doUnmap },
};

/** The IOVA pages a container's backend maps now, for the generator: per task's container descriptor. */
export function mappedIovas(s: ModelState, container: number): number[] {
  const c = s.vfio?.containers.get(container);
  return (c?.dma ?? []).flatMap((m) => Array.from({ length: m.pages }, (_, k) => m.iova + k));
}
