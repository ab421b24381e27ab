/**
 * Programs of the vfio family with the outcomes docs/ownership-semantics.md says they have, op
 * by op: the model must predict exactly these (test/unit/model-vfio.test.ts) and Debian's 6.12
 * must give them (test/integration/vfio.test.ts).
 */
import { parseProgram } from '../../harness/program/parse.js';

export const DEVICE = { sva: true, devices: 3, mmio_pages: 1, dus_pages: 1, groups: [[0], [1, 2]] };

export function program(ops: unknown[], device: Record<string, unknown> = DEVICE) {
  return parseProgram(JSON.stringify({ format: 'svadiff-program', version: 1, device, ops }), 'vfio-test');
}

/** Endpoint 0 from the test driver to a device fd `d` on the group path (group g, container c with its backend). */
export const TO_DEVICE_FD = [
  { op: 'pci_unbind', task: 't0', dev: 0 },
  { op: 'pci_bind', task: 't0', dev: 0, driver: 'vfio' },
  { op: 'vfio_group', task: 't0', fd: 'g', dev: 0 },
  { op: 'vfio_container', task: 't0', fd: 'c' },
  { op: 'vfio_set_container', task: 't0', vgroup: 'g', container: 'c' },
  { op: 'vfio_set_iommu', task: 't0', container: 'c' },
  { op: 'vfio_device', task: 't0', fd: 'd', vgroup: 'g', dev: 0 },
];

/** The single-device group (endpoint 0): open, container, backend, device fds, close in any order, fork. */
export const SINGLE = program([
  { op: 'pci_bind', task: 't0', dev: 0, driver: 'vfio' }, // 0: it has the test driver
  { op: 'vfio_group', task: 't0', fd: 'g0', dev: 0 }, // 1: no vfio group yet
  { op: 'pci_unbind', task: 't0', dev: 0 },
  { op: 'pci_unbind', task: 't0', dev: 0 }, // 3: no driver
  { op: 'pci_bind', task: 't0', dev: 0, driver: 'vfio' },
  { op: 'vfio_group', task: 't0', fd: 'g', dev: 0 }, // 5
  { op: 'vfio_group', task: 't0', fd: 'g2', dev: 0 }, // 6: one open file per group
  { op: 'vfio_status', task: 't0', vgroup: 'g' }, // 7: viable
  { op: 'vfio_container', task: 't0', fd: 'c' },
  { op: 'vfio_set_iommu', task: 't0', container: 'c' }, // 9: no group in it
  { op: 'vfio_device', task: 't0', fd: 'd0', vgroup: 'g', dev: 0 }, // 10: no container
  { op: 'vfio_set_container', task: 't0', vgroup: 'g', container: 'c' }, // 11
  { op: 'vfio_status', task: 't0', vgroup: 'g' }, // 12: container set
  { op: 'vfio_device', task: 't0', fd: 'd1', vgroup: 'g', dev: 0 }, // 13: no backend
  { op: 'vfio_set_iommu', task: 't0', container: 'c' }, // 14
  { op: 'vfio_set_iommu', task: 't0', container: 'c' }, // 15: one already
  { op: 'vfio_device', task: 't0', fd: 'd', vgroup: 'g', dev: 0 }, // 16
  { op: 'vfio_device', task: 't0', fd: 'd2', vgroup: 'g', dev: 0 }, // 17: the group path opens a device again
  { op: 'vfio_unset_container', task: 't0', vgroup: 'g' }, // 18: device fds open
  { op: 'vfio_set_container', task: 't0', vgroup: 'g', container: 'c' }, // 19: has one
  { op: 'close', task: 't0', fd: 'g' }, // 20: the device fds hold the group file
  { op: 'close', task: 't0', fd: 'c' }, // 21: the group holds the container
  { op: 'fork', task: 't0', child: 't1' }, // 22: t1 shares d and d2
  { op: 'close', task: 't0', fd: 'd' },
  { op: 'close', task: 't0', fd: 'd2' },
  { op: 'vfio_group', task: 't0', fd: 'g3', dev: 0 }, // 25: still open (t1's device fds)
  { op: 'pci_bind', task: 't0', dev: 0, driver: 'test' }, // 26: it has vfio-pci
  { op: 'exit', task: 't1' }, // 27: the last files go: ownership returns
  { op: 'vfio_group', task: 't0', fd: 'g4', dev: 0 }, // 28: free again
  { op: 'vfio_status', task: 't0', vgroup: 'g4' }, // 29: viable, no container
  { op: 'close', task: 't0', fd: 'g4' },
  { op: 'pci_unbind', task: 't0', dev: 0 }, // 31: the last vfio device: the vfio group goes
  { op: 'vfio_group', task: 't0', fd: 'g5', dev: 0 }, // 32: no vfio group
  { op: 'pci_bind', task: 't0', dev: 0, driver: 'test' }, // 33: unowned: the DMA API may have it
]);
export const SINGLE_WANT = [
  'EBUSY', 'ENOENT', 'ok', 'ENOENT', 'ok', 'ok', 'EBUSY', 'ok(0x1)', 'ok', 'EINVAL', 'EINVAL', 'ok', 'ok(0x3)', 'EINVAL', 'ok', 'EINVAL',
  'ok', 'ok', 'EBUSY', 'EINVAL', 'ok', 'ok', 'ok', 'ok', 'ok', 'EBUSY', 'EBUSY', 'ok', 'ok', 'ok(0x1)', 'ok', 'ok', 'ENOENT', 'ok',
];

