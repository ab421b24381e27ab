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

const lines = (t: string | undefined) => (t ?? '').split('\n').filter((l) => l.length > 0);

/** The guest's resources now. */
export async function readResources(read: ReadGuest): Promise<GuestResources> {
  const refcnt: Record<string, number> = {};
  for (const m of WATCHED_MODULES) {
    const t = await read(`/sys/module/${m}/refcnt`);
    const n = t === undefined ? NaN : Number(t.trim());
    if (/^\d{1,9}$/.test((t ?? '').trim()) && Number.isSafeInteger(n)) refcnt[m] = n;
  }
  const vfioNodes = lines(await read('/dev/vfio')).filter((n) => NAME_RE.test(n));
  if (vfioNodes.includes('devices')) vfioNodes.push(...lines(await read('/dev/vfio/devices')).filter((n) => NAME_RE.test(n)).map((n) => `devices/${n}`));
  const vfioPci = lines(await read('/sys/bus/pci/drivers/vfio-pci')).filter((n) => PCI_RE.test(n));
  const iommuGroups: Record<string, string[]> = {};
  for (const g of lines(await read(GROUPS_DIR)).filter((n) => /^\d{1,6}$/.test(n))) {
    iommuGroups[g] = lines(await read(`${GROUPS_DIR}/${g}/devices`)).filter((d) => PCI_RE.test(d));
  }
  const res: GuestResources = { refcnt, vfioNodes: vfioNodes.sort(), vfioPci, iommuGroups };
  const km = await read(KMEMLEAK);
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
