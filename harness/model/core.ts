/**
 * The model of the core ops (harness/ops/core.ts): descriptors, anonymous memory, the mm calls on
 * any mapping (munmap, mremap, madvise), user accesses, fork and exit. Each op's `check` says
 * what the kernel is meant to do in a state (the outcome, the rule that decides it, the changes
 * to a Draft), as a fast-check command checks its model; the agent runs the op on the system
 * (its description's C). Every rule cites its source (rules.ts).
 */
import { err, ok, sig } from '../program/outcome.js';
import type { OpAlloc, OpClose, OpDup, OpFork, OpMadvise, OpMprotect, OpMremap, OpMunmap, OpTouch, Prot } from '../program/types.js';
import { hex64, parseHex64, emptyPage, BASE_UNKNOWN, type Page } from '../device/memory.js';
import {
  addRef,
  dropPages,
  dropRef,
  findVma,
  findVmaFrom,
  insertVma,
  isWild,
  sliceVma,
  slotPage,
  unmapRange,
  userLoad,
  userStore,
} from './kernel.js';
import { res, sigResult, type ModelOps, type OpResult } from './result.js';
import type { KernelProfile } from './profile.js';
import type { AnonVma, Draft, Task, Vma } from './state.js';
import { vfioClose, vfioDup, vfioExit, vfioFile, vfioFork } from './vfio.js';

/** The rules of these ops, with where each comes from (rules.ts says how sources are cited). */
export const CORE_RULES = {
  'task.dead': 'AP "Tasks": an op sent to a task that has exited (or never existed) gets ESRCH',
  'program.malformed': 'the program reuses a name or names a missing object; parse.ts rejects such programs',
  'fd.ebadf': 'fget() of the fd the task does not have (the agent passes -1): EBADF',
  'close.ok': 'close() drops one file reference; the queue is released at the last one (Spec "Lifetimes")',
  'dup.ok': 'dup() shares the open file description (Spec "Objects")',
  'alloc.ok': 'mmap(MAP_PRIVATE|MAP_ANONYMOUS) at the slot address: zero-filled anonymous memory',
  'munmap.ok':
    'munmap() returns 0 for any page-aligned range; a region stays mapped until every page of its mapping is gone (Spec "mmap")',
  'mremap.dontunmap-resize':
    'mm/mremap.c (6.1/6.12 SYSCALL mremap, 7.2 check_mremap_params): MREMAP_DONTUNMAP with old_len != new_len -> -EINVAL',
  'mremap.overlap': 'mm/mremap.c: source and destination ranges overlap -> -EINVAL',
  'mremap.no-vma': 'mm/mremap.c: no vma at addr (vma_lookup / check_prep_vma / remap_move gap at start) -> -EFAULT',
  'mremap.cross-vma': 'mm/mremap.c vma_to_resize / check_prep_vma: old_len > vm_end - addr -> -EFAULT',
  'mremap.dontunmap-special':
    'mm/mremap.c vma_to_resize (6.1/6.12) / check_prep_vma (7.2): MREMAP_DONTUNMAP on VM_DONTEXPAND|VM_PFNMAP -> -EINVAL (Spec "mremap")',
  'mremap.grow-special':
    'mm/mremap.c: growing a VM_DONTEXPAND|VM_PFNMAP vma (remap_pfn_range sets both) -> -EFAULT (Spec "mremap")',
  'mremap.grow-nospace': 'mm/mremap.c: cannot expand in place and no MREMAP_MAYMOVE -> -ENOMEM',
  'mremap.move-uacce':
    'move_vma()/copy_vma_and_data(): uacce_vma_mremap() returns -EPERM, page tables move back, the original stays intact and its region mapped (Spec "mremap")',
  'mremap.shrink': 'mm/mremap.c: a shrink unmaps the tail; a region stays mapped while a piece remains (Spec "mmap")',
  'mremap.same': 'mm/mremap.c: old_len == new_len without a move is a no-op returning addr',
  'mremap.grow': 'mm/mremap.c: anonymous vma expanded in place (vma_expandable)',
  'mremap.move': 'mm/mremap.c move_vma(): anonymous pages move to the new address',
  'madvise.dofork-io':
    'mm/madvise.c MADV_DOFORK: VM_IO (6.1/6.12) / VM_SPECIAL (7.2) vma -> -EINVAL (Spec "mmap")',
  'madvise.unmapped': 'mm/madvise.c madvise_walk_vmas(): part of the range unmapped -> -ENOMEM after the walk',
  'madvise.ok': 'MADV_DOFORK on anonymous memory clears VM_DONTCOPY: 0',
  'mprotect.ok':
    'mm/mprotect.c do_mprotect_pkey()/mprotect_fixup() (6.1, 6.12, 7.2): every vma of the range gets the new protection, split at the range\'s edges; a queue mapping (VM_IO|VM_PFNMAP from remap_pfn_range) too: uacce_vm_ops has no .mprotect and no .may_split, each piece holds the file (__split_vma get_file()), VM_SPECIAL pieces never merge, and PROT_NONE passes x86 pfn_modify_allowed() (the pages are RAM, the agent is root); mprotect(2): later accesses follow the new protection',
  'mprotect.unmapped': 'mm/mprotect.c do_mprotect_pkey(): no vma at the start of the range -> -ENOMEM, nothing changes; mprotect(2) ENOMEM: pages that are not mapped',
  'mprotect.hole':
    'mm/mprotect.c do_mprotect_pkey(): a gap in the range, or the range running past the last vma -> -ENOMEM, after the vmas before the gap have got the new protection',
  'touch.unmapped': 'no vma at the address (never mapped, unmapped, not inherited by fork): SIGSEGV',
  'touch.prot': 'mprotect(2), mmap(2): an access the vma protection does not allow (PROT_NONE, a store to PROT_READ) raises SIGSEGV',
  'touch.zombie':
    'uacce_remove(): unmap_mapping_range() zapped the mapping and uacce_vm_ops has no .fault: SIGBUS (Spec "Device removal")',
  'touch.read': 'a 64-bit load: device page (TD contents), private COW copy, or anonymous memory',
  'touch.write': 'a 64-bit store; to a private mapping it goes to a private copy of the page',
  'fork.ok':
    'fork: the child shares every queue through inherited fds, copies anonymous memory, gets no uacce mapping (VM_DONTCOPY) (Spec "fork and exit")',
  'exit.ok': 'exit: mappings are closed first (exit_mm), then files (exit_files) (Spec "fork and exit")',
} as const;

