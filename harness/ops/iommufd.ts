/**
 * Ops of iommufd and vfio's device cdev path, in the vfio family: `/dev/iommu`, IOAS allocation,
 * mapping the task's memory into an IOAS, the device cdev (`/dev/vfio/devices/vfioN`) bound to
 * an iommufd, HWPT allocation, attach (or replace) to an IOAS or HWPT, detach, IOMMU_DESTROY.
 * iommufd objects are named by the `obj` handle kind: the id an op returned, kept by the task.
 * Their model is harness/model/iommufd.ts, its rules docs/ownership-semantics.md ("iommufd").
 * Opcodes 41-50 (docs: /work/helpers/notes/iommufd-interface.md).
 */
import { SVT_IOVA_BASE } from '../agent/conventions.js';
import { LIMITS } from '../program/limits.js';
import { bool, defineOp, handle, int, pagesText } from './describe.js';

/** IOVA pages of the ops: IOVA = SVT_IOVA_BASE + page * 4096 (guest/runtime/svt_defs.h). */
export const IOVA_PAGES = 16;
export const IOVA_BASE = SVT_IOVA_BASE;

const dev = () => int(0, LIMITS.maxDevices - 1, { doc: 'endpoint index', default: 0, device: true, simpler: [0] });
const iommufd = () => handle('fd', 'use', { doc: 'the iommufd (`/dev/iommu`)' });
const iova = () => int(0, IOVA_PAGES - 1, { doc: 'first IOVA page (IOVA = SVT_IOVA_BASE + iova × 4096)', default: 0, simpler: [0] });
const iovaPages = () => int(1, IOVA_PAGES, { doc: 'pages', default: 1, simpler: [1], extentOf: true });
const SHEET = 'iommufd (self-built kernels with IOMMUFD and VFIO_DEVICE_CDEV)';
const WEIGHT = 0; // drawn only in vfio programs (generator/vfio.ts, on kernels with iommufd)

export const iommufdOpen = defineOp({
  op: 'iommufd',
  opcode: 41,
  family: 'vfio',
  doc: 'open `/dev/iommu`: a new iommufd context',
  fields: { fd: handle('fd', 'create', { doc: 'name of the new descriptor' }) },
  result: 'none',
  resultDoc: "open's return",
  c: (v) => ({ body: [`ret = ${v.fd('fd')} = open(IOMMUFD_DEV, O_RDWR | O_CLOEXEC);`, 'e = errno;'] }),
  call: (op) => `${op.fd} = open(/dev/iommu)`,
  comment: () => 'a new iommufd context: iommufd_fops_open() (object ids from 1)',
  describe: (op) => `open /dev/iommu -> ${op.fd}`,
  sheet: SHEET,
  weight: WEIGHT,
});

export const ioasAlloc = defineOp({
  op: 'ioas_alloc',
  opcode: 42,
  family: 'vfio',
  doc: 'IOMMU_IOAS_ALLOC: a new IOAS; `obj` names its id',
  fields: { iommufd: iommufd(), obj: handle('obj', 'create', { doc: 'name of the new object' }) },
  result: 'data',
  resultDoc: "ioctl's return; `data`: the IOAS's id (decimal)",
  c: (v) => ({ body: [`ret = iommufd_ioas_alloc(r, ${v.fd('iommufd')}, &${v.obj('obj')});`, 'e = errno;'] }),
  call: (op) => `${op.obj} = ioctl(${op.iommufd}, IOMMU_IOAS_ALLOC)`,
  comment: (op) => `a new IOAS in ${op.iommufd}: iommufd_ioas_alloc_ioctl(), the lowest free id from 1`,
  describe: (op) => `IOMMU_IOAS_ALLOC on ${op.iommufd} -> ${op.obj}`,
  sheet: SHEET,
  weight: WEIGHT,
});

export const ioasMap = defineOp({
  op: 'ioas_map',
  opcode: 43,
  family: 'vfio',
  doc: "IOMMU_IOAS_MAP of pages of a mapping of the task at a fixed IOVA (readable; writeable with `write`)",
  fields: {
    iommufd: iommufd(),
    ioas: handle('obj', 'use', { doc: 'the IOAS' }),
    map: handle('map', 'use', { doc: 'the memory (a mapping of this task, e.g. from `alloc`)' }),
    page: int(0, LIMITS.maxPages - 1, { doc: 'first page of the mapping', default: 0, simpler: [0] }),
    iova: iova(),
    pages: iovaPages(),
    write: bool({ doc: 'IOMMU_IOAS_MAP_WRITEABLE: the device may write', default: true }),
  },
  extent: ['page', 'pages'],
  result: 'none',
  resultDoc: "ioctl's return",
  c: (v) => ({ body: [`ret = iommufd_ioas_map(${v.fd('iommufd')}, ${v.obj('ioas')}, ${v.at('map', 'page')}, ${v.v('iova')}, ${v.v('pages')}, ${v.v('write')});`, 'e = errno;'] }),
  call: (op) => `ioctl(${op.iommufd}, IOMMU_IOAS_MAP, ${op.ioas}, ${op.map} + page ${op.page} -> IOVA page ${op.iova}, ${pagesText(op.pages)}${op.write ? ', rw' : ', r'})`,
  comment: (op) =>
    `map ${pagesText(op.pages)} of ${op.map} at IOVA page ${op.iova} of IOAS ${op.ioas}: iopt_map_user_pages() (pinned now if a HWPT of the IOAS has a domain, else when one is added)`,
  describe: (op) => `IOMMU_IOAS_MAP ${pagesText(op.pages)} of ${op.map} from page ${op.page} at IOVA page ${op.iova} of ${op.ioas}${op.write ? ' (writeable)' : ''}`,
  sheet: SHEET,
  weight: WEIGHT,
});

