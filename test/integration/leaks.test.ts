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
import { leakBaseline, readResources } from '../../harness/leaks/read.js';
import { compareResources } from '../../harness/leaks/compare.js';
import { X86_64_VTD_GROUPS } from '../../harness/vm/machine.js';
import { SHARED, SINGLE, program } from '../unit/vfio-programs.js';

const logDir = mkdtempSync(join(tmpdir(), 'svadiff-it-leaks-'));
const [EP0, EP1, EP2] = X86_64_VTD_GROUPS.endpointAddresses as [string, string, string];
const HOLDER = 'test/fixtures/leaks/vfio-holder.c';
/** A uacce program on the platform test device: it touches no endpoint and no vfio file. */
const PLATFORM = program([{ op: 'open', task: 't0', fd: 'q', dev: 0, via: 'path' }, { op: 'close', task: 't0', fd: 'q' }], { devices: 1 });

describe('leak check on debian:6.12 (vfio as modules, x86_64-vtd-groups)', () => {
  let guest: Guest | undefined;
  let profile: ReturnType<typeof profileFor>;
  let holdGroup = '';
  let holdDevice = '';
  let holdShared = '';
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
    const shared = await compileRepro(HOLDER, [`-DEP="${EP1}"`, `-DEP2="${EP2}"`]);
    [holdGroup, holdDevice, holdShared] = [guestReproPath(group), guestReproPath(device), guestReproPath(shared)];
    const image = await prepareReproImage(kernel, [group, device, shared]);
    guest = await Guest.boot(kernel, image, { machine: X86_64_VTD_GROUPS.name, consolePath: join(logDir, 'debian-6.12.console.log') });
  }, 60 * 60_000);
  afterAll(async () => {
    await guest?.shutdown();
  });

  it('finds no leak after the vfio programs and a uacce one (the time of each check logged)', async () => {
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
    expect(r.leaks.map((l) => l.detail)).toEqual([`module vfio: refcnt ${vfio} before the program, ${vfio + 3} after it (every open vfio or iommufd file holds one)`]);
    expect(await refcnt('vfio_iommu_type1')).toBe(type1);
    expect(r.needsReboot).toBe(true);
    const c = findingCandidates(r, { spec: 'debian:6.12', release: 'test' });
    expect(c.map((x) => x.title)).toEqual(['leak: vfio refcnt above its value before the program']);
    expect(c[0]!.observed).toBe(`module vfio: refcnt ${vfio} before the program, ${vfio + 3} after it (every open vfio or iommufd file holds one)`);
  });

  it('finds an endpoint the test driver cannot have back while a process outside the program keeps its group of two in a container (EBUSY)', async () => {
    const h = await runReproOnGuest(g(), holdShared, SHARED.device, { progId: 15, timeoutMs: 30_000 });
    expect(h.exitCode, h.output).toBe(0);
    // endpoint 1 leaves vfio-pci first: endpoint 2 still keeps the vfio group, and the container
    // its DMA ownership, so the test driver's bind fails; endpoint 2 is the group's last vfio
    // device: its unbind detaches the container and the ownership goes (vfio_device_remove_group)
    expect(h.exec?.endpointsLeft).toEqual([{ address: EP1, what: 'bind', errno: 16 }]);
    const leak = compareResources(await leakBaseline(g(), (p) => g().readFile(p)), await readResources((p) => g().readFile(p)), h.exec!.endpointsLeft).find((l) => l.title.includes(EP1));
    expect(leak).toEqual({ title: `leak: endpoint ${EP1} not back on svadiff_test`, detail: `endpoint ${EP1}: binding svadiff_test after the program failed with EBUSY (its IOMMU group still has a user DMA owner)` });
  });

  it('finds an endpoint vfio-pci cannot give back while a process outside the program has its device open, without hanging', async () => {
    const base = await leakBaseline(g(), (p) => g().readFile(p));
    const vfio = await refcnt('vfio');
    const groups = await readIommuGroups((p) => g().readFile(p));
    const group = [...groups].find(([, devs]) => devs.includes(EP0))![0];
    const h = await runReproOnGuest(g(), holdDevice, SHARED.device, { progId: 20, timeoutMs: 30_000 });
    expect(h.exitCode, h.output).toBe(0);
    expect(h.exec?.endpointsLeft).toEqual([{ address: EP0, what: 'unbind', errno: 110 }]);
    // the next program sees it too: the endpoint still on vfio-pci, the device's references
    const r = await executeProgram(g(), 21, PLATFORM, profile);
    // measured on 6.12: the device's file holds two more references of vfio and one of vfio-pci
    // (vfio_df_open's try_module_get of the device's driver); the container keeps its type1
    // backend and the group its node, as the unbind that would remove them never ends
    expect(r.leaks.map((l) => l.title)).toEqual([
      'leak: vfio refcnt above its value before the program',
      'leak: vfio_iommu_type1 refcnt above its value before the program',
      'leak: vfio_pci refcnt above its value before the program',
      `leak: /dev/vfio/${group} left after the program`,
    ]);
    const [v, t1, vp] = ['vfio', 'vfio_iommu_type1', 'vfio_pci'].map((m) => base.refcnt[m]!);
    expect(r.leaks.slice(0, 3).map((l) => l.detail.replace(/ \(every.*/, ''))).toEqual([
      `module vfio: refcnt ${v} before the program, ${vfio + 5} after it`,
      `module vfio_iommu_type1: refcnt ${t1} before the program, ${t1! + 1} after it`,
      `module vfio_pci: refcnt ${vp} before the program, ${vp! + 1} after it`,
    ]);
    expect(r.needsReboot).toBe(true);
  });
});