// ---------------------------------------------------------------------------------------------
// close, dup

function doClose(d: Draft, task: Task, op: OpClose): OpResult {
  const qid = task.fds.get(op.fd);
  if (qid === undefined && vfioFile(d.s, task.name, op.fd) !== undefined) return vfioClose(d, task, op.fd);
  if (qid === undefined) return res(err('EBADF'), 'fd.ebadf');
  d.taskFds(task.name).delete(op.fd);
  dropRef(d, qid);
  return res(ok(), 'close.ok');
}

function doDup(d: Draft, task: Task, op: OpDup): OpResult {
  const qid = task.fds.get(op.fd);
  const vfile = vfioFile(d.s, task.name, op.fd);
  if (qid === undefined && vfile === undefined) return res(err('EBADF'), 'fd.ebadf');
  if (task.fds.has(op.as) || vfioFile(d.s, task.name, op.as) !== undefined) return res(err('EINVAL'), 'program.malformed');
  if (qid === undefined) return vfioDup(d, task, op.fd, op.as);
  d.taskFds(task.name).set(op.as, qid);
  addRef(d, qid);
  return res(ok(), 'dup.ok');
}

/** mmap(MAP_PRIVATE|MAP_ANONYMOUS) at the mapping's slot. */
function doAlloc(d: Draft, task: Task, op: OpAlloc): OpResult {
  const start = slotPage(d.s.mapSlots.get(op.map)!);
  const mm = d.s.mms.get(task.mm)!;
  if (mm.vmas.some((v) => v.start < start + op.pages && start < v.start + v.pages)) {
    return res(err('EEXIST'), 'program.malformed');
  }
  const v: AnonVma = { kind: 'anon', start, pages: op.pages, prot: 'rw', pgoff: start, anonVma: null, forked: false, account: true };
  insertVma(d, task.mm, v);
  return res(ok(), 'alloc.ok');
}

