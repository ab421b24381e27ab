/**
 * What a fix check concludes, as pure functions of what the guests showed: per program, the
 * titles the unpatched and the patched uacce gave (each run's findings, unioned over its runs);
 * per kernel, what the patch fixed, left and introduced; over all kernels, whether it fixes what
 * it claims and adds nothing (the exit status of `svadiff fixcheck`).
 */
import { sameCrash } from '../oracle/report.js';
import { isModelTitle } from '../repro/replay.js';

export type CaseSource = 'regress' | 'seed' | 'finding' | 'fuzz';

/** What a run showed of one title: where and how it diverged, or the start of the kernel's report. */
export interface CaseEvidence {
  title: string;
  kind: 'divergence' | 'crash' | 'hang';
  opIndex?: number;
  expected?: string;
  observed?: string;
  excerpt?: string;
}

/** One program, run on both builds of one kernel. */
export interface CaseResult {
  /** a regress entry's name, a seed's file name, a finding's id */
  name: string;
  source: CaseSource;
  /** the title the program is recorded with (regress entries, findings), if any */
  recorded?: string;
  /** titles each build gave, over all its runs (empty: no finding) */
  unpatched: string[];
  patched: string[];
  /** runs per build */
  runs: number;
  /** what each title looked like (for reports) */
  evidence?: { unpatched: CaseEvidence[]; patched: CaseEvidence[] };
  /** titles only one build gave, run again on both builds: how often each showed */
  confirm?: ConfirmRuns[];
}

/** A title only one build gave, and how often it showed when the program ran again on each build. */
export interface ConfirmRuns {
  title: string;
  runs: number;
  patched: number;
  unpatched: number;
}

/**
 * A title only the patched build showed: introduced when it shows again with the patch (or was
 * not run again), old when the unpatched build shows it too when run again, flaky when neither
 * build shows it again (a one-off, e.g. a timeout of a guest on an overloaded host).
 */
export function introducedVerdict(c: ConfirmRuns | undefined): 'introduced' | 'also-unpatched' | 'flaky' {
  if (!c) return 'introduced';
  if (c.unpatched > 0) return 'also-unpatched';
  return c.patched > 0 ? 'introduced' : 'flaky';
}

/** A title only the unpatched build gave: fixed when it shows again without the patch only (or was not run again). */
export function fixedVerdict(c: ConfirmRuns | undefined): 'fixed' | 'also-patched' | 'flaky' {
  if (!c) return 'fixed';
  if (c.patched > 0) return 'also-patched';
  return c.unpatched > 0 ? 'fixed' : 'flaky';
}

export type CaseVerdict = 'fixed' | 'left' | 'introduced' | 'fixed+introduced' | 'clean';

export interface CaseComparison {
  fixed: string[];
  left: string[];
  introduced: string[];
  verdict: CaseVerdict;
}

/** Does title a name the same finding as b (equal; crashes also the oracle's looser sameCrash)? */
export function sameTitle(a: string, b: string): boolean {
  if (a === b) return true;
  return !isModelTitle(a) && !isModelTitle(b) && sameCrash(a, b);
}

const has = (list: readonly string[], t: string) => list.some((x) => sameTitle(x, t));

/** Titles the patch took away (fixed), kept (left) and brought (introduced) on one program. */
export function compareCase(unpatched: readonly string[], patched: readonly string[]): CaseComparison {
  const fixed = unpatched.filter((t) => !has(patched, t));
  const left = unpatched.filter((t) => has(patched, t));
  const introduced = patched.filter((t) => !has(unpatched, t));
  const verdict: CaseVerdict =
    introduced.length > 0 ? (fixed.length > 0 ? 'fixed+introduced' : 'introduced') : fixed.length > 0 ? 'fixed' : left.length > 0 ? 'left' : 'clean';
  return { fixed: dedupe(fixed), left: dedupe(left), introduced: dedupe(introduced), verdict };
}

function dedupe(list: readonly string[]): string[] {
  const out: string[] = [];
  for (const t of list) if (!out.includes(t)) out.push(t);
  return out;
}

/** A title fuzzing found with the patch only, and what replaying its program on both builds showed. */
export interface FuzzOnly {
  title: string;
  /** the finding's id in the patched run's store */
  finding: string;
  /** replay of its program: titles per build (undefined: not replayed) */
  replay?: { unpatched: string[]; patched: string[] };
}

export interface FuzzResult {
  timeMs: number;
  seed: number;
  /** programs each build ran (the unpatched build runs as many as the patched one did) */
  programs: { patched: number; unpatched: number };
  /** titles each build's fuzzing found */
  patched: string[];
  unpatched: string[];
  /** titles only the patched build found, each replayed on both */
  patchedOnly: FuzzOnly[];
}

