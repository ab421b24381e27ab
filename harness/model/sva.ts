/**
 * The model's SVA part (harness/ops/sva.ts, and what a bind changes for uacce's ops): one PASID
 * per address space, shared by every queue it opens on any device; work items of a bound queue
 * reach the opener's address space through the IOMMU as the opener's own accesses would
 * (translation of its page tables, page requests resolved by handle_mm_fault), and fault once
 * that address space is gone. Sources: Debian 7.2.13's drivers/iommu/iommu-sva.c,
 * drivers/iommu/intel/svm.c, drivers/misc/uacce/uacce.c; docs/uacce-semantics.md "SVA, when a
 * bind succeeds"; docs/test-device.md "The endpoint".
 *
 * A PASID's number is the IOMMU's choice: the model names it by its address space (pasidSymbol:
 * 0xf0000000 + the mm's key, a value no PASID has, as it has 20 bits; a program could store it
 * into the register, but the generator's stores put at most 16 bits into that half) and the
 * pasid op reports PASIDs by order of first sight in the task, as the agent does.
 */
import { ok } from '../program/outcome.js';
import type { OpPasid } from '../program/types.js';
import { SVT_REG_PASID } from '../device/abi.js';
import type { Word } from '../device/memory.js';
import { slotPage, userLoad, userStore, type Access } from './kernel.js';
import { res, sigResult, type ModelOps, type OpResult } from './result.js';
import type { Draft, ModelState, Task } from './state.js';

export const SVA_RULES = {
  'open.sva-bind':
    "drivers/iommu/iommu-sva.c iommu_sva_bind_device() (7.2): the address space's first bind allocates its PASID (iommu_alloc_mm_data: iommu_alloc_global_pasid, kept in mm->iommu_mm); later binds of the same mm, on this or another device, reuse it, and a bind of the same (device, mm) takes a reference on the existing handle; uacce_bind_queue() gives the queue iommu_sva_get_pasid(handle) (Spec \"SVA, when a bind succeeds\")",
  'pasid.read':
    'SVT_REG_PASID holds q->pasid (TD "Queues"): the PASID of the opener\'s address space, one per mm (iommu-sva.c 7.2); reported by order of first sight in the task, a fork child starting with its parent\'s list',
  'pasid.none': 'SVT_REG_PASID is 0 for a queue without a bind (TD "Devices": platform backend, or a kernel whose profile drops UACCE_DEV_SVA)',
  'pasid.unknown':
    'the register holds a value the model does not know (a store of unknown data), or a PASID that may be the reused number of an address space already dropped (mm_pasid_drop() frees it at __mmdrop; ida_alloc_range picks the lowest free)',
  'pasid.bad': 'a value above the 20 bits of a PCIe PASID can only be a user store into the register page',
  'submit.sva-translated':
    'TD "The endpoint": the work item is a PASID-tagged request translated through the opener\'s page tables (first-level translation, intel/svm.c), a missing or read-only translation a page request that iommu_sva_handle_mm() (iommu-sva.c 7.2) resolves with handle_mm_fault() when the vma allows the access; so it reaches what the opener\'s own load or store would, queue mappings included (remap_pfn_range PTEs are present), and faults where that access would fault',
  'submit.sva-mm-gone':
    'intel/svm.c intel_mm_release() (7.2): when the opener\'s address space goes (exit_mmap) the PASID entry is torn down, so the queue\'s later requests fault and reach no memory (Spec "SVA, when a bind succeeds")',
} as const;

/** Where PASID symbols start: above the 20 bits of any real PASID. */
const SYMBOL_BASE = 0xf0000000;

/** The PASID of address space mmId, as the model names it. */
export function pasidSymbol(mmId: number): number {
  return (SYMBOL_BASE + mmId) >>> 0;
}

/** Whether a queue is bound to its opener's address space (its PASID is a bond's). */
export function isBound(q: { pasid: Word }): boolean {
  return q.pasid !== null && q.pasid >= SYMBOL_BASE;
}

/**
 * Whether mm's PASID may have been freed (and its number reused): mm_pasid_drop() runs at
 * __mmdrop, once the task has exited and no bond or queue holds the mm (iommu_sva_bind_device()
 * mmgrab()s it for the domain; the test driver mmgrab()s the opener's mm for each queue). The
 * kernel may drop it later than that (lazy TLB references), never earlier.
 */