function doMunmap(d: Draft, task: Task, op: OpMunmap): OpResult {
  const slot = d.s.mapSlots.get(op.map);
  if (slot !== undefined) unmapRange(d, task.mm, slotPage(slot) + op.page, slotPage(slot) + op.page + op.pages);
  return res(ok(), 'munmap.ok');
}

// ---------------------------------------------------------------------------------------------
// mremap, madvise

type Fail = OpResult;

/**
 * The vma checks of mm/mremap.c (vma_to_resize() 6.1/6.12, check_prep_vma() 7.2) for
 * [addr, addr + oldLen) growing to newLen. oldLen is already min(old, new) for a shrinking move.
 */
function resizeCheck(v: Vma, addr: number, oldLen: number, newLen: number, dontunmap: boolean): Fail | null {
  // VM_DONTEXPAND | VM_PFNMAP: set on uacce vmas by remap_pfn_range()
  if (dontunmap && v.kind === 'uacce') return res(err('EINVAL'), 'mremap.dontunmap-special');
  if (oldLen > v.start + v.pages - addr) return res(err('EFAULT'), 'mremap.cross-vma');
  if (newLen === oldLen) return null;
  if (v.kind === 'uacce') return res(err('EFAULT'), 'mremap.grow-special');
  return null;
}

/**
 * Adjacent anonymous vmas merge when they are the same mapping's pieces with the same flags
 * (mm/vma.c is_mergeable_vma(): vm_flags equal, VM_ACCOUNT included; 6.1 mm/mmap.c the same).
 */
export function canMerge(a: AnonVma, b: AnonVma): boolean {
  if (a.prot !== b.prot || a.account !== b.account || a.start + a.pages !== b.start || a.pgoff + a.pages !== b.pgoff) return false;
  // is_mergeable_anon_vma(): the same anon_vma, or one unset and the other not from a fork
  if (a.anonVma === b.anonVma) return true;
  if (a.anonVma === null) return !b.forked;
  if (b.anonVma === null) return !a.forked;
  return false;
}

function doMremap(d: Draft, task: Task, op: OpMremap): OpResult {
  const p = d.s.profile;
  const slot = d.s.mapSlots.get(op.map);
  const mmId = task.mm;
  // the op's C (harness/ops/core.ts mremap): move -> MAYMOVE|FIXED; dontunmap -> MAYMOVE|DONTUNMAP,
  // and FIXED too since `to` always names the destination
  const fixed = op.move || op.dontunmap;
  const dontunmap = op.dontunmap;
  const oldLen = op.old_pages;
  const newLen = op.new_pages;
  const toSlot = op.to === undefined ? undefined : d.s.mapSlots.get(op.to);
  if (slot === undefined || ((fixed || dontunmap) && toSlot === undefined)) return res(err('EINVAL'), 'program.malformed');
  const addr = slotPage(slot) + op.page;
  const newAddr = toSlot === undefined ? 0 : slotPage(toSlot);
  const implied = fixed || dontunmap;

  // SYSCALL mremap 6.1/6.12 / check_mremap_params 7.2: before any vma lookup
  if (dontunmap && oldLen !== newLen) return res(err('EINVAL'), 'mremap.dontunmap-resize');
  const overlaps = implied && addr + oldLen > newAddr && newAddr + newLen > addr;
  if (p.mremapMultiVmaMove) {
    if (overlaps) return res(err('EINVAL'), 'mremap.overlap');
    // 7.2 do_mremap(): vrm_move_only() (MREMAP_FIXED, same size) -> remap_move()
    if (fixed && oldLen === newLen) return remapMove(d, mmId, addr, oldLen, newAddr, dontunmap);
  }
  const mm = d.s.mms.get(mmId)!;
  const v = findVma(mm, addr);
  if (v === undefined) return res(err('EFAULT'), 'mremap.no-vma');
  if (implied) {
    if (overlaps) return res(err('EINVAL'), 'mremap.overlap'); // 6.1/6.12 mremap_to()
    return mremapTo(d, mmId, addr, oldLen, newAddr, newLen, fixed, dontunmap);
  }
  if (oldLen >= newLen) {
    if (oldLen === newLen) return res(ok(), 'mremap.same');
    // "Always allow a shrinking remap: that just unmaps the unnecessary pages"
    unmapRange(d, mmId, addr + newLen, addr + oldLen);
    return res(ok(), 'mremap.shrink');
  }
  const e = resizeCheck(v, addr, oldLen, newLen, false);
  if (e !== null) return e;
  // expand in place when [addr, addr+old) ends the vma and the space after it is free
  const vEnd = v.start + v.pages;
  const delta = newLen - oldLen;
  if (addr + oldLen === vEnd && !mm.vmas.some((x) => x.start < vEnd + delta && x.start + x.pages > vEnd)) {
    growInPlace(d, mmId, v as AnonVma, delta);
    return res(ok(), 'mremap.grow');
  }
  return res(err('ENOMEM'), 'mremap.grow-nospace');
}

