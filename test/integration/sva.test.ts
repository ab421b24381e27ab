/**
 * The SVA machine on real Debian kernels: svadiff's QEMU build (cached after its first, cold
 * build of several minutes), the svadiff-sva endpoints behind root ports, and the test module's
 * PCI backend (device.sva=true). On 7.2 every open binds: the queues of one process share a
 * non-zero PASID, and work items reach the process's memory by PASID-tagged translation and page
 * requests through the emulated VT-d (and fault once the opener's address space is gone), and
 * removal is an unbind and bind of the PCI endpoint. On
 * Debian's 6.12 the SVA kill switch refuses every bind.
 * Every result is asserted exactly, and the reference model must agree with all of it.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchKernel } from '../../kernels/index.js';
import { slotAddress } from '../../harness/agent/conventions.js';
import { observe } from '../../harness/agent/observe.js';
import { slotTable } from '../../harness/agent/wire.js';
import { profileFor } from '../../harness/model/index.js';
import { parseProgram } from '../../harness/program/parse.js';
import { executeProgram, type ExecResult } from '../../harness/run/execute.js';
import { compileRepro, guestReproPath, prepareReproImage, runReproOnGuest } from '../../harness/repro/replay.js';
import { reproForProgram } from '../../harness/repro/csource.js';
import { Guest, prepareGuestImage } from '../../harness/vm/guest.js';
import { SVA_LIFE_DEVICE, SVA_LIFE_OPS } from '../unit/sva-programs.js';
import { SVA_ENDPOINTS, X86_64_VTD_SVA, svaEndpointAddress } from '../../harness/vm/machine.js';

const logDir = mkdtempSync(join(tmpdir(), 'svadiff-it-sva-'));

interface SvaGuest {
  guest: Guest;
  profile: ReturnType<typeof profileFor>;
}

/**
 * An SVA machine with this kernel for the tests of the enclosing describe; the reproducers of
 * `repros` (C, compiled with -Werror) are in its initramfs: g.repros[i] is the guest path of
 * repros[i]'s binary.
 */
function svaGuest(spec: string, repros: readonly ReturnType<typeof program>[] = []): () => SvaGuest & { repros: string[] } {
  let g: (SvaGuest & { repros: string[] }) | undefined;
  beforeAll(async () => {
    const kernel = await fetchKernel(spec);
    const profile = profileFor(kernel.release, { arch: kernel.arch, distro: 'debian' });
    const binaries: string[] = [];
    for (const [i, p] of repros.entries()) {
      const c = join(logDir, `repro-${i}.c`);
      writeFileSync(c, reproForProgram(p, profile));
      binaries.push(await compileRepro(c, ['-Werror']));
    }
    const image = binaries.length > 0 ? await prepareReproImage(kernel, binaries) : await prepareGuestImage(kernel);
    const guest = await Guest.boot(kernel, image, { machine: X86_64_VTD_SVA.name, consolePath: join(logDir, `${spec.replace(/\W/g, '_')}.console.log`) });
    g = { guest, profile, repros: binaries.map(guestReproPath) };
    // on a cold cache this also builds QEMU (about 10 min of CPU) and 7.2's sid build root
  }, 60 * 60_000);
  afterAll(async () => {
    await g?.guest.shutdown();
  });
  return () => {
    if (!g) throw new Error(`no ${spec} guest`);
    return g;
  };
}

function program(ops: unknown[], device: Record<string, unknown>) {
  return parseProgram(JSON.stringify({ format: 'svadiff-program', version: 1, device: { ...device, sva: true }, ops }), 'sva-test');
}

/** The agent's result of op i: its data (and that it neither failed nor was signalled). */
function data(r: ExecResult, i: number): string {
  const x = r.run?.results[i];
  if (!x) throw new Error(`op ${i}: no result (${JSON.stringify({ finished: r.run?.finished, errors: r.run?.errors })})`);
  expect({ op: i, errno: x.errno, signal: x.signal }).toEqual({ op: i, errno: 0, signal: 0 });
  return x.data;
}

