/**
 * open, close, dup, queue limits and lifetimes, SVA negotiation per profile, and opening nodes
 * of removed or re-added devices (Spec "open", "Lifetimes", TD "get_queue").
 */
import { describe, expect, it } from 'vitest';
import { SVT_PAGE_SIZE } from '../../harness/device/abi.js';
import { profileFor } from '../../harness/model/index.js';
import { O, run } from './model-helpers.js';

describe('open', () => {
  it('opens by path with the uacce id in the node name; each device gets the lowest free id', () => {
    const r = run([O.open('a'), O.open('b', { dev: 1 }), O.open('c', { dev: 2 })], { device: { devices: 3 } });
    expect(r.out).toEqual(['ok("/dev/svt0-0")', 'ok("/dev/svt1-1")', 'ok("/dev/svt2-2")']);
  });

  it('refuses a queue beyond queue_limit with EBUSY; closing one makes room', () => {
    const r = run(
      [O.open('a'), O.open('b'), O.open('c'), O.sread('available_instances'), O.close('a'), O.sread('available_instances'), O.open('d')],
      { device: { queue_limit: 2 } },
    );
    expect(r.out).toEqual(['ok("/dev/svt0-0")', 'ok("/dev/svt0-0")', 'EBUSY', 'ok("0\\n")', 'ok', 'ok("1\\n")', 'ok("/dev/svt0-0")']);
  });

  it('gives module-wide queue ids from 1 (PING returns it); a failed open takes none', () => {
    const r = run([O.open('a'), O.open('b'), O.open('c'), O.close('a'), O.open('d'), O.ioctl('d', 'PING'), O.ioctl('b', 'PING')], {
      device: { queue_limit: 2, ioctl: true },
    });
    expect(r.out).toEqual(['ok("/dev/svt0-0")', 'ok("/dev/svt0-0")', 'EBUSY', 'ok', 'ok("/dev/svt0-0")', 'ok(3)', 'ok(2)']);
  });

  it('EBADF for descriptors the task does not have', () => {
    const r = run([O.open('a'), O.close('a'), O.close('a'), { op: 'dup', fd: 'a', as: 'b' }, O.ioctl('a', 'START_Q'), O.mmap('m', 'a', 0)]);
    expect(r.out.slice(1)).toEqual(['ok', 'EBADF', 'EBADF', 'EBADF', 'EBADF']);
  });

  it('dup shares the queue: its state changes through either descriptor', () => {
    const r = run([O.open('a'), { op: 'dup', fd: 'a', as: 'b' }, O.ioctl('b', 'START_Q'), O.ioctl('a', 'START_Q'), O.close('a'), O.ioctl('b', 'PUT_Q')]);
    expect(r.out).toEqual(['ok("/dev/svt0-0")', 'ok', 'ok', 'EINVAL', 'ok', 'ok']);
  });

  it('a queue lives until every descriptor and every mapping of it is gone', () => {
    const r = run([
      O.open('q'),
      O.mmap('m', 'q', 0, 2),
      O.close('q'),
      O.sread('available_instances'),
      O.read('m', 0, 8), // QUEUE_ID 1, STATE INIT
      O.munmap('m', 0, 1),
      O.sread('available_instances'),
      O.munmap('m', 1, 1),
      O.sread('available_instances'),
    ]);
    expect(r.out).toEqual(['ok("/dev/svt0-0")', 'ok', 'ok', 'ok("3\\n")', 'ok(0x100000001)', 'ok', 'ok("3\\n")', 'ok', 'ok("4\\n")']);
  });

  it('a procfd reopen is a new open: a new queue with its own id', () => {
    const r = run(
      [
        O.open('a'),
        O.open('b', { via: 'procfd', of: 'a' }),
        O.ioctl('b', 'PING'),
        O.fork('t1'),
        { op: 'open', task: 't1', fd: 'c' },
        O.open('d', { via: 'procfd', of: 'c' }), // t0 does not have "c": /proc/self/fd/-1
      ],
      { device: { ioctl: true } },
    );
    expect(r.out).toEqual(['ok("/dev/svt0-0")', 'ok', 'ok(2)', 'ok', 'ok("/dev/svt0-0")', 'ENOENT']);
  });
});