function growInPlace(d: Draft, mmId: number, v: AnonVma, delta: number): void {
  const mm = d.mm(mmId);
  const vmas = [...mm.vmas];
  const i = vmas.indexOf(v);
  const grown: AnonVma = { ...v, pages: v.pages + delta };
  vmas[i] = grown;
  // vma_merge_extend(): the grown vma may merge with the next one
  const next = vmas[i + 1];
  if (next !== undefined && next.kind === 'anon' && canMerge(grown, next)) {
    vmas.splice(i, 2, { ...grown, pages: grown.pages + next.pages, anonVma: grown.anonVma ?? next.anonVma });
  }
  mm.vmas = vmas;
}

/** mremap_to(): a move to newAddr (MREMAP_FIXED) or with MREMAP_DONTUNMAP. */
function mremapTo(
  d: Draft,
  mmId: number,
  addr: number,
  oldLen: number,
  newAddr: number,
  newLen: number,
  fixed: boolean,
  dontunmap: boolean,
): OpResult {
  const vAt = () => findVma(d.s.mms.get(mmId)!, addr);
  let len = oldLen;
  if (!d.s.profile.mremapMultiVmaMove) {
    // 6.1/6.12: unmap the destination, then the tail of a shrinking move, then vma_to_resize()
    if (fixed) unmapRange(d, mmId, newAddr, newAddr + newLen);
    if (len > newLen) {
      unmapRange(d, mmId, addr + newLen, addr + len);
      len = newLen;
    }
    const v = vAt();
    if (v === undefined) return res(err('EFAULT'), 'mremap.no-vma');
    const e = resizeCheck(v, addr, len, newLen, dontunmap);
    if (e !== null) return e;
  } else {
    // 7.2: check_prep_vma() first (a shrink is checked at its new length), then mremap_to()
    const e = resizeCheck(vAt()!, addr, Math.min(len, newLen), newLen, dontunmap);
    if (e !== null) return e;
    if (fixed) unmapRange(d, mmId, newAddr, newAddr + newLen);
    if (vAt() === undefined) return res(err('EFAULT'), 'mremap.no-vma');
    if (len > newLen) {
      unmapRange(d, mmId, addr + newLen, addr + len);
      len = newLen;
    }
  }
  return moveVma(d, mmId, addr, len, newAddr, newLen, dontunmap);
}

/**
 * move_vma() (6.1/6.12) / copy_vma_and_data() (7.2). A uacce vma refuses in its ->mremap
 * (uacce_vma_mremap: -EPERM); the page tables move back and the copy is unmapped, so the
 * original stays intact and its region mapped (Spec "mremap": what the failed move must leave).
 */
