/**
 * The summary of a night: per kernel, its bugs (one line each, every title kept), each marked
 *
 *   new          not known and none of its titles seen on this kernel series in an earlier night
 *   regressed    seen in an earlier night, but not in the last night that ran this series
 *   known        listed in the known-issue list of the series (through any of its titles)
 *   seen-before  seen in the last night that ran this series
 *
 * and the bugs of the last night that are not seen tonight: "fixed" when the kernel changed since
 * (another Debian version or release), else "not-seen" (the same kernel: fuzzing did not find
 * it tonight, which says nothing about a fix). Earlier nights are the summaries kept in a history directory
 * (<history>/nights/<night>.json); bugs match across nights by any shared title (in the current
 * title format: a history written before a title change still matches), so a night that groups
 * differently still recognises them. Written as summary.json, junit.xml and index.html
 * next to the night's findings; the exit status is 0 (no new bug), 1 (new bugs), 2 (the run
 * failed: a kernel could not be fetched or fuzzed, or a cell of the matrix is missing).
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Bug } from '../findings/bugs.js';
import { seriesOf } from '../findings/known.js';
import { currentDivergenceTitle } from '../oracle/check.js';
import { FindingStore } from '../findings/store.js';
import { UserError } from '../util/errors.js';
import { atomicWrite, atomicWriteJson, exists } from '../util/fsx.js';
import { cells as allCells } from './config.js';
import { renderHtml } from './html.js';
import { renderJunit } from './junit.js';
import { readNight, type CellResult, type NightRun, type ReproRecord } from './run.js';

export const SUMMARY_FORMAT = 'svadiff-nightly-summary';
export const SUMMARY_VERSION = 1;

export type BugStatus = 'new' | 'regressed' | 'known' | 'seen-before';

export interface SummaryBug {
  id: string;
  title: string;
  kind: Bug['kind'];
  status: BugStatus;
  /** titles it showed on this kernel tonight (reproduction-only titles included) */
  titles: string[];
  /** reports on this kernel tonight */
  count: number;
  known_note?: string;
  /** why its titles are one bug */
  why: string[];
  /** the earliest night it was seen on this series (absent when new) */
  first_night?: string;
  /** the last earlier night it was seen on this series */
  last_night?: string;
  /** files, relative to the night's directory */
  links: { finding: string; report?: string; reproducer?: string; program?: string };
  repro?: ReproRecord;
}

/** a bug of the last night not seen tonight */
export interface GoneBug {
  id: string;
  title: string;
  titles: string[];
  /** the night it was last seen */
  last_night: string;
  /** fixed: the kernel changed since that night; not-seen: the same kernel did not show it tonight */
  status: 'fixed' | 'not-seen';
}

export interface SummaryKernel {
  /** as configured, e.g. "debian:6.12" */
  spec: string;
  series: string;
  /** what it was tonight */
  exact_spec?: string;
  release?: string;
  version?: string;
  /** the release the last night of this series ran */
  previous_release?: string;
  /** the kernel version the last night of this series ran ("6.1.191"): Debian keeps a release name such as 6.1.0-57-amd64 over several versions */
  previous_version?: string;
  status: 'ok' | 'failed';
  errors: string[];
  cells: { name: string; seed: number; status: string; programs: number; checked_ops: number; elapsed_ms: number }[];
  programs: number;
  checked_ops: number;
  /** checked ops per second of fuzzing (boot time left out) */
  checked_ops_per_s: number;
  /** distinct titles tonight */
  titles: number;
  bugs: SummaryBug[];
  /** the last night's bugs not seen tonight */
  gone: GoneBug[];
  counts: Record<BugStatus | GoneBug['status'], number>;
}

export interface NightlySummary {
  format: typeof SUMMARY_FORMAT;
  version: typeof SUMMARY_VERSION;
  night: string;
  started: string;
  finished?: string;
  /** what the exit status says */
  result: 'no-new-bugs' | 'new-bugs' | 'failed';
  exit_code: 0 | 1 | 2;
  /** earlier nights compared with, oldest first */
  compared_with: string[];
  kernels: SummaryKernel[];
  totals: Record<BugStatus | GoneBug['status'] | 'bugs' | 'titles', number>;
  config: NightRun['config'];
}

export function historyNightsDir(history: string): string {
  return join(history, 'nights');
}

/** The summaries of earlier nights, oldest first (unreadable files are skipped with a warning). */
export async function loadHistory(history: string | undefined, onProblem: (m: string) => void = () => {}): Promise<NightlySummary[]> {
  if (!history) return [];
  let names: string[];
  try {
    names = await fs.readdir(historyNightsDir(history));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new UserError(`cannot read the history directory ${history}: ${(e as Error).message}`);
  }
  const out: NightlySummary[] = [];
  for (const n of names.filter((x) => x.endsWith('.json')).sort()) {
    try {
      const s = JSON.parse(await fs.readFile(join(historyNightsDir(history), n), 'utf8')) as NightlySummary;
      if (s.format !== SUMMARY_FORMAT || !Array.isArray(s.kernels)) throw new Error(`not a ${SUMMARY_FORMAT} file`);
      out.push(s);
    } catch (e) {
      onProblem(`${join(historyNightsDir(history), n)}: ${(e as Error).message}; left out`);
    }
  }
  return out.sort((a, b) => a.night.localeCompare(b.night));
}

