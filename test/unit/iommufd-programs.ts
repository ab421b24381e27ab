/**
 * Programs of the iommufd ops with the outcomes docs/ownership-semantics.md ("iommufd") says
 * they have, op by op: the model must predict exactly these (test/unit/model-iommufd.test.ts)
 * and the self-built src:debian:6.12.118+iommufd must give them (test/integration/iommufd.test.ts).
 * Endpoint 0 is alone in its IOMMU group, endpoints 1 and 2 share one (x86_64-vtd-groups).
 * Object ids are per iommufd context, the lowest free from 1 (an automatic HWPT takes one too).
 */
import { profileFor } from '../../harness/model/index.js';
import { program } from './vfio-programs.js';

export { program };

/** The profile of the iommufd kernel (its config: IOMMUFD, VFIO_DEVICE_CDEV, no VFIO_GROUP). */
export const IOMMUFD_PROFILE = profileFor('6.12.118-svadiff-iommufd', { arch: 'x86_64', distro: 'debian', vfioPaths: { group: false, iommufd: true } });

/** One endpoint: bind, IOAS, attach to an IOAS (automatic HWPT), replace onto a HWPT and back to an IOAS, detach, destroy order. */
export const LIFECYCLE = program([
  { op: 'pci_unbind', task: 't0', dev: 0 },
  { op: 'pci_bind', task: 't0', dev: 0, driver: 'vfio' },
  { op: 'vfio_group', task: 't0', fd: 'g', dev: 0 }, // 2: no group path on this kernel
  { op: 'iommufd', task: 't0', fd: 'i' },
  { op: 'vfio_cdev', task: 't0', fd: 'd', dev: 0 },
  { op: 'ioas_alloc', task: 't0', iommufd: 'i', obj: 'ioas' }, // 5: id 1
  { op: 'alloc', task: 't0', map: 'b', pages: 4 },
  { op: 'ioas_map', task: 't0', iommufd: 'i', ioas: 'ioas', map: 'b', page: 0, iova: 0, pages: 2, write: true }, // 7: no domain yet: not pinned
  { op: 'vfio_attach', task: 't0', device: 'd', pt: 'ioas' }, // 8: not bound
  { op: 'vfio_bind_iommufd', task: 't0', device: 'd', iommufd: 'i', obj: 'dev' }, // 9: id 2
  { op: 'vfio_bind_iommufd', task: 't0', device: 'd', iommufd: 'i', obj: 'dev2' }, // 10: bound already
  { op: 'vfio_attach', task: 't0', device: 'd', pt: 'ioas' }, // 11: a new automatic HWPT, id 3
  { op: 'iommufd_destroy', task: 't0', iommufd: 'i', obj: 'ioas' }, // 12: HWPT 3 is on it
  { op: 'iommufd_destroy', task: 't0', iommufd: 'i', obj: 'dev' }, // 13: vfio holds the device object
  { op: 'hwpt_alloc', task: 't0', iommufd: 'i', obj: 'h', devobj: 'dev', pt: 'ioas' }, // 14: id 4
  { op: 'vfio_attach', task: 't0', device: 'd', pt: 'h' }, // 15: replace: the automatic HWPT 3 goes
  { op: 'ioas_alloc', task: 't0', iommufd: 'i', obj: 'ioas2' }, // 16: id 3 again
  { op: 'iommufd_destroy', task: 't0', iommufd: 'i', obj: 'h' }, // 17: attached
  { op: 'vfio_attach', task: 't0', device: 'd', pt: 'ioas2' }, // 18: replace onto an IOAS: a new automatic HWPT, id 5
  { op: 'iommufd_destroy', task: 't0', iommufd: 'i', obj: 'h' }, // 19: free now
  { op: 'iommufd_destroy', task: 't0', iommufd: 'i', obj: 'h' }, // 20: gone
  { op: 'hwpt_alloc', task: 't0', iommufd: 'i', obj: 'h2', devobj: 'dev', pt: 'h' }, // 21: id 4 is no object
  { op: 'vfio_attach', task: 't0', device: 'd', pt: 'ioas2' }, // 22: the group's own automatic HWPT: nothing changes
  { op: 'vfio_detach', task: 't0', device: 'd' }, // 23: HWPT 5 goes with its last device
  { op: 'vfio_detach', task: 't0', device: 'd' }, // 24: not attached: 0
  { op: 'iommufd_destroy', task: 't0', iommufd: 'i', obj: 'ioas2' }, // 25
  { op: 'ioas_unmap', task: 't0', iommufd: 'i', ioas: 'ioas', iova: 1, pages: 1 }, // 26: the area crosses the range
  { op: 'ioas_unmap', task: 't0', iommufd: 'i', ioas: 'ioas', iova: 0, pages: 2 }, // 27
  { op: 'ioas_unmap', task: 't0', iommufd: 'i', ioas: 'ioas', iova: 0, pages: 2 }, // 28: nothing there
  { op: 'hwpt_alloc', task: 't0', iommufd: 'i', obj: 'h3', devobj: 'dev', pt: 'ioas' }, // 29: id 3
  { op: 'iommufd_destroy', task: 't0', iommufd: 'i', obj: 'h3' }, // 30: not attached: free
  { op: 'close', task: 't0', fd: 'd' }, // 31: unbind: the device object goes
  { op: 'iommufd_destroy', task: 't0', iommufd: 'i', obj: 'dev' }, // 32: gone with the cdev
  { op: 'close', task: 't0', fd: 'i' },
  { op: 'pci_unbind', task: 't0', dev: 0 },
  { op: 'pci_bind', task: 't0', dev: 0, driver: 'test' }, // 35: unowned again
]);
export const LIFECYCLE_WANT = [
  'ok', 'ok', 'ENOENT', 'ok', 'ok', 'ok(1)', 'ok', 'ok', 'EINVAL', 'ok(2)', 'EINVAL', 'ok(3)', 'EBUSY', 'EBUSY', 'ok(4)', 'ok(4)', 'ok(3)', 'EBUSY',
  'ok(5)', 'ok', 'ENOENT', 'EINVAL', 'ok(5)', 'ok', 'ok', 'ok', 'ENOENT', 'ok', 'ENOENT', 'ok(3)', 'ok', 'ok', 'ENOENT', 'ok', 'ok', 'ok',
];