/** How a title fuzzing found only with the patch counts: as introducedVerdict, from the replay of its program. */
export function fuzzOnlyVerdict(f: FuzzOnly): 'introduced' | 'also-unpatched' | 'flaky' {
  if (!f.replay) return 'introduced';
  return introducedVerdict({ title: f.title, runs: 1, patched: has(f.replay.patched, f.title) ? 1 : 0, unpatched: has(f.replay.unpatched, f.title) ? 1 : 0 });
}

export interface KernelCheck {
  spec: string;
  release: string;
  /** where each build's uacce came from (UacceOrigin.text) */
  uacce: { unpatched: string; patched: string };
  cases: CaseResult[];
  fuzz?: FuzzResult;
  /** milliseconds: building the patched uacce.ko, replaying (both builds), fuzzing (both), all */
  times: { buildMs: number; replayMs: number; fuzzMs: number; totalMs: number };
}

export interface KernelSummary {
  spec: string;
  fixed: string[];
  left: string[];
  introduced: string[];
  /** titles one build showed once and neither showed again (not counted) */
  flaky: string[];
}

/** What the patch fixed, left and introduced on one kernel (titles, each once). */
export function summarizeKernel(k: KernelCheck): KernelSummary {
  const fixed: string[] = [];
  const left: string[] = [];
  const introduced: string[] = [];
  const flaky: string[] = [];
  const add = (list: string[], t: string) => {
    if (!list.includes(t)) list.push(t);
  };
  for (const c of k.cases) {
    const cmp = compareCase(c.unpatched, c.patched);
    for (const t of cmp.fixed) {
      const v = fixedVerdict(c.confirm?.find((x) => x.title === t));
      add(v === 'fixed' ? fixed : v === 'flaky' ? flaky : left, t);
    }
    cmp.left.forEach((t) => add(left, t));
    for (const t of cmp.introduced) {
      const v = introducedVerdict(c.confirm?.find((x) => x.title === t));
      add(v === 'introduced' ? introduced : v === 'flaky' ? flaky : left, t);
    }
  }
  for (const f of k.fuzz?.patchedOnly ?? []) {
    const v = fuzzOnlyVerdict(f);
    if (v === 'introduced') add(introduced, f.title);
    else if (v === 'flaky') add(flaky, f.title);
  }
  // a title the patch fixed on one program but that another still shows is left, not fixed
  return { spec: k.spec, fixed: fixed.filter((t) => !has(left, t)), left, introduced, flaky: flaky.filter((t) => !has(introduced, t) && !has(fixed, t) && !has(left, t)) };
}

/** A claimed fix: a regress entry's name (its title) or a title. */
export interface Claim {
  name: string;
  title: string;
}

export interface ClaimStatus extends Claim {
  /** kernels where the unpatched build showed it */
  shownOn: string[];
  /** of those, kernels where the patched build still shows it */
  leftOn: string[];
  ok: boolean;
}

export interface FixcheckVerdict {
  ok: boolean;
  claims: ClaimStatus[];
  /** one line per reason it failed (empty when ok) */
  reasons: string[];
}

/**
 * The verdict: every claim shown by the unpatched build on some kernel and fixed on every kernel
 * that showed it (no claims: at least one title fixed somewhere), and nothing introduced on any
 * kernel. Flaky titles (shown once with the patch, by neither build again) are listed, not counted.
 */
export function fixcheckVerdict(kernels: readonly KernelCheck[], claims: readonly Claim[]): FixcheckVerdict {
  const sums = kernels.map(summarizeKernel);
  const reasons: string[] = [];
  const statuses: ClaimStatus[] = claims.map((c) => {
    const shownOn = sums.filter((s) => has(s.fixed, c.title) || has(s.left, c.title)).map((s) => s.spec);
    const leftOn = sums.filter((s) => has(s.left, c.title)).map((s) => s.spec);
    const ok = shownOn.length > 0 && leftOn.length === 0;
    if (shownOn.length === 0) reasons.push(`claimed ${c.name}: the unpatched build did not show "${c.title}" on any kernel checked, so the fix is not shown`);
    else if (leftOn.length > 0) reasons.push(`claimed ${c.name}: "${c.title}" is left on ${leftOn.join(', ')}`);
    return { ...c, shownOn, leftOn, ok };
  });
  if (claims.length === 0 && sums.every((s) => s.fixed.length === 0)) reasons.push('the patch fixes nothing the unpatched build showed');
  for (const s of sums) {
    for (const t of s.introduced) reasons.push(`introduced on ${s.spec}: ${t}`);
  }
  return { ok: reasons.length === 0, claims: statuses, reasons };
}

// ---------------------------------------------------------------------------------------------
// The table