/** Removal with a bound queue running (7.2): run through the agent and as a reproducer. */
const REMOVAL_OPS = [
  { op: 'open', task: 't0', fd: 'q1', dev: 1, via: 'path' },
  { op: 'mmap', task: 't0', map: 'r1', fd: 'q1', region: 0, pages: 1, prot: 'rw', shared: true },
  { op: 'mmap', task: 't0', map: 'd1', fd: 'q1', region: 1, pages: 1, prot: 'rw', shared: true },
  { op: 'ioctl', task: 't0', fd: 'q1', cmd: 'START_Q' },
  { op: 'alloc', task: 't0', map: 'a', pages: 1 },
  { op: 'submit', task: 't0', mmio: 'r1', dus: 'd1', work: 'write', target: 'a', page: 0, offset: 0, value: '0x5', ack: true },
  { op: 'remove', task: 't0', dev: 1 }, // 6: unbind 0000:02:00.0
  { op: 'touch', task: 't0', map: 'r1', page: 0, offset: 0, access: 'read' },
  { op: 'open', task: 't0', fd: 'q2', dev: 1, via: 'path' },
  { op: 'add', task: 't0', dev: 1 }, // 9: bind it again
  { op: 'open', task: 't0', fd: 'q3', dev: 1, via: 'path' },
  { op: 'close', task: 't0', fd: 'q1' },
  { op: 'touch', task: 't0', map: 'a', page: 0, offset: 0, access: 'read' },
];
const REMOVAL = program(REMOVAL_OPS, { devices: 2, mmio_pages: 1, dus_pages: 1 });

