/**
 * bench/boot-phases.ts: a boot's phases from console lines (lines as a Debian 6.12 guest prints
 * them under qboot, arrival times chosen for the arithmetic).
 */
import { describe, expect, it } from 'vitest';
import { bootPhases } from '../../bench/boot-phases.js';

const lines = [
  'Probing EDD (edd=off to disable)... ok',
  '[    0.000000] Linux version 6.12.118+deb12-amd64 (debian-kernel@lists.debian.org)',
  '[    0.003003] AGP: No AGP bridge found',
  '[    1.500000] printk: legacy console [ttyS0] enabled',
  '[    3.359975] Run /init as init process',
  '[    3.587799] uacce: loading out-of-tree module taints kernel.',
  'svadiff-agent: ready on /dev/ttyS1',
];

describe('boot phases', () => {
  it('the kernel zero from the earliest arrival minus timestamp, firmware to the setup line, /init to the hello', () => {
    // the lines before the console registered arrive together at 2.4 s; later ones 0.9 s after the kernel's zero
    const arrival = [700, 2400, 2400, 2400, 4260, 4490, 4800];
    expect(bootPhases(lines, arrival, 5000)).toEqual({ to_kernel_s: 0.9, firmware_s: 0.7, kernel_s: 3.36, userspace_s: 0.74 });
  });

  it('a console without the setup line (SeaBIOS) has no firmware phase apart; without /init, nothing', () => {
    const p = bootPhases(lines.slice(1), [2400, 2400, 2400, 4260, 4490, 4800], 5000);
    expect(p).toEqual({ to_kernel_s: 0.9, kernel_s: 3.36, userspace_s: 0.74 });
    expect(bootPhases(lines.slice(0, 4), [700, 2400, 2400, 2400], 5000)).toBeUndefined();
    expect(bootPhases([], [], 5000)).toBeUndefined();
  });
});
