/**
 * The mechanics the operation handlers share: queue memory and registers, the engine, queue
 * lifetime (file references, release, cdev references), address spaces (VMA pieces, unmapping)
 * and user memory accesses. Each function cites the kernel code or contract it follows.
 */
import { SLOT_BASE, SLOT_STRIDE } from '../agent/conventions.js';
import { REG_WORD, SVT_OP_READ64, SVT_OP_WRITE64, SVT_RING_SLOTS, SVT_STATUS_BADOP, SVT_STATUS_FAULT, SVT_STATUS_OK } from '../device/abi.js';
import {
  BASE_UNKNOWN,
  BASE_ZERO,
  clonePage,
  devBase,
  emptyPage,
  pageWord,
  setWord,
  u32,
  type Page,
  type Word,
} from '../device/memory.js';
import {
  ENGINE_BATCH,
  descriptorWords,
  driverCompleted,
  driverPut,
  driverStop,
  isEngineRegisterWord,
  isEngineRingWord,
  type RegisterFile,
} from '../device/testdev.js';
import type { RuleId } from './rules.js';
import type { Draft, ModelState, Mm, UacceVma, Vma } from './state.js';
import { isBound, svaAccess } from './sva.js';

// ---------------------------------------------------------------------------------------------
// Addresses: the agent puts mapping slot s at SLOT_BASE + s * SLOT_STRIDE (docs/agent-protocol.md).

const BASE_PAGE = Number(SLOT_BASE >> 12n);
const SLOT_PAGES = Number(SLOT_STRIDE >> 12n);

/** First page number (address >> 12) of mapping slot `slot`. */
export function slotPage(slot: number): number {
  return BASE_PAGE + slot * SLOT_PAGES;
}

/** The slot whose 16 MiB window holds page `pageNo`, and the page's index within it. */
export function slotOfPage(pageNo: number): { slot: number; page: number } {
  const rel = pageNo - BASE_PAGE;
  return { slot: Math.floor(rel / SLOT_PAGES), page: rel % SLOT_PAGES };
}

/** Byte address of (page, offset) as u32 halves (addresses are below 2^48). */
export function addrHalves(pageNo: number, offset: number): { lo: number; hi: number } {
  return { lo: u32((pageNo % 0x100000) * 4096 + offset), hi: Math.floor(pageNo / 0x100000) };
}

// ---------------------------------------------------------------------------------------------
// Queue memory

function isEngineWord(region: number, page: number, idx: number): boolean {
  if (page !== 0) return false;
  return region === 0 ? isEngineRegisterWord(idx) : isEngineRingWord(idx);
}

/** A word of a queue's device memory as user space or the driver would read it now. */
export function readDev(s: ModelState, qid: number, region: number, page: number, idx: number): Word {
  const q = s.queues.get(qid)!;
  if (q.racy && isEngineWord(region, page, idx)) return null;
  const key = devBase(region, page);
  return pageWord(q.mem.get(key), key, idx);
}

export function writeDev(d: Draft, qid: number, region: number, page: number, idx: number, v: Word): void {
  setWord(d.queuePage(qid, devBase(region, page)), idx, v);
}

/** The register block (MMIO page 0) of a queue, for the driver's updates. */
export function regs(d: Draft, qid: number): RegisterFile {
  return {
    read: (idx) => readDev(d.s, qid, 0, 0, idx),
    write: (idx, v) => writeDev(d, qid, 0, 0, idx, v),
  };
}

