/**
 * Every op of the program format, by family, in opcode order (the order of OP_KINDS, of the docs
 * tables and of the generator's weight table). A family is a module of descriptions
 * (harness/ops/<family>.ts) plus its model (harness/model/<family>.ts).
 */
import * as core from './core.js';
import * as dma from './dma.js';
import type { Fields, HandleKind, OpDesc, OpValue } from './describe.js';
import * as iommufd from './iommufd.js';
import * as sva from './sva.js';
import * as uacce from './uacce.js';
import * as vfio from './vfio.js';

const ALL = [
  uacce.open,
  core.close,
  core.dup,
  uacce.mmap,
  core.alloc,
  core.munmap,
  core.mremap,
  core.madvise,
  core.touch,
  uacce.submit,
  uacce.ioctl,
  uacce.poll,
  core.fork,
  core.exit,
  uacce.remove,
  uacce.add,
  uacce.sysfsRead,
  uacce.sysfsWrite,
  core.mprotect,
  sva.pasid,
  vfio.pciBind,
  vfio.pciUnbind,
  vfio.vfioGroup,
  vfio.vfioContainer,
  vfio.vfioSetContainer,
  vfio.vfioUnsetContainer,
  vfio.vfioSetIommu,
  vfio.vfioDevice,
  vfio.vfioStatus,
  iommufd.iommufdOpen,
  iommufd.ioasAlloc,
  iommufd.ioasMap,
  iommufd.ioasUnmap,
  iommufd.vfioCdev,
  iommufd.vfioBindIommufd,
  iommufd.hwptAlloc,
  iommufd.vfioAttach,
  iommufd.vfioDetach,
  iommufd.iommufdDestroy,
  dma.epDma,
  dma.vfioMapDma,
  dma.vfioUnmapDma,
] as const;

type AnyDesc = (typeof ALL)[number];
type ValueOfDesc<D> = D extends OpDesc<infer K, infer F> ? OpValue<K, F> : never;

/** One op of a program. */
export type Op = ValueOfDesc<AnyDesc>;
export type OpKind = Op['op'];
export type OpOf<K extends OpKind> = Extract<Op, { op: K }>;

/** The descriptions in opcode order. */
export const OP_DESCS: readonly OpDesc[] = [...(ALL as readonly OpDesc<string, Fields>[])].sort((a, b) => a.opcode - b.opcode);

export const OP_KINDS: readonly OpKind[] = OP_DESCS.map((d) => d.op as OpKind);

const BY_KIND = new Map(OP_DESCS.map((d) => [d.op, d]));

/** The description of an op kind (untyped fields: for the generic sites). */
export function descOf(kind: string): OpDesc {
  const d = BY_KIND.get(kind);
  if (d === undefined) throw new Error(`no op description for ${kind}`);
  return d;
}

/** An op's fields by name, for the generic sites. */
export function fieldsOf(op: Op): Record<string, unknown> {
  return op as unknown as Record<string, unknown>;
}

/** The call in finding titles: "mmap", "ioctl START_Q", "sysfs_read api". */
export function titleWhat(op: Op): string {
  return descOf(op.op).title?.(op as never) ?? op.op;
}

/** The names an op creates (descriptors, mappings, tasks) or may create (a place), with their handle kinds. */
export function createdNames(op: Op): [HandleKind, string][] {
  const o = fieldsOf(op);
  const out: [HandleKind, string][] = [];
  for (const [field, f] of Object.entries(descOf(op.op).fields)) {
    if (f.spec.t === 'handle' && f.spec.role !== 'use' && typeof o[field] === 'string') out.push([f.spec.kind, o[field] as string]);
  }
  return out;
}

export { IOCTL_NAMES, ioctlNumber, SYSFS_ATTRS, type IoctlCmd, type SysfsAttr } from './uacce.js';
