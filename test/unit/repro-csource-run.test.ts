/**
 * Running executables (reproducers) through the agent: protocol line U (docs/agent-protocol.md
 * "Executables"), against the real agent binary on this host (--stdio --no-module --no-kmsg:
 * the device setup around the executable is skipped, everything else is what the guest runs).
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { buildAgent } from '../../guest/build.js';
import { AgentProtocolError } from '../../harness/agent/session.js';
import { encodeDevice, encodeExec, hexEncode, parseAgentLine } from '../../harness/agent/wire.js';
import { DEFAULT_DEVICE } from '../../harness/program/types.js';
import { cleanupAgentCache, startLocalAgent, useTestCache, type LocalAgent } from './agent-local.js';

const dir = mkdtempSync(join(tmpdir(), 'svadiff-exec-test-'));
let agent: LocalAgent | undefined;
afterEach(async () => {
  await agent?.stop();
  agent = undefined;
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  cleanupAgentCache();
});

function script(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // a zombie still answers kill(0): look at its state
  const stat = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, 'utf8') : '';
  return stat !== '' && !/^\d+ \(.*\) Z/.test(stat);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The agent without a session: lines in, lines out, for what the session would refuse to send. */
async function rawAgent() {
  useTestCache();
  const bin = await buildAgent('x86_64');
  const child = spawn(bin, ['--stdio', '--no-module', '--no-kmsg'], { stdio: ['pipe', 'pipe', 'ignore'] });
  const lines: string[] = [];
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => {
    const parts = (partial + d.toString('latin1')).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
  });
  const until = async (pred: (l: string) => boolean, ms = 10_000) => {
    const t0 = Date.now();
    for (;;) {
      const l = lines.find(pred);
      if (l !== undefined) return l;
      if (Date.now() - t0 > ms) throw new Error(`no such line in ${JSON.stringify(lines)}`);
      await sleep(10);
    }
  };
  return {
    lines,
    send: (...l: string[]) => child.stdin!.write(l.join('\n') + '\n'),
    until,
    stop: () => {
      child.kill('SIGKILL');
    },
  };
}

describe('wire: executables', () => {
  it('encodes D and U, and refuses what the agent would refuse', () => {
    expect(encodeExec(7, DEFAULT_DEVICE, '/repro/abc', 5000)).toEqual([encodeDevice(7, DEFAULT_DEVICE), `U 7 ${hexEncode('/repro/abc')} 5000`]);
    expect(() => encodeExec(7, DEFAULT_DEVICE, 'repro/abc', 5000)).toThrow(/absolute/);
    expect(() => encodeExec(7, DEFAULT_DEVICE, '/' + 'a'.repeat(300), 5000)).toThrow(/255/);
    expect(() => encodeExec(7, DEFAULT_DEVICE, '/x', 0)).toThrow(/timeout/);
    expect(() => encodeExec(7, DEFAULT_DEVICE, '/x', 600_001)).toThrow(/timeout/);
  });

  it('parses w and W lines defensively', () => {
    expect(parseAgentLine('w 3 68690a')).toEqual({ t: 'exec-output', prog: 3, data: 'hi\n' });
    expect(parseAgentLine('W 3 1 0 0 0')).toEqual({ t: 'exec-end', prog: 3, exit: 1, signal: 0, timedOut: false, dropped: 0 });
    expect(parseAgentLine('W 3 -1 9 1 12')).toEqual({ t: 'exec-end', prog: 3, exit: -1, signal: 9, timedOut: true, dropped: 12 });
    for (const bad of ['w 3', 'w 3 6', 'w x 68', 'W 3 1 0 2 0', 'W 3 1 0 0', 'W 3 1 0 0 -1', 'W 3 1 0 0 0 0']) {
      expect(parseAgentLine(bad).t).toBe('garbage');
    }
  });
});

