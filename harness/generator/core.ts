/**
 * Arguments of the core ops (harness/ops/core.ts) from the model's state: descriptors a task
 * has, pieces of its mappings (whole, head, tail, middle, across a gap), pages of live buffers of
 * any task, fork children. Invalid on purpose: a descriptor the task does not have, a mapping
 * name with nothing mapped in its task.
 */
import type { Task } from '../model/index.js';
import { hex64 } from '../device/memory.js';
import type { Op, OpKind } from '../ops/index.js';
import { vfioFdNames } from '../model/vfio.js';
import { LIMITS } from '../program/limits.js';
import type { Prot } from '../program/types.js';
import type { FamilyGen, Gen, GenCtx, Made } from './context.js';
import type { Piece } from './view.js';

const P = LIMITS.maxPages;

export const valid = (op: Op, again = false): Made => (again ? { op, intent: 'valid', again } : { op, intent: 'valid' });
export const invalid = (op: Op): Made => ({ op, intent: 'invalid' });

/** A descriptor name some task has or had that `t` does not have (for EBADF on purpose). */
export function missingFd(c: GenCtx, t: Task): string | undefined {
  const vfio = new Set(vfioFdNames(c.view.s, t.name));
  return c.r.pick(c.fdNames().filter((n) => !t.fds.has(n) && !vfio.has(n)));
}

/** A mapping name with nothing mapped in t's window of it (for SIGSEGV, EFAULT, ENOMEM on purpose). */
export function missingMap(c: GenCtx, t: Task): string | undefined {
  return c.r.pick(c.view.unmappedNames(t));
}

/** A random u64 as the format writes it. */
export function value64(c: GenCtx): string {
  const lo = ((c.r.next() << 16) | c.r.next()) >>> 0;
  const hi = c.r.chance(20) ? c.r.next() : 0;
  return hex64(lo, hi);
}

/** Page ranges of a piece: whole, head, tail, middle, one page, or on past its end (into a gap). */
export function rangeOf(c: GenCtx, p: Piece): [page: number, pages: number] {
  const n = p.pages;
  const k = c.r.weighted([
    ['whole', 35],
    ['head', 15],
    ['tail', 15],
    ['middle', 10],
    ['one', 12],
    ['past', 13],
  ] as const);
  let [page, pages] = [p.page, n];
  if (k === 'head' && n > 1) pages = 1 + c.r.int(n - 1);
  else if (k === 'tail' && n > 1) {
    const skip = 1 + c.r.int(n - 1);
    [page, pages] = [p.page + skip, n - skip];
  } else if (k === 'middle' && n > 2) {
    const skip = 1 + c.r.int(n - 2);
    [page, pages] = [p.page + skip, 1 + c.r.int(n - skip - 1)];
  } else if (k === 'one') [page, pages] = [p.page + c.r.int(n), 1];
  else if (k === 'past') pages = n + 1 + c.r.int(3);
  pages = Math.max(1, Math.min(pages, P - page));
  return [Math.min(page, P - 1), pages];
}

function taskWithPieces(c: GenCtx, filter: (p: Piece) => boolean = () => true): { t: Task; ps: Piece[] } | undefined {
  const cands = c.view.tasks().filter((t) => c.view.pieces(t).some(filter));
  const t = c.pickTask(cands);
  return t === undefined ? undefined : { t, ps: c.view.pieces(t).filter(filter) };
}

/** For ops on a mapping: a task's missing name (invalid on purpose), or a piece. */
function onPiece(c: GenCtx, mk: (t: Task, p: Piece) => Gen, mkMissing: (t: Task, name: string) => Op): Gen {
  if (c.invalid) {
    const t = c.pickTask(c.view.tasks());
    const name = t === undefined ? undefined : missingMap(c, t);
    if (t !== undefined && name !== undefined) return invalid(mkMissing(t, name));
  }
  const tp = taskWithPieces(c);
  // a vfio program has no queues to map (the families stay apart): anonymous memory only
  if (tp === undefined) return { need: c.view.s.vfio === undefined && c.r.chance(50) ? 'mmap' : 'alloc' };
  // pieces of split mappings often: their partial ranges are where mm and uacce disagree
  const split = tp.ps.filter((p) => p.page !== 0 || tp.ps.some((q) => q !== p && q.name === p.name));
  return mk(tp.t, (split.length > 0 && c.r.chance(40) ? c.r.pick(split) : c.r.pick(tp.ps))!);
}

