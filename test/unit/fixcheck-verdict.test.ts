import { describe, expect, it } from 'vitest';
import {
  compareCase,
  fixcheckVerdict,
  fuzzOnlyVerdict,
  renderFixcheck,
  summarizeKernel,
  type CaseResult,
  type KernelCheck,
} from '../../harness/fixcheck/verdict.js';

const EEXIST_OK = 'mmap: expected EEXIST, got ok [mmap.exists]';
const OK_EEXIST = 'mmap: expected ok, got EEXIST [mmap.ok]';
const GPF = 'general protection fault in __mutex_lock';
const DOUBLE_FREE = 'BUG: double free in uacce_vma_close';

function kase(name: string, unpatched: string[], patched: string[]): CaseResult {
  return { name, source: 'regress', unpatched, patched, runs: 1 };
}

function kernel(spec: string, cases: CaseResult[], fuzz?: KernelCheck['fuzz']): KernelCheck {
  return {
    spec,
    release: `${spec.slice(7)}-amd64`,
    uacce: { unpatched: 'uacce.c: Debian', patched: 'uacce.c: Debian + fix.patch' },
    cases,
    ...(fuzz ? { fuzz } : {}),
    times: { buildMs: 1000, replayMs: 2000, fuzzMs: 0, totalMs: 3000 },
  };
}

describe('compareCase', () => {
  it('names what went away, what stayed and what came', () => {
    expect(compareCase([EEXIST_OK], [])).toEqual({ fixed: [EEXIST_OK], left: [], introduced: [], verdict: 'fixed' });
    expect(compareCase([EEXIST_OK], [EEXIST_OK])).toMatchObject({ left: [EEXIST_OK], verdict: 'left' });
    expect(compareCase([], [DOUBLE_FREE])).toMatchObject({ introduced: [DOUBLE_FREE], verdict: 'introduced' });
    expect(compareCase([OK_EEXIST], [DOUBLE_FREE])).toMatchObject({ fixed: [OK_EEXIST], introduced: [DOUBLE_FREE], verdict: 'fixed+introduced' });
    expect(compareCase([], [])).toMatchObject({ verdict: 'clean' });
  });

  it('takes two titles of one crash family as the same crash, but never two divergences', () => {
    // the oracle's sameCrash: one crash reported in another function of the same family
    const cmp = compareCase([GPF], [GPF]);
    expect(cmp.verdict).toBe('left');
    expect(compareCase([EEXIST_OK], ['mmap: expected EEXIST, got EINVAL [mmap.exists]']).verdict).toBe('fixed+introduced');
  });
});

