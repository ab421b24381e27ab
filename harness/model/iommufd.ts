/**
 * The model of iommufd and vfio's device cdev path (harness/ops/iommufd.ts): per iommufd
 * context its objects (IOAS, HWPT, device) with their ids, who uses whom, each IOMMU group's
 * attachment (iommufd_group: its HWPT and device list), the IOAS mappings, and the files
 * (`/dev/iommu`, cdevs) across close, dup, fork and exit. Every rule cites its source
 * (docs/ownership-semantics.md "iommufd"; kernel functions of Debian's 6.12.118).
 *
 * The state lives in the vfio state (VfioState.iommufd, its files among the vfio files), so
 * that descriptors, ownership and the endpoints' drivers are one state: a copy-on-write of it
 * is vfio.ts editVfio().
 *
 * Users counts are not stored but computed from what holds them, as the kernel's refcounts
 * are taken (iommufd_object_remove() destroys an object only at users == 1):
 *   IOAS:   1 + each HWPT on it (iommufd_hwpt_paging_alloc(): refcount_inc(&ioas->obj.users))
 *   HWPT:   1 + each device in the device list of a group attached to it (iommufd_hw_pagetable_attach())
 *   device: 2 while bound (iommufd_device_bind(): "The calling driver is a user"), + 1 attached
 */
import { err, ok } from '../program/outcome.js';
import type { OpOf } from '../ops/index.js';
import { findVma, slotPage } from './kernel.js';
import { res, type ModelOps, type OpResult } from './result.js';
import type { Draft, ModelState, Task } from './state.js';
import { editVfio, newFile, vfioFile, type VfioState } from './vfio.js';