describe('open with SVA requested (sva=1: the PCI endpoint, in its own IOMMU group)', () => {
  it("Debian's x86 6.1 and 6.12: IOPF and SVA enable (flags reads 1), every bind fails with EOPNOTSUPP", () => {
    for (const kernel of ['6.12.118+deb12-amd64', '6.1.0-41-amd64']) {
      const r = run([O.sread('flags'), O.open('q'), O.sread('available_instances')], { device: { sva: true }, kernel });
      expect(r.out, kernel).toEqual(['ok("1\\n")', 'EOPNOTSUPP', 'ok("4\\n")']);
      expect(r.rules[1]).toBe('open.sva-killswitch');
    }
  });

  it('7.2 binds: the queue has a PASID the model does not know yet', () => {
    const r = run([O.sread('flags'), O.open('q'), O.mmap('m', 'q', 0), O.read('m', 0, 0x18)], { device: { sva: true }, kernel: '7.2.13' });
    // OPENER_TGID (a pid the model does not know) | PASID << 32: any value is accepted
    expect(r.out).toEqual(['ok("1\\n")', 'ok("/dev/svt0-0")', 'ok', 'ok']);
  });

  it("Debian's arm64 (no IOMMU_SVA, no ARM_SMMU_V3_SVA) up to 6.15: the IOPF feature cannot be enabled, the flag is cleared and opens never bind", () => {
    for (const kernel of ['6.12.118+deb12-arm64', '6.1.0-57-arm64']) {
      const r = run([O.sread('flags'), O.open('q')], { device: { sva: true }, kernel, arch: 'arm64' });
      expect(r.out, kernel).toEqual(['ok("0\\n")', 'ok("/dev/svt0-0")']);
      expect(r.rules[1], kernel).toBe('open.ok');
    }
  });

  it("Debian's arm64 from 6.16: the flag is kept and every open fails with ENODEV in the !CONFIG_IOMMU_SVA bind stub", () => {
    const r = run([O.sread('flags'), O.open('q'), O.sread('available_instances')], { device: { sva: true }, kernel: '7.2.13+deb14-arm64', arch: 'arm64' });
    expect(r.out).toEqual(['ok("1\\n")', 'ENODEV', 'ok("4\\n")']);
    expect(r.rules[1]).toBe('open.sva-unsupported');
  });

  it('the arm64 profile: no IOMMU SVA, 4 KiB pages, no kill switch (that patch is x86 only)', () => {
    const p = profileFor('6.12.118+deb12-arm64', { arch: 'arm64', distro: 'debian' });
    expect([p.iommuSva, p.pageSize, p.svaBindKillSwitch]).toEqual([false, SVT_PAGE_SIZE, false]);
    expect(profileFor('6.12.118+deb12-amd64', { arch: 'x86_64', distro: 'debian' }).iommuSva).toBe(true);
  });

  it('without sva the flag is 0 on every kernel', () => {
    expect(run([O.sread('flags'), O.open('q')], { kernel: '7.2.13' }).out).toEqual(['ok("0\\n")', 'ok("/dev/svt0-0")']);
  });
});

describe('opening a removed or re-added device', () => {
  it('by path: ENOENT (the node is gone)', () => {
    expect(run([O.remove(), O.open('q')]).out).toEqual(['ok', 'ENOENT']);
  });

  it('through /proc/self/fd of a descriptor still open: ENODEV (uacce_fops_open finds no device)', () => {
    const r = run([O.open('a'), O.remove(), O.open('b', { via: 'procfd', of: 'a' })]);
    expect(r.out).toEqual(['ok("/dev/svt0-0")', 'ok', 'ENODEV']);
  });

  it('a mknod node: ENODEV while a file still holds the old cdev, ENXIO once it is released', () => {
    const r = run([
      O.open('a', { via: 'mknod' }),
      O.remove(),
      O.open('b', { via: 'mknod' }),
      O.close('a'),
      O.open('c', { via: 'mknod' }),
    ]);
    expect(r.out).toEqual(['ok("/tmp/svt0.node")', 'ok', 'ENODEV', 'ok', 'ENXIO']);
  });

  it('a mknod node made after removal: ENXIO (no cdev for that dev_t)', () => {
    expect(run([O.remove(), O.open('a', { via: 'mknod' })]).out).toEqual(['ok', 'ENXIO']);
  });

  it('re-adding gives the lowest free id; a stale node of that minor opens the new device', () => {
    const r = run(
      [
        O.open('a', { via: 'mknod' }),
        O.remove(0),
        O.remove(1),
        O.add(1), // id 0 is free again: svt1-0
        O.add(0), // then id 1: svt0-1
        O.open('b'),
        O.open('c', { dev: 1 }),
        O.open('d', { via: 'mknod' }), // /tmp/svt0.node is minor 0: now device 1's
        O.ioctl('d', 'PING'),
        O.sread('available_instances', 1),
      ],
      { device: { devices: 2, ioctl: true } },
    );
    expect(r.out).toEqual(['ok("/tmp/svt0.node")', 'ok', 'ok', 'ok', 'ok', 'ok("/dev/svt0-1")', 'ok("/dev/svt1-0")', 'ok("/tmp/svt0.node")', 'ok(4)', 'ok("2\\n")']);
  });

  it('remove of an unbound device: ENODEV; add of a bound one: EBUSY', () => {
    expect(run([O.add(), O.remove(), O.remove(), O.add(), O.add()]).out).toEqual(['EBUSY', 'ok', 'ENODEV', 'ok', 'EBUSY']);
  });
});
