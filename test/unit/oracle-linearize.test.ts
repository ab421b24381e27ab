/**
 * The oracle's check of concurrent groups: results are accepted when some real-time-consistent
 * order of the group's ops gives them in the model, and a divergence otherwise (results are made
 * here, as the agent would report them).
 */
import { describe, expect, it } from 'vitest';
import { slotAddress } from '../../harness/agent/conventions.js';
import type { RawResult } from '../../harness/agent/observe.js';
import { slotTable } from '../../harness/agent/wire.js';
import { profileFor } from '../../harness/model/index.js';
import { checkProgram, currentDivergenceTitle, realTimeBefore, realTimeOrders } from '../../harness/oracle/check.js';
import { errnoNumber } from '../../harness/program/errno.js';
import { checkProgram as parse } from '../../harness/program/parse.js';
import { DEFAULT_DEVICE, type Op, type Program } from '../../harness/program/types.js';

const profile = profileFor('6.12.118+deb12-amd64', { arch: 'x86_64', distro: 'debian' });

function prog(ops: Op[], device = {}): Program {
  return parse({ format: 'svadiff-program', version: 2, device: { ...DEFAULT_DEVICE, ...device }, ops }, 'test');
}

const ok = (extra: Partial<RawResult> = {}): RawResult => ({ ret: 0n, errno: 0, signal: 0, data: '', aux: '', ...extra });
const fail = (e: string, extra: Partial<RawResult> = {}): RawResult => ({ ret: -1n, errno: errnoNumber(e), signal: 0, data: '', aux: '', ...extra });
const at = (t0: number, t1: number) => ({ t0, t1 });

/** Results of a setup prefix where every op succeeds; mmap results land at their slots. */
function setupResults(p: Program, n: number): RawResult[] {
  const slots = slotTable(p);
  return p.ops.slice(0, n).map((op) => {
    if (op.op === 'mmap' || op.op === 'alloc') return ok({ aux: '0x' + slotAddress(slots.maps.get(op.map)!).toString(16) });
    if (op.op === 'open') return ok({ data: '/dev/svt0-0' });
    return ok();
  });
}

describe('orders consistent with real time', () => {
  it('an op that ended before another began comes first; overlapping ones either way', () => {
    expect(realTimeOrders(2, [[], []])).toEqual([
      [0, 1],
      [1, 0],
    ]);
    const before = realTimeBefore([ok(at(10, 20)), ok(at(30, 40)), ok(at(15, 35))]);
    expect(before).toEqual([[], [0], []]);
    expect(realTimeOrders(3, before)).toEqual([
      [0, 1, 2],
      [0, 2, 1],
      [2, 0, 1],
    ]);
  });
});