function fmtSecs(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

const cut = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** The side-by-side table of one kernel: one line per program, then fuzzing, the summary and the times. */
export function renderKernel(k: KernelCheck, width = 60): string[] {
  const L: string[] = [];
  L.push(`${k.spec} (${k.release})`);
  L.push(`  unpatched: ${k.uacce.unpatched}`);
  L.push(`  patched:   ${k.uacce.patched}`);
  const nameW = Math.min(44, Math.max(8, ...k.cases.map((c) => c.name.length)));
  L.push(`  ${'program'.padEnd(nameW)}  ${'unpatched'.padEnd(width)}  ${'patched'.padEnd(width)}  verdict`);
  for (const c of k.cases) {
    const cmp = compareCase(c.unpatched, c.patched);
    const rows = Math.max(1, c.unpatched.length, c.patched.length);
    for (let i = 0; i < rows; i++) {
      const u = c.unpatched[i] ?? (i === 0 ? '-' : '');
      const p = c.patched[i] ?? (i === 0 ? '-' : '');
      L.push(`  ${(i === 0 ? cut(c.name, nameW) : '').padEnd(nameW)}  ${cut(u, width).padEnd(width)}  ${cut(p, width).padEnd(width)}  ${i === 0 ? cmp.verdict : ''}`.trimEnd());
    }
  }
  if (k.fuzz) {
    const f = k.fuzz;
    const same = Math.min(f.programs.patched, f.programs.unpatched);
    L.push(`  fuzzing ${fmtSecs(f.timeMs)} (seed ${f.seed}): ${f.programs.patched} programs patched, ${f.programs.unpatched} unpatched (the first ${same} of one stream on both)`);
    L.push(`    titles unpatched: ${f.unpatched.length ? f.unpatched.join('; ') : 'none'}`);
    L.push(`    titles patched:   ${f.patched.length ? f.patched.join('; ') : 'none'}`);
    for (const o of f.patchedOnly) {
      const r = o.replay ? `replayed: unpatched ${o.replay.unpatched.join('; ') || 'nothing'}, patched ${o.replay.patched.join('; ') || 'nothing'}` : 'not replayed';
      L.push(`    only patched: ${o.title} (${r}) -> ${fuzzOnlyVerdict(o)}`);
    }
  }
  const s = summarizeKernel(k);
  L.push(`  fixed ${s.fixed.length}, left ${s.left.length}, introduced ${s.introduced.length}${s.flaky.length ? `, flaky ${s.flaky.length} (not counted)` : ''}`);
  for (const c of k.cases) {
    for (const r of c.confirm ?? []) {
      const v = has(c.patched, r.title) ? introducedVerdict(r) : fixedVerdict(r);
      L.push(`    run again (${c.name}): ${r.title}: patched ${r.patched}/${r.runs}, unpatched ${r.unpatched}/${r.runs} -> ${v}`);
    }
  }
  for (const [what, list] of [['fixed', s.fixed], ['left', s.left], ['introduced', s.introduced], ['flaky', s.flaky]] as const) {
    for (const t of list) L.push(`    ${what}: ${t}`);
  }
  L.push(`  time: ${fmtSecs(k.times.totalMs)} (uacce.ko build ${fmtSecs(k.times.buildMs)}, replays ${fmtSecs(k.times.replayMs)}, fuzzing ${fmtSecs(k.times.fuzzMs)})`);
  return L;
}

/** The whole report: every kernel's table, the claims, the verdict. */
export function renderFixcheck(patchName: string, kernels: readonly KernelCheck[], v: FixcheckVerdict): string {
  const L: string[] = [`fixcheck of ${patchName}`, ''];
  for (const k of kernels) L.push(...renderKernel(k), '');
  for (const c of v.claims) {
    L.push(`claim ${c.name} (${c.title}): ${c.ok ? 'fixed' : 'NOT fixed'}${c.shownOn.length ? `; shown unpatched on ${c.shownOn.join(', ')}` : '; not shown unpatched'}${c.leftOn.length ? `; left on ${c.leftOn.join(', ')}` : ''}`);
  }
  L.push(v.ok ? 'verdict: PASS (fixes what it claims, adds nothing)' : 'verdict: FAIL');
  for (const r of v.reasons) L.push(`  - ${r}`);
  return L.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// A finding's report

/**
 * What a fix check says about one finding (by its id, when the check ran the finding's program,
 * or by its title, when the patch claims it), for report.txt; undefined when it does not cover it.
 */
export function fixCheckForFinding(
  check: { patch: { name: string }; claims: readonly Claim[]; kernels: readonly KernelCheck[]; verdict: { ok: boolean } },
  finding: { id: string; title: string },
): { patch: string; ok: boolean; kernels: { release: string; status: 'fixed' | 'left' | 'not shown'; introduced: string[] }[] } | undefined {
  const claimed = check.claims.some((c) => sameTitle(c.title, finding.title));
  const ran = check.kernels.some((k) => k.cases.some((c) => c.name === finding.id));
  if (!claimed && !ran) return undefined;
  return {
    patch: check.patch.name,
    ok: check.verdict.ok,
    kernels: check.kernels.map((k) => {
      const s = summarizeKernel(k);
      const status = has(s.fixed, finding.title) ? 'fixed' : has(s.left, finding.title) ? 'left' : 'not shown';
      return { release: k.release, status, introduced: s.introduced };
    }),
  };
}
