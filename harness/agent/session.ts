/**
 * The host side of the agent protocol (docs/agent-protocol.md) over one line channel: a Duplex
 * stream, e.g. a net.Socket connected to QEMU's unix socket for the guest's second serial port.
 *
 * Everything that comes from the guest is untrusted: lines are bounded (LineSplitter), parsed
 * defensively (wire.parseAgentLine), kernel log text is stripped of control sequences, and the
 * volume kept per program is capped. A watchdog turns an agent that stops talking while the host
 * waits for it into an AgentTimeoutError, which the VM layer reports as a hang.
 */
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import type { DeviceParams, Program } from '../program/types.js';
import { LineSplitter, stripControl, unescapeKmsg } from '../util/sanitize.js';
import type { RawResult } from './observe.js';
import {
  MAX_LINE,
  PROTO_VERSION,
  encodeDevice,
  encodeExec,
  encodeOp,
  encodeProgram,
  hexEncode,
  parseAgentLine,
  slotTable,
  type AgentMsg,
  type DeviceSetup,
  type SlotTable,
} from './wire.js';

export type { RawResult } from './observe.js';
import type { KmsgRecord } from '../oracle/report.js';

/** An endpoint not given back at a program's end (L line). */
export interface EndpointLeft {
  address: string;
  what: 'unbind' | 'bind';
  errno: number;
}

export interface TaskEnd {
  task: number;
  how: 'signal' | 'status';
  value: number;
  /** index of the last op whose result had arrived before this line (-1: none) */
  afterOp: number;
}

export interface ProgramRun {
  progId: number;
  /** the agent set the device up (S line) */
  started: boolean;
  /** one entry per op of the program, undefined for ops without a result */
  results: (RawResult | undefined)[];
  taskEnds: TaskEnd[];
  /** an op missed its deadline (T line): the guest is to be treated as hung */
  timeout?: { idx: number; ms: number };
  /** the F line: status 0 clean, 1 setup or teardown failed (reboot the guest) */
  finished?: { status: number; msg: string };
  /** kernel log records that arrived while the program ran (capped, see kmsgDropped) */
  kmsg: KmsgRecord[];
  /**
   * for each record of `kmsg`: the op it was logged during (the agent drains the log before
   * every result, so that is the op after the last result received); -1 before the ops started
   */
  kmsgOp: number[];
  kmsgDropped: number;
  /** E lines of the agent while the program ran */
  errors: string[];
  /** endpoints the agent could not give back at the program's end (L lines; harness/leaks) */
  endpointsLeft: EndpointLeft[];
  /** lines that did not parse, or named another program */
  garbage: number;
  elapsedMs: number;
}

/** The agent said nothing for too long while the host waited for it. */
export class AgentTimeoutError extends Error {
  constructor(
    /** what the host was waiting for */
    readonly waitingFor: string,
    readonly silentMs: number,
  ) {
    super(`guest agent silent for ${silentMs} ms while waiting for ${waitingFor}`);
    this.name = 'AgentTimeoutError';
  }
}

/** The channel closed or failed (the VM is gone). */
export class AgentClosedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AgentClosedError';
  }
}

/** The agent rejected what the host sent (a bug on the host side), or spoke another protocol. */
export class AgentProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AgentProtocolError';
  }
}

/** The guest could not set a program's device up (F status 1 without S: insmod failed, no nodes). */
export class AgentSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AgentSetupError';
  }
}

/** An interactive op missed its deadline in the guest (T line): a hang. */
export class AgentOpDeadlineError extends Error {
  constructor(
    readonly idx: number,
    readonly ms: number,
  ) {
    super(`op ${idx} did not finish within ${ms} ms in the guest`);
    this.name = 'AgentOpDeadlineError';
  }
}

export interface SessionOptions {
  /** called for every kernel log record, in order, each sequence number once */
  onKmsg?: (r: KmsgRecord) => void;
  /**
   * How long the agent may stay silent (apart from kernel log lines) while the host waits for
   * it. Must exceed the agent's own longest step (module load: 30 s) to tell a slow guest from a
   * hung one. Default 60 s.
   */
  silenceMs?: number;
  /** kernel log records kept per program (default 5000) */
  kmsgMaxRecords?: number;
  /** bytes of kernel log text kept per program (default 2 MiB) */
  kmsgMaxBytes?: number;
}

