/**
 * Ops of DMA ownership through vfio's group path: binding an endpoint to a driver (the test
 * driver, which uses the DMA API, or vfio-pci), a vfio group, a container, the group in the
 * container, its IOMMU backend, a device fd, the group's status. They run on the PCI endpoints
 * (device.sva) of a machine with the IOMMU groups the program names (device.groups). Their
 * model is harness/model/vfio.ts, its rules docs/ownership-semantics.md. Opcodes from 32.
 */
import { LIMITS } from '../program/limits.js';
import { defineOp, handle, int, oneOf } from './describe.js';

const dev = () => int(0, LIMITS.maxDevices - 1, { doc: 'endpoint index', default: 0, device: true, simpler: [0] });

export const pciBind = defineOp({
  op: 'pci_bind',
  opcode: 32,
  family: 'vfio',
  doc: 'bind endpoint `dev` to a driver: its `driver_override`, then the driver\'s `bind` file',
  fields: {
    dev: dev(),
    driver: oneOf(
      { test: { wire: 0, c: 'SVT_DRIVER_NAME' }, vfio: { wire: 1, c: 'VFIO_PCI_DRIVER' } },
      { doc: 'the test driver (svadiff_test: DMA API) or vfio-pci (driver_managed_dma)' },
    ),
  },
  result: 'none',
  resultDoc: '0 or −1 from writing `driver_override`, then the bind file',
  c: (v) => ({ body: [`ret = pci_bind(${v.v('dev')}, ${v.v('driver')});`, 'e = errno;'] }),
  call: (op) => `bind endpoint ${op.dev} to ${op.driver === 'test' ? 'svadiff_test' : 'vfio-pci'}`,
  comment: (op) =>
    op.driver === 'test'
      ? `bind endpoint ${op.dev} to the test driver: pci_dma_configure() -> iommu_device_use_default_domain() (EBUSY in a user-owned group)`
      : `bind endpoint ${op.dev} to vfio-pci (driver_managed_dma: no DMA API owner); its group gets a vfio group`,
  describe: (op) => `bind endpoint ${op.dev} to ${op.driver === 'test' ? 'svadiff_test' : 'vfio-pci'} (driver_override, then bind)`,
  title: (op) => `pci_bind ${op.driver}`,
  sheet: 'Binding drivers (sysfs)',
  weight: 0, // drawn only in vfio programs (generator/vfio.ts VFIO_WEIGHTS)
});

export const pciUnbind = defineOp({
  op: 'pci_unbind',
  opcode: 33,
  family: 'vfio',
  doc: 'unbind endpoint `dev` from its driver (`driver/unbind`)',
  fields: { dev: dev() },
  result: 'none',
  resultDoc: '0 or −1 from writing `/sys/bus/pci/devices/<addr>/driver/unbind`',
  c: (v) => ({ body: [`ret = pci_unbind(${v.v('dev')});`, 'e = errno;'] }),
  call: (op) => `unbind endpoint ${op.dev}`,
  comment: (op) => `unbind endpoint ${op.dev} from its driver (a DMA API driver drops its count of the group's owner)`,
  describe: (op) => `unbind endpoint ${op.dev} from its driver`,
  sheet: 'Binding drivers (sysfs)',
  weight: 0, // drawn only in vfio programs (generator/vfio.ts VFIO_WEIGHTS)
});

export const vfioGroup = defineOp({
  op: 'vfio_group',
  opcode: 34,
  family: 'vfio',
  doc: "open the vfio group of endpoint `dev`'s IOMMU group, `/dev/vfio/<n>`",
  fields: { fd: handle('fd', 'create', { doc: 'name of the new descriptor' }), dev: dev() },
  result: 'none',
  resultDoc: "open's return",
  c: (v) => ({ body: [`ret = ${v.fd('fd')} = vfio_group_open(${v.v('dev')});`, 'e = errno;'] }),
  call: (op) => `${op.fd} = open(/dev/vfio/<group of endpoint ${op.dev}>)`,
  comment: (op) => `open the vfio group of endpoint ${op.dev}: vfio_group_fops_open() (one open file per group)`,
  describe: (op) => `open the vfio group of endpoint ${op.dev} -> ${op.fd}`,
  sheet: 'The vfio group path',
  weight: 0, // drawn only in vfio programs (generator/vfio.ts VFIO_WEIGHTS)
});

export const vfioContainer = defineOp({
  op: 'vfio_container',
  opcode: 35,
  family: 'vfio',
  doc: 'open `/dev/vfio/vfio`: a new container',
  fields: { fd: handle('fd', 'create', { doc: 'name of the new descriptor' }) },
  result: 'none',
  resultDoc: "open's return",
  c: (v) => ({ body: [`ret = ${v.fd('fd')} = open(VFIO_DIR "/vfio", O_RDWR | O_CLOEXEC);`, 'e = errno;'] }),
  call: (op) => `${op.fd} = open(/dev/vfio/vfio)`,
  comment: () => 'a new, empty vfio container',
  describe: (op) => `open /dev/vfio/vfio -> ${op.fd}`,
  sheet: 'The vfio group path',
  weight: 0, // drawn only in vfio programs (generator/vfio.ts VFIO_WEIGHTS)
});

