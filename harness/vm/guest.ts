/**
 * A booted guest: QEMU running a fetched kernel with the svadiff initramfs, and an agent
 * session on its second serial port. Boot failures (panic, QEMU exit, timeout) become errors
 * that name the saved console log.
 */
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildAgent } from '../../guest/build.js';
import { buildInitramfs, writeCpio } from '../../guest/initramfs.js';
import type { KernelArtifacts } from '../../kernels/types.js';
import { AgentClosedError, AgentSession } from '../agent/session.js';
import type { KmsgRecord } from '../oracle/report.js';
import { UserError } from '../util/errors.js';
import { atomicWrite, exists, sha256 } from '../util/fsx.js';
import { ensureHostTools, which } from '../util/host.js';
import { cacheDir } from '../util/paths.js';
import { chooseAccel, PROBE_MARKER, probeKvmBoot, type AccelChoice } from './accel.js';
import { FIRMWARE_DIRS, ensureSvaQemu } from '../../qemu/index.js';
import { machineFor, type Accel, type Machine, type MachineProfile } from './machine.js';
import { QemuVm, sleep, type ExitInfo, type QemuOptions } from './qemu.js';
import { incomingArgs, restoreSnapshot, saveSnapshot, snapshotFile } from './snapshot.js';
import { fmtBytes, info, warn } from '../util/log.js';
import { safeLine } from '../util/sanitize.js';

/**
 * Kernel command line entries that turn on the debugging a kernel was built with, as a table:
 * an entry applies when the kernel's config has its option set to y.
 */
const DEBUG_CMDLINE: { config: string; arg: string; why: string }[] = [
  // Debian builds SLUB_DEBUG but leaves it off at run time: F sanity checks, Z red zones,
  // P poisoning, U owner tracking. Catches double frees and overruns as "BUG kmalloc-…" reports.
  { config: 'CONFIG_SLUB_DEBUG', arg: 'slub_debug=FZPU', why: 'slab checks' },
  // KFENCE is built (6.12, 7.2) with CONFIG_KFENCE_SAMPLE_INTERVAL=0, i.e. off: sample every 10 ms.
  { config: 'CONFIG_KFENCE', arg: 'kfence.sample_interval=10', why: 'sampled use-after-free detection' },
  // A task stuck in D state is reported after 15 s instead of 120 s, within the time the
  // harness waits after an op misses its deadline (harness/run/execute.ts).
  { config: 'CONFIG_DETECT_HUNG_TASK', arg: 'sysctl.kernel.hung_task_timeout_secs=15', why: 'hung task reports' },
];

/** Always: a panic stops the guest at once (QEMU runs with -no-reboot, so it exits). */
const BASE_CMDLINE = ['panic=-1', 'printk.time=1'];

export async function kernelCmdline(kernel: KernelArtifacts): Promise<string[]> {
  const config = await fs.readFile(kernel.config, 'utf8');
  const set = (opt: string) => new RegExp(`^${opt}=y$`, 'm').test(config);
  return [...BASE_CMDLINE, ...DEBUG_CMDLINE.filter((d) => set(d.config)).map((d) => d.arg)];
}

export interface GuestOptions {
  accel?: AccelChoice;
  /** machine profile name, or a profile outside MACHINES (the bench's; default: the architecture's plain machine) */
  machine?: string | MachineProfile;
  memoryMb?: number;
  /** where to save the console log (a new file per boot) */
  consolePath?: string;
  /** how long QEMU start → agent hello may take (default 180 s: TCG on a busy 2-core host) */
  bootTimeoutMs?: number;
  onKmsg?: (r: KmsgRecord) => void;
  /** agent silence limit while the host waits for it */
  silenceMs?: number;
  /**
   * restore the guest from its VM snapshot (harness/vm/snapshot.ts) when there is one, and save
   * one after a boot when there is none
   */
  snapshot?: boolean;
  /** where snapshots are kept (default: the cache's snapshots/) */
  snapshotDir?: string;
}

/** snapshot files this process said it has none of yet */
const announced = new Set<string>();

export interface GuestImage {
  initrd: string;
  agent: string;
}

/** Build (or reuse) the agent and the initramfs for a kernel. */
export async function prepareGuestImage(kernel: KernelArtifacts): Promise<GuestImage> {
  const agent = await buildAgent(kernel.arch);
  const initrd = await buildInitramfs({ kernel, agent });
  return { initrd, agent };
}

