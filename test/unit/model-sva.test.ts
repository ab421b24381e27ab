/**
 * The model's SVA part (harness/model/sva.ts): PASIDs per address space, work items of bound
 * queues through the IOMMU. The same program runs on a real debian:7.2 guest in
 * test/integration/sva.test.ts with these outcomes.
 */
import { describe, expect, it } from 'vitest';
import { run } from './model-helpers.js';
import { SVA_LIFE_DEVICE, SVA_LIFE_OPS } from './sva-programs.js';

const K72 = '7.2.13+deb14-amd64';
const DEV = { devices: 2, mmio_pages: 1, dus_pages: 1, sva: true };
const open = (fd: string, dev = 0, task = 't0') => ({ op: 'open', task, fd, dev, via: 'path' });
const map = (m: string, fd: string, region: 0 | 1, task = 't0') => ({ op: 'mmap', task, map: m, fd, region, pages: 1, prot: 'rw', shared: true });
const pasid = (m: string, task = 't0') => ({ op: 'pasid', task, map: m });

describe('SVA on 7.2 (binds succeed)', () => {
  it("the life of a PASID: shared by one process's queues on two devices, a child's own, DMA into the opener's memory only", () => {
    const r = run([...SVA_LIFE_OPS], { device: SVA_LIFE_DEVICE, kernel: K72 });
    const at = (i: number) => r.out[i];
    expect([0, 1, 2, 3].map((i) => r.rules[i])).toEqual(Array(4).fill('open.sva-bind'));
    expect([8, 9, 10, 22].map(at)).toEqual(Array(4).fill('ok(p0)'));
    expect(at(25)).toBe('ok(p1)');
    expect([13, 14, 16, 17].map(at)).toEqual(['ok(done)', 'ok(0x1111)', 'ok(fault)', 'ok(0x0)']);
    expect(r.rules[16]).toBe('submit.sva-translated');
    expect([26, 27, 28].map(at)).toEqual(['ok(done)', 'ok(0x0)', 'ok(0x2222)']);
    expect([30, 31, 32, 33, 34].map(at)).toEqual(['ok(fault)', 'ok(0x0)', 'ok(0x1111)', 'ok(0x200000001)', 'ok(p0)']);
    expect(r.rules[30]).toBe('submit.sva-mm-gone');
  });

  it("a bound queue's work item reaches the opener's queue mappings (their PTEs are present), as the CPU would", () => {
    const r = run(
      [
        open('q'),
        map('r', 'q', 0),
        map('d', 'q', 1),
        { op: 'ioctl', task: 't0', fd: 'q', cmd: 'START_Q' },
        { op: 'submit', task: 't0', mmio: 'r', dus: 'd', work: 'write', target: 'd', page: 0, offset: 0xf00, value: '0x44', ack: true },
        { op: 'touch', task: 't0', map: 'd', page: 0, offset: 0xf00, access: 'read' },
      ],
      { device: DEV, kernel: K72 },
    );
    expect(r.out.slice(4)).toEqual(['ok(done)', 'ok(0x44)']);
    // the platform engine (get_user_pages_remote) refuses VM_PFNMAP: a fault
    const p = run(
      [open('q'), map('r', 'q', 0), map('d', 'q', 1), { op: 'ioctl', task: 't0', fd: 'q', cmd: 'START_Q' }, { op: 'submit', task: 't0', mmio: 'r', dus: 'd', work: 'write', target: 'd', page: 0, offset: 0xf00, value: '0x44', ack: true }],
      { device: { ...DEV, sva: false }, kernel: K72 },
    );
    expect(p.out[4]).toBe('ok(fault)');
  });

  it('PASIDs read as none without a bind, bad above 20 bits, and unknown once a dropped address space may have given its number away', () => {
    expect(run([open('q'), map('r', 'q', 0), pasid('r')], { device: { ...DEV, sva: false }, kernel: K72 }).out[2]).toBe('ok(none)');
    const bad = run([open('q'), map('r', 'q', 0), { op: 'touch', task: 't0', map: 'r', page: 0, offset: 0x18, access: 'write', value: '0x12345678000000aa' }, pasid('r')], {
      device: DEV,
      kernel: K72,
    });
    expect(bad.out[3]).toBe('ok(bad 0x12345678)');
    // t1 keeps t0's list; t0's address space goes with its last queue, and t1's own PASID may reuse the number
    const reuse = run(
      [open('q'), map('r', 'q', 0), pasid('r'), { op: 'fork', task: 't0', child: 't1' }, { op: 'exit', task: 't0' }, { op: 'close', task: 't1', fd: 'q' }, open('q2', 0, 't1'), map('r2', 'q2', 0, 't1'), pasid('r2', 't1')],
      { device: DEV, kernel: K72 },
    );
    expect(reuse.out[2]).toBe('ok(p0)');
    expect(reuse.out[8]).toBe('ok');
    expect(reuse.rules[8]).toBe('pasid.unknown');
    // while t0's queue holds its address space, the child's PASID is a second one
    const held = run(
      [open('q'), map('r', 'q', 0), pasid('r'), { op: 'fork', task: 't0', child: 't1' }, { op: 'exit', task: 't0' }, open('q2', 0, 't1'), map('r2', 'q2', 0, 't1'), pasid('r2', 't1')],
      { device: DEV, kernel: K72 },
    );
    expect(held.out[7]).toBe('ok(p1)');
  });

  it('a pasid read of anything but a mapping faults as a load would', () => {
    const r = run([{ op: 'alloc', task: 't0', map: 'a', pages: 1 }, pasid('a'), { op: 'munmap', task: 't0', map: 'a', page: 0, pages: 1 }, pasid('a')], { device: DEV, kernel: K72 });
    expect(r.out.slice(1)).toEqual(['ok(none)', 'ok', 'SIGSEGV']);
  });
});