export interface RunOptions {
  /** overrides SessionOptions.silenceMs for this program */
  deadlineMs?: number;
  /** how the agent gives the program a fresh test device (default reload) */
  setup?: DeviceSetup;
  /** kernel log records of this program, in order (also the ones over the kept cap) */
  onKmsg?: (r: KmsgRecord) => void;
}

/** How an executable run in the guest (U) went. */
export interface ExecutableRun {
  progId: number;
  /** the agent set the device up (S) and started the executable */
  started: boolean;
  /** its exit status; undefined when it did not exit (killed by a signal, or stuck) */
  exitCode?: number;
  /** the signal that killed it (0: none) */
  signal: number;
  /** the agent killed it at its timeout */
  timedOut: boolean;
  /** what it wrote to stdout and stderr, control sequences removed, bounded */
  output: string;
  /** output bytes dropped (over the agent's or the host's cap) */
  outputDropped: number;
  /** the F line: status 0 clean, 1 setup or teardown failed (reboot the guest) */
  finished?: { status: number; msg: string };
  /** endpoints the agent could not give back after it (L lines) */
  endpointsLeft: EndpointLeft[];
  /** kernel log records that arrived while it ran, module load and unload included (capped) */
  kmsg: KmsgRecord[];
  kmsgDropped: number;
  errors: string[];
  garbage: number;
  elapsedMs: number;
}

/** Output of one executable the host keeps (the agent relays at most 256 KiB). */
const MAX_EXEC_OUTPUT = 1024 * 1024;
/** Silence allowed after an executable's timeout: kill, module unload, F. */
const EXEC_TEARDOWN_MS = 60_000;

export interface InteractiveProgram {
  readonly run: ProgramRun;
  /** Send op idx of the program and wait for its result. */
  runOp(idx: number): Promise<RawResult>;
  /** End the program (Z) and wait for F. */
  close(): Promise<ProgramRun>;
}

interface Waiter {
  what: string;
  silenceMs: number;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

interface ActiveProgram {
  run: ProgramRun;
  t0: number;
  kmsgBytes: number;
  lastResult: number;
  onKmsg?: (r: KmsgRecord) => void;
  /** batch: resolve on F; interactive: see below */
  onStarted?: () => void;
  onFinished?: () => void;
  /** interactive: the op waiting for its R */
  pendingOp?: { idx: number; resolve: (r: RawResult) => void; reject: (e: Error) => void };
  /** executable (U): its output so far and how it ended */
  exec?: { chunks: string[]; bytes: number; dropped: number; end?: Extract<AgentMsg, { t: 'exec-end' }> };
}

const MAX_ERRORS_KEPT = 100;

export class AgentSession {
  /** the agent's hello, once seen */
  hello?: { proto: number; release: string };
  /** lines that did not parse (all of the session) */
  garbage = 0;
  /** E lines outside programs (e.g. a boot module that did not load), the last 100 */
  readonly agentErrors: string[] = [];

  private readonly splitter = new LineSplitter(MAX_LINE + 64);
  private readonly opts: Required<Omit<SessionOptions, 'onKmsg'>> & Pick<SessionOptions, 'onKmsg'>;
  private lastKmsgSeq = -1;
  private lastHeard = performance.now();
  private broken?: Error;
  private readonly waiters = new Set<Waiter>();
  private helloWaiters: ((h: { proto: number; release: string }) => void)[] = [];
  private readonly pings = new Map<string, { t0: number; resolve: (ms: number) => void }>();
  private readonly files = new Map<string, (r: { errno: number; content: string }) => void>();
  private nonce = 0;
  private program?: ActiveProgram;
  private watchdog?: NodeJS.Timeout;

  constructor(
    private readonly channel: Duplex,
    options: SessionOptions = {},
  ) {
    this.opts = {
      silenceMs: options.silenceMs ?? 60_000,
      kmsgMaxRecords: options.kmsgMaxRecords ?? 5000,
      kmsgMaxBytes: options.kmsgMaxBytes ?? 2 * 1024 * 1024,
      onKmsg: options.onKmsg,
    };
    channel.on('data', (chunk: Buffer | string) => {
      const text = typeof chunk === 'string' ? chunk : chunk.toString('latin1');
      for (const line of this.splitter.push(text)) this.onLine(line);
    });
    channel.on('error', (e: Error) => this.fail(new AgentClosedError(`agent channel failed: ${e.message}`)));
    channel.on('close', () => this.fail(new AgentClosedError('agent channel closed')));
    channel.on('end', () => this.fail(new AgentClosedError('agent channel closed by the guest')));
  }

  /** Milliseconds since the agent last said something other than a kernel log line. */
  get silentMs(): number {
    return performance.now() - this.lastHeard;
  }

