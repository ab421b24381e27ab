/**
 * npm run bench: measurements on a real guest, written as JSON to bench-results/<date>.json
 * (and printed). Nothing here asserts a speed: the numbers are for humans and for comparing
 * runs. Options: --kernel K (default debian:6.12), --sva-kernel K (default debian:7.2: the SVA
 * benchmark's kernel, one whose binds succeed), --only name[,name], --out FILE.
 *
 * Sections: boot, ping, mmap, fuzz (on --kernel); sva (SVA work items against the platform
 * engine on --sva-kernel); throughput (on each of --kernels, default
 * debian:6.12,debian:6.1: the fuzz loop with the device reloaded per program, reset in place,
 * and reset with two jobs, side by side, --programs each, with their ratios); boots (boot to
 * agent ready on each of --boot-kernels, default debian:6.1,debian:6.12,debian:7.2, with
 * SeaBIOS and with qboot, and where the time went: bench/boot-phases.ts); restore
 * (on each of --kernels: a new guest and its first program, booted vs restored from the VM
 * snapshot, alternately). Every
 * figure has the host's load average next to it: this host is shared.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fetchKernel } from '../kernels/index.js';
import type { KernelArtifacts } from '../kernels/types.js';
import { PROGRAM_FORMAT, PROGRAM_VERSION, type Op, type Program } from '../harness/program/types.js';
import { Guest, prepareGuestImage, type GuestImage } from '../harness/vm/guest.js';
import { info } from '../harness/util/log.js';
import { tmpdir } from 'node:os';
import { profileFor } from '../harness/model/index.js';
import { parseProgram } from '../harness/program/parse.js';
import { executeProgram } from '../harness/run/execute.js';
import { projectRoot } from '../harness/util/paths.js';
import { machineFor, X86_64_VTD, X86_64_VTD_SEABIOS, type MachineProfile } from '../harness/vm/machine.js';
import { bootPhases, type BootPhases } from './boot-phases.js';
import { benchFuzz, load, type FuzzVariant } from './fuzz-bench.js';

export interface BenchContext {
  kernel: KernelArtifacts;
  image: GuestImage;
  logDir: string;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

async function benchBoot(ctx: BenchContext, runs = 3) {
  const times: number[] = [];
  const loadBefore = load();
  for (let i = 0; i < runs; i++) {
    const g = await Guest.boot(ctx.kernel, ctx.image, { consolePath: join(ctx.logDir, `boot-${i}.console.log`) });
    times.push(g.bootMs);
    await g.shutdown();
  }
  return { what: `QEMU start to agent hello, ${ctx.kernel.exactSpec}`, runs: times.map((t) => round(t / 1000)), median_s: round(median(times) / 1000), load_before: loadBefore, load_after: load() };
}

/**
 * Boot to agent ready with each firmware the architecture's plain machine can run (x86: SeaBIOS,
 * what it ran before, and qboot, what it runs now), alternately (the order flips every round, so
 * that a change of the host's load hits both), `runs` boots each, with where the time went.
 */