/** `Own` = docs/ownership-semantics.md. */
export const IOMMUFD_RULES = {
  'iommufd.absent': 'the kernel has no IOMMUFD (profile vfioPaths.iommufd): no /dev/iommu -> ENOENT (Own "iommufd")',
  'iommufd.open': 'drivers/iommu/iommufd/main.c iommufd_fops_open(): a new context, ids from 1 (xa_init_flags XA_FLAGS_ALLOC1) (Own "iommufd")',
  'iofd.not-iommufd':
    'the descriptor is not an iommufd: an iommufd ioctl on a vfio cdev that is not bound -> EINVAL (vfio_device_fops_unl_ioctl: !access_granted), on another vfio file -> ENOTTY (the generator never makes this)',
  'iofd.not-cdev':
    'the descriptor is not a vfio cdev: a vfio device ioctl on an iommufd -> ENOTTY (iommufd_fops_ioctl() hands it to iommufd_vfio_ioctl(), which knows no such command), on a group or container -> ENOTTY (the generator never makes this)',
  'cdev.absent':
    'no vfio device cdev for the endpoint: the kernel has no VFIO_DEVICE_CDEV, or the endpoint is not bound to vfio-pci (no /sys/bus/pci/devices/<dev>/vfio-dev) -> ENOENT (Own "iommufd")',
  'cdev.open': 'drivers/vfio/device_cdev.c vfio_device_fops_cdev_open(): a device file without access until VFIO_DEVICE_BIND_IOMMUFD (Own "iommufd")',
  'bind.bad-iommufd': 'device_cdev.c vfio_df_ioctl_bind_iommufd(): bind.iommufd < 0 (the task has no such descriptor: the agent passes -1) -> -EINVAL (Own "iommufd")',
  'bind.group-open': 'vfio_df_ioctl_bind_iommufd() -> drivers/vfio/group.c vfio_device_block_group(): the vfio group is open -> -EBUSY (Own "iommufd")',
  'bind.twice': 'vfio_df_ioctl_bind_iommufd(): "one device cannot be bound twice" (df->access_granted) -> -EINVAL (Own "iommufd")',
  'bind.not-iommufd': 'drivers/iommu/iommufd/main.c iommufd_ctx_from_fd(): the file is not an iommufd -> -EBADFD (Own "iommufd")',
  'bind.opened': 'drivers/vfio/vfio_main.c vfio_df_open(): the device is open through another cdev file ("The device cdev path doesn\'t have a secure way for it") -> -EINVAL (Own "iommufd")',
  'bind.not-owner':
    'drivers/iommu/iommufd/device.c iommufd_device_bind() -> drivers/iommu/iommu.c iommu_device_claim_dma_owner(): the group has a DMA owner that is not this context (a kernel driver through the DMA API, or another iommufd) -> -EPERM (Own "iommufd")',
  'bind.ok':
    'iommufd_device_bind(): the group is owned by the context (blocking domain until an attach), the device object takes the lowest free id (_iommufd_object_alloc(): xa_alloc) (Own "iommufd")',
  'ioas.alloc': 'drivers/iommu/iommufd/ioas.c iommufd_ioas_alloc_ioctl(): a new IOAS, the lowest free id (Own "iommufd")',
  'obj.enoent': 'drivers/iommu/iommufd/main.c iommufd_get_object(): no object of that id and type in the context -> -ENOENT (Own "iommufd")',
  'map.exists': 'drivers/iommu/iommufd/io_pagetable.c iopt_check_iova(): a mapping in the range already -> -EEXIST (Own "iommufd")',
  'map.efault':
    'io_pagetable.c iopt_fill_domains_pages() -> pages.c pfn_reader_user_pin(): pin_user_pages*() of the memory fails (not mapped, not anonymous memory, read-only for a writeable mapping, or its mm is gone) -> -EFAULT (Own "iommufd")',
  'map.ok': 'ioas.c iommufd_ioas_map() -> iopt_map_user_pages(): the area is in the IOAS; pinned now if the IOAS has a domain, else when one is added (Own "iommufd")',
  'unmap.enoent':
    'io_pagetable.c iopt_unmap_iova_range(): an area crosses the range, or no area is in it -> -ENOENT (areas before a crossing one are unmapped) (Own "iommufd")',
  'unmap.ok': 'iopt_unmap_iova_range(): every area inside the range is unmapped (Own "iommufd")',
  'hwpt.no-device': 'drivers/iommu/iommufd/hw_pagetable.c iommufd_hwpt_alloc() -> iommufd_get_device(): dev_id is no device of the context -> -ENOENT (Own "iommufd")',
  'hwpt.bad-pt': 'iommufd_hwpt_alloc(): pt_id is no object, or neither an IOAS nor a HWPT -> -EINVAL (Own "iommufd")',
  'hwpt.nested': 'iommufd_hwpt_alloc() on a HWPT -> iommufd_hwpt_nested_alloc(): no driver data (data_len 0) -> -EOPNOTSUPP (Own "iommufd")',
  'hwpt.efault': 'iommufd_hwpt_paging_alloc() -> iopt_table_add_domain(): the IOAS had no domain and pinning a mapping fails -> -EFAULT, the id is freed (Own "iommufd")',
  'hwpt.ok':
    'iommufd_hwpt_paging_alloc(): a HWPT on the IOAS (its users +1), its domain added to the IOAS (mappings pinned), the lowest free id; not an automatic one (Own "iommufd")',
  'attach.unbound': 'drivers/vfio/vfio_main.c vfio_device_fops_unl_ioctl(): the cdev is not bound (!access_granted) -> -EINVAL (Own "iommufd")',
  'attach.enoent': 'device.c iommufd_device_change_pt() -> iommufd_get_object(IOMMUFD_OBJ_ANY): no such id -> -ENOENT (Own "iommufd")',
  'attach.not-pt': 'iommufd_device_change_pt(): the object is neither an IOAS nor a HWPT -> -EINVAL (Own "iommufd")',
  'attach.group-elsewhere':
    'device.c iommufd_hw_pagetable_attach(): the device\'s group is attached to another HWPT (another device of the group) -> -EINVAL; on an IOAS every automatic HWPT and a new one are refused the same way (Own "iommufd")',
  'attach.efault': 'iommufd_device_auto_get_domain() -> iommufd_hwpt_paging_alloc(): a new automatic HWPT, the IOAS had no domain and pinning a mapping fails -> -EFAULT (Own "iommufd")',
  'attach.ok':
    'iommufd_device_attach(): the device joins its group\'s HWPT (the first device attaches the group\'s domain); on an IOAS the first automatic HWPT of it that fits, else a new automatic one (lowest free id); data: the HWPT id (Own "iommufd")',
  'replace.same': 'device.c iommufd_device_do_replace(): the group is on that HWPT already: nothing changes (Own "iommufd")',
  'replace.ok':
    'iommufd_device_replace() -> iommufd_device_do_replace(): the whole group moves to the new HWPT (its device list\'s users move), the old HWPT is put (an automatic one goes with its last user) (Own "iommufd")',
  'detach.not-attached': 'drivers/vfio/iommufd.c vfio_iommufd_physical_detach_ioas(): not attached: nothing, 0 (Own "iommufd")',
  'detach.ok':
    'iommufd_device_detach() -> iommufd_hw_pagetable_detach(): the device leaves the group\'s list (the last one detaches the group: blocking domain), the HWPT is put (an automatic one goes with its last user) (Own "iommufd")',
  'destroy.enoent': 'main.c iommufd_object_remove(): no object of that id -> -ENOENT (Own "iommufd")',
  'destroy.busy': 'iommufd_object_remove(): users is not 1 (a HWPT on the IOAS, a device attached to the HWPT, a device object held by vfio) -> -EBUSY (Own "iommufd")',
  'destroy.ok':
    'iommufd_object_remove(): the object is destroyed and its id free (an IOAS unmaps everything; a HWPT leaves its IOAS, whose mappings are unpinned with its last domain) (Own "iommufd")',
  'container.absent': 'the kernel has no VFIO_GROUP (profile vfioPaths.group), hence no VFIO_CONTAINER nor IOMMUFD_VFIO_CONTAINER: no /dev/vfio/vfio -> ENOENT (Own "iommufd")',
  'unbind.cdev-open': 'drivers/vfio/vfio_main.c vfio_unregister_group_dev(): waits until every file of the device is closed; a cdev file holds its registration (vfio_device_fops_cdev_open()) (Own "iommufd")',
  'iofd.close':
    'release of a cdev file: vfio_df_unbind_iommufd() detaches and unbinds (the device object goes, the group\'s ownership with the last device); of an iommufd file: iommufd_fops_release() destroys every object once no file and no bound device holds the context (Own "iommufd")',
} as const;

