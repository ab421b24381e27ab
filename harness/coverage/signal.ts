/**
 * Rule coverage: which model rules, and which (rule, state feature) pairs, the ops of a run
 * fired, and how often. The rule of an op is the one the oracle matched against the kernel's
 * outcome (harness/oracle/check.ts); its features are the op's objects in the model's state
 * before it (harness/model/features.ts). The fuzz loop feeds programs that reach something new
 * into its corpus and biases generation toward what has fired least (harness/fuzz/corpus.ts).
 *
 * Other signals (kernel coverage from KCOV, where a kernel has it) come in as more keys of the
 * same kind through a SignalSource; none is built in yet.
 */
import { RULES } from '../model/index.js';

/** What one checked op contributed. */
export interface OpSignal {
  kind: string;
  rule: string;
  features: readonly string[];
}

/**
 * A second source of coverage keys for a run, e.g. KCOV PCs of drivers/misc/uacce/ and
 * drivers/iommu/ on a kernel built with CONFIG_KCOV (the kernels-from-source work). `keys` gets
 * the run's raw result and returns opaque keys ("kcov:<pc>"); they are counted and fed back
 * like rule pairs.
 */
export interface SignalSource<R> {
  readonly name: string;
  keys(run: R): readonly string[];
}

export const pairKey = (rule: string, feature: string): string => `${rule} @ ${feature}`;

export interface CoverageJson {
  rules: Record<string, number>;
  pairs: Record<string, number>;
  /** other signal sources' keys */
  extra: Record<string, number>;
  /** op kind -> rule -> count */
  byKind: Record<string, Record<string, number>>;
}

export interface NewCoverage {
  rules: string[];
  pairs: string[];
  extra: string[];
}

export class Coverage {
  readonly rules = new Map<string, number>();
  readonly pairs = new Map<string, number>();
  readonly extra = new Map<string, number>();
  readonly byKind = new Map<string, Map<string, number>>();

  static fromJSON(j: Partial<CoverageJson> | undefined): Coverage {
    const c = new Coverage();
    const load = (m: Map<string, number>, o: Record<string, number> | undefined) => {
      for (const [k, v] of Object.entries(o ?? {})) if (typeof v === 'number' && Number.isFinite(v) && v > 0) m.set(k, v);
    };
    load(c.rules, j?.rules);
    load(c.pairs, j?.pairs);
    load(c.extra, j?.extra);
    for (const [k, o] of Object.entries(j?.byKind ?? {})) {
      const m = new Map<string, number>();
      load(m, o);
      c.byKind.set(k, m);
    }
    return c;
  }

  toJSON(): CoverageJson {
    const obj = (m: Map<string, number>) => Object.fromEntries([...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)));
    return {
      rules: obj(this.rules),
      pairs: obj(this.pairs),
      extra: obj(this.extra),
      byKind: Object.fromEntries([...this.byKind.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([k, m]) => [k, obj(m)])),
    };
  }

  /** Count one run's signals; what it reached for the first time. */
  add(signals: readonly OpSignal[], extraKeys: readonly string[] = []): NewCoverage {
    const fresh: NewCoverage = { rules: [], pairs: [], extra: [] };
    const bump = (m: Map<string, number>, k: string, list: string[]) => {
      const n = m.get(k) ?? 0;
      if (n === 0) list.push(k);
      m.set(k, n + 1);
    };
    for (const s of signals) {
      bump(this.rules, s.rule, fresh.rules);
      for (const f of s.features) bump(this.pairs, pairKey(s.rule, f), fresh.pairs);
      let k = this.byKind.get(s.kind);
      if (k === undefined) this.byKind.set(s.kind, (k = new Map()));
      k.set(s.rule, (k.get(s.rule) ?? 0) + 1);
    }
    for (const k of extraKeys) bump(this.extra, k, fresh.extra);
    return fresh;
  }

  /** Rules of the model no op has fired, in RULES order. */
  neverReached(exclude: ReadonlySet<string> = new Set()): string[] {
    return Object.keys(RULES).filter((r) => !this.rules.has(r) && !exclude.has(r));
  }

  /**
   * How much an op kind's rules still want: the mean over the rules it may fire of
   * 1/sqrt(1 + count). Rules a kind may fire: those it fired, and the unreached ones its name
   * claims (RULES ids begin with the op, e.g. "mremap.grow"; "sysfs." for both sysfs ops).
   */
  want(kind: string): number {
    const mine = new Set<string>(this.byKind.get(kind)?.keys() ?? []);
    for (const r of Object.keys(RULES)) if (!this.rules.has(r) && ruleClaims(r, kind)) mine.add(r);
    if (mine.size === 0) return 0;
    let w = 0;
    for (const r of mine) w += 1 / Math.sqrt(1 + (this.rules.get(r) ?? 0));
    return w / mine.size;
  }
}

/** Does a rule id name this op kind (its prefix before the dot)? */
export function ruleClaims(rule: string, kind: string): boolean {
  const prefix = rule.slice(0, rule.indexOf('.'));
  if (prefix === kind) return true;
  if (prefix === 'sysfs') return kind === 'sysfs_read' || kind === 'sysfs_write';
  if (prefix === 'dev') return kind === 'remove' || kind === 'add';
  if (prefix === 'fd') return kind === 'close' || kind === 'dup' || kind === 'mmap' || kind === 'ioctl';
  return false;
}

/** The signals of a checked run: every op the model matched, with each rule it matched by. */
export function signalsOf(check: { ops: readonly { op: { op: string }; verdict: string; rules?: readonly string[]; features?: readonly string[] }[] }): OpSignal[] {
  const out: OpSignal[] = [];
  for (const o of check.ops) {
    if (o.verdict !== 'match') continue;
    for (const rule of o.rules ?? []) out.push({ kind: o.op.op, rule, features: o.features ?? [] });
  }
  return out;
}

/** One point of a run's coverage over time. */
export interface TimelinePoint {
  /** fuzzing time so far (resumed runs included) */
  ms: number;
  programs: number;
  rules: number;
  pairs: number;
}

/** Keep a timeline short: at most `max` points, thinned evenly, the last one kept. */
export function thinTimeline(t: TimelinePoint[], max = 400): TimelinePoint[] {
  if (t.length <= max) return t;
  const keep = t.filter((_, i) => i % 2 === 0);
  if (keep[keep.length - 1] !== t[t.length - 1]) keep.push(t[t.length - 1]!);
  return keep;
}
