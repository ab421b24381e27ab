/**
 * describeState and checkInvariants themselves: the summary names what matters, and the
 * invariant checker does notice a corrupted state (so the property tests can fail).
 */
import { describe, expect, it } from 'vitest';
import { checkInvariants, describeState, predict, type ModelState } from '../../harness/model/index.js';
import { O, parseOps, run } from './model-helpers.js';

function state(): ModelState {
  return run([O.open('q'), O.mmap('m', 'q', 0, 2), O.ioctl('q', 'START_Q'), O.alloc('buf'), O.fork('t1'), O.remove(1), O.add(1)], { device: { devices: 2 } }).final;
}

describe('describeState', () => {
  it('summarises devices, queues and tasks in a few lines', () => {
    const text = describeState(state());
    expect(text).toContain('svt0-0 1/4 queues');
    expect(text).toContain('svt1-1 0/4 queues');
    expect(text).toMatch(/q1 svt0 STARTED refs 3 regions \[mapped,-\] opener t0/);
    expect(text).toContain('t0: fds {q=q1} maps [m[0+2] q1.r0 rw, buf[0+1] anon rw]');
    expect(text).toContain('t1: fds {q=q1} maps [buf[0+1] anon rw]');
    expect(text.split('\n').length).toBeLessThan(8);
  });
});

describe('checkInvariants', () => {
  it('accepts a consistent state and reports corrupted reference counts and region tables', () => {
    const s = state();
    expect(checkInvariants(s)).toEqual([]);
    const q = s.queues.get(1)!;
    const badRefs: ModelState = { ...s, queues: new Map([[1, { ...q, refs: q.refs + 1 }]]) };
    expect(checkInvariants(badRefs).join('\n')).toMatch(/queue 1: refs 4 but 2 fds \+ 1 pieces/);
    const badRegion: ModelState = { ...s, queues: new Map([[1, { ...q, regions: [null, null] }]]) };
    expect(checkInvariants(badRegion).join('\n')).toMatch(/region 0 is free but mapping \d+ has live pieces/);
  });

  it('sees a queue that is gone while a task still holds it', () => {
    const s = state();
    expect(checkInvariants({ ...s, queues: new Map() }).join('\n')).toMatch(/fd q: queue 1 is released/);
  });

  it('predict leaves its input as it was', () => {
    const s = state();
    const before = describeState(s);
    const { ops } = parseOps([O.remove(0)]);
    const [p] = predict(s, ops[0]!);
    expect(describeState(p!.next)).toContain('svt0: removed');
    expect(describeState(s)).toBe(before);
  });
});
