/**
 * The DMA model (harness/model/dma.ts): the type1 backend's mappings and what the endpoint's
 * engine does through them, against the outcomes docs/ownership-semantics.md "What the device
 * can reach by DMA" gives (the same program the integration test runs on Debian's 6.12), which
 * ep_dma the model expects to fault, and how the oracle sets those faults apart.
 */
import { describe, expect, it } from 'vitest';
import { formatPredictions, initialState, predict, profileFor, type ModelState } from '../../harness/model/index.js';
import { DMA_RULES, groupReach } from '../../harness/model/dma.js';
import { splitExpectedFaults } from '../../harness/oracle/faults.js';
import { parseReports } from '../../harness/oracle/report.js';
import { runOnModel } from '../../harness/coverage/model-run.js';
import { generateProgram } from '../../harness/generator/index.js';
import { descOf } from '../../harness/ops/index.js';
import type { Program } from '../../harness/program/types.js';
import { X86_64_VTD_GROUPS } from '../../harness/vm/machine.js';
import { DMA, DMA_FAULTS, DMA_MAPPED, DMA_MAPPED_WANT, DMA_WANT, IOMMUFD_DMA_OPS, IOMMUFD_DMA_WANT, TO_DEVICE_FD, program } from './vfio-programs.js';
import { RULES } from '../../harness/model/rules.js';
import { IOMMUFD_RULES } from '../../harness/model/iommufd.js';
import { VFIO_RULES } from '../../harness/model/vfio.js';

const PROFILE = profileFor('6.12.118+deb12-amd64', { arch: 'x86_64', distro: 'debian' });

function states(p: Program): { outcomes: string[]; last: ModelState; all: ModelState[] } {
  let s: ModelState = initialState(p.device, PROFILE);
  const all = [s];
  const outcomes = p.ops.map((op) => {
    const ps = predict(s, op);
    expect(ps.length).toBe(1);
    s = ps[0]!.next;
    all.push(s);
    return formatPredictions(ps);
  });
  return { outcomes, last: s, all };
}

/** Endpoint 0's group path up to a device fd, with memory m (2 pages) and a backend. */
const SETUP = [
  { op: 'alloc', task: 't0', map: 'm', pages: 2 },
  ...TO_DEVICE_FD,
  { op: 'vfio_map_dma', task: 't0', container: 'c', map: 'm', page: 0, iova: 0, pages: 1, write: true },
];