describe('fixcheckVerdict', () => {
  it('passes a patch that fixes its claim on every kernel that shows it and adds nothing', () => {
    const ks = [kernel('debian:6.12.118', [kase('partial', [EEXIST_OK], []), kase('seed:basic', [], [])]), kernel('debian:7.2.13', [kase('partial', [EEXIST_OK], [])])];
    const v = fixcheckVerdict(ks, [{ name: 'partial', title: EEXIST_OK }]);
    expect(v).toMatchObject({ ok: true, reasons: [] });
    expect(v.claims[0]).toMatchObject({ shownOn: ['debian:6.12.118', 'debian:7.2.13'], leftOn: [], ok: true });
  });

  it('rejects a patch that introduces a title, naming it and the kernel', () => {
    const ks = [kernel('debian:6.12.118', [kase('private', [OK_EEXIST], []), kase('partial', [EEXIST_OK], [EEXIST_OK, DOUBLE_FREE])])];
    const v = fixcheckVerdict(ks, [{ name: 'private', title: OK_EEXIST }]);
    expect(v.ok).toBe(false);
    expect(v.reasons).toEqual([`introduced on debian:6.12.118: ${DOUBLE_FREE}`]);
    expect(v.claims[0]!.ok).toBe(true);
  });

  it('rejects a claim left on one kernel, and a claim no kernel showed', () => {
    const ks = [kernel('debian:6.12.118', [kase('partial', [EEXIST_OK], [])]), kernel('debian:7.2.13', [kase('partial', [EEXIST_OK], [EEXIST_OK])])];
    const v = fixcheckVerdict(ks, [
      { name: 'partial', title: EEXIST_OK },
      { name: 'stale', title: GPF },
    ]);
    expect(v.ok).toBe(false);
    expect(v.claims.map((c) => c.ok)).toEqual([false, false]);
    expect(v.reasons[0]).toContain('is left on debian:7.2.13');
    expect(v.reasons[1]).toContain('did not show');
  });

  it('without claims, a patch must fix something', () => {
    const ks = [kernel('debian:6.12.118', [kase('partial', [EEXIST_OK], [EEXIST_OK])])];
    expect(fixcheckVerdict(ks, []).reasons).toEqual(['the patch fixes nothing the unpatched build showed']);
    expect(fixcheckVerdict([kernel('debian:6.12.118', [kase('partial', [EEXIST_OK], [])])], []).ok).toBe(true);
  });

  it('a title fixed on one program but shown by another is left, not fixed', () => {
    const k = kernel('debian:6.12.118', [kase('a', [EEXIST_OK], []), kase('b', [EEXIST_OK], [EEXIST_OK])]);
    expect(summarizeKernel(k)).toMatchObject({ fixed: [], left: [EEXIST_OK] });
  });
});

describe('fuzzing titles found only with the patch', () => {
  const base = { title: DOUBLE_FREE, finding: 'bug-double-free-1' };
  it('count as introduced when the replay shows them on the patched build only', () => {
    expect(fuzzOnlyVerdict({ ...base, replay: { unpatched: [], patched: [DOUBLE_FREE] } })).toBe('introduced');
    expect(fuzzOnlyVerdict({ ...base, replay: { unpatched: [DOUBLE_FREE], patched: [DOUBLE_FREE] } })).toBe('also-unpatched');
    expect(fuzzOnlyVerdict({ ...base, replay: { unpatched: [], patched: [] } })).toBe('flaky');
    expect(fuzzOnlyVerdict(base)).toBe('introduced');
  });

  it('fail the check when the replay shows them with the patch only; a one-off is listed, not counted', () => {
    const fuzz = { timeMs: 60_000, seed: 1, programs: { patched: 40, unpatched: 40 }, patched: [DOUBLE_FREE], unpatched: [], patchedOnly: [{ ...base, replay: { unpatched: [], patched: [DOUBLE_FREE] } }] };
    const ks = [kernel('debian:6.12.118', [kase('partial', [EEXIST_OK], [])], fuzz)];
    const v = fixcheckVerdict(ks, []);
    expect(v.ok).toBe(false);
    expect(v.reasons).toEqual([`introduced on debian:6.12.118: ${DOUBLE_FREE}`]);
    const once = [kernel('debian:6.12.118', [kase('partial', [EEXIST_OK], [])], { ...fuzz, patchedOnly: [{ ...base, replay: { unpatched: [], patched: [] } }] })];
    expect(fixcheckVerdict(once, []).ok).toBe(true);
    expect(summarizeKernel(once[0]!).flaky).toEqual([DOUBLE_FREE]);
    const again = [kernel('debian:6.12.118', [kase('partial', [EEXIST_OK], [])], { ...fuzz, patchedOnly: [{ ...base, replay: { unpatched: [DOUBLE_FREE], patched: [DOUBLE_FREE] } }] })];
    expect(fixcheckVerdict(again, []).ok).toBe(true);
  });
});

