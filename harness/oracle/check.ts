/**
 * The differential part of the oracle: walk a program's observed results through the model
 * and stop at the first op whose outcome the model does not allow. Pure: program, profile and
 * raw results in, verdicts out.
 *
 * Where the model allows several outcomes with different next states, every matching branch
 * is followed (a small set of candidate states); a divergence is an op that no candidate
 * allows.
 *
 * A concurrent group (ops of different tasks run at the same time) is checked for
 * linearizability, as Jepsen's Knossos and Porcupine do: its observed results are accepted only
 * if some order of its ops that is consistent with real time (an op that ended before another
 * began comes first: the agent's times) gives exactly those results in the model; every such
 * order's states go on. Results no order explains are a divergence.
 */
import { AgentAnomaly, observe, type RawResult } from '../agent/observe.js';
import { slotTable } from '../agent/wire.js';
import { initialState, predict, predictAcross, describeState, seesInside, statesDuring, straddles, type KernelProfile, type ModelState, type Prediction } from '../model/index.js';
import { opFeatures } from '../model/features.js';
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
  /** the op's state features before it (harness/model/features.ts), for coverage */
  features?: string[];
}

export interface Divergence {
  index: number;
  op: Op;
  expected: string;
  observed: string;
  rules: string[];
  /** stable one-line title: op kind, expected, observed, rule */
  title: string;
  /** the model's view just before the op (before its group, for a concurrent group) */
  stateBefore: string;
  /** the calls it ran at the same time with (a concurrent group), as titles name them */
  concurrent?: string[];
  /** its result is one the op may give, but no order of the group gives all the results */
  unordered?: boolean;
}

/** How a concurrent group was explained: the orders of its ops (op indices) that give its results. */
export interface Linearization {
  first: number;
  count: number;
  /** every real-time-consistent order that gives the observed results */
  orders: number[][];
  /** orders consistent with real time, tried */
  tried: number;
}

export interface CheckResult {
  ops: OpCheck[];
  divergence?: Divergence;
  /** results the agent could not have produced (a harness bug, never a kernel finding) */
  anomaly?: { index: number; message: string };
  /** ops checked before stopping */
  checked: number;
  /** the concurrent groups checked */
  groups: Linearization[];
  /** endpoints the model expects DMA remapping faults of (harness/model/dma.ts), sorted */
  dmaFaults: number[];
}

/** At most this many candidate states are followed at once. */
const MAX_CANDIDATES = 8;
/** Orders of one group tried at most (groups the generator makes have 2 or 3 ops: 6 orders). */
const MAX_ORDERS = 720;