/** What earlier nights saw on one series: every title, when, and the last night's bugs. */
interface SeriesPast {
  /** title → nights it was seen in, oldest first */
  titles: Map<string, string[]>;
  last?: { night: string; release?: string; version?: string; bugs: SummaryBug[] };
}

function pastOf(series: string, history: readonly NightlySummary[]): SeriesPast {
  const past: SeriesPast = { titles: new Map() };
  for (const n of history) {
    for (const k of n.kernels) {
      if (k.series !== series || k.status !== 'ok') continue;
      for (const b of k.bugs) {
        for (const title of b.titles) {
          const t = currentDivergenceTitle(title);
          past.titles.set(t, [...(past.titles.get(t) ?? []), n.night]);
        }
      }
      past.last = { night: n.night, ...(k.release ? { release: k.release } : {}), ...(k.version ? { version: k.version } : {}), bugs: k.bugs };
    }
  }
  return past;
}

/** The status of a bug on a series, given earlier nights (see the top of this file). */
export function bugStatus(tonight: readonly string[], known: boolean, past: SeriesPast): { status: BugStatus; first_night?: string; last_night?: string } {
  const titles = tonight.map(currentDivergenceTitle);
  const nights = titles.flatMap((t) => past.titles.get(t) ?? []).sort();
  const first = nights[0];
  const last = nights[nights.length - 1];
  const inLast = past.last !== undefined && titles.some((t) => past.last!.bugs.some((b) => b.titles.some((u) => currentDivergenceTitle(u) === t)));
  const when = { ...(first ? { first_night: first } : {}), ...(last ? { last_night: last } : {}) };
  if (!first && !known) return { status: 'new' };
  if (first && past.last && !inLast) return { status: 'regressed', ...when };
  if (known) return { status: 'known', ...when };
  return { status: 'seen-before', ...when };
}

