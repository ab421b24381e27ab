/**
 * iommufd and vfio's device cdev on the self-built src:debian:6.12.118+iommufd (IOMMUFD=y,
 * VFIO=y, VFIO_DEVICE_CDEV=y, VFIO_PCI=y, no VFIO_GROUP: no /dev/vfio/<n>, no container), on
 * the x86_64-vtd-groups machine: endpoint 0 alone in its IOMMU group, endpoints 1 and 2 sharing
 * one. Every outcome is asserted exactly, from docs/ownership-semantics.md ("iommufd"): HWPT
 * allocation, attach to an IOAS and to a HWPT, replace, detach, destroy ordering (EBUSY while in
 * use, ENOENT after), bind EPERM while the test driver owns the group's DMA, close in every
 * order, the object ids; the reference model must agree with all of it; one program also runs
 * as its C reproducer. The kernel is built from Debian's source (kernels-from-source, about an
 * hour on two cores) and cached: the test runs when it is in the cache (`svadiff kernels build
 * src:debian:6.12.118+iommufd`) or with SVADIFF_TEST_IOMMUFD=1 (which builds it first); it is
 * skipped otherwise, and SVADIFF_TEST_IOMMUFD=0 skips it.
 *
 * DMA from the endpoint (ep_dma) before and after a replace: two IOAS map the same IOVA to
 * different memory, the DMA lands in the memory of the IOAS behind the attached HWPT, and is
 * refused (DMA remapping faults the model expects) while blocked and where nothing is mapped.
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchKernel } from '../../kernels/index.js';
import { kernelsDir } from '../../kernels/fetch.js';
import { vfioPaths, withVfioModules } from '../../kernels/vfio-modules.js';
import { profileFor, type KernelProfile } from '../../harness/model/index.js';
import { formatOutcome } from '../../harness/program/outcome.js';
import { executeProgram, type ExecResult } from '../../harness/run/execute.js';
import { compileRepro, guestReproPath, prepareReproImage, runReproOnGuest } from '../../harness/repro/replay.js';
import { reproForProgram } from '../../harness/repro/csource.js';
import { Guest } from '../../harness/vm/guest.js';
import { X86_64_VTD_GROUPS } from '../../harness/vm/machine.js';
import { LIFECYCLE, LIFECYCLE_WANT, MEMORY, MEMORY_WANT, SHARED, SHARED_WANT } from '../unit/iommufd-programs.js';
import { IOMMUFD_DMA_OPS, IOMMUFD_DMA_WANT } from '../unit/vfio-programs.js';
import { parseProgram } from '../../harness/program/parse.js';

const logDir = mkdtempSync(join(tmpdir(), 'svadiff-it-iommufd-'));
const KERNEL = 'src:debian:6.12.118+iommufd';
const CACHED = existsSync(join(kernelsDir(), 'src-debian-6.12.118+iommufd-x86_64', 'manifest.json'));
const ENABLED = process.env.SVADIFF_TEST_IOMMUFD === '1' || (CACHED && process.env.SVADIFF_TEST_IOMMUFD !== '0');

/** What each op did, as reports write outcomes (ok, ok(3), EBUSY, hang). */
const outcomes = (r: ExecResult) => r.check.ops.map((c) => (c.observed ? formatOutcome(c.observed) : '-'));

describe.runIf(ENABLED)(`iommufd on ${KERNEL}: HWPTs, attach, replace, detach, destroy ordering, ownership`, () => {
  let guest: Guest | undefined;
  let profile: KernelProfile;
  let repro = '';
  const g = () => {
    if (!guest) throw new Error('no guest');
    return guest;
  };

  beforeAll(async () => {
    const kernel = await withVfioModules(await fetchKernel(KERNEL));
    profile = profileFor(kernel.release, { arch: kernel.arch, distro: 'debian', vfioPaths: vfioPaths(await readFile(kernel.config, 'utf8')) });
    const c = join(logDir, 'shared.c');
    writeFileSync(c, reproForProgram(SHARED, profile));
    const bin = await compileRepro(c, ['-Werror']);
    const image = await prepareReproImage(kernel, [bin]);
    repro = guestReproPath(bin);
    guest = await Guest.boot(kernel, image, { machine: X86_64_VTD_GROUPS.name, consolePath: join(logDir, 'iommufd.console.log') });
  }, 60 * 60_000);
  afterAll(async () => {
    await guest?.shutdown();
  });

  it('the kernel has iommufd and the device cdev, and no group path', () => {
    expect(profile.vfioPaths).toEqual({ group: false, iommufd: true });
  });

  it('one endpoint: attach to an IOAS (automatic HWPT), replace onto a HWPT and onto another IOAS, detach, destroy order, ids', async () => {
    const r = await executeProgram(g(), 1, LIFECYCLE, profile);
    expect(r.reports).toEqual([]);
    expect(outcomes(r)).toEqual(LIFECYCLE_WANT);
    expect(r.check.divergence).toBeUndefined();
    expect(r.run?.finished?.status).toBe(0);
  });

  it("DMA from endpoint 0 before and after a replace: two IOAS map IOVA page 0 to different memory, the DMA lands in the attached one's; blocked before attach and after detach, refused where the IOAS maps nothing (faults the model expects)", async () => {
    const p = parseProgram(JSON.stringify({ format: 'svadiff-program', version: 1, device: LIFECYCLE.device, ops: IOMMUFD_DMA_OPS }), 'iommufd-dma');
    const r = await executeProgram(g(), 5, p, profile);
    expect(r.reports).toEqual([]);
    const got = outcomes(r);
    expect(Object.fromEntries(Object.keys(IOMMUFD_DMA_WANT).map((i) => [i, got[Number(i)]]))).toEqual(IOMMUFD_DMA_WANT);
    expect(r.check.divergence).toBeUndefined();
    expect(r.run?.finished?.status).toBe(0);
    expect(r.check.dmaFaults).toEqual([0]);
    // the refused reads: IOVA page 0 while blocked (ops 12, 23), page 1 that o2 does not map (op 21)
    expect(r.expectedFaults.map((f) => [f.details?.device, f.details?.type, f.details?.addr])).toEqual([
      ['01:00.0', 'DMA Read', '0x100000'],
      ['01:00.0', 'DMA Read', '0x101000'],
      ['01:00.0', 'DMA Read', '0x100000'],
    ]);
  });

  it('a group of two: bind EPERM while the test driver owns its DMA, EBUSY for the test driver while iommufd owns it, the group moves as one, close in any order', async () => {
    const r = await executeProgram(g(), 2, SHARED, profile);
    expect(r.reports).toEqual([]);
    expect(outcomes(r)).toEqual(SHARED_WANT);
    expect(r.check.divergence).toBeUndefined();
    expect(r.run?.finished?.status).toBe(0);
  });

  it('memory: pinned when the first domain comes (EFAULT for a page gone), EEXIST, fork shares everything and exit frees it', async () => {
    const r = await executeProgram(g(), 3, MEMORY, profile);
    expect(r.reports).toEqual([]);
    expect(outcomes(r)).toEqual(MEMORY_WANT);
    expect(r.check.divergence).toBeUndefined();
    expect(r.run?.finished?.status).toBe(0);
  });

  it("the group-of-two program's C reproducer: every step as the model expects", async () => {
    const r = await runReproOnGuest(g(), repro, SHARED.device, { progId: 4 });
    expect(r.exitCode, r.output).toBe(0);
    expect(r.output).toContain(`RESULT: every checked step (${SHARED.ops.length} of ${SHARED.ops.length}) did what the model expects`);
    expect(r.reports).toEqual([]);
  });
});
