/**
 * Machine profiles: everything that differs between emulated platforms (architecture, IOMMU,
 * QEMU binary and its options, console devices) in one small table. A new platform (arm64 with
 * SMMUv3, an SVA-capable endpoint built from QEMU sources) is a new entry here, not new `if`s.
 */
import type { Arch } from '../../kernels/types.js';
import { UserError } from '../util/errors.js';

/** Where a profile's QEMU comes from. */
export type QemuSource =
  /** a Debian package of the host */
  | { kind: 'host'; binary: string; package: string }
  /** svadiff's own build: Debian's QEMU source with qemu/patches (qemu/build.ts) */
  | { kind: 'svadiff-build' };

export interface MachineProfile {
  /** name used on the command line (--machine) */
  name: string;
  arch: Arch;
  qemu: QemuSource;
  /** the guest's console and agent channel devices (console=…) */
  consoleTty: string;
  agentTty: string;
  /** IOMMU description for humans */
  iommu: string;
  /** QEMU options of the machine itself (without firmware, kernel, accel, memory, chardevs) */
  machineArgs(accel: Accel): string[];
  /** the firmware image QEMU runs (-bios, found in QEMU's data directories); none: the machine's default */
  firmware?: string;
  /** kernel command line entries the platform needs */
  cmdline: string[];
  /** CPU model: 'host' with KVM, an emulated one with TCG */
  cpu(accel: Accel): string;
  /** what reports call the kernel image in QEMU's command line, instead of its path here */
  kernelFile: string;
  /** test devices the machine has for the PCI backend (sva=1), 0 for none */
  svaEndpoints: number;
  /**
   * The IOMMU groups of its endpoints as the machine is built (endpoint indexes): what a
   * program's device.groups is matched against to choose the machine. The guest's real layout
   * is read from sysfs before a program that names groups runs (harness/vm/groups.ts).
   */
  endpointGroups: readonly (readonly number[])[];
  /** the PCI address of each endpoint by index (in PCI address order: guest/runtime ep_addr()) */
  endpointAddresses: readonly string[];
  /**
   * QEMU options that give the guest its agent channel on the chardev `id` (the guest sees it
   * as /dev/<agentTty>). Default: a second serial port.
   */
  agentChannelArgs?(id: string): string[];
  /** IOMMU units by their name in /sys/class/iommu, when it is fixed (svadiff boot lists them; VT-d's dmarN are probed) */
  iommuUnits?: readonly string[];
}

/** A profile whose QEMU is there: the host package installed or svadiff's build done. */
export interface Machine extends MachineProfile {
  qemuBinary: string;
  /** firmware directories QEMU is pointed at with -L (none: its own defaults) */
  firmwareDirs: readonly string[];
}

export type Accel = 'kvm' | 'tcg';

// iommu=nopt: DMA through the IOMMU, not passthrough; sm_on: scalable mode as SVA needs.
// no_timer_check: under TCG on a loaded host the IO-APIC timer check can time out and panic
// ("timer doesn't work through Interrupt-remapped IO-APIC"); the emulated timer is fine.
const VTD_CMDLINE = ['intel_iommu=on,sm_on', 'iommu=nopt', 'no_timer_check'];

/**
 * x86_64 q35 with an emulated Intel VT-d in scalable mode. The options are those measured to
 * boot Debian 6.1/6.12/7.2 under TCG with QEMU 7.2 (shared/notes/platform.md): la57 off because
 * the Debian kernels' 5-level paging under TCG is slow and unneeded; intremap for x2apic-less
 * guests; device-iotlb so that ATS-capable endpoints get device TLB invalidations.
 */
