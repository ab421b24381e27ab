/**
 * mmap, munmap, mremap, madvise, touch and fork as they affect mappings (Spec "mmap",
 * "Using mappings", "fork and exit"; TD "mmap"; mm/mremap.c, mm/madvise.c).
 */
import { describe, expect, it } from 'vitest';
import { predict } from '../../harness/model/index.js';
import { O, run } from './model-helpers.js';

const mremap = (map: string, page: number, old_pages: number, new_pages: number, extra: Record<string, unknown> = {}) => ({
  op: 'mremap',
  map,
  page,
  old_pages,
  new_pages,
  ...extra,
});

describe('mmap', () => {
  it('region >= 2 is EINVAL before any state check, also on a removed device', () => {
    const r = run([O.open('q'), O.mmap('a', 'q', 2), O.remove(), O.mmap('b', 'q', 5), O.mmap('c', 'q', 0), O.mmap('d', 'q', 1)]);
    expect(r.out).toEqual(['ok("/dev/svt0-0")', 'EINVAL', 'ok', 'EINVAL', 'ENXIO', 'ENXIO']);
    expect(r.rules[1]).toBe('mmap.region-invalid');
  });

  it('one live mapping per region per queue, whoever made it', () => {
    const r = run([
      O.open('q'),
      O.mmap('a', 'q', 0),
      O.mmap('b', 'q', 0),
      O.mmap('c', 'q', 1),
      O.fork('t1'),
      { op: 'mmap', task: 't1', map: 'd', fd: 'q', region: 0, pages: 1 },
      O.open('q2'),
      O.mmap('e', 'q2', 0), // another queue has its own region table
    ]);
    expect(r.out).toEqual(['ok("/dev/svt0-0")', 'ok', 'EEXIST', 'ok', 'ok', 'EEXIST', 'ok("/dev/svt0-0")', 'ok']);
  });

  it('the driver refuses a region without pages and a mapping longer than the region', () => {
    const r = run([O.open('q'), O.mmap('a', 'q', 1), O.mmap('b', 'q', 0, 3), O.mmap('c', 'q', 0, 2), O.sread('region_dus_size')], {
      device: { dus_pages: 0, mmio_pages: 2 },
    });
    expect(r.out).toEqual(['ok("/dev/svt0-0")', 'EINVAL', 'EINVAL', 'ok', 'ENOENT']);
    expect(r.rules.slice(1, 3)).toEqual(['mmap.no-region', 'mmap.too-long']);
  });

  it('shows the test device contents: registers, fill pattern of scratch pages', () => {
    const r = run([
      O.open('q', { dev: 1 }),
      O.mmap('m', 'q', 0, 2),
      O.mmap('d', 'q', 1, 2),
      O.read('m', 0, 0x0), // MAGIC | VERSION << 32
      O.read('m', 0, 0x30), // DROPPED | DEV_INDEX << 32
      O.read('m', 0, 0x38), // reserved: 0
      O.read('m', 0, 0x100), // SVT_FILL(0, 0, 0x100)
      O.read('m', 1, 0x10), // SVT_FILL(0, 1, 0x10)
      O.read('d', 0, 0x7f8), // ring: 0
      O.read('d', 0, 0x800), // SVT_FILL(1, 0, 0x800)
      O.read('d', 1, 0xff8), // SVT_FILL(1, 1, 0xff8)
    ], { device: { devices: 2 } });
    expect(r.out.slice(3)).toEqual([
      'ok(0x253565444)',
      'ok(0x100000000)',
      'ok(0x0)',
      'ok(0x5356000000000100)',
      'ok(0x5356000001000010)',
      'ok(0x0)',
      'ok(0x5356010000000800)',
      'ok(0x5356010001000ff8)',
    ]);
  });
});