/** The group of two endpoints: EPERM while the test driver owns it, one context only, the group moves as one. */
export const SHARED = program([
  { op: 'pci_unbind', task: 't0', dev: 1 },
  { op: 'pci_bind', task: 't0', dev: 1, driver: 'vfio' },
  { op: 'iommufd', task: 't0', fd: 'i' },
  { op: 'vfio_cdev', task: 't0', fd: 'd1', dev: 1 },
  { op: 'vfio_bind_iommufd', task: 't0', device: 'd1', iommufd: 'i', obj: 'x' }, // 4: endpoint 2's test driver owns the group's DMA
  { op: 'pci_unbind', task: 't0', dev: 2 },
  { op: 'vfio_bind_iommufd', task: 't0', device: 'd1', iommufd: 'i', obj: 'e1' }, // 6: id 1
  { op: 'pci_bind', task: 't0', dev: 2, driver: 'test' }, // 7: the group is user owned
  { op: 'pci_bind', task: 't0', dev: 2, driver: 'vfio' },
  { op: 'vfio_cdev', task: 't0', fd: 'd2', dev: 2 },
  { op: 'iommufd', task: 't0', fd: 'j' },
  { op: 'vfio_bind_iommufd', task: 't0', device: 'd2', iommufd: 'j', obj: 'y' }, // 11: the group belongs to i
  { op: 'vfio_bind_iommufd', task: 't0', device: 'd2', iommufd: 'i', obj: 'e2' }, // 12: id 2
  { op: 'ioas_alloc', task: 't0', iommufd: 'i', obj: 'a' }, // 13: id 3
  { op: 'iommufd_destroy', task: 't0', iommufd: 'j', obj: 'a' }, // 14: id 3 is nothing in j
  { op: 'hwpt_alloc', task: 't0', iommufd: 'i', obj: 'h', devobj: 'e1', pt: 'a' }, // 15: id 4
  { op: 'vfio_attach', task: 't0', device: 'd1', pt: 'h' }, // 16
  { op: 'vfio_attach', task: 't0', device: 'd2', pt: 'a' }, // 17: the group is on h: no HWPT of a fits
  { op: 'vfio_attach', task: 't0', device: 'd2', pt: 'h' }, // 18
  { op: 'vfio_attach', task: 't0', device: 'd1', pt: 'a' }, // 19: replace: the whole group moves to a new automatic HWPT, id 5
  { op: 'iommufd_destroy', task: 't0', iommufd: 'i', obj: 'h' }, // 20: no device on it now
  { op: 'vfio_detach', task: 't0', device: 'd1' }, // 21: d2 keeps HWPT 5
  { op: 'iommufd_destroy', task: 't0', iommufd: 'i', obj: 'a' }, // 22: HWPT 5 is on it
  { op: 'close', task: 't0', fd: 'd2' }, // 23: HWPT 5 goes with d2
  { op: 'iommufd_destroy', task: 't0', iommufd: 'i', obj: 'a' }, // 24
  { op: 'close', task: 't0', fd: 'i' }, // 25: d1 (bound) holds the context
  { op: 'close', task: 't0', fd: 'j' },
  { op: 'pci_unbind', task: 't0', dev: 2 },
  { op: 'pci_bind', task: 't0', dev: 2, driver: 'test' }, // 28: endpoint 1 still binds the group
  { op: 'close', task: 't0', fd: 'd1' }, // 29: the context goes: ownership returns
  { op: 'pci_bind', task: 't0', dev: 2, driver: 'test' }, // 30
  { op: 'pci_unbind', task: 't0', dev: 1 },
  { op: 'pci_bind', task: 't0', dev: 1, driver: 'test' },
]);
export const SHARED_WANT = [
  'ok', 'ok', 'ok', 'ok', 'EPERM', 'ok', 'ok(1)', 'EBUSY', 'ok', 'ok', 'ok', 'EPERM', 'ok(2)', 'ok(3)', 'ENOENT', 'ok(4)', 'ok(4)', 'EINVAL',
  'ok(4)', 'ok(5)', 'ok', 'ok', 'EBUSY', 'ok', 'ok', 'ok', 'ok', 'ok', 'EBUSY', 'ok', 'ok', 'ok', 'ok',
];

