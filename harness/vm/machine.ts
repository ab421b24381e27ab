/**
 * Machine profiles: everything that differs between emulated platforms (architecture, IOMMU,
 * QEMU binary and its options, console devices) in one small table. A new platform (arm64 with
 * SMMUv3, an SVA-capable endpoint built from QEMU sources) is a new entry here, not new `if`s.
 */
import type { Arch } from '../../kernels/types.js';

export interface MachineProfile {
  /** name used on the command line (--machine) */
  name: string;
  arch: Arch;
  /** QEMU program and the Debian package that has it */
  qemuBinary: string;
  qemuPackage: string;
  /** the guest's console and agent channel devices (console=…) */
  consoleTty: string;
  agentTty: string;
  /** IOMMU description for humans */
  iommu: string;
  /** QEMU options of the machine itself (without kernel, accel, memory, chardevs) */
  machineArgs(accel: Accel): string[];
  /** kernel command line entries the platform needs */
  cmdline: string[];
  /** CPU model: 'host' with KVM, an emulated one with TCG */
  cpu(accel: Accel): string;
  /** what reports call the kernel image in QEMU's command line, instead of its path here */
  kernelFile: string;
}

export type Accel = 'kvm' | 'tcg';

/**
 * x86_64 q35 with an emulated Intel VT-d in scalable mode. The options are those measured to
 * boot Debian 6.1/6.12/7.2 under TCG with QEMU 7.2 (shared/notes/platform.md): la57 off because
 * the Debian kernels' 5-level paging under TCG is slow and unneeded; intremap for x2apic-less
 * guests; device-iotlb so that ATS-capable endpoints get device TLB invalidations.
 */
export const X86_64_VTD: MachineProfile = {
  name: 'x86_64-vtd',
  arch: 'x86_64',
  qemuBinary: 'qemu-system-x86_64',
  qemuPackage: 'qemu-system-x86',
  consoleTty: 'ttyS0',
  agentTty: 'ttyS1',
  iommu: 'Intel VT-d (scalable mode)',
  machineArgs: () => [
    '-M',
    'q35',
    '-device',
    'intel-iommu,intremap=on,x-scalable-mode=on,device-iotlb=on',
  ],
  // iommu=nopt: DMA through the IOMMU, not passthrough; sm_on: scalable mode as SVA needs.
  // no_timer_check: under TCG on a loaded host the IO-APIC timer check can time out and panic
  // ("timer doesn't work through Interrupt-remapped IO-APIC"); the emulated timer is fine.
  cmdline: ['intel_iommu=on,sm_on', 'iommu=nopt', 'no_timer_check'],
  cpu: (accel) => (accel === 'kvm' ? 'host' : 'max,la57=off'),
  kernelFile: 'bzImage',
};

export const MACHINES: Record<string, MachineProfile> = {
  [X86_64_VTD.name]: X86_64_VTD,
};

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