/** A task's descriptor names: its queues, then its vfio files (vfio programs). */
const fdNamesOf = (c: GenCtx, t: Task): string[] => [...t.fds.keys(), ...vfioFdNames(c.view.s, t.name)];
/**
 * What makes a first descriptor: an open, or in a vfio program a container (the families stay
 * apart), or an iommufd on a kernel without the group path.
 */
const firstFd = (c: GenCtx): OpKind => (c.view.s.vfio === undefined ? 'open' : c.profile.vfioPaths.group ? 'vfio_container' : 'iommufd');

const close = (c: GenCtx): Gen => {
  if (c.invalid) {
    const t = c.pickTask(c.view.tasks());
    const fd = t === undefined ? undefined : missingFd(c, t);
    if (t !== undefined && fd !== undefined) return invalid({ op: 'close', task: t.name, fd });
  }
  const t = c.pickTask(c.view.tasks().filter((x) => fdNamesOf(c, x).length > 0));
  if (t === undefined) return { need: firstFd(c) };
  return valid({ op: 'close', task: t.name, fd: c.r.pick(fdNamesOf(c, t))! });
};

const dup = (c: GenCtx): Gen => {
  if (c.invalid) {
    const t = c.pickTask(c.view.tasks());
    const fd = t === undefined ? undefined : missingFd(c, t);
    if (t !== undefined && fd !== undefined) return invalid({ op: 'dup', task: t.name, fd, as: c.fdName() });
  }
  const t = c.pickTask(c.view.tasks().filter((x) => fdNamesOf(c, x).length > 0));
  if (t === undefined) return { need: firstFd(c) };
  return valid({ op: 'dup', task: t.name, fd: c.r.pick(fdNamesOf(c, t))!, as: c.fdName() });
};

const alloc = (c: GenCtx): Gen => {
  const t = c.pickTask(c.view.tasks());
  if (t === undefined) return undefined;
  const pages = c.r.chance(85) ? 1 + c.r.int(4) : 5 + c.r.int(12);
  return valid({ op: 'alloc', task: t.name, map: c.bufName(), pages });
};

const munmap = (c: GenCtx): Gen =>
  onPiece(
    c,
    (t, p) => {
      // now and then the whole window of the name: every piece at once
      const [page, pages] = c.r.chance(6) ? [0, P] : rangeOf(c, p);
      return valid({ op: 'munmap', task: t.name, map: p.name, page, pages });
    },
    (t, map) => ({ op: 'munmap', task: t.name, map, page: 0, pages: 1 }),
  );

const madvise = (c: GenCtx): Gen =>
  onPiece(
    c,
    (t, p) => {
      const [page, pages] = rangeOf(c, p);
      const op: Op = { op: 'madvise', task: t.name, map: p.name, page, pages, advice: 'dofork' };
      // a range past the piece ('past') is on purpose: madvise fails with ENOMEM on the hole
      return page + pages > p.page + p.pages ? invalid(op) : valid(op);
    },
    (t, map) => ({ op: 'madvise', task: t.name, map, page: 0, pages: 1, advice: 'dofork' }),
  );

const mprotect = (c: GenCtx): Gen =>
  onPiece(
    c,
    (t, p) => {
      const [page, pages] = rangeOf(c, p);
      const prot = c.r.weighted<Prot>([
        ['rw', 35],
        ['r', 35],
        ['none', 30],
      ]);
      return valid({ op: 'mprotect', task: t.name, map: p.name, page, pages, prot });
    },
    (t, map) => ({ op: 'mprotect', task: t.name, map, page: 0, pages: 1, prot: 'r' }),
  );

/**
 * mremap of a piece: shrink it, keep its size, grow it (into free space, into the next piece,
 * across its end), move it to a new name, onto another mapping's slot or onto itself
 * (overlapping), with MREMAP_DONTUNMAP of the same or another size.
 */
