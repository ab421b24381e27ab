/**
 * Standalone C reproducers: one C file per program that does, with libc only, exactly what the
 * svadiff guest agent does for each op (docs/agent-protocol.md), checks every step against the
 * model's expectation and says whether the kernel did what the model expects.
 *
 * The file is meant to be pasted into a mail to kernel developers: it names every constant
 * (only the parts of the test device ABI, guest/include/svt_abi.h, that it uses), says in a
 * comment what each step does in kernel terms, and prints one line per step:
 *
 *   step 7 (t0): mmap(m2, q, region 0, 1 page, rw, shared) = EEXIST (expected ok)  <-- DIVERGES
 *
 * Exit status: 1 some step did not do what the model expects (the finding reproduced), 0 every
 * checked step did, 2 a setup problem (no test device, wrong module parameters, not root, a
 * mapping that did not land at its slot).
 *
 * What a file holds: the sections of the agent's own C runtime (guest/runtime, selected as
 * syzkaller's csource selects executor/common_linux.h: cruntime.ts) that its program needs, and
 * the program: each op's C from its description (harness/ops, rendered with the op's values:
 * csteps.ts), in one of two forms with the same behaviour: compact (one task: main() is the
 * program, ccompact.ts) or general (several tasks: a controller and task processes, cgeneral.ts).
 *
 * The program itself is embedded at the end of the file (REPRO_PROGRAM_MARKER), with the
 * finding's title and kernel in the header (REPRO_TITLE_MARKER, REPRO_KERNEL_MARKER): that is
 * how `svadiff replay repro.c` knows the device parameters and what to look for.
 */
import { initialState, predict, type KernelProfile, type ModelState } from '../model/index.js';
import { formatOutcome, type Outcome } from '../program/outcome.js';
import { ROOT_TASK, type Program } from '../program/types.js';
import { generateCompactC } from './ccompact.js';
import { generateGeneralC } from './cgeneral.js';
import type { ReproForm, ReproOptions } from './options.js';

export { cString } from '../ops/cstring.js';
export { parseDefines, usedDefines } from './cruntime.js';
export { stepCalls } from './csteps.js';
export { parseReproSource, REPRO_KERNEL_MARKER, REPRO_PROGRAM_MARKER, REPRO_TITLE_MARKER, type ReproSource } from './embed.js';
export type { ReproForm, ReproOptions } from './options.js';
export { insmodLine, moduleParams } from './setup.js';

/** Exit statuses of a reproducer. */
export const REPRO_EXIT = { matched: 0, diverged: 1, setup: 2 } as const;

/** The line a reproducer prints for the divergence (or hang) it saw, in svadiff's title format. */
export const REPRO_FINDING_PREFIX = 'FINDING: ';

/** Expectations per op from the model, following every branch it allows. */
export interface ModelExpectations {
  expected: (Outcome[] | undefined)[];
  rules: (string[] | undefined)[];
  /** the first op from which the model had too many possible states to follow (not checked) */
  lostAt?: number;
}

/**
 * What the model allows at every op when nothing is known about the kernel's earlier answers:
 * the union over every state the model may be in (each branch it allows is followed). After
 * an op where more than maxStates states are possible, nothing is expected any more. A step
 * whose outcome is outside this union diverges whatever path the kernel took.
 */
export function modelExpectations(program: Program, profile: KernelProfile, maxStates = 64): ModelExpectations {
  let states: ModelState[] = [initialState(program.device, profile)];
  const out: ModelExpectations = { expected: [], rules: [] };
  program.ops.forEach((op, i) => {
    if (out.lostAt !== undefined) {
      out.expected.push(undefined);
      out.rules.push(undefined);
      return;
    }
    const preds = states.flatMap((s) => predict(s, op));
    const seen = new Map<string, Outcome>();
    for (const p of preds) if (!seen.has(formatOutcome(p.outcome))) seen.set(formatOutcome(p.outcome), p.outcome);
    out.expected.push([...seen.values()]);
    out.rules.push([...new Set(preds.map((p) => p.rule))]);
    if (preds.length > maxStates) out.lostAt = i + 1;
    else states = preds.map((p) => p.next);
  });
  return out;
}

/** generateC with the model's expectations for the given kernel profile. */
export function reproForProgram(program: Program, profile: KernelProfile, opts: Omit<ReproOptions, 'expected' | 'rules'> = {}): string {
  const m = modelExpectations(program, profile);
  const notes = [...(opts.notes ?? [])];
  if (m.lostAt !== undefined) {
    notes.push(`Steps from ${m.lostAt} on are not checked: the model allows too many outcomes before them to follow.`);
  }
  notes.push(`Expectations: svadiff's reference model for ${profile.release} (${profile.distro}, ${profile.arch}).`);
  return generateC(program, { ...opts, expected: m.expected, rules: m.rules, notes });
}

/**
 * The C source of a standalone reproducer of `program`. opts.expected has one entry per op
 * (the outcomes the model allows; undefined: not checked). Deterministic: the same input gives
 * the same text. The compact form whenever reproForm allows it (opts.form overrides).
 */
export function generateC(program: Program, opts: ReproOptions): string {
  if (opts.expected.length !== program.ops.length) {
    throw new Error(`generateC: ${opts.expected.length} expectations for ${program.ops.length} ops`);
  }
  const possible = reproForm(program, opts.expected);
  const form = opts.form === undefined || opts.form === 'auto' ? possible : opts.form;
  if (form === 'compact' && possible !== 'compact') throw new Error('generateC: the compact form is for programs of one task (no fork, no exit)');
  return form === 'compact' ? generateCompactC(program, opts) : generateGeneralC(program, opts);
}

/**
 * The form a reproducer of this program takes: compact for one task (no fork, no exit) when
 * the model expects no death or hang (the compact form's watcher reports those as divergences)
 * and the unchecked steps are at the end (after a task died, the general form would go on and
 * check later steps as ESRCH; the compact form stops there).
 */
export function reproForm(program: Program, expected: readonly (readonly Outcome[] | undefined)[]): ReproForm {
  if (program.ops.some((op) => op.op === 'fork' || op.op === 'exit' || op.task !== ROOT_TASK)) return 'general';
  if (expected.some((e) => e?.some((o) => o.kind === 'died' || o.kind === 'hang'))) return 'general';
  const firstUnchecked = expected.findIndex((e) => e === undefined);
  if (firstUnchecked >= 0 && expected.slice(firstUnchecked).some((e) => e !== undefined)) return 'general';
  return 'compact';
}
