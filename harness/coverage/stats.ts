/**
 * What a generator's programs do on the model (harness/coverage/model-run.ts): how many ops fail
 * for reasons the generator caused, how deep they get (work items completed, engines left
 * running, split mappings remapped), which rules they reach. The numbers of issue 17's table;
 * `npm run model-stats` prints them for a sample, and the reach test compares rule reach
 * before and after a generator change.
 */
import { slotOfPage } from '../model/kernel.js';
import { RULES } from '../model/index.js';
import type { ModelState } from '../model/index.js';
import type { Op } from '../program/types.js';
import { ROOT_TASK } from '../program/limits.js';
import type { ModelRun } from './model-run.js';
import { Coverage } from './signal.js';

/**
 * Failures that say the op named something its task does not have: a descriptor that was closed
 * or never opened (or whose open failed), an address where nothing is mapped, a procfd or poll
 * of a missing descriptor. A generator that tracks state produces them only on purpose.
 */
export const MISSING_OBJECT_RULES: ReadonlySet<string> = new Set([
  'fd.ebadf',
  'touch.unmapped',
  'mremap.no-vma',
  'madvise.unmapped',
  'mprotect.unmapped',
  'open.procfd-nofd',
  'poll.nofd',
  'remove.unbound',
  'add.bound',
]);

export type { Intent } from '../generator/context.js';
import type { Intent } from '../generator/context.js';

export interface GeneratorStats {
  programs: number;
  ops: number;
  /** ops whose outcome is not ok */
  failed: number;
  /** failed by a MISSING_OBJECT_RULES rule, not on purpose */
  generatorCaused: number;
  /** ops the generator made invalid on purpose, and how many of them failed */
  deliberate: number;
  deliberateFailed: number;
  /** ops of a concurrent group */
  grouped: number;
  groups: number;
  byKind: Record<string, { n: number; failed: number; missing: number }>;
  opens: { n: number; ebusy: number };
  mmaps: { n: number; ebadf: number };
  touches: { n: number; unmapped: number };
  submits: { n: number; unmapped: number; completed: number; done: number; fromChild: number; targetPageNot0: number };
  /** programs in which some queue's engine ran in the background */
  engineBusyPrograms: number;
  mremaps: { n: number; split: number; pageNot0: number; ok: number };
  madvisePartial: number;
  rulesReached: number;
  rulesTotal: number;
  pairsReached: number;
  neverReached: string[];
}

export function emptyStats(): GeneratorStats {
  return {
    programs: 0,
    ops: 0,
    failed: 0,
    generatorCaused: 0,
    deliberate: 0,
    deliberateFailed: 0,
    grouped: 0,
    groups: 0,
    byKind: {},
    opens: { n: 0, ebusy: 0 },
    mmaps: { n: 0, ebadf: 0 },
    touches: { n: 0, unmapped: 0 },
    submits: { n: 0, unmapped: 0, completed: 0, done: 0, fromChild: 0, targetPageNot0: 0 },
    engineBusyPrograms: 0,
    mremaps: { n: 0, split: 0, pageNot0: 0, ok: 0 },
    madvisePartial: 0,
    rulesReached: 0,
    rulesTotal: Object.keys(RULES).length,
    pairsReached: 0,
    neverReached: [],
  };
}

/** Is some engine running in the background? */
function engineBusy(s: ModelState): boolean {
  for (const q of s.queues.values()) if (q.racy) return true;
  return false;
}

/** Is the op's mapping window (its name's slot) split into pieces, or is the op at a piece that is not its start? */
function splitAt(s: ModelState, task: string, map: string, page: number): boolean {
  const slot = s.mapSlots.get(map);
  const t = s.tasks.get(task);
  const mm = t === undefined ? undefined : s.mms.get(t.mm);
  if (slot === undefined || mm === undefined) return false;
  const inWindow = mm.vmas.filter((v) => slotOfPage(v.start).slot === slot);
  if (inWindow.length > 1) return true;
  const v = inWindow[0];
  return v !== undefined && slotOfPage(v.start).page !== 0 && page >= slotOfPage(v.start).page;
}

