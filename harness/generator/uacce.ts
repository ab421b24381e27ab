/**
 * Arguments of the uacce ops (harness/ops/uacce.ts) from the model's state: opens of present
 * devices with a queue to spare, mmaps of free regions of live queues, work items through a
 * queue a task has mapped and started (the steps toward one when none is ready), ioctls that
 * suit the queue's state, and the races of concurrent groups around one queue (removal, release,
 * unmapping, mapping, starting). Invalid on purpose: a descriptor the task does not have, a
 * removed device, a mapping name with nothing mapped.
 */
import type { Queue, Task } from '../model/index.js';
import { isBound } from '../model/sva.js';
import { SYSFS_ATTRS, type IoctlCmd, type Op, type SysfsAttr } from '../ops/index.js';
import { regionPages } from '../device/testdev.js';
import { hex64 } from '../device/memory.js';
import { LIMITS } from '../program/limits.js';
import type { Prot } from '../program/types.js';
import type { FamilyGen, Gen, GenCtx, Made, RaceGen } from './context.js';
import { invalid, kickable, missingFd, missingMap, registerStore, valid, value64 } from './core.js';

const fdsOf = (c: GenCtx, t: Task) => c.view.fds(t);

const open = (c: GenCtx): Gen => {
  const removed = c.view.removedDevices();
  const bound = c.view.boundDevices();
  if (c.invalid || bound.length === 0) {
    const t = c.pickTask(c.view.tasks());
    if (t === undefined) return undefined;
    if (removed.length > 0 && (c.invalid || c.r.chance(30))) {
      // a removed device: its node is gone (path), or stale (a second node made before)
      const via = c.r.chance(70) ? 'path' : 'mknod';
      return invalid({ op: 'open', task: t.name, fd: c.fdName(), dev: c.r.pick(removed)!, via });
    }
    const of = c.invalid ? missingFd(c, t) : undefined;
    if (of !== undefined) return invalid({ op: 'open', task: t.name, fd: c.fdName(), dev: 0, via: 'procfd', of });
    if (bound.length === 0) return { need: 'add' };
  }
  const free = bound.filter((d) => !c.view.deviceFull(d));
  // every device at its queue limit: free one first, or ask for one more now and then (EBUSY)
  if (free.length === 0 && !c.r.chance(15)) return c.view.tasks().some((t) => t.fds.size > 0) ? { need: 'close' } : undefined;
  const dev = c.r.pick(free.length > 0 ? free : bound)!;
  const t = c.pickTask(c.view.tasks());
  if (t === undefined) return undefined;
  const via = c.r.weighted([
    ['path', 70],
    ['mknod', 15],
    ['procfd', 15],
  ] as const);
  const own = fdsOf(c, t).filter((f) => f.q.devIndex === dev);
  if (via === 'procfd' && own.length > 0) return valid({ op: 'open', task: t.name, fd: c.fdName(), dev, via, of: c.r.pick(own)!.name });
  return valid({ op: 'open', task: t.name, fd: c.fdName(), dev, via: via === 'procfd' ? 'path' : via });
};

/** A prot for a new queue mapping: mostly rw (submit needs rw). */
function mapProt(c: GenCtx): Prot {
  return c.r.weighted<Prot>([
    ['rw', 82],
    ['r', 12],
    ['none', 6],
  ]);
}