  /** Stop watching; the channel is left to its owner. */
  dispose(): void {
    this.fail(new AgentClosedError('agent session disposed'));
  }

  // -------------------------------------------------------------------------------------------
  // public operations

  /** Wait for the agent's hello, asking for it again every second (V). */
  async waitHello(timeoutMs: number): Promise<{ proto: number; release: string }> {
    this.check();
    const h = this.hello ?? (await this.helloArrival(timeoutMs));
    if (h.proto !== PROTO_VERSION) {
      throw new AgentProtocolError(`the guest agent speaks protocol ${h.proto}, this svadiff ${PROTO_VERSION}; rebuild the initramfs`);
    }
    return h;
  }

  private async helloArrival(timeoutMs: number): Promise<{ proto: number; release: string }> {
    const p = new Promise<{ proto: number; release: string }>((resolve, reject) => {
      const w: Waiter = { what: 'the agent hello', silenceMs: timeoutMs, resolve: resolve as (v: unknown) => void, reject };
      this.lastHeard = performance.now();
      this.addWaiter(w);
      this.helloWaiters.push((h) => {
        this.removeWaiter(w);
        resolve(h);
      });
    });
    // the agent's own hello may have gone out before anyone listened
    const again = setInterval(() => this.send(['V']), 1000);
    try {
      this.send(['V']);
      return await p;
    } finally {
      clearInterval(again);
    }
  }

  /** One round trip through the agent; resolves with its duration in ms. */
  async ping(): Promise<number> {
    this.check();
    const nonce = `p${++this.nonce}`;
    return this.wait<number>(`the answer to ping ${nonce}`, this.opts.silenceMs, (resolve, _reject, w) => {
      this.pings.set(nonce, {
        t0: performance.now(),
        resolve: (ms) => {
          this.removeWaiter(w);
          resolve(ms);
        },
      });
      this.send([`Q ${nonce}`]);
    });
  }

  /** Read the first bytes of a guest file (between programs only). */
  async readFile(path: string): Promise<{ errno: number; content: string }> {
    this.check();
    if (this.program) throw new Error('readFile: the agent reads files only between programs');
    if (path.length === 0 || path.length > 1024 || path.includes('\0')) throw new Error(`readFile: bad path ${JSON.stringify(path)}`);
    const nonce = `c${++this.nonce}`;
    return this.wait(`the content of ${path}`, this.opts.silenceMs, (resolve, _reject, w) => {
      this.files.set(nonce, (r) => {
        this.removeWaiter(w);
        resolve(r);
      });
      this.send([`C ${nonce} ${hexEncode(path)}`]);
    });
  }

  /** Run a whole program in batch mode and wait until it is over (F). */
  async runProgram(progId: number, program: Program, options: RunOptions = {}): Promise<ProgramRun> {
    this.check();
    if (this.program) throw new Error(`runProgram(${progId}): program ${this.program.run.progId} is still active`);
    const lines = encodeProgram(progId, program, options.setup);
    const active = this.startProgram(progId, program.ops.length, options);
    try {
      await this.wait(`the end of program ${progId}`, options.deadlineMs ?? this.opts.silenceMs, (resolve) => {
        active.onFinished = () => resolve(undefined);
        this.send(lines);
      });
    } finally {
      this.endProgram(active);
    }
    return this.finishRun(active);
  }