/** An IOAS mapping (iopt_area): IOVA pages [iova, iova + pages) of memory of a task. */
export interface Area {
  iova: number;
  pages: number;
  /** where the memory came from: the task, its mapping name and page, for reports and DMA */
  task: string;
  map: string;
  page: number;
  write: boolean;
  /** pages->source_mm and the page number (address >> 12) of the first page */
  mm: number;
  pageNo: number;
  /** pinned into the IOAS's domains (false while the IOAS has none) */
  pinned: boolean;
}

export type IObj =
  | { type: 'ioas'; areas: Area[]; hwpts: number[] }
  | { type: 'hwpt'; ioas: number; auto: boolean }
  | { type: 'device'; ep: number; file: number };

/** struct iommufd_group of one IOMMU group in a context: its HWPT and attached devices in order. */
interface IGroup {
  hwpt: number | null;
  devices: number[];
}

/** struct iommufd_ctx. */
export interface Ictx {
  /** open /dev/iommu file structs of it */
  files: number;
  objects: Map<number, IObj>;
  /** by IOMMU group index (VfioState.groups) */
  igroups: Map<number, IGroup>;
}

export interface IommufdState {
  ctxs: Map<number, Ictx>;
  /** each task's iommufd object names: the ids it was given (fork copies them) */
  objs: Map<string, Map<string, number>>;
}

export function initialIommufd(): IommufdState {
  return { ctxs: new Map(), objs: new Map() };
}

/** The files of this family (VfioState.files): an iommufd, a device cdev (its context once bound). */
export type IommufdFile = { kind: 'iommufd'; ctx: number; refs: number } | { kind: 'cdev'; ep: number; ctx: number | null; devid: number; refs: number };

// ---------------------------------------------------------------------------------------------
// helpers

/** _iommufd_object_alloc(): xa_alloc in an XA_FLAGS_ALLOC1 array, xa_limit_31b: the lowest free id from 1. */
function lowestFreeId(c: Ictx): number {
  let id = 1;
  while (c.objects.has(id)) id++;
  return id;
}

const hwptDevices = (c: Ictx, id: number): number => [...c.igroups.values()].filter((g) => g.hwpt === id).reduce((n, g) => n + g.devices.length, 0);

/** users of an object (see the header). */
function users(c: Ictx, id: number): number {
  const o = c.objects.get(id)!;
  if (o.type === 'ioas') return 1 + o.hwpts.length;
  if (o.type === 'hwpt') return 1 + hwptDevices(c, id);
  return 2 + ([...c.igroups.values()].some((g) => g.devices.includes(o.ep)) ? 1 : 0);
}

/** Can every page of the area be pinned now (pfn_reader_user_pin(): pin_user_pages of anonymous memory)? */
function pinnable(s: ModelState, a: Pick<Area, 'mm' | 'pageNo' | 'pages' | 'write'>): boolean {
  const mm = s.mms.get(a.mm);
  // mmget_not_zero(pages->source_mm) fails once its task exited
  if (mm === undefined || !mm.alive) return false;
  for (let p = a.pageNo; p < a.pageNo + a.pages; p++) {
    const v = findVma(mm, p);
    // GUP's check_vma_flags(): VM_IO|VM_PFNMAP (a uacce mapping) and a missing VM_READ, or
    // VM_WRITE for FOLL_WRITE (pages->writable), give -EFAULT
    if (v === undefined || v.kind !== 'anon' || v.prot === 'none' || (a.write && v.prot !== 'rw')) return false;
  }
  return true;
}

/**
 * iopt_table_add_domain() -> iopt_fill_domain(): a new domain of an IOAS; the areas not pinned
 * (the IOAS had no domain) are pinned now. false: some area cannot be pinned (-EFAULT).
 */
function addDomain(s: ModelState, c: Ictx, ioas: number): boolean {
  const o = c.objects.get(ioas)!;
  if (o.type !== 'ioas') throw new Error('model: a domain on a non-IOAS');
  if (o.areas.some((a) => !a.pinned && !pinnable(s, a))) return false;
  for (const a of o.areas) a.pinned = true;
  return true;
}