describe('munmap and the region table', () => {
  it('a region stays mapped until every page of its mapping is gone', () => {
    const r = run([
      O.open('q'),
      O.mmap('a', 'q', 0, 2),
      O.munmap('a', 0, 1),
      O.mmap('b', 'q', 0, 1),
      O.read('a', 1, 0x10),
      O.read('a', 0, 0),
      O.munmap('a', 1, 1),
      O.mmap('c', 'q', 0, 1),
    ]);
    expect(r.out).toEqual(['ok("/dev/svt0-0")', 'ok', 'ok', 'EEXIST', 'ok(0x5356000001000010)', 'SIGSEGV', 'ok', 'ok']);
  });

  it('the same holds for private mappings', () => {
    const r = run([O.open('q'), O.mmap('a', 'q', 1, 2, { shared: false }), O.munmap('a', 1, 1), O.mmap('b', 'q', 1), O.munmap('a', 0, 1), O.mmap('c', 'q', 1)]);
    expect(r.out).toEqual(['ok("/dev/svt0-0")', 'ok', 'ok', 'EEXIST', 'ok', 'ok']);
  });

  it('every piece of a split mapping holds the file: the queue goes with the last piece', () => {
    const r = run(
      [
        O.open('q'),
        O.mmap('a', 'q', 0, 3),
        O.munmap('a', 1, 1), // two pieces
        O.close('q'),
        O.munmap('a', 0, 1),
        O.sread('available_instances'),
        O.read('a', 2, 0x8), // the queue is still there and INIT
        O.munmap('a', 2, 1),
        O.sread('available_instances'),
      ],
      { device: { mmio_pages: 3 } },
    );
    expect(r.out).toEqual(['ok("/dev/svt0-0")', 'ok', 'ok', 'ok', 'ok', 'ok("3\\n")', 'ok(0x5356000002000008)', 'ok', 'ok("4\\n")']);
  });

  it('munmap of any range is 0, mapped or not', () => {
    expect(run([O.alloc('x', 2), O.munmap('x', 1, 4), O.munmap('x', 0, 64)]).out).toEqual(['ok', 'ok', 'ok']);
  });
});

describe('mremap of a queue mapping', () => {
  const base = [O.open('q'), O.mmap('m', 'q', 0, 2)];
  it('growing gives EFAULT', () => {
    expect(run([...base, mremap('m', 0, 2, 3)]).out[2]).toBe('EFAULT');
    expect(run([...base, mremap('m', 0, 1, 2)]).out[2]).toBe('EFAULT');
  });
  it('MREMAP_DONTUNMAP gives EINVAL (also when resizing)', () => {
    expect(run([...base, mremap('m', 0, 2, 2, { dontunmap: true, to: 'n' })]).out[2]).toBe('EINVAL');
    expect(run([...base, mremap('m', 0, 2, 1, { dontunmap: true, to: 'n' })]).out[2]).toBe('EINVAL');
  });
  it('moving gives EPERM and leaves the original intact, usable and its region mapped', () => {
    for (const kernel of ['6.1.0-41-amd64', '6.12.117+deb12-amd64', '7.2.13']) {
      const r = run([...base, mremap('m', 0, 2, 2, { move: true, to: 'n' }), O.read('m', 1, 0), O.read('n', 0, 0), O.mmap('o', 'q', 0)], { kernel });
      expect(r.out.slice(2), kernel).toEqual(['EPERM', 'ok(0x5356000001000000)', 'SIGSEGV', 'EEXIST']);
    }
  });
  it('a shrinking move unmaps the tail, then refuses the move', () => {
    const r = run([...base, mremap('m', 0, 2, 1, { move: true, to: 'n' }), O.read('m', 0, 0), O.read('m', 1, 0)]);
    expect(r.out.slice(2)).toEqual(['EPERM', 'ok(0x253565444)', 'SIGSEGV']);
  });
  it('shrinking succeeds and the region stays mapped while a piece remains', () => {
    const r = run([...base, mremap('m', 0, 2, 1), O.read('m', 1, 0), O.mmap('o', 'q', 0), O.munmap('m', 0, 1), O.mmap('p', 'q', 0)]);
    expect(r.out.slice(2)).toEqual(['ok', 'SIGSEGV', 'EEXIST', 'ok', 'ok']);
  });
  it('of an unmapped address: EFAULT', () => {
    expect(run([O.alloc('x'), O.munmap('x', 0, 1), mremap('x', 0, 1, 1)]).out[2]).toBe('EFAULT');
  });
  it('a same-size move across two pieces: EFAULT up to 6.16, EPERM from 6.17 (remap_move)', () => {
    const prog = [O.open('q'), O.mmap('m', 'q', 0, 3), O.munmap('m', 1, 1), mremap('m', 0, 3, 3, { move: true, to: 'n' }), O.read('m', 2, 0)];
    expect(run(prog, { device: { mmio_pages: 3 } }).out.slice(3)).toEqual(['EFAULT', 'ok(0x5356000002000000)']);
    expect(run(prog, { device: { mmio_pages: 3 }, kernel: '7.2.13' }).out.slice(3)).toEqual(['EPERM', 'ok(0x5356000002000000)']);
  });
});