export const ioasUnmap = defineOp({
  op: 'ioas_unmap',
  opcode: 44,
  family: 'vfio',
  doc: 'IOMMU_IOAS_UNMAP of an IOVA range (every area in it must lie wholly inside)',
  fields: { iommufd: iommufd(), ioas: handle('obj', 'use', { doc: 'the IOAS' }), iova: iova(), pages: iovaPages() },
  result: 'none',
  resultDoc: "ioctl's return",
  c: (v) => ({ body: [`ret = iommufd_ioas_unmap(${v.fd('iommufd')}, ${v.obj('ioas')}, ${v.v('iova')}, ${v.v('pages')});`, 'e = errno;'] }),
  call: (op) => `ioctl(${op.iommufd}, IOMMU_IOAS_UNMAP, ${op.ioas}, IOVA page ${op.iova}, ${pagesText(op.pages)})`,
  comment: (op) => `unmap IOVA pages ${op.iova}..${op.iova + op.pages - 1} of IOAS ${op.ioas}: iopt_unmap_iova() (ENOENT for an area crossing the range, or none in it)`,
  describe: (op) => `IOMMU_IOAS_UNMAP ${pagesText(op.pages)} at IOVA page ${op.iova} of ${op.ioas}`,
  sheet: SHEET,
  weight: WEIGHT,
});

export const vfioCdev = defineOp({
  op: 'vfio_cdev',
  opcode: 45,
  family: 'vfio',
  doc: "open the vfio device cdev of endpoint `dev`, `/dev/vfio/devices/vfio<N>` (its `vfio-dev` entry in sysfs)",
  fields: { fd: handle('fd', 'create', { doc: 'name of the new descriptor' }), dev: dev() },
  result: 'none',
  resultDoc: "open's return",
  c: (v) => ({ body: [`ret = ${v.fd('fd')} = vfio_cdev_open(${v.v('dev')});`, 'e = errno;'] }),
  call: (op) => `${op.fd} = open(/dev/vfio/devices/<vfio device of endpoint ${op.dev}>)`,
  comment: (op) => `open the vfio cdev of endpoint ${op.dev}: vfio_device_fops_cdev_open() (no access until VFIO_DEVICE_BIND_IOMMUFD)`,
  describe: (op) => `open the vfio cdev of endpoint ${op.dev} -> ${op.fd}`,
  sheet: SHEET,
  weight: WEIGHT,
});

export const vfioBindIommufd = defineOp({
  op: 'vfio_bind_iommufd',
  opcode: 46,
  family: 'vfio',
  doc: 'VFIO_DEVICE_BIND_IOMMUFD: bind a cdev to an iommufd (claims the DMA ownership); `obj` names the device object',
  fields: {
    device: handle('fd', 'use', { doc: 'the vfio cdev' }),
    iommufd: iommufd(),
    obj: handle('obj', 'create', { doc: 'name of the device object' }),
  },
  result: 'data',
  resultDoc: "ioctl's return; `data`: the device's object id (decimal)",
  c: (v) => ({ body: [`ret = vfio_bind_iommufd(r, ${v.fd('device')}, ${v.fd('iommufd')}, &${v.obj('obj')});`, 'e = errno;'] }),
  call: (op) => `${op.obj} = ioctl(${op.device}, VFIO_DEVICE_BIND_IOMMUFD, ${op.iommufd})`,
  comment: (op) => `bind cdev ${op.device} to ${op.iommufd}: iommufd_device_bind() -> iommu_device_claim_dma_owner() (EPERM while a kernel driver or another owner has the group)`,
  describe: (op) => `VFIO_DEVICE_BIND_IOMMUFD ${op.device} to ${op.iommufd} -> ${op.obj}`,
  sheet: SHEET,
  weight: WEIGHT,
});