/** iommufd_hwpt_paging_destroy(): the HWPT leaves its IOAS; the last domain gone unpins its areas. */
function destroyHwpt(c: Ictx, id: number): void {
  const h = c.objects.get(id)!;
  if (h.type !== 'hwpt') throw new Error('model: not a HWPT');
  c.objects.delete(id);
  const io = c.objects.get(h.ioas);
  if (io?.type !== 'ioas') return;
  io.hwpts = io.hwpts.filter((x) => x !== id);
  if (io.hwpts.length === 0) for (const a of io.areas) a.pinned = false;
}

/** iommufd_hw_pagetable_put(): an automatic HWPT is destroyed when this was its last user. */
function putHwpt(c: Ictx, id: number): void {
  const h = c.objects.get(id);
  if (h?.type === 'hwpt' && h.auto && hwptDevices(c, id) === 0) destroyHwpt(c, id);
}

function igroupOf(v: VfioState, c: Ictx, ep: number): IGroup {
  const g = v.groupOf[ep]!;
  let ig = c.igroups.get(g);
  if (ig === undefined) c.igroups.set(g, (ig = { hwpt: null, devices: [] }));
  return ig;
}

/** iommufd_device_detach(): the device leaves its group's list; the group's HWPT is put. */
function detachDevice(v: VfioState, c: Ictx, ep: number): void {
  const ig = igroupOf(v, c, ep);
  const hwpt = ig.hwpt!;
  ig.devices = ig.devices.filter((e) => e !== ep);
  if (ig.devices.length === 0) ig.hwpt = null;
  putHwpt(c, hwpt);
}

const isAttached = (v: VfioState, c: Ictx, ep: number): boolean => c.igroups.get(v.groupOf[ep]!)?.devices.includes(ep) ?? false;

/** The context that owns IOMMU group g's DMA (a device of it is bound there), if any. */
export function iommufdOwner(v: VfioState, g: number): number | undefined {
  for (const [key, c] of v.iommufd.ctxs) for (const o of c.objects.values()) if (o.type === 'device' && v.groupOf[o.ep] === g) return key;
  return undefined;
}

/** Is a cdev of endpoint ep open (vfio_unregister_group_dev() would wait for it)? */
export function cdevOpen(v: VfioState, ep: number): boolean {
  return [...v.files.values()].some((f) => f.kind === 'cdev' && f.ep === ep);
}

/** iommufd_fops_release(): a context no file and no bound device holds is gone with its objects. */
function maybeRelease(v: VfioState, key: number): void {
  const c = v.iommufd.ctxs.get(key)!;
  const bound = [...v.files.values()].some((f) => f.kind === 'cdev' && f.ctx === key);
  if (c.files === 0 && !bound) v.iommufd.ctxs.delete(key);
}

/** The last reference of one of this family's files is gone (vfio.ts dropFile). */
export function releaseIommufdFile(v: VfioState, f: IommufdFile): void {
  if (f.kind === 'iommufd') {
    v.iommufd.ctxs.get(f.ctx)!.files--;
    maybeRelease(v, f.ctx);
    return;
  }
  if (f.ctx === null) return;
  // vfio_device_fops_release() -> vfio_df_unbind_iommufd() -> vfio_iommufd_physical_unbind():
  // detach if attached, then iommufd_device_unbind() (the object goes, the DMA owner is released)
  const key = f.ctx;
  const c = v.iommufd.ctxs.get(key)!;
  if (isAttached(v, c, f.ep)) detachDevice(v, c, f.ep);
  c.objects.delete(f.devid);
  for (const [g, ig] of c.igroups) if (ig.hwpt === null && ig.devices.length === 0) c.igroups.delete(g);
  f.ctx = null; // the file is gone: it holds the context no more (iommufd_ctx_put())
  maybeRelease(v, key);
}

// ---------------------------------------------------------------------------------------------
// descriptor and name lookups

type CdevFile = Extract<IommufdFile, { kind: 'cdev' }>;
type FileRef = { key: number; f: CdevFile };
const isResult = (x: unknown): x is OpResult => typeof x === 'object' && x !== null && 'rule' in x;

/** The iommufd of a descriptor field (EBADF: the task has none; the wrong kind of file: never generated). */
function ctxOf(d: Draft, task: Task, fd: string): { key: number; c: Ictx } | OpResult {
  const key = vfioFile(d.s, task.name, fd);
  if (key === undefined) return task.fds.has(fd) ? res(err('EINVAL'), 'iofd.not-iommufd') : res(err('EBADF'), 'fd.ebadf');
  const f = d.s.vfio!.files.get(key)!;
  if (f.kind === 'iommufd') return { key: f.ctx, c: d.s.vfio!.iommufd.ctxs.get(f.ctx)! };
  return res(err(f.kind === 'cdev' && f.ctx === null ? 'EINVAL' : 'ENOTTY'), 'iofd.not-iommufd');
}