function moveVma(d: Draft, mmId: number, addr: number, oldLen: number, newAddr: number, newLen: number, dontunmap: boolean): OpResult {
  const v = findVma(d.s.mms.get(mmId)!, addr)!;
  if (v.kind === 'uacce') return res(err('EPERM'), 'mremap.move-uacce');
  const moved: AnonVma = {
    ...v,
    start: newAddr,
    pages: newLen,
    pgoff: v.pgoff + (addr - v.start),
  };
  const pages = d.s.mms.get(mmId)!.pages;
  const carried: Array<[number, Page]> = [];
  for (let pg = addr; pg < addr + oldLen; pg++) {
    const c = pages.get(pg);
    if (c !== undefined) carried.push([newAddr + (pg - addr), c]);
  }
  if (dontunmap) {
    // the old range stays mapped but empty; a whole vma loses its anon_vma (unlink_anon_vmas)
    dropPages(d, mmId, addr, addr + oldLen);
    if (v.start === addr && v.pages === oldLen) {
      const mm = d.mm(mmId);
      mm.vmas = mm.vmas.map((x) => (x === v ? { ...v, anonVma: null, forked: false } : x));
    }
  } else {
    unmapRange(d, mmId, addr, addr + oldLen);
  }
  insertVma(d, mmId, moved);
  if (carried.length > 0) {
    const dst = d.mmPages(mmId);
    for (const [pg, c] of carried) dst.set(pg, c);
  }
  return res(ok(), 'mremap.move');
}

/**
 * 7.2 remap_move(): a MREMAP_FIXED move of the same size may span several vmas; each is moved
 * in turn keeping the gaps between them; a gap at the start, or no vma at all, is -EFAULT.
 */
function remapMove(d: Draft, mmId: number, addr: number, len: number, newAddr: number, dontunmap: boolean): OpResult {
  const end = addr + len;
  let cur = addr;
  let first = true;
  let lastEnd = 0;
  let target = newAddr;
  for (;;) {
    const v = findVmaFrom(d.s.mms.get(mmId)!, cur);
    if (v === undefined || v.start >= end) break;
    if (first && addr < v.start) return res(err('EFAULT'), 'mremap.no-vma');
    const a = Math.max(v.start, addr);
    const vEnd = v.start + v.pages;
    const n = Math.min(end, vEnd) - a;
    const offset = first ? 0 : v.start - lastEnd;
    lastEnd = vEnd;
    const dst = target + offset;
    const e = resizeCheck(v, a, n, n, dontunmap);
    if (e !== null) return e;
    unmapRange(d, mmId, dst, dst + n);
    const r = moveVma(d, mmId, a, n, dst, n, dontunmap);
    if (r.outcome.kind !== 'ok') return r;
    first = false;
    target = dst + n;
    cur = vEnd;
  }
  if (first) return res(err('EFAULT'), 'mremap.no-vma');
  return res(ok(), 'mremap.move');
}

/** mm/madvise.c madvise_walk_vmas() with MADV_DOFORK. */
function doMadvise(d: Draft, task: Task, op: OpMadvise): OpResult {
  const slot = d.s.mapSlots.get(op.map);
  if (slot === undefined) return res(err('ENOMEM'), 'madvise.unmapped');
  const mm = d.s.mms.get(task.mm)!;
  const end = slotPage(slot) + op.page + op.pages;
  let cur = slotPage(slot) + op.page;
  let unmapped = false;
  for (;;) {
    const v = findVmaFrom(mm, cur);
    if (v === undefined) return res(err('ENOMEM'), 'madvise.unmapped');
    if (cur < v.start) {
      unmapped = true;
      cur = v.start;
      if (cur >= end) break;
    }
    if (v.kind === 'uacce') return res(err('EINVAL'), 'madvise.dofork-io');
    cur = Math.min(v.start + v.pages, end);
    if (cur >= end) break;
  }
  return unmapped ? res(err('ENOMEM'), 'madvise.unmapped') : res(ok(), 'madvise.ok');
}

// ---------------------------------------------------------------------------------------------
// touch and submit


function doTouch(d: Draft, task: Task, op: OpTouch): OpResult {
  const slot = d.s.mapSlots.get(op.map);
  if (slot === undefined) return res(sig('SIGSEGV'), 'touch.unmapped');
  const pageNo = slotPage(slot) + op.page;
  const idx = op.offset / 4;
  if (op.access === 'read') {
    const a = userLoad(d, task.mm, pageNo, idx, 2);
    if (!a.ok) return sigResult(a);
    const [lo, hi] = a.v;
    return res(lo === null || hi === null || lo === undefined || hi === undefined ? ok() : ok(hex64(lo, hi)), 'touch.read');
  }
  const { lo, hi } = parseHex64(op.value ?? '0x0');
  const r = userStore(d, task.mm, pageNo, idx, [lo, hi], 'raw');
  if (!r.ok) return sigResult(r);
  return res(ok(), 'touch.write');
}

