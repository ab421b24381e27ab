/**
 * The pure part of `svadiff bisect`: what a step's runs mean, which Debian version to test next,
 * and how sure the answer is. No processes here (harness/bisect/run.ts drives the guests).
 */

export type Verdict = 'good' | 'bad' | 'skip';

/** One tested kernel: a Debian version, or a commit of a git range. */
export interface BisectStep {
  /** 1-based, in the order tested */
  n: number;
  role: 'bad end' | 'good end' | 'step';
  /** "debian:6.12.111" or a full commit id */
  id: string;
  /** commit subject (git) */
  subject?: string;
  /** how the kernel was made: fetched (Debian), only uacce.ko rebuilt, or the kernel rebuilt */
  build: 'fetch' | 'module' | 'kernel';
  verdict: Verdict;
  reproduced: number;
  runs: number;
  /** reproduced in some runs but not all */
  flaky: boolean;
  /** why it was skipped (did not build or boot) */
  note?: string;
  /** distinct titles the runs showed */
  titles: string[];
  build_ms: number;
  test_ms: number;
  ms: number;
}

/** A step is bad when the title reproduced in at least `threshold` of its runs; flaky when 0 < k < N. */
export function verdictOf(reproduced: number, runs: number, threshold = 1): { verdict: 'good' | 'bad'; flaky: boolean } {
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > runs) throw new Error(`threshold ${threshold} is not in 1..${runs}`);
  return { verdict: reproduced >= threshold ? 'bad' : 'good', flaky: reproduced > 0 && reproduced < runs };
}

/** "bad (3/3)", "bad, flaky (1/3)", "good (0/3)", "skip (did not build: …)" */
export function verdictText(s: Pick<BisectStep, 'verdict' | 'reproduced' | 'runs' | 'flaky' | 'note'>): string {
  if (s.verdict === 'skip') return `skip${s.note ? ` (${s.note})` : ''}`;
  const flaky = s.flaky ? (s.verdict === 'bad' ? ', flaky' : ' (flaky: shown below the threshold)') : '';
  return `${s.verdict}${flaky} (${s.reproduced}/${s.runs})`;
}

/**
 * Binary search over an ordered list (oldest first) whose first element is known good and last
 * known bad. Skipped entries are avoided; when only skipped entries separate the last good from
 * the first bad, the answer is the range.
 */
export class ListBisect {
  private lo: number;
  private hi: number;
  private readonly skipped = new Set<number>();

  constructor(readonly items: readonly string[]) {
    if (items.length < 2) throw new Error('bisect needs a good and a bad end');
    this.lo = 0;
    this.hi = items.length - 1;
  }

  /** The index to test next, or undefined when done. */
  next(): number | undefined {
    const open: number[] = [];
    for (let i = this.lo + 1; i < this.hi; i++) if (!this.skipped.has(i)) open.push(i);
    if (open.length === 0) return undefined;
    const mid = (this.lo + this.hi) / 2;
    // nearest to the middle; ties go to the older one
    return open.reduce((best, i) => (Math.abs(i - mid) < Math.abs(best - mid) ? i : best));
  }

  record(index: number, verdict: Verdict): void {
    if (index <= this.lo || index >= this.hi) throw new Error(`index ${index} is outside the open range (${this.lo}, ${this.hi})`);
    if (verdict === 'skip') this.skipped.add(index);
    else if (verdict === 'good') this.lo = index;
    else this.hi = index;
  }

  /** Steps left in the worst case (for messages). */
  stepsLeft(): number {
    const n = this.hi - this.lo - 1 - [...this.skipped].filter((i) => i > this.lo && i < this.hi).length;
    return n <= 0 ? 0 : Math.ceil(Math.log2(n + 1));
  }

  result(): { lastGood: string; firstBad: string; between: string[] } {
    const between: string[] = [];
    for (let i = this.lo + 1; i < this.hi; i++) between.push(this.items[i]!);
    return { lastGood: this.items[this.lo]!, firstBad: this.items[this.hi]!, between };
  }
}

export interface Confidence {
  level: 'high' | 'medium' | 'low';
  statement: string;
}

/**
 * How sure a bisection is, from its steps: the per-run reproduction rate seen on bad steps, and
 * what that rate means for each good verdict (all N runs missing the bug), plus flaky and
 * skipped steps. Plain numbers, no rounding of a flaky step into a clean one.
 */