/** The cdev of a descriptor field. */
function cdevOf(d: Draft, task: Task, fd: string): FileRef | OpResult {
  const key = vfioFile(d.s, task.name, fd);
  if (key === undefined) return task.fds.has(fd) ? res(err('ENOTTY'), 'iofd.not-cdev') : res(err('EBADF'), 'fd.ebadf');
  const f = d.s.vfio!.files.get(key)!;
  if (f.kind !== 'cdev') return res(err('ENOTTY'), 'iofd.not-cdev');
  return { key, f };
}

/** The id a task holds under an object name: 0 (never an id) when it has none. */
export function objId(s: ModelState, task: string, name: string): number {
  return s.vfio?.iommufd.objs.get(task)?.get(name) ?? 0;
}

function setObj(v: VfioState, task: string, name: string, id: number): void {
  let m = v.iommufd.objs.get(task);
  if (m === undefined) v.iommufd.objs.set(task, (m = new Map()));
  m.set(name, id);
}

// ---------------------------------------------------------------------------------------------
// ops

function doOpen(d: Draft, task: Task, op: OpOf<'iommufd'>): OpResult {
  if (!d.s.profile.vfioPaths.iommufd) return res(err('ENOENT'), 'iommufd.absent');
  const v = editVfio(d);
  const ctx = v.nextKey++;
  v.iommufd.ctxs.set(ctx, { files: 1, objects: new Map(), igroups: new Map() });
  newFile(v, task.name, op.fd, { kind: 'iommufd', ctx, refs: 1 });
  return res(ok(), 'iommufd.open');
}

function doIoasAlloc(d: Draft, task: Task, op: OpOf<'ioas_alloc'>): OpResult {
  const x = ctxOf(d, task, op.iommufd);
  if (isResult(x)) return x;
  const v = editVfio(d);
  const c = v.iommufd.ctxs.get(x.key)!;
  const id = lowestFreeId(c);
  c.objects.set(id, { type: 'ioas', areas: [], hwpts: [] });
  setObj(v, task.name, op.obj, id);
  return res(ok(String(id)), 'ioas.alloc');
}

function doMap(d: Draft, task: Task, op: OpOf<'ioas_map'>): OpResult {
  const x = ctxOf(d, task, op.iommufd);
  if (isResult(x)) return x;
  const id = objId(d.s, task.name, op.ioas);
  const io = x.c.objects.get(id);
  if (io?.type !== 'ioas') return res(err('ENOENT'), 'obj.enoent');
  if (io.areas.some((a) => a.iova < op.iova + op.pages && op.iova < a.iova + a.pages)) return res(err('EEXIST'), 'map.exists');
  const slot = d.s.mapSlots.get(op.map)!;
  const area: Area = { iova: op.iova, pages: op.pages, task: task.name, map: op.map, page: op.page, write: op.write, mm: task.mm, pageNo: slotPage(slot) + op.page, pinned: io.hwpts.length > 0 };
  if (area.pinned && !pinnable(d.s, area)) return res(err('EFAULT'), 'map.efault');
  const v = editVfio(d);
  const io2 = v.iommufd.ctxs.get(x.key)!.objects.get(id) as Extract<IObj, { type: 'ioas' }>;
  io2.areas.push(area);
  io2.areas.sort((a, b) => a.iova - b.iova);
  return res(ok(), 'map.ok');
}

function doUnmap(d: Draft, task: Task, op: OpOf<'ioas_unmap'>): OpResult {
  const x = ctxOf(d, task, op.iommufd);
  if (isResult(x)) return x;
  const id = objId(d.s, task.name, op.ioas);
  if (x.c.objects.get(id)?.type !== 'ioas') return res(err('ENOENT'), 'obj.enoent');
  const v = editVfio(d);
  const io = v.iommufd.ctxs.get(x.key)!.objects.get(id) as Extract<IObj, { type: 'ioas' }>;
  const last = op.iova + op.pages - 1;
  let unmapped = 0;
  // iopt_area_iter_first() in IOVA order: a crossing area stops the walk with -ENOENT
  for (const a of io.areas.filter((a) => a.iova <= last && op.iova <= a.iova + a.pages - 1)) {
    if (a.iova < op.iova || a.iova + a.pages - 1 > last) return res(err('ENOENT'), 'unmap.enoent');
    io.areas = io.areas.filter((b) => b !== a);
    unmapped++;
  }
  return unmapped === 0 ? res(err('ENOENT'), 'unmap.enoent') : res(ok(), 'unmap.ok');
}

function doCdev(d: Draft, task: Task, op: OpOf<'vfio_cdev'>): OpResult {
  const v0 = d.s.vfio!;
  if (!d.s.profile.vfioPaths.iommufd || v0.drivers[op.dev] !== 'vfio') return res(err('ENOENT'), 'cdev.absent');
  newFile(editVfio(d), task.name, op.fd, { kind: 'cdev', ep: op.dev, ctx: null, devid: 0, refs: 1 });
  return res(ok(), 'cdev.open');
}

