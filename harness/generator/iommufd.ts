/**
 * Arguments of the iommufd ops (harness/ops/iommufd.ts) from the model's state: iommufds and
 * cdevs of the right kind (a cdev mostly of an endpoint bound to vfio-pci, bound or not as the
 * op wants), object names of the right type in the descriptor's context (sometimes another
 * one: the id then means whatever that context has, or nothing), memory of the task (mostly
 * anonymous read-write pages, from `alloc`), IOVA ranges mostly of existing areas for an unmap.
 * Invalid on purpose: a descriptor the task does not have (EBADF). The ops are drawn only on a
 * kernel with iommufd (generator/vfio.ts vfioWeights).
 */
import { endpointDrivers } from '../model/vfio.js';
import { ctxObjects, cdevAttached, ioasAreas, iommufdFdsOf, objNamesOf, type IObj, type IommufdFdInfo } from '../model/iommufd.js';
import type { Task } from '../model/index.js';
import { IOVA_PAGES } from '../ops/iommufd.js';
import { LIMITS } from '../program/limits.js';
import type { Op } from '../ops/index.js';
import type { FamilyGen, Gen, GenCtx } from './context.js';
import { invalid, valid } from './core.js';

type Iofd = Extract<IommufdFdInfo, { kind: 'iommufd' }>;
type Cdev = Extract<IommufdFdInfo, { kind: 'cdev' }>;

const iommufds = (c: GenCtx, t: Task) => iommufdFdsOf(c.view.s, t.name).filter((f): f is Iofd => f.kind === 'iommufd');
const cdevs = (c: GenCtx, t: Task) => iommufdFdsOf(c.view.s, t.name).filter((f): f is Cdev => f.kind === 'cdev');

/** A descriptor name some task had that t does not have now (EBADF on purpose). */
function missing(c: GenCtx, t: Task): string | undefined {
  const has = new Set([...t.fds.keys(), ...iommufdFdsOf(c.view.s, t.name).map((f) => f.name)]);
  return c.r.pick(c.fdNames().filter((n) => !has.has(n)));
}

/** A task that has an iommufd (and one of them), or undefined. */
function withIommufd(c: GenCtx): { t: Task; fd: Iofd } | undefined {
  const t = c.pickTask(c.view.tasks().filter((x) => iommufds(c, x).length > 0));
  return t === undefined ? undefined : { t, fd: c.r.pick(iommufds(c, t))! };
}

/** An object name of t: mostly one naming an object of `types` in context ctx, else any. */
function objName(c: GenCtx, t: Task, ctx: number, types: readonly IObj['type'][]): string | undefined {
  const all = objNamesOf(c.view.s, t.name);
  const objs = new Map(ctxObjects(c.view.s, ctx));
  const good = all.filter((o) => types.includes(objs.get(o.id)?.type as IObj['type']));
  return (good.length > 0 && c.r.chance(85) ? c.r.pick(good) : c.r.pick(all))?.name;
}

const hasObj = (c: GenCtx, ctx: number, type: IObj['type']) => ctxObjects(c.view.s, ctx).some(([, o]) => o.type === type);

const open = (c: GenCtx): Gen => {
  const t = c.pickTask(c.view.tasks());
  return t === undefined ? undefined : valid({ op: 'iommufd', task: t.name, fd: c.fdName() });
};

/** An op on an iommufd; invalid on purpose: a name the task lacks. */
function onIommufd(c: GenCtx, mk: (t: Task, fd: string, ctx: number | undefined) => Op | { need: Op['op'] } | undefined): Gen {
  if (c.invalid) {
    const t = c.pickTask(c.view.tasks());
    const name = t === undefined ? undefined : missing(c, t);
    const op = t === undefined || name === undefined ? undefined : mk(t, name, undefined);
    if (op !== undefined && !('need' in op)) return invalid(op);
  }
  const x = withIommufd(c);
  if (x === undefined) return { need: 'iommufd' };
  const op = mk(x.t, x.fd.name, x.fd.ctx);
  return op === undefined || 'need' in op ? op : valid(op);
}

const ioasAlloc = (c: GenCtx): Gen => onIommufd(c, (t, fd) => ({ op: 'ioas_alloc', task: t.name, iommufd: fd, obj: c.objName() }));