export function confidenceOf(steps: readonly BisectStep[], runs: number): Confidence {
  const bad = steps.filter((s) => s.verdict === 'bad');
  const good = steps.filter((s) => s.verdict === 'good');
  const flaky = steps.filter((s) => s.flaky);
  const skipped = steps.filter((s) => s.verdict === 'skip');
  const hits = bad.reduce((a, s) => a + s.reproduced, 0);
  const tries = bad.reduce((a, s) => a + s.runs, 0);
  const parts: string[] = [];
  let level: Confidence['level'] = 'high';
  if (tries === 0) {
    return { level: 'low', statement: 'no step reproduced the finding, so nothing says how reliably it shows' };
  }
  const p = hits / tries;
  parts.push(`bad steps reproduced it in ${hits} of ${tries} runs (${(100 * p).toFixed(0)}% per run)`);
  if (good.length > 0) {
    const missOne = Math.pow(1 - p, runs);
    const missAny = 1 - Math.pow(1 - missOne, good.length);
    if (p === 1) {
      parts.push(`each of the ${good.length} good step${good.length === 1 ? '' : 's'} showed it in none of ${runs} runs, against ${hits}/${tries} on bad steps`);
    } else {
      parts.push(
        `at that rate a bad kernel passes ${runs} runs with probability ${fmtProb(missOne)}, so the ${good.length} good verdict${good.length === 1 ? '' : 's'} ${good.length === 1 ? 'is' : 'are'} all right with probability ${fmtProb(1 - missAny)}`,
      );
    }
    if (missAny > 0.1) level = 'low';
    else if (missAny > 0.01) level = 'medium';
  }
  if (flaky.length > 0) {
    parts.push(`flaky: ${flaky.map((s) => `${shortId(s.id)} ${s.reproduced}/${s.runs}`).join(', ')}`);
    if (level === 'high') level = 'medium';
  }
  if (skipped.length > 0) {
    parts.push(`skipped (not testable): ${skipped.map((s) => shortId(s.id)).join(', ')}`);
    if (level === 'high') level = 'medium';
  }
  return { level, statement: `${level}: ${parts.join('; ')}` };
}

function fmtProb(x: number): string {
  if (x === 0) return '0';
  if (x >= 0.001) return x.toFixed(3);
  return x.toExponential(1);
}

export function shortId(id: string): string {
  return /^[0-9a-f]{40,64}$/.test(id) ? id.slice(0, 12) : id;
}

/** The Fixes: line of a commit, as the kernel's submitting-patches.rst asks (12 characters, subject in quotes). */
export function fixesLine(commit: string, subject: string): string {
  return `Fixes: ${commit.slice(0, 12)} ("${subject}")`;
}

/** Do all of these paths lie under one of the prefixes (a directory ends with /)? */
export function onlyUnder(files: readonly string[], prefixes: readonly string[]): { ok: boolean; outside: string[] } {
  const under = (f: string) => prefixes.some((p) => (p.endsWith('/') ? f.startsWith(p) : f === p || f.startsWith(`${p}/`)));
  const outside = files.filter((f) => !under(f));
  return { ok: outside.length === 0, outside };
}

/** What a module-only step rebuilds from: uacce's directory and the headers only uacce and its users include. */
export const UACCE_PATHS: readonly string[] = ['drivers/misc/uacce/', 'include/linux/uacce.h', 'include/uapi/misc/uacce/'];

/**
 * The answer of a Debian bisection whose good end already reproduces. At the oldest build svadiff
 * can fetch, the bug predates everything testable: say that, and name the older builds the
 * archive lists but svadiff cannot use, instead of inventing a boundary. Versions oldest first.
 */
export function goodEndReproducesText(o: {
  series: string;
  good: string;
  bad: string;
  reproduced: number;
  runs: number;
  fetchable: readonly string[];
  /** builds older than the oldest fetchable one that lack packages svadiff needs */
  unusableOlder: readonly string[];
}): string {
  const oldest = o.fetchable[0];
  if (o.good !== oldest) {
    return `--good debian:${o.good} already reproduces it (${o.reproduced} of ${o.runs}); give an older --good (svadiff can fetch ${o.series} builds from ${oldest ?? 'none'})`;
  }
  const u = o.unusableOlder;
  const older =
    u.length === 0
      ? `the oldest ${o.series} build Debian's archive has`
      : `the oldest ${o.series} build svadiff can fetch (the archive lists ${u.length} older: ${u.length === 1 ? u[0] : `${u[0]} to ${u[u.length - 1]}`}, without packages svadiff needs; svadiff kernels list --available)`;
  return `present across the whole available range: it reproduces on debian:${o.good} (${o.reproduced} of ${o.runs}), ${older}, and on debian:${o.bad}; the first bad version is older than debian:${o.good}, and no boundary can be found in the archive`;
}
