/**
 * The model of DMA ownership through vfio's group path (harness/ops/vfio.ts): which driver each
 * endpoint has, the IOMMU groups' owners (unowned, DMA-API owned, user owned), vfio groups,
 * containers and device fds, and their files across close, dup, fork and exit. Every rule cites
 * its source (docs/ownership-semantics.md; kernel functions of Debian's 6.12.118, the same in
 * 6.1 and 7.2 for what is modelled here).
 *
 * The state is small (a few endpoints and files): an op that changes it copies it whole.
 */
import { err, ok, type Outcome } from '../program/outcome.js';
import type { OpOf } from '../ops/index.js';
import type { DeviceParams } from '../program/types.js';
import { res, type ModelOps, type OpResult } from './result.js';
import type { DmaMapping } from './dma.js';
import type { Draft, ModelState, Task } from './state.js';
import { cdevOpen, initialIommufd, iommufdOwner, releaseIommufdFile, type IommufdFile, type IommufdState } from './iommufd.js';

/** `Own` = docs/ownership-semantics.md. */
export const VFIO_RULES = {
  'vfio.not-group': 'the descriptor is not a vfio group (the generator never makes this; the model does not follow other files\' ioctls)',
  'vfio.not-container-ioctl': 'the descriptor is not a container (the generator never makes this)',
  'bind.has-driver': 'drivers/base/dd.c __driver_probe_device(): a device that has a driver -> -EBUSY, returned by bind_store() (Own "Binding drivers")',
  'bind.user-owned':
    'drivers/iommu/iommu.c iommu_device_use_default_domain() from pci_dma_configure() (the test driver has no driver_managed_dma): the group is user owned -> -EBUSY (Own "Binding drivers")',
  'bind.dma-api': 'pci_dma_configure() -> iommu_device_use_default_domain(): owner_cnt++, the group is DMA-API owned; the test driver probes (Own "Binding drivers")',
  'bind.vfio':
    'drivers/vfio/pci/vfio_pci.c: driver_managed_dma, no DMA API count; vfio_register_group_dev() -> vfio_group_find_or_alloc() makes the vfio group if there is none (Own "Binding drivers")',
  'unbind.none': 'a device without a driver has no driver link: /sys/bus/pci/devices/<dev>/driver/unbind does not exist -> ENOENT (Own "Binding drivers")',
  'unbind.test': "the test driver's remove, then pci_dma_cleanup() -> iommu_device_unuse_default_domain(): owner_cnt-- (Own \"Binding drivers\")",
  'unbind.vfio-open':
    'drivers/vfio/vfio_main.c vfio_unregister_group_dev(): waits until every device fd is closed (Own "Binding drivers")',
  'unbind.vfio':
    'vfio_unregister_group_dev(); the last vfio device of a group: drivers/vfio/group.c vfio_device_remove_group() removes /dev/vfio/<n>, detaches its container (ownership released) and blocks the open group file (Own "Binding drivers")',
  'vgroup.no-node': 'no device of the IOMMU group is bound to vfio: no vfio group, no /dev/vfio/<n> -> ENOENT (Own "The vfio group path")',
  'vgroup.single-open': 'drivers/vfio/group.c vfio_group_fops_open(): the group is already open -> -EBUSY (Own "The vfio group path")',
  'vgroup.open': 'vfio_group_fops_open(): the group file; opening checks no ownership (Own "The vfio group path")',
  'container.open': 'drivers/vfio/container.c vfio_fops_open(): a new container (Own "The vfio group path")',
  'setc.has-container': 'drivers/vfio/group.c vfio_group_ioctl_set_container(): the group has a container -> -EINVAL (Own "The vfio group path")',
  'setc.group-gone': 'vfio_group_ioctl_set_container(): the vfio group lost its last device (iommu_group NULL) -> -ENODEV (Own "The vfio group path")',
  'setc.not-container': 'vfio_group_ioctl_set_container(): neither a container nor an iommufd -> -EBADFD (Own "The vfio group path")',
  'setc.dma-owned':
    'drivers/vfio/container.c vfio_container_attach_group() -> iommu_group_claim_dma_owner(): owner_cnt != 0 (a kernel driver of the group uses the DMA API) -> -EPERM (Own "The vfio group path")',
  'setc.ok': 'vfio_container_attach_group(): the group is user owned, container_users 1 (Own "The vfio group path")',
  'unsetc.none': 'vfio_group_ioctl_unset_container(): no container -> -EINVAL (Own "The vfio group path")',
  'unsetc.busy': 'vfio_group_ioctl_unset_container(): device fds are open (container_users != 1) -> -EBUSY (Own "The vfio group path")',
  'unsetc.ok':
    'vfio_group_detach_container(): ownership released (iommu_group_release_dma_owner), the last group out of a container releases its backend (Own "The vfio group path")',
  'setiommu.einval': 'drivers/vfio/container.c vfio_ioctl_set_iommu(): no group in the container, or a backend already -> -EINVAL (Own "The vfio group path")',
  'setiommu.ok': 'vfio_ioctl_set_iommu(): type1v2 attaches every group of the container (Own "The vfio group path")',
  'ioctl.enotty': 'a group or device fd does not know a container ioctl: vfio_group_fops_unl_ioctl() / vfio_pci_core_ioctl() default -> -ENOTTY',
  'getdev.no-device': 'drivers/vfio/group.c vfio_device_get_from_name(): no vfio device of that name in the group -> -ENODEV (Own "The vfio group path")',
  'getdev.no-container': 'vfio_df_group_open(): the group has no container -> -EINVAL (Own "The vfio group path")',
  'getdev.no-iommu': 'drivers/vfio/container.c vfio_group_use_container(): the container has no backend -> -EINVAL (Own "The vfio group path")',
  'getdev.ok':
    'vfio_df_group_open(); the group path opens a device any number of times (vfio_main.c vfio_df_open()); the fd holds the group file and a container user (Own "The vfio group path")',
  'status.gone': 'vfio_group_ioctl_get_status(): the vfio group lost its last device -> -ENODEV (Own "The vfio group path")',
  'status.ok':
    'vfio_group_ioctl_get_status(): CONTAINER_SET|VIABLE with a container, else VIABLE iff iommu_group_dma_owner_claimed() is false (Own "The vfio group path")',
  'vclose.ok':
    'close of a vfio file: the group file is released when its fds and every device fd are gone (vfio_group_fops_release() detaches the container: ownership returns), a device fd drops its container user and group file (Own "The vfio group path")',
  'vdup.ok': 'dup() shares the open vfio file',
} as const;