const mmap = (c: GenCtx): Gen => {
  if (c.invalid) {
    const t = c.pickTask(c.view.tasks());
    const fd = t === undefined ? undefined : missingFd(c, t);
    if (t !== undefined && fd !== undefined) return invalid({ op: 'mmap', task: t.name, map: c.mapName(), fd, region: c.r.int(2), pages: 1, prot: 'rw', shared: true });
  }
  const d = c.device;
  const holders = c.view.tasks().filter((t) => fdsOf(c, t).length > 0);
  const t = c.pickTask(holders);
  if (t === undefined) return { need: 'open' };
  const fds = fdsOf(c, t);
  const regions = ([0, 1] as const).filter((r) => regionPages(d, r) > 0);
  const free = fds.flatMap((f) => (c.view.live(f.q) ? regions.filter((r) => !c.view.regionTaken(f.q, r)).map((r) => ({ f, r })) : []));
  const base = { op: 'mmap' as const, task: t.name, map: c.mapName(), shared: !c.r.chance(12), prot: mapProt(c) };
  // a region already taken (EEXIST) often: after a partial munmap or a failed mremap the
  // kernel may have freed it while the model's mapping remains (the known region bugs). At 7 %
  // two 10-minute 6.12 runs found that bug 0 and 1 times where the old generator found it 11
  // times; 30 % gives mmap.exists 338 times in 1,500 programs (102 at 7 %, old generator 599)
  const variant = c.r.weighted([
    ['free', 55],
    ['taken', 30],
    ['too-long', 4],
    ['bad-region', 3],
    ['empty-region', 2],
    ['zombie', 6],
  ] as const);
  if (variant === 'bad-region') return valid({ ...base, fd: c.r.pick(fds)!.name, region: 2 + c.r.int(3), pages: 1 });
  const empty = ([0, 1] as const).filter((r) => regionPages(d, r) === 0);
  if (variant === 'empty-region' && empty.length > 0) return valid({ ...base, fd: c.r.pick(fds)!.name, region: c.r.pick(empty)!, pages: 1 });
  if (variant === 'zombie') {
    const z = fds.filter((f) => f.q.state === 'ZOMBIE');
    if (z.length > 0) return valid({ ...base, fd: c.r.pick(z)!.name, region: c.r.int(2), pages: 1 });
  }
  if (variant === 'taken') {
    const taken = fds.flatMap((f) => regions.filter((r) => c.view.regionTaken(f.q, r)).map((r) => ({ f, r })));
    const x = c.r.pick(taken);
    if (x !== undefined) return valid({ ...base, fd: x.f.name, region: x.r, pages: 1 });
  }
  const x = c.r.pick(free);
  if (x === undefined) return { need: 'open' };
  const max = regionPages(d, x.r);
  const pages = variant === 'too-long' ? Math.min(LIMITS.maxPages, max + 1) : 1 + c.r.int(max);
  return valid({ ...base, fd: x.f.name, region: x.r, pages });
}

/**
 * The next step toward a work item: a queue of some task with both regions mapped at the start
 * of a slot, shared and writable, started, and anonymous memory in its opener's address space.
 * The queue closest to that gets its next missing piece (an open when none can get there).
 */
function towardSubmit(c: GenCtx): Gen {
  const d = c.device;
  if (d.mmio_pages === 0 || d.dus_pages === 0) return undefined; // no doorbell or no ring to map
  let best: { t: Task; q: Queue; fd: string; missing: Op[] } | undefined;
  for (const t of c.view.tasks()) {
    const paths = c.view.submitPaths(t);
    for (const f of fdsOf(c, t)) {
      const q = f.q;
      if (!c.view.live(q)) continue;
      const path = paths.find((p) => p.q.id === q.id);
      const missing: Op[] = [];
      let blocked = false;
      for (const region of [0, 1] as const) {
        if (path !== undefined) break;
        const have = c.view.queuePieces(t, q.id).some((p) => p.page === 0 && p.vma.region === region && p.vma.regionPage === 0 && p.vma.shared && p.vma.prot === 'rw');
        if (have) continue;
        if (c.view.regionTaken(q, region)) blocked = true;
        else missing.push({ op: 'mmap', task: t.name, map: c.mapName(), fd: f.name, region, pages: 1 + c.r.int(regionPages(d, region)), prot: 'rw', shared: true });
      }
      if (blocked) continue;
      if (c.view.engineTargets(q).length === 0) {
        const opener = c.view.task(q.openerTask);
        if (opener !== undefined) missing.push({ op: 'alloc', task: opener.name, map: c.bufName(), pages: 1 + c.r.int(3) });
      }
      if (q.state === 'INIT') missing.push({ op: 'ioctl', task: t.name, fd: f.name, cmd: 'START_Q' });
      if (best === undefined || missing.length < best.missing.length) best = { t, q, fd: f.name, missing };
    }
  }
  if (best !== undefined && best.missing.length > 0) return valid(best.missing[0]!, true);
  if (best !== undefined) return undefined; // ready: the caller submits
  return { need: 'open' };
}

