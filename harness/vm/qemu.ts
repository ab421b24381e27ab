/**
 * One QEMU process: started with an argument array, its serial console captured (control
 * sequences stripped, size bounded, saved to a file), its second serial port exposed as a unix
 * socket for the agent, its exit and kernel panics detected. This and the agent transport are
 * the only code that touches processes.
 */
import type { ResultPromise } from 'execa';
import { createWriteStream, type WriteStream } from 'node:fs';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import { basename, dirname, join } from 'node:path';
import { execaTiedToParent } from '../util/proc.js';
import { LineSplitter, stripControl } from '../util/sanitize.js';
import { machineQemuArgs, type Accel, type Machine } from './machine.js';

export interface QemuOptions {
  machine: Machine;
  accel: Accel;
  kernelImage: string;
  initrd: string;
  /** kernel command line entries (appended after the machine's) */
  cmdline: string[];
  memoryMb: number;
  /** directory for the sockets of this VM (keep it short: unix socket paths are limited) */
  workDir: string;
  /** where the console log goes (default: workDir/console.log) */
  consolePath?: string;
  /** extra QEMU arguments (devices) */
  extraArgs?: string[];
}

/** A QEMU command line twice: exactly as run, and as reports show it (files by name, no paths of this machine). */
export interface QemuCommand {
  /** program and arguments as run */
  argv: string[];
  kernelImage: string;
  initrd: string;
  /** the command line with the kernel image, initramfs and sockets as plain file names */
  portable: string;
  /** the names it gives the kernel image and the initramfs */
  kernelFile: string;
  initrdFile: string;
}

/** What reports call the initramfs instead of its path here. */
export const INITRD_FILE = 'initramfs.cpio';

export interface ExitInfo {
  code: number | undefined;
  signal: string | undefined;
  /** QEMU's own stderr (bounded) */
  stderr: string;
}

/** Bytes of console kept in memory (the file keeps up to CONSOLE_FILE_MAX). */
const CONSOLE_TAIL_LINES = 4000;
/** a boot's console is some hundreds of lines */
const TIMED_LINES = 2000;
const CONSOLE_FILE_MAX = 64 * 1024 * 1024;
const STDERR_MAX = 64 * 1024;

export class QemuVm {
  readonly args: string[];
  readonly consolePath: string;
  readonly agentSocketPath: string;
  readonly qmpSocketPath: string;
  private proc: ResultPromise | undefined;
  private consoleFile: WriteStream | undefined;
  private consoleBytes = 0;
  private readonly splitter = new LineSplitter(16 * 1024);
  /** recent console lines, oldest first */
  readonly consoleLines: string[] = [];
  /** index of the first line in consoleLines within the whole console */
  private consoleBase = 0;
  /** when each of the first TIMED_LINES console lines arrived, ms after startedAt (boot-time breakdowns) */
  readonly lineArrivalMs: number[] = [];
  private readonly lineListeners = new Set<(line: string, index: number) => void>();
  private stderr = '';
  private exitInfo: ExitInfo | undefined;
  readonly exited: Promise<ExitInfo>;
  private resolveExit!: (e: ExitInfo) => void;
  readonly startedAt = Date.now();

  constructor(private readonly opts: QemuOptions) {
    this.consolePath = opts.consolePath ?? join(opts.workDir, 'console.log');
    this.agentSocketPath = join(opts.workDir, 'agent.sock');
    this.qmpSocketPath = join(opts.workDir, 'qmp.sock');
    this.args = buildQemuArgs(opts, this.agentSocketPath, this.qmpSocketPath);
    this.exited = new Promise((r) => (this.resolveExit = r));
  }

  get binary(): string {
    return this.opts.machine.qemuBinary;
  }

  /** the directory of this VM's sockets */
  get workDir(): string {
    return this.opts.workDir;
  }

  /** The command line as a user on this machine could paste it. */
  commandLine(): string {
    return [this.binary, ...this.args].map(shellQuoteForDisplay).join(' ');
  }

