/**
 * Minimization of a finding's program: shrink it while it keeps the finding's signature, by
 * running every candidate for real (a Tester; GuestTester runs them on a guest).
 *
 * Signature: a crash or hang keeps its exact title; a divergence keeps the op it happened at
 * (kind, ioctl command or sysfs attribute: the title's first part) and its (expected, observed)
 * pair, but not necessarily its index or rule: the key is the divergence title with the rules
 * left out (divergenceTitle(op, expected, observed, [])).
 *
 * Passes, repeated while a round still removes ops and the budget lasts:
 *   1. tasks:  remove a fork with every op of the child and of its descendants;
 *   2. chunks: remove chunks of ops, ddmin-style, halving the chunk size down to one op; a repair
 *              step drops ops that use names (tasks, descriptors, mappings) no longer created;
 *   3. fast-check (first round, generated programs only): the program's comment names its seed
 *              and index; the same value is regenerated (and checked to be identical) and
 *              fast-check's own shrinker runs on it with the guest as the property;
 *   4. params: concurrent groups run as plain ops, device parameters toward the defaults, device indices toward 0, pages toward 1, prot toward rw, shared
 *              toward true, values and offsets toward 0x1 and 0, poll timeouts toward 0, opens
 *              through the plain path.
 * Every candidate runs from a fresh device (the agent reloads the test module per program).
 * A run that shows the signature is accepted; a divergence's program is then cut right after
 * the diverging op (the model stops checking there, so later ops cannot matter).
 *
 * Races: a candidate with a concurrent group runs up to groupTries times until it shows the
 * signature, and the confirmation says in how many runs it showed and at which run first.
 *
 * Flakiness: a candidate is accepted only when it showed the signature, so a flaky signature
 * can only make the result larger, never make it a program that never reproduced. The final
 * program is re-run `confirmRuns` times; if it never shows the signature again, the minimizer
 * steps back through the accepted programs to the newest one that does. The rate is reported.
 */
import fc from 'fast-check';
import type { FindingKind, KernelId } from '../findings/store.js';
import { generateProgram, mixSeed, programArbitrary } from '../generator/index.js';
import type { KernelProfile } from '../model/index.js';
import { divergenceTitle } from '../oracle/check.js';
import { crashFamily } from '../oracle/report.js';
import { onlyHolds } from '../ops/describe.js';
import { checkProgram, formatProgram, groupSpans, repairProgram } from '../program/parse.js';
import { descOf, fieldsOf, titleWhat } from '../ops/index.js';
import { DEFAULT_DEVICE, type DeviceParams, type Op, type Program } from '../program/types.js';
import { executeProgram, findingCandidates, type ExecResult } from '../run/execute.js';
import type { Guest } from '../vm/guest.js';
import type { QemuCommand } from '../vm/qemu.js';
import type { ReproBudget } from './budget.js';

// ---------------------------------------------------------------------------------------------
// Signatures

/** What a finding must keep while its program shrinks: one string, compared exactly. */
export interface Signature {
  kind: FindingKind;
  key: string;
}

/** The parts of a finding (finding.json) a signature is made of. */
export interface FindingFacts {
  kind: FindingKind;
  title: string;
  expected?: string;
  observed?: string;
  op_index?: number;
}

/** Crashes compare by family (harness/oracle/report.ts crashFamily): slab corruption varies its title. */
export function crashKey(kind: FindingKind, title: string): string {
  return `${kind}: ${crashFamily(title)}`;
}

/** The parts of a divergence its key is made of (its op in a concurrent group: the calls it ran with). */
export interface DivergenceFacts {
  op: Op;
  expected: string;
  observed: string;
  concurrent?: readonly string[];
  unordered?: boolean;
}

export function divergenceKey(d: DivergenceFacts): string {
  return `divergence: ${divergenceTitle(d.op, d.expected, d.observed, [], { ...(d.concurrent ? { concurrent: d.concurrent } : {}), ...(d.unordered ? { unordered: true } : {}) })}`;
}