export function checkProgram(program: Program, profile: KernelProfile, results: readonly (RawResult | undefined)[]): CheckResult {
  const slots = slotTable(program);
  let states: ModelState[] = [initialState(program.device, profile)];
  const ops: OpCheck[] = [];
  const groups: Linearization[] = [];
  let divergence: Divergence | undefined;
  let anomaly: CheckResult['anomaly'];
  let checked = 0;
  const n = program.ops.length;

  /** Observe op i; undefined (and the check stops) when it has no result or an impossible one. */
  const observed = (i: number, expected: string, rules: string[], features: string[]): Outcome | undefined => {
    const op = program.ops[i]!;
    const raw = results[i];
    if (!raw) {
      ops.push({ index: i, op, verdict: 'no-result', expected, rules, features });
      return undefined;
    }
    try {
      return observe(op, raw, slots);
    } catch (e) {
      if (!(e instanceof AgentAnomaly)) throw e;
      anomaly = { index: i, message: e.message };
      ops.push({ index: i, op, verdict: 'anomaly', expected, rules, features });
      return undefined;
    }
  };

  let i = 0;
  for (; i < n; ) {
    const size = groupSize(program, i);
    if (size > 1) {
      const r = checkGroup(program, i, size, states, results, observed);
      ops.push(...r.ops);
      checked += r.checked;
      if (r.lin) groups.push(r.lin);
      if (r.divergence) divergence = r.divergence;
      if (r.next === undefined) {
        i += r.ops.length;
        break;
      }
      states = r.next;
      i += size;
      continue;
    }
    const op = program.ops[i]!;
    const features = opFeatures(states[0]!, op);
    const preds: { state: ModelState; p: Prediction }[] = [];
    for (const s of states) for (const p of predict(s, op)) preds.push({ state: s, p });
    const expected = formatOutcomeSet(uniqueOutcomes(preds.map((x) => x.p.outcome)));
    const rules = [...new Set(preds.map((x) => x.p.rule))];
    const obs = observed(i, expected, rules, features);
    if (obs === undefined) {
      i++;
      break;
    }
    checked++;
    const matching = preds.filter((x) => outcomeMatches(x.p.outcome, obs));
    if (matching.length === 0) {
      const observedText = formatOutcome(obs);
      divergence = { index: i, op, expected, observed: observedText, rules, title: divergenceTitle(op, expected, observedText, rules), stateBefore: describeState(states[0]!) };
      ops.push({ index: i, op, verdict: 'divergence', expected, rules, observed: obs, features });
      i++;
      break;
    }
    ops.push({ index: i, op, verdict: 'match', expected, rules: [...new Set(matching.map((x) => x.p.rule))], observed: obs, features });
    states = matching.slice(0, MAX_CANDIDATES).map((x) => x.p.next);
    i++;
  }
  const seen = new Set(ops.map((o) => o.index));
  for (; i < n; i++) if (!seen.has(i)) ops.push({ index: i, op: program.ops[i]!, verdict: 'unchecked' });
  ops.sort((a, b) => a.index - b.index);
  const dmaFaults = [...new Set(states.flatMap((s) => s.dmaFaults ?? []))].sort((a, b) => a - b);
  const r: CheckResult = { ops, checked, groups, dmaFaults };
  if (divergence) r.divergence = divergence;
  if (anomaly) r.anomaly = anomaly;
  return r;
}

/** Ops in the concurrent group that starts at i (1: an op alone). */
function groupSize(p: Program, i: number): number {
  const g = p.ops[i]!.group;
  if (g === undefined) return 1;
  let j = i + 1;
  while (j < p.ops.length && p.ops[j]!.group === g) j++;
  return j - i;
}

/** Orders of ops 0..n-1 in which `before[a]` holds every op that must come before a (real time). */
export function realTimeOrders(n: number, before: readonly (readonly number[])[], max = MAX_ORDERS): number[][] {
  const out: number[][] = [];
  const cur: number[] = [];
  const used = new Array<boolean>(n).fill(false);
  const walk = () => {
    if (out.length >= max) return;
    if (cur.length === n) {
      out.push([...cur]);
      return;
    }
    for (let a = 0; a < n; a++) {
      if (used[a] || before[a]!.some((b) => !used[b])) continue;
      used[a] = true;
      cur.push(a);
      walk();
      cur.pop();
      used[a] = false;
    }
  };
  walk();
  return out;
}

/**
 * The real-time order of a group's results: op a comes before op b when a ended before b began
 * (both times known). Ops without times may go anywhere.
 */
export function realTimeBefore(raws: readonly (RawResult | undefined)[]): number[][] {
  return raws.map((b) =>
    raws.flatMap((a, k) => (a !== b && a?.t1 !== undefined && b?.t0 !== undefined && a.t1 < b.t0 ? [k] : [])),
  );
}

/** What a concurrent group may give, every order and every branch of the model followed. */
export interface GroupOutcomes {
  /** per op of the group: the outcomes it may have (by formatted text) and the rules behind them */
  outcomes: Map<string, Outcome>[];
  rules: Set<string>[];
  /** every (order, outcome of each op) the model allows; ops by their place in the group */
  tuples: { order: number[]; outcomes: Outcome[] }[];
  /** states after the group */
  finals: ModelState[];
  /** more branches than `cap`: tuples and finals are incomplete */
  truncated: boolean;
}

