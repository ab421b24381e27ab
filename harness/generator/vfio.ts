/**
 * Arguments of the vfio ops (harness/ops/vfio.ts) from the model's state: endpoints to bind and
 * unbind (never vfio-pci under an open device fd: that unbind waits for the fd, a hang the
 * model predicts and a fuzz run cannot use), group, container and device descriptors of the
 * right kind, devices of the group or of another one. Invalid on purpose: a descriptor the
 * task does not have (EBADF). vfio programs run on the fixed layout VFIO_DEVICE with the
 * family's weights for the kernel (vfioWeights: the group path where the kernel has it, the
 * iommufd ops of generator/iommufd.ts where it has those) and the core ops on descriptors and tasks.
 */
import { DMA_IOVA_PAGES } from '../ops/dma.js';
import { mappedIovas, reachOf } from '../model/dma.js';
import { iommufdFdsOf } from '../model/iommufd.js';
import { endpointDrivers, unbindBlocks, vfioFdsOf, vfioFile, type VfioFdInfo } from '../model/vfio.js';
import type { Task } from '../model/index.js';
import { DEBIAN_VFIO_PATHS, type VfioPaths } from '../model/profile.js';
import { OP_KINDS, type Op, type OpKind } from '../ops/index.js';
import { DEFAULT_DEVICE, type DeviceParams } from '../program/types.js';
import type { FamilyGen, Gen, GenCtx } from './context.js';
import { invalid, valid } from './core.js';

/** The device of vfio programs: three endpoints, IOMMU groups {0} and {1,2} (machine x86_64-vtd-groups). */
export const VFIO_DEVICE: DeviceParams = { ...DEFAULT_DEVICE, algorithms: [...DEFAULT_DEVICE.algorithms], sva: true, devices: 3, mmio_pages: 1, dus_pages: 1, groups: [[0], [1, 2]] };

/** How often each op kind is drawn in a vfio program (kinds not listed: never): the ops every kernel has ... */
const FAMILY: Partial<Record<OpKind, number>> = {
  pci_bind: 8,
  pci_unbind: 7,
  close: 6,
  dup: 2,
  fork: 2,
  exit: 1,
};
/** ... vfio's group path (VFIO_GROUP: Debian's kernels) ... */
const GROUP_PATH: Partial<Record<OpKind, number>> = {
  vfio_group: 8,
  vfio_container: 4,
  vfio_set_container: 8,
  vfio_unset_container: 3,
  vfio_set_iommu: 5,
  vfio_device: 7,
  vfio_status: 4,
  // DMA: map a task's memory, run the endpoint's engine against mapped and unmapped IOVAs,
  // unmap; the memory (alloc) and reading it back or writing a doorbell there (touch)
  ep_dma: 10,
  vfio_map_dma: 8,
  vfio_unmap_dma: 3,
  alloc: 3,
  touch: 3,
  munmap: 1, // a pinned page no task sees any more
  mprotect: 1, // read-only memory: a writeable mapping of it fails (EFAULT)
};
/** ... and iommufd with the device cdev (IOMMUFD, VFIO_DEVICE_CDEV: src:…+iommufd kernels); alloc for memory to map */
const IOMMUFD_PATH: Partial<Record<OpKind, number>> = {
  iommufd: 4,
  ioas_alloc: 6,
  ioas_map: 7,
  ioas_unmap: 4,
  vfio_cdev: 6,
  vfio_bind_iommufd: 8,
  hwpt_alloc: 6,
  vfio_attach: 9,
  vfio_detach: 4,
  iommufd_destroy: 6,
  alloc: 2,
  munmap: 2,
  // fewer unbinds: a program gets further along the cdev path (bind, HWPTs, attach) before an endpoint goes
  pci_unbind: 3,
  ep_dma: 8, // the endpoint's engine through a bound cdev (harness/model/dma.ts: the IOAS's reach)
  touch: 2,
};

/** The weights of vfio programs on a kernel with these vfio paths (its profile's vfioPaths). */
export function vfioWeights(paths: VfioPaths): Record<OpKind, number> {
  const w = { ...FAMILY, ...(paths.group ? GROUP_PATH : {}), ...(paths.iommufd ? IOMMUFD_PATH : {}) };
  return Object.fromEntries(OP_KINDS.map((k) => [k, w[k] ?? 0])) as Record<OpKind, number>;
}
/** The weights on Debian's kernels (the group path). */
export const VFIO_WEIGHTS = vfioWeights(DEBIAN_VFIO_PATHS);

