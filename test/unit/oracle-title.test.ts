/**
 * Divergence titles (harness/oracle/check.ts): the op, the expected and observed kinds and the
 * rule, never the values an ok carries, so that one divergence is one finding; and titles of
 * older svadiff versions, which had the values, brought to the same title.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { currentDivergenceTitle, divergenceTitle } from '../../harness/oracle/check.js';
import { formatOutcome, formatOutcomeSet, type Outcome } from '../../harness/program/outcome.js';
import type { Op } from '../../harness/program/types.js';

const touch: Op = { op: 'touch', task: 't0', map: 'm', page: 0, offset: 0, access: 'read' };
const sysfsRead: Op = { op: 'sysfs_read', task: 't0', dev: 0, attr: 'api' };

/** The title as divergenceTitle wrote it before titles dropped values (kept here as the old format). */
function oldTitle(op: Op, expected: string, observed: string, rules: string[]): string {
  const what = op.op === 'sysfs_read' || op.op === 'sysfs_write' ? `${op.op} ${op.attr}` : op.op;
  const trim = (s: string) => (op.op === 'touch' || op.op === 'submit' ? s.replace(/0x[0-9a-f]{6,}/g, '0x…') : s);
  return `${what}: expected ${trim(expected)}, got ${trim(observed)} [${rules.slice(0, 2).join(', ')}]`;
}

/** What a title must say, worked out from the outcomes themselves (not from their text). */
function kindText(o: Outcome): string {
  return o.kind === 'ok' ? 'ok' : formatOutcome(o);
}
function expectedTitle(op: Op, expected: Outcome[], observed: Outcome, rules: string[]): string {
  const kinds = [...new Set(expected.map(kindText))].sort();
  const exp = kinds.length === 1 ? kinds[0]! : `one of {${kinds.join(', ')}}`;
  const obs = observed.kind === 'ok' && kinds.includes('ok') ? 'ok (another value)' : kindText(observed);
  return `${op.op === 'sysfs_read' ? `sysfs_read ${(op as { attr: string }).attr}` : op.op}: expected ${exp}, got ${obs} [${[...new Set(rules)].sort().slice(0, 2).join(', ')}]`;
}

const value = fc.oneof(
  fc.constant(''),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((n) => `0x${n.toString(16)}`),
  fc.string({ maxLength: 20 }), // sysfs texts: anything, quoted when not plain
);
const outcome: fc.Arbitrary<Outcome> = fc.oneof(
  fc.constant<Outcome>({ kind: 'ok' }),
  value.map((v): Outcome => ({ kind: 'ok', value: v })),
  fc.constantFrom('EINVAL', 'EEXIST', 'EFAULT', 'ENODEV').map((e): Outcome => ({ kind: 'errno', errno: e })),
  fc.constantFrom('SIGSEGV', 'SIGBUS').map((s): Outcome => ({ kind: 'signal', signal: s as 'SIGSEGV' | 'SIGBUS' })),
  fc.constantFrom('SIGKILL', 'SIGABRT').map((s): Outcome => ({ kind: 'died', signal: s })),
  fc.constant<Outcome>({ kind: 'hang' }),
);
const rules = fc.array(fc.constantFrom('touch.read', 'touch.zombie', 'sysfs.api', 'x.y'), { minLength: 1, maxLength: 3 });

