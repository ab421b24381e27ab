/**
 * The leak check's comparison (harness/leaks/compare.ts): what a program left, titled stably,
 * from the guest's resources before and after it and the agent's L lines; kmemleak's report
 * format; the L line on the wire; the family's rules in the fuzz summary.
 */
import { describe, expect, it } from 'vitest';
import { compareResources, parseKmemleak, type GuestResources } from '../../harness/leaks/compare.js';
import { parseAgentLine, hexEncode } from '../../harness/agent/wire.js';
import { familyRules } from '../../harness/coverage/reach.js';
import { VFIO_WEIGHTS } from '../../harness/generator/vfio.js';
import { RULES } from '../../harness/model/index.js';
import { VFIO_RULES } from '../../harness/model/vfio.js';

/** debian:6.12 on x86_64-vtd-groups between programs (vfio as modules, endpoints given back). */
const BASE: GuestResources = {
  refcnt: { vfio: 3, vfio_iommu_type1: 0, vfio_pci_core: 1, vfio_pci: 0, iommufd: 1 },
  vfioNodes: ['vfio'],
  vfioPci: [],
  iommuGroups: { '0': ['0000:00:00.0'], '5': ['0000:01:00.0'], '6': ['0000:02:00.0', '0000:02:00.1'] },
};
const copy = (r: GuestResources): GuestResources => JSON.parse(JSON.stringify(r)) as GuestResources;

describe('compareResources', () => {
  it('finds nothing when the guest is as before', () => {
    expect(compareResources(BASE, copy(BASE), [])).toEqual([]);
  });

  it('titles a module reference left behind (or gone) without its counts, which the detail gives', () => {
    const after = copy(BASE);
    after.refcnt.vfio = 4;
    after.refcnt.vfio_iommu_type1 = 1;
    after.refcnt.vfio_pci_core = 0;
    const leaks = compareResources(BASE, after);
    expect(leaks.map((l) => l.title)).toEqual([
      'leak: vfio refcnt above its value before the program',
      'leak: vfio_iommu_type1 refcnt above its value before the program',
      'leak check: vfio_pci_core refcnt below its value before the program',
    ]);
    expect(leaks[1]!.detail).toBe('module vfio_iommu_type1: refcnt 0 before the program, 1 after it (every open vfio or iommufd file holds one)');
    // the title is the same whatever the count: one bug, one finding
    after.refcnt.vfio_iommu_type1 = 2;
    expect(compareResources(BASE, after)[1]!.title).toBe(leaks[1]!.title);
  });

  it('ignores a module that was not watched before (built in, or loaded later), and says when one went', () => {
    const after = copy(BASE);
    after.refcnt.kvm = 2;
    delete after.refcnt.iommufd;
    expect(compareResources(BASE, after).map((l) => l.title)).toEqual(['leak check: module iommufd gone after the program']);
  });

  it('turns the L lines into endpoint leaks: an unbind that did not return, a bind refused with EBUSY', () => {
    const after = copy(BASE);
    after.vfioPci = ['0000:01:00.0'];
    const leaks = compareResources(BASE, after, [
      { address: '0000:01:00.0', what: 'unbind', errno: 110 },
      { address: '0000:02:00.0', what: 'bind', errno: 16 },
    ]);
    expect(leaks.map((l) => l.title)).toEqual(['leak: endpoint 0000:01:00.0 still on vfio-pci', 'leak: endpoint 0000:02:00.0 not back on svadiff_test']);
    expect(leaks[0]!.detail).toBe('endpoint 0000:01:00.0: its unbind did not return after the program (a vfio file of the device still open)');
    expect(leaks[1]!.detail).toContain('failed with EBUSY (its IOMMU group still has a user DMA owner)');
  });

  it('reports a device left on vfio-pci that no L line named', () => {
    const after = copy(BASE);
    after.vfioPci = ['0000:02:00.1'];
    expect(compareResources(BASE, after).map((l) => l.title)).toEqual(['leak: 0000:02:00.1 still on vfio-pci']);
  });

  it('compares /dev/vfio and the device cdevs', () => {
    const before = { ...copy(BASE), vfioNodes: ['devices', 'vfio'] };
    const after = { ...copy(BASE), vfioNodes: ['6', 'devices', 'devices/vfio0', 'vfio'] };
    expect(compareResources(before, after).map((l) => l.title)).toEqual(['leak: /dev/vfio/6 left after the program', 'leak: /dev/vfio/devices/vfio0 left after the program']);
    expect(compareResources(after, before).map((l) => l.title)).toEqual(['leak check: /dev/vfio/6 gone after the program', 'leak check: /dev/vfio/devices/vfio0 gone after the program']);
  });

  it('compares the IOMMU groups and their devices', () => {
    const after = copy(BASE);
    after.iommuGroups['6'] = ['0000:02:00.0'];
    after.iommuGroups['9'] = ['0000:03:00.0'];
    delete after.iommuGroups['5'];
    const leaks = compareResources(BASE, after);
    expect(leaks.map((l) => l.title)).toEqual(['leak check: IOMMU group 5 gone after the program', 'leak check: IOMMU group 6 changed by the program', 'leak: IOMMU group 9 left after the program']);
    expect(leaks[1]!.detail).toBe('/sys/kernel/iommu_groups/6: {0000:02:00.0, 0000:02:00.1} before the program, {0000:02:00.0} after it');
  });

  it('reports kmemleak objects that were not there before, one finding per allocating function', () => {
    const before = { ...copy(BASE), kmemleak: [{ address: '0xffff888003a1b200', size: 64, frame: 'old_fn' }] };
    const after = {
      ...copy(BASE),
      kmemleak: [
        { address: '0xffff888003a1b200', size: 64, frame: 'old_fn' },
        { address: '0xffff888003a1c000', size: 192, frame: 'iommufd_object_alloc_elm' },
        { address: '0xffff888003a1d000', size: 192, frame: 'iommufd_object_alloc_elm' },
      ],
    };
    const leaks = compareResources(before, after);
    expect(leaks.map((l) => l.title)).toEqual(['leak: kmemleak unreferenced object from iommufd_object_alloc_elm']);
    expect(leaks[0]!.detail).toContain('2 unreferenced object(s)');
  });
});