const ioasMap = (c: GenCtx): Gen =>
  onIommufd(c, (t, fd, ctx) => {
    if (ctx !== undefined && !hasObj(c, ctx, 'ioas') && c.r.chance(80)) return { need: 'ioas_alloc' };
    const ioas = objName(c, t, ctx ?? -1, ['ioas']);
    // memory: mostly anonymous read-write pages of this task
    const pieces = c.view.pieces(t);
    const anon = pieces.filter((p) => p.vma.kind === 'anon' && p.vma.prot === 'rw');
    if (anon.length === 0 && c.r.chance(85)) return { need: 'alloc' };
    const p = anon.length > 0 && c.r.chance(90) ? c.r.pick(anon)! : c.r.pick(pieces);
    if (ioas === undefined || p === undefined) return ioas === undefined ? { need: 'ioas_alloc' } : { need: 'alloc' };
    const pages = 1 + c.r.int(Math.min(p.pages, 4));
    // now and then pages just past the piece (mostly nothing there: EFAULT once pinned, at
    // once with a domain, else when the IOAS gets its first)
    const past = c.r.chance(20) && p.page + p.pages + pages <= LIMITS.maxPages;
    const page = past ? p.page + p.pages : p.page + c.r.int(p.pages - pages + 1);
    const iova = c.r.int(IOVA_PAGES - pages + 1);
    return { op: 'ioas_map', task: t.name, iommufd: fd, ioas, map: p.name, page, iova, pages, write: !c.r.chance(20) };
  });

const ioasUnmap = (c: GenCtx): Gen =>
  onIommufd(c, (t, fd, ctx) => {
    const ioas = objName(c, t, ctx ?? -1, ['ioas']);
    if (ioas === undefined) return { need: 'ioas_alloc' };
    const id = objNamesOf(c.view.s, t.name).find((o) => o.name === ioas)!.id;
    const areas = ctx === undefined ? [] : ioasAreas(c.view.s, ctx, id);
    // mostly an existing area, sometimes a range around or across areas
    const a = c.r.chance(75) ? c.r.pick(areas) : undefined;
    const iova = a?.iova ?? c.r.int(IOVA_PAGES);
    const pages = a?.pages ?? 1 + c.r.int(IOVA_PAGES - iova);
    return { op: 'ioas_unmap', task: t.name, iommufd: fd, ioas, iova, pages };
  });

const cdev = (c: GenCtx): Gen => {
  const t = c.pickTask(c.view.tasks());
  if (t === undefined) return undefined;
  // mostly an endpoint bound to vfio-pci (else ENOENT), one without an open cdev first
  const vfio = Array.from({ length: c.device.devices }, (_, i) => i).filter((e) => endpointDrivers(c.view.s)[e] === 'vfio');
  if (vfio.length === 0 && c.r.chance(80)) return { need: 'pci_bind' };
  const open = new Set(c.view.tasks().flatMap((x) => cdevs(c, x).map((f) => f.ep)));
  const fresh = vfio.filter((e) => !open.has(e));
  const dev = fresh.length > 0 && c.r.chance(70) ? c.r.pick(fresh)! : vfio.length > 0 && c.r.chance(90) ? c.r.pick(vfio)! : c.r.int(c.device.devices);
  return valid({ op: 'vfio_cdev', task: t.name, fd: c.fdName(), dev });
};

/** A task with a cdev (mostly one `want` holds for) and an op on it; invalid on purpose: a name it lacks. */
function onCdev(
  c: GenCtx,
  want: (f: Cdev) => boolean,
  mk: (t: Task, f: Cdev | undefined, name: string) => Op | { need: Op['op'] } | undefined,
  invalidOther?: (t: Task, cdev: string) => Op | undefined,
): Gen {
  const t = c.pickTask(c.view.tasks().filter((x) => cdevs(c, x).length > 0));
  if (c.invalid) {
    // a cdev the task has with another argument the task lacks, or a cdev name it lacks
    const other = t !== undefined && invalidOther !== undefined && c.r.chance(50) ? invalidOther(t, c.r.pick(cdevs(c, t))!.name) : undefined;
    if (other !== undefined) return invalid(other);
    const ti = c.pickTask(c.view.tasks());
    const name = ti === undefined ? undefined : missing(c, ti);
    const op = ti === undefined || name === undefined ? undefined : mk(ti, undefined, name);
    if (op !== undefined && !('need' in op)) return invalid(op);
  }
  if (t === undefined) return { need: 'vfio_cdev' };
  const all = cdevs(c, t);
  const good = all.filter(want);
  const f = (good.length > 0 && c.r.chance(85) ? c.r.pick(good) : c.r.pick(all))!;
  const op = mk(t, f, f.name);
  return op === undefined || 'need' in op ? op : valid(op);
}