describe('divergence titles', () => {
  it('the two 6.1 observations of the removal bug give one title', () => {
    const t = divergenceTitle(touch, 'SIGBUS', 'ok()', ['touch.zombie']);
    expect(t).toBe('touch: expected SIGBUS, got ok [touch.zombie]');
    expect(divergenceTitle(touch, 'SIGBUS', 'ok(0x0)', ['touch.zombie'])).toBe(t);
    expect(divergenceTitle(touch, 'SIGBUS', 'ok(0xdeadbeef00)', ['touch.zombie'])).toBe(t);
  });

  it('one divergence, one title, whatever order the model, the group or the rules came in', () => {
    // three titles of one 7.2 divergence found by svadiff nightly before the sets were sorted
    const open: Op = { op: 'open', task: 't0', fd: 'q0', dev: 0, via: 'path' };
    const now = 'open (concurrent with remove): expected one of {ENOENT, ok}, got EINVAL [open.ok, open.path-gone]';
    expect(divergenceTitle(open, 'one of {ok("/dev/svt0-0"), ENOENT}', 'EINVAL', ['open.ok', 'open.path-gone'], { concurrent: ['remove'] })).toBe(now);
    expect(divergenceTitle(open, 'one of {ENOENT, ok("/dev/svt0-0")}', 'EINVAL', ['open.path-gone', 'open.ok'], { concurrent: ['remove'] })).toBe(now);
    expect(currentDivergenceTitle('open (concurrent with remove): expected one of {ok, ENOENT}, got EINVAL [open.ok, open.path-gone]')).toBe(now);
    expect(currentDivergenceTitle('open (concurrent with remove): expected one of {ENOENT, ok}, got EINVAL [open.path-gone, open.ok]')).toBe(now);
    const two = { concurrent: ['remove', 'open'] };
    expect(divergenceTitle(open, 'one of {EBUSY, ENOENT}', 'EINVAL', ['open.busy'], two)).toBe(divergenceTitle(open, 'one of {ENOENT, EBUSY}', 'EINVAL', ['open.busy'], { concurrent: ['open', 'remove'] }));
    expect(currentDivergenceTitle('open (concurrent with remove, open): expected one of {ENOENT, EBUSY}, got EINVAL [open.path-gone, open.busy]')).toBe(
      'open (concurrent with open, remove): expected one of {EBUSY, ENOENT}, got EINVAL [open.busy, open.path-gone]',
    );
  });

  it('name kinds only: ok without its value, a different value as "ok (another value)"', () => {
    expect(divergenceTitle(touch, 'one of {ok(0x5), EFAULT}', 'ok(0x123456789a)', ['touch.read'])).toBe('touch: expected one of {EFAULT, ok}, got ok (another value) [touch.read]');
    expect(divergenceTitle(sysfsRead, 'ok("a, b")', 'ok("x (y), got z [w]")', ['sysfs.api'])).toBe('sysfs_read api: expected ok, got ok (another value) [sysfs.api]');
    expect(divergenceTitle(touch, 'one of {ok(0x1), ok(0x2)}', 'EFAULT', ['a', 'b', 'c'])).toBe('touch: expected ok, got EFAULT [a, b]');
    expect(divergenceTitle(touch, 'ok(0x0)', 'died(SIGKILL)', [])).toBe('touch: expected ok, got died(SIGKILL) []');
  });

  it('say exactly the kinds of any outcomes, whatever the values', () => {
    fc.assert(
      fc.property(fc.constantFrom(touch, sysfsRead), fc.array(outcome, { minLength: 1, maxLength: 4 }), outcome, rules, (op, expected, observed, r) => {
        const t = divergenceTitle(op, formatOutcomeSet(expected), formatOutcome(observed), r);
        expect(t).toBe(expectedTitle(op, expected, observed, r));
      }),
    );
  });

  it("older titles (with values, sets in the model's order) become the current title; current ones and crash titles stay", () => {
    // an old title named the first two of its rules: of three, the current one may name others
    const upToTwo = rules.map((r) => r.slice(0, 2));
    fc.assert(
      fc.property(fc.constantFrom(touch, sysfsRead), fc.array(outcome, { minLength: 1, maxLength: 4 }), outcome, upToTwo, (op, expected, observed, r) => {
        const e = formatOutcomeSet(expected);
        const o = formatOutcome(observed);
        const now = divergenceTitle(op, e, o, r);
        expect(currentDivergenceTitle(oldTitle(op, e, o, r))).toBe(now);
        expect(currentDivergenceTitle(now)).toBe(now);
      }),
    );
    expect(currentDivergenceTitle('touch: expected SIGBUS, got ok() [touch.zombie]')).toBe('touch: expected SIGBUS, got ok [touch.zombie]');
    expect(currentDivergenceTitle('touch: expected one of {ok(0x5), EFAULT}, got ok(0x…) [touch.read, touch.other]')).toBe(
      'touch: expected one of {EFAULT, ok}, got ok (another value) [touch.other, touch.read]',
    );
    for (const crash of ['general protection fault in __mutex_lock', 'BUG: double free in vma_close', 'hang: poll did not return', 'KFENCE: use-after-free read in f']) {
      expect(currentDivergenceTitle(crash)).toBe(crash);
    }
  });
});