export const X86_64_VTD: MachineProfile = {
  name: 'x86_64-vtd',
  arch: 'x86_64',
  qemu: { kind: 'host', binary: 'qemu-system-x86_64', package: 'qemu-system-x86' },
  consoleTty: 'ttyS0',
  agentTty: 'ttyS1',
  iommu: 'Intel VT-d (scalable mode)',
  machineArgs: () => ['-M', 'q35', '-device', 'intel-iommu,intremap=on,x-scalable-mode=on,device-iotlb=on'],
  // qboot (QEMU's minimal firmware, qboot.rom of qemu-system-data, which qemu-system-x86
  // depends on) instead of SeaBIOS: a -kernel boot needs no BIOS services; the ACPI tables,
  // DMAR included, are the same. Measured to the kernel's time zero it boots no faster than
  // SeaBIOS (README "Boot time"; npm run bench --only boots compares it with X86_64_VTD_SEABIOS).
  firmware: 'qboot.rom',
  cmdline: VTD_CMDLINE,
  cpu: (accel) => (accel === 'kvm' ? 'host' : 'max,la57=off'),
  kernelFile: 'bzImage',
  svaEndpoints: 0,
  endpointGroups: [],
  endpointAddresses: [],
};

/**
 * The plain x86 machine with q35's default firmware, SeaBIOS (what it ran before qboot): only
 * the bench's boot-time comparison uses it, so it is not in MACHINES.
 */
export const X86_64_VTD_SEABIOS: MachineProfile = { ...X86_64_VTD, name: 'x86_64-vtd-seabios', firmware: undefined };

/** QEMU options of a machine and its firmware. */
export function machineQemuArgs(m: MachineProfile, accel: Accel): string[] {
  return [...m.machineArgs(accel), ...(m.firmware !== undefined ? ['-bios', m.firmware] : [])];
}

/** Endpoints of the SVA machine: as many as a program may ask for (the module's `devices` limit). */
export const SVA_ENDPOINTS = 8;

/**
 * The PCI address of SVA endpoint N: root port N sits at 00:(0x10+N).0 and the firmware gives
 * its secondary bus the number N+1 (buses are numbered in slot order), so endpoint N is
 * 0000:(N+1):00.0. The agent unbinds and binds it there (guest/agent/agent.c).
 */
export function svaEndpointAddress(index: number): string {
  return `0000:${(index + 1).toString(16).padStart(2, '0')}:00.0`;
}

/**
 * The SVA machine: the same q35 and VT-d, with the intel-iommu options an SVA bind needs
 * (first-level translation, PASIDs, device IOTLB, and svm=on: page requests and SMPWC, a
 * svadiff patch) and SVA_ENDPOINTS svadiff-sva endpoints, each behind its own root port (so
 * each in its own IOMMU group: extended capabilities like ATS, PASID and PRI exist only on
 * PCIe). la57 stays off: with 5-level paging Linux refuses SVA unless the IOMMU does 5-level
 * first-level tables, which the emulated one does not.
 */
export const X86_64_VTD_SVA: MachineProfile = {
  name: 'x86_64-vtd-sva',
  arch: 'x86_64',
  qemu: { kind: 'svadiff-build' },
  consoleTty: 'ttyS0',
  agentTty: 'ttyS1',
  iommu: 'Intel VT-d (scalable mode, SVA) with svadiff-sva endpoints',
  machineArgs: () => {
    const args = ['-M', 'q35', '-device', 'intel-iommu,intremap=on,x-scalable-mode=on,x-flts=on,x-pasid-mode=on,device-iotlb=on,svm=on'];
    for (let i = 0; i < SVA_ENDPOINTS; i++) {
      const slot = (0x10 + i).toString(16);
      args.push('-device', `pcie-root-port,id=svarp${i},chassis=${i + 1},slot=${i + 1},bus=pcie.0,addr=0x${slot}`);
      args.push('-device', `svadiff-sva,bus=svarp${i},index=${i}`);
    }
    return args;
  },
  cmdline: VTD_CMDLINE,
  cpu: (accel) => (accel === 'kvm' ? 'host,la57=off' : 'max,la57=off'),
  kernelFile: 'bzImage',
  svaEndpoints: SVA_ENDPOINTS,
  endpointGroups: Array.from({ length: SVA_ENDPOINTS }, (_, i) => [i]),
  endpointAddresses: Array.from({ length: SVA_ENDPOINTS }, (_, i) => svaEndpointAddress(i)),
};

