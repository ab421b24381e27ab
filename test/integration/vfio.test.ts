/**
 * DMA ownership of IOMMU groups through vfio's group path on Debian's 6.12 (VFIO=m: vfio,
 * vfio_iommu_type1 and vfio-pci from the kernel's own package in the initramfs), on the
 * x86_64-vtd-groups machine: endpoint 0 alone in its IOMMU group, endpoints 1 and 2 (two
 * functions of one device without ACS) sharing one. Every outcome is asserted exactly, from
 * the rules of docs/ownership-semantics.md, and the reference model must agree with all of it;
 * one program also runs as its C reproducer.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchKernel } from '../../kernels/index.js';
import { withVfioModules } from '../../kernels/vfio-modules.js';
import { profileFor } from '../../harness/model/index.js';
import { formatOutcome } from '../../harness/program/outcome.js';
import { executeProgram, type ExecResult } from '../../harness/run/execute.js';
import { compileRepro, guestReproPath, prepareReproImage, runReproOnGuest } from '../../harness/repro/replay.js';
import { reproForProgram } from '../../harness/repro/csource.js';
import { Guest } from '../../harness/vm/guest.js';
import { X86_64_VTD_GROUPS, X86_64_VTD_SVA } from '../../harness/vm/machine.js';
import { DEVICE, DMA, DMA_FAULTS, DMA_MAPPED, DMA_MAPPED_WANT, DMA_WANT, SHARED, SHARED_WANT, SINGLE, SINGLE_WANT, program } from '../unit/vfio-programs.js';
import { readIommuGroups } from '../../harness/vm/groups.js';

const logDir = mkdtempSync(join(tmpdir(), 'svadiff-it-vfio-'));

/** What each op did, as reports write outcomes (ok, ok(0x1), EBUSY, hang). */
const outcomes = (r: ExecResult) => r.check.ops.map((c) => (c.observed ? formatOutcome(c.observed) : '-'));
describe('vfio group path on debian:6.12: DMA ownership of IOMMU groups of one and two endpoints', () => {
  let guest: Guest | undefined;
  let profile: ReturnType<typeof profileFor>;
  let repro = '';
  let dmaRepro = '';
  const g = () => {
    if (!guest) throw new Error('no guest');
    return guest;
  };

  beforeAll(async () => {
    const kernel = await withVfioModules(await fetchKernel('debian:6.12'));
    profile = profileFor(kernel.release, { arch: kernel.arch, distro: 'debian' });
    const c = join(logDir, 'shared.c');
    writeFileSync(c, reproForProgram(SHARED, profile));
    const bin = await compileRepro(c, ['-Werror']);
    const dmaC = join(logDir, 'dma-mapped.c');
    writeFileSync(dmaC, reproForProgram(DMA_MAPPED, profile));
    const dmaBin = await compileRepro(dmaC, ['-Werror']);
    const image = await prepareReproImage(kernel, [bin, dmaBin]);
    repro = guestReproPath(bin);
    dmaRepro = guestReproPath(dmaBin);
    guest = await Guest.boot(kernel, image, { machine: X86_64_VTD_GROUPS.name, consolePath: join(logDir, 'debian-6.12.console.log') });
  }, 60 * 60_000);
  afterAll(async () => {
    await guest?.shutdown();
  });

  it('has the IOMMU groups {0} and {1,2} in sysfs, and refuses a program that wants another layout', async () => {
    const groups = await readIommuGroups((p) => g().readFile(p));
    const eps = [...groups.values()].filter((d) => d.some((x) => X86_64_VTD_GROUPS.endpointAddresses.includes(x))).map((d) => d.filter((x) => x.startsWith('0000:0')).sort());
    expect(eps.sort()).toEqual([['0000:01:00.0'], ['0000:02:00.0', '0000:02:00.1']]);
    const apart = program([{ op: 'vfio_container', task: 't0', fd: 'c' }], { ...DEVICE, groups: [[0], [1], [2]] });
    await expect(executeProgram(g(), 1, apart, profile)).rejects.toThrow(
      /^the program needs the IOMMU groups \{0\} \{1\} \{2\} but the guest \(machine x86_64-vtd-groups\) has \{0\} \{1,2\}; run it on a machine with that layout/,
    );
    expect(X86_64_VTD_SVA.endpointGroups.slice(0, 3)).toEqual([[0], [1], [2]]);
  });

  it('a group of one: single open, container and backend order, device fds, close in any order, fork; ownership returns at the last close', async () => {
    const r = await executeProgram(g(), 2, SINGLE, profile);
    expect(r.reports).toEqual([]);
    expect(outcomes(r)).toEqual(SINGLE_WANT);
    expect(r.check.divergence).toBeUndefined();
    expect(r.run?.finished?.status).toBe(0);
  });

  it('a group of two: EPERM while a kernel driver uses it, EBUSY for a kernel driver while user space owns it, the vfio group goes with its last device', async () => {
    const r = await executeProgram(g(), 3, SHARED, profile);
    expect(r.reports).toEqual([]);
    expect(outcomes(r)).toEqual(SHARED_WANT);
    expect(r.check.divergence).toBeUndefined();
    expect(r.run?.finished?.status).toBe(0);
  });

  it('after each program every endpoint is back on the test driver (the agent gives vfio-pci endpoints back)', async () => {
    const r = await executeProgram(g(), 4, program([{ op: 'pci_bind', task: 't0', dev: 2, driver: 'vfio' }, { op: 'pci_bind', task: 't0', dev: 1, driver: 'vfio' }, { op: 'pci_bind', task: 't0', dev: 0, driver: 'vfio' }]), profile);
    expect(outcomes(r)).toEqual(['EBUSY', 'EBUSY', 'EBUSY']);
    expect(r.check.divergence).toBeUndefined();
  });

  it("DMA through endpoint 0's user-owned domain: it lands in the mapping task's memory (t0's pinned page, not its child's copy) at a mapped IOVA, faults at an unmapped IOVA, on a read-only zero page and after unmap; the faults are the model's, not findings", async () => {
    const r = await executeProgram(g(), 6, DMA, profile);
    expect(r.reports).toEqual([]);
    // a store (touch write) reports no data: the agent's ok() is the model's ok
    expect(outcomes(r).map((o) => (o === 'ok()' ? 'ok' : o))).toEqual(DMA_WANT);
    expect(r.check.divergence).toBeUndefined();
    expect(r.run?.finished?.status).toBe(0);
    expect(r.check.dmaFaults).toEqual(DMA_FAULTS);
    // steps 18 (read of IOVA page 3) and 28 (read of page 2 after unmap); VT-d records the page of
    // the address. Step 20's write to the read-only page: measured with first-level translation,
    // refused without a fault record (the emulated IOMMU gave the read's read-only translation and
    // QEMU's memory core refuses the write itself); the model allows a fault there
    const faults = r.expectedFaults.map((f) => [f.details?.device, f.details?.type, f.details?.addr]);
    expect(faults.filter((f) => f[1] === 'DMA Read')).toEqual([
      ['01:00.0', 'DMA Read', '0x103000'],
      ['01:00.0', 'DMA Read', '0x102000'],
    ]);
    expect(faults.filter((f) => f[1] !== 'DMA Read').every((f) => f[0] === '01:00.0' && f[1] === 'DMA Write' && f[2] === '0x104000')).toBe(true);
  });

  it("the mapped-DMA program's C reproducer: every step as the model expects", async () => {
    const r = await runReproOnGuest(g(), dmaRepro, DMA_MAPPED.device, { progId: 8 });
    expect(r.exitCode, r.output).toBe(0);
    expect(r.output).toContain(`RESULT: every checked step (${DMA_MAPPED.ops.length} of ${DMA_MAPPED.ops.length}) did what the model expects`);
    expect(r.reports).toEqual([]);
  });

  it("the group-of-two program's C reproducer: every step as the model expects", async () => {
    const r = await runReproOnGuest(g(), repro, SHARED.device, { progId: 5 });
    expect(r.exitCode, r.output).toBe(0);
    expect(r.output).toContain(`RESULT: every checked step (${SHARED.ops.length} of ${SHARED.ops.length}) did what the model expects`);
    expect(r.reports).toEqual([]);
  });
});
