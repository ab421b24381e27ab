/**
 * Leaks: what a program created must be gone after it. The guest's resources are recorded once
 * after setup (the baseline) and again after every program (read.ts); this compares the two,
 * with the endpoints the agent could not give back (L lines), and says what was left. A pure
 * function of data: the titles are stable (a finding's identity), the details say the numbers.
 *
 * The signals, each exact where the kernel has it:
 * - module reference counts (/sys/module/<m>/refcnt) of vfio and iommufd built as modules
 *   (Debian: VFIO=m): every open container, group, device and /dev/iommu file holds one
 *   (fops.owner, and vfio_df_open's try_module_get of the device's driver), so after the
 *   program's tasks are gone each count is back where it was;
 * - the endpoints (L lines): vfio-pci's unbind waits for the last open of the device
 *   (vfio_unregister_group_dev), the test driver's bind fails EBUSY while the IOMMU group has a
 *   user DMA owner (iommu_device_use_default_domain): on kernels with vfio built in (no
 *   refcounts) these are what is observable;
 * - /dev/vfio and /dev/vfio/devices: a vfio group's node exists while a vfio device of the group
 *   is registered, a device cdev while its device is;
 * - the PCI devices on vfio-pci after the agent gave the endpoints back;
 * - /sys/kernel/iommu_groups: the groups and their devices never change under a program;
 * - kmemleak's unreferenced objects, where the kernel has CONFIG_DEBUG_KMEMLEAK.
 */

/** What the leak check reads from the guest. */
export interface GuestResources {
  /** reference count of each watched module the kernel has as a module (built in: absent) */
  refcnt: Record<string, number>;
  /** entries of /dev/vfio and of /dev/vfio/devices (as devices/<name>) */
  vfioNodes: string[];
  /** PCI devices bound to vfio-pci */
  vfioPci: string[];
  /** /sys/kernel/iommu_groups: each group's devices */
  iommuGroups: Record<string, string[]>;
  /** kmemleak's unreferenced objects (address and allocating function); absent without kmemleak */
  kmemleak?: KmemleakObject[];
}

export interface KmemleakObject {
  address: string;
  size: number;
  /** the first backtrace function that is not an allocator ("?" if none) */
  frame: string;
}

/** An endpoint the agent could not give back at the program's end (the agent's L line). */
export interface EndpointLeft {
  address: string;
  what: 'unbind' | 'bind';
  errno: number;
}

export interface Leak {
  /** stable: the finding's title */
  title: string;
  /** what was left, with the numbers */
  detail: string;
}

/** The modules whose reference counts are watched (those the kernel has as modules). */
export const WATCHED_MODULES = ['vfio', 'vfio_iommu_type1', 'vfio_pci_core', 'vfio_pci', 'iommufd'] as const;

/** The test driver's name (guest/include/svt_abi.h SVT_DRIVER_NAME). */
const TEST_DRIVER = 'svadiff_test';
const ETIMEDOUT = 110;
const EBUSY = 16;

const ERRNO_NAMES: Record<number, string> = { 1: 'EPERM', 2: 'ENOENT', 5: 'EIO', 12: 'ENOMEM', 16: 'EBUSY', 19: 'ENODEV', 22: 'EINVAL', 110: 'ETIMEDOUT' };
const errnoName = (e: number) => ERRNO_NAMES[e] ?? `errno ${e}`;