/**
 * One step of a plan: op k; with `inside`, a reader linearized inside it (it sees a state during
 * k); with `across`, an op that straddled k and gets what only that overlap gives, after k.
 */
export interface PlanStep {
  k: number;
  inside?: number;
  across?: number;
}

/**
 * The ways to run one order of a group: the order itself, and for every op the order follows
 * directly by one that overlaps it in real time: that op inside it, if it is a reader that may
 * see the states during it (model seesInside, statesDuring: a sysfs read while uacce_remove()
 * puts the queues), and that op straddling it (model straddles, predictAcross: an open that
 * found the device before the removal).
 */
export function plansOf(order: readonly number[], gops: readonly Op[], before: readonly (readonly number[])[]): PlanStep[][] {
  const plain: PlanStep[] = order.map((k) => ({ k }));
  const out = [plain];
  for (let j = 0; j + 1 < order.length; j++) {
    const w = order[j]!;
    const r = order[j + 1]!;
    if (before[r]!.includes(w) || before[w]!.includes(r)) continue;
    if (seesInside(gops[r]!, gops[w]!)) out.push([...plain.slice(0, j), { k: w, inside: r }, ...plain.slice(j + 2)]);
    if (straddles(gops[r]!, gops[w]!)) out.push([...plain.slice(0, j), { k: w, across: r }, ...plain.slice(j + 2)]);
  }
  return out;
}

/** What a step may do from `s`: op k's predictions, or the reader's at each state during k and k's from there. */
function stepPredictions(s: ModelState, step: PlanStep, gops: readonly Op[]): { next: ModelState; got: [number, Prediction][] }[] {
  const w = gops[step.k]!;
  const out: { next: ModelState; got: [number, Prediction][] }[] = [];
  if (step.across !== undefined) {
    for (const pw of predict(s, w)) for (const pr of predictAcross(s, pw.next, gops[step.across]!, w)) out.push({ next: pr.next, got: [[step.k, pw], [step.across, pr]] });
    return out;
  }
  if (step.inside === undefined) return predict(s, w).map((p) => ({ next: p.next, got: [[step.k, p]] }));
  const r = gops[step.inside]!;
  for (const mid of statesDuring(s, w)) {
    // the reader changes nothing; the op goes on from where the reader saw it
    for (const pr of predict(mid, r)) for (const pw of predict(mid, w)) out.push({ next: { ...pw.next, ops: s.ops + 2 }, got: [[step.inside, pr], [step.k, pw]] });
  }
  return out;
}

/** Every way a group of ops may go from `states`, in the given orders (default: all). */
export function groupOutcomes(states: readonly ModelState[], gops: readonly Op[], orders?: number[][], cap = 256): GroupOutcomes {
  const n = gops.length;
  const out: GroupOutcomes = { outcomes: gops.map(() => new Map()), rules: gops.map(() => new Set()), tuples: [], finals: [], truncated: false };
  const unordered = gops.map(() => []);
  const all = orders ?? realTimeOrders(n, unordered);
  const seen = new Set<string>();
  for (const order of all) {
    for (const plan of plansOf(order, gops, unordered)) {
      let frontier: { state: ModelState; got: (Outcome | undefined)[] }[] = states.map((state) => ({ state, got: new Array<Outcome | undefined>(n) }));
      for (const step of plan) {
        const next: typeof frontier = [];
        for (const f of frontier) {
          for (const x of stepPredictions(f.state, step, gops)) {
            for (const [k, p] of x.got) {
              out.outcomes[k]!.set(formatOutcome(p.outcome), p.outcome);
              out.rules[k]!.add(p.rule);
            }
            if (next.length >= cap) {
              out.truncated = true;
              continue;
            }
            const got = [...f.got];
            for (const [k, p] of x.got) got[k] = p.outcome;
            next.push({ state: x.next, got });
          }
        }
        frontier = next;
      }
      for (const f of frontier) {
        const key = `${order.join(',')}|${f.got.map((o) => formatOutcome(o!)).join('|')}`;
        if (!seen.has(key)) {
          seen.add(key);
          out.tuples.push({ order, outcomes: f.got as Outcome[] });
        }
        if (out.finals.length < cap) out.finals.push(f.state);
        else out.truncated = true;
      }
    }
  }
  return out;
}