// ---------------------------------------------------------------------------------------------
// fork and exit

function doFork(d: Draft, task: Task, op: OpFork): OpResult {
  if (d.s.tasks.has(op.child)) return res(err('EINVAL'), 'program.malformed');
  const parent = d.s.mms.get(task.mm)!;
  const wild = isWild(d.s, parent.id);
  const mmId = d.newKey();
  const vmas: Vma[] = [];
  const pages = new Map<number, Page>();
  for (const v of parent.vmas) {
    // uacce vmas are VM_DONTCOPY (uacce_fops_mmap): the child has no mapping there
    if (v.kind !== 'anon') continue;
    // anon_vma_fork(): the child's vma gets its own anon_vma
    vmas.push({ ...v, anonVma: v.anonVma === null ? null : d.newKey(), forked: v.anonVma !== null });
    for (let pg = v.start; pg < v.start + v.pages; pg++) {
      if (wild) pages.set(pg, d.adopt(emptyPage(BASE_UNKNOWN)));
      else {
        const c = parent.pages.get(pg);
        if (c !== undefined) pages.set(pg, c);
      }
    }
  }
  // the child's address space has no PASID until its own first bind (Spec "SVA, when a bind
  // succeeds"); its memory holds the parent's list of PASIDs seen (sva.ts)
  d.put('mms', mmId, { id: mmId, alive: true, vmas, pages, pasid: null });
  d.put('tasks', op.child, { name: op.child, alive: true, mm: mmId, fds: new Map(task.fds), pasidsSeen: task.pasidsSeen });
  for (const qid of task.fds.values()) addRef(d, qid);
  vfioFork(d, task.name, op.child);
  return res(ok(), 'fork.ok');
}

function doExit(d: Draft, task: Task): OpResult {
  // exit_mm(): every mapping goes (the mm is gone: mmget_not_zero() fails from now on) ...
  unmapRange(d, task.mm, -Infinity, Infinity);
  d.mm(task.mm).alive = false;
  // ... then exit_files()
  const fds = [...task.fds.values()];
  d.taskFds(task.name).clear();
  for (const qid of fds) dropRef(d, qid);
  vfioExit(d, task.name);
  d.task(task.name).alive = false;
  return res(ok(), 'exit.ok');
}

// ---------------------------------------------------------------------------------------------
// mprotect

/**
 * mm/mprotect.c (6.1, 6.12, 7.2 read) do_mprotect_pkey(): the vmas of [start, end) in address
 * order, each through mprotect_fixup(); a vma at the start is needed (else -ENOMEM, nothing
 * changed), a gap after it stops the walk with -ENOMEM and keeps what was changed before it.
 * mprotect(2): later accesses that the protection does not allow raise SIGSEGV (touch.prot);
 * a work item reaches the memory through GUP, which needs VM_READ/VM_WRITE (kernel.ts
 * engineTarget).
 */
function doMprotect(d: Draft, task: Task, op: OpMprotect): OpResult {
  const slot = d.s.mapSlots.get(op.map);
  if (slot === undefined) return res(err('ENOMEM'), 'mprotect.unmapped');
  const start = slotPage(slot) + op.page;
  const end = start + op.pages;
  let pos = start;
  for (;;) {
    const v = findVma(d.s.mms.get(task.mm)!, pos);
    if (v === undefined) return res(err('ENOMEM'), pos === start ? 'mprotect.unmapped' : 'mprotect.hole');
    const to = Math.min(v.start + v.pages, end);
    protectPiece(d, task.mm, v, pos, to, op.prot);
    pos = to;
    if (pos >= end) return res(ok(), 'mprotect.ok');
  }
}

/**
 * mprotect_fixup() for [from, to) of vma v. Nothing happens when the protection does not change.
 * Otherwise: VM_ACCOUNT is set when private memory becomes writable and was not charged, and
 * (6.7 on: profile.mprotectUnaccountsUnfaulted) cleared when anonymous memory without an
 * anon_vma stops being writable; the range is split off (vma_modify_flags() 6.12/7.2,
 * split_vma() 6.1; a queue mapping's new piece takes a file reference, __split_vma() get_file());
 * an anonymous piece whose range starts or ends at v's edge merges with its neighbour there when
 * their flags and anon_vmas allow (vma_merge_existing_range() / vma_merge(); never VM_SPECIAL).
 */