/** No device of ep's IOMMU group has the test driver (which owns the group's DMA: a bind gets EPERM). */
function groupFree(c: GenCtx, ep: number): boolean {
  const v = c.view.s.vfio!;
  return v.groups[v.groupOf[ep]!]!.eps.every((e) => v.drivers[e] !== 'test');
}

const bind = (c: GenCtx): Gen =>
  onCdev(
    c,
    (f) => f.ctx === null && groupFree(c, f.ep),
    (t, f, name) => {
      const fds = iommufds(c, t);
      if (fds.length === 0) return { need: 'iommufd' };
      // the test driver on another device of the group: unbind that one first, mostly
      const v = c.view.s.vfio!;
      const holder = f === undefined ? undefined : v.groups[v.groupOf[f.ep]!]!.eps.find((e) => v.drivers[e] === 'test');
      if (holder !== undefined && c.r.chance(70)) return { op: 'pci_unbind', task: t.name, dev: holder };
      return { op: 'vfio_bind_iommufd', task: t.name, device: name, iommufd: c.r.pick(fds)!.name, obj: c.objName() };
    },
    // invalid on purpose, the other way: an iommufd name the task lacks (the runtime passes -1: EINVAL)
    (t, name) => {
      const gone = missing(c, t);
      return gone === undefined ? undefined : { op: 'vfio_bind_iommufd', task: t.name, device: name, iommufd: gone, obj: c.objName() };
    },
  );

const hwptAlloc = (c: GenCtx): Gen =>
  onIommufd(c, (t, fd, ctx) => {
    if (ctx !== undefined && !hasObj(c, ctx, 'device') && c.r.chance(80)) return { need: 'vfio_bind_iommufd' };
    if (ctx !== undefined && !hasObj(c, ctx, 'ioas') && c.r.chance(80)) return { need: 'ioas_alloc' };
    const devobj = objName(c, t, ctx ?? -1, ['device']);
    const pt = objName(c, t, ctx ?? -1, c.r.chance(70) ? ['ioas'] : ['hwpt', 'device']);
    if (devobj === undefined || pt === undefined) return { need: devobj === undefined ? 'vfio_bind_iommufd' : 'ioas_alloc' };
    return { op: 'hwpt_alloc', task: t.name, iommufd: fd, obj: c.objName(), devobj, pt };
  });

const attach = (c: GenCtx): Gen =>
  onCdev(
    c,
    (f) => f.ctx !== null,
    (t, f, name) => {
      if (f !== undefined && f.ctx === null && c.r.chance(70)) return { need: 'vfio_bind_iommufd' };
      const ctx = f?.ctx ?? -1;
      // an IOAS or a HWPT of its context (a replace when attached)
      // now and then any name (an id of another context, or of an object gone: ENOENT)
      const pt = c.r.chance(10) ? c.r.pick(objNamesOf(c.view.s, t.name))?.name : (objName(c, t, ctx, c.r.chance(50) ? ['ioas'] : ['hwpt']) ?? objName(c, t, ctx, ['ioas', 'hwpt']));
      if (pt === undefined) return { need: 'ioas_alloc' };
      return { op: 'vfio_attach', task: t.name, device: name, pt };
    },
  );

const detach = (c: GenCtx): Gen =>
  onCdev(
    c,
    (f) => f.ctx !== null && cdevAttached(c.view.s, f.ctx, f.ep),
    (t, _f, name) => ({ op: 'vfio_detach', task: t.name, device: name }),
  );

const destroy = (c: GenCtx): Gen =>
  onIommufd(c, (t, fd, ctx) => {
    const obj = objName(c, t, ctx ?? -1, ['ioas', 'hwpt', 'device']);
    return obj === undefined ? { need: 'ioas_alloc' } : { op: 'iommufd_destroy', task: t.name, iommufd: fd, obj };
  });

export const IOMMUFD_GEN: FamilyGen = {
  kinds: {
    iommufd: open,
    ioas_alloc: ioasAlloc,
    ioas_map: ioasMap,
    ioas_unmap: ioasUnmap,
    vfio_cdev: cdev,
    vfio_bind_iommufd: bind,
    hwpt_alloc: hwptAlloc,
    vfio_attach: attach,
    vfio_detach: detach,
    iommufd_destroy: destroy,
  },
};