  /**
   * The command as run and as a report shows it: the kernel image, the initramfs and the sockets
   * by file name (bzImage, initramfs.cpio, agent.sock, qmp.sock), so that no path of this
   * machine (its cache under the home directory, the sockets under the temporary one) is in it.
   */
  command(): QemuCommand {
    const kernelFile = this.opts.machine.kernelFile;
    const args = buildQemuArgs({ ...this.opts, kernelImage: kernelFile, initrd: INITRD_FILE }, 'agent.sock', 'qmp.sock');
    return {
      argv: [this.binary, ...this.args],
      kernelImage: this.opts.kernelImage,
      initrd: this.opts.initrd,
      // svadiff's own QEMU build lives in the cache: by name too (svadiff qemu build makes it)
      portable: [basename(this.binary), ...args].map(shellQuoteForDisplay).join(' '),
      kernelFile,
      initrdFile: INITRD_FILE,
    };
  }

  async start(): Promise<void> {
    await fs.mkdir(this.opts.workDir, { recursive: true });
    await fs.mkdir(dirname(this.consolePath), { recursive: true });
    for (const p of [this.agentSocketPath, this.qmpSocketPath]) await fs.rm(p, { force: true });
    this.consoleFile = createWriteStream(this.consolePath, { flags: 'w' });
    // QEMU dies with svadiff, however svadiff ends (util/proc.ts)
    const proc = execaTiedToParent(this.binary, this.args, {
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'pipe',
      reject: false,
      buffer: false,
      cleanup: true,
      encoding: 'utf8',
    });
    this.proc = proc;
    proc.stdout?.setEncoding('latin1');
    proc.stdout?.on('data', (chunk: string) => this.onConsole(chunk));
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (chunk: string) => {
      if (this.stderr.length < STDERR_MAX) this.stderr += chunk.slice(0, STDERR_MAX - this.stderr.length);
    });
    void proc.then((r) => {
      for (const line of this.splitter.flush()) this.addLine(line);
      this.consoleFile?.end();
      this.exitInfo = {
        code: typeof r.exitCode === 'number' ? r.exitCode : undefined,
        signal: r.signal ?? undefined,
        stderr: stripControl(this.stderr),
      };
      this.resolveExit(this.exitInfo);
    });
  }

  private onConsole(chunk: string): void {
    const clean = stripControl(chunk);
    if (this.consoleBytes < CONSOLE_FILE_MAX) {
      this.consoleFile?.write(clean);
      this.consoleBytes += clean.length;
    }
    for (const line of this.splitter.push(clean)) this.addLine(line);
  }

  private addLine(line: string): void {
    const index = this.consoleBase + this.consoleLines.length;
    if (index < TIMED_LINES) this.lineArrivalMs.push(Date.now() - this.startedAt);
    this.consoleLines.push(line);
    if (this.consoleLines.length > CONSOLE_TAIL_LINES) {
      this.consoleLines.splice(0, this.consoleLines.length - CONSOLE_TAIL_LINES);
      this.consoleBase = index + 1 - this.consoleLines.length;
    }
    for (const l of this.lineListeners) l(line, index);
  }

  /** Console lines with index ≥ from that are still in memory. */
  consoleSince(from: number): string[] {
    const start = Math.max(0, from - this.consoleBase);
    return this.consoleLines.slice(start);
  }

  /** Index the next console line will get. */
  get consoleLineCount(): number {
    return this.consoleBase + this.consoleLines.length;
  }

  onConsoleLine(fn: (line: string, index: number) => void): () => void {
    this.lineListeners.add(fn);
    return () => this.lineListeners.delete(fn);
  }

  get hasExited(): boolean {
    return this.exitInfo !== undefined;
  }

  get exitStatus(): ExitInfo | undefined {
    return this.exitInfo;
  }

  /** Connect to the agent's serial port; QEMU creates the socket shortly after it starts. */
  async connectAgent(timeoutMs = 10_000): Promise<net.Socket> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.hasExited) throw new Error('QEMU exited before its agent socket could be opened');
      try {
        return await connectUnix(this.agentSocketPath);
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await sleep(50);
      }
    }
  }

  /** Ask QEMU to quit through QMP; kill it if it does not. */
  async stop(graceMs = 3000): Promise<ExitInfo> {
    if (this.exitInfo) return this.exitInfo;
    try {
      await qmpCommand(this.qmpSocketPath, 'quit', 2000);
    } catch {
      /* fall through to kill */
    }
    const done = await Promise.race([this.exited, sleep(graceMs).then(() => undefined)]);
    if (done) return done;
    return this.kill();
  }

  async kill(): Promise<ExitInfo> {
    if (this.exitInfo) return this.exitInfo;
    this.proc?.kill('SIGKILL');
    return this.exited;
  }
}

