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
 * did: "mmap: expected EEXIST, got ok [mmap.exists]". Values read from memory are left out of
 * titles (they vary between runs; the report has them), but sysfs texts and errnos stay.
 */
export function divergenceTitle(op: Op, expected: string, observed: string, rules: string[]): string {
  const what = op.op === 'ioctl' ? `ioctl ${typeof op.cmd === 'number' ? '0x' + op.cmd.toString(16) : op.cmd}` : op.op === 'sysfs_read' || op.op === 'sysfs_write' ? `${op.op} ${op.attr}` : op.op;
  const trim = (s: string) => (op.op === 'touch' || op.op === 'submit' ? s.replace(/0x[0-9a-f]{6,}/g, '0x…') : s);
  return `${what}: expected ${trim(expected)}, got ${trim(observed)} [${rules.slice(0, 2).join(', ')}]`;
}