/**
 * The IOMMU-group machine: the SVA machine's QEMU and VT-d (second-level translation, see
 * machineArgs) with three svadiff-sva endpoints in two IOMMU groups. Endpoint 0 sits alone behind root port 0 (0000:01:00.0, a
 * group of its own: QEMU's root ports have ACS). Endpoints 1 and 2 are functions 0 and 1 of one
 * multifunction device behind root port 1 (0000:02:00.0 and 0000:02:00.1): the endpoint has no
 * ACS capability, so Linux puts both functions in one group (drivers/iommu/iommu.c
 * get_pci_function_alias_group(): a multifunction device without ACS isolation). The DMA
 * ownership rules of a group with several devices (docs/ownership-semantics.md) need this.
 * A conventional PCI bridge would be the other way to share a group; svadiff's QEMU build has
 * no pci-bridge device.
 */
export const X86_64_VTD_GROUPS: MachineProfile = {
  ...X86_64_VTD_SVA,
  name: 'x86_64-vtd-groups',
  iommu: 'Intel VT-d (scalable mode, second-level translation) with svadiff-sva endpoints in IOMMU groups of one and of two',
  // second-level translation (no x-flts): the domains iommufd gives user space are second-level
  // only (drivers/iommu/intel/iommu.c intel_iommu_domain_alloc_user(): "Do not use first stage
  // for user domain translation"), and QEMU's VT-d offers one stage (with x-flts=on every
  // attach of such a domain fails: pasid.c intel_pasid_setup_second_level(), "No second level
  // translation support", -EINVAL; measured on src:debian:6.12.118+iommufd). The group path's
  // type1 domains work on either; no SVA is done on this machine.
  machineArgs: () => [
    '-M',
    'q35',
    '-device',
    'intel-iommu,intremap=on,x-scalable-mode=on,device-iotlb=on',
    '-device',
    'pcie-root-port,id=svarp0,chassis=1,slot=1,bus=pcie.0,addr=0x10',
    '-device',
    'svadiff-sva,bus=svarp0,index=0',
    '-device',
    'pcie-root-port,id=svarp1,chassis=2,slot=2,bus=pcie.0,addr=0x11',
    '-device',
    'svadiff-sva,bus=svarp1,addr=0x0.0,multifunction=on,index=1',
    '-device',
    'svadiff-sva,bus=svarp1,addr=0x0.1,index=2',
  ],
  svaEndpoints: 3,
  endpointGroups: [[0], [1, 2]],
  endpointAddresses: ['0000:01:00.0', '0000:02:00.0', '0000:02:00.1'],
};

/**
 * arm64 `virt` with an emulated SMMUv3 (`iommu=smmuv3`: every device of the PCIe host bridge
 * sits behind it), the line measured to boot Debian's arm64 6.1, 6.12 and 7.2 under TCG with
 * bookworm's QEMU 7.2 (shared/notes/platform.md). `virt` of QEMU 7.2 has one non-secure PL011
 * (ttyAMA0, the console; a second -serial only appears from QEMU 10.0), so the agent talks over
 * a virtio console (hvc0; VIRTIO_PCI and VIRTIO_CONSOLE are =y in Debian's arm64 6.1, 6.12 and
 * 7.2 configs). It stays a legacy virtio device (no iommu_platform): its DMA bypasses the SMMU
 * the way the guest expects of a device without VIRTIO_F_ACCESS_PLATFORM. The emulated SMMUv3
 * has no substream IDs (no PASIDs), and Debian's arm64 kernels have no IOMMU_SVA: no SVA machine.
 */