export type Driver = 'test' | 'vfio' | 'none';

interface VGroup {
  /** index into VfioState.groups */
  iommuGroup: number;
  /** group->iommu_group still set (a vfio device is bound) */
  alive: boolean;
  /** key of the open group file, if any */
  openFile: number | null;
  /** key of its container, if any */
  container: number | null;
  /** container_users: 1 for the group, +1 per open device fd */
  containerUsers: number;
}

interface Container {
  /** vfio groups attached */
  groups: number;
  /** a backend (type1) is set */
  iommu: boolean;
  /** the backend's VFIO_IOMMU_MAP_DMA mappings (harness/model/dma.ts) */
  dma?: DmaMapping[];
}

type VFile =
  | { kind: 'group'; vgroup: number; refs: number }
  | { kind: 'container'; container: number; refs: number }
  | { kind: 'device'; ep: number; vgroup: number; refs: number }
  | IommufdFile;

export interface VfioState {
  /** each endpoint's driver */
  drivers: Driver[];
  /** each endpoint's IOMMU group (index into groups) */
  groupOf: number[];
  /** per IOMMU group: its endpoints and its live vfio group (key), if any */
  groups: { eps: number[]; vgroup: number | null }[];
  vgroups: Map<number, VGroup>;
  containers: Map<number, Container>;
  files: Map<number, VFile>;
  /** descriptor names of vfio files, per task */
  fds: Map<string, Map<string, number>>;
  nextKey: number;
  /** iommufd contexts and the tasks' object names (harness/model/iommufd.ts) */
  iommufd: IommufdState;
}

/** The state at program start: every endpoint bound to the test driver (the agent loads it). */
export function initialVfio(device: DeviceParams): VfioState | undefined {
  if (!device.sva || device.groups === undefined) return undefined;
  const groupOf = Array.from({ length: device.devices }, () => -1);
  const groups = device.groups.map((eps, i) => {
    for (const e of eps) groupOf[e] = i;
    return { eps: [...eps], vgroup: null };
  });
  // endpoints the program does not place are each alone (parse.ts requires vfio programs to place all)
  for (let e = 0; e < groupOf.length; e++) if (groupOf[e] === -1) groupOf[e] = groups.push({ eps: [e], vgroup: null }) - 1;
  return {
    drivers: groupOf.map(() => 'test'),
    groupOf,
    groups,
    vgroups: new Map(),
    containers: new Map(),
    files: new Map(),
    fds: new Map(),
    nextKey: 1,
    iommufd: initialIommufd(),
  };
}

