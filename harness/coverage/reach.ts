/**
 * Rules a valid program cannot reach, and why: the fuzz summary lists them apart from the rules
 * a run merely did not reach, and the reach tests leave them out. Everything else in RULES must
 * be reachable by generated programs (test/unit/generator-reach.test.ts).
 */
import { PARENT_FACTS } from '../device/testdev.js';
import type { KernelProfile } from '../model/index.js';

/** Unreachable on every kernel: the program format rules the situation out. */
export const UNREACHABLE_RULES: Readonly<Record<string, string>> = {
  'task.dead': 'the parser refuses ops of a task that has exited (in the model a task ends only by its exit op)',
  'program.malformed': 'the parser refuses a name created twice or used before it is created',
  'dev.nonexistent': 'the parser refuses a device index beyond device.devices',
  ...(PARENT_FACTS.hasIommuGroup
    ? {}
    : { 'open.sva-killswitch': 'the test device has no IOMMU group (PARENT_FACTS), so no kernel tries an SVA bind the kill switch would refuse' }),
};

/** Rules that also cannot be reached on this kernel (its profile lacks what they are about). */
export function profileUnreachable(p: KernelProfile): Record<string, string> {
  const out: Record<string, string> = { ...UNREACHABLE_RULES };
  if (p.sva !== 'bind-every-open') out['open.sva-nogroup'] = `${p.series.join('.')} drops UACCE_DEV_SVA at registration: open never binds`;
  if (!p.sysfsIsolate) {
    const why = `${p.series.join('.')} has no isolate_strategy attribute`;
    for (const r of ['sysfs.read-noop', 'sysfs.write-noop', 'sysfs.write-invalid', 'sysfs.write', 'sysfs.write-empty']) out[r] = why;
  }
  return out;
}