async function benchBootFirmware(ctx: BenchContext, runs = 3) {
  const machines: MachineProfile[] = ctx.kernel.arch === 'x86_64' ? [X86_64_VTD_SEABIOS, X86_64_VTD] : [machineFor(ctx.kernel.arch)];
  const samples = new Map<string, { s: number; load: number; phases?: BootPhases }[]>(machines.map((m) => [m.name, []]));
  const loadBefore = load();
  for (let i = 0; i < runs; i++) {
    for (const m of i % 2 ? [...machines].reverse() : machines) {
      const l = load()[0]!;
      const g = await Guest.boot(ctx.kernel, ctx.image, { machine: m, consolePath: join(ctx.logDir, `boots-${ctx.kernel.exactSpec.replace(/[^\w.-]/g, '_')}-${m.name}-${i}.console.log`) });
      const phases = bootPhases(g.vm.consoleLines, g.vm.lineArrivalMs, g.bootMs);
      samples.get(m.name)!.push({ s: round(g.bootMs / 1000), load: l, ...(phases ? { phases } : {}) });
      await g.shutdown();
    }
  }
  const per = Object.fromEntries(
    machines.map((m) => {
      const xs = samples.get(m.name)!;
      // each phase over the boots that have it (firmware_s only where the console shows the setup code)
      const keys = [...new Set(xs.flatMap((x) => Object.keys(x.phases ?? {})))] as (keyof BootPhases)[];
      const phases = keys.length > 0 ? Object.fromEntries(keys.map((k) => [k, round(median(xs.flatMap((x) => (x.phases?.[k] !== undefined ? [x.phases[k]!] : []))))])) : undefined;
      return [m.name, { firmware: m.firmware ?? 'the machine default', runs_s: xs.map((x) => x.s), load_1min: xs.map((x) => x.load), median_s: round(median(xs.map((x) => x.s))), ...(phases ? { median_phases_s: phases } : {}) }];
    }),
  );
  const med = (m: MachineProfile) => median(samples.get(m.name)!.map((x) => x.s));
  return {
    what: `QEMU start to agent hello, ${ctx.kernel.exactSpec}, by firmware (alternately, ${runs} boots each)`,
    kernel: ctx.kernel.exactSpec,
    machines: per,
    ...(machines.length === 2 ? { seabios_over_qboot: round(med(machines[0]!) / med(machines[1]!)) } : {}),
    load_before: loadBefore,
    load_after: load(),
  };
}

async function contextFor(spec: string, logDir: string): Promise<BenchContext> {
  const kernel = await fetchKernel(spec);
  return { kernel, image: await prepareGuestImage(kernel), logDir };
}

/** The fuzz loop's variants side by side on one kernel: before (reload), and what this branch adds. */
async function benchThroughput(ctx: BenchContext, programs: number) {
  const variants: FuzzVariant[] = [
    { setup: 'reload', jobs: 1, snapshot: false },
    { setup: 'reset', jobs: 1, snapshot: true },
    { setup: 'reset', jobs: 2, snapshot: true },
  ];
  const runs: Awaited<ReturnType<typeof benchFuzz>>[] = [];
  for (const v of variants) {
    info(`bench: throughput on ${ctx.kernel.exactSpec}: device ${v.setup}, ${v.jobs} job(s), snapshot ${v.snapshot ? 'on' : 'off'}, ${programs} programs …`);
    runs.push(await benchFuzz(ctx, programs, 12345, v));
  }
  const base = runs[0]!;
  const ratio = (r: (typeof runs)[number]) => ({
    programs_per_s: round(r.programs_per_s / base.programs_per_s),
    checked_ops_per_s: round(r.checked_ops_per_s / base.checked_ops_per_s),
    wall_checked_ops_per_s: round(r.wall.checked_ops_per_s / base.wall.checked_ops_per_s),
  });
  return {
    kernel: ctx.kernel.exactSpec,
    runs,
    ratios_to_reload: Object.fromEntries(runs.slice(1).map((r) => [`${r.variant.setup}${r.variant.snapshot ? '+snapshot' : ''}x${r.variant.jobs}`, ratio(r)])),
  };
}

/**
 * What the fuzz loop waits for after a kernel report or a hang: a new guest and its first
 * program. Booting against restoring the VM snapshot, alternately, `runs` times each (the first
 * restore-side start saves the snapshot and is not counted).
 */