const copies = new WeakMap<Draft, VfioState>();

/** The draft's own copy of the vfio state (made at its first change). */
export function editVfio(d: Draft): VfioState {
  return edit(d);
}

function edit(d: Draft): VfioState {
  let v = copies.get(d);
  if (v === undefined) {
    const cur = d.s.vfio;
    if (cur === undefined) throw new Error('model: vfio op without device.groups (parse.ts rejects such programs)');
    v = structuredClone(cur);
    copies.set(d, v);
    d.s.vfio = v;
  }
  return v;
}

/** The vfio file a task's descriptor name holds, if it is one. */
export function vfioFile(s: ModelState, task: string, fd: string): number | undefined {
  return s.vfio?.fds.get(task)?.get(fd);
}

const dmaUsers = (v: VfioState, g: number) => v.groups[g]!.eps.filter((e) => v.drivers[e] === 'test').length;
/** user owned: a vfio group in a container, or a device bound to an iommufd (iommufd.ts) */
const userOwned = (v: VfioState, g: number) => {
  const k = v.groups[g]!.vgroup;
  return (k !== null && v.vgroups.get(k)!.container !== null) || iommufdOwner(v, g) !== undefined;
};

/** vfio_group_detach_container(): ownership released, the last group out deprivileges the container. */
function detach(v: VfioState, vg: VGroup): void {
  const c = v.containers.get(vg.container!)!;
  c.groups--;
  if (c.groups === 0) {
    // container.c vfio_container_detach_group(): the backend's release drops its mappings (Own "The type1 backend")
    c.iommu = false;
    delete c.dma;
  }
  vg.container = null;
  vg.containerUsers = 0;
}

/** Drop references to a vfio file; at the last one it is released. */
function dropFile(v: VfioState, key: number, n = 1): void {
  const f = v.files.get(key)!;
  f.refs -= n;
  if (f.refs > 0) return;
  v.files.delete(key);
  if (f.kind === 'group') {
    // vfio_group_fops_release(): detach the container, the group may be opened again
    const vg = v.vgroups.get(f.vgroup)!;
    if (vg.container !== null) detach(v, vg);
    if (vg.openFile === key) vg.openFile = null;
  } else if (f.kind === 'device') {
    // vfio_df_group_close() -> vfio_group_unuse_container(): container_users--, fput(group file)
    const vg = v.vgroups.get(f.vgroup)!;
    vg.containerUsers--;
    dropFile(v, vg.openFile!);
  } else if (f.kind === 'iommufd' || f.kind === 'cdev') {
    releaseIommufdFile(v, f);
  }
  // a container file: the container lives on while a group holds it (vfio_container_get)
}

/** A new vfio-family file under a descriptor name of a task (iommufd.ts makes its files with it too). */
export function newFile(v: VfioState, task: string, name: string, f: VFile): number {
  const key = v.nextKey++;
  v.files.set(key, f);
  let m = v.fds.get(task);
  if (m === undefined) v.fds.set(task, (m = new Map()));
  m.set(name, key);
  return key;
}

/** close() of a vfio descriptor (core.ts close). */
export function vfioClose(d: Draft, task: Task, fd: string): OpResult {
  const v = edit(d);
  const key = v.fds.get(task.name)!.get(fd)!;
  v.fds.get(task.name)!.delete(fd);
  const kind = v.files.get(key)!.kind;
  dropFile(v, key);
  return res(ok(), kind === 'iommufd' || kind === 'cdev' ? 'iofd.close' : 'vclose.ok');
}

/** dup() of a vfio descriptor (core.ts dup). */
export function vfioDup(d: Draft, task: Task, fd: string, as: string): OpResult {
  const v = edit(d);
  const key = v.fds.get(task.name)!.get(fd)!;
  v.fds.get(task.name)!.set(as, key);
  v.files.get(key)!.refs++;
  return res(ok(), 'vdup.ok');
}

