/**
 * Ops of DMA through a user-owned domain: the type1 backend's mappings of a task's memory
 * (VFIO_IOMMU_MAP_DMA / UNMAP_DMA on a container) and the endpoint's engine driven through a
 * vfio device fd against an IOVA page (ep_dma). Their model is harness/model/dma.ts, its rules
 * docs/ownership-semantics.md "What the device can reach by DMA". Part of the vfio family
 * (opcodes 51-53; iommufd's are 41-50).
 */
import { LIMITS } from '../program/limits.js';
import { bool, defineOp, handle, int, pagesText } from './describe.js';
import { IOVA_PAGES } from './iommufd.js';

/** IOVA pages the DMA ops name: the iommufd ops' (IOVA = SVT_IOVA_BASE + page × 4096). */
export const DMA_IOVA_PAGES = IOVA_PAGES;

const iova = () => int(0, DMA_IOVA_PAGES - 1, { doc: 'first IOVA page (IOVA = SVT_IOVA_BASE + iova × 4096)', default: 0, simpler: [0] });
const iovaPages = () => int(1, DMA_IOVA_PAGES, { doc: 'pages', default: 1, simpler: [1], extentOf: true });
const iovaText = (first: number, pages: number) => (pages === 1 ? `IOVA page ${first}` : `IOVA pages ${first}..${first + pages - 1}`);

export const epDma = defineOp({
  op: 'ep_dma',
  opcode: 51,
  family: 'vfio',
  doc: "run the endpoint's engine once against IOVA page `iova`, through vfio device fd `device` (register page and ring there, without PASID)",
  fields: {
    device: handle('fd', 'use', { doc: 'a vfio device fd of the endpoint' }),
    iova: iova(),
  },
  result: 'data',
  resultDoc: '0 or −1 (region info, config or BAR access); `data`: `done N` or `dma-error N`, N the descriptors the engine completed',
  c: (v) => ({ body: [`ret = ep_dma(r, ${v.fd('device')}, ${v.v('iova')});`, 'e = errno;'] }),
  call: (op) => `ep_dma(${op.device}, IOVA page ${op.iova})`,
  comment: (op) =>
    `the endpoint of ${op.device} reads its doorbell and a descriptor at IOVA page ${op.iova} and writes STATUS and CQ_HEAD back by DMA through its group's domain (an IOVA nothing maps: a DMA remapping fault)`,
  describe: (op) => `DMA by the endpoint of ${op.device} to IOVA page ${op.iova} (its engine: doorbell, descriptor, status)`,
  sheet: 'What the device can reach by DMA',
  weight: 0, // drawn only in vfio programs (generator/vfio.ts VFIO_WEIGHTS)
});

export const vfioMapDma = defineOp({
  op: 'vfio_map_dma',
  opcode: 52,
  family: 'vfio',
  doc: "VFIO_IOMMU_MAP_DMA: pages of a task's mapping at an IOVA of the container's type1 backend (pinned)",
  fields: {
    container: handle('fd', 'use', { doc: 'the container' }),
    map: handle('map', 'use', { doc: 'the memory (a mapping of this task)' }),
    page: int(0, LIMITS.maxPages - 1, { doc: 'first page of the mapping', default: 0, simpler: [0] }),
    iova: iova(),
    pages: iovaPages(),
    write: bool({ doc: 'the device may write (VFIO_DMA_MAP_FLAG_WRITE; READ always)', default: true, simpler: [true] }),
  },
  extent: ['page', 'pages'],
  result: 'none',
  resultDoc: "ioctl's return",
  c: (v) => ({ body: [`ret = vfio_map_dma(${v.fd('container')}, ${v.at('map', 'page')}, ${v.v('iova')}, ${v.v('pages')}, ${v.v('write')});`, 'e = errno;'] }),
  call: (op) => `ioctl(${op.container}, VFIO_IOMMU_MAP_DMA, ${op.map} + page ${op.page} -> ${iovaText(op.iova, op.pages)}${op.write ? ', rw' : ', r'})`,
  comment: (op) =>
    `map ${pagesText(op.pages)} of ${op.map} at ${iovaText(op.iova, op.pages)}: vfio_dma_do_map() pins them (pin_user_pages_remote, FOLL_LONGTERM${op.write ? '|FOLL_WRITE' : ''}); EEXIST over a mapping`,
  describe: (op) => `VFIO_IOMMU_MAP_DMA ${pagesText(op.pages)} of ${op.map} from page ${op.page} at ${iovaText(op.iova, op.pages)} on ${op.container}${op.write ? ' (writeable)' : ' (read-only)'}`,
  sheet: 'What the device can reach by DMA',
  weight: 0, // drawn only in vfio programs (generator/vfio.ts VFIO_WEIGHTS)
});

export const vfioUnmapDma = defineOp({
  op: 'vfio_unmap_dma',
  opcode: 53,
  family: 'vfio',
  doc: 'VFIO_IOMMU_UNMAP_DMA of IOVA pages of the container',
  fields: {
    container: handle('fd', 'use', { doc: 'the container' }),
    iova: iova(),
    pages: iovaPages(),
  },
  result: 'data',
  resultDoc: "ioctl's return; `data`: the pages it unmapped (`unmap.size` / 4096)",
  c: (v) => ({ body: [`ret = vfio_unmap_dma(r, ${v.fd('container')}, ${v.v('iova')}, ${v.v('pages')});`, 'e = errno;'] }),
  call: (op) => `ioctl(${op.container}, VFIO_IOMMU_UNMAP_DMA, ${iovaText(op.iova, op.pages)})`,
  comment: (op) => `unmap ${iovaText(op.iova, op.pages)}: vfio_dma_do_unmap() (v2: EINVAL if it cuts a mapping) unpins the pages`,
  describe: (op) => `VFIO_IOMMU_UNMAP_DMA ${iovaText(op.iova, op.pages)} on ${op.container}`,
  sheet: 'What the device can reach by DMA',
  weight: 0, // drawn only in vfio programs (generator/vfio.ts VFIO_WEIGHTS)
});