/** Work out the summary of the night in `out` against the nights in `history`. */
export async function summarizeNight(out: string, history: string | undefined, onProblem: (m: string) => void = () => {}): Promise<NightlySummary> {
  const night = await readNight(out);
  if (!night) throw new UserError(`${out} has no night.json: give the --out directory of a svadiff nightly run (or of svadiff merge)`);
  const store = await FindingStore.open(out, { onProblem });
  const earlier = (await loadHistory(history, onProblem)).filter((n) => n.night < night.night);
  const expected = allCells({ kernels: night.config.kernels, seeds: night.config.seeds });
  const bugs = store.bugs();
  const findings = new Map(store.list().map((f) => [f.id, f]));

  const kernels: SummaryKernel[] = [];
  for (const spec of night.config.kernels) {
    const cells = night.cells.filter((c) => c.kernel === spec);
    const missing = expected.filter((c) => c.kernel === spec && !cells.some((d) => d.name === c.name));
    const releases = [...new Set(cells.map((c) => c.release).filter((r): r is string => r !== undefined))];
    const ran = cells.find((c) => c.release !== undefined);
    const series = seriesOf(ran?.release ?? spec) ?? spec;
    const errors = [
      ...cells.filter((c) => c.status !== 'ok').map((c) => `${c.name}: ${c.status === 'interrupted' ? 'interrupted' : (c.error ?? 'failed')}`),
      ...missing.map((c) => `${c.name}: not run (a shard missing from the merge?)`),
    ];
    const past = pastOf(series, earlier);
    const fuzzMs = cells.reduce((s, c) => s + Math.max(0, c.elapsed_ms - c.boot_ms), 0);
    const checked = cells.reduce((s, c) => s + c.checked_ops, 0);
    const mineBugs: SummaryBug[] = [];
    const tonightTitles = new Set<string>();
    for (const b of bugs) {
      const onK = releases.filter((r) => b.kernels[r]);
      if (onK.length === 0) continue;
      const titles = b.titles.filter((t) => (t.finding ? onK.some((r) => findings.get(t.finding!)?.kernels[r]) : true)).map((t) => t.title);
      for (const t of titles) tonightTitles.add(currentDivergenceTitle(t));
      const known = onK.every((r) => b.kernels[r]!.known !== undefined);
      const st = bugStatus(titles, known, past);
      const note = onK.map((r) => b.kernels[r]!.known).find((x) => x !== undefined);
      const dir = join('findings', b.id);
      const has = async (f: string) => ((await exists(join(out, dir, f))) ? join(dir, f) : undefined);
      const links: SummaryBug['links'] = { finding: join(dir, 'finding.json') };
      const report = await has('report.txt');
      const reproducer = await has('repro.c');
      const program = (await has('program.min.json')) ?? (await has('program.json'));
      if (report) links.report = report;
      if (reproducer) links.reproducer = reproducer;
      if (program) links.program = program;
      const repro = night.repros.find((r) => r.bug === b.id || b.findings.includes(r.finding));
      mineBugs.push({
        id: b.id,
        title: b.title,
        kind: b.kind,
        ...st,
        titles,
        count: onK.reduce((s, r) => s + b.kernels[r]!.count, 0),
        ...(note ? { known_note: note } : {}),
        why: b.why,
        links,
        ...(repro ? { repro } : {}),
      });
    }
    // a kernel that did not run tonight fixed nothing; one that did not change fixed nothing either
    const changed = past.last !== undefined && (past.last.release !== ran?.release || past.last.version !== ran?.version);
    const gone: GoneBug[] = (errors.length === 0 && cells.length > 0 ? (past.last?.bugs ?? []) : [])
      .filter((b) => !b.titles.some((t) => tonightTitles.has(currentDivergenceTitle(t))))
      .map((b) => ({ id: b.id, title: b.title, titles: b.titles, last_night: past.last!.night, status: changed ? 'fixed' : 'not-seen' }));
    const counts = { new: 0, regressed: 0, known: 0, 'seen-before': 0, fixed: 0, 'not-seen': 0 };
    for (const g of gone) counts[g.status]++;
    for (const b of mineBugs) counts[b.status]++;
    kernels.push({
      spec,
      series,
      ...(ran?.exact_spec ? { exact_spec: ran.exact_spec } : {}),
      ...(ran?.release ? { release: ran.release } : {}),
      ...(ran?.version ? { version: ran.version } : {}),
      ...(past.last?.release ? { previous_release: past.last.release } : {}),
      ...(past.last?.version ? { previous_version: past.last.version } : {}),
      status: errors.length === 0 && cells.length > 0 ? 'ok' : 'failed',
      errors,
      cells: cells.map((c: CellResult) => ({ name: c.name, seed: c.seed, status: c.status, programs: c.programs, checked_ops: c.checked_ops, elapsed_ms: c.elapsed_ms })),
      programs: cells.reduce((s, c) => s + c.programs, 0),
      checked_ops: checked,
      checked_ops_per_s: fuzzMs > 0 ? Math.round((checked / (fuzzMs / 1000)) * 10) / 10 : 0,
      titles: tonightTitles.size,
      bugs: mineBugs,
      gone,
      counts,
    });
  }
  const totals = { bugs: 0, titles: 0, new: 0, regressed: 0, known: 0, 'seen-before': 0, fixed: 0, 'not-seen': 0 };
  for (const k of kernels) {
    totals.bugs += k.bugs.length;
    totals.titles += k.titles;
    for (const s of ['new', 'regressed', 'known', 'seen-before', 'fixed', 'not-seen'] as const) totals[s] += k.counts[s];
  }
  const failed = kernels.some((k) => k.status === 'failed');
  const result = failed ? 'failed' : totals.new > 0 ? 'new-bugs' : 'no-new-bugs';
  return {
    format: SUMMARY_FORMAT,
    version: SUMMARY_VERSION,
    night: night.night,
    started: night.started,
    ...(night.finished ? { finished: night.finished } : {}),
    result,
    exit_code: result === 'failed' ? 2 : result === 'new-bugs' ? 1 : 0,
    compared_with: earlier.map((n) => n.night),
    kernels,
    totals,
    config: night.config,
  };
}

/** Write summary.json, junit.xml and index.html next to the night's findings, and the summary into the history. */
export async function writeSummary(out: string, history: string | undefined, s: NightlySummary): Promise<void> {
  const earlier = (await loadHistory(history)).filter((n) => n.night < s.night);
  await atomicWriteJson(join(out, 'summary.json'), s);
  await atomicWrite(join(out, 'junit.xml'), renderJunit(s));
  await atomicWrite(join(out, 'index.html'), renderHtml(s, earlier));
  if (history) await atomicWriteJson(join(historyNightsDir(history), `${s.night}.json`), s);
}

/** The bugs of a night that are new (summary.ts's rule), for reproduction: lead finding and a kernel it was seen on. */
export async function newBugsOf(store: FindingStore, night: NightRun, history: string | undefined): Promise<{ bug: string; finding: string; release: string }[]> {
  const earlier = (await loadHistory(history)).filter((n) => n.night < night.night);
  const out: { bug: string; finding: string; release: string }[] = [];
  const releases = [...new Set(night.cells.map((c) => c.release).filter((r): r is string => r !== undefined))];
  for (const b of store.bugs()) {
    for (const r of releases) {
      const k = b.kernels[r];
      if (!k) continue;
      const st = bugStatus(
        b.titles.map((t) => t.title),
        k.known !== undefined,
        pastOf(seriesOf(r) ?? r, earlier),
      );
      if (st.status === 'new') {
        out.push({ bug: b.id, finding: b.id, release: r });
        break;
      }
    }
  }
  return out;
}