/** fork(): the child shares every vfio file (core.ts fork). */
export function vfioFork(d: Draft, parent: string, child: string): void {
  const objs = d.s.vfio?.iommufd.objs.get(parent);
  // the child's memory is a copy: it holds the parent's iommufd object ids (the runtime's objs[])
  if (objs !== undefined && objs.size > 0) edit(d).iommufd.objs.set(child, new Map(objs));
  const fds = d.s.vfio?.fds.get(parent);
  if (fds === undefined || fds.size === 0) return;
  const v = edit(d);
  v.fds.set(child, new Map(fds));
  for (const key of fds.values()) v.files.get(key)!.refs++;
}

/** exit(): the task's vfio files are closed (core.ts exit). */
export function vfioExit(d: Draft, task: string): void {
  const fds = d.s.vfio?.fds.get(task);
  if (fds === undefined || fds.size === 0) return;
  const v = edit(d);
  const keys = [...v.fds.get(task)!.values()];
  v.fds.delete(task);
  for (const key of keys) dropFile(v, key);
}

/** The vfio file of a descriptor field, or the outcome when it is none (EBADF, not a vfio file). */
function fileOf(d: Draft, task: Task, fd: string): { key: number; f: VFile } | OpResult {
  const key = vfioFile(d.s, task.name, fd);
  if (key === undefined) return task.fds.has(fd) ? res(err('EINVAL'), 'vfio.not-group') : res(err('EBADF'), 'fd.ebadf');
  return { key, f: d.s.vfio!.files.get(key)! };
}
const isResult = (x: unknown): x is OpResult => typeof x === 'object' && x !== null && 'rule' in x;

function doBind(d: Draft, _task: Task, op: OpOf<'pci_bind'>): OpResult {
  const v0 = d.s.vfio!;
  if (v0.drivers[op.dev] !== 'none') return res(err('EBUSY'), 'bind.has-driver');
  const g = v0.groupOf[op.dev]!;
  if (op.driver === 'test') {
    if (userOwned(v0, g)) return res(err('EBUSY'), 'bind.user-owned');
    edit(d).drivers[op.dev] = 'test';
    return res(ok(), 'bind.dma-api');
  }
  const v = edit(d);
  v.drivers[op.dev] = 'vfio';
  // without VFIO_GROUP vfio_register_group_dev() makes no vfio group (the device cdev only)
  if (v.groups[g]!.vgroup === null && d.s.profile.vfioPaths.group) {
    const key = v.nextKey++;
    v.vgroups.set(key, { iommuGroup: g, alive: true, openFile: null, container: null, containerUsers: 0 });
    v.groups[g]!.vgroup = key;
  }
  return res(ok(), 'bind.vfio');
}

function doUnbind(d: Draft, _task: Task, op: OpOf<'pci_unbind'>): OpResult {
  const v0 = d.s.vfio!;
  const drv = v0.drivers[op.dev]!;
  if (drv === 'none') return res(err('ENOENT'), 'unbind.none');
  if (drv === 'test') {
    edit(d).drivers[op.dev] = 'none';
    return res(ok(), 'unbind.test');
  }
  if ([...v0.files.values()].some((f) => f.kind === 'device' && f.ep === op.dev)) return res({ kind: 'hang' }, 'unbind.vfio-open');
  if (cdevOpen(v0, op.dev)) return res({ kind: 'hang' }, 'unbind.cdev-open');
  const v = edit(d);
  v.drivers[op.dev] = 'none';
  const g = v.groupOf[op.dev]!;
  if (v.groups[g]!.eps.some((e) => v.drivers[e] === 'vfio')) return res(ok(), 'unbind.vfio');
  // vfio_device_remove_group(): the last vfio device of the group
  if (v.groups[g]!.vgroup === null) return res(ok(), 'unbind.vfio');
  const vg = v.vgroups.get(v.groups[g]!.vgroup!)!;
  if (vg.container !== null) detach(v, vg);
  vg.alive = false;
  v.groups[g]!.vgroup = null;
  return res(ok(), 'unbind.vfio');
}