interface GroupCheck {
  ops: OpCheck[];
  checked: number;
  /** the states after the group (undefined: the check stops here) */
  next?: ModelState[];
  lin?: Linearization;
  divergence?: Divergence;
}

function checkGroup(
  program: Program,
  first: number,
  count: number,
  states: ModelState[],
  results: readonly (RawResult | undefined)[],
  observed: (i: number, expected: string, rules: string[], features: string[]) => Outcome | undefined,
): GroupCheck {
  const members = Array.from({ length: count }, (_, k) => first + k);
  const gops = members.map((i) => program.ops[i]!);
  const features = gops.map((op) => opFeatures(states[0]!, op));
  const before = realTimeBefore(members.map((i) => results[i]));
  const orders = realTimeOrders(count, before);
  // what each op may do, in any order, whatever the others did (what a reproducer expects of it)
  const any = groupOutcomes(states, gops);
  const allowed = any.outcomes;
  const allowedRules = any.rules;
  // which order the search met an outcome or rule in first depends on where the op stands in the
  // group: sorted, one divergence has one title however the program lists the group
  const expectedText = (k: number) => formatOutcomeSet([...allowed[k]!.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, o]) => o));
  const rulesOf = (k: number) => [...allowedRules[k]!].sort();

  // observe every member first: a missing or impossible result stops the check there
  const obs: Outcome[] = [];
  for (let k = 0; k < count; k++) {
    const o = observed(members[k]!, '', [], features[k]!);
    if (o === undefined) {
      // the ops before it in program order are neither matched nor diverged
      const out: GroupCheck = { ops: members.slice(0, k).map((i, j) => ({ index: i, op: gops[j]!, verdict: 'unchecked' as const, features: features[j]! })), checked: 0 };
      return out;
    }
    obs.push(o);
  }

  const rulesOk = gops.map(() => new Set<string>());
  const finals: ModelState[] = [];
  const good: number[][] = [];
  for (const order of orders) {
    let explained = false;
    for (const plan of plansOf(order, gops, before)) {
      let frontier: { state: ModelState; rules: string[] }[] = states.map((s) => ({ state: s, rules: [] }));
      for (const step of plan) {
        const next: { state: ModelState; rules: string[] }[] = [];
        for (const f of frontier) {
          for (const x of stepPredictions(f.state, step, gops)) {
            if (x.got.every(([k, p]) => outcomeMatches(p.outcome, obs[k]!)) && next.length < MAX_CANDIDATES * 2) {
              next.push({ state: x.next, rules: [...f.rules, ...x.got.map(([k, p]) => `${k}:${p.rule}`)] });
            }
          }
        }
        frontier = next;
        if (frontier.length === 0) break;
      }
      if (frontier.length === 0) continue;
      explained = true;
      for (const f of frontier) {
        for (const kr of f.rules) {
          const at = kr.indexOf(':');
          rulesOk[Number(kr.slice(0, at))]!.add(kr.slice(at + 1));
        }
        if (finals.length < MAX_CANDIDATES) finals.push(f.state);
      }
    }
    if (explained) good.push(order.map((k) => members[k]!));
  }
  const lin: Linearization = { first, count, orders: good, tried: orders.length };
  if (good.length > 0) {
    return {
      ops: gops.map((op, k) => ({ index: members[k]!, op, verdict: 'match' as const, expected: expectedText(k), rules: [...rulesOk[k]!].sort(), observed: obs[k]!, features: features[k]! })),
      checked: count,
      next: finals,
      lin,
    };
  }
  // no order explains the results: report the first op whose outcome no order allows, else (the
  // results are each possible, but not together) the op with the most possible outcomes, whose
  // result depended on the timing (a read racing a removal, not the removal), then the call that
  // sorts first, the last of equal ones: the title does not depend on the order the group is written in
  const alone = gops.findIndex((_, k) => ![...allowed[k]!.values()].some((e) => outcomeMatches(e, obs[k]!)));
  let k = alone;
  if (k < 0) {
    k = count - 1;
    for (let j = count - 2; j >= 0; j--) {
      const wider = allowed[j]!.size - allowed[k]!.size;
      if (wider > 0 || (wider === 0 && titleWhat(gops[j]!) < titleWhat(gops[k]!))) k = j;
    }
  }
  const op = gops[k]!;
  const expected = expectedText(k);
  const rules = rulesOf(k);
  const observedText = formatOutcome(obs[k]!);
  const concurrent = gops.filter((_, j) => j !== k).map((o) => titleWhat(o));
  const divergence: Divergence = {
    index: members[k]!,
    op,
    expected,
    observed: observedText,
    rules,
    title: divergenceTitle(op, expected, observedText, rules, { concurrent, unordered: alone < 0 }),
    stateBefore: describeState(states[0]!),
    concurrent,
  };
  if (alone < 0) divergence.unordered = true;
  return {
    ops: gops.map((o, j) => ({
      index: members[j]!,
      op: o,
      verdict: j === k ? ('divergence' as const) : ('match' as const),
      expected: expectedText(j),
      rules: rulesOf(j),
      observed: obs[j]!,
      features: features[j]!,
    })),
    checked: count,
    lin,
    divergence,
  };
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
 * `expected` and `observed` are formatOutcomeSet and formatOutcome texts. An op of a
 * concurrent group names the calls it ran with: "close (concurrent with remove): …", and a
 * result the op may give alone but not in any one order with the others' results is "got ok
 * (no order of the group gives it)".
 */
