/**
 * SVA work items against the platform engine, on one SVA machine (both backends run there: the
 * platform devices need no hardware): the round trip of one work item (host -> agent -> queue ->
 * completion -> host, one op per message) and the throughput of work items in one program
 * (the agent rings, waits, and rings again), each a median of `reps`, and their ratios. The
 * platform engine reaches memory with get_user_pages_remote; the svadiff-sva endpoint by
 * PASID-tagged translation through the emulated VT-d (docs/test-device.md).
 */
import { join } from 'node:path';
import { fetchKernel } from '../kernels/index.js';
import { PROGRAM_FORMAT, PROGRAM_VERSION, type Op, type Program } from '../harness/program/types.js';
import { Guest, prepareGuestImage } from '../harness/vm/guest.js';
import { X86_64_VTD_SVA } from '../harness/vm/machine.js';
import { median } from './bench.js';

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

/** Open, map and start one queue, an anonymous buffer, then `items` WRITE64 work items over its pages. */
function workProgram(sva: boolean, items: number, pages = 16): Program {
  const ops: Op[] = [
    { op: 'open', task: 't0', fd: 'q', dev: 0, via: 'path' },
    { op: 'mmap', task: 't0', map: 'r', fd: 'q', region: 0, pages: 1, prot: 'rw', shared: true },
    { op: 'mmap', task: 't0', map: 'd', fd: 'q', region: 1, pages: 1, prot: 'rw', shared: true },
    { op: 'ioctl', task: 't0', fd: 'q', cmd: 'START_Q' },
    { op: 'alloc', task: 't0', map: 'a', pages },
  ];
  for (let i = 0; i < items; i++) {
    ops.push({ op: 'submit', task: 't0', mmio: 'r', dus: 'd', work: 'write', target: 'a', page: i % pages, offset: (i * 8) % 4096, value: `0x${(i + 1).toString(16)}`, ack: true });
  }
  return {
    format: PROGRAM_FORMAT,
    version: PROGRAM_VERSION,
    device: { devices: 1, mmio_pages: 1, dus_pages: 1, queue_limit: 4, sva, isolate_ops: 'none', isolate_state: false, ioctl: false, api: 'svadiff-test-v1', algorithms: ['copy'] },
    ops,
  };
}

const SETUP_OPS = 5;

async function measure(g: Guest, sva: boolean, items: number, reps: number, id: { n: number }) {
  const throughput: number[] = [];
  const roundTrip: number[] = [];
  for (let r = 0; r < reps; r++) {
    // in one program: the items back to back; the time of the same program without them
    // (device setup, open, mappings, teardown) taken off
    const base = await g.session.runProgram(id.n++, workProgram(sva, 0));
    const run = await g.session.runProgram(id.n++, workProgram(sva, items));
    const sub = run.results.slice(SETUP_OPS);
    if (sub.length !== items || sub.some((x) => !x || x.ret !== 0n || x.data !== 'done')) throw new Error(`sva=${sva}: a work item did not complete (${sub.filter((x) => x?.data === 'done').length} of ${items} done)`);
    throughput.push(items / ((run.elapsedMs - base.elapsedMs) / 1000));
    // one op per message: the host's round trip of each work item
    const small = workProgram(sva, 40);
    const ip = await g.session.openInteractive(id.n++, small);
    for (let i = 0; i < small.ops.length; i++) {
      const t = performance.now();
      const x = await ip.runOp(i);
      if (i >= SETUP_OPS) {
        if (x.ret !== 0n || x.data !== 'done') throw new Error(`sva=${sva}: interactive work item ${i} did not complete`);
        roundTrip.push(performance.now() - t);
      }
    }
    await ip.close();
  }
  return { items_per_s: round(median(throughput), 0), round_trip_ms: round(median(roundTrip), 3), runs_items_per_s: throughput.map((x) => round(x, 0)) };
}

/** The SVA benchmark on `spec` (a kernel whose SVA binds succeed: debian:7.2). */
export async function benchSva(spec: string, logDir: string, items = 400, reps = 3) {
  const kernel = await fetchKernel(spec);
  const image = await prepareGuestImage(kernel);
  const g = await Guest.boot(kernel, image, { machine: X86_64_VTD_SVA.name, consolePath: join(logDir, 'sva.console.log') });
  try {
    const id = { n: 1000 };
    const platform = await measure(g, false, items, reps, id);
    const sva = await measure(g, true, items, reps, id);
    return {
      what: `WRITE64 work items on ${kernel.exactSpec}, SVA machine (${g.accel}): ${items} back to back in one program (throughput: its time minus that of the program without them), and one op per message (round trip, host clock); medians of ${reps}`,
      platform,
      sva,
      sva_over_platform: { throughput: round(sva.items_per_s / platform.items_per_s, 3), round_trip: round(sva.round_trip_ms / platform.round_trip_ms, 3) },
      dma_bytes_per_s: { platform: platform.items_per_s * 8, sva: sva.items_per_s * 8 },
    };
  } finally {
    await g.shutdown();
  }
}