function protectPiece(d: Draft, mmId: number, v: Vma, from: number, to: number, prot: Prot): void {
  if (v.prot === prot) return;
  const end = v.start + v.pages;
  const pieces: Vma[] = [];
  if (from > v.start) pieces.push(sliceVma(v, v.start, from));
  let changed: Vma = { ...sliceVma(v, from, to), prot };
  if (changed.kind === 'anon') {
    const writable = prot === 'rw';
    const account = writable ? true : changed.account && !(d.s.profile.mprotectUnaccountsUnfaulted && changed.anonVma === null) ;
    changed = { ...changed, account };
  }
  pieces.push(changed);
  if (to < end) pieces.push(sliceVma(v, to, end));
  const mm = d.mm(mmId);
  const i = mm.vmas.indexOf(v);
  const vmas = [...mm.vmas];
  vmas.splice(i, 1, ...pieces);
  if (v.kind === 'uacce') {
    if (pieces.length > 1) addRef(d, v.queue, pieces.length - 1);
    mm.vmas = vmas;
    return;
  }
  // merge with the neighbours at the range's own edges (vma_merge_existing_range() 6.12/7.2,
  // vma_merge() 6.1): with both only when their anon_vmas also suit each other
  const at = vmas.indexOf(changed);
  const range = changed as AnonVma;
  const prev = vmas[at - 1];
  const next = vmas[at + 1];
  const p = d.s.profile;
  const left = from === v.start && prev !== undefined && prev.kind === 'anon' && sameFlags(prev, range) && anonMergeable(p, range, prev) ? prev : undefined;
  const right =
    to === end &&
    next !== undefined &&
    next.kind === 'anon' &&
    sameFlags(range, next) &&
    anonMergeable(p, range, next) &&
    (left === undefined || left.anonVma === null || next.anonVma === null || left.anonVma === next.anonVma)
      ? next
      : undefined;
  const parts = [left, range, right].filter((x): x is AnonVma => x !== undefined);
  const withAnon = parts.find((x) => x.anonVma !== null);
  const merged: AnonVma = {
    ...(left ?? range),
    pages: parts.reduce((n, x) => n + x.pages, 0),
    anonVma: withAnon?.anonVma ?? null,
    forked: withAnon?.forked ?? false,
  };
  vmas.splice(left ? at - 1 : at, parts.length, merged);
  mm.vmas = vmas;
}

/** is_mergeable_vma(): the same flags (protection, VM_ACCOUNT) and contiguous offsets. */
function sameFlags(a: AnonVma, b: AnonVma): boolean {
  return a.prot === b.prot && a.account === b.account && a.start + a.pages === b.start && a.pgoff + a.pages === b.pgoff;
}

/**
 * is_mergeable_anon_vma() for the range being changed (src) next to a neighbour (tgt): the same
 * anon_vma, or one without: up to 6.15 only the range may be the one without (the neighbour's
 * chain must be singular: it has an anon_vma, not from a fork); from 6.16 either, if the one
 * with an anon_vma is no fork child (profile.anonMergeIntoUnfaulted).
 */
function anonMergeable(p: KernelProfile, src: AnonVma, tgt: AnonVma): boolean {
  if (src.anonVma === tgt.anonVma) return true;
  if (src.anonVma === null) return !tgt.forked;
  if (tgt.anonVma === null) return p.anonMergeIntoUnfaulted && !src.forked;
  return false;
}

// ---------------------------------------------------------------------------------------------
// The core ops' model

export const CORE_MODEL: ModelOps<'close' | 'dup' | 'alloc' | 'munmap' | 'mremap' | 'madvise' | 'mprotect' | 'touch' | 'fork' | 'exit'> = {
  close: { check: doClose },
  dup: { check: doDup },
  alloc: { check: doAlloc },
  munmap: { check: doMunmap },
  mremap: { check: doMremap },
  madvise: { check: doMadvise },
  mprotect: { check: doMprotect },
  touch: { check: doTouch },
  fork: { check: doFork },
  exit: { check: (d, task) => doExit(d, task) },
};
