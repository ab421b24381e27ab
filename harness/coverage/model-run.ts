/**
 * A program run on the model alone, as if the kernel did what the model says: for every op the
 * prediction the model makes in the state before it (one branch where it allows several), its
 * rule and the op's state features. The generator's measurements and the tests of rule reach
 * use it; no guest is involved. Concurrent groups run in program order (one of their orders).
 */
import { initialState, predict, type KernelProfile, type ModelState } from '../model/index.js';
import { opFeatures } from '../model/features.js';
import type { Outcome } from '../program/outcome.js';
import type { Op, Program } from '../program/types.js';

export interface ModelStep {
  index: number;
  op: Op;
  outcome: Outcome;
  rule: string;
  features: string[];
  /** the state just before the op */
  before: ModelState;
}

export interface ModelRun {
  steps: ModelStep[];
  /** the state after the last op */
  final: ModelState;
}

/**
 * Run `program` on the model. `pick(n)` chooses among n predictions where the model allows
 * several (default: the first, the kernel's usual path).
 */
export function runOnModel(program: Program, profile: KernelProfile, pick: (n: number) => number = () => 0): ModelRun {
  let s = initialState(program.device, profile);
  const steps: ModelStep[] = [];
  program.ops.forEach((op, index) => {
    const preds = predict(s, op);
    const p = preds[Math.min(preds.length - 1, Math.max(0, pick(preds.length)))]!;
    steps.push({ index, op, outcome: p.outcome, rule: p.rule, features: opFeatures(s, op), before: s });
    s = p.next;
  });
  return { steps, final: s };
}
