/**
 * vfio for the guest of a Debian kernel: Debian builds it as modules (VFIO=m, VFIO_PCI=m,
 * VFIO_IOMMU_TYPE1=m), so the vfio op family (harness/ops/vfio.ts) needs vfio-pci.ko,
 * vfio_iommu_type1.ko and what they depend on in the initramfs, loaded at boot before uacce.ko.
 * They are taken from the kernel's own linux-image package (downloaded again: the kernel entry
 * keeps only the image, config and System.map), in modules.dep order, once per kernel entry
 * (<entry>/vfio-modules/). The package has no modules.dep (depmod makes it at install): the
 * order comes from each module's own `depends=` (.modinfo). Debian's modules are
 * xz-compressed; they are kept decompressed, as the agent loads them with finit_module().
 *
 * A kernel with vfio built in (a self-built one with the iommufd fragment) needs nothing; one
 * without vfio at all is refused in one line. Which of vfio's paths a kernel has (the group
 * path, iommufd with the device cdev) is vfioPaths(): the model's profile and the generator's
 * op weights follow it (harness/model/profile.ts vfioPaths, harness/generator/vfio.ts).
 */
import { promises as fs } from 'node:fs';
import { execa } from 'execa';
import { join } from 'node:path';
import { UserError } from '../harness/util/errors.js';
import { atomicWriteJson, exists, readJsonIfExists } from '../harness/util/fsx.js';
import { ensureHostTools } from '../harness/util/host.js';
import { step } from '../harness/util/log.js';
import { PrivateApt } from './apt.js';
import { extractDebMembers, listFiles, UNPACK_TOOLS } from './build.js';
import type { PackageRef } from './catalog.js';
import { readManifest } from './fetch.js';
import { parseModInfo } from './modinfo.js';
import { withLock } from './lock.js';
import type { KernelArtifacts } from './types.js';
import type { VfioPaths } from '../harness/model/profile.js';

/** The modules the vfio ops use; their dependencies come from modules.dep. */
export const VFIO_MODULES = ['vfio-pci', 'vfio_iommu_type1'] as const;

const DIR = 'vfio-modules';
const ORDER_FILE = 'order.json';

/**
 * How the kernel has vfio's group path (its config): built in, as modules, or not at all. The
 * group path needs VFIO_GROUP (a bool, so only the drivers can be modules) and the type1
 * backend; the iommufd fragment builds vfio with the device cdev only (no VFIO_GROUP).
 */
export function vfioConfig(configText: string): 'builtin' | 'module' | 'absent' {
  const v = /^CONFIG_VFIO_PCI=([ym])$/m.exec(configText)?.[1];
  const t = /^CONFIG_VFIO_IOMMU_TYPE1=([ym])$/m.exec(configText)?.[1];
  if (v === undefined || t === undefined || !/^CONFIG_VFIO_GROUP=y$/m.test(configText)) return 'absent';
  return v === 'y' && t === 'y' ? 'builtin' : 'module';
}

/**
 * Which of vfio's user-space paths the config builds: the group path (vfioConfig not 'absent')
 * and iommufd with the device cdev (IOMMUFD, VFIO_DEVICE_CDEV and VFIO_PCI; the cdev is a bool
 * of VFIO, which the iommufd fragment builds in).
 */
export function vfioPaths(configText: string): VfioPaths {
  const iommufd =
    /^CONFIG_IOMMUFD=[ym]$/m.test(configText) && /^CONFIG_VFIO_DEVICE_CDEV=y$/m.test(configText) && /^CONFIG_VFIO_PCI=[ym]$/m.test(configText);
  return { group: vfioConfig(configText) !== 'absent', iommufd };
}

/**
 * The load order of `want` and their dependencies, from each module's `depends=` (module names
 * with `_` for `-`): each module after everything it depends on.
 */
export function loadOrder(depends: ReadonlyMap<string, readonly string[]>, want: readonly string[]): string[] {
  const norm = (n: string) => n.replace(/-/g, '_');
  const deps = new Map([...depends].map(([k, v]) => [norm(k), v.map(norm)]));
  const out: string[] = [];
  const visit = (m: string, seen: Set<string>) => {
    if (out.includes(m)) return;
    if (!deps.has(m)) throw new Error(`no module ${m} among ${[...deps.keys()].join(', ')}`);
    if (seen.has(m)) throw new Error(`a module dependency cycle through ${m}`);
    seen.add(m);
    for (const d of deps.get(m)!) visit(d, seen);
    out.push(m);
  };
  for (const w of want) visit(norm(w), new Set());
  return out;
}

