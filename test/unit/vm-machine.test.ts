/**
 * Machine profiles: which machine a program needs, and the SVA machine's topology (each
 * endpoint behind its own root port, at the address the agent and the module assume).
 */
import { describe, expect, it } from 'vitest';
import { SVT_PCI_ADDR_FMT } from '../../harness/device/abi.js';
import { missingPackagesMessage } from '../../harness/util/host.js';
import { buildQemuArgs } from '../../harness/vm/qemu.js';
import { MACHINES, SVA_ENDPOINTS, X86_64_VTD, X86_64_VTD_SEABIOS, X86_64_VTD_SVA, hostMachine, machineForDevice, svaEndpointAddress } from '../../harness/vm/machine.js';

describe('machine profiles', () => {
  it('device.sva=true programs run on the SVA machine, the others on the plain one', () => {
    expect(machineForDevice('x86_64', { sva: false }).name).toBe(X86_64_VTD.name);
    expect(machineForDevice('x86_64', { sva: true }).name).toBe(X86_64_VTD_SVA.name);
    expect(X86_64_VTD_SVA.qemu).toEqual({ kind: 'svadiff-build' });
    expect(() => hostMachine(X86_64_VTD_SVA)).toThrow(/ensureMachine/);
  });

  it('the SVA machine: VT-d with svm, one root port and one endpoint per device index', () => {
    const args = X86_64_VTD_SVA.machineArgs('tcg');
    expect(args.slice(0, 4)).toEqual(['-M', 'q35', '-device', 'intel-iommu,intremap=on,x-scalable-mode=on,x-flts=on,x-pasid-mode=on,device-iotlb=on,svm=on']);
    const devices = args.filter((_, i) => args[i - 1] === '-device').slice(1);
    expect(devices).toHaveLength(2 * SVA_ENDPOINTS);
    for (let n = 0; n < SVA_ENDPOINTS; n++) {
      expect(devices[2 * n]).toBe(`pcie-root-port,id=svarp${n},chassis=${n + 1},slot=${n + 1},bus=pcie.0,addr=0x${(0x10 + n).toString(16)}`);
      expect(devices[2 * n + 1]).toBe(`svadiff-sva,bus=svarp${n},index=${n}`);
    }
    expect(X86_64_VTD_SVA.cpu('tcg')).toBe('max,la57=off');
  });

  it('endpoint N is at bus N+1, as svt_abi.h SVT_PCI_ADDR_FMT says', () => {
    expect(svaEndpointAddress(0)).toBe('0000:01:00.0');
    expect(svaEndpointAddress(7)).toBe('0000:08:00.0');
    expect(SVT_PCI_ADDR_FMT.replace('%02x', '03')).toBe(svaEndpointAddress(2));
  });

  it("QEMU is pointed at the host's firmware when the machine says so", () => {
    const m = { ...X86_64_VTD_SVA, qemuBinary: '/cache/qemu/bin/qemu-system-x86_64', firmwareDirs: ['/usr/share/seabios', '/usr/share/qemu'] };
    const args = buildQemuArgs({ machine: m, accel: 'tcg', kernelImage: 'K', initrd: 'I', cmdline: [], memoryMb: 1024, workDir: '/tmp/w' }, 'a.sock', 'q.sock');
    expect(args.slice(0, 6)).toEqual(['-L', '/usr/share/seabios', '-L', '/usr/share/qemu', '-M', 'q35']);
    const plain = buildQemuArgs({ machine: hostMachine(X86_64_VTD), accel: 'tcg', kernelImage: 'K', initrd: 'I', cmdline: [], memoryMb: 1024, workDir: '/tmp/w' }, 'a.sock', 'q.sock');
    expect(plain.slice(0, 2)).toEqual(['-M', 'q35']);
  });

  it('the plain x86 machine runs qboot; the SeaBIOS variant, the bench\'s before, differs only in that', () => {
    const args = (p: typeof X86_64_VTD) => buildQemuArgs({ machine: hostMachine(p), accel: 'tcg', kernelImage: 'K', initrd: 'I', cmdline: [], memoryMb: 1024, workDir: '/tmp/w' }, 'a.sock', 'q.sock');
    const qboot = args(X86_64_VTD);
    const seabios = args(X86_64_VTD_SEABIOS);
    expect(qboot[qboot.indexOf('-bios') + 1]).toBe('qboot.rom');
    expect(seabios).not.toContain('-bios');
    expect(qboot.filter((_, i) => qboot[i] !== '-bios' && qboot[i - 1] !== '-bios')).toEqual(seabios);
    expect(Object.values(MACHINES)).not.toContain(X86_64_VTD_SEABIOS);
  });

  it('a non-root user is told the exact apt-get line for missing packages', () => {
    expect(missingPackagesMessage([{ pkg: 'libglib2.0-dev', why: 'building QEMU' }, { pkg: 'seabios', why: 'the BIOS' }])).toBe(
      'missing on this host: libglib2.0-dev (building QEMU), seabios (the BIOS); install with: sudo apt-get install -y --no-install-recommends libglib2.0-dev seabios',
    );
  });
});