const fdsOf = (c: GenCtx, t: Task, kind: 'group' | 'container' | 'device') => vfioFdsOf(c.view.s, t.name).filter((f) => f.kind === kind);

/** A descriptor name some task had that t does not have now (EBADF on purpose). */
function missing(c: GenCtx, t: Task): string | undefined {
  const has = new Set([...t.fds.keys(), ...vfioFdsOf(c.view.s, t.name).map((f) => f.name)]);
  return c.r.pick(c.fdNames().filter((n) => !has.has(n)));
}

/**
 * A task that has a descriptor of `kind` and one of it (mostly one `want` holds for, when any
 * does), or what to make first.
 */
function withFd(c: GenCtx, kind: 'group' | 'container' | 'device', want: (f: VfioFdInfo) => boolean = () => true): { t: Task; name: string; group?: number } | { need: OpKind } {
  const t = c.pickTask(c.view.tasks().filter((x) => fdsOf(c, x, kind).length > 0));
  if (t === undefined) return { need: kind === 'group' ? 'vfio_group' : kind === 'container' ? 'vfio_container' : 'vfio_device' };
  const all = fdsOf(c, t, kind);
  const good = all.filter(want);
  const f = (good.length > 0 && c.r.chance(80) ? c.r.pick(good) : c.r.pick(all))!;
  return { t, name: f.name, ...(f.iommuGroup !== undefined ? { group: f.iommuGroup } : {}) };
}

const dev = (c: GenCtx) => c.r.int(c.device.devices);

const eps = (c: GenCtx) => Array.from({ length: c.device.devices }, (_, i) => i);

const pciBind = (c: GenCtx): Gen => {
  const t = c.pickTask(c.view.tasks());
  if (t === undefined) return undefined;
  // mostly an endpoint without a driver (a bound one gives EBUSY before anything else)
  const free = eps(c).filter((e) => endpointDrivers(c.view.s)[e] === 'none');
  if (free.length === 0 && c.r.chance(75)) return { need: 'pci_unbind' };
  const d = free.length > 0 && c.r.chance(85) ? c.r.pick(free)! : dev(c);
  return valid({ op: 'pci_bind', task: t.name, dev: d, driver: c.r.chance(30) ? 'test' : 'vfio' });
};

const pciUnbind = (c: GenCtx): Gen => {
  const t = c.pickTask(c.view.tasks());
  const ok = eps(c).filter((e) => !unbindBlocks(c.view.s, e));
  if (t === undefined || ok.length === 0) return undefined;
  const bound = ok.filter((e) => endpointDrivers(c.view.s)[e] !== 'none');
  return valid({ op: 'pci_unbind', task: t.name, dev: (bound.length > 0 && c.r.chance(85) ? c.r.pick(bound) : c.r.pick(ok))! });
};

const vfioGroup = (c: GenCtx): Gen => {
  const t = c.pickTask(c.view.tasks());
  const v = c.view.s.vfio;
  if (t === undefined || v === undefined) return undefined;
  // mostly an endpoint whose group has a vfio group (else ENOENT)
  const live = Array.from({ length: c.device.devices }, (_, i) => i).filter((e) => v.groups[v.groupOf[e]!]!.vgroup !== null);
  if (live.length === 0 && !c.r.chance(20)) return { need: 'pci_bind' };
  return valid({ op: 'vfio_group', task: t.name, fd: c.fdName(), dev: live.length > 0 && c.r.chance(85) ? c.r.pick(live)! : dev(c) });
};

const vfioContainer = (c: GenCtx): Gen => {
  const t = c.pickTask(c.view.tasks());
  return t === undefined ? undefined : valid({ op: 'vfio_container', task: t.name, fd: c.fdName() });
};

/** An op on one descriptor of `kind`; invalid on purpose: a name the task lacks. */
function onFd(c: GenCtx, kind: 'group' | 'container', mk: (t: Task, name: string, group?: number) => Op, want?: (f: VfioFdInfo) => boolean): Gen {
  if (c.invalid) {
    const t = c.pickTask(c.view.tasks());
    const name = t === undefined ? undefined : missing(c, t);
    if (t !== undefined && name !== undefined) return invalid(mk(t, name));
  }
  const x = withFd(c, kind, want);
  return 'need' in x ? x : valid(mk(x.t, x.name, x.group));
}