/** Add one program's model run to `st` (and its rules to `cov`). */
export function addRun(st: GeneratorStats, cov: Coverage, run: ModelRun, intents?: readonly Intent[]): void {
  st.programs++;
  let busy = engineBusy(run.final);
  const groups = new Set<number>();
  for (const step of run.steps) {
    const op: Op = step.op;
    const failed = step.outcome.kind !== 'ok';
    const missing = failed && MISSING_OBJECT_RULES.has(step.rule);
    const deliberate = intents?.[step.index] === 'invalid';
    st.ops++;
    if (failed) st.failed++;
    if (deliberate) {
      st.deliberate++;
      if (failed) st.deliberateFailed++;
    } else if (missing) st.generatorCaused++;
    const group = (op as { group?: number }).group;
    if (group !== undefined) {
      st.grouped++;
      groups.add(group);
    }
    const k = (st.byKind[op.op] ??= { n: 0, failed: 0, missing: 0 });
    k.n++;
    if (failed) k.failed++;
    if (missing) k.missing++;
    if (engineBusy(step.before)) busy = true;
    cov.add([{ kind: op.op, rule: step.rule, features: step.features }]);
    switch (op.op) {
      case 'open':
        st.opens.n++;
        if (step.rule === 'open.busy') st.opens.ebusy++;
        break;
      case 'mmap':
        st.mmaps.n++;
        if (step.rule === 'fd.ebadf') st.mmaps.ebadf++;
        break;
      case 'touch':
        st.touches.n++;
        if (step.rule === 'touch.unmapped') st.touches.unmapped++;
        break;
      case 'submit':
        st.submits.n++;
        if (step.rule === 'touch.unmapped') st.submits.unmapped++;
        if (op.page !== 0) st.submits.targetPageNot0++;
        if (step.outcome.kind === 'ok') {
          st.submits.completed++;
          if (step.outcome.value === undefined || step.outcome.value.startsWith('done')) st.submits.done++;
          if (op.task !== ROOT_TASK) st.submits.fromChild++;
        }
        break;
      case 'mremap':
        st.mremaps.n++;
        if (splitAt(step.before, op.task, op.map, op.page)) st.mremaps.split++;
        if (op.page !== 0) st.mremaps.pageNot0++;
        if (step.outcome.kind === 'ok') st.mremaps.ok++;
        break;
      case 'madvise': {
        const slot = step.before.mapSlots.get(op.map);
        const t = step.before.tasks.get(op.task);
        const mm = t === undefined ? undefined : step.before.mms.get(t.mm);
        const whole = mm?.vmas.find((v) => slot !== undefined && slotOfPage(v.start).slot === slot);
        if (op.page !== 0 || (whole !== undefined && whole.pages !== op.pages)) st.madvisePartial++;
        break;
      }
      default:
        break;
    }
  }
  st.groups += groups.size;
  if (busy) st.engineBusyPrograms++;
}

/** Fill in the reach figures from the coverage. */
export function finishStats(st: GeneratorStats, cov: Coverage): GeneratorStats {
  st.rulesReached = cov.rules.size;
  st.pairsReached = cov.pairs.size;
  st.neverReached = cov.neverReached();
  return st;
}

const pct = (a: number, b: number) => (b === 0 ? '-' : `${((100 * a) / b).toFixed(1)}%`);

/** The table of issue 17, one line per measure. */
export function statsTable(st: GeneratorStats): string[] {
  return [
    `programs ${st.programs}, ops ${st.ops}, failed ${st.failed} (${pct(st.failed, st.ops)})`,
    `ops failing for reasons the generator caused (missing descriptor or mapping, not on purpose): ${st.generatorCaused} (${pct(st.generatorCaused, st.ops)})`,
    `ops invalid on purpose: ${st.deliberate} (${pct(st.deliberate, st.ops)}), of which failed ${st.deliberateFailed}`,
    `opens EBUSY: ${st.opens.ebusy}/${st.opens.n} (${pct(st.opens.ebusy, st.opens.n)}); mmaps EBADF: ${st.mmaps.ebadf}/${st.mmaps.n} (${pct(st.mmaps.ebadf, st.mmaps.n)})`,
    `touches SIGSEGV on an unmapped address: ${st.touches.unmapped}/${st.touches.n} (${pct(st.touches.unmapped, st.touches.n)}); submits: ${st.submits.unmapped}/${st.submits.n} (${pct(st.submits.unmapped, st.submits.n)})`,
    `submits completed: ${st.submits.completed} (done ${st.submits.done}, from a child task ${st.submits.fromChild}, target page not 0: ${st.submits.targetPageNot0})`,
    `programs with an engine running in the background: ${st.engineBusyPrograms} (${pct(st.engineBusyPrograms, st.programs)})`,
    `mremaps: ${st.mremaps.n}, on a split mapping ${st.mremaps.split}, at a page other than 0 ${st.mremaps.pageNot0}, ok ${st.mremaps.ok}; madvise of part of a mapping: ${st.madvisePartial}`,
    `concurrent groups: ${st.groups} (${st.grouped} ops)`,
    `rules reached: ${st.rulesReached} of ${st.rulesTotal}; (rule, feature) pairs: ${st.pairsReached}`,
    `rules never reached: ${st.neverReached.length === 0 ? 'none' : st.neverReached.join(', ')}`,
  ];
}
