/**
 * The findings store: every divergence, crash and hang a run finds, deduplicated by title, in
 *
 *   <outDir>/findings/<id>/finding.json   what it is, where and how often it was seen
 *   <outDir>/findings/<id>/program.json   the program that found it (the first one; see keepShortest)
 *   <outDir>/findings/<id>/console.log    the guest console of that run (bounded, control characters removed)
 *   <outDir>/findings/<id>/dmesg.txt      the kernel report's excerpt
 *   <outDir>/findings/<id>/preceding.json crashes and hangs: the programs the guest ran since boot
 *                                         before program.json (a svadiff-program-log, oldest first)
 *
 * Every file is written atomically (util/fsx atomicWrite) and finding.json last, so a finding
 * directory is complete once its finding.json exists. Opening an existing outDir resumes its
 * counts; files that cannot be read are reported and skipped, never fatal.
 *
 * Divergence titles once carried the values an ok read ("got ok(0x0)", "got ok()"), which split
 * one divergence into several findings. Opening a directory written then brings its findings to
 * the current titles (oracle/check.ts currentDivergenceTitle): a finding whose title changes is
 * renamed to its new id, or, when that id is already a finding, merged into it (counts, kernels
 * and dates added up; the kept program is the existing finding's) and its directory moved to
 * findings/.merged/<old id>/, kept for reference. The old ids are listed in former_ids.
 *
 * Findings are grouped into bugs (findings/bugs.ts): titles of one root cause, on evidence the
 * store keeps in <outDir>/bugs.json (with the bugs worked out from it) or finds in the findings
 * themselves (slab objects) and in the known-issue lists. Every finding.json says which bug it
 * is part of, with every title of that bug and why ("bug"); a finding is known on a kernel when
 * any title of its bug is listed for that kernel's series.
 *
 * Counts are kept per run ("runs": one entry per fuzzing run and kernel release): the totals
 * and first/last seen are sums and extremes over them, so that stores written by shards of one
 * matrix merge into one (merge.ts) without counting a run twice, however often it is merged.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { currentDivergenceTitle } from '../oracle/check.js';
import { formatProgram } from '../program/parse.js';
import type { Program } from '../program/types.js';
import { parseReports, type ReportKind } from '../oracle/report.js';
import { errorMessage } from '../util/errors.js';
import { atomicWrite, atomicWriteJson, exists, sha256 } from '../util/fsx.js';
import { warn } from '../util/log.js';
import { stripControl } from '../util/sanitize.js';
import {
  evidenceKey,
  groupBugs,
  MAX_EVIDENCE,
  MAX_SLAB_OBJECTS,
  slabObjectSignatures,
  STORED_EVIDENCE_KINDS,
  type Bug,
  type Evidence,
  type StoredEvidenceKind,
} from './bugs.js';
import { archOfKernel, loadKnownIssues, seriesOf, type KnownIssue, type KnownIssues } from './known.js';
import type { Arch } from '../../kernels/types.js';

export const FINDING_FORMAT = 'svadiff-finding';
export const FINDING_VERSION = 1;

export type FindingKind = 'divergence' | 'crash' | 'hang';
const FINDING_KINDS: readonly FindingKind[] = ['divergence', 'crash', 'hang'];

/** The exact kernel a finding was seen on. */
export interface KernelId {
  /** the kernel spec of the run, e.g. "debian:6.12" or "debian:6.12.117+deb12" */
  spec: string;
  /** the guest's `uname -r`, e.g. "6.12.117+deb12-amd64" */
  release: string;
  /** where uacce came from, e.g. "uacce.c: Debian 6.12.118 + fix.patch, sha256 …" (kernels/types.ts UacceOrigin) */
  uacce?: string;
  /** the --uacce-src it was built from (absolute path), when not the kernel's own */
  uacce_src?: string;
  /** the guest's architecture (absent in findings written before arm64: x86_64) */
  arch?: Arch;
}

/** What a run hands to the store. */
export interface FindingCandidate {
  kind: FindingKind;
  /** the dedup key: an oracle report title, or the model's one-line description of a divergence */
  title: string;
  kernel: KernelId;
  /** divergences: what the model expected and what the kernel did; crashes: empty or descriptive */
  expected?: string;
  observed?: string;
  /** the program that found it */
  program?: Program;
  /** index of the operation where the divergence or crash showed */
  opIndex?: number;
  /** the model rule that made the expectation (divergences) */
  rule?: string;
  /** the console of the run */
  console?: string;
  /** the kernel report's text (dmesg.txt) */
  excerpt?: string;
  /** for crashes and hangs: facts from the oracle's report */
  report?: { kind: ReportKind; pattern: string; frame?: string; corrupted: boolean };
  /** crashes and hangs: the programs the same guest ran since it booted, before `program`, oldest first */
  preceding?: readonly Program[];
  /** when it was seen (default: now) */
  at?: Date;
  /** the run it was seen in (default: the store's run) */
  runId?: string;
}

