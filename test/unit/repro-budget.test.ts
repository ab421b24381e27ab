/**
 * The whole-reproduction budget (harness/repro/budget.ts): the search gets the budget minus the
 * estimated cost of confirmation and repro.c runs, estimated from this reproduction's own
 * measured boot and program times. Pure: a fake clock.
 */
import { describe, expect, it } from 'vitest';
import { ReproBudget } from '../../harness/repro/budget.js';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

describe('ReproBudget', () => {
  it('before anything is measured it reserves a slow boot per repro.c run', () => {
    const c = clock();
    const b = new ReproBudget(600_000, false, c.now);
    // 3 confirmations x 5 s + 3 repro.c runs x (30 s boot + 5 s run + 2 s compile)
    expect(b.reserveMs(3, 3)).toBe(15_000 + 111_000);
    expect(b.searchLeftMs(3, 3)).toBe(600_000 - 126_000);
  });

  it('uses the measured boot (the slowest) and the mean program time once it has them', () => {
    const c = clock();
    const b = new ReproBudget(600_000, false, c.now);
    b.noteBoot(8_000);
    b.noteBoot(12_000);
    b.noteRun(1_000);
    b.noteRun(3_000);
    // 3 x 2 s + 3 x (12 s + 2 s + 2 s)
    expect(b.reserveMs(3, 3)).toBe(6_000 + 48_000);
    c.advance(500_000);
    expect(b.leftMs()).toBe(100_000);
    expect(b.searchLeftMs(3, 3)).toBe(100_000 - 54_000);
    c.advance(60_000);
    expect(b.searchLeftMs(3, 3)).toBeLessThan(0);
  });

  it('a crash or hang kills the guest, so each of its confirmation runs pays a boot', () => {
    const crash = new ReproBudget(600_000, true, clock().now);
    const divergence = new ReproBudget(600_000, false, clock().now);
    for (const b of [crash, divergence]) {
      b.noteBoot(20_000);
      b.noteRun(2_000);
    }
    // repro.c runs: 3 x (20 s + 2 s + 2 s) either way
    expect(divergence.reserveMs(3, 3)).toBe(3 * 2_000 + 72_000);
    expect(crash.reserveMs(3, 3)).toBe(3 * 22_000 + 72_000);
  });

  it('fits as many repro.c runs as the time left allows, never fewer than one', () => {
    const c = clock();
    const b = new ReproBudget(100_000, false, c.now);
    b.noteBoot(10_000);
    b.noteRun(1_000); // one repro.c run: 13 s
    c.advance(60_000); // 40 s left
    expect(b.reproRunsThatFit(5)).toBe(3);
    expect(b.reproRunsThatFit(2)).toBe(2);
    c.advance(39_000); // 1 s left
    expect(b.reproRunsThatFit(5)).toBe(1);
    c.advance(100_000); // overrun
    expect(b.reproRunsThatFit(5)).toBe(1);
  });

  it('without a total budget nothing is bounded', () => {
    const b = new ReproBudget(undefined, false, clock().now);
    expect(b.leftMs()).toBe(Infinity);
    expect(b.searchLeftMs(3, 5)).toBe(Infinity);
    expect(b.reproRunsThatFit(5)).toBe(5);
  });

  it('a preceding sequence costs a boot and each of its programs per run', () => {
    const b = new ReproBudget(600_000, false, clock().now);
    b.noteBoot(10_000);
    b.noteRun(500);
    expect(b.sequenceRunsMs(3, 8)).toBe(3 * (10_000 + 8 * 500));
  });
});
