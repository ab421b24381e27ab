import { describe, expect, it } from 'vitest';
import { profileFor } from '../../harness/model/index.js';
import { UserError } from '../../harness/util/errors.js';

describe('profileFor', () => {
  it('Debian 6.1 x86: no isolate files, SVA negotiated at alloc, kill switch', () => {
    const p = profileFor('6.1.0-41-amd64', { arch: 'x86_64', distro: 'debian' });
    expect(p.series).toEqual([6, 1]);
    expect(p.sysfsIsolate).toBe(false);
    expect(p.sva).toBe('negotiate-at-alloc');
    expect(p.svaBindKillSwitch).toBe(true);
    expect(p.mremapMultiVmaMove).toBe(false);
    expect(p.vfsFsInfoIoctls).toBe(false);
  });
  it('Debian 6.12 x86: isolate files, kill switch', () => {
    const p = profileFor('6.12.117+deb12-amd64', { arch: 'x86_64', distro: 'debian' });
    expect(p.sysfsIsolate).toBe(true);
    expect(p.sva).toBe('negotiate-at-alloc');
    expect(p.svaBindKillSwitch).toBe(true);
    expect(p.vfsFsInfoIoctls).toBe(true);
  });
  it('the kill switch is Debian x86 only', () => {
    expect(profileFor('6.12.117', { arch: 'x86_64', distro: 'upstream' }).svaBindKillSwitch).toBe(false);
    expect(profileFor('6.12.117+deb12-arm64', { arch: 'arm64', distro: 'debian' }).svaBindKillSwitch).toBe(false);
  });
  it('7.2: SVA bound at every open, multi-VMA mremap moves', () => {
    const p = profileFor('7.2.13+deb14-amd64', { arch: 'amd64', distro: 'debian' });
    expect(p.arch).toBe('x86_64');
    expect(p.sva).toBe('bind-every-open');
    expect(p.svaBindKillSwitch).toBe(false);
    expect(p.mremapMultiVmaMove).toBe(true);
  });
  it('version boundaries', () => {
    const o = { arch: 'x86_64', distro: 'upstream' } as const;
    expect(profileFor('6.2', o).sysfsIsolate).toBe(true);
    expect(profileFor('6.15.3', o).sva).toBe('negotiate-at-alloc');
    expect(profileFor('6.16', o).sva).toBe('bind-every-open');
    expect(profileFor('6.16', o).mremapMultiVmaMove).toBe(false);
    expect(profileFor('6.17', o).mremapMultiVmaMove).toBe(true);
  });
  it('rejects bad input with one-line user errors', () => {
    const o = { arch: 'x86_64', distro: 'debian' } as const;
    expect(() => profileFor('linux', o)).toThrow(UserError);
    expect(() => profileFor('5.15.0', o)).toThrow(/from 6\.1 on/);
    expect(() => profileFor('6.12', { arch: 'riscv64', distro: 'debian' })).toThrow(/x86_64 or arm64/);
  });
});