/** What the program left: one Leak per thing, in a fixed order (modules, endpoints, nodes, groups, kmemleak). */
export function compareResources(before: GuestResources, after: GuestResources, endpoints: readonly EndpointLeft[] = []): Leak[] {
  const out: Leak[] = [];
  for (const m of Object.keys(before.refcnt).sort()) {
    const b = before.refcnt[m]!;
    const a = after.refcnt[m];
    if (a === undefined) {
      out.push({ title: `leak check: module ${m} gone after the program`, detail: `module ${m}: refcnt ${b} before the program, not loaded after it` });
    } else if (a !== b) {
      // no numbers in the title: a bug leaking one file or two is one finding, and the minimizer
      // keeps a program while it shows the same title
      const title = a > b ? `leak: ${m} refcnt above its value before the program` : `leak check: ${m} refcnt below its value before the program`;
      out.push({ title, detail: `module ${m}: refcnt ${b} before the program, ${a} after it (every open vfio or iommufd file holds one)` });
    }
  }
  const named = new Set<string>();
  for (const e of endpoints) {
    named.add(e.address);
    if (e.what === 'unbind') {
      const how = e.errno === ETIMEDOUT ? 'its unbind did not return' : `its unbind failed with ${errnoName(e.errno)}`;
      out.push({ title: `leak: endpoint ${e.address} still on vfio-pci`, detail: `endpoint ${e.address}: ${how} after the program (a vfio file of the device still open)` });
    } else if (e.errno === EBUSY) {
      out.push({ title: `leak: endpoint ${e.address} not back on ${TEST_DRIVER}`, detail: `endpoint ${e.address}: binding ${TEST_DRIVER} after the program failed with EBUSY (its IOMMU group still has a user DMA owner)` });
    } else {
      out.push({ title: `leak: endpoint ${e.address} not back on ${TEST_DRIVER}`, detail: `endpoint ${e.address}: binding ${TEST_DRIVER} after the program failed with ${errnoName(e.errno)}` });
    }
  }
  for (const d of setMinus(after.vfioPci, before.vfioPci)) {
    if (!named.has(d)) out.push({ title: `leak: ${d} still on vfio-pci`, detail: `PCI device ${d} is bound to vfio-pci after the program, not before it` });
  }
  for (const n of setMinus(after.vfioNodes, before.vfioNodes)) {
    out.push({ title: `leak: /dev/vfio/${n} left after the program`, detail: `/dev/vfio/${n} exists after the program, not before it` });
  }
  for (const n of setMinus(before.vfioNodes, after.vfioNodes)) {
    out.push({ title: `leak check: /dev/vfio/${n} gone after the program`, detail: `/dev/vfio/${n} existed before the program, not after it` });
  }
  for (const g of [...new Set([...Object.keys(before.iommuGroups), ...Object.keys(after.iommuGroups)])].sort((x, y) => Number(x) - Number(y))) {
    const b = before.iommuGroups[g];
    const a = after.iommuGroups[g];
    const text = (d: readonly string[] | undefined) => (d === undefined ? 'absent' : `{${[...d].sort().join(', ')}}`);
    if (text(a) === text(b)) continue;
    const title = b === undefined ? `leak: IOMMU group ${g} left after the program` : a === undefined ? `leak check: IOMMU group ${g} gone after the program` : `leak check: IOMMU group ${g} changed by the program`;
    out.push({ title, detail: `/sys/kernel/iommu_groups/${g}: ${text(b)} before the program, ${text(a)} after it` });
  }
  if (after.kmemleak) {
    const seen = new Set((before.kmemleak ?? []).map((o) => o.address));
    const fresh = after.kmemleak.filter((o) => !seen.has(o.address));
    for (const frame of [...new Set(fresh.map((o) => o.frame))].sort()) {
      const objs = fresh.filter((o) => o.frame === frame);
      out.push({ title: `leak: kmemleak unreferenced object from ${frame}`, detail: `kmemleak: ${objs.length} unreferenced object(s) allocated in ${frame}: ${objs.map((o) => `${o.address} (${o.size} bytes)`).join(', ')}` });
    }
  }
  return out;
}

function setMinus(a: readonly string[], b: readonly string[]): string[] {
  const s = new Set(b);
  return [...new Set(a)].filter((x) => !s.has(x)).sort();
}

const ALLOCATORS = /^(?:kmem_cache_alloc|kmalloc|__kmalloc|kmalloc_trace|__kmalloc_cache|kzalloc|kvmalloc|__kvmalloc|krealloc|kmemdup|kstrdup|vmalloc|__vmalloc|alloc_pages|__alloc_pages|slab_post_alloc_hook|kmemleak_alloc|__do_kmalloc|__kmem_cache_alloc|kvzalloc|mempool_alloc|idr_alloc|xa_alloc|__xa_alloc|xas_alloc|radix_tree_node_alloc)/;

/**
 * /sys/kernel/debug/kmemleak's reports ("unreferenced object 0x… (size N):", then comm, hex
 * dump and backtrace lines "[<…>] func+0x…/0x…"); text is untrusted: parsed defensively.
 */
export function parseKmemleak(text: string): KmemleakObject[] {
  const out: KmemleakObject[] = [];
  let cur: KmemleakObject | undefined;
  for (const line of text.split('\n')) {
    const head = /^unreferenced object (0x[0-9a-f]{1,16}) \(size (\d{1,12})\):/.exec(line);
    if (head) {
      cur = { address: head[1]!, size: Number(head[2]), frame: '?' };
      out.push(cur);
      continue;
    }
    const fr = /^\s+\[<[0-9a-f]{1,16}>\] ([A-Za-z0-9_.]{1,128})\+0x/.exec(line);
    if (cur && cur.frame === '?' && fr) {
      const f = fr[1]!.replace(/\.(?:isra|constprop|part|cold)(?:\.\d+)?$/, '');
      if (!ALLOCATORS.test(f)) cur.frame = f;
    }
  }
  return out;
}