describe('mremap of anonymous memory', () => {
  it('grows in place, moves (data follows), and DONTUNMAP leaves the old range empty', () => {
    const r = run([
      O.alloc('x', 1),
      O.write('x', '0x11'),
      mremap('x', 0, 1, 2),
      O.write('x', '0x22', 1),
      mremap('x', 0, 2, 2, { move: true, to: 'y' }),
      O.read('x', 0),
      O.read('y', 0),
      O.read('y', 1),
      mremap('y', 0, 2, 2, { dontunmap: true, to: 'z' }),
      O.read('y', 0),
      O.read('z', 0),
    ]);
    expect(r.out).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'SIGSEGV', 'ok(0x11)', 'ok(0x22)', 'ok', 'ok(0x0)', 'ok(0x11)']);
  });
  it('cannot grow a range that does not end the vma (no MREMAP_MAYMOVE): ENOMEM', () => {
    expect(run([O.alloc('x', 3), mremap('x', 0, 1, 2)]).out[1]).toBe('ENOMEM');
  });
  it('a same-size move across pieces: EFAULT up to 6.16; from 6.17 every piece moves, gaps kept', () => {
    const prog = [
      O.alloc('x', 3),
      O.write('x', '0x1', 0),
      O.write('x', '0x3', 2),
      O.munmap('x', 1, 1),
      mremap('x', 0, 3, 3, { move: true, to: 'y' }),
      O.read('y', 0),
      O.read('y', 1),
      O.read('y', 2),
    ];
    expect(run(prog).out.slice(4)).toEqual(['EFAULT', 'SIGSEGV', 'SIGSEGV', 'SIGSEGV']);
    expect(run(prog, { kernel: '7.2.13' }).out.slice(4)).toEqual(['ok', 'ok(0x1)', 'SIGSEGV', 'ok(0x3)']);
  });
});

describe('madvise(MADV_DOFORK)', () => {
  it('EINVAL on a queue mapping (VM_IO), 0 on anonymous memory, ENOMEM over a hole', () => {
    const r = run([O.open('q'), O.mmap('m', 'q', 0), O.alloc('x', 2), O.munmap('x', 1, 1), { op: 'madvise', map: 'm', page: 0, pages: 1 }, { op: 'madvise', map: 'x', page: 0, pages: 1 }, { op: 'madvise', map: 'x', page: 0, pages: 2 }, { op: 'madvise', map: 'x', page: 1, pages: 1 }]);
    expect(r.out.slice(4)).toEqual(['EINVAL', 'ok', 'ENOMEM', 'ENOMEM']);
  });
});