const setContainer = (c: GenCtx): Gen => {
  const x = withFd(c, 'group', (f) => !f.attached);
  if ('need' in x) return x;
  const cs = fdsOf(c, x.t, 'container');
  if (cs.length === 0) return { need: 'vfio_container' };
  if (c.invalid) {
    const name = missing(c, x.t);
    if (name !== undefined) return invalid({ op: 'vfio_set_container', task: x.t.name, vgroup: x.name, container: name });
  }
  return valid({ op: 'vfio_set_container', task: x.t.name, vgroup: x.name, container: c.r.pick(cs)!.name });
};

const unsetContainer = (c: GenCtx): Gen => onFd(c, 'group', (t, name) => ({ op: 'vfio_unset_container', task: t.name, vgroup: name }));
const setIommu = (c: GenCtx): Gen => {
  const ready = c.view.tasks().some((t) => fdsOf(c, t, 'container').some((f) => f.attached && !f.iommu));
  if (!ready && c.r.chance(60)) return { need: 'vfio_set_container' };
  return onFd(c, 'container', (t, name) => ({ op: 'vfio_set_iommu', task: t.name, container: name }), (f) => f.attached && !f.iommu);
};
const status = (c: GenCtx): Gen => onFd(c, 'group', (t, name) => ({ op: 'vfio_status', task: t.name, vgroup: name }));

const getDevice = (c: GenCtx): Gen => {
  const groups = c.view.tasks().flatMap((t) => fdsOf(c, t, 'group'));
  if (groups.length > 0 && !groups.some((f) => f.iommu) && c.r.chance(60)) return { need: groups.some((f) => f.attached) ? 'vfio_set_iommu' : 'vfio_set_container' };
  return onFd(c, 'group', (t, name, group) => {
    const v = c.view.s.vfio!;
    // mostly an endpoint of the group (else ENODEV)
    const own = group === undefined ? [] : v.groups[group]!.eps;
    const d = own.length > 0 && c.r.chance(85) ? c.r.pick(own)! : dev(c);
    return { op: 'vfio_device', task: t.name, fd: c.fdName(), vgroup: name, dev: d };
  }, (f) => f.iommu);
};

/** The container behind a container descriptor of task t (the model's key). */
function containerKey(c: GenCtx, t: Task, name: string): number | undefined {
  const key = vfioFile(c.view.s, t.name, name);
  const f = key === undefined ? undefined : c.view.s.vfio?.files.get(key);
  return f?.kind === 'container' ? f.container : undefined;
}

/** Device fds of a task (group path device fds, and cdevs bound to an iommufd) with their endpoints. */
function deviceFds(c: GenCtx, t: Task): { name: string; ep: number }[] {
  const v = c.view.s.vfio;
  const group = vfioFdsOf(c.view.s, t.name).flatMap((f) => {
    const key = f.kind === 'device' ? vfioFile(c.view.s, t.name, f.name) : undefined;
    const file = key === undefined ? undefined : v?.files.get(key);
    return file?.kind === 'device' ? [{ name: f.name, ep: file.ep }] : [];
  });
  const cdev = iommufdFdsOf(c.view.s, t.name).flatMap((f) => (f.kind === 'cdev' && f.ctx !== null ? [{ name: f.name, ep: f.ep }] : []));
  return [...group, ...cdev];
}

/** The IOVA pages endpoint ep reaches now (harness/model/dma.ts reachOf). */
function reachable(c: GenCtx, ep: number): number[] {
  const r = reachOf(c.view.s, ep);
  return r === undefined || r === 'blocked' ? [] : [...r.keys()];
}

const iovaPage = (c: GenCtx) => c.r.int(DMA_IOVA_PAGES);