describe('linearizability of concurrent groups', () => {
  const base: Op[] = [
    { op: 'open', task: 't0', fd: 'q', dev: 0, via: 'path' },
    { op: 'fork', task: 't0', child: 't1' },
  ];

  it('accepts what one of the orders gives, and follows that order', () => {
    // t1 maps region 0 while t0 removes the device: mmap then remove, or remove then mmap (ENXIO)
    const p = prog([
      ...base,
      { op: 'remove', task: 't0', dev: 0, group: 1 },
      { op: 'mmap', task: 't1', map: 'm', fd: 'q', region: 0, pages: 1, group: 1 },
      { op: 'touch', task: 't1', map: 'm', page: 0, offset: 0, access: 'read' },
    ]);
    const pre = setupResults(p, 2);
    const addr = '0x' + slotAddress(slotTable(p).maps.get('m')!).toString(16);
    // mmap first: the mapping is zapped by the removal, touching it is SIGBUS
    const r1 = checkProgram(p, profile, [...pre, ok(at(10, 50)), ok({ aux: addr, ...at(20, 30) }), { ...fail('EFAULT'), ret: -1n, errno: 0, signal: 7 }]);
    expect(r1.divergence).toBeUndefined();
    expect(r1.groups).toEqual([{ first: 2, count: 2, orders: [[3, 2]], tried: 2 }]);
    expect(r1.ops[4]!.verdict).toBe('match');
    // remove first: mmap ENXIO, nothing mapped: SIGSEGV
    const r2 = checkProgram(p, profile, [...pre, ok(at(10, 50)), fail('ENXIO', at(20, 60)), { ...ok(), ret: -1n, signal: 11 }]);
    expect(r2.divergence).toBeUndefined();
    expect(r2.groups[0]!.orders).toEqual([[2, 3]]);
  });

  it('refuses an order real time rules out', () => {
    const p = prog([
      ...base,
      { op: 'remove', task: 't0', dev: 0, group: 1 },
      { op: 'mmap', task: 't1', map: 'm', fd: 'q', region: 0, pages: 1, group: 1 },
    ]);
    const pre = setupResults(p, 2);
    // mmap ENXIO needs the removal first, but the mmap ended before the removal began
    const r = checkProgram(p, profile, [...pre, ok(at(100, 120)), fail('ENXIO', at(10, 20))]);
    expect(r.divergence?.index).toBe(3);
    const title = 'mmap (concurrent with remove): expected one of {ENXIO, ok}, got ENXIO (no order of the group gives it) [mmap.ok, mmap.zombie]';
    expect(r.divergence?.title).toBe(title);
    expect(r.groups[0]).toMatchObject({ orders: [], tried: 1 });
    // the same group written the other way round is the same divergence, with the same title
    const swapped = prog([
      ...base,
      { op: 'mmap', task: 't1', map: 'm', fd: 'q', region: 0, pages: 1, group: 1 },
      { op: 'remove', task: 't0', dev: 0, group: 1 },
    ]);
    const s = checkProgram(swapped, profile, [...pre, fail('ENXIO', at(10, 20)), ok(at(100, 120))]);
    expect(s.divergence?.title).toBe(title);
    // and a store's title of the unsorted kind reads as the sorted one
    expect(currentDivergenceTitle(title.replace('[mmap.ok, mmap.zombie]', '[mmap.zombie, mmap.ok]'))).toBe(title);
    expect(currentDivergenceTitle('sysfs_read available_instances (concurrent with remove, exit): expected one of {ok, ENOENT}, got ENODEV [sysfs.read, sysfs.gone]')).toBe(
      'sysfs_read available_instances (concurrent with exit, remove): expected one of {ENOENT, ok}, got ENODEV [sysfs.gone, sysfs.read]',
    );
  });

  it('refuses results that are each possible but in no one order together', () => {
    // one queue to give: two opens at once cannot both get it
    const p = prog(
      [
        { op: 'fork', task: 't0', child: 't1' },
        { op: 'open', task: 't0', fd: 'a', dev: 0, via: 'path', group: 1 },
        { op: 'open', task: 't1', fd: 'b', dev: 0, via: 'path', group: 1 },
      ],
      { queue_limit: 1 },
    );
    const both = checkProgram(p, profile, [ok(), ok({ data: '/dev/svt0-0', ...at(10, 30) }), ok({ data: '/dev/svt0-0', ...at(15, 25) })]);
    expect(both.divergence?.title).toBe('open (concurrent with open): expected one of {EBUSY, ok}, got ok (no order of the group gives it) [open.busy, open.ok]');
    const one = checkProgram(p, profile, [ok(), fail('EBUSY', at(10, 30)), ok({ data: '/dev/svt0-0', ...at(15, 25) })]);
    expect(one.divergence).toBeUndefined();
    expect(one.groups[0]!.orders).toEqual([[2, 1]]);
  });

  it('a sysfs read inside a removal may see the queues put but the attributes still there', () => {
    // uacce_remove() puts queues one by one, then cdev_device_del(); available_instances_show()
    // takes no lock it holds: seen in a 6.12 fuzz run (queue_limit 1, one queue: "1", neither 0 nor ENOENT)
    const p = prog(
      [
        { op: 'open', task: 't0', fd: 'q', dev: 0, via: 'path' },
        { op: 'fork', task: 't0', child: 't1' },
        { op: 'remove', task: 't0', dev: 0, group: 1 },
        { op: 'sysfs_read', task: 't1', dev: 0, attr: 'available_instances', group: 1 },
      ],
      { queue_limit: 1 },
    );
    const pre = setupResults(p, 2);
    const read = (v: string, t: { t0: number; t1: number }) => ok({ data: v, ...t });
    const inside = checkProgram(p, profile, [...pre, ok(at(10, 50)), read('1\n', at(20, 30))]);
    expect(inside.divergence).toBeUndefined();
    expect(inside.ops[3]!.rules).toEqual(['sysfs.read']);
    // before the removal "0", after it ENOENT: both still fine
    expect(checkProgram(p, profile, [...pre, ok(at(10, 50)), read('0\n', at(20, 30))]).divergence).toBeUndefined();
    // but not when the read ended before the removal began: then only "0" will do
    const early = checkProgram(p, profile, [...pre, ok(at(100, 150)), read('1\n', at(20, 30))]);
    expect(early.divergence?.title).toBe('sysfs_read available_instances (concurrent with remove): expected one of {ENODEV, ENOENT, ok}, got ok (no order of the group gives it) [sysfs.gone, sysfs.read]');
    // the file opened before the attributes went and read after: ENODEV (kernfs_seq_start), seen in a replay
    const across = checkProgram(p, profile, [...pre, ok(at(10, 50)), fail('ENODEV', at(20, 60))]);
    expect(across.divergence).toBeUndefined();
    expect(across.ops[3]!.rules).toEqual(['sysfs.read-removed']);
    expect(checkProgram(p, profile, [...pre, ok(at(10, 50)), fail('ENODEV', at(60, 70))]).divergence?.index).toBeDefined();
    // a value no state during the removal has is still a divergence
    expect(checkProgram(p, profile, [...pre, ok(at(10, 50)), read('2\n', at(20, 30))]).divergence?.index).toBe(3);
  });

  it('an open that straddles a removal of its device may get EINVAL (!uacce->parent)', () => {
    const p = prog([
      { op: 'fork', task: 't0', child: 't1' },
      { op: 'open', task: 't0', fd: 'a', dev: 0, via: 'path', group: 1 },
      { op: 'remove', task: 't1', dev: 0, group: 1 },
      { op: 'open', task: 't0', fd: 'b', dev: 0, via: 'path' },
    ]);
    const r = checkProgram(p, profile, [ok(), fail('EINVAL', at(10, 40)), ok(at(15, 30)), fail('ENOENT')]);
    expect(r.divergence).toBeUndefined();
    expect(r.ops[1]!.rules).toEqual(['open.parent-gone']);
    // chrdev_open found the cdev before cdev_device_del, xa_load ran after xa_erase: ENODEV (seen on 7.2.13)
    const noDev = checkProgram(p, profile, [ok(), fail('ENODEV', at(10, 40)), ok(at(15, 30)), fail('ENOENT')]);
    expect(noDev.divergence).toBeUndefined();
    expect(noDev.ops[1]!.rules).toEqual(['open.no-device']);
    expect(checkProgram(p, profile, [ok(), fail('ENODEV', at(50, 60)), ok(at(15, 30)), fail('ENOENT')]).divergence?.unordered).toBe(true);
    // the open began after the removal ended: it cannot have found the device
    const late = checkProgram(p, profile, [ok(), fail('EINVAL', at(50, 60)), ok(at(15, 30)), fail('ENOENT')]);
    expect(late.divergence?.unordered).toBe(true);
    expect(late.groups[0]!.orders).toEqual([]);
    // an open of another device has nothing to do with it
    const other = prog(
      [
        { op: 'fork', task: 't0', child: 't1' },
        { op: 'open', task: 't0', fd: 'a', dev: 1, via: 'path', group: 1 },
        { op: 'remove', task: 't1', dev: 0, group: 1 },
      ],
      { devices: 2 },
    );
    expect(checkProgram(other, profile, [ok(), fail('EINVAL', at(10, 40)), ok(at(15, 30))]).divergence?.index).toBe(1);
  });

  it('a group divergence has one title whichever place its ops have in the group', () => {
    const ops = (readFirst: boolean): Op[] => {
      const rm: Op = { op: 'remove', task: 't0', dev: 0, group: 1 };
      const rd: Op = { op: 'sysfs_read', task: 't1', dev: 0, attr: 'api', group: 1 };
      return [{ op: 'fork', task: 't0', child: 't1' }, ...(readFirst ? [rd, rm] : [rm, rd])];
    };
    const titles = [false, true].map((readFirst) => {
      const p = prog(ops(readFirst));
      const res = [ok(), ok(at(10, 50)), ok(at(10, 50))];
      res[readFirst ? 1 : 2] = ok({ data: 'nonsense\n', ...at(10, 50) });
      return checkProgram(p, profile, res).divergence?.title;
    });
    expect(titles[0]).toBe('sysfs_read api (concurrent with remove): expected one of {ENODEV, ENOENT, ok}, got ok (another value) [sysfs.gone, sysfs.read]');
    expect(titles[1]).toBe(titles[0]);
  });
});