/** Pinning and close orders: a lazily mapped page that is gone fails the first domain; fork shares everything; exit frees it. */
export const MEMORY = program([
  { op: 'pci_unbind', task: 't0', dev: 0 },
  { op: 'pci_bind', task: 't0', dev: 0, driver: 'vfio' },
  { op: 'iommufd', task: 't0', fd: 'i' },
  { op: 'ioas_alloc', task: 't0', iommufd: 'i', obj: 'a' }, // 3: id 1
  { op: 'alloc', task: 't0', map: 'b', pages: 4 },
  { op: 'ioas_map', task: 't0', iommufd: 'i', ioas: 'a', map: 'b', page: 0, iova: 0, pages: 2, write: true }, // 5: not pinned yet
  { op: 'munmap', task: 't0', map: 'b', page: 0, pages: 1 },
  { op: 'vfio_cdev', task: 't0', fd: 'd', dev: 0 },
  { op: 'vfio_bind_iommufd', task: 't0', device: 'd', iommufd: 'i', obj: 'dv' }, // 8: id 2
  { op: 'hwpt_alloc', task: 't0', iommufd: 'i', obj: 'h', devobj: 'dv', pt: 'a' }, // 9: pinning page 0 fails
  { op: 'vfio_attach', task: 't0', device: 'd', pt: 'a' }, // 10: the same for an automatic HWPT
  { op: 'ioas_unmap', task: 't0', iommufd: 'i', ioas: 'a', iova: 0, pages: 2 }, // 11
  { op: 'ioas_map', task: 't0', iommufd: 'i', ioas: 'a', map: 'b', page: 1, iova: 0, pages: 2, write: true }, // 12
  { op: 'hwpt_alloc', task: 't0', iommufd: 'i', obj: 'h2', devobj: 'dv', pt: 'a' }, // 13: id 3, pinned now
  { op: 'ioas_map', task: 't0', iommufd: 'i', ioas: 'a', map: 'b', page: 0, iova: 4, pages: 1, write: true }, // 14: pinned at once: nothing there
  { op: 'ioas_map', task: 't0', iommufd: 'i', ioas: 'a', map: 'b', page: 3, iova: 1, pages: 1, write: true }, // 15: IOVA page 1 is mapped
  { op: 'ioas_map', task: 't0', iommufd: 'i', ioas: 'a', map: 'b', page: 3, iova: 8, pages: 1, write: false }, // 16
  { op: 'vfio_attach', task: 't0', device: 'd', pt: 'a' }, // 17: a new automatic HWPT (h2 is not one), id 4
  { op: 'hwpt_alloc', task: 't0', iommufd: 'i', obj: 'hn', devobj: 'dv', pt: 'h2' }, // 18: on a HWPT: a nested one, which needs driver data
  { op: 'fork', task: 't0', child: 't1' },
  { op: 'close', task: 't0', fd: 'i' }, // 20: t1 holds i and d
  { op: 'close', task: 't0', fd: 'd' },
  { op: 'pci_bind', task: 't0', dev: 0, driver: 'test' }, // 22: it has vfio-pci
  { op: 'iommufd_destroy', task: 't1', iommufd: 'i', obj: 'h2' }, // 23: the ids are t1's too (fork)
  { op: 'iommufd_destroy', task: 't1', iommufd: 'i', obj: 'a' }, // 24: HWPT 4 is on it
  { op: 'exit', task: 't1' }, // 25: the last files: everything goes
  { op: 'pci_unbind', task: 't0', dev: 0 },
  { op: 'pci_bind', task: 't0', dev: 0, driver: 'test' },
]);
export const MEMORY_WANT = [
  'ok', 'ok', 'ok', 'ok(1)', 'ok', 'ok', 'ok', 'ok', 'ok(2)', 'EFAULT', 'EFAULT', 'ok', 'ok', 'ok(3)', 'EFAULT', 'EEXIST', 'ok', 'ok(4)', 'EOPNOTSUPP', 'ok',
  'ok', 'ok', 'EBUSY', 'ok', 'EBUSY', 'ok', 'ok', 'ok',
];
