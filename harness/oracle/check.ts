/**
 * The differential part of the oracle: walk a program's observed results through the model
 * and stop at the first op whose outcome the model does not allow. Pure: program, profile and
 * raw results in, verdicts out.
 *
 * Where the model allows several outcomes with different next states, every matching branch
 * is followed (a small set of candidate states); a divergence is an op that no candidate
 * allows.
 */
import { AgentAnomaly, observe, type RawResult } from '../agent/observe.js';
import { slotTable } from '../agent/wire.js';
import { initialState, predict, describeState, type KernelProfile, type ModelState, type Prediction } from '../model/index.js';
import { formatOutcome, formatOutcomeSet, outcomeMatches, type Outcome } from '../program/outcome.js';
import { titleWhat } from '../ops/index.js';
import type { Op, Program } from '../program/types.js';

export type OpVerdict = 'match' | 'divergence' | 'no-result' | 'unchecked' | 'anomaly';

export interface OpCheck {
  index: number;
  op: Op;
  verdict: OpVerdict;
  /** what the model allowed (union over candidate states), formatted */
  expected?: string;
  /** the rules behind the expected outcomes */
  rules?: string[];
  observed?: Outcome;
}

export interface Divergence {
  index: number;
  op: Op;
  expected: string;
  observed: string;
  rules: string[];
  /** stable one-line title: op kind, expected, observed, rule */
  title: string;
  /** the model's view just before the op (for reports) */
  stateBefore: string;
}

export interface CheckResult {
  ops: OpCheck[];
  divergence?: Divergence;
  /** results the agent could not have produced (a harness bug, never a kernel finding) */
  anomaly?: { index: number; message: string };
  /** ops checked before stopping */
  checked: number;
}

/** At most this many candidate states are followed at once. */
const MAX_CANDIDATES = 8;

export function checkProgram(program: Program, profile: KernelProfile, results: readonly (RawResult | undefined)[]): CheckResult {
  const slots = slotTable(program);
  let states: ModelState[] = [initialState(program.device, profile)];
  const ops: OpCheck[] = [];
  let stopped = false;
  let divergence: Divergence | undefined;
  let anomaly: CheckResult['anomaly'];
  let checked = 0;

  program.ops.forEach((op, index) => {
    if (stopped) {
      ops.push({ index, op, verdict: 'unchecked' });
      return;
    }
    const raw = results[index];
    const preds: { state: ModelState; p: Prediction }[] = [];
    for (const s of states) for (const p of predict(s, op)) preds.push({ state: s, p });
    const expectedSet = uniqueOutcomes(preds.map((x) => x.p.outcome));
    const rules = [...new Set(preds.map((x) => x.p.rule))];
    const expected = formatOutcomeSet(expectedSet);
    if (!raw) {
      ops.push({ index, op, verdict: 'no-result', expected, rules });
      stopped = true;
      return;
    }
    let observed: Outcome;
    try {
      observed = observe(op, raw, slots);
    } catch (e) {
      if (!(e instanceof AgentAnomaly)) throw e;
      anomaly = { index, message: e.message };
      ops.push({ index, op, verdict: 'anomaly', expected, rules });
      stopped = true;
      return;
    }
    checked++;
    const matching = preds.filter((x) => outcomeMatches(x.p.outcome, observed));
    if (matching.length === 0) {
      const observedText = formatOutcome(observed);
      divergence = {
        index,
        op,
        expected,
        observed: observedText,
        rules,
        title: divergenceTitle(op, expected, observedText, rules),
        stateBefore: describeState(states[0]!),
      };
      ops.push({ index, op, verdict: 'divergence', expected, rules, observed });
      stopped = true;
      return;
    }
    ops.push({ index, op, verdict: 'match', expected, rules: [...new Set(matching.map((x) => x.p.rule))], observed });
    states = matching.slice(0, MAX_CANDIDATES).map((x) => x.p.next);
  });
  const r: CheckResult = { ops, checked };
  if (divergence) r.divergence = divergence;
  if (anomaly) r.anomaly = anomaly;
  return r;
}

function uniqueOutcomes(os: Outcome[]): Outcome[] {
  const seen = new Map<string, Outcome>();
  for (const o of os) {
    const k = formatOutcome(o);
    if (!seen.has(k)) seen.set(k, o);
  }
  return [...seen.values()];
}

/**
 * The title says which call, what the model expected (and by which rule) and what the kernel
 * did, by kind only: "mmap: expected EEXIST, got ok [mmap.exists]". Kinds are ok, an errno
 * name, a signal name, died(SIG…) and hang; the values an ok carries (data read from memory or
 * sysfs, addresses, return values) are left out, so that one divergence is one finding however
 * the values vary (they stay in the finding's expected and observed). When the kernel's ok
 * differs from the model's only by its value the title says "got ok (another value)".
 * `expected` and `observed` are formatOutcomeSet and formatOutcome texts.
 */
export function divergenceTitle(op: Op, expected: string, observed: string, rules: string[]): string {
  return `${titleWhat(op)}: expected ${titleExpected(expected)}, got ${titleObserved(observed, expected)} [${rules.slice(0, 2).join(', ')}]`;
}

/** An expected set's text as a title gives it: its kinds, each once ("one of {ok, EINVAL}", "ok"). */
export function titleExpected(expected: string): string {
  const kinds = outcomeKinds(expected);
  return kinds.length === 1 ? kinds[0]! : `one of {${kinds.join(', ')}}`;
}

/** An observed outcome's text as a title gives it, next to what was expected. */
export function titleObserved(observed: string, expected: string): string {
  const kind = kindOf(observed);
  return kind === 'ok' && outcomeKinds(expected).includes('ok') ? 'ok (another value)' : kind;
}

/** ok(…) is ok; errno and signal names, died(SIG…) and hang are kinds already. */
function kindOf(outcome: string): string {
  return outcome.startsWith('ok(') ? 'ok' : outcome;
}

/** The distinct kinds of an outcome or set text, in order. */
function outcomeKinds(text: string): string[] {
  const set = /^one of \{(.*)\}$/.exec(text);
  return [...new Set((set ? splitOutcomeSet(set[1]!) : [text]).map(kindOf))];
}

/** The members of a set's text, split at ", " outside parentheses and quoted values. */
function splitOutcomeSet(inner: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i]!;
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0 && inner[i + 1] === ' ') {
      parts.push(inner.slice(start, i));
      start = i + 2;
    }
  }
  parts.push(inner.slice(start));
  return parts;
}

/** what, expected, observed, rules of a divergence title */
export const DIVERGENCE_TITLE_RE = /^(.+?): expected (.+), got (.+) \[([^\]]*)\]$/;

/**
 * A divergence title of any svadiff version as divergenceTitle writes it now. Titles used to
 * carry ok's values ("got ok(0x0)", "got ok()", touch and submit values of 6 or more hex
 * digits as "0x…"): stores, known-issue lists and reproducers written then still have them.
 * Other titles (crashes, hangs) come back unchanged; so does a title already current.
 */
export function currentDivergenceTitle(title: string): string {
  // values first: a quoted one could hold anything, "got" and "[" included
  const valueless = title.replace(/ok\((?:"(?:[^"\\]|\\.)*"|[^()"]*)\)/g, 'ok');
  const m = DIVERGENCE_TITLE_RE.exec(valueless);
  if (!m) return title;
  return `${m[1]}: expected ${titleExpected(m[2]!)}, got ${titleObserved(m[3]!, m[2]!)} [${m[4]}]`;
}
