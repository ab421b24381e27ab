/**
 * The guest's real IOMMU group layout, read from sysfs (/sys/kernel/iommu_groups/<n>/devices/),
 * and the check that a program's device.groups is there. A machine profile says what layout it
 * is built for (machine.ts endpointGroups); this reads what the guest kernel made of it, so a
 * program never runs its ownership ops on a layout it was not written for.
 */
import { UserError } from '../util/errors.js';
import { groupsText, hasGroups, type MachineProfile } from './machine.js';

/** Reads a guest file or directory (a directory: its entry names, one a line); undefined if absent. */
export type ReadGuest = (path: string) => Promise<string | undefined>;

const GROUPS_DIR = '/sys/kernel/iommu_groups';
const NAME_RE = /^[0-9]{1,6}$/;
const PCI_RE = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;

/** The guest's groups, as sets of PCI addresses (sysfs names), by group number. */
export async function readIommuGroups(read: ReadGuest): Promise<Map<number, string[]>> {
  const out = new Map<number, string[]>();
  const list = await read(GROUPS_DIR);
  if (list === undefined) return out;
  for (const name of list.split('\n').filter((n) => NAME_RE.test(n))) {
    const devs = await read(`${GROUPS_DIR}/${name}/devices`);
    out.set(Number(name), (devs ?? '').split('\n').filter((d) => PCI_RE.test(d)));
  }
  return out;
}

/** The endpoints' layout: each group that holds an endpoint, as sorted endpoint indexes. */
export function endpointLayout(groups: ReadonlyMap<number, readonly string[]>, addresses: readonly string[]): number[][] {
  const out: number[][] = [];
  for (const devs of groups.values()) {
    const eps = devs.map((d) => addresses.indexOf(d)).filter((i) => i >= 0);
    if (eps.length > 0) out.push(eps.sort((a, b) => a - b));
  }
  return out.sort((a, b) => a[0]! - b[0]!);
}

/** Null if the guest has every group the program wants, else the one-line reason. */
export function layoutProblem(want: readonly (readonly number[])[], have: readonly (readonly number[])[], machine: MachineProfile): string | null {
  if (hasGroups(have, want)) return null;
  return `the program needs the IOMMU groups ${groupsText(want)} but the guest (machine ${machine.name}) has ${have.length > 0 ? groupsText(have) : 'no endpoint in any group'}; run it on a machine with that layout, or change device.groups`;
}

const cache = new WeakMap<object, number[][]>();

/**
 * Refuse a program whose device.groups the guest lacks (UserError, one line). The layout is read
 * once per guest (`key`: the guest object) and never changes while it runs.
 */
export async function checkGroupLayout(key: object, read: ReadGuest, machine: MachineProfile, want: readonly (readonly number[])[] | undefined): Promise<void> {
  if (want === undefined) return;
  let have = cache.get(key);
  if (have === undefined) {
    have = endpointLayout(await readIommuGroups(read), machine.endpointAddresses);
    cache.set(key, have);
  }
  const problem = layoutProblem(want, have, machine);
  if (problem) throw new UserError(problem);
}