/** The group of two endpoints: a kernel driver on one keeps user space out, and the other way round. */
export const SHARED = program([
  { op: 'pci_unbind', task: 't0', dev: 1 },
  { op: 'pci_bind', task: 't0', dev: 1, driver: 'vfio' },
  { op: 'vfio_group', task: 't0', fd: 'g', dev: 1 },
  { op: 'vfio_status', task: 't0', vgroup: 'g' }, // 3: endpoint 2 has the test driver: not viable
  { op: 'vfio_container', task: 't0', fd: 'c' },
  { op: 'vfio_set_container', task: 't0', vgroup: 'g', container: 'c' }, // 5: DMA-API owned
  { op: 'vfio_device', task: 't0', fd: 'd6', vgroup: 'g', dev: 2 }, // 6: endpoint 2 is no vfio device
  { op: 'pci_unbind', task: 't0', dev: 2 },
  { op: 'vfio_status', task: 't0', vgroup: 'g' }, // 8: viable now
  { op: 'vfio_set_container', task: 't0', vgroup: 'g', container: 'c' }, // 9: user owned
  { op: 'vfio_set_iommu', task: 't0', container: 'c' },
  { op: 'pci_bind', task: 't0', dev: 2, driver: 'test' }, // 11: a kernel driver in a user-owned group
  { op: 'pci_bind', task: 't0', dev: 2, driver: 'vfio' }, // 12: vfio-pci manages its DMA itself
  { op: 'vfio_device', task: 't0', fd: 'd', vgroup: 'g', dev: 2 },
  { op: 'vfio_device', task: 't0', fd: 'd0', vgroup: 'g', dev: 0 }, // 14: another group's endpoint
  { op: 'vfio_set_container', task: 't0', vgroup: 'g', container: 'g' }, // 15: has a container already
  { op: 'pci_unbind', task: 't0', dev: 1 }, // 16: no device fd of endpoint 1; endpoint 2 keeps the vfio group
  { op: 'pci_bind', task: 't0', dev: 1, driver: 'test' }, // 17: still user owned
  { op: 'close', task: 't0', fd: 'd' },
  { op: 'vfio_unset_container', task: 't0', vgroup: 'g' }, // 19: ownership released
  { op: 'pci_bind', task: 't0', dev: 1, driver: 'test' }, // 20
  { op: 'vfio_set_container', task: 't0', vgroup: 'g', container: 'c' }, // 21: DMA-API owned again
  { op: 'vfio_status', task: 't0', vgroup: 'g' }, // 22
  { op: 'pci_unbind', task: 't0', dev: 2 }, // 23: the group's last vfio device
  { op: 'vfio_status', task: 't0', vgroup: 'g' }, // 24: the open file's group is gone
  { op: 'vfio_set_container', task: 't0', vgroup: 'g', container: 'c' }, // 25
  { op: 'vfio_device', task: 't0', fd: 'd26', vgroup: 'g', dev: 2 }, // 26
  { op: 'pci_bind', task: 't0', dev: 2, driver: 'vfio' }, // 27: a new vfio group
  { op: 'vfio_group', task: 't0', fd: 'g2', dev: 2 }, // 28: opens though the old file is open
  { op: 'vfio_status', task: 't0', vgroup: 'g2' }, // 29: endpoint 1 has the test driver
]);
export const SHARED_WANT = [
  'ok', 'ok', 'ok', 'ok(0x0)', 'ok', 'EPERM', 'ENODEV', 'ok', 'ok(0x1)', 'ok', 'ok', 'EBUSY', 'ok', 'ok', 'ENODEV', 'EINVAL',
  'ok', 'EBUSY', 'ok', 'ok', 'ok', 'EPERM', 'ok(0x0)', 'ok', 'ENODEV', 'ENODEV', 'ENODEV', 'ok', 'ok', 'ok(0x0)',
];