export function divergenceTitle(
  op: Op,
  expected: string,
  observed: string,
  rules: string[],
  group: { concurrent?: readonly string[]; unordered?: boolean } = {},
): string {
  // sets in a title are sorted: the model's outcomes, the group's other calls and the rules
  // come in an order that depends on the state and the group's order, and one divergence must
  // have one title however they came
  const c = [...(group.concurrent ?? [])].sort();
  const what = c.length > 0 ? `${titleWhat(op)} (concurrent with ${c.join(', ')})` : titleWhat(op);
  const got = group.unordered ? `${kindOf(observed)} (${UNORDERED})` : titleObserved(observed, expected);
  return `${what}: expected ${titleExpected(expected)}, got ${got} [${titleRules(rules)}]`;
}

/** The rules a title names: the first two in sorted order, each once. */
export function titleRules(rules: readonly string[]): string {
  return [...new Set(rules)].sort().slice(0, 2).join(', ');
}

/** What a title says of a result the op may give, but in no order together with its group's. */
const UNORDERED = 'no order of the group gives it';

/** An expected set's text as a title gives it: its kinds, each once, sorted ("one of {EINVAL, ok}", "ok"). */
export function titleExpected(expected: string): string {
  const kinds = outcomeKinds(expected).sort();
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
 * digits as "0x…"), and kept the model's order of expected outcomes, rules and a group's calls
 * (now sorted): stores, known-issue lists, nightly histories and reproducers written then still
 * have them. Other titles (crashes, hangs) come back unchanged; so does a title already current.
 */
export function currentDivergenceTitle(title: string): string {
  // values first: a quoted one could hold anything, "got" and "[" included
  const valueless = title.replace(/ok\((?:"(?:[^"\\]|\\.)*"|[^()"]*)\)/g, 'ok');
  const m = DIVERGENCE_TITLE_RE.exec(valueless);
  if (!m) return title;
  const g = /^(.+?) \(concurrent with (.+)\)$/.exec(m[1]!);
  const what = g ? `${g[1]} (concurrent with ${g[2]!.split(', ').sort().join(', ')})` : m[1];
  return `${what}: expected ${titleExpected(m[2]!)}, got ${titleObserved(m[3]!, m[2]!)} [${titleRules(m[4] ? m[4].split(', ') : [])}]`;
}