export function buildQemuArgs(o: QemuOptions, agentSock: string, qmpSock: string): string[] {
  const m = o.machine;
  const cmdline = [`console=${m.consoleTty}`, ...m.cmdline, ...o.cmdline];
  return [
    ...m.firmwareDirs.flatMap((d) => ['-L', d]),
    ...machineQemuArgs(m, o.accel),
    '-accel',
    o.accel,
    '-cpu',
    m.cpu(o.accel),
    '-m',
    String(o.memoryMb),
    '-smp',
    '1',
    '-nodefaults',
    '-display',
    'none',
    '-no-reboot',
    // first serial port: the kernel console, on QEMU's stdout
    '-chardev',
    'stdio,id=con,signal=off',
    '-serial',
    'chardev:con',
    // the agent channel: a second serial port, or what the machine has instead
    '-chardev',
    `socket,id=agent,path=${agentSock},server=on,wait=off`,
    ...(m.agentChannelArgs ? m.agentChannelArgs('agent') : ['-serial', 'chardev:agent']),
    '-qmp',
    `unix:${qmpSock},server=on,wait=off`,
    '-kernel',
    o.kernelImage,
    '-initrd',
    o.initrd,
    '-append',
    cmdline.join(' '),
    ...(o.extraArgs ?? []),
  ];
}

export function connectUnix(path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.createConnection({ path });
    const onErr = (e: Error) => {
      s.destroy();
      reject(e);
    };
    s.once('error', onErr);
    s.once('connect', () => {
      s.off('error', onErr);
      resolve(s);
    });
  });
}

/** A QMP connection for several commands with arguments (capabilities negotiated on connect). */
export interface QmpClient {
  /** the command's return value; rejects with QEMU's error */
  run(command: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<unknown>;
  close(): void;
}

export async function qmpConnect(path: string, timeoutMs = 5000): Promise<QmpClient> {
  const sock = await connectUnix(path);
  const split = new LineSplitter(1 << 20);
  const pending: { resolve: (v: unknown) => void; reject: (e: Error) => void }[] = [];
  let greeted: () => void = () => undefined;
  const greeting = new Promise<void>((r) => (greeted = r));
  const fail = (e: Error) => {
    for (const w of pending.splice(0)) w.reject(e);
  };
  sock.setEncoding('utf8');
  sock.on('data', (chunk: string) => {
    for (const line of split.push(chunk)) {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if ('QMP' in msg) greeted();
      else if ('return' in msg) pending.shift()?.resolve(msg.return);
      else if ('error' in msg) pending.shift()?.reject(new Error(JSON.stringify(msg.error)));
    }
  });
  sock.on('close', () => fail(new Error('QMP connection closed')));
  sock.on('error', (e) => fail(e));
  const run = (command: string, args?: Record<string, unknown>, ms = timeoutMs) =>
    new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`QMP ${command}: no answer in ${ms} ms`)), ms);
      pending.push({
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(new Error(`QMP ${command}: ${e.message}`));
        },
      });
      sock.write(JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) }) + '\n');
    });
  try {
    await Promise.race([greeting, sleep(timeoutMs).then(() => Promise.reject(new Error('QMP: no greeting')))]);
    await run('qmp_capabilities');
  } catch (e) {
    sock.destroy();
    throw e;
  }
  return { run, close: () => sock.destroy() };
}

/** One QMP command on a fresh connection; `quit` may close it before it answers. */
export async function qmpCommand(path: string, command: string, timeoutMs: number): Promise<unknown> {
  const q = await qmpConnect(path, timeoutMs);
  try {
    return await q.run(command, undefined, timeoutMs);
  } catch (e) {
    if (command === 'quit' && /connection closed/.test((e as Error).message)) return undefined;
    throw e;
  } finally {
    q.close();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function shellQuoteForDisplay(s: string): string {
  return /^[A-Za-z0-9_./:=,+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
