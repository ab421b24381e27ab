/**
 * What one operation did, in the terms the model predicts and reports print:
 *   ok            the call succeeded (value: what it returned or read, when that matters)
 *   errno         the call failed with that errno
 *   signal        the operation raised SIGSEGV or SIGBUS (caught by the agent)
 *   died          the task was killed by a signal nobody caught
 *   hang          the operation did not finish within its deadline
 */
export type Outcome =
  | { kind: 'ok'; value?: string }
  | { kind: 'errno'; errno: string }
  | { kind: 'signal'; signal: 'SIGSEGV' | 'SIGBUS' }
  | { kind: 'died'; signal: string }
  | { kind: 'hang' };

export const ok = (value?: string): Outcome => (value === undefined ? { kind: 'ok' } : { kind: 'ok', value });
export const err = (errno: string): Outcome => ({ kind: 'errno', errno });
export const sig = (signal: 'SIGSEGV' | 'SIGBUS'): Outcome => ({ kind: 'signal', signal });

/** The short form used in titles and reports: ok, ok(0x2), EEXIST, SIGSEGV, died(SIGKILL), hang. */
export function formatOutcome(o: Outcome): string {
  switch (o.kind) {
    case 'ok':
      return o.value === undefined ? 'ok' : `ok(${formatValue(o.value)})`;
    case 'errno':
      return o.errno;
    case 'signal':
      return o.signal;
    case 'died':
      return `died(${o.signal})`;
    case 'hang':
      return 'hang';
  }
}

function formatValue(v: string): string {
  // Text values (sysfs) are shown quoted with escapes; numbers and words as they are.
  return /^[A-Za-z0-9_.:x -]*$/.test(v) && !v.includes('  ') ? v : JSON.stringify(v);
}

/**
 * Does the observed outcome match an expected one? An expected ok without a value accepts any
 * value (the model has nothing to say about it).
 */
export function outcomeMatches(expected: Outcome, observed: Outcome): boolean {
  if (expected.kind !== observed.kind) return false;
  switch (expected.kind) {
    case 'ok':
      return expected.value === undefined || expected.value === (observed as { value?: string }).value;
    case 'errno':
      return expected.errno === (observed as { errno: string }).errno;
    case 'signal':
      return expected.signal === (observed as { signal: string }).signal;
    case 'died':
      return expected.signal === (observed as { signal: string }).signal;
    case 'hang':
      return true;
  }
}

export function formatOutcomeSet(set: readonly Outcome[]): string {
  const parts = set.map(formatOutcome);
  return parts.length === 1 ? parts[0]! : `one of {${parts.join(', ')}}`;
}