export const ARM64_SMMUV3: MachineProfile = {
  name: 'arm64-smmuv3',
  arch: 'arm64',
  qemu: { kind: 'host', binary: 'qemu-system-aarch64', package: 'qemu-system-arm' },
  consoleTty: 'ttyAMA0',
  agentTty: 'hvc0',
  iommu: 'Arm SMMUv3',
  machineArgs: () => ['-M', 'virt,iommu=smmuv3'],
  cmdline: [],
  // pauth-impdef: QEMU's own pointer-authentication hash instead of QARMA, which makes TCG of
  // a kernel built with pointer authentication (Debian's arm64 is) several times slower
  cpu: (accel) => (accel === 'kvm' ? 'host' : 'max,pauth-impdef=on'),
  kernelFile: 'Image',
  svaEndpoints: 0,
  endpointGroups: [],
  endpointAddresses: [],
  agentChannelArgs: (id) => ['-device', 'virtio-serial-pci,id=agentser', '-device', `virtconsole,bus=agentser.0,chardev=${id}`],
  // arm_smmu_device_probe() names it "smmu3.%pa" of its base, 0x09050000 on virt (VIRT_SMMU)
  iommuUnits: ['smmu3.0x0000000009050000'],
};

export const MACHINES: Record<string, MachineProfile> = {
  [X86_64_VTD.name]: X86_64_VTD,
  [X86_64_VTD_SVA.name]: X86_64_VTD_SVA,
  [X86_64_VTD_GROUPS.name]: X86_64_VTD_GROUPS,
  [ARM64_SMMUV3.name]: ARM64_SMMUV3,
};

/** The architecture svadiff runs on, in the kernels' names (KVM runs guests of this one only). */
export function hostArch(): Arch | undefined {
  return process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'arm64' : undefined;
}

export function machineFor(arch: Arch, name?: string): MachineProfile {
  if (name !== undefined) {
    const m = MACHINES[name];
    if (!m) throw new Error(`unknown machine ${name}; available: ${Object.keys(MACHINES).join(', ')}`);
    return m;
  }
  const m = Object.values(MACHINES).find((x) => x.arch === arch);
  if (!m) throw new Error(`no machine profile for ${arch} yet`);
  return m;
}

/**
 * The machine a program needs: device.sva=true programs run on the PCI backend, which only
 * the SVA machine has; the others on the plain machine of the architecture.
 */
export function machineForDevice(arch: Arch, device: { sva: boolean; groups?: readonly (readonly number[])[] }): MachineProfile {
  if (!device.sva) return machineFor(arch);
  const want = device.groups;
  const m = Object.values(MACHINES).find((x) => x.arch === arch && x.svaEndpoints > 0 && (want === undefined || hasGroups(x.endpointGroups, want)));
  if (!m) {
    if (want === undefined) throw new Error(`no SVA machine profile for ${arch} yet`);
    throw new UserError(`no ${arch} machine has the IOMMU groups ${groupsText(want)}; machines have ${Object.values(MACHINES).filter((x) => x.svaEndpoints > 0).map((x) => `${x.name} ${groupsText(x.endpointGroups)}`).join(', ')}`);
  }
  return m;
}

/** Does a layout have every wanted group exactly (other groups may exist)? */
export function hasGroups(have: readonly (readonly number[])[], want: readonly (readonly number[])[]): boolean {
  const key = (g: readonly number[]) => [...g].sort((a, b) => a - b).join(',');
  const keys = new Set(have.map(key));
  return want.every((g) => keys.has(key(g)));
}

/** A layout as messages write it: "{0} {1,2}". */
export function groupsText(groups: readonly (readonly number[])[]): string {
  return groups.map((g) => `{${g.join(',')}}`).join(' ');
}

/** A host-package machine with its binary on PATH (what ensureMachine makes of it). */
export function hostMachine(p: MachineProfile): Machine {
  if (p.qemu.kind !== 'host') throw new Error(`machine ${p.name} runs svadiff's QEMU build; use ensureMachine`);
  return { ...p, qemuBinary: p.qemu.binary, firmwareDirs: [] };
}
