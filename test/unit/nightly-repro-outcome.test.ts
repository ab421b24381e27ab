/**
 * What a night says of a reproduction (harness/nightly/run.ts reproOutcome): a repro.c that never
 * ran is not "flaky" (a night once showed "flaky, repro.c 0/0" for a bug whose reproducer was
 * never run); every status from the summary fields alone, no guest.
 */
import { describe, expect, it } from 'vitest';
import { reproOutcome } from '../../harness/nightly/run.js';

const summary = (reproduced: boolean, hits: number, runs: number, what = 'repro.c on a fresh guest') => ({
  reproduced,
  reliability: { hits, runs, what },
  ops_before: 50,
  ops_after: 16,
});

describe('the status of a night\'s reproduction', () => {
  it('reproduced only when repro.c showed it in every run, flaky in some', () => {
    expect(reproOutcome(summary(true, 3, 3))).toEqual({ status: 'reproduced', note: '50 -> 16 ops; repro.c showed it in 3 of 3 runs' });
    expect(reproOutcome(summary(true, 1, 3))).toEqual({ status: 'flaky', note: '50 -> 16 ops; repro.c showed it in 1 of 3 runs' });
    expect(reproOutcome(summary(true, 0, 3)).status).toBe('flaky');
  });

  it('failed, with the reason, when repro.c did not run at all', () => {
    const r = reproOutcome(summary(true, 0, 0, 'repro.c not verified: the guest did not reach its agent'));
    expect(r).toEqual({ status: 'failed', note: '50 -> 16 ops; repro.c not verified: the guest did not reach its agent' });
  });

  it('not reproduced when the program did not show it again, whatever repro.c did', () => {
    expect(reproOutcome(summary(false, 0, 0)).status).toBe('not-reproduced');
    expect(reproOutcome(summary(false, 0, 0)).note).toBe('50 -> 16 ops; the program did not show it again');
  });
});
