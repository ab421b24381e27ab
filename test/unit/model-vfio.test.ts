/**
 * The vfio model (harness/model/vfio.ts) against the outcomes the ownership sheet gives for two
 * whole programs (the same ones the integration test runs on Debian's 6.12), and the model's
 * bookkeeping of vfio files across fork, dup and exit.
 */
import { describe, expect, it } from 'vitest';
import { formatPredictions, initialState, predict, profileFor, type ModelState } from '../../harness/model/index.js';
import type { Program } from '../../harness/program/types.js';
import { SHARED, SHARED_WANT, SINGLE, SINGLE_WANT, TO_DEVICE_FD, program } from './vfio-programs.js';
import { runOnModel } from '../../harness/coverage/model-run.js';
import { build, generateProgram } from '../../harness/generator/index.js';
import { VFIO_DEVICE } from '../../harness/generator/vfio.js';
import { VFIO_RULES } from '../../harness/model/vfio.js';
import { descOf } from '../../harness/ops/index.js';
import { loadOrder, vfioConfig, VFIO_MODULES } from '../../kernels/vfio-modules.js';

const PROFILE = profileFor('6.12.118+deb12-amd64', { arch: 'x86_64', distro: 'debian' });

/** The model's outcome of every op, following the first prediction (the vfio model never branches). */
function predicted(p: Program): string[] {
  let s: ModelState = initialState(p.device, PROFILE);
  return p.ops.map((op) => {
    const ps = predict(s, op);
    expect(ps.length).toBe(1);
    s = ps[0]!.next;
    return formatPredictions(ps);
  });
}

describe('vfio model', () => {
  it('a group of one: every outcome the sheet gives', () => {
    expect(predicted(SINGLE)).toEqual(SINGLE_WANT);
  });

  it('a group of two: every outcome the sheet gives', () => {
    expect(predicted(SHARED)).toEqual(SHARED_WANT);
  });

  it('a dup of the group fd keeps the group open after a close; exit of the last holder gives the group back', () => {
    const p = program([
      { op: 'pci_unbind', task: 't0', dev: 0 },
      { op: 'pci_bind', task: 't0', dev: 0, driver: 'vfio' },
      { op: 'vfio_group', task: 't0', fd: 'g', dev: 0 },
      { op: 'dup', task: 't0', fd: 'g', as: 'h' },
      { op: 'close', task: 't0', fd: 'g' },
      { op: 'vfio_group', task: 't0', fd: 'x', dev: 0 }, // EBUSY: h holds it
      { op: 'fork', task: 't0', child: 't1' },
      { op: 'close', task: 't0', fd: 'h' },
      { op: 'vfio_group', task: 't0', fd: 'y', dev: 0 }, // EBUSY: t1 holds it
      { op: 'exit', task: 't1' },
      { op: 'vfio_group', task: 't0', fd: 'z', dev: 0 },
      { op: 'close', task: 't0', fd: 'h' }, // EBADF: closed before
    ]);
    expect(predicted(p)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'EBUSY', 'ok', 'ok', 'EBUSY', 'ok', 'ok', 'EBADF']);
  });

  it('predicts a hang for unbinding vfio-pci under an open device fd (vfio_unregister_group_dev waits)', () => {
    const p = program([...TO_DEVICE_FD, { op: 'pci_unbind', task: 't0', dev: 0 }]);
    expect(predicted(p).at(-1)).toBe('hang');
  });

  it('the program format refuses vfio ops without a layout of every endpoint, in one line', () => {
    expect(() => program([{ op: 'vfio_container', task: 't0', fd: 'c' }], { sva: true, devices: 3, groups: [[0], [1]] })).toThrow(
      /ops\[0\] \(vfio_container\): the vfio ops need "sva": true and device.groups placing every endpoint/,
    );
    expect(() => program([], { sva: false, devices: 2, groups: [[0, 1]] })).toThrow(/IOMMU groups are those of the PCI endpoints; set "sva": true/);
    expect(() => program([], { sva: true, devices: 2, groups: [[0, 1], [1]] })).toThrow(/each index in one list only/);
  });
});

describe('vfio programs of the generator', () => {
  /** Rules no generated program reaches on purpose: a hang, and descriptors of the wrong kind. */
  const NOT_MADE = ['unbind.vfio-open', 'vfio.not-group', 'vfio.not-container-ioctl', 'ioctl.enotty', 'setc.not-container'];

  it('400 programs of seed 7: only vfio and core ops, on the fixed layout, reaching every vfio rule the generator makes', () => {
    const reached = new Set<string>();
    for (let i = 0; i < 400; i++) {
      const p = generateProgram(7, i, { family: 'vfio' });
      expect(p.device.groups).toEqual([[0], [1, 2]]);
      expect(p.ops.filter((op) => descOf(op.op).family === 'uacce')).toEqual([]);
      for (const s of runOnModel(p, PROFILE).steps) reached.add(s.rule);
    }
    const missing = Object.keys(VFIO_RULES).filter((r) => !NOT_MADE.includes(r) && !reached.has(r));
    expect(missing).toEqual([]);
    expect(NOT_MADE.filter((r) => reached.has(r))).toEqual([]);
  });
});

describe('vfio programs from mutated decisions', () => {
  it('a decision of a kind the family never draws (a uacce open) becomes one of its kinds', () => {
    const b = build({ device: VFIO_DEVICE, steps: [{ kind: 'open', r: [1, 2, 3, 4, 5, 6, 7, 8] }, { kind: 'mmap', r: [9, 9, 9, 9, 9, 9, 9, 9] }] }, { family: 'vfio' });
    expect(b.program.ops.length).toBeGreaterThan(0);
    expect(b.program.ops.filter((op) => descOf(op.op).family === 'uacce')).toEqual([]);
  });
});

describe('which kernels have the vfio group path', () => {
  it("reads it from the config: Debian's modules, built in, or absent (the iommufd fragment has no VFIO_GROUP)", () => {
    const debian = 'CONFIG_VFIO=m\nCONFIG_VFIO_GROUP=y\nCONFIG_VFIO_CONTAINER=y\nCONFIG_VFIO_IOMMU_TYPE1=m\nCONFIG_VFIO_PCI=m\n';
    expect(vfioConfig(debian)).toBe('module');
    expect(vfioConfig(debian.replace(/=m/g, '=y'))).toBe('builtin');
    expect(vfioConfig('CONFIG_VFIO=y\nCONFIG_VFIO_DEVICE_CDEV=y\n# CONFIG_VFIO_GROUP is not set\nCONFIG_VFIO_PCI=y\nCONFIG_IOMMUFD=y\n')).toBe('absent');
  });

  it('orders the modules after their dependencies (their own depends=)', () => {
    const deps = new Map([
      ['vfio-pci', ['vfio_pci_core', 'vfio']],
      ['vfio_pci_core', ['vfio', 'irqbypass']],
      ['vfio_iommu_type1', ['vfio']],
      ['vfio', []],
      ['irqbypass', []],
      ['mdev', ['vfio']],
    ]);
    expect(loadOrder(deps, VFIO_MODULES)).toEqual(['vfio', 'irqbypass', 'vfio_pci_core', 'vfio_pci', 'vfio_iommu_type1']);
  });
});