describe('titles only the patched build gave on a program', () => {
  const TIMEOUT = 'submit: expected ok, got ETIMEDOUT [submit.done]';
  it('count as introduced when they show again with the patch, or when not run again', () => {
    const again = { ...kase('seed:mprotect', [], [TIMEOUT]), confirm: [{ title: TIMEOUT, runs: 2, patched: 1, unpatched: 0 }] };
    expect(summarizeKernel(kernel('debian:6.12.118', [again]))).toMatchObject({ introduced: [TIMEOUT], flaky: [] });
    expect(summarizeKernel(kernel('debian:6.12.118', [kase('seed:mprotect', [], [TIMEOUT])]))).toMatchObject({ introduced: [TIMEOUT] });
  });

  it('are a one-off when neither build shows them again, and old when the unpatched build does', () => {
    const once = { ...kase('seed:mprotect', [], [TIMEOUT]), confirm: [{ title: TIMEOUT, runs: 2, patched: 0, unpatched: 0 }] };
    const old = { ...kase('seed:mprotect', [], [TIMEOUT]), confirm: [{ title: TIMEOUT, runs: 2, patched: 0, unpatched: 1 }] };
    expect(summarizeKernel(kernel('debian:6.12.118', [once]))).toMatchObject({ introduced: [], flaky: [TIMEOUT] });
    expect(summarizeKernel(kernel('debian:6.12.118', [old]))).toMatchObject({ introduced: [], flaky: [], left: [TIMEOUT] });
    const v = fixcheckVerdict([kernel('debian:6.12.118', [kase('partial', [EEXIST_OK], []), once])], []);
    expect(v).toMatchObject({ ok: true, reasons: [] });
    expect(renderFixcheck('fix.patch', [kernel('debian:6.12.118', [once])], v)).toContain(`run again (seed:mprotect): ${TIMEOUT}: patched 0/2, unpatched 0/2 -> flaky`);
  });
});

describe('titles only the unpatched build gave on a program', () => {
  const TIMEOUT = 'submit: expected ok, got ETIMEDOUT [submit.done]';
  it('are fixed when they show again without the patch only, a one-off when neither build shows them again', () => {
    const fixedAgain = { ...kase('stale', [GPF], []), confirm: [{ title: GPF, runs: 2, patched: 0, unpatched: 2 }] };
    const once = { ...kase('seed:basic', [TIMEOUT], []), confirm: [{ title: TIMEOUT, runs: 2, patched: 0, unpatched: 0 }] };
    const both = { ...kase('seed:mprotect', [TIMEOUT], []), confirm: [{ title: TIMEOUT, runs: 2, patched: 1, unpatched: 0 }] };
    expect(summarizeKernel(kernel('debian:7.2.13', [fixedAgain, once]))).toMatchObject({ fixed: [GPF], flaky: [TIMEOUT], left: [] });
    expect(summarizeKernel(kernel('debian:7.2.13', [both]))).toMatchObject({ fixed: [], left: [TIMEOUT] });
  });
});

describe('renderFixcheck', () => {
  it('shows both builds side by side, the counts, the times and the verdict with its reasons', () => {
    const ks = [kernel('debian:6.12.118', [kase('private', [OK_EEXIST], []), kase('partial', [EEXIST_OK], [EEXIST_OK, DOUBLE_FREE])])];
    const v = fixcheckVerdict(ks, [{ name: 'private', title: OK_EEXIST }]);
    const txt = renderFixcheck('wrong.patch', ks, v);
    expect(txt).toContain('fixed 1, left 1, introduced 1');
    expect(txt).toMatch(/private\s+mmap: expected ok, got EEXIST \[mmap\.ok\]\s+-\s+fixed/);
    expect(txt).toMatch(/partial\s+mmap: expected EEXIST, got ok \[mmap\.exists\]\s+mmap: expected EEXIST, got ok \[mmap\.exists\]\s+introduced\n\s+BUG: double free in uacce_vma_close\n/);
    expect(txt).toContain(`introduced: ${DOUBLE_FREE}`);
    expect(txt).toContain('time: 3s (uacce.ko build 1s, replays 2s, fuzzing 0s)');
    expect(txt).toContain('verdict: FAIL');
    expect(txt).toContain(`  - introduced on debian:6.12.118: ${DOUBLE_FREE}`);
  });
});