function doBind(d: Draft, task: Task, op: OpOf<'vfio_bind_iommufd'>): OpResult {
  const x = cdevOf(d, task, op.device);
  if (isResult(x)) return x;
  const v0 = d.s.vfio!;
  const ikey = vfioFile(d.s, task.name, op.iommufd);
  // the agent passes -1 for a name the task does not hold; a uacce queue is a real descriptor
  if (ikey === undefined && !task.fds.has(op.iommufd)) return res(err('EINVAL'), 'bind.bad-iommufd');
  const g = v0.groupOf[x.f.ep]!;
  const vg = v0.groups[g]!.vgroup;
  if (vg !== null && v0.vgroups.get(vg)!.openFile !== null) return res(err('EBUSY'), 'bind.group-open');
  if (x.f.ctx !== null) return res(err('EINVAL'), 'bind.twice');
  const fi = ikey === undefined ? undefined : v0.files.get(ikey);
  if (fi?.kind !== 'iommufd') return res(err('EBADFD'), 'bind.not-iommufd');
  if ([...v0.files.values()].some((f) => f.kind === 'cdev' && f.ep === x.f.ep && f.ctx !== null)) return res(err('EINVAL'), 'bind.opened');
  const owner = iommufdOwner(v0, g);
  const dmaApi = v0.groups[g]!.eps.some((e) => v0.drivers[e] === 'test');
  const groupPath = vg !== null && v0.vgroups.get(vg)!.container !== null;
  if (dmaApi || groupPath || (owner !== undefined && owner !== fi.ctx)) return res(err('EPERM'), 'bind.not-owner');
  const v = editVfio(d);
  const c = v.iommufd.ctxs.get(fi.ctx)!;
  const id = lowestFreeId(c);
  c.objects.set(id, { type: 'device', ep: x.f.ep, file: x.key });
  const f = v.files.get(x.key) as CdevFile;
  f.ctx = fi.ctx;
  f.devid = id;
  setObj(v, task.name, op.obj, id);
  return res(ok(String(id)), 'bind.ok');
}

function doHwptAlloc(d: Draft, task: Task, op: OpOf<'hwpt_alloc'>): OpResult {
  const x = ctxOf(d, task, op.iommufd);
  if (isResult(x)) return x;
  const dev = x.c.objects.get(objId(d.s, task.name, op.devobj));
  if (dev?.type !== 'device') return res(err('ENOENT'), 'hwpt.no-device');
  const ptId = objId(d.s, task.name, op.pt);
  const pt = x.c.objects.get(ptId);
  if (pt === undefined || pt.type === 'device') return res(err('EINVAL'), 'hwpt.bad-pt');
  if (pt.type === 'hwpt') return res(err('EOPNOTSUPP'), 'hwpt.nested');
  const v = editVfio(d);
  const c = v.iommufd.ctxs.get(x.key)!;
  if (!addDomain(d.s, c, ptId)) return res(err('EFAULT'), 'hwpt.efault');
  const id = lowestFreeId(c);
  c.objects.set(id, { type: 'hwpt', ioas: ptId, auto: false });
  (c.objects.get(ptId) as Extract<IObj, { type: 'ioas' }>).hwpts.push(id);
  setObj(v, task.name, op.obj, id);
  return res(ok(String(id)), 'hwpt.ok');
}