  /**
   * Run an executable that is already in the guest (e.g. a reproducer from the initramfs)
   * while the test device is set up with `device`: the agent loads the module as for a
   * program, runs the file, kills it after timeoutMs, kills what it left, unloads the module.
   * Resolves when the agent says the program is over (F). Throws AgentSetupError if the device
   * could not be set up, AgentProtocolError if the agent rejected the request.
   */
  async runExecutable(progId: number, device: DeviceParams, path: string, timeoutMs: number, options: RunOptions = {}): Promise<ExecutableRun> {
    this.check();
    if (this.program) throw new Error(`runExecutable(${progId}): program ${this.program.run.progId} is still active`);
    const lines = encodeExec(progId, device, path, timeoutMs);
    const active = this.startProgram(progId, 0, options);
    active.exec = { chunks: [], bytes: 0, dropped: 0 };
    // the executable may be silent for its whole run: the agent says nothing until W
    const silence = options.deadlineMs ?? Math.max(this.opts.silenceMs, timeoutMs + EXEC_TEARDOWN_MS);
    try {
      await this.wait(`the end of executable ${path} (program ${progId})`, silence, (resolve) => {
        active.onFinished = () => resolve(undefined);
        this.send(lines);
      });
    } finally {
      this.endProgram(active);
    }
    const run = this.finishRun(active);
    if (!run.started) {
      throw new AgentSetupError(`program ${progId} was not set up: ${run.finished ? `status ${run.finished.status}: ${run.finished.msg}` : 'no answer'}`);
    }
    const ex = active.exec;
    const end = ex.end;
    const out: ExecutableRun = {
      progId,
      started: run.started,
      signal: end?.signal ?? 0,
      timedOut: end?.timedOut ?? false,
      output: stripControl(ex.chunks.join('')),
      outputDropped: ex.dropped + (end?.dropped ?? 0),
      endpointsLeft: run.endpointsLeft,
      kmsg: run.kmsg,
      kmsgDropped: run.kmsgDropped,
      errors: run.errors,
      garbage: run.garbage,
      elapsedMs: run.elapsedMs,
    };
    if (end && end.exit >= 0) out.exitCode = end.exit;
    if (run.finished) out.finished = run.finished;
    return out;
  }

  /** Set up a program in interactive mode: each op is sent and answered on its own. */
  async openInteractive(progId: number, program: Program, options: RunOptions = {}): Promise<InteractiveProgram> {
    this.check();
    if (this.program) throw new Error(`openInteractive(${progId}): program ${this.program.run.progId} is still active`);
    const slots: SlotTable = slotTable(program);
    const active = this.startProgram(progId, program.ops.length, options);
    const silence = options.deadlineMs ?? this.opts.silenceMs;
    try {
      await this.wait(`the setup of program ${progId}`, silence, (resolve) => {
        active.onStarted = () => resolve(undefined);
        active.onFinished = () => resolve(undefined);
        this.send([encodeDevice(progId, program.device), `I ${progId} ${slots.tasks.size}`]);
      });
    } catch (e) {
      this.endProgram(active);
      throw e;
    }
    if (!active.run.started) {
      // F without S: the device could not be set up (finishRun throws if the agent rejected it)
      this.endProgram(active);
      this.finishRun(active);
      const f = active.run.finished;
      throw new AgentSetupError(`program ${progId} was not set up: ${f ? `status ${f.status}: ${f.msg}` : 'no answer'}`);
    }
    let closed: Promise<ProgramRun> | undefined;
    const session = this;
    return {
      run: active.run,
      runOp(idx: number): Promise<RawResult> {
        session.check();
        const op = program.ops[idx];
        if (op === undefined) return Promise.reject(new Error(`runOp(${idx}): the program has ${program.ops.length} ops`));
        if (session.program !== active) return Promise.reject(new Error(`runOp(${idx}): program ${progId} is over`));
        if (active.pendingOp) return Promise.reject(new Error(`runOp(${idx}): op ${active.pendingOp.idx} is still running`));
        const line = encodeOp(idx, op, slots);
        return session.wait<RawResult>(`the result of op ${idx}`, silence, (resolve, reject, w) => {
          active.pendingOp = {
            idx,
            resolve: (r) => {
              session.removeWaiter(w);
              resolve(r);
            },
            reject: (e) => {
              session.removeWaiter(w);
              reject(e);
            },
          };
          session.send([line]);
        });
      },
      close(): Promise<ProgramRun> {
        if (closed) return closed;
        closed = (async () => {
          try {
            if (session.program === active && active.run.finished === undefined) {
              session.check();
              await session.wait(`the end of program ${progId}`, silence, (resolve) => {
                active.onFinished = () => resolve(undefined);
                // after T the agent ends the program by itself
                if (active.run.timeout === undefined) session.send([`Z ${progId}`]);
              });
            }
          } finally {
            session.endProgram(active);
          }
          return session.finishRun(active);
        })();
        return closed;
      },
    };
  }

  // -------------------------------------------------------------------------------------------
  // internals

  private startProgram(progId: number, nops: number, options: RunOptions): ActiveProgram {
    const active: ActiveProgram = {
      run: {
        progId,
        started: false,
        results: new Array<RawResult | undefined>(nops).fill(undefined),
        taskEnds: [],
        kmsg: [],
        kmsgOp: [],
        kmsgDropped: 0,
        errors: [],
        endpointsLeft: [],
        garbage: 0,
        elapsedMs: 0,
      },
      t0: performance.now(),
      kmsgBytes: 0,
      lastResult: -1,
      onKmsg: options.onKmsg,
    };
    this.program = active;
    return active;
  }

