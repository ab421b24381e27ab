/**
 * ioctl, submit (the engine), poll, fault accounting and isolation (Spec "ioctl", "Using
 * mappings, poll, close", "fork and exit"; TD "Queues", "The engine"; AP "submit").
 */
import { describe, expect, it } from 'vitest';
import { O, run } from './model-helpers.js';

const setup = [O.open('q'), O.mmap('m', 'q', 0), O.mmap('d', 'q', 1), O.alloc('buf')];

describe('ioctl', () => {
  it('follows the state table and the driver counters', () => {
    const r = run([
      O.open('q'),
      O.mmap('m', 'q', 0),
      O.ioctl('q', 'START_Q'),
      O.read('m', 0, 0x8), // QUEUE_ID | STATE << 32
      O.ioctl('q', 'START_Q'),
      O.ioctl('q', 'PUT_Q'),
      O.read('m', 0, 0x8),
      O.ioctl('q', 'PUT_Q'),
      O.read('m', 0, 0x10), // START_COUNT | STOP_COUNT << 32
      O.ioctl('q', 0x5700),
      O.read('m', 0, 0x10),
      O.ioctl('q', 0x5702),
      O.ioctl('q', 'PING'),
    ]);
    expect(r.out.slice(2)).toEqual(['ok', 'ok(0x200000001)', 'EINVAL', 'ok', 'ok(0x300000001)', 'ok', 'ok(0x100000001)', 'ok', 'ok(0x100000002)', 'EINVAL', 'EINVAL']);
    expect(r.rules[11]).toBe('ioctl.no-driver-op');
  });

  it('with the driver ioctl op: PING returns the queue id, anything else is the driver\'s ENOTTY', () => {
    const r = run([O.open('a'), O.open('b'), O.ioctl('b', 'PING'), O.ioctl('b', 0x5721), O.ioctl('b', 0x1234)], { device: { ioctl: true } });
    expect(r.out.slice(2)).toEqual(['ok(2)', 'ENOTTY', 'ENOTTY']);
  });

  it('every uacce command on a removed device is ENXIO; VFS commands still work', () => {
    const r = run([O.open('q'), O.ioctl('q', 'START_Q'), O.remove(), O.ioctl('q', 'START_Q'), O.ioctl('q', 'PUT_Q'), O.ioctl('q', 'PING'), O.ioctl('q', 7), O.ioctl('q', 0x5451), O.ioctl('q', 0x5421)], {
      device: { ioctl: true },
    });
    expect(r.out.slice(3)).toEqual(['ENXIO', 'ENXIO', 'ENXIO', 'ENXIO', 'ok', 'EFAULT']);
  });

  it('a fork child acting on an inherited descriptor changes the parent\'s queue', () => {
    const r = run([O.open('q'), O.fork('t1'), O.ioctl('q', 'START_Q', 't1'), O.ioctl('q', 'START_Q'), O.ioctl('q', 'PUT_Q', 't1'), O.ioctl('q', 'START_Q')]);
    expect(r.out.slice(2)).toEqual(['ok', 'EINVAL', 'ok', 'ok']);
  });
});