describe('mprotect', () => {
  it('accesses follow the new protection; the contents stay (mprotect(2))', () => {
    const r = run([
      O.alloc('x', 2),
      O.write('x', '0x7', 1),
      O.mprotect('x', 1, 1, 'r'),
      O.read('x', 1),
      O.write('x', '0x8', 1),
      O.write('x', '0x9', 0),
      O.mprotect('x', 0, 2, 'none'),
      O.read('x', 0),
      O.mprotect('x', 0, 2, 'rw'),
      O.read('x', 0),
      O.read('x', 1),
    ]);
    expect(r.out).toEqual(['ok', 'ok', 'ok', 'ok(0x7)', 'SIGSEGV', 'ok', 'ok', 'SIGSEGV', 'ok', 'ok(0x9)', 'ok(0x7)']);
    expect(r.rules[4]).toBe('touch.prot');
  });

  it('ENOMEM without a vma at the start; past a gap, after changing what comes before it', () => {
    const r = run([O.alloc('x', 3), O.munmap('x', 1, 1), O.mprotect('x', 1, 2, 'r'), O.mprotect('x', 0, 3, 'r'), O.write('x', '0x1', 0), O.write('x', '0x1', 2)]);
    expect(r.out.slice(2)).toEqual(['ENOMEM', 'ENOMEM', 'SIGSEGV', 'ok']);
    expect(r.rules.slice(2, 4)).toEqual(['mprotect.unmapped', 'mprotect.hole']);
  });

  it('splits the vma; pieces merge again as mm/vma.c merges them, per kernel', () => {
    const vmas = (rr: ReturnType<typeof run>) => rr.final.mms.get(rr.final.tasks.get('t0')!.mm)!.vmas.map((v) => `${v.pages}${v.prot}`);
    const on = (prog: Record<string, unknown>[]) => ['6.1.0-41-amd64', '6.12.117+deb12-amd64', '7.2.13'].map((kernel) => vmas(run(prog, { kernel })).join(' '));
    // read-only and back before any write: the pieces have no anon_vma and merge again
    expect(on([O.alloc('x', 3), O.mprotect('x', 1, 1, 'r'), O.mprotect('x', 1, 1, 'rw')])).toEqual(['3rw', '3rw', '3rw']);
    // an unfaulted piece made read-only keeps VM_ACCOUNT only on 6.1; on 6.1 the faulted piece
    // next to it still does not merge into it (its chain is empty: no anon_vma)
    const account = [O.alloc('x', 2), O.mprotect('x', 1, 1, 'r'), O.write('x', '0x1', 0), O.mprotect('x', 0, 1, 'r')];
    expect(on(account)).toEqual(['1r 1r', '1r 1r', '1r 1r']);
    // a faulted range merges into an unfaulted neighbour with the same flags from 6.16 on
    const faulted = [
      O.alloc('x', 2),
      O.mprotect('x', 1, 1, 'none'),
      O.write('x', '0x1', 0),
      O.mprotect('x', 0, 1, 'r'),
      O.mprotect('x', 1, 1, 'rw'),
      O.mprotect('x', 0, 1, 'rw'),
    ];
    expect(on(faulted)).toEqual(['1rw 1rw', '1rw 1rw', '2rw']);
  });

  it('a queue mapping: split pieces each hold the file; the region is mapped until the last goes', () => {
    const r = run(
      [
        O.open('q'),
        O.mmap('m', 'q', 0, 2),
        O.mprotect('m', 1, 1, 'none'),
        O.read('m', 0, 0),
        O.read('m', 1, 0),
        O.munmap('m', 0, 1),
        O.mmap('m2', 'q', 0, 1),
        O.close('q'),
        O.sread('available_instances'),
        O.munmap('m', 1, 1),
        O.sread('available_instances'),
      ],
      { device: { mmio_pages: 2 } },
    );
    expect(r.out.slice(2)).toEqual(['ok', 'ok(0x253565444)', 'SIGSEGV', 'ok', 'EEXIST', 'ok', 'ok("3\\n")', 'ok', 'ok("4\\n")']);
  });

  it('a work item gets what GUP allows: a read of PROT_READ memory, no write, nothing of PROT_NONE', () => {
    const start = [O.open('q'), O.mmap('m', 'q', 0), O.mmap('d', 'q', 1), O.ioctl('q', 'START_Q'), O.alloc('b', 2), O.write('b', '0x5', 1)];
    const r = run([
      ...start,
      O.mprotect('b', 1, 1, 'r'),
      O.submit('m', 'd', 'read', 'b', { page: 1 }),
      O.submit('m', 'd', 'write', 'b', { page: 1, value: '0x6' }),
      O.mprotect('b', 0, 1, 'none'),
      O.submit('m', 'd', 'read', 'b', { page: 0 }),
    ]);
    expect(r.out.slice(start.length)).toEqual(['ok', 'ok(done 0x5)', 'ok(fault)', 'ok', 'ok(fault)']);
  });
});

