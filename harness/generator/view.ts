/**
 * What the generator asks of the model's state: live tasks, the descriptors each has and the
 * queues behind them, the pieces of mappings in each task's address space (by name and page,
 * the terms of the program format), queues ready for a work item, devices. Read-only queries
 * over a ModelState (harness/model/state.ts); the generator never keeps a state of its own.
 */
import { findVma, slotOfPage, slotPage } from '../model/kernel.js';
import type { ModelState, Mm, Queue, Task, Vma } from '../model/index.js';
import type { UacceVma } from '../model/state.js';
import { ROOT_TASK } from '../program/limits.js';

/** One vma of a task, in program terms: the mapping name whose slot holds it, and its first page there. */
export interface Piece {
  name: string;
  /** first page, relative to the name's slot */
  page: number;
  pages: number;
  vma: Vma;
}

/** A descriptor of a task and the queue behind it. */
export interface FdInfo {
  name: string;
  q: Queue;
}

export class StateView {
  private readonly slotNames = new Map<number, string>();

  constructor(readonly s: ModelState) {
    for (const [name, slot] of s.mapSlots) this.slotNames.set(slot, name);
  }

  tasks(): Task[] {
    return [...this.s.tasks.values()].filter((t) => t.alive);
  }

  task(name: string): Task | undefined {
    const t = this.s.tasks.get(name);
    return t?.alive ? t : undefined;
  }

  isRoot(t: Task): boolean {
    return t.name === ROOT_TASK;
  }

  mm(t: Task): Mm {
    return this.s.mms.get(t.mm)!;
  }

  fds(t: Task): FdInfo[] {
    const out: FdInfo[] = [];
    for (const [name, qid] of t.fds) {
      const q = this.s.queues.get(qid);
      if (q !== undefined) out.push({ name, q });
    }
    return out;
  }

  /** The live queue (INIT or STARTED) behind a descriptor. */
  live(q: Queue): boolean {
    return q.state === 'INIT' || q.state === 'STARTED';
  }

  /** Every vma of an address space as a piece of a named mapping. */
  piecesOfMm(mm: Mm): Piece[] {
    const out: Piece[] = [];
    for (const v of mm.vmas) {
      const at = slotOfPage(v.start);
      const name = this.slotNames.get(at.slot);
      if (name !== undefined) out.push({ name, page: at.page, pages: v.pages, vma: v });
    }
    return out;
  }

  pieces(t: Task): Piece[] {
    return this.piecesOfMm(this.mm(t));
  }

  /** The pieces in the window of one mapping name (its slot) of a task, in address order. */
  window(t: Task, name: string): Piece[] {
    return this.pieces(t).filter((p) => p.name === name);
  }

  /** Is anything mapped at page `page` of name's slot in t? */
  mappedAt(t: Task, name: string, page: number): Vma | undefined {
    const slot = this.s.mapSlots.get(name);
    return slot === undefined ? undefined : findVma(this.mm(t), slotPage(slot) + page);
  }

  /** Every mapping name created so far (each has a slot). */
  mapNames(): string[] {
    return [...this.s.mapSlots.keys()];
  }

  /** Mapping names with nothing mapped anywhere in their window in t. */
  unmappedNames(t: Task): string[] {
    const mapped = new Set(this.pieces(t).map((p) => p.name));
    return this.mapNames().filter((n) => !mapped.has(n));
  }

  /**
   * The queue a task can submit work to: its pieces that map MMIO page 0 and DUS page 0 of the
   * same queue at the start of a slot (the submit op addresses page 0 of its mmio and dus names),
   * shared and writable.
   */
  submitPaths(t: Task): { q: Queue; mmio: string; dus: string }[] {
    const heads = new Map<number, { mmio?: string; dus?: string }>();
    for (const p of this.pieces(t)) {
      const v = p.vma;
      if (v.kind !== 'uacce' || p.page !== 0 || v.regionPage !== 0 || !v.shared || v.prot !== 'rw') continue;
      const h = heads.get(v.queue) ?? {};
      if (v.region === 0) h.mmio ??= p.name;
      else h.dus ??= p.name;
      heads.set(v.queue, h);
    }
    const out: { q: Queue; mmio: string; dus: string }[] = [];
    for (const [qid, h] of heads) {
      const q = this.s.queues.get(qid);
      if (q !== undefined && h.mmio !== undefined && h.dus !== undefined) out.push({ q, mmio: h.mmio, dus: h.dus });
    }
    return out;
  }

  /** Where a queue's engine can write: writable anonymous pieces in the opener's address space. */
  engineTargets(q: Queue): Piece[] {
    const mm = this.s.mms.get(q.openerMm);
    if (mm === undefined || !mm.alive) return [];
    return this.piecesOfMm(mm).filter((p) => p.vma.kind === 'anon' && p.vma.prot === 'rw');
  }

  /** The MMIO register block of a queue as this task maps it (a shared piece holding region page 0). */
  registerPiece(t: Task, qid: number): { name: string; page: number } | undefined {
    for (const p of this.pieces(t)) {
      const v = p.vma;
      if (v.kind === 'uacce' && v.queue === qid && v.region === 0 && v.shared && v.regionPage === 0) return { name: p.name, page: p.page };
    }
    return undefined;
  }

  /** Tasks that hold a descriptor of queue qid. */
  holders(qid: number): { task: Task; fd: string }[] {
    const out: { task: Task; fd: string }[] = [];
    for (const t of this.tasks()) {
      for (const [name, id] of t.fds) {
        if (id === qid) {
          out.push({ task: t, fd: name });
          break;
        }
      }
    }
    return out;
  }

  /** Queues that are alive (not released), in id order. */
  queues(): Queue[] {
    return [...this.s.queues.values()].filter((q) => q.state !== 'RELEASED');
  }

  /** Device indices bound now / removed now. */
  boundDevices(): number[] {
    return this.s.devs.filter((d) => d.instance !== null).map((d) => d.index);
  }

  removedDevices(): number[] {
    return this.s.devs.filter((d) => d.instance === null).map((d) => d.index);
  }

  /** Live queues of device index dev, and the device's queue limit reached? */
  deviceFull(dev: number): boolean {
    const key = this.s.devs[dev]?.instance;
    const inst = key === null || key === undefined ? undefined : this.s.instances.get(key);
    return inst !== undefined && inst.liveQueues >= this.s.device.queue_limit;
  }

  /** Is the region of a queue mapped by some mapping now? */
  regionTaken(q: Queue, region: 0 | 1): boolean {
    return q.regions[region] !== null;
  }

  /** The uacce pieces of a queue in a task (any region). */
  queuePieces(t: Task, qid: number): (Piece & { vma: UacceVma })[] {
    return this.pieces(t).filter((p): p is Piece & { vma: UacceVma } => p.vma.kind === 'uacce' && p.vma.queue === qid);
  }
}