const submit = (c: GenCtx): Gen => {
  if (c.invalid) {
    const t = c.pickTask(c.view.tasks());
    const name = t === undefined ? undefined : missingMap(c, t);
    if (t !== undefined && name !== undefined) {
      return invalid({ op: 'submit', task: t.name, mmio: name, dus: name, work: 'read', target: name, page: 0, offset: 0, ack: true });
    }
  }
  const paths = c.view.tasks().flatMap((t) => c.view.submitPaths(t).map((p) => ({ t, ...p })));
  const started = paths.filter((p) => p.q.state === 'STARTED' || (p.q.state === 'ZOMBIE' && c.r.chance(20)));
  // a queue that is not started: the work item is dropped and the submit times out (200 ms)
  const pool = started.length > 0 ? started : paths.length > 0 && c.r.chance(4) ? paths : [];
  if (pool.length === 0) return towardSubmit(c);
  // now and then the doorbell rung by a plain store instead: the engine runs in the background
  if (c.r.chance(12) && kickable(c)) return registerStore(c);
  const p = c.r.pick(pool)!;
  // a bound queue another task submits to (a fork child mapped it): now and then its opener
  // exits first, so that the work item meets an address space that is gone (sva.ts)
  const opener = isBound(p.q) && p.q.openerTask !== p.t.name ? c.view.task(p.q.openerTask) : undefined;
  if (opener !== undefined && c.r.chance(30)) return valid({ op: 'exit', task: opener.name }, true);
  const targets = c.view.engineTargets(p.q);
  if (targets.length === 0 && c.r.chance(70)) {
    const owner = c.view.task(p.q.openerTask);
    if (owner !== undefined) return valid({ op: 'alloc', task: owner.name, map: c.bufName(), pages: 1 + c.r.int(3) }, true);
  }
  // the engine works in the opener's address space: any page of any writable buffer there;
  // sometimes where it must fault (a queue mapping, an unmapped name, a page it cannot write)
  let target: string;
  let page: number;
  const tp = targets.length > 0 && !c.r.chance(12) ? c.r.pick(targets) : undefined;
  if (tp !== undefined) {
    target = tp.name;
    page = tp.page + c.r.int(tp.pages);
  } else {
    const any = c.view.mapNames();
    target = c.r.pick(any) ?? p.mmio;
    page = c.r.int(4);
  }
  const work = c.r.weighted([
    ['write', 55],
    ['read', 40],
    ['invalid', 5],
  ] as const);
  const base = { op: 'submit' as const, task: p.t.name, mmio: p.mmio, dus: p.dus, target, page, offset: c.r.int(512) * 8, ack: !c.r.chance(25) };
  return valid(work === 'write' ? { ...base, work, value: value64(c) } : { ...base, work });
};

/** Commands fs/ioctl.c handles before the driver (harness/model/uacce.ts vfsIoctl), and numbers nobody knows. */
const VFS_CMDS = [0x5451, 0x5450, 0x5421, 0x5452, 0x5460, 0x2, 0xc020660b, 0x40049409, 0x80111500, 0x80811501, 0xc0045878];
const UNKNOWN_CMDS = [0x5702, 0x5710, 0x80085701, 0x1234];

