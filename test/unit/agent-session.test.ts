/**
 * AgentSession against the real agent binary running on this host (no VM: no kernel modules, so
 * the programs use anonymous memory, fork, exit and signals). What a kernel does with the test
 * device is verified on real boots; see test/fixtures/agent/ and agent-replay.test.ts.
 */
import fc from 'fast-check';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { AgentOpDeadlineError, AgentProtocolError, AgentTimeoutError, type RawResult } from '../../harness/agent/session.js';
import { slotAddress } from '../../harness/agent/conventions.js';
import { encodeProgram } from '../../harness/agent/wire.js';
import { DEFAULT_DEVICE, type Op, type Program } from '../../harness/program/types.js';
import { cleanupAgentCache, startLocalAgent, type LocalAgent } from './agent-local.js';

const ESRCH = 3;
const ENOENT = 2;
const SIGKILL = 9;
const SIGSEGV = 11;

function program(ops: Op[]): Program {
  return { format: 'svadiff-program', version: 1, device: { ...DEFAULT_DEVICE }, ops };
}

const addr = (slot: number) => '0x' + slotAddress(slot).toString(16);
const ok = (r: RawResult | undefined) => ({ ret: r?.ret, errno: r?.errno, signal: r?.signal });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let agent: LocalAgent | undefined;
afterEach(async () => {
  await agent?.stop();
  agent = undefined;
});
afterAll(() => cleanupAgentCache());

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('condition not met in time');
    await sleep(10);
  }
}

