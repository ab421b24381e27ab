/**
 * Reading the guest's resources for the leak check (compare.ts) through the agent's file reads
 * (C lines, between programs only), and the baseline: read once per guest, before its first
 * checked program, when the guest is as setup left it.
 */
import type { ReadGuest } from '../vm/groups.js';
import { WATCHED_MODULES, parseKmemleak, type GuestResources } from './compare.js';

const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const PCI_RE = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;
const GROUPS_DIR = '/sys/kernel/iommu_groups';
export const KMEMLEAK = '/sys/kernel/debug/kmemleak';

/** Reads at most 16 files at a time (the agent queues 32 host lines). */
async function readAll(paths: readonly string[], read: ReadGuest): Promise<(string | undefined)[]> {
  const out: (string | undefined)[] = [];
  for (let i = 0; i < paths.length; i += 16) out.push(...(await Promise.all(paths.slice(i, i + 16).map(read))));
  return out;
}

const lines = (t: string | undefined) => (t ?? '').split('\n').filter((l) => l.length > 0);

/**
 * The guest's resources now. The reads go out together (the agent answers C lines in order, so
 * only one round trip through the serial line is waited for each stage, not one per file).
 */
export async function readResources(read: ReadGuest): Promise<GuestResources> {
  const [counts, dev, vfioPciText, groupsText, km] = await Promise.all([
    Promise.all(WATCHED_MODULES.map((m) => read(`/sys/module/${m}/refcnt`))),
    read('/dev/vfio'),
    read('/sys/bus/pci/drivers/vfio-pci'),
    read(GROUPS_DIR),
    // kmemleak (CONFIG_DEBUG_KMEMLEAK; debugfs is mounted by the guest's init): what its own
    // periodic scan found, the first 2000 bytes (one agent read); no scan is triggered (the agent
    // only reads files), so an object shows after the scan that finds it. Not yet run on a
    // kernel that has kmemleak.
    read(KMEMLEAK),
  ]);
  const refcnt: Record<string, number> = {};
  WATCHED_MODULES.forEach((m, i) => {
    const t = (counts[i] ?? '').trim();
    if (/^\d{1,9}$/.test(t)) refcnt[m] = Number(t);
  });
  const vfioNodes = lines(dev).filter((n) => NAME_RE.test(n));
  const groups = lines(groupsText).filter((n) => /^\d{1,6}$/.test(n));
  const [cdevs, members] = await Promise.all([
    vfioNodes.includes('devices') ? read('/dev/vfio/devices') : Promise.resolve(undefined),
    readAll(groups.map((g) => `${GROUPS_DIR}/${g}/devices`), read),
  ]);
  vfioNodes.push(...lines(cdevs).filter((n) => NAME_RE.test(n)).map((n) => `devices/${n}`));
  const iommuGroups: Record<string, string[]> = {};
  groups.forEach((g, i) => (iommuGroups[g] = lines(members[i]).filter((d) => PCI_RE.test(d))));
  const res: GuestResources = { refcnt, vfioNodes: vfioNodes.sort(), vfioPci: lines(vfioPciText).filter((n) => PCI_RE.test(n)), iommuGroups };
  if (km !== undefined) res.kmemleak = parseKmemleak(km);
  return res;
}

const baselines = new WeakMap<object, GuestResources>();

/** The resources of a guest after its setup: read on the first call for `key` (the guest object), kept after. */
export async function leakBaseline(key: object, read: ReadGuest): Promise<GuestResources> {
  let b = baselines.get(key);
  if (b === undefined) {
    b = await readResources(read);
    baselines.set(key, b);
  }
  return b;
}
