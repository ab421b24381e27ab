/**
 * Arguments of the SVA ops (harness/ops/sva.ts) from the model's state: the PASID of a queue
 * through a task's mapping of its register page (shared, or a private copy), now and then
 * through anonymous memory or a name with nothing mapped (invalid on purpose).
 */
import type { FamilyGen, Gen, GenCtx } from './context.js';
import { invalid, missingMap, valid } from './core.js';

const pasid = (c: GenCtx): Gen => {
  const tasks = c.view.tasks();
  if (c.invalid) {
    const t = c.pickTask(tasks);
    const name = t === undefined ? undefined : missingMap(c, t);
    if (t !== undefined && name !== undefined) return invalid({ op: 'pasid', task: t.name, map: name });
  }
  // the op reads page 0 of the name's slot: a piece there that maps a queue's register page
  const heads = tasks.flatMap((t) =>
    c.view.pieces(t).filter((p) => p.page === 0 && p.vma.kind === 'uacce' && p.vma.region === 0 && p.vma.regionPage === 0).map((p) => ({ t, p })),
  );
  if (heads.length === 0 || c.r.chance(5)) {
    if (heads.length === 0 && c.r.chance(80)) return { need: 'mmap' };
    const t = c.pickTask(tasks);
    const any = t === undefined ? [] : c.view.pieces(t).filter((p) => p.page === 0);
    const p = c.r.pick(any);
    return t === undefined || p === undefined ? undefined : valid({ op: 'pasid', task: t.name, map: p.name });
  }
  const h = c.r.pick(heads)!;
  return valid({ op: 'pasid', task: h.t.name, map: h.p.name });
};

export const SVA_GEN: FamilyGen = { kinds: { pasid } };