describe('AgentSession with the agent on this host', () => {
  it('says hello and answers pings', { timeout: 120_000 }, async () => {
    agent = await startLocalAgent();
    const h = await agent.session.waitHello(10_000);
    expect(h.proto).toBe(1);
    expect(h.release.length).toBeGreaterThan(0);
    for (let i = 0; i < 20; i++) expect(await agent.session.ping()).toBeGreaterThanOrEqual(0);
    const f = await agent.session.readFile('/proc/self/status');
    expect(f.errno).toBe(0);
    expect(f.content).toMatch(/^Name:\s+svadiff-agent/);
    expect((await agent.session.readFile('/nonexistent/file')).errno).toBe(ENOENT);
  });

  it('runs a batch program: memory, fork, exit, signals, mremap', async () => {
    agent = await startLocalAgent();
    await agent.session.waitHello(10_000);
    const ops: Op[] = [
      { op: 'alloc', task: 't0', map: 'b', pages: 2 },
      { op: 'touch', task: 't0', map: 'b', page: 0, offset: 0, access: 'write', value: '0x1122' },
      { op: 'touch', task: 't0', map: 'b', page: 0, offset: 0, access: 'read' },
      { op: 'fork', task: 't0', child: 't1' },
      { op: 'touch', task: 't1', map: 'b', page: 0, offset: 0, access: 'write', value: '0x99' },
      { op: 'touch', task: 't1', map: 'b', page: 0, offset: 0, access: 'read' },
      // private anonymous memory is copied at fork: the parent keeps its value
      { op: 'touch', task: 't0', map: 'b', page: 0, offset: 0, access: 'read' },
      { op: 'touch', task: 't0', map: 'b', page: 1, offset: 8, access: 'read' },
      { op: 'munmap', task: 't0', map: 'b', page: 1, pages: 1 },
      { op: 'touch', task: 't0', map: 'b', page: 1, offset: 0, access: 'read' },
      // the child's own mapping is untouched by the parent's munmap
      { op: 'touch', task: 't1', map: 'b', page: 1, offset: 0, access: 'read' },
      { op: 'exit', task: 't1' },
      // not a valid program (t1 has exited), but the agent must answer it: ESRCH
      { op: 'touch', task: 't1', map: 'b', page: 0, offset: 0, access: 'read' },
      { op: 'mremap', task: 't0', map: 'b', page: 0, old_pages: 1, new_pages: 1, move: true, dontunmap: false, to: 'c' },
      { op: 'touch', task: 't0', map: 'c', page: 0, offset: 0, access: 'read' },
      { op: 'touch', task: 't0', map: 'b', page: 0, offset: 0, access: 'read' },
      { op: 'madvise', task: 't0', map: 'c', page: 0, pages: 1, advice: 'dofork' },
    ];
    const run = await agent.session.runProgram(7, program(ops));
    expect(run.started).toBe(true);
    expect(run.finished).toEqual({ status: 0, msg: '' });
    expect(run.taskEnds).toEqual([]);
    const r = run.results;
    expect(r[0]).toMatchObject({ ret: 0n, errno: 0, aux: addr(0) });
    expect(r[2]).toMatchObject({ ret: 0n, data: '0x1122' });
    expect(r[3]?.ret).toBe(0n);
    expect(Number(r[3]?.aux)).toBeGreaterThan(0); // the child's pid
    expect(r[5]?.data).toBe('0x99');
    expect(r[6]?.data).toBe('0x1122');
    expect(r[7]?.data).toBe('0x0');
    expect(ok(r[8])).toEqual({ ret: 0n, errno: 0, signal: 0 });
    expect(ok(r[9])).toEqual({ ret: -1n, errno: 0, signal: SIGSEGV });
    expect(r[10]?.data).toBe('0x0');
    expect(ok(r[11])).toEqual({ ret: 0n, errno: 0, signal: 0 });
    expect(ok(r[12])).toEqual({ ret: -1n, errno: ESRCH, signal: 0 });
    expect(r[13]).toMatchObject({ ret: 0n, aux: addr(1) });
    expect(r[14]?.data).toBe('0x1122');
    expect(r[15]?.signal).toBe(SIGSEGV);
    expect(ok(r[16])).toEqual({ ret: 0n, errno: 0, signal: 0 });
    expect(run.garbage).toBe(0);
    // the agent carries on with the next program
    const again = await agent.session.runProgram(8, program([{ op: 'alloc', task: 't0', map: 'x', pages: 1 }]));
    expect(again.results[0]?.ret).toBe(0n);
  });

  it('reports a task killed from outside (X) and carries on', async () => {
    agent = await startLocalAgent();
    await agent.session.waitHello(10_000);
    const ops: Op[] = [
      { op: 'open', task: 't0', fd: 'q', dev: 0, via: 'path' }, // no device here: fd slot stays -1
      { op: 'fork', task: 't0', child: 't1' },
      { op: 'poll', task: 't1', fd: 'q', timeout_ms: 2000 }, // poll of no fd: sleeps 2 s
      { op: 'fork', task: 't0', child: 't2' },
      { op: 'touch', task: 't2', map: 'b', page: 0, offset: 0, access: 'read' },
      { op: 'alloc', task: 't0', map: 'b', pages: 1 },
    ];
    const ip = await agent.session.openInteractive(9, program(ops));
    expect((await ip.runOp(0)).errno).toBe(ENOENT);
    const t1 = Number((await ip.runOp(1)).aux);
    const polling = ip.runOp(2);
    await sleep(200);
    process.kill(t1, 'SIGKILL');
    // killed during its op: X, then the op's R with errno -1 and the signal
    expect(ok(await polling)).toEqual({ ret: -1n, errno: -1, signal: SIGKILL });
    expect(ip.run.taskEnds).toEqual([{ task: 1, how: 'signal', value: SIGKILL, afterOp: 1 }]);
    // killed while idle: X as soon as the agent notices; its next op gets ESRCH
    const t2 = Number((await ip.runOp(3)).aux);
    process.kill(t2, 'SIGKILL');
    await waitFor(() => ip.run.taskEnds.length === 2, 5000);
    expect(ip.run.taskEnds[1]).toMatchObject({ task: 2, how: 'signal', value: SIGKILL });
    expect(ok(await ip.runOp(4))).toEqual({ ret: -1n, errno: ESRCH, signal: 0 });
    expect((await ip.runOp(5)).ret).toBe(0n);
    const run = await ip.close();
    expect(run.finished).toEqual({ status: 0, msg: '' });
    expect(await agent.session.ping()).toBeGreaterThanOrEqual(0);
  });

  it('sends T for an op past its deadline and stops the program', { timeout: 30_000 }, async () => {
    agent = await startLocalAgent();
    await agent.session.waitHello(10_000);
    const ops: Op[] = [
      { op: 'open', task: 't0', fd: 'q', dev: 0, via: 'path' },
      { op: 'fork', task: 't0', child: 't1' },
      { op: 'poll', task: 't1', fd: 'q', timeout_ms: 0 }, // deadline 0 + 5 s
    ];
    const ip = await agent.session.openInteractive(10, program(ops));
    await ip.runOp(0);
    const t1 = Number((await ip.runOp(1)).aux);
    process.kill(t1, 'SIGSTOP'); // the task cannot take its op: it "hangs"
    const err = await ip.runOp(2).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentOpDeadlineError);
    expect(err).toMatchObject({ idx: 2, ms: 5000 });
    const run = await ip.close();
    expect(run.timeout).toEqual({ idx: 2, ms: 5000 });
    expect(run.finished?.status).toBe(1);
    expect(run.finished?.msg).toContain('op 2 did not finish');
    expect(await agent.session.ping()).toBeGreaterThanOrEqual(0);
  });

  it('rejects a program the agent refuses (F status 2) and stays usable', async () => {
    agent = await startLocalAgent();
    await agent.session.waitHello(10_000);
    // built without parseProgram: a poll timeout above the agent's limit
    const bad = program([{ op: 'open', task: 't0', fd: 'q', dev: 0, via: 'path' }, { op: 'poll', task: 't0', fd: 'q', timeout_ms: 20_000 }]);
    await expect(agent.session.runProgram(11, bad)).rejects.toThrow(AgentProtocolError);
    await expect(agent.session.openInteractive(12, program([]))).resolves.toBeDefined();
  });

  it('takes the D line with and without its reset field, and refuses a reset that is not 0 or 1', async () => {
    const a = (agent = await startLocalAgent());
    const p = program([{ op: 'alloc', task: 't0', map: 'b', pages: 1 }]);
    expect(encodeProgram(7, p, 'reset')[0]).toMatch(/^D 7 .* 1$/);
    expect(encodeProgram(7, p)[0]!.split(' ')).toHaveLength(12);
    for (const setup of ['reload', 'reset'] as const) {
      const run = await a.session.runProgram(setup === 'reset' ? 8 : 9, p, { setup });
      expect(run.results[0]?.ret).toBe(0n);
      expect(run.finished?.status).toBe(0);
    }
    const before = a.session.agentErrors.length;
    a.writeRaw(`${encodeProgram(10, p)[0]} 2\n`);
    await a.session.ping();
    expect(a.session.agentErrors.slice(before).join('\n')).toMatch(/reset = 2 not in 0\.\.1/);
  });

  it('turns a silent agent into AgentTimeoutError', async () => {
    agent = await startLocalAgent({ silenceMs: 300 });
    await agent.session.waitHello(10_000);
    agent.child.kill('SIGSTOP');
    const t0 = Date.now();
    await expect(agent.session.ping()).rejects.toThrow(AgentTimeoutError);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    // the session is unusable afterwards: the VM layer reboots the guest
    await expect(agent.session.ping()).rejects.toThrow(AgentTimeoutError);
  });

  it('never dies on malformed host lines (answers E) and keeps working', { timeout: 120_000 }, async () => {
    agent = await startLocalAgent();
    const a = agent;
    await a.session.waitHello(10_000);
    const valid = encodeProgram(1, program([{ op: 'alloc', task: 't0', map: 'b', pages: 1 }, { op: 'touch', task: 't0', map: 'b', page: 0, offset: 0, access: 'read' }]));
    const token = fc.oneof(
      fc.constantFrom('D', 'O', 'B', 'G', 'Q', 'C', 'V', 'Z', 'X', 'H', '-', '0', '-1', '99999999999999999999999', '64', '4096', 'zz', '00', 'ff'),
      fc.integer({ min: -5, max: 5000 }).map(String),
      fc.string({ maxLength: 12 }),
    );
    const line = fc.oneof(
      fc.array(token, { maxLength: 16 }).map((t) => t.join(' ')),
      // a valid line with one field replaced
      fc.tuple(fc.constantFrom(...valid), fc.nat(), token).map(([l, i, t]) => {
        const f = l.split(' ');
        f[i % f.length] = t;
        return f.join(' ');
      }),
      fc.string({ maxLength: 300 }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(line, { minLength: 1, maxLength: 20 }), async (lines) => {
        // I would open an interactive program that stays open; that is not malformed input
        a.writeRaw(lines.filter((l) => !l.startsWith('I')).join('\n') + '\n');
        await a.session.ping();
      }),
      { numRuns: 60 },
    );
    a.writeRaw('Z 1\n' + 'A'.repeat(10_000) + '\n\0\0\n');
    await a.session.ping();
    expect(a.child.exitCode).toBeNull();
    expect(a.session.agentErrors.length).toBeGreaterThan(0);
    const run = await a.session.runProgram(1234, program([{ op: 'alloc', task: 't0', map: 'b', pages: 1 }]));
    expect(run.results[0]?.ret).toBe(0n);
  });
});
