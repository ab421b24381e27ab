/** What the model says an op does, and the shape of an op's model (a fast-check command's check). */
import { sig, type Outcome } from '../program/outcome.js';
import type { OpKind, OpOf } from '../ops/index.js';
import type { Access } from './kernel.js';
import type { RuleId } from './rules.js';
import type { Chooser, Draft, ModelState, Task } from './state.js';

export interface OpResult {
  outcome: Outcome;
  rule: RuleId;
}

export const res = (outcome: Outcome, rule: RuleId): OpResult => ({ outcome, rule });

/** A fault of the task's access: the op's outcome is the signal. */
export function sigResult(a: Extract<Access, { ok: false }>): OpResult {
  return res(sig(a.signal), a.rule);
}

/** The model's part of an op: what the kernel is meant to do with it (`task` is alive). */
export interface ModelOp<K extends OpKind> {
  check(d: Draft, task: Task, op: OpOf<K>, ch: Chooser): OpResult;
  /**
   * For an op that is not atomic to readers running at the same time: the states between the
   * one before it and the one after it that such a reader may see (model/index.ts statesDuring).
   */
  during?(s: ModelState, op: OpOf<K>): ModelState[];
}

export type ModelOps<K extends OpKind> = { [P in K]: ModelOp<P> };