export const vfioSetContainer = defineOp({
  op: 'vfio_set_container',
  opcode: 36,
  family: 'vfio',
  doc: 'VFIO_GROUP_SET_CONTAINER: put the group in the container (claims the DMA ownership)',
  fields: { vgroup: handle('fd', 'use', { doc: 'the vfio group' }), container: handle('fd', 'use', { doc: 'the container' }) },
  result: 'none',
  resultDoc: "ioctl's return",
  c: (v) => ({ body: [`ret = vfio_set_container(${v.fd('vgroup')}, ${v.fd('container')});`, 'e = errno;'] }),
  call: (op) => `ioctl(${op.vgroup}, VFIO_GROUP_SET_CONTAINER, ${op.container})`,
  comment: (op) => `put group ${op.vgroup} in container ${op.container}: iommu_group_claim_dma_owner() (EPERM while a kernel driver uses the group)`,
  describe: (op) => `VFIO_GROUP_SET_CONTAINER ${op.vgroup} -> ${op.container}`,
  sheet: 'The vfio group path',
  weight: 0, // drawn only in vfio programs (generator/vfio.ts VFIO_WEIGHTS)
});

export const vfioUnsetContainer = defineOp({
  op: 'vfio_unset_container',
  opcode: 37,
  family: 'vfio',
  doc: 'VFIO_GROUP_UNSET_CONTAINER',
  fields: { vgroup: handle('fd', 'use', { doc: 'the vfio group' }) },
  result: 'none',
  resultDoc: "ioctl's return",
  c: (v) => ({ body: [`ret = vfio_unset_container(${v.fd('vgroup')});`, 'e = errno;'] }),
  call: (op) => `ioctl(${op.vgroup}, VFIO_GROUP_UNSET_CONTAINER)`,
  comment: (op) => `take group ${op.vgroup} out of its container: the DMA ownership is released (EBUSY while device fds are open)`,
  describe: (op) => `VFIO_GROUP_UNSET_CONTAINER ${op.vgroup}`,
  sheet: 'The vfio group path',
  weight: 0, // drawn only in vfio programs (generator/vfio.ts VFIO_WEIGHTS)
});

export const vfioSetIommu = defineOp({
  op: 'vfio_set_iommu',
  opcode: 38,
  family: 'vfio',
  doc: 'VFIO_SET_IOMMU VFIO_TYPE1v2_IOMMU on a container',
  fields: { container: handle('fd', 'use', { doc: 'the container' }) },
  result: 'none',
  resultDoc: "ioctl's return",
  c: (v) => ({ body: [`ret = vfio_set_iommu(${v.fd('container')});`, 'e = errno;'] }),
  call: (op) => `ioctl(${op.container}, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)`,
  comment: (op) => `give container ${op.container} its type1 backend (EINVAL without a group or with one already)`,
  describe: (op) => `VFIO_SET_IOMMU type1v2 on ${op.container}`,
  sheet: 'The vfio group path',
  weight: 0, // drawn only in vfio programs (generator/vfio.ts VFIO_WEIGHTS)
});

export const vfioDevice = defineOp({
  op: 'vfio_device',
  opcode: 39,
  family: 'vfio',
  doc: 'VFIO_GROUP_GET_DEVICE_FD of endpoint `dev`: a device fd',
  fields: { fd: handle('fd', 'create', { doc: 'name of the new descriptor' }), vgroup: handle('fd', 'use', { doc: 'the vfio group' }), dev: dev() },
  result: 'none',
  resultDoc: "ioctl's return (the new descriptor)",
  c: (v) => ({ body: [`ret = ${v.fd('fd')} = vfio_get_device(${v.fd('vgroup')}, ${v.v('dev')});`, 'e = errno;'] }),
  call: (op) => `${op.fd} = ioctl(${op.vgroup}, VFIO_GROUP_GET_DEVICE_FD, <endpoint ${op.dev}>)`,
  comment: (op) => `a device fd of endpoint ${op.dev} from group ${op.vgroup}: it holds the group file and a container user`,
  describe: (op) => `VFIO_GROUP_GET_DEVICE_FD endpoint ${op.dev} from ${op.vgroup} -> ${op.fd}`,
  sheet: 'The vfio group path',
  weight: 0, // drawn only in vfio programs (generator/vfio.ts VFIO_WEIGHTS)
});

export const vfioStatus = defineOp({
  op: 'vfio_status',
  opcode: 40,
  family: 'vfio',
  doc: 'VFIO_GROUP_GET_STATUS',
  fields: { vgroup: handle('fd', 'use', { doc: 'the vfio group' }) },
  result: 'data',
  resultDoc: "ioctl's return; `data`: the flags `0x…` (0x1 VIABLE, 0x2 CONTAINER_SET)",
  c: (v) => ({ body: [`ret = vfio_group_status(r, ${v.fd('vgroup')});`, 'e = errno;'] }),
  call: (op) => `ioctl(${op.vgroup}, VFIO_GROUP_GET_STATUS)`,
  comment: (op) => `the status of group ${op.vgroup}: VIABLE while no kernel driver owns its DMA, CONTAINER_SET`,
  describe: (op) => `VFIO_GROUP_GET_STATUS ${op.vgroup}`,
  sheet: 'The vfio group path',
  weight: 0, // drawn only in vfio programs (generator/vfio.ts VFIO_WEIGHTS)
});