describe('AgentSession.runExecutable with the agent on this host', () => {
  it('relays output and exit status; what the executable left behind dies with it', { timeout: 120_000 }, async () => {
    agent = await startLocalAgent();
    await agent.session.waitHello(10_000);
    const pidFile = join(dir, 'bg.pid');
    const p = script('ok.sh', `echo out; echo err >&2\nsleep 60 &\necho $! > ${pidFile}\nexit 3`);
    const r = await agent.session.runExecutable(1, DEFAULT_DEVICE, p, 10_000);
    expect(r).toMatchObject({ started: true, exitCode: 3, signal: 0, timedOut: false, outputDropped: 0, finished: { status: 0, msg: '' } });
    expect(r.output).toBe('out\nerr\n');
    const bg = Number(readFileSync(pidFile, 'utf8'));
    expect(bg).toBeGreaterThan(0);
    expect(alive(bg)).toBe(false);
    expect(r.elapsedMs).toBeLessThan(5000); // not the background sleep's 60 s
    expect(await agent.session.ping()).toBeGreaterThanOrEqual(0);
  });

  it('kills it at its timeout, with its children, and says so', { timeout: 120_000 }, async () => {
    agent = await startLocalAgent();
    await agent.session.waitHello(10_000);
    const pidFile = join(dir, 'child.pid');
    const p = script('hang.sh', `sh -c 'echo $$ > ${pidFile}; exec sleep 60' &\necho started\nwait`);
    const t0 = Date.now();
    const r = await agent.session.runExecutable(2, DEFAULT_DEVICE, p, 700);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(650);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(r).toMatchObject({ timedOut: true, signal: 9, finished: { status: 0 } });
    expect(r.exitCode).toBeUndefined();
    expect(r.output).toBe('started\n');
    expect(alive(Number(readFileSync(pidFile, 'utf8')))).toBe(false);
  });

  it('relays at most 256 KiB of output and counts the rest', { timeout: 120_000 }, async () => {
    agent = await startLocalAgent();
    await agent.session.waitHello(10_000);
    const p = script('chatty.sh', `head -c 300000 /dev/zero | tr '\\0' 'a'`);
    const r = await agent.session.runExecutable(3, DEFAULT_DEVICE, p, 30_000);
    expect(r.exitCode).toBe(0);
    expect(r.output.length).toBe(256 * 1024);
    expect(r.outputDropped).toBe(300_000 - 256 * 1024);
    expect(/^a+$/.test(r.output)).toBe(true);
  });

  it('a file that cannot be executed exits 127 with a message', { timeout: 120_000 }, async () => {
    agent = await startLocalAgent();
    await agent.session.waitHello(10_000);
    const r = await agent.session.runExecutable(4, DEFAULT_DEVICE, join(dir, 'missing'), 5000);
    expect(r.exitCode).toBe(127);
    expect(r.output).toMatch(/cannot execute .*missing: No such file or directory/);
  });

  it('a device the agent refuses ends in AgentProtocolError, and the agent stays usable', { timeout: 120_000 }, async () => {
    agent = await startLocalAgent();
    await agent.session.waitHello(10_000);
    // queue_limit 0 is outside what the agent accepts in a D line: the U has no program then
    await expect(agent.session.runExecutable(5, { ...DEFAULT_DEVICE, queue_limit: 0 }, '/bin/true', 5000)).rejects.toThrow(AgentProtocolError);
    const r = await agent.session.runExecutable(6, DEFAULT_DEVICE, script('t.sh', 'exit 0'), 5000);
    expect(r.exitCode).toBe(0);
  });
});

describe('U lines the agent must refuse, and Z while an executable runs', () => {
  it('answers F status 2 for a U it cannot run, never runs it, and stays responsive', { timeout: 120_000 }, async () => {
    const a = await rawAgent();
    try {
      await a.until((l) => l.startsWith('H '));
      const marker = join(dir, 'ran');
      const p = script('mark.sh', `touch ${marker}`);
      const hex = hexEncode(p);
      a.send(`U 11 ${hex} 1000`); // no D
      await a.until((l) => l.startsWith('F 11 2 '));
      a.send(encodeDevice(12, DEFAULT_DEVICE), `U 12 ${hexEncode('relative/path')} 1000`);
      await a.until((l) => l.startsWith('F 12 2 '));
      a.send(encodeDevice(13, DEFAULT_DEVICE), `U 13 ${hex} 0`);
      await a.until((l) => l.startsWith('F 13 2 '));
      a.send(encodeDevice(14, DEFAULT_DEVICE), 'O 0 0 5 0 1 0 0 0 0 0 0 -', `U 14 ${hex} 1000`);
      await a.until((l) => l.startsWith('F 14 2 '));
      a.send('U 15 zz 1000', 'U');
      a.send('Q ping1');
      await a.until((l) => l === 'P ping1');
      expect(existsSync(marker)).toBe(false);
      // and a good one runs
      a.send(encodeDevice(16, DEFAULT_DEVICE), `U 16 ${hex} 1000`);
      await a.until((l) => l.startsWith('F 16 '));
      expect(existsSync(marker)).toBe(true);
      const mine = a.lines.filter((l) => / 16( |$)/.test(l)).map((l) => l.split(' ')[0]);
      expect(mine).toEqual(['S', 'W', 'F']);
      expect(a.lines.find((l) => l.startsWith('W 16 '))).toBe('W 16 0 0 0 0');
    } finally {
      a.stop();
    }
  });

  it('Z ends a running executable at once (W: killed, not timed out), other lines get E', { timeout: 120_000 }, async () => {
    const a = await rawAgent();
    try {
      await a.until((l) => l.startsWith('H '));
      const p = script('long.sh', 'echo begun\nexec sleep 60');
      a.send(encodeDevice(21, DEFAULT_DEVICE), `U 21 ${hexEncode(p)} 60000`);
      await a.until((l) => l === `w 21 ${hexEncode('begun\n')}`);
      a.send(encodeDevice(22, DEFAULT_DEVICE), 'Q during');
      await a.until((l) => l === 'P during');
      await a.until((l) => l.startsWith('E '));
      const t0 = Date.now();
      a.send('Z 21');
      await a.until((l) => l.startsWith('F 21 '));
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(a.lines.find((l) => l.startsWith('W 21 '))).toBe('W 21 -1 9 0 0');
    } finally {
      a.stop();
    }
  });
});