/**
 * DMA through endpoint 0's user-owned domain (docs/ownership-semantics.md "What the device can
 * reach by DMA"): the type1 backend's mappings, the endpoint's engine run against a mapped
 * IOVA (its writes land in the mapping task's memory, read back with touch), an unmapped one
 * and one after unmap (DMA remapping faults the model expects), a read-only mapping of a page
 * never written (the zero page: the engine's write faults), fork (the pinned page stays the
 * parent's, the child has a copy), unmap that would cut a mapping.
 */
export const DMA = program([
  { op: 'alloc', task: 't0', map: 'm', pages: 2 },
  { op: 'pci_unbind', task: 't0', dev: 0 },
  { op: 'pci_bind', task: 't0', dev: 0, driver: 'vfio' },
  { op: 'vfio_group', task: 't0', fd: 'g', dev: 0 },
  { op: 'vfio_container', task: 't0', fd: 'c' },
  { op: 'vfio_set_container', task: 't0', vgroup: 'g', container: 'c' }, // 5
  { op: 'vfio_map_dma', task: 't0', container: 'c', map: 'm', page: 0, iova: 2, pages: 1, write: true }, // 6: no backend
  { op: 'vfio_set_iommu', task: 't0', container: 'c' },
  { op: 'vfio_device', task: 't0', fd: 'd', vgroup: 'g', dev: 0 },
  { op: 'vfio_map_dma', task: 't0', container: 'c', map: 'm', page: 0, iova: 2, pages: 1, write: true }, // 9
  { op: 'vfio_map_dma', task: 't0', container: 'c', map: 'm', page: 1, iova: 1, pages: 2, write: true }, // 10: IOVA page 2 is mapped
  { op: 'vfio_map_dma', task: 't0', container: 'd', map: 'm', page: 1, iova: 5, pages: 1, write: true }, // 11: a device fd: the number is VFIO_DEVICE_PCI_HOT_RESET there
  { op: 'ep_dma', task: 't0', device: 'd', iova: 2 }, // 12: doorbell 0: descriptor 63 completes
  { op: 'touch', task: 't0', map: 'm', page: 0, offset: 0xfe0, access: 'read' }, // 13: its STATUS is BADOP
  { op: 'touch', task: 't0', map: 'm', page: 0, offset: 0x20, access: 'write', value: '0x2' }, // 14: doorbell 2
  { op: 'ep_dma', task: 't0', device: 'd', iova: 2 }, // 15: descriptors 63, 0, 1
  { op: 'touch', task: 't0', map: 'm', page: 0, offset: 0x20, access: 'read' }, // 16: CQ_HEAD 2, doorbell 2
  { op: 'touch', task: 't0', map: 'm', page: 0, offset: 0x820, access: 'read' }, // 17: descriptor 1's STATUS
  { op: 'ep_dma', task: 't0', device: 'd', iova: 3 }, // 18: nothing mapped there: a fault
  { op: 'vfio_map_dma', task: 't0', container: 'c', map: 'm', page: 1, iova: 4, pages: 1, write: false }, // 19: read-only, never written: the zero page
  { op: 'ep_dma', task: 't0', device: 'd', iova: 4 }, // 20: reads doorbell 0, its STATUS write faults
  { op: 'touch', task: 't0', map: 'm', page: 0, offset: 0xfe0, access: 'write', value: '0x0' },
  { op: 'fork', task: 't0', child: 't1' }, // 22: the pinned page stays t0's, t1 gets a copy
  { op: 'touch', task: 't1', map: 'm', page: 0, offset: 0x20, access: 'write', value: '0x0' }, // 23: t1's doorbell 0
  { op: 'ep_dma', task: 't0', device: 'd', iova: 2 }, // 24: t0's doorbell 2: three descriptors again
  { op: 'touch', task: 't0', map: 'm', page: 0, offset: 0xfe0, access: 'read' }, // 25: written in t0's page
  { op: 'touch', task: 't1', map: 'm', page: 0, offset: 0xfe0, access: 'read' }, // 26: not in t1's copy
  { op: 'vfio_unmap_dma', task: 't0', container: 'c', iova: 2, pages: 2 }, // 27: one page was mapped there
  { op: 'ep_dma', task: 't0', device: 'd', iova: 2 }, // 28: unmapped: a fault
  { op: 'vfio_map_dma', task: 't0', container: 'c', map: 'm', page: 0, iova: 6, pages: 2, write: true },
  { op: 'vfio_unmap_dma', task: 't0', container: 'c', iova: 7, pages: 1 }, // 30: it would cut the mapping
  { op: 'vfio_unmap_dma', task: 't0', container: 'c', iova: 0, pages: 16 }, // 31: the mappings at 4 and 6..7
  { op: 'ep_dma', task: 't0', device: 'g', iova: 0 }, // 32: a group fd
]);
export const DMA_WANT = [
  'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'EINVAL', 'ok', 'ok', 'ok', 'EEXIST', 'EINVAL', 'ok(done 1)', 'ok(0x300000000)', 'ok', 'ok(done 3)',
  'ok(0x200000002)', 'ok(0x300000000)', 'ok(dma-error 0)', 'ok', 'ok(dma-error 0)', 'ok', 'ok', 'ok', 'ok(done 3)', 'ok(0x300000000)', 'ok(0x0)',
  'ok(1)', 'ok(dma-error 0)', 'ok', 'EINVAL', 'ok(3)', 'ENOTTY',
];
/** The endpoint each faulting ep_dma of DMA is endpoint 0 (steps 18, 20, 28). */
export const DMA_FAULTS = [0];