const ioctl = (c: GenCtx): Gen => {
  if (c.invalid) {
    const t = c.pickTask(c.view.tasks());
    const fd = t === undefined ? undefined : missingFd(c, t);
    if (t !== undefined && fd !== undefined) return invalid({ op: 'ioctl', task: t.name, fd, cmd: 'START_Q' });
  }
  const t = c.pickTask(c.view.tasks().filter((x) => fdsOf(c, x).length > 0));
  if (t === undefined) return { need: 'open' };
  const f = c.r.pick(fdsOf(c, t))!;
  const fit: IoctlCmd = f.q.state === 'STARTED' ? 'PUT_Q' : 'START_Q';
  const cmd = c.r.weighted<() => IoctlCmd>([
    [() => fit, 60],
    [() => (fit === 'PUT_Q' ? 'START_Q' : 'PUT_Q'), 12],
    [() => 'PING', 10],
    [() => c.r.pick(VFS_CMDS)!, 12],
    [() => c.r.pick(UNKNOWN_CMDS)!, 6],
  ])();
  return valid({ op: 'ioctl', task: t.name, fd: f.name, cmd });
};

const poll = (c: GenCtx): Gen => {
  if (c.invalid) {
    const t = c.pickTask(c.view.tasks());
    const fd = t === undefined ? undefined : missingFd(c, t);
    if (t !== undefined && fd !== undefined) return invalid({ op: 'poll', task: t.name, fd, timeout_ms: 0 });
  }
  const t = c.pickTask(c.view.tasks().filter((x) => fdsOf(c, x).length > 0));
  if (t === undefined) return { need: 'open' };
  return valid({ op: 'poll', task: t.name, fd: c.r.pick(fdsOf(c, t))!.name, timeout_ms: c.r.chance(20) ? 10 : 0 });
};

const remove = (c: GenCtx): Gen => {
  const t = c.pickTask(c.view.tasks());
  if (t === undefined) return undefined;
  const bound = c.view.boundDevices();
  const removed = c.view.removedDevices();
  if ((c.invalid || bound.length === 0) && removed.length > 0) return invalid({ op: 'remove', task: t.name, dev: c.r.pick(removed)! });
  const dev = c.r.pick(bound);
  return dev === undefined ? undefined : valid({ op: 'remove', task: t.name, dev });
};

const add = (c: GenCtx): Gen => {
  const t = c.pickTask(c.view.tasks());
  if (t === undefined) return undefined;
  const bound = c.view.boundDevices();
  const removed = c.view.removedDevices();
  if (c.invalid && bound.length > 0) return invalid({ op: 'add', task: t.name, dev: c.r.pick(bound)! });
  const dev = c.r.pick(removed);
  return dev === undefined ? undefined : valid({ op: 'add', task: t.name, dev });
};

const sysfsDev = (c: GenCtx): { dev: number; intent: 'valid' | 'invalid' } | undefined => {
  const bound = c.view.boundDevices();
  const removed = c.view.removedDevices();
  if ((c.invalid || bound.length === 0) && removed.length > 0) return { dev: c.r.pick(removed)!, intent: 'invalid' };
  const dev = c.r.pick(bound);
  return dev === undefined ? undefined : { dev, intent: 'valid' };
};

const sysfsRead = (c: GenCtx): Gen => {
  const t = c.pickTask(c.view.tasks());
  const d = sysfsDev(c);
  if (t === undefined || d === undefined) return undefined;
  const attr = c.r.pick(SYSFS_ATTRS)!;
  return { op: { op: 'sysfs_read', task: t.name, dev: d.dev, attr }, intent: d.intent };
};

const SYSFS_VALUES = ['0', '1', '5', '65535', '65536', '4294967296', 'abc', '-1', '0x10', '12\n', ''];

const sysfsWrite = (c: GenCtx): Gen => {
  const t = c.pickTask(c.view.tasks());
  const d = sysfsDev(c);
  if (t === undefined || d === undefined) return undefined;
  const attr: SysfsAttr = c.r.chance(20) ? c.r.pick(SYSFS_ATTRS)! : 'isolate_strategy';
  return { op: { op: 'sysfs_write', task: t.name, dev: d.dev, attr, value: c.r.pick(SYSFS_VALUES)! }, intent: d.intent };
};

/**
 * A race around one live queue: two or three of its removal, the release of a descriptor or of
 * a task, the unmapping of one of its mappings, a mapping of it, starting or stopping it, a read
 * of its registers, a poll, another open of its device; each in a different task. These are the
 * paths of uacce's lock history (uacce_remove against release, mmap and the engine).
 */
