/**
 * The leak check after every program (harness/leaks) on Debian's 6.12 with vfio as modules, on
 * the x86_64-vtd-groups machine: no leak after the vfio programs of test/integration/vfio.test.ts
 * (no false positives), and the leaks a process outside the program makes (test/fixtures/leaks/
 * vfio-holder.c, started with the agent's U, keeps vfio files of endpoint 0 open in a session of
 * its own) found with their titles: module references with a group and container open, an
 * endpoint that vfio-pci cannot give back with its device open.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchKernel } from '../../kernels/index.js';
import { withVfioModules } from '../../kernels/vfio-modules.js';
import { profileFor } from '../../harness/model/index.js';
import { executeProgram, findingCandidates } from '../../harness/run/execute.js';
import { compileRepro, guestReproPath, prepareReproImage, runReproOnGuest } from '../../harness/repro/replay.js';
import { Guest } from '../../harness/vm/guest.js';
import { readIommuGroups } from '../../harness/vm/groups.js';
import { leakBaseline } from '../../harness/leaks/read.js';
import { X86_64_VTD_GROUPS } from '../../harness/vm/machine.js';
import { SHARED, SINGLE, program } from '../unit/vfio-programs.js';

const logDir = mkdtempSync(join(tmpdir(), 'svadiff-it-leaks-'));
const EP0 = X86_64_VTD_GROUPS.endpointAddresses[0]!;
const HOLDER = 'test/fixtures/leaks/vfio-holder.c';
/** A uacce program on the platform test device: it touches no endpoint and no vfio file. */
const PLATFORM = program([{ op: 'open', task: 't0', fd: 'q', dev: 0, via: 'path' }, { op: 'close', task: 't0', fd: 'q' }], { devices: 1 });

describe('leak check on debian:6.12 (vfio as modules, x86_64-vtd-groups)', () => {
  let guest: Guest | undefined;
  let profile: ReturnType<typeof profileFor>;
  let holdGroup = '';
  let holdDevice = '';
  const g = () => {
    if (!guest) throw new Error('no guest');
    return guest;
  };
  const refcnt = async (m: string) => Number((await g().readFile(`/sys/module/${m}/refcnt`))?.trim());

  beforeAll(async () => {
    const kernel = await withVfioModules(await fetchKernel('debian:6.12'));
    profile = profileFor(kernel.release, { arch: kernel.arch, distro: 'debian' });
    const group = await compileRepro(HOLDER, [`-DEP="${EP0}"`]);
    const device = await compileRepro(HOLDER, [`-DEP="${EP0}"`, '-DDEVICE_FD']);
    [holdGroup, holdDevice] = [guestReproPath(group), guestReproPath(device)];
    const image = await prepareReproImage(kernel, [group, device]);
    guest = await Guest.boot(kernel, image, { machine: X86_64_VTD_GROUPS.name, consolePath: join(logDir, 'debian-6.12.console.log') });
  }, 60 * 60_000);
  afterAll(async () => {
    await guest?.shutdown();
  });

  it('finds no leak after the vfio programs and a uacce one, each checked in about a second at most', async () => {
    let id = 1;
    for (const p of [PLATFORM, SINGLE, SHARED, program([{ op: 'pci_bind', task: 't0', dev: 0, driver: 'vfio' }, { op: 'pci_unbind', task: 't0', dev: 1 }, { op: 'pci_bind', task: 't0', dev: 1, driver: 'vfio' }]), SINGLE]) {
      const r = await executeProgram(g(), id++, p, profile);
      expect(r.check.divergence).toBeUndefined();
      expect(r.leaks).toEqual([]);
      expect(r.needsReboot).toBe(false);
      expect(r.leakCheckMs).toBeGreaterThan(0);
      console.log(`leak check after program ${id - 1} (${p.ops.length} ops, ${r.elapsedMs} ms in all): ${r.leakCheckMs} ms`);
    }
  });

  it('finds the vfio references of a group and a container a process outside the program keeps open', async () => {
    const vfio = await refcnt('vfio');
    const type1 = await refcnt('vfio_iommu_type1');
    const h = await runReproOnGuest(g(), holdGroup, SHARED.device, { progId: 10, timeoutMs: 30_000 });
    expect(h.exitCode, h.output).toBe(0);
    expect(h.output).toContain('vfio-holder: group');
    // the agent unbound vfio-pci: the last vfio device of the group went, its container was
    // detached (vfio_device_remove_group), so the endpoint is back on the test driver
    expect(h.exec?.endpointsLeft).toEqual([]);
    const r = await executeProgram(g(), 11, PLATFORM, profile);
    // a group file holds two references of vfio (chrdev_open's cdev_get of the group's cdev and
    // its fops), a container file one (misc_open's fops); the container is detached from the
    // group with the group's last device, so vfio_iommu_type1 is as before
    expect(r.leaks.map((l) => l.title)).toEqual([`leak: vfio refcnt ${vfio + 3} after the program (${vfio} before)`]);
    expect(await refcnt('vfio_iommu_type1')).toBe(type1);
    expect(r.needsReboot).toBe(true);
    const c = findingCandidates(r, { spec: 'debian:6.12', release: 'test' });
    expect(c.map((x) => x.title)).toEqual([`leak: vfio refcnt ${vfio + 3} after the program (${vfio} before)`]);
    expect(c[0]!.observed).toBe(`module vfio: refcnt ${vfio} before the program, ${vfio + 3} after it (every open vfio or iommufd file holds one)`);
  });

  it('finds an endpoint vfio-pci cannot give back while a process outside the program has its device open, without hanging', async () => {
    const base = await leakBaseline(g(), (p) => g().readFile(p));
    const vfio = await refcnt('vfio');
    const groups = await readIommuGroups((p) => g().readFile(p));
    const group = [...groups].find(([, devs]) => devs.includes(EP0))![0];
    const t0 = Date.now();
    const h = await runReproOnGuest(g(), holdDevice, SHARED.device, { progId: 20, timeoutMs: 30_000 });
    expect(h.exitCode, h.output).toBe(0);
    expect(h.exec?.endpointsLeft).toEqual([{ address: EP0, what: 'unbind', errno: 110 }]);
    expect(Date.now() - t0).toBeLessThan(60_000);
    // the next program sees it too: the endpoint still on vfio-pci, the device's references
    const r = await executeProgram(g(), 21, PLATFORM, profile);
    // measured on 6.12: the device's file holds two more references of vfio and one of vfio-pci
    // (vfio_df_open's try_module_get of the device's driver); the container keeps its type1
    // backend and the group its node, as the unbind that would remove them never ends
    expect(r.leaks.map((l) => l.title)).toEqual([
      `leak: vfio refcnt ${vfio + 5} after the program (${base.refcnt.vfio} before)`,
      `leak: vfio_iommu_type1 refcnt ${base.refcnt.vfio_iommu_type1! + 1} after the program (${base.refcnt.vfio_iommu_type1} before)`,
      `leak: vfio_pci refcnt ${base.refcnt.vfio_pci! + 1} after the program (${base.refcnt.vfio_pci} before)`,
      `leak: /dev/vfio/${group} left after the program`,
    ]);
    expect(r.needsReboot).toBe(true);
  });
});