/** DMA to a mapped IOVA only (no fault): the program the C reproducer runs. */
export const DMA_MAPPED = program(DMA.ops.slice(0, 18) as unknown[]);
export const DMA_MAPPED_WANT = DMA_WANT.slice(0, 18);

/**
 * DMA through iommufd (src:…+iommufd kernels): two IOAS map IOVA page 0 to different memory (a
 * and b); the endpoint's DMA is refused while its cdev is unbound (no access) and while bound
 * but attached to nothing (blocking domain), lands in a once attached to o1's auto HWPT, in b
 * after the attached HWPT is replaced by one on o2, and is refused at an IOVA o2 does not map
 * and after detach.
 */
export const IOMMUFD_DMA_OPS = [
  { op: 'alloc', task: 't0', map: 'a', pages: 1 },
  { op: 'alloc', task: 't0', map: 'b', pages: 1 },
  { op: 'pci_unbind', task: 't0', dev: 0 },
  { op: 'pci_bind', task: 't0', dev: 0, driver: 'vfio' },
  { op: 'iommufd', task: 't0', fd: 'i' },
  { op: 'ioas_alloc', task: 't0', iommufd: 'i', obj: 'o1' }, // 5
  { op: 'ioas_alloc', task: 't0', iommufd: 'i', obj: 'o2' },
  { op: 'ioas_map', task: 't0', iommufd: 'i', ioas: 'o1', map: 'a', page: 0, iova: 0, pages: 1, write: true },
  { op: 'ioas_map', task: 't0', iommufd: 'i', ioas: 'o2', map: 'b', page: 0, iova: 0, pages: 1, write: true },
  { op: 'vfio_cdev', task: 't0', fd: 'd', dev: 0 },
  { op: 'ep_dma', task: 't0', device: 'd', iova: 0 }, // 10: not bound: no access to the device
  { op: 'vfio_bind_iommufd', task: 't0', device: 'd', iommufd: 'i', obj: 'dv' },
  { op: 'ep_dma', task: 't0', device: 'd', iova: 0 }, // 12: bound, attached to nothing: blocked
  { op: 'vfio_attach', task: 't0', device: 'd', pt: 'o1' },
  { op: 'ep_dma', task: 't0', device: 'd', iova: 0 }, // 14: o1: lands in a
  { op: 'touch', task: 't0', map: 'a', page: 0, offset: 0xfe0, access: 'read' },
  { op: 'touch', task: 't0', map: 'b', page: 0, offset: 0xfe0, access: 'read' },
  { op: 'hwpt_alloc', task: 't0', iommufd: 'i', obj: 'h2', devobj: 'dv', pt: 'o2' },
  { op: 'vfio_attach', task: 't0', device: 'd', pt: 'h2' }, // 18: replace
  { op: 'ep_dma', task: 't0', device: 'd', iova: 0 }, // 19: o2: lands in b
  { op: 'touch', task: 't0', map: 'b', page: 0, offset: 0xfe0, access: 'read' },
  { op: 'ep_dma', task: 't0', device: 'd', iova: 1 }, // 21: o2 does not map it
  { op: 'vfio_detach', task: 't0', device: 'd' },
  { op: 'ep_dma', task: 't0', device: 'd', iova: 0 }, // 23: detached: blocked
];
/** What the DMA ops and the reads of IOMMUFD_DMA_OPS give (index: outcome). */
export const IOMMUFD_DMA_WANT: Record<number, string> = {
  10: 'EINVAL',
  12: 'ok(dma-error 0)',
  14: 'ok(done 1)',
  15: 'ok(0x300000000)',
  16: 'ok(0x0)',
  19: 'ok(done 1)',
  20: 'ok(0x300000000)',
  21: 'ok(dma-error 0)',
  23: 'ok(dma-error 0)',
};