/** VFIO_IOMMU_MAP_DMA of a piece of a task's anonymous memory, mostly at an IOVA still free. */
const mapDma = (c: GenCtx): Gen => {
  if (c.invalid) {
    // a container name the task does not have, with memory it has
    const t = c.pickTask(c.view.tasks().filter((x) => c.view.pieces(x).some((p) => p.vma.kind === 'anon')));
    const name = t === undefined ? undefined : missing(c, t);
    const p = t === undefined ? undefined : c.view.pieces(t).find((x) => x.vma.kind === 'anon');
    if (t !== undefined && name !== undefined && p !== undefined) return invalid({ op: 'vfio_map_dma', task: t.name, container: name, map: p.name, page: p.page, iova: 0, pages: 1, write: true });
  }
  const withBackend = c.view.tasks().filter((t) => fdsOf(c, t, 'container').some((f) => f.iommu));
  if (withBackend.length === 0) return { need: 'vfio_set_iommu' };
  const t = c.pickTask(withBackend.filter((x) => c.view.pieces(x).some((p) => p.vma.kind === 'anon')));
  if (t === undefined) return { need: 'alloc' };
  const cs = fdsOf(c, t, 'container');
  const good = cs.filter((f) => f.iommu);
  const name = (c.r.chance(90) ? c.r.pick(good) : c.r.pick(cs))!.name;
  const p = c.r.pick(c.view.pieces(t).filter((x) => x.vma.kind === 'anon'))!;
  const ck = containerKey(c, t, name);
  const used = new Set(ck === undefined ? [] : mappedIovas(c.view.s, ck));
  const free = Array.from({ length: DMA_IOVA_PAGES }, (_, i) => i).filter((i) => !used.has(i));
  // now and then over a mapping (EEXIST)
  const iova = used.size > 0 && c.r.chance(12) ? c.r.pick([...used])! : free.length > 0 && c.r.chance(85) ? c.r.pick(free)! : iovaPage(c);
  const page = p.page + c.r.int(p.pages);
  const pages = Math.max(1, Math.min(c.r.chance(70) ? 1 : 1 + c.r.int(3), DMA_IOVA_PAGES - iova, p.page + p.pages - page));
  return valid({ op: 'vfio_map_dma', task: t.name, container: name, map: p.name, page, iova, pages, write: c.r.chance(85) });
};

/** VFIO_IOMMU_UNMAP_DMA, mostly of a mapping whole. */
const unmapDma = (c: GenCtx): Gen =>
  onFd(
    c,
    'container',
    (t, name) => {
      const ck = containerKey(c, t, name);
      const maps = ck === undefined ? [] : (c.view.s.vfio?.containers.get(ck)?.dma ?? []);
      const m = c.r.pick(maps);
      if (m !== undefined && c.r.chance(80)) return { op: 'vfio_unmap_dma', task: t.name, container: name, iova: m.iova, pages: m.pages };
      // a range that cuts a mapping of several pages (v2: EINVAL)
      if (m !== undefined && m.pages > 1 && c.r.chance(50)) return { op: 'vfio_unmap_dma', task: t.name, container: name, iova: m.iova + 1, pages: 1 };
      const iova = iovaPage(c);
      return { op: 'vfio_unmap_dma', task: t.name, container: name, iova, pages: 1 + c.r.int(DMA_IOVA_PAGES - iova) };
    },
    (f) => f.iommu,
  );

/** The endpoint's engine through a device fd: mostly at a mapped IOVA, sometimes at one nothing maps (a fault). */
const epDma = (c: GenCtx): Gen => {
  if (c.invalid) {
    const t = c.pickTask(c.view.tasks());
    const name = t === undefined ? undefined : missing(c, t);
    if (t !== undefined && name !== undefined) return invalid({ op: 'ep_dma', task: t.name, device: name, iova: 0 });
  }
  const t = c.pickTask(c.view.tasks().filter((x) => deviceFds(c, x).length > 0));
  if (t === undefined) return { need: c.profile.vfioPaths.group ? 'vfio_device' : 'vfio_bind_iommufd' };
  const d = c.r.pick(deviceFds(c, t))!;
  const mapped = reachable(c, d.ep);
  if (mapped.length === 0 && c.r.chance(70)) return { need: c.profile.vfioPaths.group ? 'vfio_map_dma' : 'ioas_map' };
  return valid({ op: 'ep_dma', task: t.name, device: d.name, iova: mapped.length > 0 && c.r.chance(80) ? c.r.pick(mapped)! : iovaPage(c) });
};

export const VFIO_GEN: FamilyGen = {
  kinds: {
    ep_dma: epDma,
    vfio_map_dma: mapDma,
    vfio_unmap_dma: unmapDma,
    pci_bind: pciBind,
    pci_unbind: pciUnbind,
    vfio_group: vfioGroup,
    vfio_container: vfioContainer,
    vfio_set_container: setContainer,
    vfio_unset_container: unsetContainer,
    vfio_set_iommu: setIommu,
    vfio_device: getDevice,
    vfio_status: status,
  },
};