export const hwptAlloc = defineOp({
  op: 'hwpt_alloc',
  opcode: 47,
  family: 'vfio',
  doc: 'IOMMU_HWPT_ALLOC: a paging HWPT for a device object on an IOAS; `obj` names its id',
  fields: {
    iommufd: iommufd(),
    obj: handle('obj', 'create', { doc: 'name of the new HWPT' }),
    devobj: handle('obj', 'use', { doc: 'the device object' }),
    pt: handle('obj', 'use', { doc: 'the IOAS (a HWPT: a nested HWPT, which needs driver data)' }),
  },
  result: 'data',
  resultDoc: "ioctl's return; `data`: the HWPT's id (decimal)",
  c: (v) => ({ body: [`ret = iommufd_hwpt_alloc(r, ${v.fd('iommufd')}, ${v.obj('devobj')}, ${v.obj('pt')}, &${v.obj('obj')});`, 'e = errno;'] }),
  call: (op) => `${op.obj} = ioctl(${op.iommufd}, IOMMU_HWPT_ALLOC, dev ${op.devobj}, pt ${op.pt})`,
  comment: (op) => `a HWPT for ${op.devobj} on ${op.pt}: iommufd_hwpt_alloc() -> iommufd_hwpt_paging_alloc() (the IOAS gets its domain: mapped pages are pinned)`,
  describe: (op) => `IOMMU_HWPT_ALLOC for ${op.devobj} on ${op.pt} -> ${op.obj}`,
  sheet: SHEET,
  weight: WEIGHT,
});

export const vfioAttach = defineOp({
  op: 'vfio_attach',
  opcode: 48,
  family: 'vfio',
  doc: 'VFIO_DEVICE_ATTACH_IOMMUFD_PT: attach a bound cdev to an IOAS (an automatic HWPT) or a HWPT; a replace when attached',
  fields: { device: handle('fd', 'use', { doc: 'the vfio cdev' }), pt: handle('obj', 'use', { doc: 'the IOAS or HWPT' }) },
  result: 'data',
  resultDoc: "ioctl's return; `data`: the id of the HWPT the device is attached to (decimal)",
  c: (v) => ({ body: [`ret = vfio_attach_pt(r, ${v.fd('device')}, ${v.obj('pt')});`, 'e = errno;'] }),
  call: (op) => `ioctl(${op.device}, VFIO_DEVICE_ATTACH_IOMMUFD_PT, ${op.pt})`,
  comment: (op) =>
    `attach ${op.device} to ${op.pt}: iommufd_device_attach(), or iommufd_device_replace() when attached (the group moves to the new HWPT without a blocked window)`,
  describe: (op) => `VFIO_DEVICE_ATTACH_IOMMUFD_PT ${op.device} -> ${op.pt}`,
  sheet: SHEET,
  weight: WEIGHT,
});

export const vfioDetach = defineOp({
  op: 'vfio_detach',
  opcode: 49,
  family: 'vfio',
  doc: 'VFIO_DEVICE_DETACH_IOMMUFD_PT',
  fields: { device: handle('fd', 'use', { doc: 'the vfio cdev' }) },
  result: 'none',
  resultDoc: "ioctl's return",
  c: (v) => ({ body: [`ret = vfio_detach_pt(${v.fd('device')});`, 'e = errno;'] }),
  call: (op) => `ioctl(${op.device}, VFIO_DEVICE_DETACH_IOMMUFD_PT)`,
  comment: (op) => `detach ${op.device}: iommufd_device_detach() (an automatic HWPT goes with its last device; 0 when not attached)`,
  describe: (op) => `VFIO_DEVICE_DETACH_IOMMUFD_PT ${op.device}`,
  sheet: SHEET,
  weight: WEIGHT,
});

export const iommufdDestroy = defineOp({
  op: 'iommufd_destroy',
  opcode: 50,
  family: 'vfio',
  doc: 'IOMMU_DESTROY of an object id',
  fields: { iommufd: iommufd(), obj: handle('obj', 'use', { doc: 'the object' }) },
  result: 'none',
  resultDoc: "ioctl's return",
  c: (v) => ({ body: [`ret = iommufd_destroy(${v.fd('iommufd')}, ${v.obj('obj')});`, 'e = errno;'] }),
  call: (op) => `ioctl(${op.iommufd}, IOMMU_DESTROY, ${op.obj})`,
  comment: (op) => `destroy ${op.obj} in ${op.iommufd}: iommufd_object_remove() (EBUSY while in use, ENOENT for no such id)`,
  describe: (op) => `IOMMU_DESTROY ${op.obj} on ${op.iommufd}`,
  sheet: SHEET,
  weight: WEIGHT,
});

// The endpoint DMA ops (ep_dma 51, vfio_map_dma 52, vfio_unmap_dma 53) are harness/ops/dma.ts
// (another helper's branch): ep_dma through a cdev bound here reads the IOAS through
// harness/model/iommufd.ts iommufdReach().