/** A private copy of a device page as it is now (for COW of a private mapping). */
function snapshotDevPage(s: ModelState, qid: number, region: number, page: number): Page {
  const q = s.queues.get(qid)!;
  const key = devBase(region, page);
  const cur = q.mem.get(key);
  const p = cur === undefined ? emptyPage(key) : clonePage(cur);
  if (q.racy && page === 0) {
    for (let i = 0; i < 1024; i++) if (isEngineWord(region, 0, i)) setWord(p, i, null);
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// The engine (docs/test-device.md "The engine")

/** An address space some racy queue may be writing into right now. */
export function isWild(s: ModelState, mmId: number): boolean {
  for (const q of s.queues.values()) if (q.racy && q.openerMm === mmId) return true;
  return false;
}

/** Every anonymous page of an address space becomes unknown (an engine may have written it). */
export function materializeUnknownAnon(d: Draft, mmId: number): void {
  const mm = d.s.mms.get(mmId);
  if (mm === undefined || !mm.alive) return;
  const pages = d.mmPages(mmId);
  for (const v of mm.vmas) {
    if (v.kind !== 'anon') continue;
    for (let p = v.start; p < v.start + v.pages; p++) pages.set(p, d.adopt(emptyPage(BASE_UNKNOWN)));
  }
}

/**
 * The engine starts working on a queue in the background: a doorbell was rung outside a
 * submit, so later operations may run before, during or after its work. Its completion words,
 * the device's fault total and the opener's anonymous memory are unknown from now on.
 */
export function beginRacy(d: Draft, qid: number): void {
  const q = d.queue(qid);
  if (q.racy) return;
  q.racy = true;
  d.instance(q.instance).faultTotal = null;
}

/** The engine stops working on a queue (it is no longer STARTED): freeze the unknowns. */
export function endRacy(d: Draft, qid: number): void {
  const cur = d.s.queues.get(qid)!;
  if (!cur.racy) return;
  // a bound queue whose opener's address space went while the engine ran may have faulted in the IOMMU (submit.sva-mm-gone)
  if (isBound(cur) && !d.s.mms.get(cur.openerMm)?.alive) d.s.dmaFaults = [...(d.s.dmaFaults ?? []), cur.devIndex];
  const q = d.queue(qid);
  q.racy = false;
  const ctr = d.queueCounters(qid);
  ctr.consumed = null;
  ctr.faults = null;
  writeDev(d, qid, 0, 0, REG_WORD.CQ_HEAD, null);
  writeDev(d, qid, 0, 0, REG_WORD.FAULTS, null);
  const ring = d.queuePage(qid, devBase(1, 0));
  for (let slot = 0; slot < SVT_RING_SLOTS; slot++) {
    const w = descriptorWords(slot);
    setWord(ring, w.status, null);
    setWord(ring, w.resultLo, null);
    setWord(ring, w.resultHi, null);
  }
  if (!isWild(d.s, q.openerMm)) materializeUnknownAnon(d, q.openerMm);
}

type EngineTarget = { kind: 'fault' } | { kind: 'unknown' } | { kind: 'anon'; pageNo: number; idx: number };

/**
 * Where a work item's address lands in the opener's address space. TD: mmget_not_zero() on the
 * recorded mm (fails once the opener has exited) and GUP as access_remote_vm() does it, without
 * FOLL_FORCE, FOLL_WRITE for a write: mm/gup.c check_vma_flags() (6.1, 6.12, 7.2) fails on
 * VM_IO/VM_PFNMAP vmas (queue mappings), a read without VM_READ and a write without VM_WRITE.
 * So only anonymous memory is reachable, and only as its protection allows (mprotect).
 */
function engineTarget(s: ModelState, mmId: number, lo: Word, hi: Word, write: boolean): EngineTarget {
  const mm = s.mms.get(mmId);
  if (mm === undefined || !mm.alive) return { kind: 'fault' };
  if (lo === null || hi === null) return { kind: 'unknown' };
  if (hi >= 0x10000) return { kind: 'fault' }; // above any user address (47/48-bit user space)
  const pageNo = hi * 0x100000 + (lo >>> 12);
  const off = lo & 0xfff;
  const v = findVma(mm, pageNo);
  if (v === undefined || v.kind !== 'anon' || v.prot === 'none' || (write && v.prot !== 'rw')) return { kind: 'fault' };
  // An unaligned u64 (possible only with hand-written descriptors) is outside what the model tracks.
  if ((off & 7) !== 0) return { kind: 'unknown' };
  return { kind: 'anon', pageNo, idx: off >> 2 };
}

function readAnon(s: ModelState, mmId: number, pageNo: number, idx: number): Word {
  if (isWild(s, mmId)) return null;
  return pageWord(s.mms.get(mmId)!.pages.get(pageNo), BASE_ZERO, idx);
}

function writeAnon(d: Draft, mmId: number, pageNo: number, idx: number, vals: readonly Word[]): void {
  const p = d.mmPage(mmId, pageNo, () => emptyPage(BASE_ZERO));
  vals.forEach((v, i) => setWord(p, idx + i, v));
  noteWriteFault(d, mmId, pageNo);
}

/** A write fault on anonymous memory gives its vma an anon_vma (mm/rmap.c anon_vma_prepare). */
export function noteWriteFault(d: Draft, mmId: number, pageNo: number): void {
  const mm = d.s.mms.get(mmId)!;
  const i = mm.vmas.findIndex((v) => v.start <= pageNo && pageNo < v.start + v.pages);
  const v = mm.vmas[i];
  if (v === undefined || v.kind !== 'anon' || v.anonVma !== null) return;
  const key = d.newKey();
  const m = d.mm(mmId);
  m.vmas = m.vmas.map((x, j) => (j === i ? { ...v, anonVma: key, forked: false } : x));
}

/** Execute descriptor `index` of queue `qid` (TD "The engine"). */
function execDescriptor(d: Draft, qid: number, index: number): void {
  const q = d.s.queues.get(qid)!;
  const w = descriptorWords(index);
  const rd = (i: number): Word => readDev(d.s, qid, 1, 0, i);
  const opcode = rd(w.opcode);
  let status: Word;
  let faulted: boolean | null = false;
  if ((opcode === SVT_OP_WRITE64 || opcode === SVT_OP_READ64) && isBound(q)) {
    // the PCI backend's endpoint: a PASID-tagged request through the IOMMU (sva.ts)
    const write = opcode === SVT_OP_WRITE64;
    // submit.sva-mm-gone: the PASID entry is torn down, the IOMMU records a DMA remapping fault
    // for the endpoint (TD "The endpoint"): an expected fault, not a finding (oracle/faults.ts)
    if (!d.s.mms.get(q.openerMm)?.alive) d.s.dmaFaults = [...(d.s.dmaFaults ?? []), q.devIndex];
    const a = svaAccess(d, q.openerMm, rd(w.addrLo), rd(w.addrHi), write ? [rd(w.valueLo), rd(w.valueHi)] : undefined);
    if (a.ok === 'unknown') {
      status = null;
      faulted = null;
      materializeUnknownAnon(d, q.openerMm);
      writeDev(d, qid, 1, 0, w.resultLo, null);
      writeDev(d, qid, 1, 0, w.resultHi, null);
    } else if (!a.ok) {
      status = SVT_STATUS_FAULT;
      faulted = true;
      writeDev(d, qid, 1, 0, w.resultLo, rd(w.addrLo));
      writeDev(d, qid, 1, 0, w.resultHi, rd(w.addrHi));
    } else {
      if (!write) {
        writeDev(d, qid, 1, 0, w.resultLo, a.v[0] ?? null);
        writeDev(d, qid, 1, 0, w.resultHi, a.v[1] ?? null);
      }
      status = SVT_STATUS_OK;
    }
  } else if (opcode === SVT_OP_WRITE64 || opcode === SVT_OP_READ64) {
    const t = engineTarget(d.s, q.openerMm, rd(w.addrLo), rd(w.addrHi), opcode === SVT_OP_WRITE64);
    if (t.kind === 'fault') {
      status = SVT_STATUS_FAULT;
      faulted = true;
      // TD "The engine" (ABI 2): RESULT of a FAULT is the first byte that could not be
      // accessed; every fault engineTarget finds is at the first page, i.e. at ADDR itself
      writeDev(d, qid, 1, 0, w.resultLo, rd(w.addrLo));
      writeDev(d, qid, 1, 0, w.resultHi, rd(w.addrHi));
    } else if (t.kind === 'unknown') {
      status = null;
      faulted = null;
      materializeUnknownAnon(d, q.openerMm);
      writeDev(d, qid, 1, 0, w.resultLo, null);
      writeDev(d, qid, 1, 0, w.resultHi, null);
    } else if (opcode === SVT_OP_WRITE64) {
      writeAnon(d, q.openerMm, t.pageNo, t.idx, [rd(w.valueLo), rd(w.valueHi)]);
      status = SVT_STATUS_OK;
    } else {
      writeDev(d, qid, 1, 0, w.resultLo, readAnon(d.s, q.openerMm, t.pageNo, t.idx));
      writeDev(d, qid, 1, 0, w.resultHi, readAnon(d.s, q.openerMm, t.pageNo, t.idx + 1));
      status = SVT_STATUS_OK;
    }
  } else if (opcode === null) {
    // an opcode the model does not know (written while unknown): any effect is possible
    status = null;
    faulted = null;
    materializeUnknownAnon(d, q.openerMm);
    writeDev(d, qid, 1, 0, w.resultLo, null);
    writeDev(d, qid, 1, 0, w.resultHi, null);
  } else {
    status = SVT_STATUS_BADOP;
  }
  writeDev(d, qid, 1, 0, w.status, status);
  // FAULTS++ (and the device's total fault count), consumed++, CQ_HEAD = consumed
  driverCompleted(regs(d, qid), d.queueCounters(qid), faulted);
  if (faulted !== false) {
    const inst = d.instance(q.instance);
    inst.faultTotal = faulted === null || inst.faultTotal === null ? null : inst.faultTotal + 1;
  }
}

export interface SyncRun {
  /** the CQ_HEAD register before the engine ran (a user may have stored anything there) */
  c0: number;
  /** the consumed count before: CQ_HEAD reads from + k after k descriptors */
  from: number;
  /** descriptors executed */
  n: number;
}

/**
 * A store hit the DOORBELL word of queue `qid`. TD: the engine only looks at STARTED queues and
 * executes consumed … DOORBELL-1. Within a submit (the agent then waits on this queue's CQ_HEAD)
 * the model executes the work at once; a doorbell rung any other way lets the engine run in the
 * background, and the queue becomes racy.
 */
export function ringDoorbell(d: Draft, qid: number, mode: 'raw' | 'submit'): SyncRun | null {
  const q = d.s.queues.get(qid)!;
  if (q.drv !== 'STARTED' || q.racy) return null;
  const db = readDev(d.s, qid, 0, 0, REG_WORD.DOORBELL);
  const from = q.ctr.consumed;
  if (db === null || from === null) {
    beginRacy(d, qid);
    return null;
  }
  const n = u32(db - from);
  if (n === 0) return null;
  const c0 = readDev(d.s, qid, 0, 0, REG_WORD.CQ_HEAD);
  if (mode === 'raw' || c0 === null || n > ENGINE_BATCH) {
    beginRacy(d, qid);
    return null;
  }
  // the engine executes consumed … DOORBELL-1 in order (svt_execute_one); every queue has a
  // ring page internally, so this holds for dus_pages=0 too (the ring is then all zero: BADOP)
  for (let k = 0; k < n; k++) execDescriptor(d, qid, u32(from + k));
  return { c0, from, n };
}

// ---------------------------------------------------------------------------------------------
// Queue lifetime

export function addRef(d: Draft, qid: number, n = 1): void {
  d.queue(qid).refs += n;
}

/** Drop file references; at the last one the file is released (uacce_fops_release). */
export function dropRef(d: Draft, qid: number, n = 1): void {
  const q = d.queue(qid);
  q.refs -= n;
  if (q.refs === 0) releaseQueue(d, qid);
}

/** uacce_stop_queue(): a STARTED queue gets the driver's stop_queue and goes back to INIT. */
export function stopQueue(d: Draft, qid: number): void {
  if (d.s.queues.get(qid)!.state !== 'STARTED') return;
  driverStop(regs(d, qid), d.queueCounters(qid));
  const q = d.queue(qid);
  q.drv = 'STOPPED';
  q.state = 'INIT';
  endRacy(d, qid);
}

/** uacce_put_queue(): stop, then (if INIT) the driver's put_queue and UACCE_Q_ZOMBIE. */
export function putQueue(d: Draft, qid: number): void {
  stopQueue(d, qid);
  if (d.s.queues.get(qid)!.state !== 'INIT') return;
  driverPut(regs(d, qid));
  const q = d.queue(qid);
  q.drv = 'RELEASED';
  q.state = 'ZOMBIE';
  d.instance(q.instance).liveQueues--;
}

/** uacce_fops_release() (put_queue, unbind) and __fput()'s cdev_put(). */
function releaseQueue(d: Draft, qid: number): void {
  putQueue(d, qid);
  const q = d.queue(qid);
  q.state = 'RELEASED';
  cdevPut(d, q.cdev);
  d.deleteQueue(qid);
}

/**
 * fs/char_dev.c: cdev_put(); a deleted cdev whose last reference goes is released, and
 * cdev_purge() clears i_cdev of every inode that cached it.
 */
export function cdevPut(d: Draft, key: number): void {
  const c = d.cdev(key);
  c.refs--;
  if (!c.mapped && c.refs === 0) purgeCdev(d, key);
}

export function purgeCdev(d: Draft, key: number): void {
  for (const ino of d.s.inodes.values()) if (ino.iCdev === key) d.inode(ino.key).iCdev = null;
  d.deleteCdev(key);
}

// ---------------------------------------------------------------------------------------------
// Address spaces

export function findVma(mm: Mm, pageNo: number): Vma | undefined {
  for (const v of mm.vmas) {
    if (pageNo < v.start) return undefined;
    if (pageNo < v.start + v.pages) return v;
  }
  return undefined;
}

/** First vma ending above `pageNo` (find_vma). */
export function findVmaFrom(mm: Mm, pageNo: number): Vma | undefined {
  return mm.vmas.find((v) => v.start + v.pages > pageNo);
}

export function sliceVma<V extends Vma>(v: V, from: number, to: number): V {
  const shift = from - v.start;
  if (v.kind === 'uacce') return { ...v, start: from, pages: to - from, regionPage: v.regionPage + shift };
  return { ...v, start: from, pages: to - from, pgoff: v.pgoff + shift };
}

export function insertVma(d: Draft, mmId: number, v: Vma): void {
  const mm = d.mm(mmId);
  const vmas = [...mm.vmas];
  let i = 0;
  while (i < vmas.length && vmas[i]!.start < v.start) i++;
  vmas.splice(i, 0, v);
  mm.vmas = vmas;
}

export function pieceCount(mm: Mm, mapId: number): number {
  let n = 0;
  for (const v of mm.vmas) if (v.kind === 'uacce' && v.mapId === mapId) n++;
  return n;
}

/**
 * munmap of pages [start, end): vmas are split at the edges (each uacce piece holds its own
 * file reference: __split_vma() get_file()), the covered parts are removed (their close), page
 * contents go. A region is freed when the last piece of the mapping made for it is gone (Spec
 * "mmap": splitting does not free it).
 */
export function unmapRange(d: Draft, mmId: number, start: number, end: number): void {
  const mm = d.s.mms.get(mmId)!;
  if (!mm.vmas.some((v) => v.start < end && v.start + v.pages > start)) return;
  const out: Vma[] = [];
  const delta = new Map<number, number>();
  const maps = new Map<number, UacceVma>();
  for (const v of mm.vmas) {
    const ve = v.start + v.pages;
    if (ve <= start || v.start >= end) {
      out.push(v);
      continue;
    }
    let parts = 0;
    if (v.start < start) {
      out.push(sliceVma(v, v.start, start));
      parts++;
    }
    if (ve > end) {
      out.push(sliceVma(v, end, ve));
      parts++;
    }
    if (v.kind === 'uacce') {
      delta.set(v.queue, (delta.get(v.queue) ?? 0) + parts - 1);
      maps.set(v.mapId, v);
    }
  }
  d.mm(mmId).vmas = out;
  dropPages(d, mmId, start, end);
  for (const [mapId, v] of maps) {
    if (!out.some((x) => x.kind === 'uacce' && x.mapId === mapId)) freeRegion(d, v.queue, v.region, mapId);
  }
  for (const [qid, n] of delta) if (n > 0) addRef(d, qid, n);
  for (const [qid, n] of delta) if (n < 0) dropRef(d, qid, -n);
}

export function dropPages(d: Draft, mmId: number, start: number, end: number): void {
  const mm = d.s.mms.get(mmId)!;
  let any = false;
  for (const k of mm.pages.keys()) {
    if (k >= start && k < end) {
      any = true;
      break;
    }
  }
  if (!any) return;
  const pages = d.mmPages(mmId);
  for (const k of [...pages.keys()]) if (k >= start && k < end) pages.delete(k);
}

/** uacce_vma_close() of the last piece: q->qfrs[type] = NULL. */
function freeRegion(d: Draft, qid: number, region: 0 | 1, mapId: number): void {
  const q = d.s.queues.get(qid)!;
  if (q.regions[region] !== mapId) return;
  const regions: [number | null, number | null] = [...q.regions];
  regions[region] = null;
  d.queue(qid).regions = regions;
}

// ---------------------------------------------------------------------------------------------
// User accesses (touch, and the agent's accesses during submit)

export type Access =
  | { ok: true; v: Word[] }
  | { ok: false; signal: 'SIGSEGV' | 'SIGBUS'; rule: RuleId };

export interface StoreResult {
  ok: true;
  /** the store rang a doorbell and the engine ran synchronously (submit mode) */
  sync: SyncRun | null;
  /** the queue whose DOORBELL the store hit, if any */
  rung: number | null;
}

function regionPageOf(v: UacceVma, pageNo: number): number {
  return v.regionPage + (pageNo - v.start);
}

/** Load `n` consecutive u32 words at (pageNo, idx) as the task would. */
export function userLoad(d: Draft, mmId: number, pageNo: number, idx: number, n: number): Access {
  const mm = d.s.mms.get(mmId)!;
  const v = findVma(mm, pageNo);
  if (v === undefined) return { ok: false, signal: 'SIGSEGV', rule: 'touch.unmapped' };
  if (v.prot === 'none') return { ok: false, signal: 'SIGSEGV', rule: 'touch.prot' };
  const out: Word[] = [];
  if (v.kind === 'anon') {
    const wild = isWild(d.s, mmId);
    const p = mm.pages.get(pageNo);
    for (let i = 0; i < n; i++) out.push(wild ? null : pageWord(p, BASE_ZERO, idx + i));
    return { ok: true, v: out };
  }
  const q = d.s.queues.get(v.queue)!;
  if (q.state === 'ZOMBIE') return { ok: false, signal: 'SIGBUS', rule: 'touch.zombie' };
  const rp = regionPageOf(v, pageNo);
  const copy = v.shared ? undefined : mm.pages.get(pageNo);
  for (let i = 0; i < n; i++) {
    out.push(copy !== undefined ? pageWord(copy, copy.base, idx + i) : readDev(d.s, q.id, v.region, rp, idx + i));
  }
  return { ok: true, v: out };
}

/** Store consecutive u32 words at (pageNo, idx) as the task would. */
export function userStore(
  d: Draft,
  mmId: number,
  pageNo: number,
  idx: number,
  vals: readonly Word[],
  mode: 'raw' | 'submit',
): StoreResult | Extract<Access, { ok: false }> {
  const mm = d.s.mms.get(mmId)!;
  const v = findVma(mm, pageNo);
  if (v === undefined) return { ok: false, signal: 'SIGSEGV', rule: 'touch.unmapped' };
  if (v.prot !== 'rw') return { ok: false, signal: 'SIGSEGV', rule: 'touch.prot' };
  if (v.kind === 'anon') {
    writeAnon(d, mmId, pageNo, idx, vals);
    return { ok: true, sync: null, rung: null };
  }
  const q = d.s.queues.get(v.queue)!;
  if (q.state === 'ZOMBIE') return { ok: false, signal: 'SIGBUS', rule: 'touch.zombie' };
  const rp = regionPageOf(v, pageNo);
  if (!v.shared) {
    // private mapping: the write fault copies the device page (mm/memory.c wp_page_copy), the
    // device never sees the store
    const p = d.mmPage(mmId, pageNo, () => snapshotDevPage(d.s, q.id, v.region, rp));
    vals.forEach((x, i) => setWord(p, idx + i, x));
    return { ok: true, sync: null, rung: null };
  }
  vals.forEach((x, i) => writeDev(d, q.id, v.region, rp, idx + i, x));
  if (v.region === 0 && rp === 0 && idx <= REG_WORD.DOORBELL && REG_WORD.DOORBELL < idx + vals.length) {
    return { ok: true, sync: ringDoorbell(d, q.id, mode), rung: q.id };
  }
  return { ok: true, sync: null, rung: null };
}