async function benchRestore(ctx: BenchContext, runs = 3) {
  const profile = profileFor(ctx.kernel.release, { arch: ctx.kernel.arch, distro: 'debian' });
  const program = parseProgram(await fs.readFile(join(projectRoot(), 'corpus', 'seeds', 'basic-lifecycle.json'), 'utf8'), 'seed');
  const snapshotDir = await fs.mkdtemp(join(tmpdir(), 'svadiff-bench-snap-'));
  const one = async (snapshot: boolean, i: number) => {
    const t0 = Date.now();
    const g = await Guest.boot(ctx.kernel, ctx.image, { snapshot, snapshotDir, consolePath: join(ctx.logDir, `restore-${snapshot}-${i}.console.log`) });
    const ready = Date.now() - t0;
    const r = await executeProgram(g, 1, program, profile);
    const total = Date.now() - t0;
    const restored = g.restored;
    await g.shutdown();
    if (r.check.divergence || r.reports.length > 0) throw new Error(`the seed program did not run cleanly on a ${restored ? 'restored' : 'booted'} guest`);
    return { ready, total, restored };
  };
  const loadBefore = load();
  await one(true, 0); // saves the snapshot
  const boot: number[] = [];
  const restore: number[] = [];
  const bootReady: number[] = [];
  const restoreReady: number[] = [];
  for (let i = 1; i <= runs; i++) {
    const b = await one(false, i);
    boot.push(b.total);
    bootReady.push(b.ready);
    const s = await one(true, i);
    if (!s.restored) throw new Error('the snapshot did not restore');
    restore.push(s.total);
    restoreReady.push(s.ready);
  }
  const snap = (await fs.readdir(snapshotDir)).find((f) => f.endsWith('.vmstate'));
  const bytes = snap ? (await fs.stat(join(snapshotDir, snap))).size : 0;
  await fs.rm(snapshotDir, { recursive: true, force: true });
  return {
    what: `new guest to its first program's end (the seed basic-lifecycle), ${ctx.kernel.exactSpec}: boot vs restore of the VM snapshot, alternately`,
    boot_s: boot.map((x) => round(x / 1000)),
    restore_s: restore.map((x) => round(x / 1000)),
    median_boot_s: round(median(boot) / 1000),
    median_restore_s: round(median(restore) / 1000),
    boot_over_restore: round(median(boot) / median(restore)),
    to_agent_ready: { boot_s: bootReady.map((x) => round(x / 1000)), restore_s: restoreReady.map((x) => round(x / 1000)) },
    snapshot_mib: round(bytes / 2 ** 20, 1),
    load_before: loadBefore,
    load_after: load(),
  };
}

async function benchPing(g: Guest, n = 300) {
  for (let i = 0; i < 10; i++) await g.session.ping(); // warm up
  const ms: number[] = [];
  for (let i = 0; i < n; i++) ms.push(await g.session.ping());
  return { what: 'host→agent→host no-op round trip', n, median_ms: round(median(ms), 3), p99_ms: round(percentile(ms, 99), 3), max_ms: round(Math.max(...ms), 3) };
}

function mmapMunmapProgram(pairs: number): Program {
  const ops: Op[] = [{ op: 'open', task: 't0', fd: 'q', dev: 0, via: 'path' }];
  // names are created once: one mapping name per pair
  for (let i = 0; i < pairs; i++) {
    const map = `m${i}`;
    ops.push({ op: 'mmap', task: 't0', map, fd: 'q', region: i % 2, pages: 1, prot: 'rw', shared: true });
    ops.push({ op: 'munmap', task: 't0', map, page: 0, pages: 1 });
  }
  return { format: PROGRAM_FORMAT, version: PROGRAM_VERSION, device: { devices: 1, mmio_pages: 2, dus_pages: 2, queue_limit: 4, sva: false, isolate_ops: 'none', isolate_state: false, ioctl: false, api: 'svadiff-test-v1', algorithms: ['copy'] }, ops };
}