describe('SVA machine, debian:7.2: binds, one PASID per process, DMA through the IOMMU', () => {
  const sva = svaGuest('debian:7.2', [REMOVAL]);

  it(`puts each of the ${SVA_ENDPOINTS} endpoints in its own IOMMU group`, async () => {
    // sysfs, not the console: under load the serial console may drop a boot line
    const g = sva().guest;
    for (let i = 0; i < SVA_ENDPOINTS; i++) {
      const group = `/sys/bus/pci/devices/${svaEndpointAddress(i)}/iommu_group/devices`;
      expect(await g.session.readFile(`${group}/${svaEndpointAddress(i)}/vendor`)).toEqual({ errno: 0, content: '0x1234\n' });
      // not with the next endpoint, nor with its own root port
      const other = svaEndpointAddress((i + 1) % SVA_ENDPOINTS);
      expect((await g.session.readFile(`${group}/${other}/vendor`)).errno).toBe(2);
      expect((await g.session.readFile(`${group}/0000:00:${(0x10 + i).toString(16)}.0/vendor`)).errno).toBe(2);
    }
  });

  it('two opens share a non-zero PASID; work items write, fault pages in, read, and fault on unmapped memory', async () => {
    // map slots in creation order: r1 0, r2 1, d1 2, a 3, u 4
    const ops = [
      { op: 'open', task: 't0', fd: 'q1', dev: 0, via: 'path' },
      { op: 'open', task: 't0', fd: 'q2', dev: 0, via: 'path' },
      { op: 'mmap', task: 't0', map: 'r1', fd: 'q1', region: 0, pages: 1, prot: 'rw', shared: true },
      { op: 'mmap', task: 't0', map: 'r2', fd: 'q2', region: 0, pages: 1, prot: 'rw', shared: true },
      { op: 'mmap', task: 't0', map: 'd1', fd: 'q1', region: 1, pages: 1, prot: 'rw', shared: true },
      // OPENER_TGID | PASID << 32 of each queue
      { op: 'touch', task: 't0', map: 'r1', page: 0, offset: 0x18, access: 'read' },
      { op: 'touch', task: 't0', map: 'r2', page: 0, offset: 0x18, access: 'read' },
      { op: 'ioctl', task: 't0', fd: 'q1', cmd: 'START_Q' },
      { op: 'alloc', task: 't0', map: 'a', pages: 2 },
      { op: 'touch', task: 't0', map: 'a', page: 0, offset: 0, access: 'write', value: '0x1' },
      // 10: into a page the process has touched
      { op: 'submit', task: 't0', mmio: 'r1', dus: 'd1', work: 'write', target: 'a', page: 0, offset: 8, value: '0x1122334455667788', ack: true },
      { op: 'touch', task: 't0', map: 'a', page: 0, offset: 8, access: 'read' },
      // 12: into a page nobody touched yet: a page request makes it present
      { op: 'submit', task: 't0', mmio: 'r1', dus: 'd1', work: 'write', target: 'a', page: 1, offset: 0, value: '0xabcdef', ack: true },
      { op: 'touch', task: 't0', map: 'a', page: 1, offset: 0, access: 'read' },
      { op: 'submit', task: 't0', mmio: 'r1', dus: 'd1', work: 'read', target: 'a', page: 0, offset: 8, ack: true },
      { op: 'alloc', task: 't0', map: 'u', pages: 1 },
      { op: 'munmap', task: 't0', map: 'u', page: 0, pages: 1 },
      // 17: unmapped: FAULT, RESULT (ring slot 3, at 3 * 32 + 0x18) = the address
      { op: 'submit', task: 't0', mmio: 'r1', dus: 'd1', work: 'write', target: 'u', page: 0, offset: 0, value: '0x7', ack: true },
      { op: 'touch', task: 't0', map: 'd1', page: 0, offset: 3 * 32 + 0x18, access: 'read' },
      { op: 'touch', task: 't0', map: 'r1', page: 0, offset: 0x28, access: 'read' }, // FAULTS | ACK << 32
    ];
    const r = await executeProgram(sva().guest, 1, program(ops, { devices: 1, mmio_pages: 1, dus_pages: 1 }), sva().profile);
    expect(r.reports).toEqual([]);
    expect(r.check.divergence).toBeUndefined();
    expect(r.run?.finished?.status).toBe(0);

    expect(data(r, 0)).toBe('/dev/svt0-0');
    expect(data(r, 1)).toBe('/dev/svt0-0');
    const pasid1 = BigInt(data(r, 5)) >> 32n;
    const pasid2 = BigInt(data(r, 6)) >> 32n;
    expect(pasid1).toBeGreaterThan(0n);
    expect(pasid2).toBe(pasid1);

    expect(data(r, 10)).toBe('done');
    expect(data(r, 11)).toBe('0x1122334455667788');
    expect(data(r, 12)).toBe('done');
    expect(data(r, 13)).toBe('0xabcdef');
    expect(data(r, 14)).toBe('done 0x1122334455667788');
    expect(data(r, 17)).toBe('fault');
    const unmapped = slotAddress(4);
    expect(data(r, 18)).toBe(`0x${unmapped.toString(16)}`);
    expect(data(r, 19)).toBe('0x400000001'); // one fault; ACK = CQ_HEAD = 4 items
    // the device's fault report: the page request for the unmapped address was refused
    expect(r.deviceReports.map((d) => d.title)).toEqual(['svadiff_test fault: page request denied']);
    expect(r.kmsgText).toContain(`svadiff_test ${svaEndpointAddress(0)}: fault: queue 1 pasid ${pasid1} addr 0x${unmapped.toString(16)} (page request denied)`);
  });

  it("one PASID per address space: two opens, two devices, a fork child's own open; DMA lands in the opener's memory only, faults on read-only memory; after the opener exits a work item faults and nothing else changes", async () => {
    const ops = [...SVA_LIFE_OPS];
    const r = await executeProgram(sva().guest, 4, program(ops, SVA_LIFE_DEVICE), sva().profile);
    expect(r.reports).toEqual([]);
    expect(r.check.divergence).toBeUndefined();
    expect(r.check.ops.map((c) => c.verdict)).toEqual(Array(ops.length).fill('match'));
    // by op index (test/unit/sva-programs.ts): PASIDs, the parent's memory, the child's, faults
    const want: Record<number, string> = {
      8: 'p0', 9: 'p0', 10: 'p0', 22: 'p0', 25: 'p1', 34: 'p0',
      13: 'done', 14: '0x1111', 16: 'fault', 17: '0x0',
      26: 'done', 27: '0x0', 28: '0x2222',
      30: 'fault', // the opener has exited: its address space is gone
      31: '0x0', 32: '0x1111', // nothing else changed: the child's memory is as it was
      33: '0x200000001', // q5: the one fault counted, both completions acknowledged
    };
    expect(Object.fromEntries(Object.keys(want).map((i) => [i, data(r, Number(i))]))).toEqual(want);
    // the endpoints' fault logs: the read-only page (q on endpoint 0) and the item after the
    // exit (q5 on endpoint 1), whose PASID entry intel_mm_release tore down: the IOMMU refuses
    // its page request
    expect(r.deviceReports.map((d) => d.title)).toEqual(['svadiff_test fault: page request denied', 'svadiff_test fault: page request refused']);
    const a = slotAddress(4); // map slots in creation order: r, d, r2, r3, a
    expect(r.kmsgText).toMatch(new RegExp(`svadiff_test ${svaEndpointAddress(0).replace(/\./g, '\\.')}: fault: queue \\d+ pasid \\d+ addr 0x${(a + 0x1000n).toString(16)} \\(page request denied\\)`));
    expect(r.kmsgText).toMatch(new RegExp(`svadiff_test ${svaEndpointAddress(1).replace(/\./g, '\\.')}: fault: queue \\d+ pasid \\d+ addr 0x${(a + 16n).toString(16)} \\(page request refused\\)`));
  });

  it('removal is a PCI unbind and bind: with a bound queue running, its mappings go, the node goes and comes back, memory stays', async () => {
    const ops = REMOVAL_OPS;
    const r = await executeProgram(sva().guest, 2, REMOVAL, sva().profile);
    expect(r.reports).toEqual([]);
    expect(r.check.divergence).toBeUndefined();
    expect(r.check.ops.map((c) => c.verdict)).toEqual(Array(ops.length).fill('match'));
    expect(data(r, 5)).toBe('done');
    expect(r.run?.results[7]?.signal).toBe(7); // SIGBUS: uacce_remove zapped the mapping
    expect(r.run?.results[8]?.errno).toBe(2); // ENOENT: the node is gone
    expect(data(r, 10)).toBe('/dev/svt1-1');
    expect(data(r, 12)).toBe('0x5');
    expect(r.kmsgText).toContain(`svadiff_test ${svaEndpointAddress(1)}: removed`);
  });

  it("the same program's C reproducer unbinds and binds the PCI endpoint too: every step as the model expects", async () => {
    const r = await runReproOnGuest(sva().guest, sva().repros[0]!, REMOVAL.device, { progId: 3 });
    expect(r.exitCode, r.output).toBe(0);
    expect(r.output).toContain(`RESULT: every checked step (${REMOVAL.ops.length} of ${REMOVAL.ops.length}) did what the model expects`);
    expect(r.reports).toEqual([]);
    expect(r.kmsgText).toContain(`svadiff_test ${svaEndpointAddress(1)}: removed`);
  });
  it('resets in place on the PCI backend too: the removal program set up by the control file gives what it gives with reload', async () => {
    const { guest, profile } = sva();
    const slots = slotTable(REMOVAL);
    const outcomes = (r: ExecResult) => REMOVAL.ops.map((op, i) => (r.run?.results[i] ? JSON.stringify(observe(op, r.run.results[i]!, slots)) : 'no result'));
    const reload = await executeProgram(guest, 20, REMOVAL, profile);
    // the first loads the module (the last program unloaded it), the second writes "up" after its "down"
    const first = await executeProgram(guest, 21, REMOVAL, profile, { setup: 'reset' });
    const second = await executeProgram(guest, 22, REMOVAL, profile, { setup: 'reset' });
    for (const r of [first, second]) {
      expect(r.reports).toEqual([]);
      expect(r.run?.finished?.status).toBe(0);
      expect(r.consoleText).not.toMatch(/svadiff-agent: control .*instead/);
      expect(outcomes(r)).toEqual(outcomes(reload));
    }
    // the PCI driver was registered again by the control file: the endpoints probed, not the module loaded
    expect(second.kmsgText).toContain('svadiff_test: loaded: abi');
    expect(second.kmsgText).toContain(`svadiff_test ${svaEndpointAddress(1)}: registered svt1-`);
  });
});

describe("SVA machine, debian:6.12: Debian's kill switch refuses every bind", () => {
  const sva = svaGuest('debian:6.12');

  it('the flag is negotiated (flags 1), and every open of an SVA device fails with EOPNOTSUPP', async () => {
    const ops = [
      { op: 'sysfs_read', task: 't0', dev: 0, attr: 'flags' },
      { op: 'open', task: 't0', fd: 'q1', dev: 0, via: 'path' },
      { op: 'open', task: 't0', fd: 'q2', dev: 1, via: 'path' },
      { op: 'sysfs_read', task: 't0', dev: 0, attr: 'available_instances' },
    ];
    const r = await executeProgram(sva().guest, 1, program(ops, { devices: 2 }), sva().profile);
    expect(r.reports).toEqual([]);
    expect(r.check.divergence).toBeUndefined();
    expect(data(r, 0)).toBe('1\n');
    for (const i of [1, 2]) {
      const x = r.run?.results[i];
      expect({ op: i, ret: Number(x?.ret), errno: x?.errno }).toEqual({ op: i, ret: -1, errno: 95 }); // EOPNOTSUPP
    }
    expect(data(r, 3)).toBe('4\n');
  });
});