/** At most this many preceding programs are kept with a finding. */
export const MAX_PRECEDING = 16;
export const PROGRAM_LOG_FORMAT = 'svadiff-program-log';

/** preceding.json: programs run one after another on one guest, each from a fresh test device. */
export interface ProgramLog {
  format: typeof PROGRAM_LOG_FORMAT;
  version: 1;
  note: string;
  programs: Program[];
}

export function programLog(programs: readonly Program[], note: string): ProgramLog {
  return { format: PROGRAM_LOG_FORMAT, version: 1, note, programs: [...programs] };
}

/** One run's observations of a finding on one kernel release. */
export interface RunSeen {
  release: string;
  spec: string;
  count: number;
  first_seen: string;
  last_seen: string;
  /** the key in `kernels` when it is not the release: the release with the user's uacce source */
  kernel?: string;
  /** where uacce came from (KernelId.uacce) */
  uacce?: string;
}

/** The bug a finding is part of (findings/bugs.ts), as finding.json shows it. */
export interface FindingBug {
  /** the id of the bug's lead finding */
  id: string;
  title: string;
  /** every title of the bug, most frequent first */
  titles: string[];
  /** why those titles are one bug, one line per piece of evidence */
  why: string[];
}

export interface KernelSeen {
  spec: string;
  /** where uacce came from (KernelId.uacce) */
  uacce?: string;
  count: number;
  first_seen: string;
  last_seen: string;
  /** the known-issue note for this kernel's series, if the title is listed there */
  known?: string;
}

export interface Finding {
  format: typeof FINDING_FORMAT;
  version: typeof FINDING_VERSION;
  id: string;
  kind: FindingKind;
  title: string;
  /** the kernel it was first seen on */
  kernel: KernelId;
  /** every kernel it was seen on, by release */
  kernels: Record<string, KernelSeen>;
  count: number;
  first_seen: string;
  last_seen: string;
  expected: string;
  observed: string;
  /** listed as a known issue for the series of every kernel it was seen on (corpus/known/) */
  known: boolean;
  /** the note and link or reason of that known issue (from the first kernel that lists it) */
  known_note?: string;
  op_index?: number;
  rule?: string;
  report?: { kind: ReportKind; pattern: string; frame?: string; corrupted: boolean };
  /** operations in program.json (absent when no program was given) */
  program_ops?: number;
  /** programs in preceding.json (absent when there is none) */
  preceding_programs?: number;
  /** ids this finding had under older title formats (see the top of this file) */
  former_ids?: string[];
  /** observations per run, "<run id> <release>" → counts (the totals above are made of them) */
  runs?: Record<string, RunSeen>;
  /** the slab objects its kernel reports named (bugs.ts slabObjectSignatures) */
  slab_objects?: string[];
  /** the bug it is part of */
  bug?: FindingBug;
}

export interface RecordResult {
  id: string;
  /** the title was not a finding before */
  isNew: boolean;
  count: number;
  known: boolean;
  /** the bug it is part of (its lead finding's id) */
  bug: string;
  /** no finding of that bug existed before this call */
  newBug: boolean;
  /** the bug is known on this kernel (any of its titles is listed for the series) */
  bugKnown: boolean;
}

export interface StoreOptions {
  /** replace the kept program (and its console and excerpt) by a later one with fewer operations */
  keepShortest?: boolean;
  /** known issues of a series; default: corpus/known/<series>.json */
  knownIssues?: (series: string, arch: Arch) => Promise<KnownIssues>;
  /** where problems with existing files go; default: a warning on stderr */
  onProblem?: (message: string) => void;
  /** the id of this run (counts are kept per run); default: the time and a random suffix */
  runId?: string;
  /** read only: titles are not brought up to date and nothing is written (a store being merged from) */
  readOnly?: boolean;
}

export const BUGS_FORMAT = 'svadiff-bugs';
export const BUGS_VERSION = 1;

/** <outDir>/bugs.json: the evidence the store keeps and the bugs worked out from it. */
export interface BugsFile {
  format: typeof BUGS_FORMAT;
  version: typeof BUGS_VERSION;
  note: string;
  evidence: Evidence[];
  bugs: Bug[];
}

/** A new run id: sortable by start time, unique across machines. */
export function newRunId(at: Date = new Date()): string {
  return `${at.toISOString().replace(/[:.]/g, '-')}-${randomBytes(4).toString('hex')}`;
}

/** Bounds on what guest output the store keeps per finding. */
export const MAX_CONSOLE = 4 * 1024 * 1024;
export const MAX_EXCERPT_FILE = 256 * 1024;
export const MAX_TITLE = 300;
export const MAX_ID = 64;

/** One line, no control characters, bounded: titles partly come from guest output. */
export function cleanTitle(title: string): string {
  const t = stripControl(title).replace(/\s+/g, ' ').trim();
  return (t.length > MAX_TITLE ? t.slice(0, MAX_TITLE) : t) || 'untitled';
}

