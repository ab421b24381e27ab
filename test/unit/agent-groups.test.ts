/**
 * Concurrent groups in the real agent on this host (no VM): the ops of a group go to their tasks
 * at once, each result carries when the op began and ended, results come in op order, and the
 * agent refuses groups it cannot run (two ops of one task, a fork).
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { encodeProgram } from '../../harness/agent/wire.js';
import { DEFAULT_DEVICE, type Op, type Program } from '../../harness/program/types.js';
import { cleanupAgentCache, startLocalAgent, type LocalAgent } from './agent-local.js';

function program(ops: Op[]): Program {
  return { format: 'svadiff-program', version: 2, device: { ...DEFAULT_DEVICE }, ops };
}

let agent: LocalAgent | undefined;
afterEach(async () => {
  await agent?.stop();
  agent = undefined;
});
afterAll(() => cleanupAgentCache());

describe('concurrent groups in the agent', () => {
  it('runs a group at once: every op of it has its times, results in op order', { timeout: 120_000 }, async () => {
    agent = await startLocalAgent();
    await agent.session.waitHello(10_000);
    const ops: Op[] = [
      { op: 'alloc', task: 't0', map: 'b', pages: 1 },
      { op: 'fork', task: 't0', child: 't1' },
      { op: 'fork', task: 't0', child: 't2' },
      // t1 and t2 write their own copies of b while t0 reads its own; t2 exits at the same time
      { op: 'touch', task: 't0', map: 'b', page: 0, offset: 0, access: 'read', group: 1 },
      { op: 'touch', task: 't1', map: 'b', page: 0, offset: 0, access: 'write', value: '0x11', group: 1 },
      { op: 'exit', task: 't2', group: 1 },
      { op: 'touch', task: 't1', map: 'b', page: 0, offset: 0, access: 'read' },
      { op: 'touch', task: 't0', map: 'b', page: 1, offset: 0, access: 'read', group: 2 },
      { op: 'touch', task: 't1', map: 'b', page: 0, offset: 0, access: 'read', group: 2 },
    ];
    const lines = encodeProgram(3, program(ops));
    expect(lines.filter((l) => l.startsWith('B '))).toEqual(['B 3 3', 'B 7 2']);
    const run = await agent.session.runProgram(3, program(ops));
    expect(run.finished?.status).toBe(0);
    const r = run.results;
    expect(r.map((x) => x !== undefined)).toEqual(ops.map(() => true));
    expect(r[3]).toMatchObject({ ret: 0n, data: '0x0' });
    expect(r[4]).toMatchObject({ ret: 0n, signal: 0 });
    expect(r[5]).toMatchObject({ ret: 0n, errno: 0 });
    expect(r[6]).toMatchObject({ data: '0x11' });
    expect(r[7]).toMatchObject({ signal: 11 });
    expect(r[8]).toMatchObject({ data: '0x11' });
    // grouped ops have times (began <= ended), the others none
    for (const i of [3, 4, 5, 7, 8]) {
      expect(r[i]!.t0).toBeTypeOf('number');
      expect(r[i]!.t1!).toBeGreaterThanOrEqual(r[i]!.t0!);
    }
    for (const i of [0, 1, 2, 6]) expect(r[i]!.t0).toBeUndefined();
    // all of a group's commands went out before any result was awaited: no op of group 1 ended
    // before the exit was asked for (its time starts when its command went out)
    expect(Math.max(r[3]!.t0!, r[4]!.t0!)).toBeGreaterThanOrEqual(r[5]!.t0! - 1);
    // group 2 began after group 1 ended
    expect(Math.min(r[7]!.t0!, r[8]!.t0!)).toBeGreaterThan(Math.max(r[3]!.t1!, r[4]!.t1!, r[5]!.t1!));
  });

  it('refuses groups it cannot run, whatever the host sends', { timeout: 120_000 }, async () => {
    agent = await startLocalAgent();
    await agent.session.waitHello(10_000);
    const base = program([
      { op: 'alloc', task: 't0', map: 'b', pages: 1 },
      { op: 'fork', task: 't0', child: 't1' },
      { op: 'touch', task: 't0', map: 'b', page: 0, offset: 0, access: 'read' },
      { op: 'touch', task: 't0', map: 'b', page: 0, offset: 0, access: 'read' },
    ]);
    const cases: [string, string][] = [
      ['B 2 2', 'are of one task'],
      ['B 1 2', 'forks'],
      ['B 3 2', 'were not sent'],
      ['B 2 1', 'want B'],
    ];
    let id = 10;
    for (const [b, why] of cases) {
      const lines = encodeProgram(id, base).filter((l) => !l.startsWith('G '));
      const before = agent.session.agentErrors.length;
      agent.writeRaw([...lines, b, `Z ${id}`].join('\n') + '\n');
      await agent.session.ping();
      expect(agent.session.agentErrors.slice(before).join('\n')).toContain(why);
      id++;
    }
    // and a good program runs afterwards
    const run = await agent.session.runProgram(99, base);
    expect(run.results.map((x) => x?.ret)).toEqual([0n, 0n, 0n, 0n]);
  });
});