const mremap = (c: GenCtx): Gen =>
  onPiece(
    c,
    (t, p) => {
      const n = p.pages;
      const base = { op: 'mremap' as const, task: t.name, map: p.name };
      const same = { move: false, dontunmap: false };
      const k = c.r.weighted([
        ['shrink', 14],
        ['shrink-inner', 5],
        ['same', 7],
        ['grow', 16],
        ['grow-next', 6],
        ['cross', 5],
        ['move', 14],
        ['move-shrink', 5],
        ['move-onto', 7],
        ['overlap', 5],
        ['dontunmap', 10],
        ['dontunmap-resize', 6],
      ] as const);
      const cap = (x: number) => Math.max(1, Math.min(P, x));
      switch (k) {
        case 'shrink':
          if (n > 1) return valid({ ...base, page: p.page, old_pages: n, new_pages: 1 + c.r.int(n - 1), ...same });
          break;
        case 'shrink-inner':
          if (n > 2) {
            const skip = 1 + c.r.int(n - 2);
            return valid({ ...base, page: p.page + skip, old_pages: n - skip, new_pages: 1 + c.r.int(n - skip - 1), ...same });
          }
          break;
        case 'same': {
          const skip = c.r.int(n);
          return valid({ ...base, page: p.page + skip, old_pages: n - skip, new_pages: n - skip, ...same });
        }
        case 'grow-next': {
          // grow into the next piece of the window, if there is one close after it
          const next = c.view.window(t, p.name).find((x) => x.page > p.page);
          if (next !== undefined && next.page - p.page < P) return valid({ ...base, page: p.page, old_pages: n, new_pages: cap(next.page - p.page + 1), ...same });
          return valid({ ...base, page: p.page, old_pages: n, new_pages: cap(n + 1 + c.r.int(3)), ...same });
        }
        case 'cross':
          return valid({ ...base, page: p.page, old_pages: cap(n + 1), new_pages: cap(n + 2 + c.r.int(2)), ...same });
        case 'move':
        case 'move-shrink':
        case 'move-onto':
        case 'overlap': {
          const shrink = k === 'move-shrink' && n > 1;
          const old = n;
          const nw = shrink ? 1 + c.r.int(n - 1) : n;
          let to = c.mapName();
          if (k === 'move-onto') to = c.r.pick(c.view.mapNames().filter((x) => x !== p.name)) ?? to;
          if (k === 'overlap') to = p.name;
          return valid({ ...base, page: p.page, old_pages: old, new_pages: nw, move: true, dontunmap: false, to });
        }
        case 'dontunmap':
        case 'dontunmap-resize': {
          const nw = k === 'dontunmap' ? n : cap(n === 1 ? 2 : n - 1);
          return valid({ ...base, page: p.page, old_pages: n, new_pages: nw, move: false, dontunmap: true, to: c.mapName() });
        }
        default:
          break;
      }
      // grow (and the cases that do not fit this piece)
      return valid({ ...base, page: p.page, old_pages: n, new_pages: cap(n + 1 + c.r.int(3)), ...same });
    },
    (t, map) => ({ op: 'mremap', task: t.name, map, page: 0, old_pages: 1, new_pages: 2, move: false, dontunmap: false }),
  );

/** Register offsets of MMIO page 0 that read something (docs/test-device.md, svt_abi.h). */
const REGISTER_OFFSETS = [0x0, 0x8, 0x10, 0x18, 0x20, 0x28, 0x30];

/** Register blocks a task can store to: a shared writable piece holding MMIO page 0 of a queue. */
function registerBlocks(c: GenCtx): { t: Task; p: Piece; qid: number }[] {
  const out: { t: Task; p: Piece; qid: number }[] = [];
  for (const t of c.view.tasks()) {
    for (const p of c.view.pieces(t)) {
      const v = p.vma;
      if (v.kind === 'uacce' && v.region === 0 && v.regionPage === 0 && v.shared && v.prot === 'rw') out.push({ t, p, qid: v.queue });
    }
  }
  return out;
}

/** Is there a started queue whose doorbell some task can ring by a store? */
export function kickable(c: GenCtx): boolean {
  return registerBlocks(c).some((b) => {
    const q = c.view.s.queues.get(b.qid);
    return q !== undefined && q.drv === 'STARTED' && !q.racy;
  });
}

