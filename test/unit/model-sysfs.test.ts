/**
 * sysfs attributes of /sys/class/uacce/<node>/ (Spec "sysfs"; uacce.c show/store functions and
 * uacce_dev_is_visible()).
 */
import { describe, expect, it } from 'vitest';
import { kstrtoul } from '../../harness/model/ops.js';
import { O, run } from './model-helpers.js';

const ALL = ['api', 'flags', 'available_instances', 'algorithms', 'region_mmio_size', 'region_dus_size', 'isolate', 'isolate_strategy'];

describe('sysfs reads', () => {
  it('show the device parameters as uacce prints them', () => {
    const r = run(ALL.map((a) => O.sread(a)), {
      device: { api: 'hisi_qm_v9', algorithms: ['zlib', 'gzip', 'x'], mmio_pages: 3, dus_pages: 1, isolate_state: true, isolate_ops: 'read' },
    });
    expect(r.out).toEqual(['ok("hisi_qm_v9\\n")', 'ok("0\\n")', 'ok("4\\n")', 'ok("zlib\\ngzip\\nx\\n")', 'ok("12288\\n")', 'ok("4096\\n")', 'ok("0\\n")', 'ok("0\\n")']);
  });

  it('hide what the device or kernel does not have', () => {
    const none = run(ALL.map((a) => O.sread(a)), { device: { mmio_pages: 0, dus_pages: 0 } });
    expect(none.out.slice(4)).toEqual(['ENOENT', 'ENOENT', 'ENOENT', 'ENOENT']);
    const old = run(ALL.map((a) => O.sread(a)), { device: { isolate_state: true, isolate_ops: 'both' }, kernel: '6.1.0-41-amd64' });
    expect(old.out.slice(6)).toEqual(['ENOENT', 'ENOENT']);
    expect(old.rules.slice(6)).toEqual(['sysfs.hidden', 'sysfs.hidden']);
  });

  it('isolate_strategy without a read op exists (write op) but reading it is ENOENT', () => {
    const r = run([O.sread('isolate_strategy'), O.swrite('isolate_strategy', '7'), O.sread('isolate')], { device: { isolate_ops: 'write' } });
    expect(r.out).toEqual(['ENOENT', 'ok', 'ENOENT']);
    expect(r.rules[0]).toBe('sysfs.read-noop');
  });

  it('a removed device has no files; a re-added one has them again', () => {
    expect(run([O.remove(), O.sread('api'), O.swrite('isolate_strategy', '1'), O.add(), O.sread('api')], { device: { isolate_ops: 'both' } }).out).toEqual([
      'ok',
      'ENOENT',
      'ENOENT',
      'ok',
      'ok("svadiff-test-v1\\n")',
    ]);
  });
});

describe('sysfs writes', () => {
  const dev = { isolate_ops: 'both' as const };
  it('isolate_strategy takes 0..65535 in kstrtoul syntax; read-only files are EACCES', () => {
    const writes = ['10', '0x10', '010', '+3\n', '65535', '65536', '-1', 'abc', '1 ', '0x', '08', ''];
    const r = run(
      writes.flatMap((v) => [O.swrite('isolate_strategy', v), O.sread('isolate_strategy')]),
      { device: dev },
    );
    expect(r.out).toEqual([
      'ok', 'ok("10\\n")',
      'ok', 'ok("16\\n")',
      'ok', 'ok("8\\n")',
      'ok', 'ok("3\\n")',
      'ok', 'ok("65535\\n")',
      'EINVAL', 'ok("65535\\n")',
      'EINVAL', 'ok("65535\\n")',
      'EINVAL', 'ok("65535\\n")',
      'EINVAL', 'ok("65535\\n")',
      'EINVAL', 'ok("65535\\n")',
      'EINVAL', 'ok("65535\\n")',
      'ok', 'ok("65535\\n")',
    ]);
    const ro = run(['api', 'flags', 'available_instances', 'algorithms', 'region_mmio_size'].map((a) => O.swrite(a, '1')), { device: dev });
    expect(ro.out).toEqual(['EACCES', 'EACCES', 'EACCES', 'EACCES', 'EACCES']);
    expect(run([O.swrite('isolate', '1')], { device: { isolate_state: true } }).out).toEqual(['EACCES']);
  });

  it('without a write op: ENOENT', () => {
    expect(run([O.swrite('isolate_strategy', '1')], { device: { isolate_ops: 'read' } }).out).toEqual(['ENOENT']);
  });

  it('kstrtoul follows lib/kstrtox.c', () => {
    expect(kstrtoul('0')).toBe(0);
    expect(kstrtoul('0X1f\n')).toBe(31);
    expect(kstrtoul('18446744073709551616')).toBe('ERANGE');
    expect(kstrtoul('1\n\n')).toBe('EINVAL');
    expect(kstrtoul('+')).toBe('EINVAL');
  });
});