describe('DMA model', () => {
  it('every outcome the sheet gives for the DMA program, and its faults on endpoint 0 only', () => {
    const r = states(DMA);
    expect(r.outcomes).toEqual(DMA_WANT);
    // steps 18, 20 and 28 are refused by the IOMMU: the model names endpoint 0 three times
    expect(r.last.dmaFaults).toEqual([0, 0, 0]);
    expect([...new Set(r.last.dmaFaults)]).toEqual(DMA_FAULTS);
    expect(r.all[18]!.dmaFaults ?? []).toEqual([]);
    expect(states(DMA_MAPPED).outcomes).toEqual(DMA_MAPPED_WANT);
  });

  it('the reach of endpoint 0: its container\'s mappings, with their pinned pages', () => {
    const r = states(DMA);
    const reach = groupReach(r.all[10]!, 0);
    expect(reach).not.toBe('blocked');
    expect([...(reach as Map<number, unknown>).keys()]).toEqual([2]);
    expect(groupReach(r.all[0]!, 0)).toBeUndefined(); // the test driver: the DMA API's domain
    expect(groupReach(r.all[6]!, 0)).toBe('blocked'); // user owned, no backend yet
  });

  it('the pinned page is found again after mremap moves it, and is no task\'s after munmap', () => {
    const moved = states(
      program([
        ...SETUP,
        { op: 'mremap', task: 't0', map: 'm', page: 0, old_pages: 2, new_pages: 2, move: true, to: 'n' },
        { op: 'ep_dma', task: 't0', device: 'd', iova: 0 },
        { op: 'touch', task: 't0', map: 'n', page: 0, offset: 0xfe0, access: 'read' },
      ]),
    );
    expect(moved.outcomes.slice(-2)).toEqual(['ok(done 1)', 'ok(0x300000000)']);
    const gone = states(
      program([
        ...SETUP,
        { op: 'munmap', task: 't0', map: 'm', page: 0, pages: 1 },
        { op: 'ep_dma', task: 't0', device: 'd', iova: 0 }, // the old page: still mapped, but no task sees it
        { op: 'touch', task: 't0', map: 'm', page: 0, offset: 0xfe0, access: 'read' },
      ]),
    );
    expect(gone.outcomes.slice(-2)).toEqual(['ok', 'SIGSEGV']);
    expect(gone.last.dmaFaults ?? []).toEqual([]);
  });

  it('the mappings go with the backend when the last group leaves the container', () => {
    const r = states(
      program([
        ...SETUP,
        { op: 'close', task: 't0', fd: 'd' },
        { op: 'vfio_unset_container', task: 't0', vgroup: 'g' },
        { op: 'vfio_set_container', task: 't0', vgroup: 'g', container: 'c' },
        { op: 'vfio_set_iommu', task: 't0', container: 'c' },
        { op: 'vfio_unmap_dma', task: 't0', container: 'c', iova: 0, pages: 16 },
        { op: 'vfio_map_dma', task: 't0', container: 'c', map: 'm', page: 0, iova: 0, pages: 1, write: true },
      ]),
    );
    expect(r.outcomes.slice(-6)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok(0)', 'ok']);
  });

  it('pinning needs memory the access is allowed to: EFAULT otherwise, and nothing is mapped', () => {
    const r = states(
      program([
        ...SETUP,
        { op: 'mprotect', task: 't0', map: 'm', page: 1, pages: 1, prot: 'r' },
        { op: 'vfio_map_dma', task: 't0', container: 'c', map: 'm', page: 0, iova: 4, pages: 2, write: true }, // page 1 read-only
        { op: 'vfio_map_dma', task: 't0', container: 'c', map: 'm', page: 1, iova: 4, pages: 1, write: false }, // reading is allowed
        { op: 'vfio_unmap_dma', task: 't0', container: 'c', iova: 5, pages: 1 }, // nothing at page 5
      ]),
    );
    expect(r.outcomes.slice(-4)).toEqual(['ok', 'EFAULT', 'ok', 'ok(0)']);
  });

  it('a descriptor the model does not cover (WRITE64 in the ring) leaves the result open', () => {
    const r = states(
      program([
        ...SETUP,
        { op: 'touch', task: 't0', map: 'm', page: 0, offset: 0xfe0, access: 'write', value: '0x1' },
        { op: 'ep_dma', task: 't0', device: 'd', iova: 0 },
        { op: 'touch', task: 't0', map: 'm', page: 0, offset: 0x20, access: 'read' },
      ]),
    );
    expect(r.outcomes.slice(-2)).toEqual(['ok', 'ok']);
  });
});

describe('DMA through iommufd', () => {
  const IOMMUFD = profileFor('6.12.118+deb12-amd64', { arch: 'x86_64', distro: 'debian', vfioPaths: { group: false, iommufd: true } });

  it('reaches the IOAS behind the attached HWPT: blocked before attach and after detach, o1 then o2 across a replace', () => {
    const p = program(IOMMUFD_DMA_OPS);
    let s: ModelState = initialState(p.device, IOMMUFD);
    const got: Record<number, string> = {};
    p.ops.forEach((op, i) => {
      const ps = predict(s, op);
      expect(ps.length).toBe(1);
      if (IOMMUFD_DMA_WANT[i] !== undefined) got[i] = formatPredictions(ps);
      s = ps[0]!.next;
    });
    expect(got).toEqual(IOMMUFD_DMA_WANT);
    expect(s.dmaFaults).toEqual([0, 0, 0]);
  });

  it("DMA's rule ids are its own (a rule of another family with the same id would lose its citation)", () => {
    const others = new Set([...Object.keys(IOMMUFD_RULES), ...Object.keys(VFIO_RULES)]);
    expect(Object.keys(DMA_RULES).filter((k) => others.has(k))).toEqual([]);
    for (const k of Object.keys(DMA_RULES)) expect(RULES[k as keyof typeof RULES]).toBe(DMA_RULES[k as keyof typeof DMA_RULES]);
  });
});

describe('expected DMA faults', () => {
  it('a work item of a bound queue after its opener exited is an expected IOMMU fault of its endpoint (7.2: the PASID entry is gone)', async () => {
    const { SVA_LIFE_OPS, SVA_LIFE_DEVICE } = await import('./sva-programs.js');
    const p = program(SVA_LIFE_OPS as unknown[], SVA_LIFE_DEVICE);
    const profile = profileFor('7.2.13+deb14-amd64', { arch: 'x86_64', distro: 'debian' });
    let s: ModelState = initialState(p.device, profile);
    for (const op of p.ops) s = predict(s, op)[0]!.next;
    expect([...new Set(s.dmaFaults)]).toEqual([1]);
  });

  const line = (dev: string, addr: string) => `DMAR: [DMA Read NO_PASID] Request device [${dev}] fault addr ${addr} [fault reason 0x06] PTE Read access is not set`;

  it("the oracle sets apart the faults of the endpoints the model named, in 6.12's and 7.2's forms, and keeps the others", () => {
    const reports = parseReports([line('01:00.0', '0x103000'), line('0000:01:00.0', '0x103000'), line('02:00.0', '0x100000')]);
    expect(reports.length).toBe(3);
    const { reports: kept, expected } = splitExpectedFaults(reports, [0], X86_64_VTD_GROUPS.endpointAddresses);
    expect(expected.length).toBe(2);
    expect(kept.map((r) => r.details?.device)).toEqual(['02:00.0']);
    expect(splitExpectedFaults(reports, [], X86_64_VTD_GROUPS.endpointAddresses).reports.length).toBe(3);
  });
});

describe('DMA in generated vfio programs', () => {
  it('1000 programs of seed 7 map memory, run the engine at mapped and unmapped IOVAs and unmap, reaching the DMA rules the generator makes', () => {
    // Debian's kernels have no iommufd: its descriptors, and so a blocked group with a device fd, do not occur
    const NOT_MADE = ['dma.not-vfio', 'dma.enotty', 'dma.device-hot-reset', 'dma.iommufd-compat', 'dma.cdev-unbound', 'dma.no-backend', 'epdma.blocked', 'epdma.unknown'];
    const reached = new Set<string>();
    let dma = 0;
    for (let i = 0; i < 1000; i++) {
      const p = generateProgram(7, i, { family: 'vfio' });
      expect(p.ops.filter((op) => descOf(op.op).family === 'uacce')).toEqual([]);
      dma += p.ops.filter((op) => op.op === 'ep_dma').length;
      for (const s of runOnModel(p, PROFILE).steps) reached.add(s.rule);
    }
    expect(dma).toBeGreaterThan(100);
    const missing = Object.keys(DMA_RULES).filter((r) => !NOT_MADE.includes(r) && !reached.has(r));
    expect(missing).toEqual([]);
  });

  it('on an iommufd kernel 400 programs of seed 7 run the engine through bound cdevs: blocked, and into IOAS memory', () => {
    const profile = profileFor('6.12.118+deb12-amd64', { arch: 'x86_64', distro: 'debian', vfioPaths: { group: false, iommufd: true } });
    const reached = new Set<string>();
    let dma = 0;
    for (let i = 0; i < 400; i++) {
      const p = generateProgram(7, i, { family: 'vfio', profile });
      dma += p.ops.filter((op) => op.op === 'ep_dma').length;
      for (const s of runOnModel(p, profile).steps) reached.add(s.rule);
    }
    expect(dma).toBeGreaterThan(50);
    expect(['epdma.done', 'epdma.blocked'].filter((r) => !reached.has(r))).toEqual([]);
  });
});