/** 1000 mmap/munmap pairs: as one program (batch) vs one op per message (interactive). */
async function benchMmapPairs(g: Guest, pairs = 1000, reps = 3) {
  const progs: Program[] = [mmapMunmapProgram(pairs)];
  const nOps = progs.reduce((s, p) => s + p.ops.length, 0);
  const batch: number[] = [];
  const inter: number[] = [];
  let id = 100;
  for (let r = 0; r < reps; r++) {
    let t0 = performance.now();
    for (const p of progs) {
      const run = await g.session.runProgram(id++, p);
      if (run.results.some((x) => !x || x.ret < 0n)) throw new Error('mmap/munmap failed in the batch benchmark');
    }
    batch.push(nOps / ((performance.now() - t0) / 1000));
    t0 = performance.now();
    for (const p of progs) {
      const ip = await g.session.openInteractive(id++, p);
      for (let i = 0; i < p.ops.length; i++) {
        const x = await ip.runOp(i);
        if (x.ret < 0n) throw new Error('mmap/munmap failed in the interactive benchmark');
      }
      await ip.close();
    }
    inter.push(nOps / ((performance.now() - t0) / 1000));
  }
  return {
    what: `${pairs} mmap/munmap pairs in one program (${nOps} ops including open, device setup and teardown)`,
    batch_ops_per_s: round(median(batch), 0),
    interactive_ops_per_s: round(median(inter), 0),
    batch_over_interactive: round(median(batch) / median(inter)),
    runs: { batch: batch.map((x) => round(x, 0)), interactive: inter.map((x) => round(x, 0)) },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      kernel: { type: 'string' },
      kernels: { type: 'string' },
      'boot-kernels': { type: 'string' },
      programs: { type: 'string' },
      only: { type: 'string' },
      out: { type: 'string' },
      time: { type: 'string' },
      'sva-kernel': { type: 'string' },
    },
  });
  const only = values.only ? new Set(values.only.split(',')) : undefined;
  const want = (n: string) => !only || only.has(n);
  const spec = values.kernel ?? 'debian:6.12';
  const kernel = await fetchKernel(spec);
  const image = await prepareGuestImage(kernel);
  const logDir = join('bench-results', 'logs');
  await fs.mkdir(logDir, { recursive: true });
  const ctx: BenchContext = { kernel, image, logDir };
  const out = values.out ?? join('bench-results', `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  // written after every section: a long run that is stopped keeps what it measured
  const save = async () => {
    await fs.mkdir(join(out, '..'), { recursive: true });
    await fs.writeFile(out, JSON.stringify(results, null, 2) + '\n');
  };
  const results: Record<string, unknown> = {
    date: new Date().toISOString(),
    kernel: kernel.exactSpec,
    release: kernel.release,
    host: { cpus: (await import('node:os')).cpus().length, load_at_start: load() },
  };
  if (want('boot')) {
    info('bench: boot time (3 boots) …');
    results.boot = await benchBoot(ctx);
  }
  if (want('ping') || want('mmap')) {
    const g = await Guest.boot(kernel, image, { consolePath: join(logDir, 'bench.console.log') });
    results.accel = g.accel;
    try {
      if (want('ping')) {
        info('bench: agent round trip …');
        results.agent_round_trip = await benchPing(g);
      }
      if (want('mmap')) {
        info('bench: mmap/munmap pairs, batch vs interactive …');
        results.mmap_munmap = await benchMmapPairs(g);
      }
    } finally {
      await g.shutdown();
    }
  }
  if (want('sva')) {
    info(`bench: SVA work items vs the platform engine on ${values['sva-kernel'] ?? 'debian:7.2'} …`);
    results.sva = await (await import('./sva-bench.js')).benchSva(values['sva-kernel'] ?? 'debian:7.2', logDir);
  }
  if (want('fuzz')) {
    info('bench: fuzzing throughput …');
    results.fuzz = await benchFuzz(ctx);
  }
  if (want('throughput')) {
    const programs = Number(values.programs ?? 150);
    const list: Awaited<ReturnType<typeof benchThroughput>>[] = [];
    results.throughput = list;
    for (const spec of (values.kernels ?? 'debian:6.12,debian:6.1').split(',')) {
      list.push(await benchThroughput(await contextFor(spec, logDir), programs));
      await save();
    }
  }
  if (want('restore')) {
    const list = [];
    for (const spec of (values.kernels ?? 'debian:6.12,debian:6.1').split(',')) {
      info(`bench: report to next program on ${spec}: boot vs restore …`);
      list.push(await benchRestore(await contextFor(spec, logDir)));
      results.restore = list;
      await save();
    }
  }
  if (want('boots')) {
    const list = [];
    for (const spec of (values['boot-kernels'] ?? 'debian:6.1,debian:6.12,debian:7.2').split(',')) {
      info(`bench: boot time of ${spec} by firmware (3 boots each) …`);
      list.push(await benchBootFirmware(await contextFor(spec, logDir)));
      results.boots = list;
      await save();
    }
  }
  await save();
  const text = JSON.stringify(results, null, 2) + '\n';
  process.stdout.write(text);
  info(`bench: written to ${out}`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