/** A tiny initramfs whose /init prints the probe marker and powers off (busybox only). */
async function probeInitrd(): Promise<string> {
  await ensureHostTools([{ cmd: 'busybox', pkg: 'busybox-static', why: 'the guest initramfs' }]);
  const busybox = await fs.readFile(which('busybox')!);
  const init = `#!/bin/busybox sh\n/bin/busybox echo ${PROBE_MARKER}\n/bin/busybox poweroff -f\n`;
  const out = join(cacheDir(), 'initramfs', `probe-${sha256(busybox).slice(0, 16)}.cpio`);
  if (!(await exists(out))) {
    await atomicWrite(
      out,
      writeCpio([
        { kind: 'dir', path: 'bin' },
        { kind: 'file', path: 'bin/busybox', data: busybox, mode: 0o755 },
        { kind: 'file', path: 'init', data: Buffer.from(init), mode: 0o755 },
        { kind: 'dir', path: 'dev' },
        { kind: 'chardev', path: 'dev/console', major: 5, minor: 1 },
      ]),
    );
  }
  return out;
}

export async function resolveAccel(kernel: KernelArtifacts, machine: Machine, choice: AccelChoice): Promise<Accel> {
  return chooseAccel(choice, machine, async () => probeKvmBoot(machine, kernel.image, await probeInitrd()));
}

/**
 * The machine with its QEMU there: the host package installed (or the command to install it),
 * or svadiff's QEMU build, made on first use (qemu/build.ts; minutes, then cached).
 */
export async function ensureMachine(p: MachineProfile): Promise<Machine> {
  if (p.qemu.kind === 'host') {
    await ensureHostTools([{ cmd: p.qemu.binary, pkg: p.qemu.package, why: 'running guests' }]);
    return { ...p, qemuBinary: p.qemu.binary, firmwareDirs: [] };
  }
  const build = await ensureSvaQemu();
  return { ...p, qemuBinary: build.binary, firmwareDirs: FIRMWARE_DIRS };
}

/** A guest that did not come up. Shown as one line (like a UserError) naming its console log. */
export class GuestBootError extends UserError {
  constructor(
    message: string,
    readonly consolePath: string,
    readonly kind: 'panic' | 'exit' | 'timeout',
  ) {
    super(message, 3);
    this.name = 'GuestBootError';
  }
}

export class Guest {
  private constructor(
    readonly kernel: KernelArtifacts,
    readonly vm: QemuVm,
    readonly session: AgentSession,
    readonly accel: Accel,
    readonly machine: MachineProfile,
    /** QEMU start to agent hello */
    readonly bootMs: number,
    private readonly workDir: string,
    /** the kernel log up to the agent's start (the boot and the modules it loads): no program's */
    readonly bootKmsg: readonly KmsgRecord[],
    /** restored from a VM snapshot (bootMs is then the restore's time; bootKmsg is empty) */
    readonly restored = false,
  ) {}

  static async boot(kernel: KernelArtifacts, image: GuestImage, opts: GuestOptions = {}): Promise<Guest> {
    const machine = await ensureMachine(typeof opts.machine === 'object' ? opts.machine : machineFor(kernel.arch, opts.machine));
    const accel = await resolveAccel(kernel, machine, opts.accel ?? 'auto');
    const cmdline = await kernelCmdline(kernel);
    const vmOptions = async (extraArgs: string[] = []): Promise<QemuOptions> => ({
      machine,
      accel,
      kernelImage: kernel.image,
      initrd: image.initrd,
      cmdline,
      memoryMb: opts.memoryMb ?? 1024,
      workDir: await fs.mkdtemp(join(tmpdir(), 'svadiff-vm-')),
      ...(opts.consolePath !== undefined ? { consolePath: opts.consolePath } : {}),
      ...(extraArgs.length > 0 ? { extraArgs } : {}),
    });
    let snapshot: string | undefined;
    if (opts.snapshot) {
      const plain = await vmOptions();
      await fs.rm(plain.workDir, { recursive: true, force: true });
      snapshot = await snapshotFile(new QemuVm(plain), opts.snapshotDir);
      if (await exists(snapshot)) {
        const o = await vmOptions();
        const sock = join(o.workDir, 'in.sock');
        const vm = new QemuVm({ ...o, extraArgs: incomingArgs(sock) });
        try {
          await vm.start();
          await restoreSnapshot(vm, sock, snapshot);
          return await Guest.attach(kernel, vm, accel, machine, opts, true);
        } catch (e) {
          await vm.kill();
          await fs.rm(o.workDir, { recursive: true, force: true });
          // one line; the snapshot goes (the next boot saves a new one)
          warn(`the VM snapshot did not restore (${safeLine((e as Error).message, 200)}); booting instead`);
          await fs.rm(snapshot, { force: true });
        }
      } else if (!announced.has(snapshot)) {
        announced.add(snapshot);
        info('no VM snapshot of this guest yet (kernel, initramfs, machine, QEMU): booting, then saving one for the next guests');
      }
    }
    const vm = new QemuVm(await vmOptions());
    await vm.start();
    const guest = await Guest.attach(kernel, vm, accel, machine, opts, false);
    if (snapshot !== undefined && !(await exists(snapshot))) {
      const t0 = Date.now();
      try {
        const bytes = await saveSnapshot(vm, snapshot);
        info(`saved a VM snapshot of the ready guest (${fmtBytes(bytes)} in ${((Date.now() - t0) / 1000).toFixed(1)} s): the next guests restore it`);
      } catch (e) {
        warn(`no VM snapshot saved (${safeLine((e as Error).message, 200)}); the next guests boot too`);
      }
    }
    return guest;
  }