describe('leak check on src:debian:6.12.118+iommufd (vfio and iommufd built in, device cdev only)', () => {
  let guest: Guest | undefined;
  let profile: ReturnType<typeof profileFor>;
  let holder = '';
  const g = () => {
    if (!guest) throw new Error('no guest');
    return guest;
  };
  const read = (p: string) => g().readFile(p);

  beforeAll(async () => {
    const kernel = await fetchKernel('src:debian:6.12.118+iommufd');
    profile = profileFor(kernel.release, { arch: kernel.arch, distro: 'debian' });
    const bin = await compileRepro(HOLDER, [`-DEP="${EP0}"`, '-DCDEV']);
    holder = guestReproPath(bin);
    const image = await prepareReproImage(kernel, [bin]);
    guest = await Guest.boot(kernel, image, { machine: X86_64_VTD_GROUPS.name, consolePath: join(logDir, 'debian-6.12-iommufd.console.log') });
  }, 60 * 60_000);
  afterAll(async () => {
    await guest?.shutdown();
  });

  it('has no module reference to watch, and finds no leak after programs that move endpoints to vfio-pci and back', async () => {
    const bind = program([{ op: 'pci_bind', task: 't0', dev: 0, driver: 'vfio' }, { op: 'pci_unbind', task: 't0', dev: 1 }, { op: 'pci_bind', task: 't0', dev: 1, driver: 'vfio' }]);
    let id = 1;
    for (const p of [PLATFORM, bind, bind]) {
      const r = await executeProgram(g(), id++, p, profile);
      expect(r.leaks).toEqual([]);
      expect(r.needsReboot).toBe(false);
      console.log(`leak check after program ${id - 1} on the iommufd kernel (${p.ops.length} ops, ${r.elapsedMs} ms in all): ${r.leakCheckMs} ms`);
    }
    const base = await leakBaseline(g(), read);
    expect(base.refcnt).toEqual({});
    // /dev/vfio exists only while a vfio device does (devtmpfs removes the emptied directories)
    expect(base.vfioNodes).toEqual([]);
  });

  it('finds the endpoint whose device cdev a process outside the program keeps bound to an iommufd: its vfio-pci unbind does not return (bounded)', async () => {
    const base = await leakBaseline(g(), read);
    const h = await runReproOnGuest(g(), holder, SHARED.device, { progId: 10, timeoutMs: 30_000 });
    expect(h.exitCode, h.output).toBe(0);
    expect(h.output).toContain('bound to an iommufd');
    expect(h.exec?.endpointsLeft).toEqual([{ address: EP0, what: 'unbind', errno: 110 }]);
    // nothing else shows it on this kernel: the cdev node and the driver link went before the wait
    expect(compareResources(base, await readResources(read), h.exec!.endpointsLeft).map((l) => l.title)).toEqual([`leak: endpoint ${EP0} still on vfio-pci`]);
  });
});
