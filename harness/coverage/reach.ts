/**
 * Rules a valid program cannot reach, and why: the fuzz summary lists them apart from the rules
 * a run merely did not reach, and the reach tests leave them out. Everything else in RULES must
 * be reachable by generated programs (test/unit/generator-reach.test.ts), the rules of
 * OVERLAP_ONLY_RULES on a guest only.
 */
import type { KernelProfile } from '../model/index.js';

/** Unreachable on every kernel: the program format rules the situation out. */
export const UNREACHABLE_RULES: Readonly<Record<string, string>> = {
  'task.dead': 'the parser refuses ops of a task that has exited (in the model a task ends only by its exit op)',
  'program.malformed': 'the parser refuses a name created twice or used before it is created',
  'dev.nonexistent': 'the parser refuses a device index beyond device.devices',
  // device.sva=true is the PCI backend, whose parent has an IOMMU group (parentFacts): its
  // binds never fail for want of one, and generated programs keep sva off until the model's SVA
  // part, so the kill switch is reached only by hand-written programs (test/integration/sva.test.ts)
  'open.sva-nogroup': 'the only SVA parent, the svadiff-sva PCI endpoint, has an IOMMU group (parentFacts)',
  'open.sva-killswitch': 'generated programs keep device.sva off until the model describes SVA work items',
  // only kernels without IOMMU SVA (Debian arm64) reach it, and only with device.sva, which no
  // arm64 machine offers yet (harness/vm/machine.ts): the model's unit tests check it
  'open.sva-unsupported': 'generated programs keep device.sva off, and arm64 has no SVA machine',
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
  if (!p.sysfsIsolate) {
    const why = `${p.series.join('.')} has no isolate_strategy attribute`;
    for (const r of ['sysfs.read-noop', 'sysfs.write-noop', 'sysfs.write-invalid', 'sysfs.write', 'sysfs.write-empty']) out[r] = why;
  }
  return out;
}