function doGroupOpen(d: Draft, task: Task, op: OpOf<'vfio_group'>): OpResult {
  const v0 = d.s.vfio!;
  const k = v0.groups[v0.groupOf[op.dev]!]!.vgroup;
  if (k === null) return res(err('ENOENT'), 'vgroup.no-node');
  if (v0.vgroups.get(k)!.openFile !== null) return res(err('EBUSY'), 'vgroup.single-open');
  const v = edit(d);
  v.vgroups.get(k)!.openFile = newFile(v, task.name, op.fd, { kind: 'group', vgroup: k, refs: 1 });
  return res(ok(), 'vgroup.open');
}

function doContainerOpen(d: Draft, task: Task, op: OpOf<'vfio_container'>): OpResult {
  if (!d.s.profile.vfioPaths.group) return res(err('ENOENT'), 'container.absent');
  const v = edit(d);
  const c = v.nextKey++;
  v.containers.set(c, { groups: 0, iommu: false });
  newFile(v, task.name, op.fd, { kind: 'container', container: c, refs: 1 });
  return res(ok(), 'container.open');
}

/** The group of a group-ioctl's descriptor (or the outcome for another descriptor). */
function groupOf(d: Draft, task: Task, fd: string): { key: number; vg: VGroup } | OpResult {
  const x = fileOf(d, task, fd);
  if (isResult(x)) return x;
  if (x.f.kind !== 'group') return res(err('EINVAL'), 'vfio.not-group');
  return { key: x.f.vgroup, vg: d.s.vfio!.vgroups.get(x.f.vgroup)! };
}

function doSetContainer(d: Draft, task: Task, op: OpOf<'vfio_set_container'>): OpResult {
  const x = groupOf(d, task, op.vgroup);
  if (isResult(x)) return x;
  const ckey = vfioFile(d.s, task.name, op.container);
  // fdget(): a closed descriptor -> -EBADF, before any group check
  if (ckey === undefined && !task.fds.has(op.container)) return res(err('EBADF'), 'fd.ebadf');
  if (x.vg.container !== null) return res(err('EINVAL'), 'setc.has-container');
  if (!x.vg.alive) return res(err('ENODEV'), 'setc.group-gone');
  const cf = ckey === undefined ? undefined : d.s.vfio!.files.get(ckey);
  if (cf === undefined || cf.kind !== 'container') return res(err('EBADFD'), 'setc.not-container');
  if (dmaUsers(d.s.vfio!, x.vg.iommuGroup) > 0) return res(err('EPERM'), 'setc.dma-owned');
  const v = edit(d);
  const vg = v.vgroups.get(x.key)!;
  vg.container = cf.container;
  vg.containerUsers = 1;
  v.containers.get(cf.container)!.groups++;
  return res(ok(), 'setc.ok');
}

function doUnsetContainer(d: Draft, task: Task, op: OpOf<'vfio_unset_container'>): OpResult {
  const x = groupOf(d, task, op.vgroup);
  if (isResult(x)) return x;
  if (x.vg.container === null) return res(err('EINVAL'), 'unsetc.none');
  if (x.vg.containerUsers !== 1) return res(err('EBUSY'), 'unsetc.busy');
  const v = edit(d);
  detach(v, v.vgroups.get(x.key)!);
  return res(ok(), 'unsetc.ok');
}

function doSetIommu(d: Draft, task: Task, op: OpOf<'vfio_set_iommu'>): OpResult {
  const x = fileOf(d, task, op.container);
  if (isResult(x)) return x.rule === 'vfio.not-group' ? res(err('EINVAL'), 'vfio.not-container-ioctl') : x;
  if (x.f.kind !== 'container') return res(err('ENOTTY'), 'ioctl.enotty');
  const c = d.s.vfio!.containers.get(x.f.container)!;
  if (c.groups === 0 || c.iommu) return res(err('EINVAL'), 'setiommu.einval');
  edit(d).containers.get(x.f.container)!.iommu = true;
  return res(ok(), 'setiommu.ok');
}

function doGetDevice(d: Draft, task: Task, op: OpOf<'vfio_device'>): OpResult {
  const x = groupOf(d, task, op.vgroup);
  if (isResult(x)) return x;
  const v0 = d.s.vfio!;
  const inGroup = x.vg.alive && v0.groupOf[op.dev] === x.vg.iommuGroup && v0.drivers[op.dev] === 'vfio';
  if (!inGroup) return res(err('ENODEV'), 'getdev.no-device');
  if (x.vg.container === null) return res(err('EINVAL'), 'getdev.no-container');
  if (!v0.containers.get(x.vg.container)!.iommu) return res(err('EINVAL'), 'getdev.no-iommu');
  const v = edit(d);
  const vg = v.vgroups.get(x.key)!;
  vg.containerUsers++;
  v.files.get(vg.openFile!)!.refs++; // get_file(group->opened_file)
  newFile(v, task.name, op.fd, { kind: 'device', ep: op.dev, vgroup: x.key, refs: 1 });
  return res(ok(), 'getdev.ok');
}