describe('submit', () => {
  it('runs write, read and invalid work items on a started queue', () => {
    const r = run([
      ...setup,
      O.ioctl('q', 'START_Q'),
      O.submit('m', 'd', 'write', 'buf', { value: '0x1234', offset: 8 }),
      O.read('buf', 0, 8),
      O.submit('m', 'd', 'read', 'buf', { offset: 8 }),
      O.submit('m', 'd', 'invalid', 'buf'),
      O.read('m', 0, 0x20), // DOORBELL | CQ_HEAD << 32
      O.read('m', 0, 0x28), // FAULTS | ACK << 32
      O.read('d', 0, 0x20), // slot 1: opcode | status << 32
      O.read('d', 0, 0x38), // slot 1: result
      O.read('d', 0, 0x40), // slot 2: opcode 7 | status BADOP
      O.poll('q'),
    ]);
    expect(r.out.slice(5)).toEqual([
      'ok(done)',
      'ok(0x1234)',
      'ok(done 0x1234)',
      'ok(badop)',
      'ok(0x300000003)',
      'ok(0x300000000)',
      'ok(0x100000002)',
      'ok(0x1234)',
      'ok(0x300000007)',
      'ok(0x0)',
    ]);
  });

  it('faults when the address is not plain anonymous memory of the opener', () => {
    const r = run([
      ...setup,
      O.ioctl('q', 'START_Q'),
      O.submit('m', 'd', 'write', 'm', { value: '0x1' }), // a VM_IO queue mapping
      O.munmap('buf', 0, 1),
      O.submit('m', 'd', 'read', 'buf'), // unmapped
      O.read('m', 0, 0x28),
    ]);
    expect(r.out.slice(5)).toEqual(['ok(fault)', 'ok', 'ok(fault)', 'ok(0x200000002)']);
  });

  it("writes a fault's address into RESULT (ABI 2)", () => {
    const r = run([
      ...setup,
      O.ioctl('q', 'START_Q'),
      O.munmap('buf', 0, 1),
      O.submit('m', 'd', 'write', 'buf', { value: '0x1' }),
      O.read('d', 0, 0x18), // slot 0: result
    ]);
    // buf is the third mapping: slot 2
    expect(r.out.slice(6)).toEqual(['ok(fault)', 'ok(0x200002000000)']);
  });

  it('is not executed while the queue is not started; START drops it and reports news', () => {
    const r = run([
      ...setup,
      O.submit('m', 'd', 'write', 'buf', { value: '0x1' }),
      O.ioctl('q', 'START_Q'),
      O.read('m', 0, 0x30), // DROPPED | DEV_INDEX << 32
      O.read('m', 0, 0x20),
      O.read('buf'),
      O.poll('q'),
      O.write('m', '0x100000000', 0, 0x28), // ACK = 1
      O.poll('q'),
    ]);
    expect(r.out.slice(4)).toEqual(['ETIMEDOUT', 'ok', 'ok(0x1)', 'ok(0x100000001)', 'ok(0x0)', 'ok(0x1)', 'ok', 'ok(0x0)']);
  });

  it('without ack the completion stays news for poll', () => {
    const r = run([...setup, O.ioctl('q', 'START_Q'), O.submit('m', 'd', 'write', 'buf', { value: '0x1', ack: false }), O.poll('q')]);
    expect(r.out.slice(5)).toEqual(['ok(done)', 'ok(0x1)']);
  });

  it('work a fork child submits is done in the opener\'s address space', () => {
    const r = run([
      O.open('q'),
      O.alloc('buf'),
      O.write('buf', '0x5'),
      O.fork('t1'),
      { op: 'mmap', task: 't1', map: 'm', fd: 'q', region: 0, pages: 1 },
      { op: 'mmap', task: 't1', map: 'd', fd: 'q', region: 1, pages: 1 },
      O.ioctl('q', 'START_Q', 't1'),
      O.submit('m', 'd', 'write', 'buf', { value: '0x77', task: 't1' }),
      O.read('buf'),
      O.read('buf', 0, 0, 't1'),
    ]);
    expect(r.out.slice(7)).toEqual(['ok(done)', 'ok(0x77)', 'ok(0x5)']);
  });

  it('faults once the opener has exited (its mm is gone)', () => {
    const r = run([
      O.open('q'),
      O.fork('t1'),
      O.exit('t0'),
      { op: 'mmap', task: 't1', map: 'm', fd: 'q', region: 0, pages: 1 },
      { op: 'mmap', task: 't1', map: 'd', fd: 'q', region: 1, pages: 1 },
      O.alloc('buf', 1, 't1'),
      O.ioctl('q', 'START_Q', 't1'),
      O.submit('m', 'd', 'write', 'buf', { value: '0x1', task: 't1' }),
      O.read('buf', 0, 0, 't1'),
    ]);
    expect(r.out.slice(7)).toEqual(['ok(fault)', 'ok(0x0)']);
  });

  it('follows the accesses it makes: another queue\'s ring, a private doorbell, a removed device', () => {
    const mixed = run([
      O.open('q1'),
      O.open('q2'),
      O.mmap('m1', 'q1', 0),
      O.mmap('d2', 'q2', 1),
      O.alloc('buf'),
      O.ioctl('q1', 'START_Q'),
      // the descriptor lands in q2's ring; q1 executes its own (empty) slot 0: BADOP; the agent
      // then reads the status it wrote itself
      O.submit('m1', 'd2', 'write', 'buf', { value: '0x1' }),
      O.read('buf'),
    ]);
    expect(mixed.out.slice(6)).toEqual(['ok(status 0)', 'ok(0x0)']);
    const priv = run([O.open('q'), O.mmap('m', 'q', 0, 1, { shared: false }), O.mmap('d', 'q', 1), O.alloc('buf'), O.ioctl('q', 'START_Q'), O.submit('m', 'd', 'write', 'buf', { value: '0x1' })]);
    expect(priv.out[5]).toBe('ETIMEDOUT');
    const gone = run([...setup, O.ioctl('q', 'START_Q'), O.remove(), O.submit('m', 'd', 'write', 'buf', { value: '0x1' })]);
    expect(gone.out[6]).toBe('SIGBUS');
    const ro = run([O.open('q'), O.mmap('m', 'q', 0, 1, { prot: 'r' }), O.mmap('d', 'q', 1), O.alloc('buf'), O.submit('m', 'd', 'write', 'buf', { value: '0x1' })]);
    expect(ro.out[4]).toBe('SIGSEGV');
  });
});

