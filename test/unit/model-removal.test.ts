/**
 * Device removal while queues are open, and re-adding (Spec "Device removal"; uacce_remove()).
 */
import { describe, expect, it } from 'vitest';
import { O, run } from './model-helpers.js';

describe('device removal', () => {
  it('tears every mapping down (SIGBUS), makes uacce calls ENXIO, poll empty, munmap/close 0', () => {
    const r = run(
      [
        O.open('q'),
        O.open('k', { via: 'mknod' }),
        O.mmap('m', 'q', 0, 2),
        O.mmap('p', 'q', 1, 1, { shared: false }),
        O.mmap('n', 'k', 0),
        O.write('p', '0x7', 0, 0x800), // a private copy: zapped too
        O.ioctl('q', 'START_Q'),
        O.remove(),
        O.read('m', 1, 0),
        O.write('m', '0x1', 0, 0x100),
        O.read('p', 0, 0x800),
        O.read('n'),
        O.ioctl('q', 'START_Q'),
        O.ioctl('q', 'PUT_Q'),
        O.mmap('x', 'q', 1),
        O.mmap('y', 'q', 3),
        O.poll('q'),
        O.munmap('m', 0, 2),
        O.close('q'),
        O.close('k'),
        O.sread('api'),
      ],
      { device: { mmio_pages: 2 } },
    );
    expect(r.out.slice(7)).toEqual([
      'ok',
      'SIGBUS',
      'SIGBUS',
      'SIGBUS',
      'SIGBUS',
      'ENXIO',
      'ENXIO',
      'ENXIO',
      'EINVAL',
      'ok(0x0)',
      'ok',
      'ok',
      'ok',
      'ENOENT',
    ]);
  });

  it('a prot-none mapping of a removed device still faults with SIGSEGV first', () => {
    expect(run([O.open('q'), O.mmap('m', 'q', 0, 1, { prot: 'none' }), O.remove(), O.read('m')]).out[3]).toBe('SIGSEGV');
  });

  it('re-adding gives a fresh device: new node, empty queue table, fresh counters', () => {
    const r = run(
      [
        O.open('a'),
        O.open('b'),
        O.remove(),
        O.add(),
        O.sread('available_instances'),
        O.open('c'),
        O.ioctl('c', 'PING'),
        O.open('d'),
        O.open('e'),
        O.close('a'),
        O.open('f'),
      ],
      { device: { queue_limit: 2, ioctl: true } },
    );
    expect(r.out.slice(2)).toEqual(['ok', 'ok', 'ok("2\\n")', 'ok("/dev/svt0-0")', 'ok(3)', 'ok("/dev/svt0-0")', 'EBUSY', 'ok', 'EBUSY']);
  });

  it('removing one device leaves the others alone', () => {
    const r = run([O.open('a'), O.open('b', { dev: 1 }), O.mmap('m', 'b', 0), O.remove(0), O.read('m', 0, 8), O.ioctl('a', 'START_Q'), O.ioctl('b', 'START_Q')], {
      device: { devices: 2 },
    });
    expect(r.out.slice(3)).toEqual(['ok', 'ok(0x100000002)', 'ENXIO', 'ok']);
  });

  it('a queue released after removal leaves no trace on the new device', () => {
    const r = run([O.open('a'), O.mmap('m', 'a', 0), O.remove(), O.add(), O.munmap('m', 0, 1), O.close('a'), O.sread('available_instances')]);
    expect(r.out.slice(4)).toEqual(['ok', 'ok', 'ok("4\\n")']);
  });
});