  /** The agent of a started (booting or restored) QEMU: hello, the boot's kernel log drained. */
  private static async attach(kernel: KernelArtifacts, vm: QemuVm, accel: Accel, machine: MachineProfile, opts: GuestOptions, restored: boolean): Promise<Guest> {
    const workDir = vm.workDir;
    let session: AgentSession | undefined;
    const bootKmsg: KmsgRecord[] = [];
    let booting = true;
    try {
      const sock = await vm.connectAgent();
      session = new AgentSession(sock, {
        onKmsg: (r) => {
          if (booting && bootKmsg.length < 5000) bootKmsg.push(r);
          opts.onKmsg?.(r);
        },
        ...(opts.silenceMs !== undefined ? { silenceMs: opts.silenceMs } : {}),
      });
      const timeout = opts.bootTimeoutMs ?? 180_000;
      const hello = session.waitHello(timeout);
      const exit = vm.exited.then((e) => e);
      const first = await Promise.race([hello.then((h) => ({ h })), exit.then((e) => ({ e }))]);
      if ('e' in first) throw bootFailure(vm, first.e);
      const bootMs = Date.now() - vm.startedAt;
      // The agent forwards the kernel log as it drains it, and the boot's records (hundreds) can
      // still be on their way when the first program starts: they would become that program's
      // (an RCU stall of a starved boot turned into a finding of program 1). The agent drains
      // the log before it answers a ping (guest/agent/channel.h), so after one the boot's
      // records are all here, apart from any program.
      await session.ping();
      booting = false;
      return new Guest(kernel, vm, session, accel, machine, bootMs, workDir, bootKmsg, restored);
    } catch (e) {
      session?.dispose();
      // the channel breaks when QEMU goes away (a panic while booting, most likely): give its
      // exit a moment to be seen before deciding what happened
      const exitedByItself = vm.hasExited || (e instanceof AgentClosedError && (await Promise.race([vm.exited.then(() => true), sleep(2000).then(() => false)])));
      const exitInfo = await vm.kill();
      await fs.rm(workDir, { recursive: true, force: true });
      if (e instanceof GuestBootError) throw e;
      if (exitedByItself) throw bootFailure(vm, exitInfo);
      const msg = (e as Error).message;
      if (/silent|hello|timed? ?out/i.test(msg)) {
        throw new GuestBootError(
          `the guest did not reach its agent within ${Math.round((opts.bootTimeoutMs ?? 180_000) / 1000)} s; console log: ${vm.consolePath}`,
          vm.consolePath,
          'timeout',
        );
      }
      throw e;
    }
  }

  /** Kernel log lines of the console since line `from` (still in memory). */
  consoleSince(from: number): string[] {
    return this.vm.consoleSince(from);
  }

  get alive(): boolean {
    return !this.vm.hasExited;
  }

  /** Shut QEMU down (the initramfs has nothing to flush) and clean up the sockets. */
  async shutdown(): Promise<ExitInfo> {
    this.session.dispose();
    const r = await this.vm.stop();
    await fs.rm(this.workDir, { recursive: true, force: true });
    return r;
  }

  async kill(): Promise<ExitInfo> {
    this.session.dispose();
    const r = await this.vm.kill();
    await fs.rm(this.workDir, { recursive: true, force: true });
    return r;
  }

  /** Read a guest file through the agent (between programs). */
  async readFile(path: string): Promise<string | undefined> {
    const r = await this.session.readFile(path);
    return r.errno === 0 ? r.content : undefined;
  }
}

function bootFailure(vm: QemuVm, e: ExitInfo): GuestBootError {
  const panic = vm.consoleLines.find((l) => /Kernel panic - not syncing/.test(l));
  if (panic) {
    return new GuestBootError(
      `the guest kernel panicked while booting (${panic.replace(/^\[[^\]]*\]\s*/, '').trim()}); console log: ${vm.consolePath}`,
      vm.consolePath,
      'panic',
    );
  }
  const why = e.stderr.trim().split('\n').slice(-2).join(' | ') || `exit code ${e.code ?? e.signal}`;
  return new GuestBootError(`QEMU exited before the guest agent started (${why}); console log: ${vm.consolePath}`, vm.consolePath, 'exit');
}

export { sleep };