describe('registers show the driver\'s own counters', () => {
  it('a store to a read-only register stays until the driver next writes that register', () => {
    const r = run([
      ...setup,
      O.write('m', '0x5000000050', 0, 0x10), // START_COUNT = 0x50, STOP_COUNT = 0x50
      O.read('m', 0, 0x10),
      O.ioctl('q', 'START_Q'), // START_COUNT = starts (1); STOP_COUNT untouched
      O.read('m', 0, 0x10),
      O.write('m', '0x700000000', 0, 0x20), // DOORBELL 0 (= consumed: no work), CQ_HEAD = 7
      O.poll('q'), // news compares the driver's consumed count (0) with ACK (0)
      O.submit('m', 'd', 'write', 'buf', { value: '0x1' }), // the agent sees CQ_HEAD 7 >= 1 at once
      O.read('buf'),
    ]);
    expect(r.alts.slice(4)).toEqual(['ok', 'ok(0x5000000050)', 'ok', 'ok(0x5000000001)', 'ok', 'ok(0x0)', 'ok', 'ok']);
    expect(r.rules[10]).toBe('submit.race');
  });

  it('without a mappable ring (dus_pages=0) the engine still has its internal one', () => {
    const r = run([
      O.open('q'),
      O.mmap('m', 'q', 0),
      O.alloc('buf'),
      O.ioctl('q', 'START_Q'),
      // the descriptor goes into the MMIO page (the agent's "dus" is m); the engine runs the
      // internal ring's empty slot 0: BADOP; the agent reads back the status word it wrote
      O.submit('m', 'm', 'write', 'buf', { value: '0x1' }),
      O.read('m', 0, 0x20),
      O.read('buf'),
    ], { device: { dus_pages: 0 } });
    expect(r.out.slice(4)).toEqual(['ok(status 0)', 'ok(0x100000001)', 'ok(0x0)']);
  });
});

describe('a doorbell rung outside a submit', () => {
  it('storing the consumed count itself starts nothing', () => {
    const r = run([...setup, O.ioctl('q', 'START_Q'), O.write('m', '0x0', 0, 0x20), O.poll('q'), O.read('m', 0, 0x28)]);
    expect(r.alts.slice(5)).toEqual(['ok', 'ok(0x0)', 'ok(0x0)']);
  });

  it('on a started queue: the engine runs in the background, its effects are timing-dependent', () => {
    const r = run([
      ...setup,
      O.ioctl('q', 'START_Q'),
      O.write('m', '0x1', 0, 0x20), // DOORBELL = 1 (and CQ_HEAD = 0)
      O.poll('q'),
      O.read('m', 0, 0x20),
      O.submit('m', 'd', 'write', 'buf', { value: '0x9' }),
      O.read('buf'),
      O.ioctl('q', 'PUT_Q'),
      O.ioctl('q', 'START_Q'),
      O.read('m', 0, 0x20), // CQ_HEAD = consumed = DOORBELL = 2 at start
      O.read('m', 0, 0x30), // DROPPED: unknown
    ]);
    expect(r.alts.slice(6)).toEqual(['ok(0x1)|ok(0x0)', 'ok', 'ok|ETIMEDOUT', 'ok', 'ok', 'ok', 'ok(0x200000002)', 'ok']);
  });

  it('on a queue not started: dropped at START, deterministically', () => {
    const r = run([...setup, O.write('m', '0x5', 0, 0x20), O.ioctl('q', 'START_Q'), O.read('m', 0, 0x30), O.read('m', 0, 0x20), O.poll('q')]);
    expect(r.out.slice(4)).toEqual(['ok', 'ok', 'ok(0x5)', 'ok(0x500000005)', 'ok(0x1)']);
  });
});

describe('poll', () => {
  it('returns nothing on a removed device and for a descriptor the task lacks', () => {
    const r = run([O.open('q'), O.fork('t1'), { op: 'open', task: 't1', fd: 'c' }, O.remove(), O.poll('q'), O.poll('c')]);
    expect(r.out.slice(4)).toEqual(['ok(0x0)', 'ok(0x0)']);
    expect(r.rules.slice(4)).toEqual(['poll.zombie', 'poll.nofd']);
  });
});

describe('isolation', () => {
  const dev = { isolate_state: true, isolate_ops: 'both' as const };
  it('isolate reads 1 once the device\'s faults reach a non-zero threshold', () => {
    const r = run(
      [
        ...setup,
        O.ioctl('q', 'START_Q'),
        O.sread('isolate'),
        O.submit('m', 'd', 'read', 'm'),
        O.sread('isolate'),
        O.swrite('isolate_strategy', '1'),
        O.sread('isolate'),
        O.swrite('isolate_strategy', '2'),
        O.sread('isolate'),
        O.remove(),
        O.add(),
        O.sread('isolate_strategy'), // a fresh probe: threshold 0
      ],
      { device: dev },
    );
    expect(r.out.slice(5)).toEqual(['ok("0\\n")', 'ok(fault)', 'ok("0\\n")', 'ok', 'ok("1\\n")', 'ok', 'ok("0\\n")', 'ok', 'ok', 'ok("0\\n")']);
  });

  it('is unknown while an engine runs unobserved', () => {
    const r = run([...setup, O.ioctl('q', 'START_Q'), O.swrite('isolate_strategy', '1'), O.write('m', '0x1', 0, 0x20), O.sread('isolate')], { device: dev });
    expect(r.alts[7]).toBe('ok("0\\n")|ok("1\\n")');
  });
});