function pasidMayBeFree(s: ModelState, mmId: number): boolean {
  const mm = s.mms.get(mmId);
  if (mm === undefined || mm.alive) return false;
  for (const q of s.queues.values()) if (q.openerMm === mmId) return false;
  return true;
}

/** The bind of an open that succeeded: the queue's PASID (the mm's, allocated at its first bind). */
export function bindQueue(d: Draft, mmId: number): Word {
  const mm = d.s.mms.get(mmId)!;
  if (mm.pasid === null) d.mm(mmId).pasid = pasidSymbol(mmId);
  return pasidSymbol(mmId);
}

/** The pasid op: read SVT_REG_PASID through the mapping, numbered by first sight in this task. */
function doPasid(d: Draft, task: Task, op: OpPasid): OpResult {
  const isSymbol = (w: number): boolean => w >= SYMBOL_BASE && d.s.mms.get(w - SYMBOL_BASE)?.pasid === w;
  const slot = d.s.mapSlots.get(op.map);
  if (slot === undefined) return sigResult({ ok: false, signal: 'SIGSEGV', rule: 'touch.unmapped' });
  const a = userLoad(d, task.mm, slotPage(slot), SVT_REG_PASID / 4, 1);
  if (!a.ok) return sigResult(a);
  const v = a.v[0];
  if (v === null || v === undefined) {
    // the task's list now holds something unknown: later numbers are unknown too
    d.task(task.name).pasidsSeen = [...task.pasidsSeen, null];
    return res(ok(), 'pasid.unknown');
  }
  if (v === 0) return res(ok('none'), 'pasid.none');
  if (!isSymbol(v) && v > 0xfffff) return res(ok(`bad 0x${v.toString(16)}`), 'pasid.bad');
  const seen = task.pasidsSeen;
  const k = seen.indexOf(v);
  if (k < 0) d.task(task.name).pasidsSeen = [...seen, v];
  // A number the model cannot tell apart from another: an unknown entry before it, a concrete
  // value next to symbols (a store of the same number), or a symbol whose number may be reused.
  const known = (w: Word | null): boolean => w !== null && isSymbol(w) === isSymbol(v);
  const reusable = (w: Word | null): boolean => w !== null && isSymbol(w) && pasidMayBeFree(d.s, w - SYMBOL_BASE);
  const upTo = k < 0 ? seen : seen.slice(0, k);
  if (upTo.some((w) => !known(w) || reusable(w)) || (isSymbol(v) && reusable(v))) return res(ok(), 'pasid.unknown');
  return res(ok(`p${k < 0 ? seen.length : k}`), 'pasid.read');
}

/** How a bound queue's work item ends (TD "The endpoint"): translated, or a fault. */
export type SvaAccess = { ok: true; v: Word[] } | { ok: false } | { ok: 'unknown' };

/**
 * A work item's access of a bound queue: what the opener's own access at that address would do
 * (submit.sva-translated), a fault where that access would fault or once the opener's address
 * space is gone (submit.sva-mm-gone). `vals`: a WRITE64's two words; none: a READ64.
 */
export function svaAccess(d: Draft, mmId: number, lo: Word, hi: Word, vals?: readonly Word[]): SvaAccess {
  const mm = d.s.mms.get(mmId);
  if (mm === undefined || !mm.alive) return { ok: false };
  if (lo === null || hi === null) return { ok: 'unknown' };
  if (hi >= 0x10000) return { ok: false };
  const pageNo = hi * 0x100000 + (lo >>> 12);
  const off = lo & 0xfff;
  if ((off & 7) !== 0) return { ok: 'unknown' };
  const v = mm.vmas.find((x) => x.start <= pageNo && pageNo < x.start + x.pages);
  // a private copy of a queue page: whether the IOMMU write goes to the copy or makes one is
  // handle_mm_fault's COW path of a VM_PFNMAP vma, not modelled
  if (v !== undefined && v.kind === 'uacce' && !v.shared) return { ok: 'unknown' };
  if (vals === undefined) {
    const a: Access = userLoad(d, mmId, pageNo, off >> 2, 2);
    return a.ok ? { ok: true, v: a.v } : { ok: false };
  }
  const r = userStore(d, mmId, pageNo, off >> 2, vals, 'raw');
  return r.ok ? { ok: true, v: [] } : { ok: false };
}

export const SVA_MODEL: ModelOps<'pasid'> = {
  pasid: { check: doPasid },
};
