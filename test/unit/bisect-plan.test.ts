import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { confidenceOf, fixesLine, goodEndReproducesText, ListBisect, onlyUnder, UACCE_PATHS, verdictOf, verdictText, type BisectStep } from '../../harness/bisect/plan.js';

function step(id: string, verdict: BisectStep['verdict'], reproduced: number, runs = 3): BisectStep {
  return { n: 1, role: 'step', id, build: 'fetch', verdict, reproduced, runs, flaky: reproduced > 0 && reproduced < runs, titles: [], build_ms: 0, test_ms: 0, ms: 0 };
}

describe('step verdicts', () => {
  it('bad from the threshold on, flaky when some but not all runs reproduce', () => {
    expect(verdictOf(0, 3)).toEqual({ verdict: 'good', flaky: false });
    expect(verdictOf(3, 3)).toEqual({ verdict: 'bad', flaky: false });
    expect(verdictOf(1, 3)).toEqual({ verdict: 'bad', flaky: true });
    expect(verdictOf(1, 3, 2)).toEqual({ verdict: 'good', flaky: true });
    expect(() => verdictOf(1, 3, 4)).toThrow();
    expect(verdictText(step('x', 'bad', 1))).toBe('bad, flaky (1/3)');
    expect(verdictText(step('x', 'good', 0))).toBe('good (0/3)');
    expect(verdictText({ ...step('x', 'skip', 0), note: 'did not build' })).toBe('skip (did not build)');
  });
});

describe('binary search over versions', () => {
  it('finds the first bad version for any boundary, in about log2(n) steps', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 40 }), fc.nat(), (n, b) => {
        const items = Array.from({ length: n }, (_, i) => `v${i}`);
        const boundary = 1 + (b % (n - 1)); // items[boundary] is the first bad one
        const s = new ListBisect(items);
        let steps = 0;
        for (let i = s.next(); i !== undefined; i = s.next()) {
          s.record(i, i >= boundary ? 'bad' : 'good');
          steps++;
        }
        const r = s.result();
        expect(r.firstBad).toBe(items[boundary]);
        expect(r.lastGood).toBe(items[boundary - 1]);
        expect(r.between).toEqual([]);
        expect(steps).toBeLessThanOrEqual(Math.ceil(Math.log2(n)));
      }),
    );
  });

  it('skipped versions are avoided and widen the answer only when they must', () => {
    const items = ['a', 'b', 'c', 'd', 'e'];
    const s = new ListBisect(items);
    // c (the middle) does not build; b is good; d is bad
    const order: string[] = [];
    for (let i = s.next(); i !== undefined; i = s.next()) {
      order.push(items[i]!);
      s.record(i, items[i] === 'c' ? 'skip' : items[i] === 'b' ? 'good' : 'bad');
    }
    expect(order[0]).toBe('c');
    expect(s.result()).toEqual({ lastGood: 'b', firstBad: 'd', between: ['c'] });
  });
});

describe('confidence', () => {
  it('clean steps: high, and says why', () => {
    const c = confidenceOf([step('debian:6.12.118', 'bad', 3), step('debian:6.12.95', 'good', 0), step('debian:6.12.111', 'bad', 3)], 3);
    expect(c.level).toBe('high');
    expect(c.statement).toMatch(/6 of 6 runs/);
  });

  it('flaky steps are named and lower it; a low rate makes good verdicts doubtful', () => {
    const c = confidenceOf([step('a', 'bad', 1), step('b', 'good', 0), step('c', 'bad', 1)], 3);
    expect(c.level).toBe('low');
    expect(c.statement).toMatch(/flaky: a 1\/3, c 1\/3/);
    expect(c.statement).toMatch(/probability/);
    const skipped = confidenceOf([step('a', 'bad', 3), { ...step('b', 'skip', 0), note: 'x' }], 3);
    expect(skipped.level).toBe('medium');
    expect(skipped.statement).toMatch(/skipped/);
  });
});

describe('git helpers', () => {
  it('Fixes: line as submitting-patches.rst writes it', () => {
    expect(fixesLine('0123456789abcdef0123456789abcdef01234567', 'uacce: free the region')).toBe('Fixes: 0123456789ab ("uacce: free the region")');
  });

  it('module-only ranges', () => {
    expect(onlyUnder(['drivers/misc/uacce/uacce.c', 'include/linux/uacce.h'], UACCE_PATHS).ok).toBe(true);
    expect(onlyUnder(['drivers/misc/uacce/uacce.c', 'mm/mmap.c'], UACCE_PATHS)).toEqual({ ok: false, outside: ['mm/mmap.c'] });
    expect(onlyUnder(['drivers/misc/uaccex/a.c'], ['drivers/misc/uacce']).ok).toBe(false);
  });
});

describe('a Debian bisection whose good end reproduces', () => {
  // the 6.12 archive as listed on 2026-12-04: fetchable from 6.12.95, images back to 6.12.43 without headers or source
  const fetchable = ['6.12.95', '6.12.107', '6.12.111', '6.12.113', '6.12.115', '6.12.117', '6.12.118'];
  const base = { series: '6.12', bad: '6.12.118', reproduced: 3, runs: 3, fetchable };

  it('at the oldest fetchable build: present across the range, no boundary, the older unusable builds named', () => {
    const t = goodEndReproducesText({ ...base, good: '6.12.95', unusableOlder: ['6.12.43', '6.12.57', '6.12.94'] });
    expect(t).toMatch(/^present across the whole available range: it reproduces on debian:6\.12\.95 \(3 of 3\)/);
    expect(t).toContain('the archive lists 3 older: 6.12.43 to 6.12.94, without packages svadiff needs');
    expect(t).toContain('the first bad version is older than debian:6.12.95, and no boundary can be found');
    expect(goodEndReproducesText({ ...base, good: '6.12.95', unusableOlder: [] })).toContain("the oldest 6.12 build Debian's archive has,");
  });

  it('at a newer good end: asks for an older one', () => {
    const t = goodEndReproducesText({ ...base, good: '6.12.111', unusableOlder: [] });
    expect(t).toBe('--good debian:6.12.111 already reproduces it (3 of 3); give an older --good (svadiff can fetch 6.12 builds from 6.12.95)');
  });
});