function doStatus(d: Draft, task: Task, op: OpOf<'vfio_status'>): OpResult {
  const x = groupOf(d, task, op.vgroup);
  if (isResult(x)) return x;
  if (!x.vg.alive) return res(err('ENODEV'), 'status.gone');
  const flags = x.vg.container !== null ? 0x3 : dmaUsers(d.s.vfio!, x.vg.iommuGroup) === 0 ? 0x1 : 0x0;
  const out: Outcome = ok(`0x${flags.toString(16)}`);
  return res(out, 'status.ok');
}

export const VFIO_MODEL: ModelOps<
  'pci_bind' | 'pci_unbind' | 'vfio_group' | 'vfio_container' | 'vfio_set_container' | 'vfio_unset_container' | 'vfio_set_iommu' | 'vfio_device' | 'vfio_status'
> = {
  pci_bind: { check: doBind },
  pci_unbind: { check: doUnbind },
  vfio_group: { check: doGroupOpen },
  vfio_container: { check: doContainerOpen },
  vfio_set_container: { check: doSetContainer },
  vfio_unset_container: { check: doUnsetContainer },
  vfio_set_iommu: { check: doSetIommu },
  vfio_device: { check: doGetDevice },
  vfio_status: { check: doStatus },
};

/** What the generator sees of a vfio descriptor. */
export interface VfioFdInfo {
  name: string;
  kind: 'group' | 'container' | 'device';
  /** a group's or device's IOMMU group */
  iommuGroup?: number;
  /** a group: it is in a container; a container: it has a group */
  attached: boolean;
  /** the container (of a group, or itself) has its backend */
  iommu: boolean;
}

/** Every descriptor name of a task that holds a file of the vfio family (group path, iommufd, cdev). */
export function vfioFdNames(s: ModelState, task: string): string[] {
  return [...(s.vfio?.fds.get(task)?.keys() ?? [])];
}

/** A task's vfio descriptors of the group path (for the generator; iommufd.ts iommufdFdsOf has the others). */
export function vfioFdsOf(s: ModelState, task: string): VfioFdInfo[] {
  const v = s.vfio;
  const m = v?.fds.get(task);
  if (!v || !m) return [];
  return [...m].flatMap(([name, key]): VfioFdInfo[] => {
    const f = v.files.get(key)!;
    if (f.kind === 'iommufd' || f.kind === 'cdev') return []; // iommufdFdsOf (iommufd.ts)
    if (f.kind === 'container') {
      const c = v.containers.get(f.container)!;
      return [{ name, kind: f.kind, attached: c.groups > 0, iommu: c.iommu }];
    }
    const vg = v.vgroups.get(f.vgroup)!;
    const iommu = vg.container !== null && v.containers.get(vg.container)!.iommu;
    return [{ name, kind: f.kind, iommuGroup: vg.iommuGroup, attached: vg.container !== null, iommu }];
  });
}

/** Each endpoint's driver (for the generator). */
export function endpointDrivers(s: ModelState): readonly Driver[] {
  return s.vfio?.drivers ?? [];
}

/** Would unbinding endpoint ep block (a device fd of it is open)? */
export function unbindBlocks(s: ModelState, ep: number): boolean {
  return [...(s.vfio?.files.values() ?? [])].some((f) => (f.kind === 'device' || f.kind === 'cdev') && f.ep === ep);
}

/** Who owns each IOMMU group's DMA, for reports: "{0}: DMA API; {1,2}: user". */
export function describeOwnership(v: VfioState): string {
  return v.groups
    .map((g, i) => `{${g.eps.join(',')}}: ${iommufdOwner(v, i) !== undefined ? 'user (iommufd)' : userOwned(v, i) ? 'user' : dmaUsers(v, i) > 0 ? 'DMA API' : 'unowned'} [${g.eps.map((e) => v.drivers[e]).join(',')}]`)
    .join('; ');
}