function doAttach(d: Draft, task: Task, op: OpOf<'vfio_attach'>): OpResult {
  const x = cdevOf(d, task, op.device);
  if (isResult(x)) return x;
  if (x.f.ctx === null) return res(err('EINVAL'), 'attach.unbound');
  const v0 = d.s.vfio!;
  const c0 = v0.iommufd.ctxs.get(x.f.ctx)!;
  const ptId = objId(d.s, task.name, op.pt);
  const pt = c0.objects.get(ptId);
  if (pt === undefined) return res(err('ENOENT'), 'attach.enoent');
  if (pt.type === 'device') return res(err('EINVAL'), 'attach.not-pt');
  const ep = x.f.ep;
  const replace = isAttached(v0, c0, ep);
  const cur = c0.igroups.get(v0.groupOf[ep]!)?.hwpt ?? null;
  if (pt.type === 'hwpt') {
    if (!replace) {
      if (cur !== null && cur !== ptId) return res(err('EINVAL'), 'attach.group-elsewhere');
      const v = editVfio(d);
      const ig = igroupOf(v, v.iommufd.ctxs.get(x.f.ctx)!, ep);
      ig.hwpt = ptId;
      ig.devices.push(ep);
      return res(ok(String(ptId)), 'attach.ok');
    }
    if (cur === ptId) return res(ok(String(ptId)), 'replace.same');
    const v = editVfio(d);
    moveGroup(v, v.iommufd.ctxs.get(x.f.ctx)!, ep, ptId);
    return res(ok(String(ptId)), 'replace.ok');
  }
  // an IOAS: iommufd_device_auto_get_domain(), the automatic HWPTs of the IOAS in list order
  const autos = pt.hwpts.filter((h) => (c0.objects.get(h) as Extract<IObj, { type: 'hwpt' }>).auto);
  if (!replace) {
    const fit = autos.find((h) => cur === null || cur === h);
    const v = editVfio(d);
    const c = v.iommufd.ctxs.get(x.f.ctx)!;
    if (fit !== undefined) {
      const ig = igroupOf(v, c, ep);
      ig.hwpt = fit;
      ig.devices.push(ep);
      return res(ok(String(fit)), 'attach.ok');
    }
    // a new automatic HWPT, attached at once (immediate_attach), then its domain added
    if (cur !== null) return res(err('EINVAL'), 'attach.group-elsewhere');
    if (!addDomain(d.s, c, ptId)) return res(err('EFAULT'), 'attach.efault');
    const id = lowestFreeId(c);
    c.objects.set(id, { type: 'hwpt', ioas: ptId, auto: true });
    (c.objects.get(ptId) as Extract<IObj, { type: 'ioas' }>).hwpts.push(id);
    const ig = igroupOf(v, c, ep);
    ig.hwpt = id;
    ig.devices.push(ep);
    return res(ok(String(id)), 'attach.ok');
  }
  // replace onto an IOAS: the first automatic HWPT of it (the group's own: nothing changes)
  const v = editVfio(d);
  const c = v.iommufd.ctxs.get(x.f.ctx)!;
  const first = autos[0];
  if (first !== undefined) {
    if (first === cur) return res(ok(String(first)), 'replace.same');
    moveGroup(v, c, ep, first);
    return res(ok(String(first)), 'replace.ok');
  }
  if (!addDomain(d.s, c, ptId)) return res(err('EFAULT'), 'attach.efault');
  const id = lowestFreeId(c);
  c.objects.set(id, { type: 'hwpt', ioas: ptId, auto: true });
  (c.objects.get(ptId) as Extract<IObj, { type: 'ioas' }>).hwpts.push(id);
  moveGroup(v, c, ep, id);
  return res(ok(String(id)), 'replace.ok');
}

/** iommufd_device_do_replace(): the group (all its attached devices) moves to hwpt; the old one is put. */
function moveGroup(v: VfioState, c: Ictx, ep: number, hwpt: number): void {
  const ig = igroupOf(v, c, ep);
  const old = ig.hwpt!;
  ig.hwpt = hwpt;
  putHwpt(c, old);
}

function doDetach(d: Draft, task: Task, op: OpOf<'vfio_detach'>): OpResult {
  const x = cdevOf(d, task, op.device);
  if (isResult(x)) return x;
  if (x.f.ctx === null) return res(err('EINVAL'), 'attach.unbound');
  if (!isAttached(d.s.vfio!, d.s.vfio!.iommufd.ctxs.get(x.f.ctx)!, x.f.ep)) return res(ok(), 'detach.not-attached');
  const v = editVfio(d);
  detachDevice(v, v.iommufd.ctxs.get(x.f.ctx)!, x.f.ep);
  return res(ok(), 'detach.ok');
}

function doDestroy(d: Draft, task: Task, op: OpOf<'iommufd_destroy'>): OpResult {
  const x = ctxOf(d, task, op.iommufd);
  if (isResult(x)) return x;
  const id = objId(d.s, task.name, op.obj);
  const o = x.c.objects.get(id);
  if (o === undefined) return res(err('ENOENT'), 'destroy.enoent');
  if (users(x.c, id) !== 1) return res(err('EBUSY'), 'destroy.busy');
  const v = editVfio(d);
  const c = v.iommufd.ctxs.get(x.key)!;
  if (o.type === 'hwpt') destroyHwpt(c, id);
  else c.objects.delete(id); // an IOAS without HWPTs: iommufd_ioas_destroy() unmaps all
  return res(ok(), 'destroy.ok');
}

export const IOMMUFD_MODEL: ModelOps<
  'iommufd' | 'ioas_alloc' | 'ioas_map' | 'ioas_unmap' | 'vfio_cdev' | 'vfio_bind_iommufd' | 'hwpt_alloc' | 'vfio_attach' | 'vfio_detach' | 'iommufd_destroy'
> = {
  iommufd: { check: doOpen },
  ioas_alloc: { check: doIoasAlloc },
  ioas_map: { check: doMap },
  ioas_unmap: { check: doUnmap },
  vfio_cdev: { check: doCdev },
  vfio_bind_iommufd: { check: doBind },
  hwpt_alloc: { check: doHwptAlloc },
  vfio_attach: { check: doAttach },
  vfio_detach: { check: doDetach },
  iommufd_destroy: { check: doDestroy },
};

// ---------------------------------------------------------------------------------------------
// what others read