/**
 * The id of a title: a readable slug and a short hash of the exact title, at most 64
 * characters of [a-z0-9-], the same in every run ("warning-in-splat-warn-1f0c…").
 */
export function findingId(title: string): string {
  const t = cleanTitle(title);
  const hash = sha256(t).slice(0, 10);
  let slug = t
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  slug = slug.slice(0, MAX_ID - hash.length - 1).replace(/-+$/, '');
  return `${slug || 'finding'}-${hash}`;
}

function tailBounded(text: string, max: number): string {
  const clean = stripControl(text);
  if (clean.length <= max) return clean;
  return `[svadiff: ${clean.length - max} earlier characters dropped]\n` + clean.slice(clean.length - max);
}

function headBounded(text: string, max: number): string {
  const clean = stripControl(text);
  if (clean.length <= max) return clean;
  return clean.slice(0, max) + `\n[svadiff: ${clean.length - max} more characters dropped]`;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1;

/** The title a finding has now (older divergence titles carried values). */
export function currentTitle(kind: FindingKind, title: string): string {
  return kind === 'divergence' ? cleanTitle(currentDivergenceTitle(title)) : title;
}

/**
 * Check a finding.json read back from disk; a string says what is wrong. Its id and title give
 * the directory's name, or its old title's id is in it and its current title's id is the
 * directory's (a rename to the current title that stopped before finding.json was rewritten).
 */
function checkFinding(raw: unknown, dirName: string): Finding | string {
  if (!isObj(raw)) return 'not a JSON object';
  if (raw.format !== FINDING_FORMAT || raw.version !== FINDING_VERSION) return `not a ${FINDING_FORMAT} version ${FINDING_VERSION} file`;
  if (!FINDING_KINDS.includes(raw.kind as FindingKind)) return `field "kind" must be one of ${FINDING_KINDS.join(', ')}`;
  if (!isStr(raw.title) || raw.title === '') return 'field "title" must be a non-empty string';
  const renamed = raw.id === findingId(raw.title) && findingId(currentTitle(raw.kind as FindingKind, raw.title)) === dirName;
  if (raw.id !== dirName && !renamed) return `field "id" is ${JSON.stringify(raw.id)}, not the directory name`;
  if (findingId(raw.title) !== dirName && !renamed) return 'field "title" does not give this id';
  if (raw.former_ids !== undefined && !(Array.isArray(raw.former_ids) && raw.former_ids.every(isStr))) return 'field "former_ids" must be a list of ids';
  if (!isCount(raw.count)) return 'field "count" must be a positive integer';
  for (const f of ['first_seen', 'last_seen', 'expected', 'observed'] as const) {
    if (!isStr(raw[f])) return `field "${f}" must be a string`;
  }
  if (!isObj(raw.kernel) || !isStr(raw.kernel.spec) || !isStr(raw.kernel.release)) return 'field "kernel" must have "spec" and "release"';
  if (!isObj(raw.kernels) || Object.keys(raw.kernels).length === 0) return 'field "kernels" must list at least one kernel';
  for (const [release, k] of Object.entries(raw.kernels)) {
    if (!isObj(k) || !isStr(k.spec) || !isCount(k.count) || !isStr(k.first_seen) || !isStr(k.last_seen)) {
      return `field "kernels" entry ${JSON.stringify(release)} must have spec, count, first_seen and last_seen`;
    }
  }
  if (typeof raw.known !== 'boolean') return 'field "known" must be true or false';
  if (raw.runs !== undefined) {
    if (!isObj(raw.runs)) return 'field "runs" must be an object';
    for (const [key, r] of Object.entries(raw.runs)) {
      if (!isObj(r) || !isStr(r.release) || !isStr(r.spec) || !isCount(r.count) || !isStr(r.first_seen) || !isStr(r.last_seen)) {
        return `field "runs" entry ${JSON.stringify(key)} must have release, spec, count, first_seen and last_seen`;
      }
    }
  }
  if (raw.slab_objects !== undefined && !(Array.isArray(raw.slab_objects) && raw.slab_objects.every(isStr))) return 'field "slab_objects" must be a list of strings';
  if (raw.op_index !== undefined && !(Number.isInteger(raw.op_index) && (raw.op_index as number) >= 0)) return 'field "op_index" must be an index';
  if (raw.program_ops !== undefined && !Number.isInteger(raw.program_ops)) return 'field "program_ops" must be an integer';
  return raw as unknown as Finding;
}

export class FindingStore {
  private readonly findings = new Map<string, Finding>();
  private readonly knownCache = new Map<string, Promise<KnownIssues>>();
  /** JSON of each finding.json as last read or written: only changed ones are written again */
  private readonly onDisk = new Map<string, string>();
  private evidence: Evidence[] = [];
  private bugList: Bug[] = [];
  private bugsOnDisk = '';
  private queue: Promise<unknown> = Promise.resolve();
  /** problems met while loading or writing (also passed to onProblem) */
  readonly problems: string[] = [];
  /** the run this store records in unless a candidate names another */
  readonly runId: string;

  private constructor(
    readonly outDir: string,
    private readonly opts: StoreOptions,
  ) {
    this.runId = opts.runId ?? newRunId();
  }

  /** Open (and resume) the store of an output directory; it is created on the first record. */
  static async open(outDir: string, opts: StoreOptions = {}): Promise<FindingStore> {
    const store = new FindingStore(outDir, opts);
    await store.load();
    await store.loadEvidence();
    if (!opts.readOnly) await store.retitleAll();
    await store.refresh();
    return store;
  }

  get dir(): string {
    return join(this.outDir, 'findings');
  }

  get bugsPath(): string {
    return join(this.outDir, 'bugs.json');
  }

  private problem(message: string): void {
    this.problems.push(message);
    (this.opts.onProblem ?? warn)(message);
  }

  private async load(): Promise<void> {
    let names: string[];
    try {
      names = await fs.readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      this.problem(`cannot list ${this.dir}: ${errorMessage(e)}; starting with no findings`);
      return;
    }
    for (const name of names.sort()) {
      if (name.startsWith('.')) continue;
      const path = join(this.dir, name, 'finding.json');
      let text: string;
      try {
        text = await fs.readFile(path, 'utf8');
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOTDIR') this.problem(`${join(this.dir, name)}: not a finding directory; ignored`);
        else if (code === 'ENOENT') this.problem(`${path}: missing (an interrupted write?); the finding is recorded anew if seen again`);
        else this.problem(`${path}: ${errorMessage(e)}; ignored`);
        continue;
      }
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch (e) {
        this.problem(`${path}: not valid JSON (${errorMessage(e)}); the finding is recorded anew if seen again`);
        continue;
      }
      const f = checkFinding(raw, name);
      if (typeof f === 'string') {
        this.problem(`${path}: ${f}; the finding is recorded anew if seen again`);
        continue;
      }
      this.onDisk.set(name, JSON.stringify(f));
      if (!f.runs) await this.backfill(f, join(this.dir, name));
      withRuns(f);
      // by directory: after an interrupted rename the id inside is still the old one
      this.findings.set(name, f);
    }
  }

  /**
   * A finding written before bugs were grouped: the grouping evidence its own files hold, its
   * report's slab objects (dmesg.txt) and the other reports of its program's run (console.log).
   */
  private async backfill(f: Finding, dir: string): Promise<void> {
    if (f.kind === 'divergence') return;
    const read = (name: string) => fs.readFile(join(dir, name), 'utf8').catch(() => '');
    const sigs = slabObjectSignatures(await read('dmesg.txt')).slice(0, MAX_SLAB_OBJECTS);
    if (sigs.length > 0) f.slab_objects = sigs;
    const titles = parseReports(await read('console.log'))
      .filter((r) => r.kind !== 'device')
      .map((r) => r.title);
    if (titles.some((t) => t !== f.title)) {
      this.addEvidenceNow([{ kind: 'same-run', titles: [f.title, ...titles], why: `reported one after another while one program ran (console.log of finding ${f.id})`, at: f.first_seen }]);
    }
  }

  /** The evidence of bugs.json; a file that cannot be used is reported and rebuilt from what the run sees. */
  private async loadEvidence(): Promise<void> {
    let raw: unknown;
    try {
      raw = JSON.parse(await fs.readFile(this.bugsPath, 'utf8'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      this.problem(`${this.bugsPath}: ${errorMessage(e)}; its grouping evidence is dropped and gathered again`);
      return;
    }
    const list = checkBugsFile(raw);
    if (typeof list === 'string') {
      this.problem(`${this.bugsPath}: ${list}; its grouping evidence is dropped and gathered again`);
      return;
    }
    this.absorbEvidence(list);
  }

  /**
   * Bring findings with titles of an older format to the current title (see the top of this
   * file): rename, or merge into the finding that has the new title. Safe to interrupt: a
   * renamed directory whose finding.json still has the old id is finished here next time; an
   * old directory whose id the target already lists in former_ids was merged and is moved away.
   */
  private async retitleAll(): Promise<void> {
    for (const [dirName, old] of [...this.findings]) {
      const title = currentTitle(old.kind, old.title);
      if (title === old.title) continue;
      const id = findingId(title);
      const renamed: Finding = { ...structuredClone(old), id, title, former_ids: [...new Set([...(old.former_ids ?? []), old.id])] };
      try {
        if (dirName === id) {
          await this.writeFinding(renamed);
          continue;
        }
        const target = this.findings.get(id);
        if (!target) {
          await fs.rename(join(this.dir, dirName), join(this.dir, id));
          this.findings.delete(dirName);
          this.onDisk.delete(dirName);
          await this.writeFinding(renamed);
          continue;
        }
        const merged = target.former_ids?.includes(old.id) ? target : mergeFindings(target, renamed);
        if (merged !== target) await this.writeFinding(merged);
        await fs.mkdir(join(this.dir, '.merged'), { recursive: true });
        await fs.rm(join(this.dir, '.merged', dirName), { recursive: true, force: true });
        await fs.rename(join(this.dir, dirName), join(this.dir, '.merged', dirName));
        this.findings.delete(dirName);
        this.onDisk.delete(dirName);
      } catch (e) {
        this.problem(`${join(this.dir, dirName)}: could not bring its title up to date (${errorMessage(e)}); it stays as it is`);
      }
    }
  }

  private async writeFinding(f: Finding): Promise<void> {
    await atomicWriteJson(join(this.dir, f.id, 'finding.json'), f);
    this.findings.set(f.id, f);
    this.onDisk.set(f.id, JSON.stringify(f));
  }

  /** Every finding, most frequent first. */
  list(): Finding[] {
    return [...this.findings.values()].sort((a, b) => b.count - a.count || a.id.localeCompare(b.id));
  }

  get(id: string): Finding | undefined {
    return this.findings.get(id);
  }

  /** The bugs: findings grouped by root cause (findings/bugs.ts), most frequent first. */
  bugs(): Bug[] {
    return this.bugList;
  }

  /** The grouping evidence the store keeps (bugs.json). */
  storedEvidence(): readonly Evidence[] {
    return this.evidence;
  }

  /** Record one observation. Calls are serialized: the store is safe to call without awaiting in between. */
  record(candidate: FindingCandidate): Promise<RecordResult> {
    return this.recordProgram([candidate]).then((r) => r[0]!);
  }

  /**
   * Record what one program run showed, and the evidence that comes with it: kernel reports
   * printed while one program ran are one bug (same-run evidence, `where` says which program on
   * which kernel). Serialized like record().
   */
  recordProgram(candidates: readonly FindingCandidate[], where?: string): Promise<RecordResult[]> {
    return this.serialized(async () => {
      const before = new Set(this.findings.keys());
      const ids: string[] = [];
      for (const c of candidates) ids.push(await this.recordNow(c));
      const crashes = candidates.filter((c) => c.kind !== 'divergence').map((c) => currentTitle(c.kind, cleanTitle(c.title)));
      if (where !== undefined && new Set(crashes).size > 1) {
        const at = (candidates[0]?.at ?? new Date()).toISOString();
        this.addEvidenceNow([{ kind: 'same-run', titles: crashes, why: `reported one after another while one program ran (${where})`, at }]);
      }
      await this.refresh();
      return candidates.map((c, i) => {
        const id = ids[i]!;
        const f = this.findings.get(id)!;
        const bug = this.bugOf(id);
        const release = cleanTitle(c.kernel.release);
        return {
          id,
          isNew: !before.has(id),
          count: f.count,
          known: f.known,
          bug: bug?.id ?? id,
          newBug: !(bug?.findings ?? [id]).some((x) => before.has(x)),
          bugKnown: bug?.kernels[release]?.known !== undefined,
        };
      });
    });
  }

  /** Add grouping evidence (repro: the titles one minimized program showed, …) and regroup. */
  addEvidence(list: readonly { kind: StoredEvidenceKind; titles: readonly string[]; why: string; at?: string }[]): Promise<void> {
    return this.serialized(async () => {
      this.addEvidenceNow(list);
      await this.refresh();
    });
  }

  /** The bug a finding is part of. */
  bugOf(findingId: string): Bug | undefined {
    return this.bugList.find((b) => b.findings.includes(findingId));
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private addEvidenceNow(list: readonly { kind: StoredEvidenceKind; titles: readonly string[]; why: string; at?: string }[]): void {
    const keys = new Set(this.evidence.map(evidenceKey));
    for (const x of list) {
      const titles = [...new Set(x.titles.map((t) => cleanTitle(t)))].sort();
      if (titles.length < 2 || !STORED_EVIDENCE_KINDS.includes(x.kind)) continue;
      const e: Evidence = { kind: x.kind, titles, why: cleanTitle(x.why) };
      if (x.at) e.at = x.at;
      const key = evidenceKey(e);
      if (keys.has(key)) continue;
      if (this.evidence.length >= MAX_EVIDENCE) {
        this.problem(`more than ${MAX_EVIDENCE} pieces of grouping evidence; later ones are not kept`);
        return;
      }
      keys.add(key);
      this.evidence.push(e);
    }
  }

  /** Put evidence of another store in (merge.ts); true when something was new. */
  absorbEvidence(list: readonly Evidence[]): boolean {
    const n = this.evidence.length;
    const keys = new Set(this.evidence.map(evidenceKey));
    for (const e of list) {
      if (keys.has(evidenceKey(e))) continue;
      this.addEvidenceNow([e as Evidence & { kind: StoredEvidenceKind }]);
    }
    return this.evidence.length !== n;
  }

  private knownFor(release: string, spec: string): Promise<KnownIssues | undefined> {
    const series = seriesOf(release) ?? seriesOf(spec);
    if (!series) return Promise.resolve(undefined);
    const arch = archOfKernel(release, spec);
    const key = `${series}/${arch}`;
    let p = this.knownCache.get(key);
    if (!p) {
      p = this.opts.knownIssues ? this.opts.knownIssues(series, arch) : loadKnownIssues(series, undefined, arch);
      this.knownCache.set(key, p);
    }
    return p;
  }

  private async recordNow(c: FindingCandidate): Promise<string> {
    if (!FINDING_KINDS.includes(c.kind)) throw new Error(`finding kind ${JSON.stringify(c.kind)} is not one of ${FINDING_KINDS.join(', ')}`);
    const title = currentTitle(c.kind, cleanTitle(c.title));
    const id = findingId(title);
    const at = (c.at ?? new Date()).toISOString();
    const release = cleanTitle(c.kernel.release);
    const spec = cleanTitle(c.kernel.spec);
    const dir = join(this.dir, id);

    const old = this.findings.get(id);
    let f: Finding;
    let writeEvidence: boolean;
    if (!old) {
      f = {
        format: FINDING_FORMAT,
        version: FINDING_VERSION,
        id,
        kind: c.kind,
        title,
        kernel: kernelRecord(c.kernel, spec, release),
        kernels: {},
        count: 0,
        first_seen: at,
        last_seen: at,
        expected: c.expected ?? '',
        observed: c.observed ?? '',
        known: false,
        runs: {},
      };
      if (c.opIndex !== undefined) f.op_index = c.opIndex;
      if (c.rule !== undefined) f.rule = c.rule;
      if (c.report) f.report = { ...c.report };
      writeEvidence = true;
    } else {
      f = structuredClone(old);
      const shorter = c.program !== undefined && (f.program_ops === undefined || c.program.ops.length < f.program_ops);
      writeEvidence = (f.program_ops === undefined && c.program !== undefined) || (this.opts.keepShortest === true && shorter);
      if (writeEvidence) {
        // the kept program changes: keep the facts that go with it
        f.expected = c.expected ?? f.expected;
        f.observed = c.observed ?? f.observed;
        if (c.opIndex !== undefined) f.op_index = c.opIndex;
        if (c.rule !== undefined) f.rule = c.rule;
        if (c.report) f.report = { ...c.report };
      }
    }
    // a kernel with the user's uacce source is another kernel than the same release without it
    const uacce = c.kernel.uacce ? cleanTitle(c.kernel.uacce) : undefined;
    const kernelKey = c.kernel.uacce_src !== undefined && uacce ? `${release} (${uacce})` : release;
    const runs = (f.runs ??= {});
    const key = `${c.runId ?? this.runId} ${kernelKey}`;
    const r = runs[key];
    if (r) {
      r.count += 1;
      if (at < r.first_seen) r.first_seen = at;
      if (at > r.last_seen) r.last_seen = at;
    } else {
      runs[key] = {
        release,
        spec,
        count: 1,
        first_seen: at,
        last_seen: at,
        ...(kernelKey !== release ? { kernel: kernelKey } : {}),
        ...(uacce ? { uacce } : {}),
      };
    }
    totalsFromRuns(f);
    if (c.kind !== 'divergence' && c.excerpt) {
      const sigs = [...new Set([...(f.slab_objects ?? []), ...slabObjectSignatures(c.excerpt)])].slice(0, MAX_SLAB_OBJECTS);
      if (sigs.length > 0) f.slab_objects = sigs;
    }

    if (writeEvidence) {
      if (c.program) {
        await atomicWrite(join(dir, 'program.json'), formatProgram(c.program));
        f.program_ops = c.program.ops.length;
      }
      await atomicWrite(join(dir, 'console.log'), tailBounded(c.console ?? '', MAX_CONSOLE));
      await atomicWrite(join(dir, 'dmesg.txt'), headBounded(c.excerpt ?? '', MAX_EXCERPT_FILE));
      const preceding = c.kind !== 'divergence' ? (c.preceding ?? []).slice(-MAX_PRECEDING) : [];
      if (preceding.length > 0) {
        const note = 'the programs the guest ran since it booted, before program.json, oldest first; each started from a fresh test device';
        await atomicWriteJson(join(dir, 'preceding.json'), programLog(preceding, note));
        f.preceding_programs = preceding.length;
      } else {
        // the kept program changed: a log that went with the old one would mislead
        await fs.rm(join(dir, 'preceding.json'), { force: true });
        delete f.preceding_programs;
      }
    }
    // finding.json is written by refresh(), last: its presence means the directory is complete
    this.findings.set(id, f);
    return id;
  }

  /**
   * Put a finding of another store in (merge.ts): its runs are added to this store's finding of
   * the same title (a run already here keeps the larger count: merging twice changes nothing);
   * a finding new here is copied with its whole directory. Call refresh() after the last one.
   */
  async absorbFinding(src: Finding, srcDir: string): Promise<'new' | 'merged' | 'unchanged'> {
    return this.serialized(async () => {
      const mine = this.findings.get(src.id);
      if (!mine) {
        await copyDir(srcDir, join(this.dir, src.id), ['finding.json']);
        const f = structuredClone(src);
        withRuns(f);
        delete f.bug;
        this.findings.set(f.id, f);
        return 'new';
      }
      const f = structuredClone(mine);
      const incoming = structuredClone(src);
      withRuns(incoming);
      for (const [key, r] of Object.entries(incoming.runs ?? {})) {
        const have = (f.runs ??= {})[key];
        if (!have) f.runs[key] = { ...r };
        else {
          have.count = Math.max(have.count, r.count);
          if (r.first_seen < have.first_seen) have.first_seen = r.first_seen;
          if (r.last_seen > have.last_seen) have.last_seen = r.last_seen;
        }
      }
      totalsFromRuns(f);
      if (incoming.first_seen < mine.first_seen) f.kernel = { ...incoming.kernel };
      // unions that keep this store's order: merging again changes nothing
      const sigs = [...new Set([...(f.slab_objects ?? []), ...(incoming.slab_objects ?? [])])].slice(0, MAX_SLAB_OBJECTS);
      if (sigs.length > 0) f.slab_objects = sigs;
      const former = [...new Set([...(f.former_ids ?? []), ...(incoming.former_ids ?? [])])];
      if (former.length > 0) f.former_ids = former;
      // a reproduction done elsewhere comes along when this store has none
      if (!(await exists(join(this.dir, f.id, 'repro.json'))) && (await exists(join(srcDir, 'repro.json')))) {
        await copyDir(srcDir, join(this.dir, f.id), ['finding.json']);
        for (const k of ['expected', 'observed', 'op_index', 'rule', 'report', 'program_ops', 'preceding_programs'] as const) {
          if (incoming[k] !== undefined) (f as unknown as Record<string, unknown>)[k] = structuredClone(incoming[k]);
          else delete (f as unknown as Record<string, unknown>)[k];
        }
      }
      const changed = JSON.stringify(f) !== JSON.stringify(mine);
      this.findings.set(f.id, f);
      return changed ? 'merged' : 'unchanged';
    });
  }

  /**
   * Group the findings into bugs, label them from the known-issue lists (which may have changed
   * since they were written: a finding reviewed since shows as known even if this run does not
   * see it again), and write every finding.json that changed, then bugs.json.
   */
  async refresh(): Promise<void> {
    const lists = new Map<string, KnownIssues>();
    for (const f of this.findings.values()) {
      for (const [rel, k] of Object.entries(f.kernels)) {
        const series = seriesOf(rel) ?? seriesOf(k.spec);
        if (!series || lists.has(series)) continue;
        const l = await this.knownFor(rel, k.spec);
        if (l) lists.set(series, l);
      }
    }
    const bugs = groupBugs({
      findings: [...this.findings.values()],
      evidence: this.evidence,
      knownFor: (series) => lists.get(series),
      seriesOf: (rel, spec) => seriesOf(rel) ?? seriesOf(spec),
      describeKnown,
    });
    this.bugList = bugs;
    for (const bug of bugs) {
      for (const id of bug.findings) {
        const f = this.findings.get(id)!;
        for (const [rel, entry] of Object.entries(f.kernels)) {
          const own = lists.get(seriesOf(rel) ?? seriesOf(entry.spec) ?? '')?.match(f.title);
          const note = own ? describeKnown(own) : bug.kernels[rel]?.known;
          if (note) entry.known = note;
          else delete entry.known;
        }
        const entries = Object.values(f.kernels);
        f.known = entries.length > 0 && entries.every((e) => e.known !== undefined);
        const note = entries.find((e) => e.known !== undefined)?.known;
        if (note) f.known_note = note;
        else delete f.known_note;
        f.bug = { id: bug.id, title: bug.title, titles: bug.titles.map((t) => t.title), why: bug.why };
        if (this.onDisk.get(id) === JSON.stringify(f) || this.opts.readOnly) continue;
        try {
          await this.writeFinding(f);
        } catch (e) {
          this.problem(`${join(this.dir, id, 'finding.json')}: cannot write it (${errorMessage(e)})`);
          throw e;
        }
      }
    }
    if ((this.findings.size === 0 && this.evidence.length === 0) || this.opts.readOnly) return;
    const file: BugsFile = {
      format: BUGS_FORMAT,
      version: BUGS_VERSION,
      note: 'findings grouped by root cause: "evidence" is what svadiff saw and keeps; "bugs" is worked out from it, the findings and the known-issue lists (harness/findings/bugs.ts)',
      evidence: this.evidence,
      bugs,
    };
    const text = JSON.stringify(file);
    if (text === this.bugsOnDisk) return;
    await atomicWriteJson(this.bugsPath, file);
    this.bugsOnDisk = text;
  }
}

/** Check bugs.json as read back; its evidence, or what is wrong. */
function checkBugsFile(raw: unknown): Evidence[] | string {
  if (!isObj(raw) || raw.format !== BUGS_FORMAT || raw.version !== BUGS_VERSION) return `not a ${BUGS_FORMAT} version ${BUGS_VERSION} file`;
  if (!Array.isArray(raw.evidence)) return 'field "evidence" must be a list';
  const out: Evidence[] = [];
  for (const [i, e] of raw.evidence.entries()) {
    if (!isObj(e) || !STORED_EVIDENCE_KINDS.includes(e.kind as StoredEvidenceKind) || !Array.isArray(e.titles) || !e.titles.every(isStr) || !isStr(e.why)) {
      return `evidence[${i}] must have a kind (${STORED_EVIDENCE_KINDS.join(', ')}), titles and why`;
    }
    out.push({ kind: e.kind as StoredEvidenceKind, titles: (e.titles as string[]).map(cleanTitle), why: cleanTitle(e.why), ...(isStr(e.at) ? { at: e.at } : {}) });
  }
  return out;
}

/**
 * A finding written before counts were kept per run gets one run per kernel, named after that
 * kernel's first sighting: the same name wherever the finding is read, so that merging it twice
 * still counts it once.
 */
function withRuns(f: Finding): void {
  if (f.runs && Object.keys(f.runs).length > 0) return;
  f.runs = {};
  for (const [rel, k] of Object.entries(f.kernels)) f.runs[`before-runs-${k.first_seen} ${rel}`] = { release: rel, spec: k.spec, count: k.count, first_seen: k.first_seen, last_seen: k.last_seen };
}

/** count, first/last seen and the kernels of a finding from its runs (known labels are kept). */
function totalsFromRuns(f: Finding): void {
  const runs = Object.values(f.runs ?? {});
  if (runs.length === 0) return;
  const kernels: Record<string, KernelSeen> = {};
  let count = 0;
  let first = runs[0]!.first_seen;
  let last = runs[0]!.last_seen;
  for (const r of runs) {
    count += r.count;
    if (r.first_seen < first) first = r.first_seen;
    if (r.last_seen > last) last = r.last_seen;
    const kernelKey = r.kernel ?? r.release;
    const k = kernels[kernelKey];
    if (!k) kernels[kernelKey] = { spec: r.spec, count: r.count, first_seen: r.first_seen, last_seen: r.last_seen, ...(r.uacce ? { uacce: r.uacce } : {}) };
    else {
      k.count += r.count;
      if (r.first_seen < k.first_seen) {
        k.first_seen = r.first_seen;
        k.spec = r.spec;
      }
      if (r.last_seen > k.last_seen) k.last_seen = r.last_seen;
    }
  }
  for (const [rel, k] of Object.entries(kernels)) {
    const was = f.kernels[rel]?.known;
    if (was !== undefined) k.known = was;
  }
  f.kernels = kernels;
  f.count = count;
  f.first_seen = first;
  f.last_seen = last;
}

/** Copy a finding directory's files (not subdirectories), atomically each, leaving out `skip`. */
async function copyDir(from: string, to: string, skip: readonly string[]): Promise<void> {
  await fs.mkdir(to, { recursive: true });
  for (const e of await fs.readdir(from, { withFileTypes: true })) {
    if (!e.isFile() || skip.includes(e.name) || e.name.startsWith('.')) continue;
    await atomicWrite(join(to, e.name), await fs.readFile(join(from, e.name)));
  }
}

/**
 * One finding from two whose titles became the same (an older title format): counts, kernels
 * and dates added up (runs of the same name too: they are different observations); a's evidence.
 */
export function mergeFindings(a: Finding, b: Finding): Finding {
  const f = structuredClone(a);
  const other = structuredClone(b);
  withRuns(f);
  withRuns(other);
  for (const [key, r] of Object.entries(other.runs ?? {})) {
    const mine = f.runs![key];
    if (!mine) f.runs![key] = { ...r };
    else {
      mine.count += r.count;
      if (r.first_seen < mine.first_seen) mine.first_seen = r.first_seen;
      if (r.last_seen > mine.last_seen) mine.last_seen = r.last_seen;
    }
  }
  const firstBefore = f.first_seen;
  totalsFromRuns(f);
  if (b.first_seen < firstBefore) f.kernel = { ...b.kernel };
  const former = [...new Set([...(a.former_ids ?? []), ...(b.former_ids ?? [])])];
  if (former.length > 0) f.former_ids = former;
  return f;
}

function kernelRecord(k: KernelId, spec: string, release: string): KernelId {
  const out: KernelId = { spec, release };
  if (k.uacce) out.uacce = cleanTitle(k.uacce);
  if (k.uacce_src) out.uacce_src = cleanTitle(k.uacce_src);
  if (k.arch) out.arch = k.arch;
  return out;
}

function describeKnown(k: KnownIssue): string {
  return [k.note, k.link ?? k.reason].filter(Boolean).join(' — ');
}