const race: RaceGen = (c) => {
  const qs = c.view.queues().filter((q) => c.view.live(q));
  const alive = c.view.tasks();
  if (qs.length === 0) return { need: 'open' };
  if (alive.length < 2) return c.tasksLeft() > 0 ? { need: 'fork' } : undefined;
  const q = c.r.pick(qs)!;
  const holders = c.view.holders(q.id);
  type Role = (t: Task) => Op | undefined;
  const holderFd = (t: Task) => holders.find((h) => h.task.name === t.name)?.fd;
  const piece = (t: Task) => c.r.pick(c.view.queuePieces(t, q.id));
  const roles: [string, Role][] = [
    ['remove', (t) => ({ op: 'remove', task: t.name, dev: q.devIndex })],
    ['close', (t) => {
      const fd = holderFd(t);
      return fd === undefined ? undefined : { op: 'close', task: t.name, fd };
    }],
    ['exit', (t) => (c.view.isRoot(t) ? undefined : { op: 'exit', task: t.name })],
    ['munmap', (t) => {
      const p = piece(t);
      return p === undefined ? undefined : { op: 'munmap', task: t.name, map: p.name, page: p.page, pages: p.pages };
    }],
    ['mmap', (t) => {
      const fd = holderFd(t);
      const region = c.r.int(2) as 0 | 1;
      if (fd === undefined || regionPages(c.device, region) === 0) return undefined;
      return { op: 'mmap', task: t.name, map: c.mapName(), fd, region, pages: 1, prot: 'rw', shared: true };
    }],
    ['ioctl', (t) => {
      const fd = holderFd(t);
      return fd === undefined ? undefined : { op: 'ioctl', task: t.name, fd, cmd: c.r.chance(50) ? 'START_Q' : 'PUT_Q' };
    }],
    ['touch', (t) => {
      const p = piece(t);
      return p === undefined ? undefined : { op: 'touch', task: t.name, map: p.name, page: p.page, offset: 0x8 * c.r.int(7), access: 'read' };
    }],
    ['poll', (t) => {
      const fd = holderFd(t);
      return fd === undefined ? undefined : { op: 'poll', task: t.name, fd, timeout_ms: c.r.chance(30) ? 10 : 0 };
    }],
    ['open', (t) => ({ op: 'open', task: t.name, fd: c.fdName(), dev: q.devIndex, via: 'path' })],
    ['sysfs', (t) => ({ op: 'sysfs_read', task: t.name, dev: q.devIndex, attr: 'available_instances' })],
    ['kick', (t) => {
      // ring the doorbell of the started queue: its engine runs while the others act
      const at = c.view.registerPiece(t, q.id);
      if (at === undefined || q.drv !== 'STARTED') return undefined;
      return { op: 'touch', task: t.name, map: at.name, page: at.page, offset: 0x20, access: 'write', value: hex64(((q.ctr.consumed ?? 0) + 0x1000) >>> 0, (q.ctr.consumed ?? 0) >>> 0) };
    }],
  ];
  const want = alive.length >= 3 && c.r.chance(30) ? 3 : 2;
  const used = new Set<string>();
  const out: Made[] = [];
  let exits = 0;
  for (let tries = 0; tries < 12 && out.length < want; tries++) {
    const [name, role] = c.r.pick(roles)!;
    if (name === 'remove' && out.some((m) => m.op.op === 'remove')) continue;
    const t = c.r.pick(alive.filter((x) => !used.has(x.name)));
    if (t === undefined) break;
    const op = role(t);
    if (op === undefined) continue;
    // someone must be left alive after the group
    if (op.op === 'exit' && exits + 1 >= alive.length) continue;
    if (op.op === 'exit') exits++;
    used.add(t.name);
    out.push(valid(op));
  }
  return out.length >= 2 ? out : undefined;
};

export const UACCE_GEN: FamilyGen = {
  kinds: { open, mmap, submit, ioctl, poll, remove, add, sysfs_read: sysfsRead, sysfs_write: sysfsWrite },
  race,
};