/** What an endpoint's DMA reaches through iommufd: an IOVA page's memory. */
export interface ReachPage {
  task: string;
  map: string;
  page: number;
  write: boolean;
}
export type IommufdReach = 'blocked' | Map<number, ReachPage>;

/**
 * What endpoint ep can reach by DMA through iommufd (for the DMA model, harness/model/dma.ts):
 * undefined when its IOMMU group is not owned by an iommufd context (no device of the group is
 * bound); 'blocked' when owned but the group is attached to no HWPT (iommu_device_claim_dma_owner()
 * put it in the blocking domain); else the IOVA pages of the IOAS behind the group's HWPT. The
 * domain is the group's (iommu_attach_group_handle()): a bound device of the group that is not
 * attached itself reaches the same pages.
 */
export function iommufdReach(s: ModelState, ep: number): IommufdReach | undefined {
  const v = s.vfio;
  if (v === undefined || ep >= v.groupOf.length) return undefined;
  const g = v.groupOf[ep]!;
  const owner = iommufdOwner(v, g);
  if (owner === undefined) return undefined;
  const c = v.iommufd.ctxs.get(owner)!;
  const hwpt = c.igroups.get(g)?.hwpt ?? null;
  if (hwpt === null) return 'blocked';
  const h = c.objects.get(hwpt) as Extract<IObj, { type: 'hwpt' }>;
  const io = c.objects.get(h.ioas) as Extract<IObj, { type: 'ioas' }>;
  const out = new Map<number, ReachPage>();
  for (const a of io.areas) for (let i = 0; i < a.pages; i++) out.set(a.iova + i, { task: a.task, map: a.map, page: a.page + i, write: a.write });
  return out;
}

/** The objects of the contexts, for reports: "ctx: 1 ioas [0+2], 2 hwpt(auto) on 1, 3 device ep1". */
export function describeIommufd(v: VfioState): string[] {
  return [...v.iommufd.ctxs.values()].map((c, i) => {
    const objs = [...c.objects]
      .sort((a, b) => a[0] - b[0])
      .map(([id, o]) =>
        o.type === 'ioas'
          ? `${id} ioas [${o.areas.map((a) => `${a.iova}+${a.pages}`).join(',')}]`
          : o.type === 'hwpt'
            ? `${id} hwpt${o.auto ? '(auto)' : ''} on ${o.ioas}`
            : `${id} device ep${o.ep}`,
      );
    const groups = [...c.igroups].map(([g, ig]) => `group {${v.groups[g]!.eps.join(',')}} -> ${ig.hwpt ?? 'blocked'} [${ig.devices.join(',')}]`);
    return `iommufd ctx ${i}: ${[...objs, ...groups].join('; ') || 'empty'}`;
  });
}

/** A task's descriptors of this family (for the generator): iommufds and cdevs, with their contexts. */
export type IommufdFdInfo = { name: string; kind: 'iommufd'; ctx: number } | { name: string; kind: 'cdev'; ep: number; ctx: number | null };

export function iommufdFdsOf(s: ModelState, task: string): IommufdFdInfo[] {
  const v = s.vfio;
  const m = v?.fds.get(task);
  if (!v || !m) return [];
  return [...m].flatMap(([name, key]): IommufdFdInfo[] => {
    const f = v.files.get(key)!;
    if (f.kind === 'iommufd') return [{ name, kind: 'iommufd', ctx: f.ctx }];
    if (f.kind === 'cdev') return [{ name, kind: 'cdev', ep: f.ep, ctx: f.ctx }];
    return [];
  });
}

/** The IOAS areas of object id in context ctx (for the generator). */
export function ioasAreas(s: ModelState, ctx: number, id: number): readonly Area[] {
  const o = s.vfio?.iommufd.ctxs.get(ctx)?.objects.get(id);
  return o?.type === 'ioas' ? o.areas : [];
}

/** The task's object names (for the generator). */
export function objNamesOf(s: ModelState, task: string): { name: string; id: number }[] {
  return [...(s.vfio?.iommufd.objs.get(task) ?? [])].map(([name, id]) => ({ name, id }));
}

/** The type of object `id` in context `ctx` (for the generator). */
export function objType(s: ModelState, ctx: number, id: number): IObj['type'] | undefined {
  return s.vfio?.iommufd.ctxs.get(ctx)?.objects.get(id)?.type;
}

/** Is endpoint ep attached in its context (for the generator)? */
export function cdevAttached(s: ModelState, ctx: number, ep: number): boolean {
  const v = s.vfio;
  const c = v?.iommufd.ctxs.get(ctx);
  return v !== undefined && c !== undefined && isAttached(v, c, ep);
}

/** The objects of a context (for the generator). */
export function ctxObjects(s: ModelState, ctx: number): [number, IObj][] {
  return [...(s.vfio?.iommufd.ctxs.get(ctx)?.objects ?? [])];
}
