/**
 * Run the real guest agent on this host for tests: built by guest/build.ts, talking over
 * stdin/stdout (--stdio), without kernel modules or /dev/kmsg (--no-module --no-kmsg). Programs
 * then work on anonymous memory, fork, exit and signals: everything but the test device.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { buildAgent } from '../../guest/build.js';
import { AgentSession, type SessionOptions } from '../../harness/agent/session.js';

export interface LocalAgent {
  session: AgentSession;
  child: ChildProcess;
  /** write raw bytes to the agent, bypassing the session */
  writeRaw(text: string): void;
  stderr(): string;
  stop(): Promise<void>;
}

let cache: string | undefined;

/** A cache directory of its own for the test run, removed by cleanupAgentCache. */
export function useTestCache(): string {
  if (!cache) {
    cache = mkdtempSync(join(tmpdir(), 'svadiff-agent-test-'));
    process.env.SVADIFF_CACHE = cache;
  }
  return cache;
}

export function cleanupAgentCache(): void {
  if (cache) rmSync(cache, { recursive: true, force: true });
  cache = undefined;
  delete process.env.SVADIFF_CACHE;
}

export async function startLocalAgent(options: SessionOptions = {}): Promise<LocalAgent> {
  useTestCache();
  const bin = await buildAgent('x86_64');
  const child = spawn(bin, ['--stdio', '--no-module', '--no-kmsg'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString('latin1')).slice(-10_000);
  });
  const channel = Duplex.from({ readable: child.stdout!, writable: child.stdin! });
  const session = new AgentSession(channel, options);
  return {
    session,
    child,
    writeRaw: (text) => child.stdin!.write(text),
    stderr: () => err,
    stop: async () => {
      session.dispose();
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGCONT');
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}