describe('parseKmemleak', () => {
  // the format of mm/kmemleak.c print_unreferenced() (6.12); not recorded from a guest: none of
  // the cached kernels has CONFIG_DEBUG_KMEMLEAK
  const text = [
    'unreferenced object 0xffff888104a3c800 (size 192):',
    '  comm "svadiff-agent", pid 212, jiffies 4294893652',
    '  hex dump (first 32 bytes):',
    '    00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................',
    '  backtrace (crc 7ac6a5b0):',
    '    [<ffffffff8139d3c5>] __kmalloc_cache_noprof+0x2a5/0x310',
    '    [<ffffffffc0a1b2c3>] vfio_group_fops_open.isra.0+0x43/0x120 [vfio]',
    '    [<ffffffff81412b11>] chrdev_open+0xc1/0x240',
    'unreferenced object 0xffff888104a3d000 (size 8):',
    '  backtrace (crc 0):',
    '    [<ffffffff8139d3c5>] kmalloc_trace+0x2a5/0x310',
    '\x1b[31mgarbage',
  ].join('\n');
  it('takes each object with its first non-allocator frame', () => {
    expect(parseKmemleak(text)).toEqual([
      { address: '0xffff888104a3c800', size: 192, frame: 'vfio_group_fops_open' },
      { address: '0xffff888104a3d000', size: 8, frame: '?' },
    ]);
  });
});

describe('the L line', () => {
  it('parses an endpoint the agent could not give back, and refuses a malformed one', () => {
    expect(parseAgentLine(`L 7 ${hexEncode('0000:01:00.0')} unbind 110`)).toEqual({ t: 'endpoint-left', prog: 7, address: '0000:01:00.0', what: 'unbind', errno: 110 });
    expect(parseAgentLine(`L 7 ${hexEncode('0000:01:00.0')} bind 16`)).toMatchObject({ t: 'endpoint-left', what: 'bind', errno: 16 });
    expect(parseAgentLine(`L 7 ${hexEncode('../../etc')} bind 16`).t).toBe('garbage');
    expect(parseAgentLine(`L 7 ${hexEncode('0000:01:00.0')} remove 16`).t).toBe('garbage');
    expect(parseAgentLine(`L 7 ${hexEncode('0000:01:00.0')} bind`).t).toBe('garbage');
  });
});

describe('familyRules (the rules a fuzz family lists as never reached)', () => {
  it('gives the vfio family its own rules and the core rules of the ops it draws, the uacce family none of vfio', () => {
    const vfio = familyRules('vfio', VFIO_WEIGHTS);
    expect(vfio.has('setc.dma-owned')).toBe(true);
    expect(vfio.has('close.ok')).toBe(true);
    expect(vfio.has('fd.ebadf')).toBe(true);
    expect(vfio.has('mremap.grow')).toBe(false);
    expect(vfio.has('open.sva-killswitch')).toBe(false);
    const uacce = familyRules('uacce', {});
    expect(uacce.has('setc.dma-owned')).toBe(false);
    expect(uacce.has('mremap.grow')).toBe(true);
    expect(uacce.has('close.ok')).toBe(true);
    expect([...uacce, ...vfio].every((r) => r in RULES)).toBe(true);
    expect(Object.keys(VFIO_RULES).every((r) => vfio.has(r) && !uacce.has(r))).toBe(true);
    expect(Object.keys(RULES).every((r) => vfio.has(r) || uacce.has(r))).toBe(true);
  });
});