describe('touch', () => {
  it('SIGSEGV for an unmapped slot and for accesses the protection forbids', () => {
    const r = run([
      O.open('q'),
      O.mmap('r', 'q', 0, 1, { prot: 'r' }),
      O.mmap('n', 'q', 1, 1, { prot: 'none' }),
      O.read('r', 0, 0),
      O.write('r', '0x1', 0, 0x100),
      O.read('n'),
      O.read('r', 1, 0),
      O.alloc('x'),
      O.munmap('x', 0, 1),
      O.read('x'),
    ]);
    expect(r.out.slice(3)).toEqual(['ok(0x253565444)', 'SIGSEGV', 'SIGSEGV', 'SIGSEGV', 'ok', 'ok', 'SIGSEGV']);
  });

  it('a write to a private mapping goes to a private copy; the device page keeps its contents', () => {
    const r = run([
      O.open('q'),
      O.mmap('p', 'q', 0, 1, { shared: false }),
      O.write('p', '0xabc', 0, 0x100),
      O.read('p', 0, 0x100),
      O.read('p', 0, 0x108),
      O.munmap('p', 0, 1),
      O.mmap('s', 'q', 0, 1),
      O.read('s', 0, 0x100),
    ]);
    expect(r.out.slice(2)).toEqual(['ok', 'ok(0xabc)', 'ok(0x5356000000000108)', 'ok', 'ok', 'ok(0x5356000000000100)']);
  });

  it('a shared mapping writes the device page: another mapping of it sees the store', () => {
    const r = run([O.open('q'), O.mmap('s', 'q', 0, 2), O.write('s', '0x5', 1, 8), O.munmap('s', 0, 2), O.mmap('t', 'q', 0, 2), O.read('t', 1, 8)]);
    expect(r.out[5]).toBe('ok(0x5)');
  });
});

describe('fork', () => {
  it('the child has no queue mapping (SIGSEGV) but copies of anonymous memory', () => {
    const r = run([
      O.open('q'),
      O.mmap('m', 'q', 0),
      O.alloc('x'),
      O.write('x', '0x1'),
      O.fork('t1'),
      O.read('m', 0, 0, 't1'),
      O.read('x', 0, 0, 't1'),
      O.write('x', '0x2', 0, 0, 't1'),
      O.read('x'),
      O.read('x', 0, 0, 't1'),
    ]);
    expect(r.out.slice(5)).toEqual(['SIGSEGV', 'ok(0x1)', 'ok', 'ok(0x1)', 'ok(0x2)']);
  });

  it('a child may map a free region; it is freed again when the child exits', () => {
    const r = run([
      O.open('q'),
      O.fork('t1'),
      { op: 'mmap', task: 't1', map: 'c', fd: 'q', region: 0, pages: 1 },
      O.mmap('p', 'q', 0),
      O.exit('t1'),
      O.mmap('p2', 'q', 0),
      O.read('p2', 0, 8),
    ]);
    expect(r.out).toEqual(['ok("/dev/svt0-0")', 'ok', 'ok', 'EEXIST', 'ok', 'ok', 'ok(0x100000001)']);
  });

  it('exit closes mappings and files: the queue is released when the last holder exits', () => {
    const sread = (task: string) => ({ op: 'sysfs_read', task, dev: 0, attr: 'available_instances' });
    const r = run([O.fork('t2'), O.open('q'), O.mmap('m', 'q', 0), O.fork('t1'), O.exit('t0'), sread('t2'), O.exit('t1'), sread('t2')]);
    expect(r.out.slice(4)).toEqual(['ok', 'ok("3\\n")', 'ok', 'ok("4\\n")']);
    // an op sent to an exited task (parse.ts refuses such programs; the agent answers ESRCH)
    const [p] = predict(r.final, { op: 'close', task: 't1', fd: 'q' });
    expect(p!.outcome).toEqual({ kind: 'errno', errno: 'ESRCH' });
  });
});
