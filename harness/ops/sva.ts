/**
 * Ops of shared virtual addressing (SVA): what a queue bound to its opener's address space adds.
 * Work items that reach the task's memory through the IOMMU are `submit` (uacce.ts) on a device
 * with `sva`; this family reads back what the bind gave the queue. Its model is
 * harness/model/sva.ts.
 */
import { defineOp, handle } from './describe.js';

/**
 * Read the PASID register of a queue through its MMIO mapping, as the program can check it
 * (the value itself is the IOMMU's choice): `none` for 0 (no bind), `p<k>` for the k-th distinct
 * PASID this task has read (a fork child starts with its parent's list), `bad 0x…` for a value
 * above 20 bits (guest/runtime/svt_runtime.h pasid_seen).
 */
export const pasid = defineOp({
  op: 'pasid',
  opcode: 20,
  family: 'sva',
  doc: "read a queue's PASID (SVT_REG_PASID of its MMIO mapping): `none`, `p<k>` (the k-th distinct PASID this task has seen) or `bad 0x…`",
  fields: {
    map: handle('map', 'use', { doc: "the queue's MMIO mapping" }),
  },
  result: 'data',
  resultDoc: '0; `data`: `none`, `p<k>` or `bad 0x…` (the k-th distinct PASID seen by this task and its forebears)',
  faults: true,
  c: (v) => ({ body: [`pasid_seen(r, *(volatile uint32_t *)(uintptr_t)(${v.slot('map')} + SVT_REG_PASID));`] }),
  call: (op) => `read PASID at ${op.map} + SVT_REG_PASID`,
  comment: (op) => `the PASID uacce gave the queue mapped at ${op.map} (SVT_REG_PASID), numbered by first sight`,
  describe: (op) => `read the PASID of the queue mapped at ${op.map}`,
  sheet: 'SVA, when a bind succeeds',
  weight: 3,
});