/**
 * Stores to a queue's registers outside a submit: ring the doorbell of a started queue (its
 * engine then works in the background, racing whatever comes next), or move CQ_HEAD ahead of
 * the doorbell (a later submit sees its completion count passed before the engine ran).
 */
export function registerStore(c: GenCtx): Gen {
  const blocks = registerBlocks(c);
  const kick = blocks.filter((b) => {
    const q = c.view.s.queues.get(b.qid);
    return q !== undefined && q.drv === 'STARTED' && !q.racy;
  });
  const b = c.r.chance(75) ? c.r.pick(kick) : c.r.pick(blocks);
  if (b === undefined) return undefined;
  const q = c.view.s.queues.get(b.qid)!;
  const base = { op: 'touch' as const, task: b.t.name, map: b.p.name, page: b.p.page, offset: 0x20, access: 'write' as const };
  const consumed = q.ctr.consumed ?? 0;
  if (q.drv === 'STARTED' && !q.racy && c.r.chance(80)) return valid({ ...base, value: doorbellValue(c, q.id) });
  return valid({ ...base, value: hex64(consumed >>> 0, (consumed + 1 + c.r.int(3)) >>> 0) });
}

const touch = (c: GenCtx): Gen =>
  (!c.invalid && c.r.chance(kickable(c) ? 30 : 4) ? registerStore(c) : undefined) ??
  onPiece(
    c,
    (t, p) => {
      const v = p.vma;
      const page = p.page + c.r.int(p.pages);
      const base = { op: 'touch' as const, task: t.name, map: p.name, page };
      if (v.kind === 'uacce') {
        const regionPage = v.regionPage + (page - p.page);
        const write = v.prot === 'rw' ? c.r.chance(25) : c.r.chance(5);
        if (!write) {
          const offset = regionPage === 0 ? (v.region === 0 ? c.r.pick(REGISTER_OFFSETS)! : c.r.int(256) * 8) : c.r.int(512) * 8;
          return valid({ ...base, offset, access: 'read' });
        }
        // stores go to the scratch half of page 0 (registers and ring belong to submit), or to
        // ACK (consumes the queue's news), or anywhere on later pages
        const offset = regionPage !== 0 ? c.r.int(512) * 8 : v.region === 0 && c.r.chance(15) ? 0x28 : 0x800 + c.r.int(256) * 8;
        return valid({ ...base, offset, access: 'write', value: value64(c) });
      }
      const offset = c.r.int(512) * 8;
      return c.r.chance(40) ? valid({ ...base, offset, access: 'write', value: value64(c) }) : valid({ ...base, offset, access: 'read' });
    },
    (t, map) => ({ op: 'touch', task: t.name, map, page: 0, offset: 0, access: 'read' }),
  );

/**
 * A doorbell far ahead of what the engine consumed (or behind it, which is 2^32 - k ahead): the
 * engine keeps executing ring slots until the queue stops. The CQ_HEAD half keeps its value.
 */
function doorbellValue(c: GenCtx, qid: number): string {
  const q = c.view.s.queues.get(qid)!;
  const consumed = q.ctr.consumed ?? 0;
  const ahead = c.r.weighted([
    [64, 3],
    [0x1000, 4],
    [0x7fff0000, 3],
  ] as const);
  return hex64((consumed + ahead) >>> 0, consumed >>> 0);
}

const fork = (c: GenCtx): Gen => {
  const child = c.taskName();
  if (child === undefined) return undefined;
  const t = c.pickTask(c.view.tasks());
  if (t === undefined) return undefined;
  return valid({ op: 'fork', task: t.name, child });
};

const exit = (c: GenCtx): Gen => {
  const alive = c.view.tasks();
  if (alive.length < 2) return c.tasksLeft() > 0 ? { need: 'fork' } : undefined;
  const others = alive.filter((t) => !c.view.isRoot(t));
  // t0 exits rarely: the rest of the program then runs in its children
  const victim = others.length > 0 && !c.r.chance(5) ? c.r.pick(others)! : c.r.pick(alive)!;
  return valid({ op: 'exit', task: victim.name });
};

export const CORE_GEN: FamilyGen = {
  kinds: { close, dup, alloc, munmap, mremap, madvise, mprotect, touch, fork, exit },
};
