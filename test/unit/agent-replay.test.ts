/**
 * Replay a transcript recorded from a real boot (test/fixtures/agent/README.md) through
 * AgentSession: the session must send exactly the recorded host lines and make sense of the
 * recorded agent lines (kernel log with continuation lines, results of a real test device,
 * a task killed during an op, a rejected program).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { AgentProtocolError, AgentSession, type SessionOptions } from '../../harness/agent/session.js';
import type { KmsgRecord } from '../../harness/oracle/report.js';
import { hexDecode } from '../../harness/agent/wire.js';
import { parseProgram } from '../../harness/program/parse.js';
import { DEFAULT_DEVICE, type Program } from '../../harness/program/types.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const FIX = join(HERE, '..', 'fixtures', 'agent');
const transcript = readFileSync(join(FIX, 'transcript-debian-6.12.117.txt'), 'latin1')
  .split('\n')
  .filter((l) => l.startsWith('> ') || l.startsWith('< '));
const basic = parseProgram(readFileSync(join(HERE, '..', '..', 'corpus', 'seeds', 'basic-lifecycle.json'), 'utf8'));
const interactive = parseProgram(readFileSync(join(FIX, 'interactive-fork.json'), 'utf8'));
const rejected: Program = {
  format: 'svadiff-program',
  version: 1,
  device: { ...DEFAULT_DEVICE },
  ops: [
    { op: 'poll', task: 't0', fd: 'q', timeout_ms: 20000 },
    { op: 'open', task: 't0', fd: 'q', dev: 0, via: 'path' },
  ],
};

/**
 * A channel that plays the agent's side of the transcript: every host line the session writes
 * must be the next recorded one (V, which the session repeats on a timer, is ignored); after
 * it, the agent lines recorded up to the next host line are pushed. `transform` may alter the
 * agent lines (e.g. duplicate some).
 */
function replayChannel(transform: (lines: string[]) => string[] = (l) => l) {
  let pos = 0;
  const mismatches: string[] = [];
  const channel = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('latin1').split('\n')) {
        if (line === '' || line === 'V') continue;
        const want = transcript[pos];
        if (want !== `> ${line}`) mismatches.push(`host sent ${JSON.stringify(line)}, transcript has ${JSON.stringify(want)}`);
        else pos++;
      }
      pushAgent();
      cb();
    },
  });
  function pushAgent() {
    const out: string[] = [];
    while (pos < transcript.length && transcript[pos]!.startsWith('< ')) out.push(transcript[pos++]!.slice(2));
    if (out.length > 0) setImmediate(() => channel.push(transform(out).join('\n') + '\n'));
  }
  pushAgent();
  return { channel, mismatches, done: () => pos === transcript.length };
}

async function replay(opts: SessionOptions = {}, transform?: (lines: string[]) => string[]) {
  const rc = replayChannel(transform);
  const all: KmsgRecord[] = [];
  const s = new AgentSession(rc.channel, { ...opts, onKmsg: (r) => all.push(r) });
  const hello = await s.waitHello(5000);
  for (let i = 0; i < 3; i++) await s.ping();
  const modules = await s.readFile('/proc/modules');
  const run1 = await s.runProgram(1, basic);
  const ip = await s.openInteractive(2, interactive);
  const inter = [];
  for (let i = 0; i < interactive.ops.length; i++) inter.push(await ip.runOp(i));
  const run2 = await ip.close();
  const rejection = await s.runProgram(3, rejected).catch((e: unknown) => e);
  await s.ping();
  return { rc, s, hello, modules, run1, inter, run2, rejection, all };
}