  private endProgram(active: ActiveProgram): void {
    if (this.program === active) this.program = undefined;
    if (active.pendingOp) {
      active.pendingOp.reject(new Error(`program ${active.run.progId} ended`));
      active.pendingOp = undefined;
    }
  }

  private finishRun(active: ActiveProgram): ProgramRun {
    active.run.elapsedMs = performance.now() - active.t0;
    const f = active.run.finished;
    if (f && f.status === 2) throw new AgentProtocolError(`the agent rejected program ${active.run.progId}: ${f.msg}`);
    return active.run;
  }

  private check(): void {
    if (this.broken) throw this.broken;
  }

  private send(lines: string[]): void {
    if (lines.length === 0) return;
    this.channel.write(lines.join('\n') + '\n');
  }

  /** A promise that the watchdog rejects if the agent stays silent for silenceMs. */
  private wait<T>(
    what: string,
    silenceMs: number,
    start: (resolve: (v: T) => void, reject: (e: Error) => void, w: Waiter) => void,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const w: Waiter = {
        what,
        silenceMs,
        resolve: (v) => {
          this.removeWaiter(w);
          resolve(v as T);
        },
        reject: (e) => {
          this.removeWaiter(w);
          reject(e);
        },
      };
      // silence counts from when the host starts waiting, not from the last line before
      this.lastHeard = performance.now();
      this.addWaiter(w);
      try {
        start(w.resolve as (v: T) => void, w.reject, w);
      } catch (e) {
        w.reject(e as Error);
      }
    });
  }

  private addWaiter(w: Waiter): void {
    this.waiters.add(w);
    this.armWatchdog();
  }

  private removeWaiter(w: Waiter): void {
    this.waiters.delete(w);
    if (this.waiters.size === 0 && this.watchdog) {
      clearTimeout(this.watchdog);
      this.watchdog = undefined;
    }
  }

  private armWatchdog(): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    if (this.waiters.size === 0) return;
    const limit = Math.min(...[...this.waiters].map((w) => w.silenceMs));
    const due = Math.max(0, this.lastHeard + limit - performance.now());
    this.watchdog = setTimeout(() => {
      this.watchdog = undefined;
      const silent = performance.now() - this.lastHeard;
      const overdue = [...this.waiters].find((w) => silent >= w.silenceMs);
      if (overdue) this.fail(new AgentTimeoutError(overdue.what, Math.round(silent)));
      else this.armWatchdog();
    }, due + 5);
    this.watchdog.unref?.();
  }

  /** The session is unusable from now on: reject everything that waits. */
  private fail(e: Error): void {
    if (this.broken) return;
    this.broken = e;
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = undefined;
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w.reject(e);
    const p = this.program;
    if (p?.pendingOp) {
      p.pendingOp.reject(e);
      p.pendingOp = undefined;
    }
  }

  private onLine(line: string): void {
    const msg = parseAgentLine(line);
    if (msg.t !== 'kmsg' && msg.t !== 'garbage') {
      this.lastHeard = performance.now();
      this.armWatchdog();
    }
    this.dispatch(msg);
  }

  private dispatch(msg: AgentMsg): void {
    const p = this.program;
    const mine = (prog: number) => {
      if (p && prog === p.run.progId) return p;
      this.garbage++;
      if (p) p.run.garbage++;
      return undefined;
    };
    switch (msg.t) {
      case 'garbage':
        this.garbage++;
        if (p) p.run.garbage++;
        return;
      case 'kmsg': {
        if (msg.seq <= this.lastKmsgSeq) return; // each record once
        this.lastKmsgSeq = msg.seq;
        // /dev/kmsg escapes non-printable bytes as \xNN (a multi-line record's newlines among them)
        const rec: KmsgRecord = { seq: msg.seq, level: msg.level, usec: msg.usec, text: stripControl(unescapeKmsg(msg.text)) };
        this.opts.onKmsg?.(rec);
        if (p) {
          p.onKmsg?.(rec);
          if (p.run.kmsg.length < this.opts.kmsgMaxRecords && p.kmsgBytes + rec.text.length <= this.opts.kmsgMaxBytes) {
            p.run.kmsg.push(rec);
            p.run.kmsgOp.push(p.run.started ? p.lastResult + 1 : -1);
            p.kmsgBytes += rec.text.length;
          } else {
            p.run.kmsgDropped++;
          }
        }
        return;
      }
      case 'hello': {
        this.hello = { proto: msg.proto, release: stripControl(msg.release).slice(0, 200) };
        const ws = this.helloWaiters;
        this.helloWaiters = [];
        for (const w of ws) w(this.hello);
        return;
      }
      case 'pong': {
        const q = this.pings.get(msg.nonce);
        if (!q) {
          this.garbage++;
          return;
        }
        this.pings.delete(msg.nonce);
        q.resolve(performance.now() - q.t0);
        return;
      }
      case 'file': {
        const f = this.files.get(msg.nonce);
        if (!f) {
          this.garbage++;
          return;
        }
        this.files.delete(msg.nonce);
        f({ errno: msg.errno, content: msg.content });
        return;
      }
      case 'error': {
        const text = stripControl(msg.msg).slice(0, 1000);
        if (p) {
          if (p.run.errors.length < MAX_ERRORS_KEPT) p.run.errors.push(text);
          // in interactive mode the op line is the only thing the agent can be refusing
          if (p.pendingOp) {
            const po = p.pendingOp;
            p.pendingOp = undefined;
            po.reject(new AgentProtocolError(`the agent refused op ${po.idx}: ${text}`));
          }
        } else {
          this.agentErrors.push(text);
          if (this.agentErrors.length > MAX_ERRORS_KEPT) this.agentErrors.shift();
        }
        return;
      }
      case 'started': {
        const a = mine(msg.prog);
        if (!a) return;
        a.run.started = true;
        a.onStarted?.();
        return;
      }
      case 'result': {
        const a = mine(msg.prog);
        if (!a) return;
        if (msg.idx < 0 || msg.idx >= a.run.results.length) {
          a.run.garbage++;
          return;
        }
        const r: RawResult = { ret: msg.ret, errno: msg.errno, signal: msg.signal, data: msg.data, aux: msg.aux };
        if (msg.t0 !== undefined && msg.t1 !== undefined) [r.t0, r.t1] = [msg.t0, msg.t1];
        a.run.results[msg.idx] = r;
        a.lastResult = msg.idx;
        if (a.pendingOp && a.pendingOp.idx === msg.idx) {
          const po = a.pendingOp;
          a.pendingOp = undefined;
          po.resolve(r);
        }
        return;
      }
      case 'task-end': {
        const a = mine(msg.prog);
        if (!a) return;
        if (a.run.taskEnds.length < 64) a.run.taskEnds.push({ task: msg.task, how: msg.how, value: msg.value, afterOp: a.lastResult });
        return;
      }
      case 'timeout': {
        const a = mine(msg.prog);
        if (!a) return;
        a.run.timeout = { idx: msg.idx, ms: msg.ms };
        if (a.pendingOp && a.pendingOp.idx === msg.idx) {
          const po = a.pendingOp;
          a.pendingOp = undefined;
          po.reject(new AgentOpDeadlineError(msg.idx, msg.ms));
        }
        return;
      }
      case 'exec-output': {
        const a = mine(msg.prog);
        if (!a) return;
        if (!a.exec || a.exec.end) {
          a.run.garbage++;
          return;
        }
        const room = MAX_EXEC_OUTPUT - a.exec.bytes;
        const keep = msg.data.length <= room ? msg.data : msg.data.slice(0, Math.max(0, room));
        a.exec.chunks.push(keep);
        a.exec.bytes += keep.length;
        a.exec.dropped += msg.data.length - keep.length;
        return;
      }
      case 'endpoint-left': {
        const a = mine(msg.prog);
        if (!a) return;
        if (a.run.endpointsLeft.length < 64) a.run.endpointsLeft.push({ address: msg.address, what: msg.what, errno: msg.errno });
        return;
      }
      case 'exec-end': {
        const a = mine(msg.prog);
        if (!a) return;
        if (!a.exec || a.exec.end) {
          a.run.garbage++;
          return;
        }
        a.exec.end = msg;
        return;
      }
      case 'finished': {
        const a = mine(msg.prog);
        if (!a) return;
        if (a.run.finished) {
          // only the first F counts (a Z that crossed the agent's own F is answered again)
          a.run.garbage++;
          return;
        }
        a.run.finished = { status: msg.status, msg: stripControl(msg.msg).slice(0, 1000) };
        if (a.pendingOp) {
          const po = a.pendingOp;
          a.pendingOp = undefined;
          po.reject(new AgentProtocolError(`program ${a.run.progId} ended (status ${msg.status}: ${a.run.finished.msg}) before op ${po.idx} answered`));
        }
        a.onFinished?.();
        return;
      }
    }
  }
}