/** The calls that ran at the same time as op `index` (the other ops of its concurrent group), as titles name them. */
export function concurrentWith(program: Program, index: number): string[] {
  const g = program.ops[index]?.group;
  if (g === undefined) return [];
  return program.ops.flatMap((op, i) => (i !== index && op.group === g ? [titleWhat(op)] : []));
}

/** The signature of a stored finding whose program is `program`. */
export function findingSignature(f: FindingFacts, program: Program): Signature {
  if (f.kind !== 'divergence') return { kind: f.kind, key: crashKey(f.kind, f.title) };
  const op = f.op_index !== undefined ? program.ops[f.op_index] : undefined;
  if (op && f.expected !== undefined && f.observed !== undefined && f.expected !== '' && f.observed !== '') {
    const concurrent = concurrentWith(program, f.op_index!);
    const facts: DivergenceFacts = { op, expected: f.expected, observed: f.observed, concurrent, unordered: / \(no order of the group gives it\) \[/.test(f.title) };
    return { kind: 'divergence', key: divergenceKey(facts) };
  }
  // no op index: the title without its rule list
  return { kind: 'divergence', key: `divergence: ${f.title.replace(/ \[[^\]]*\]$/, ' []')}` };
}

/** The outcome of running one candidate. */
export interface Trial {
  /** the signature keys this run showed (its divergence, each kernel report, a hang) */
  keys: string[];
  /** index of the diverging op, if the model found a divergence */
  divergenceIndex?: number;
  /** the full result, when the candidate ran on a guest */
  result?: ExecResult;
}

/** The signature keys of one real run. */
export function trialOf(r: ExecResult, kernel: KernelId): Trial {
  const keys: string[] = [];
  const d = r.check.divergence;
  if (d) keys.push(divergenceKey(d));
  for (const c of findingCandidates(r, kernel)) if (c.kind !== 'divergence') keys.push(crashKey(c.kind, c.title));
  const t: Trial = { keys, result: r };
  if (d) t.divergenceIndex = d.index;
  return t;
}

/** Runs one candidate program and says what it showed. */
export interface Tester {
  run(program: Program): Promise<Trial>;
}

/**
 * The real tester: every candidate on a guest (booted on first use and again after a run that
 * leaves the kernel untrustworthy: a splat, a hang, a dead guest, a failed teardown).
 */
export class GuestTester implements Tester {
  private guest: Guest | undefined;
  private progId = 1;
  boots = 0;
  /** the QEMU command of the last guest booted (for report.txt and repro.json) */
  qemu: QemuCommand | undefined;

  constructor(
    private readonly opts: {
      boot: () => Promise<Guest>;
      profile: KernelProfile;
      kernel: KernelId;
      /** agent silence limit per program (default: the session's) */
      deadlineMs?: number;
      /** told how long each boot and each program took (the reproduction's time budget) */
      budget?: Pick<ReproBudget, 'noteBoot' | 'noteRun'>;
    },
  ) {}

  async run(program: Program): Promise<Trial> {
    if (!this.guest) {
      const b0 = Date.now();
      this.guest = await this.opts.boot();
      this.opts.budget?.noteBoot(Date.now() - b0);
      this.boots++;
      this.qemu = this.guest.vm.command();
    }
    const r0 = Date.now();
    const r = await executeProgram(this.guest, this.progId++, program, this.opts.profile, this.opts.deadlineMs !== undefined ? { deadlineMs: this.opts.deadlineMs } : {});
    this.opts.budget?.noteRun(Date.now() - r0);
    if (r.needsReboot) {
      await this.guest.kill();
      this.guest = undefined;
    }
    return trialOf(r, this.opts.kernel);
  }

  async close(): Promise<void> {
    const g = this.guest;
    this.guest = undefined;
    if (g) await g.shutdown().catch(() => g.kill());
  }
}

// ---------------------------------------------------------------------------------------------
// Program edits (pure)

// repairProgram (drop the ops that no longer make sense once others are gone) lives with the
// program checker, whose scope rules it applies.
export { repairProgram };

/** checkProgram on a copy: is this a valid program? */
export function isValidProgram(p: Program): boolean {
  try {
    checkProgram(JSON.parse(JSON.stringify(p)) as unknown, 'candidate');
    return true;
  } catch {
    return false;
  }
}

/** The program without the task forked by `forkIndex`'s op, its descendants and all their ops. */
export function withoutTask(p: Program, forkIndex: number): Program {
  const fork = p.ops[forkIndex];
  if (!fork || fork.op !== 'fork') throw new Error(`op ${forkIndex} is not a fork`);
  const gone = new Set<string>([fork.child]);
  for (const op of p.ops) if (op.op === 'fork' && gone.has(op.task)) gone.add(op.child);
  const ops = p.ops.filter((op, i) => i !== forkIndex && !gone.has(op.task) && !(op.op === 'fork' && gone.has(op.child)));
  return { ...p, ops };
}

/** The program without ops [start, start + n). */
export function withoutRange(p: Program, start: number, n: number): Program {
  return { ...p, ops: [...p.ops.slice(0, start), ...p.ops.slice(start + n)] };
}

/** Simplifications of one op, most aggressive first (all fields at once, then one at a time). */
export function simplerOps(op: Op): Op[] {
  const fields = simplerFields(op);
  const apply = (f: Partial<Record<string, unknown>>): Op => {
    const o: Record<string, unknown> = { ...op, ...f };
    for (const [k, v] of Object.entries(f)) if (v === undefined) delete o[k];
    return o as unknown as Op;
  };
  const out: Op[] = [];
  // every field's simplest value together (for pages: 1, not the half)
  const all: Partial<Record<string, unknown>> = {};
  for (const f of fields) for (const [k, v] of Object.entries(f)) if (!(k in all)) all[k] = v;
  if (fields.length > 1) out.push(apply(all));
  for (const f of fields) out.push(apply(f));
  return out;
}

/** How far an op is from its simplest form: fields not at their simplest value, plus extra pages. */
export function opDistance(op: Op): number {
  const keys = new Set(simplerFields(op).flatMap((f) => Object.keys(f)));
  const o = fieldsOf(op);
  let extent = 0;
  for (const [name, f] of Object.entries(descOf(op.op).fields)) {
    if (f.extentOf && f.spec.t === 'int' && typeof o[name] === 'number') extent += (o[name] as number) - f.spec.min;
  }
  return keys.size + extent;
}

/**
 * Field changes that make an op simpler, one object per change: each field's `simpler` values
 * (its description's), in the description's `simplify` order. A change that makes an optional
 * field meaningless drops it (open via path: no `of`).
 */
function simplerFields(op: Op): Partial<Record<string, unknown>>[] {
  const d = descOf(op.op);
  const o = fieldsOf(op);
  const out: Partial<Record<string, unknown>>[] = [];
  for (const name of d.simplify ?? Object.keys(d.fields)) {
    const f = d.fields[name];
    const v = o[name];
    if (f?.simpler === undefined || v === undefined) continue;
    for (const c of f.simpler) {
      if (c === 'half') {
        if (typeof v === 'number' && v > 2) out.push({ [name]: Math.ceil(v / 2) });
        continue;
      }
      if (c === v) continue;
      const change: Partial<Record<string, unknown>> = { [name]: c };
      const after = { ...o, [name]: c };
      for (const [other, g] of Object.entries(d.fields)) {
        const dependsOn = g.only !== undefined && ('field' in g.only ? g.only.field === name : g.only.any.includes(name));
        if (dependsOn && !onlyHolds(g.only!, after)) change[other] = undefined;
      }
      out.push(change);
    }
  }
  return out;
}

/** Device parameter sets closer to the defaults: all at once, then one field at a time. */
export function simplerDevices(d: DeviceParams): DeviceParams[] {
  const keys = (Object.keys(DEFAULT_DEVICE) as (keyof DeviceParams)[]).filter((k) => JSON.stringify(d[k]) !== JSON.stringify(DEFAULT_DEVICE[k]));
  const out: DeviceParams[] = [];
  if (keys.length > 1) out.push({ ...DEFAULT_DEVICE, algorithms: [...DEFAULT_DEVICE.algorithms] });
  for (const k of keys) out.push({ ...d, [k]: DEFAULT_DEVICE[k] });
  return out;
}

/** The op outside any concurrent group. */
export function withoutGroup(op: Op): Op {
  const { group: _g, ...rest } = op;
  return rest as Op;
}

/** A measure of how far a program is from the simplest: ops first, then non-default parameters and grouped ops. */
export function complexity(p: Program): number {
  let c = 0;
  for (const op of p.ops) if (op.group !== undefined) c++;
  for (const k of Object.keys(DEFAULT_DEVICE) as (keyof DeviceParams)[]) if (JSON.stringify(p.device[k]) !== JSON.stringify(DEFAULT_DEVICE[k])) c++;
  for (const op of p.ops) c += opDistance(op);
  return p.ops.length * 1000 + c;
}

/** The seed and index of a generated program ("generated: seed S, program I" in its comment). */
export function generatedOrigin(p: Program): { seed: number; index: number } | undefined {
  const m = /generated: seed (\d+), program (\d+)/.exec(p.comment ?? '');
  if (!m) return undefined;
  return { seed: Number(m[1]), index: Number(m[2]) };
}

const sameProgram = (a: Program, b: Program) => programKey(a) === programKey(b);

/**
 * The canonical text of a program without its comment (fields in the parser's order, so that
 * the generator's and a file's field order do not matter): equal keys run the same.
 */
export function programKey(p: Program): string {
  const { comment: _c, ...rest } = p;
  let canonical: Program;
  try {
    canonical = checkProgram(JSON.parse(JSON.stringify(rest)) as unknown, 'program');
  } catch {
    canonical = rest as Program; // not valid: its own text is key enough
  }
  return formatProgram(canonical);
}

// ---------------------------------------------------------------------------------------------
// The search

export interface MinimizeOptions {
  /** candidate runs at most (confirmation runs come on top); default 400 */
  maxRuns?: number;
  /** wall-clock budget of the search in ms (confirmation comes on top); default 20 min */
  maxTimeMs?: number;
  /** runs of the original program until it first shows the signature; default 3 */
  initialTries?: number;
  /** re-runs of the final program; default 3 */
  confirmRuns?: number;
  /** runs fast-check's shrinker may spend; default 80 (0: skip the pass) */
  fastCheckRuns?: number;
  /** no search: only run the original (initialTries) and confirm it */
  noSearch?: boolean;
  /**
   * runs of a candidate with a concurrent group before it counts as not showing the signature
   * (a race shows only now and then); default 3
   */
  groupTries?: number;
  /** the profile programs were generated with (the fast-check pass regenerates them) */
  profile?: KernelProfile;
  /**
   * time the search may still take, asked before each candidate (a whole reproduction's
   * budget minus what must follow the search: ReproBudget.searchLeftMs); stops it at <= 0
   */
  timeLeftMs?: () => number;
  onProgress?: (message: string) => void;
}

export interface PassStats {
  pass: 'tasks' | 'chunks' | 'fast-check' | 'params';
  round: number;
  runs: number;
  accepted: number;
  opsAfter: number;
}

export interface MinimizeResult {
  /** the smallest program that kept the signature (the original if it never reproduced) */
  program: Program;
  /** the original showed the signature at least once */
  reproduced: boolean;
  opsBefore: number;
  opsAfter: number;
  /** every candidate run, confirmations included */
  runs: number;
  timeMs: number;
  /** re-runs of the final program, how many showed the signature, and the first that did (1-based) */
  confirm: { hits: number; runs: number; firstHit?: number };
  /** accepted programs stepped back over because they did not reproduce again */
  rolledBack: number;
  passes: PassStats[];
  fastCheck: 'shrunk' | 'no-smaller' | 'not-generated' | 'regenerated-differs' | 'skipped';
  /** the search stopped early */
  stoppedBy?: 'runs' | 'time';
  /** a run of the final program that showed the signature (expected outcomes, kernel log) */
  witness?: Trial;
}

class Exhausted extends Error {}

export async function minimize(original: Program, sig: Signature, tester: Tester, opts: MinimizeOptions = {}): Promise<MinimizeResult> {
  const m = new Minimizer(sig, tester, opts);
  return m.run(original);
}

class Minimizer {
  private runs = 0;
  private searchRuns = 0;
  private readonly t0 = Date.now();
  private readonly cache = new Map<string, Program | null>();
  private readonly maxRuns: number;
  private readonly maxTimeMs: number;
  private stoppedBy: MinimizeResult['stoppedBy'];
  private readonly passes: PassStats[] = [];
  /** accepted programs, oldest first */
  private readonly history: Program[] = [];
  private witness: Trial | undefined;
  /** the simplest program that showed the signature so far */
  private cur!: Program;
  private accepted = 0;
  private fastCheck: MinimizeResult['fastCheck'] = 'skipped';

  constructor(
    private readonly sig: Signature,
    private readonly tester: Tester,
    private readonly opts: MinimizeOptions,
  ) {
    this.maxRuns = opts.maxRuns ?? 400;
    this.maxTimeMs = opts.maxTimeMs ?? 20 * 60_000;
  }

  private say(msg: string): void {
    this.opts.onProgress?.(msg);
  }

  /** Run once; the (cut) program if the signature showed. */
  private async runOnce(p: Program): Promise<{ program: Program; trial: Trial } | undefined> {
    this.runs++;
    const trial = await this.tester.run(p);
    if (!trial.keys.includes(this.sig.key)) return undefined;
    let program = p;
    if (this.sig.kind === 'divergence' && trial.divergenceIndex !== undefined && trial.divergenceIndex < p.ops.length - 1) {
      program = { ...p, ops: p.ops.slice(0, trial.divergenceIndex + 1) };
    }
    return { program, trial };
  }

  private budgetLeft(): boolean {
    if (this.searchRuns >= this.maxRuns) this.stoppedBy ??= 'runs';
    else if (Date.now() - this.t0 >= this.maxTimeMs || (this.opts.timeLeftMs !== undefined && this.opts.timeLeftMs() <= 0)) this.stoppedBy ??= 'time';
    return this.stoppedBy === undefined;
  }

  /**
   * A search candidate: repaired, validated, cached; the accepted program or undefined. A
   * candidate with a concurrent group runs up to groupTries times until it shows the signature.
   */
  private async attempt(candidate: Program): Promise<Program | undefined> {
    const p = repairProgram(candidate);
    if (!isValidProgram(p)) return undefined;
    const key = programKey(p);
    const cached = this.cache.get(key);
    if (cached !== undefined) return cached ?? undefined;
    const tries = groupSpans(p).length > 0 ? Math.max(1, this.opts.groupTries ?? 3) : 1;
    let r: Awaited<ReturnType<Minimizer['runOnce']>>;
    for (let i = 0; i < tries && !r; i++) {
      if (!this.budgetLeft()) throw new Exhausted();
      this.searchRuns++;
      r = await this.runOnce(p);
    }
    this.cache.set(key, r ? r.program : null);
    return r?.program;
  }

  async run(original: Program): Promise<MinimizeResult> {
    const opsBefore = original.ops.length;
    const tries = Math.max(1, this.opts.initialTries ?? 3);
    let first: { program: Program; trial: Trial } | undefined;
    for (let i = 0; i < tries && !first; i++) {
      this.say(`running the original program (${opsBefore} ops), try ${i + 1} of ${tries}`);
      first = await this.runOnce(original);
    }
    if (!first) {
      return {
        program: original,
        reproduced: false,
        opsBefore,
        opsAfter: opsBefore,
        runs: this.runs,
        timeMs: Date.now() - this.t0,
        confirm: { hits: 0, runs: tries },
        rolledBack: 0,
        passes: [],
        fastCheck: 'skipped',
      };
    }
    this.witness = first.trial;
    // without a search the program stays exactly as it was (not even cut after its divergence)
    this.cur = this.opts.noSearch ? original : first.program;
    this.history.push(this.cur);
    this.cache.set(programKey(original), this.cur);
    this.cache.set(programKey(this.cur), this.cur);

    try {
      for (let round = 1; !this.opts.noSearch; round++) {
        const before = complexity(this.cur);
        await this.pass('tasks', round, () => this.removeTasks());
        await this.pass('chunks', round, () => this.removeChunks());
        if (round === 1) await this.fastCheckPass(original, round);
        await this.pass('params', round, () => this.simplifyParams());
        if (complexity(this.cur) >= before) break;
      }
    } catch (e) {
      if (!(e instanceof Exhausted)) throw e;
      this.say(`budget used up (${this.stoppedBy === 'runs' ? `${this.maxRuns} runs` : 'time'}); keeping the smallest program so far`);
    }
    const current = this.cur;

    // confirmation: the final program again, stepping back while it never reproduces
    const confirmRuns = Math.max(1, this.opts.confirmRuns ?? 3);
    let rolledBack = 0;
    let confirm: MinimizeResult['confirm'] = { hits: 0, runs: 0 };
    const candidates = [...this.history].reverse().filter((p, i, all) => all.findIndex((q) => sameProgram(p, q)) === i);
    let chosen = current;
    for (const cand of [current, ...candidates.filter((c) => !sameProgram(c, current))]) {
      chosen = cand;
      confirm = { hits: 0, runs: 0 };
      let witness: Trial | undefined;
      for (let i = 0; i < confirmRuns; i++) {
        const r = await this.runOnce(cand);
        confirm.runs++;
        if (r) {
          confirm.hits++;
          confirm.firstHit ??= confirm.runs;
          witness ??= r.trial;
        }
      }
      this.say(`confirmation of the ${cand.ops.length}-op program: ${confirm.hits}/${confirm.runs}`);
      if (confirm.hits > 0) {
        this.witness = witness;
        break;
      }
      rolledBack++;
      if (rolledBack >= 4) break; // the signature is too rare to confirm; keep the last one tried
    }
    const res: MinimizeResult = {
      program: chosen,
      reproduced: true,
      opsBefore,
      opsAfter: chosen.ops.length,
      runs: this.runs,
      timeMs: Date.now() - this.t0,
      confirm,
      rolledBack,
      passes: this.passes,
      fastCheck: this.fastCheck,
    };
    if (this.stoppedBy) res.stoppedBy = this.stoppedBy;
    if (this.witness && confirm.hits > 0) res.witness = this.witness;
    return res;
  }

  private async pass(name: PassStats['pass'], round: number, fn: () => Promise<void>): Promise<void> {
    const runs0 = this.searchRuns;
    const stats: PassStats = { pass: name, round, runs: 0, accepted: 0, opsAfter: this.cur.ops.length };
    this.passes.push(stats);
    const c0 = this.accepted;
    try {
      await fn();
    } finally {
      stats.runs = this.searchRuns - runs0;
      stats.accepted = this.accepted - c0;
      stats.opsAfter = this.cur.ops.length;
      this.say(`round ${round}, ${name}: ${stats.runs} runs, ${stats.accepted} accepted, ${stats.opsAfter} ops`);
    }
  }

  /** Take `p` as the current program if it is simpler. */
  private take(p: Program | undefined): boolean {
    if (!p || complexity(p) >= complexity(this.cur)) return false;
    this.cur = p;
    this.history.push(p);
    this.accepted++;
    return true;
  }

  private async removeTasks(): Promise<void> {
    for (let i = this.cur.ops.length - 1; i >= 0; i--) {
      if (i >= this.cur.ops.length || this.cur.ops[i]!.op !== 'fork') continue;
      if (this.take(await this.attempt(withoutTask(this.cur, i)))) i = Math.min(i, this.cur.ops.length);
    }
  }

  private async removeChunks(): Promise<void> {
    let size = Math.max(1, Math.floor(this.cur.ops.length / 2));
    for (;;) {
      let removed = false;
      // from the end: later ops depend on earlier ones, so their removal repairs least
      for (let start = this.cur.ops.length - size; start > -size; start -= size) {
        const s = Math.max(0, start);
        const n = start < 0 ? size + start : size;
        if (n <= 0 || this.cur.ops.length <= 1) continue;
        if (this.take(await this.attempt(withoutRange(this.cur, s, n)))) removed = true;
      }
      if (this.cur.ops.length <= 1 || (size === 1 && !removed)) return;
      if (size > 1) size = Math.max(1, Math.floor(size / 2));
    }
  }

  private async simplifyDevice(): Promise<void> {
    for (const d of simplerDevices(this.cur.device)) {
      if (this.take(await this.attempt({ ...this.cur, device: d })) && simplerDevices(this.cur.device).length === 0) break;
    }
  }

  /** Each concurrent group run as plain ops in order (a race that shows without running at once is simpler). */
  private async ungroup(): Promise<void> {
    for (const [first] of groupSpans(this.cur)) {
      const g = this.cur.ops[first]?.group;
      if (g === undefined) continue;
      this.take(await this.attempt({ ...this.cur, ops: this.cur.ops.map((op) => (op.group === g ? withoutGroup(op) : op)) }));
    }
  }

  private async simplifyParams(): Promise<void> {
    await this.ungroup();
    await this.simplifyDevice();
    // one op at a time; the first simplification of an op that works is kept, then the op is
    // looked at again
    for (let i = 0; i < this.cur.ops.length; i++) {
      let changed = true;
      while (changed && i < this.cur.ops.length) {
        changed = false;
        for (const s of simplerOps(this.cur.ops[i]!)) {
          const ops = [...this.cur.ops];
          ops[i] = s;
          if (this.take(await this.attempt({ ...this.cur, ops }))) {
            changed = true;
            break;
          }
        }
      }
    }
    // again: ops moved to device 0 may let the device count drop
    await this.simplifyDevice();
  }

  /**
   * fast-check's shrinker on the generated value. It starts from the original program (its own
   * value space), so it competes with the ddmin result: the smaller one goes on.
   */
  private async fastCheckPass(original: Program, round: number): Promise<void> {
    const limit = this.opts.fastCheckRuns ?? 80;
    if (limit <= 0) return;
    const origin = generatedOrigin(original);
    if (!origin) {
      this.fastCheck = 'not-generated';
      return;
    }
    const gen = this.opts.profile ? { profile: this.opts.profile } : {};
    if (!sameProgram(generateProgram(origin.seed, origin.index, gen), original)) {
      this.say(`fast-check: seed ${origin.seed}, program ${origin.index} regenerates a different program (another generator version); pass skipped`);
      this.fastCheck = 'regenerated-differs';
      return;
    }
    const stats: PassStats = { pass: 'fast-check', round, runs: 0, accepted: 0, opsAfter: this.cur.ops.length };
    this.passes.push(stats);
    const runs0 = this.searchRuns;
    const c0 = this.accepted;
    let smallest: Program | undefined;
    let firstSeen = false;
    let firstDiffers = false;
    let exhausted = false;
    const prop = fc.asyncProperty(programArbitrary(gen), async (p: Program) => {
      if (!firstSeen) {
        firstSeen = true;
        // the first value must be the finding's program, or the shrinking is of something else
        if (!sameProgram(p, original)) {
          firstDiffers = true;
          return true;
        }
      }
      if (exhausted || this.searchRuns - runs0 >= limit) return true;
      let ok: Program | undefined;
      try {
        ok = await this.attempt(p);
      } catch (e) {
        if (!(e instanceof Exhausted)) throw e;
        exhausted = true;
        return true;
      }
      if (!ok) return true;
      if (!smallest || complexity(ok) < complexity(smallest)) smallest = ok;
      this.take(ok);
      return false; // a "counterexample": fast-check goes on shrinking from this value
    });
    // No interruptAfterTimeLimit: it would abandon a run still going on the guest. The budget is
    // checked before every attempt instead (Exhausted ends the pass).
    await fc.check(prop, { seed: mixSeed(origin.seed, origin.index), numRuns: 1 });
    stats.runs = this.searchRuns - runs0;
    stats.accepted = this.accepted - c0;
    stats.opsAfter = this.cur.ops.length;
    if (firstDiffers) {
      this.say("fast-check: its first value is not the finding's program; pass skipped");
      this.fastCheck = 'regenerated-differs';
      return;
    }
    this.say(`round ${round}, fast-check: ${stats.runs} runs, its smallest ${smallest ? `${smallest.ops.length} ops` : 'none'}${stats.accepted > 0 ? ' (taken)' : ''}`);
    this.fastCheck = stats.accepted > 0 ? 'shrunk' : 'no-smaller';
    if (exhausted) throw new Exhausted();
  }
}