describe('AgentSession replaying a real 6.12 run', () => {
  it('sends the recorded host lines and decodes the agent lines', async () => {
    const r = await replay();
    expect(r.rc.mismatches).toEqual([]);
    expect(r.rc.done()).toBe(true);
    expect(r.hello).toEqual({ proto: 1, release: '6.12.117+deb12-amd64' });
    expect(r.modules.errno).toBe(0);
    expect(r.modules.content).toMatch(/^uacce /);

    // every op of the batch program has the result the agent sent for it
    const sent = transcript.filter((l) => l.startsWith('< R 1 ')).map((l) => l.slice(2).split(' '));
    expect(sent).toHaveLength(basic.ops.length);
    for (const f of sent) {
      const res = r.run1.results[Number(f[2])];
      expect(res).toEqual({ ret: BigInt(f[3]!), errno: Number(f[4]), signal: Number(f[5]), data: hexDecode(f[6]!), aux: hexDecode(f[7]!) });
    }
    expect(r.run1.finished).toEqual({ status: 0, msg: '' });
    expect(r.run1.garbage).toBe(0);
    // the module's load and unload messages, with their continuation lines, belong to program 1
    const texts = r.run1.kmsg.map((k) => k.text);
    expect(texts.some((t) => t.startsWith('svadiff_test svadiff_test.0: registered svt0-') && t.includes('\nSUBSYSTEM=platform'))).toBe(true);
    expect(texts.some((t) => t.startsWith('svadiff_test: unloaded'))).toBe(true);

    // interactive: SIGSEGV of the child on its parent's queue mapping, a task killed during a poll
    expect(r.inter[3]).toMatchObject({ ret: -1n, errno: 0, signal: 11 });
    expect(r.inter[9]).toMatchObject({ ret: -1n, errno: -1, signal: 9 });
    expect(r.run2.taskEnds).toEqual([{ task: 2, how: 'signal', value: 9, afterOp: 8 }]);
    expect(r.run2.results.every((x) => x !== undefined)).toBe(true);
    expect(r.run2.finished).toEqual({ status: 0, msg: '' });

    expect(r.rejection).toBeInstanceOf(AgentProtocolError);
    expect((r.rejection as Error).message).toContain('timeout ms');

    // the kernel log: in order, each record once, boot messages included
    const seqs = r.all.map((k) => k.seq);
    expect(seqs.length).toBe(transcript.filter((l) => l.startsWith('< K ')).length);
    expect(seqs.every((v, i) => i === 0 || v > seqs[i - 1]!)).toBe(true);
    expect(r.all[0]?.text).toMatch(/^Linux version 6\.12\.117/);
  });

  it('delivers each kernel log record once even if the agent repeats it', async () => {
    const r = await replay({}, (lines) => lines.flatMap((l) => (l.startsWith('K ') ? [l, l] : [l])));
    const seqs = r.all.map((k) => k.seq);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(seqs.length).toBe(transcript.filter((l) => l.startsWith('< K ')).length);
  });

  it('caps the kernel log kept per program and counts what it dropped', async () => {
    const r = await replay({ kmsgMaxRecords: 1 });
    const during1 = transcript.slice(transcript.indexOf('> G 1 1'), transcript.indexOf('< F 1 0 -')).filter((l) => l.startsWith('< K '));
    expect(during1.length).toBeGreaterThan(1);
    expect(r.run1.kmsg).toHaveLength(1);
    expect(r.run1.kmsgDropped).toBe(during1.length - 1);
    // the callback still sees every record
    expect(r.all.length).toBe(transcript.filter((l) => l.startsWith('< K ')).length);
  });

  it('counts garbage and strips control sequences from the kernel log', async () => {
    const evil = Buffer.from('oops \x1b[31mred\x1b[0m\x07 done', 'latin1').toString('hex');
    const r = await replay({}, (lines) =>
      lines.flatMap((l) => (l.startsWith('S 1') ? ['R 1 x', '\x1b[2J', 'K 100000 3 1 ' + evil, l] : [l])),
    );
    expect(r.run1.garbage).toBe(2);
    const k = r.run1.kmsg.find((x) => x.seq === 100000);
    expect(k?.text).toBe('oops red done');
  });
});