/**
 * The kernel with vfio ready for its guest: extraModules gets the vfio modules (fetched once)
 * when vfio is modular; unchanged when it is built in. Throws a UserError when the kernel has
 * no vfio.
 */
export async function withVfioModules(k: KernelArtifacts): Promise<KernelArtifacts> {
  const config = await fs.readFile(k.config, 'utf8');
  const how = vfioConfig(config);
  const paths = vfioPaths(config);
  if (how === 'absent' && !paths.iommufd) {
    throw new UserError(
      `${k.exactSpec} has neither vfio's group path (CONFIG_VFIO_GROUP, CONFIG_VFIO_PCI, CONFIG_VFIO_IOMMU_TYPE1) nor iommufd with the device cdev (CONFIG_IOMMUFD, CONFIG_VFIO_DEVICE_CDEV): use a Debian kernel (VFIO=m) or a kernel built with the iommufd fragment (src:debian:<version>+iommufd)`,
    );
  }
  // the iommufd fragment builds vfio in (VFIO=y, VFIO_PCI=y): nothing to load
  if (how === 'absent' && /^CONFIG_VFIO_PCI=y$/m.test(config)) return k;
  if (how === 'absent') throw new UserError(`${k.exactSpec} has vfio-pci as a module, which svadiff does not take from a self-built kernel; build it in (CONFIG_VFIO_PCI=y)`);
  if (how === 'builtin') return k;
  if (k.built !== undefined) throw new UserError(`${k.exactSpec} has vfio as modules, which svadiff does not take from a self-built kernel; build vfio in (=y)`);
  const dir = join(k.dir, DIR);
  const order = await withLock(`${dir}.lock`, { what: `vfio modules of ${k.exactSpec}` }, async () => {
    const have = await readJsonIfExists<string[]>(join(dir, ORDER_FILE));
    if (have && (await Promise.all(have.map((p) => exists(join(dir, p))))).every(Boolean)) return have;
    return fetchVfioModules(k, dir);
  });
  return { ...k, extraModules: [...k.extraModules, ...order.map((p) => join(dir, p))] };
}

async function fetchVfioModules(k: KernelArtifacts, dir: string): Promise<string[]> {
  const man = await readManifest(k.dir);
  const image = man?.kernel.packages.find((p: PackageRef) => p.name.startsWith('linux-image-'));
  if (!man || !image) throw new UserError(`${k.exactSpec}: its cache entry names no linux-image package; fetch the kernel again (svadiff kernels fetch ${k.exactSpec})`);
  await ensureHostTools(UNPACK_TOOLS);
  await fs.rm(dir, { recursive: true, force: true });
  const debs = join(dir, 'debs');
  try {
    const apt = new PrivateApt(k.arch);
    await apt.ensureFresh({});
    const got = await apt.download([image], debs);
    const deb = got.get(image.name);
    if (!deb) throw new Error(`internal: ${image.name} was not downloaded`);
    const tree = join(dir, 'tree');
    await step(`unpacking the vfio modules of ${k.release}`, () =>
      extractDebMembers(deb, tree, ['--wildcards', `*/modules/${k.release}/kernel/drivers/vfio/*`, `*/modules/${k.release}/kernel/virt/lib/*`]),
    );
    // every module there, decompressed, by name, with its dependencies
    const files = new Map<string, string>();
    const depends = new Map<string, string[]>();
    for (const f of await listFiles(tree)) {
      const m = /([^/]+)\.ko(\.xz)?$/.exec(f);
      if (!m) continue;
      const elf = m[2] ? (await execa('xz', ['-dc', join(tree, f)], { encoding: 'buffer' })).stdout : await fs.readFile(join(tree, f));
      const name = m[1]!.replace(/-/g, '_');
      await fs.writeFile(join(dir, `${name}.ko`), elf);
      files.set(name, `${name}.ko`);
      depends.set(name, (parseModInfo(elf).get('depends')?.[0] ?? '').split(',').filter(Boolean));
    }
    await fs.rm(tree, { recursive: true, force: true });
    const order = loadOrder(depends, VFIO_MODULES).map((n) => files.get(n)!);
    await atomicWriteJson(join(dir, ORDER_FILE), order);
    return order;
  } finally {
    await fs.rm(debs, { recursive: true, force: true });
  }
}
