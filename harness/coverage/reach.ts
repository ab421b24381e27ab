/**
 * Rules a valid program cannot reach, and why: the fuzz summary lists them apart from the rules
 * a run merely did not reach, and the reach tests leave them out. Everything else in RULES must
 * be reachable by generated programs (test/unit/generator-reach.test.ts), the rules of
 * OVERLAP_ONLY_RULES on a guest only.
 */
import type { KernelProfile } from '../model/index.js';
import { svaBinds } from '../model/profile.js';
import { SVA_RULES } from '../model/sva.js';
import { RULES } from '../model/rules.js';
import { CORE_RULES } from '../model/core.js';
import { UACCE_RULES } from '../model/uacce.js';
import { VFIO_RULES } from '../model/vfio.js';
import { IOMMUFD_RULES } from '../model/iommufd.js';

/** The vfio family's rules of the group path (vfio groups, containers, their files): reached only on a kernel with VFIO_GROUP. */
const GROUP_PATH_RULE = /^(vgroup|container\.open|setc|unsetc|setiommu|getdev|status|vfio\.|ioctl\.|vclose|vdup|unbind\.vfio-open)/;

/** Unreachable on every kernel: the program format rules the situation out. */
export const UNREACHABLE_RULES: Readonly<Record<string, string>> = {
  'task.dead': 'the parser refuses ops of a task that has exited (in the model a task ends only by its exit op)',
  'program.malformed': 'the parser refuses a name created twice or used before it is created',
  'dev.nonexistent': 'the parser refuses a device index beyond device.devices',
  // device.sva=true is the PCI backend, whose parent has an IOMMU group (parentFacts): its
  // binds never fail for want of one; the generator makes SVA programs only where binds succeed
  // (svaBinds), so the kill switch is reached only by hand-written programs (test/integration/sva.test.ts)
  'open.sva-nogroup': 'the only SVA parent, the svadiff-sva PCI endpoint, has an IOMMU group (parentFacts)',
  'open.sva-killswitch': 'generated programs use device.sva only on kernels whose SVA binds succeed (svaBinds)',
  // only kernels without IOMMU SVA (Debian arm64) reach it, and only with device.sva, which the
  // generator sets only where binds succeed (svaBinds) and no arm64 machine offers (harness/vm/machine.ts): the model's unit tests check it
  'open.sva-unsupported': 'generated programs use device.sva only where SVA binds succeed, which no arm64 kernel does',
  // the PASID half of SVT_REG_PASID's word holds what a store put there: value64 puts at most 16 bits into a high half
  'pasid.bad': 'generated stores put at most 16 bits into the PASID register (value64), never a value above 20 bits',
};

/**
 * Rules only ops that overlap in real time reach (a concurrent group run on a guest); the
 * model-only run (model-run.ts) puts a group's ops one after the other, so it never does. A fuzz
 * run can, and counts them like every other rule.
 */
export const OVERLAP_ONLY_RULES: Readonly<Record<string, string>> = {
  'open.parent-gone': 'an open that straddles a removal of its device (oracle/check.ts plansOf)',
  'sysfs.read-removed': 'a sysfs read that straddles a removal of its device (oracle/check.ts plansOf)',
};

/** Rules that also cannot be reached on this kernel (its profile lacks what they are about). */
export function profileUnreachable(p: KernelProfile): Record<string, string> {
  const out: Record<string, string> = { ...UNREACHABLE_RULES };
  if (!svaBinds(p)) {
    const why = `generated programs use device.sva only where SVA binds succeed (not ${p.series.join('.')}: ${p.svaBindKillSwitch ? "Debian's kill switch" : 'no SVA machine'})`;
    for (const r of Object.keys(SVA_RULES)) out[r] = why;
  }
  if (!p.vfioPaths.group) {
    const why = `the kernel has no VFIO_GROUP: the generator draws no group path op (${p.release})`;
    for (const r of Object.keys(VFIO_RULES)) if (GROUP_PATH_RULE.test(r)) out[r] = why;
    out['container.absent'] = why;
  }
  if (!p.vfioPaths.iommufd) {
    const why = `the kernel has no IOMMUFD and VFIO_DEVICE_CDEV: the generator draws no iommufd op (${p.release})`;
    for (const r of Object.keys(IOMMUFD_RULES)) if (r !== 'container.absent') out[r] = why;
  }
  if (!p.vfioPaths.group || !p.vfioPaths.iommufd) out['bind.group-open'] = 'a cdev bind blocked by an open vfio group needs both VFIO_GROUP and the device cdev';
  if (!p.sysfsIsolate) {
    const why = `${p.series.join('.')} has no isolate_strategy attribute`;
    for (const r of ['sysfs.read-noop', 'sysfs.write-noop', 'sysfs.write-invalid', 'sysfs.write', 'sysfs.write-empty']) out[r] = why;
  }
  return out;
}

/** Core rules of no one op kind: any op on a descriptor or a task, any program. */
const ANY_OP_RULE_PREFIXES = ['fd', 'task', 'program'];

/**
 * The model rules a fuzz family's programs can fire, which its summary counts and lists as never
 * reached: the uacce family's are the core, uacce and sva rules; the vfio family's (DMA
 * ownership: vfio, and what joins it, iommufd and endpoint DMA) are every other rule and the core
 * rules of the core op kinds it draws (`close.ok` for close, …: rule ids begin with their op) or
 * of any op (`fd.ebadf`).
 */
export function familyRules(family: 'uacce' | 'vfio', weights: Readonly<Record<string, number>>): Set<string> {
  const uacce = new Set([...Object.keys(CORE_RULES), ...Object.keys(UACCE_RULES), ...Object.keys(SVA_RULES)]);
  if (family === 'uacce') return uacce;
  const drawn = (op: string) => (weights[op] ?? 0) > 0 || ANY_OP_RULE_PREFIXES.includes(op);
  return new Set([...Object.keys(RULES).filter((r) => !uacce.has(r)), ...Object.keys(CORE_RULES).filter((r) => drawn(r.split('.')[0]!))]);
}
