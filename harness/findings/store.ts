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
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { currentDivergenceTitle } from '../oracle/check.js';
import { formatProgram } from '../program/parse.js';
import type { Program } from '../program/types.js';
import type { ReportKind } from '../oracle/report.js';
import { errorMessage } from '../util/errors.js';
import { atomicWrite, atomicWriteJson, sha256 } from '../util/fsx.js';
import { warn } from '../util/log.js';
import { stripControl } from '../util/sanitize.js';
import { loadKnownIssues, seriesOf, type KnownIssue, type KnownIssues } from './known.js';

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
}

export interface RecordResult {
  id: string;
  isNew: boolean;
  count: number;
  known: boolean;
}

export interface StoreOptions {
  /** replace the kept program (and its console and excerpt) by a later one with fewer operations */
  keepShortest?: boolean;
  /** known issues of a series; default: corpus/known/<series>.json */
  knownIssues?: (series: string) => Promise<KnownIssues>;
  /** where problems with existing files go; default: a warning on stderr */
  onProblem?: (message: string) => void;
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
  if (raw.op_index !== undefined && !(Number.isInteger(raw.op_index) && (raw.op_index as number) >= 0)) return 'field "op_index" must be an index';
  if (raw.program_ops !== undefined && !Number.isInteger(raw.program_ops)) return 'field "program_ops" must be an integer';
  return raw as unknown as Finding;
}

export class FindingStore {
  private readonly findings = new Map<string, Finding>();
  private readonly knownCache = new Map<string, Promise<KnownIssues>>();
  private queue: Promise<unknown> = Promise.resolve();
  /** problems met while loading or writing (also passed to onProblem) */
  readonly problems: string[] = [];

  private constructor(
    readonly outDir: string,
    private readonly opts: StoreOptions,
  ) {}

  /** Open (and resume) the store of an output directory; it is created on the first record. */
  static async open(outDir: string, opts: StoreOptions = {}): Promise<FindingStore> {
    const store = new FindingStore(outDir, opts);
    await store.load();
    await store.retitleAll();
    await store.relabelAll();
    return store;
  }

  get dir(): string {
    return join(this.outDir, 'findings');
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
      // by directory: after an interrupted rename the id inside is still the old one
      this.findings.set(name, f);
    }
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
          await atomicWriteJson(join(this.dir, id, 'finding.json'), renamed);
          this.findings.set(id, renamed);
          continue;
        }
        const target = this.findings.get(id);
        if (!target) {
          await fs.rename(join(this.dir, dirName), join(this.dir, id));
          await atomicWriteJson(join(this.dir, id, 'finding.json'), renamed);
          this.findings.delete(dirName);
          this.findings.set(id, renamed);
          continue;
        }
        const merged = target.former_ids?.includes(old.id) ? target : mergeFindings(target, renamed);
        if (merged !== target) await atomicWriteJson(join(this.dir, id, 'finding.json'), merged);
        this.findings.set(id, merged);
        await fs.mkdir(join(this.dir, '.merged'), { recursive: true });
        await fs.rm(join(this.dir, '.merged', dirName), { recursive: true, force: true });
        await fs.rename(join(this.dir, dirName), join(this.dir, '.merged', dirName));
        this.findings.delete(dirName);
      } catch (e) {
        this.problem(`${join(this.dir, dirName)}: could not bring its title up to date (${errorMessage(e)}); it stays as it is`);
      }
    }
  }

  /** Every finding, most frequent first. */
  list(): Finding[] {
    return [...this.findings.values()].sort((a, b) => b.count - a.count || a.id.localeCompare(b.id));
  }

  get(id: string): Finding | undefined {
    return this.findings.get(id);
  }

  /** Record one observation. Calls are serialized: the store is safe to call without awaiting in between. */
  record(candidate: FindingCandidate): Promise<RecordResult> {
    const run = this.queue.then(() => this.recordNow(candidate));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private knownFor(release: string, spec: string): Promise<KnownIssues | undefined> {
    const series = seriesOf(release) ?? seriesOf(spec);
    if (!series) return Promise.resolve(undefined);
    let p = this.knownCache.get(series);
    if (!p) {
      p = (this.opts.knownIssues ?? loadKnownIssues)(series);
      this.knownCache.set(series, p);
    }
    return p;
  }

  private async recordNow(c: FindingCandidate): Promise<RecordResult> {
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
    f.count += 1;
    if (at < f.first_seen) f.first_seen = at;
    if (at > f.last_seen) f.last_seen = at;
    // a kernel with the user's uacce source is another kernel than the same release without it
    const key = c.kernel.uacce_src !== undefined && c.kernel.uacce ? `${release} (${cleanTitle(c.kernel.uacce)})` : release;
    const k = f.kernels[key];
    if (k) {
      k.count += 1;
      if (at < k.first_seen) k.first_seen = at;
      if (at > k.last_seen) k.last_seen = at;
    } else {
      f.kernels[key] = { spec, count: 1, first_seen: at, last_seen: at, ...(c.kernel.uacce ? { uacce: cleanTitle(c.kernel.uacce) } : {}) };
    }
    await this.label(f);

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
    // finding.json last: its presence means the directory is complete
    await atomicWriteJson(join(dir, 'finding.json'), f);
    this.findings.set(id, f);
    return { id, isNew: old === undefined, count: f.count, known: f.known };
  }

  /** (Re)label every kernel of a finding from the known-issue files, which may change between runs. */
  private async label(f: Finding): Promise<void> {
    for (const [rel, entry] of Object.entries(f.kernels)) {
      const issue: KnownIssue | undefined = (await this.knownFor(rel, entry.spec))?.match(f.title);
      if (issue) entry.known = describeKnown(issue);
      else delete entry.known;
    }
    const entries = Object.values(f.kernels);
    f.known = entries.every((e) => e.known !== undefined);
    const note = entries.find((e) => e.known !== undefined)?.known;
    if (note) f.known_note = note;
    else delete f.known_note;
  }

  /**
   * Relabel the findings already in the directory (at open): a finding reviewed and listed
   * since it was written shows as known even if this run does not see it again.
   */
  private async relabelAll(): Promise<void> {
    for (const [id, old] of this.findings) {
      const f = structuredClone(old);
      await this.label(f);
      if (f.known === old.known && f.known_note === old.known_note && JSON.stringify(f.kernels) === JSON.stringify(old.kernels)) continue;
      await atomicWriteJson(join(this.dir, id, 'finding.json'), f);
      this.findings.set(id, f);
    }
  }
}

/** One finding from two with the same title: counts, kernels and dates added up; a's evidence. */
export function mergeFindings(a: Finding, b: Finding): Finding {
  const f = structuredClone(a);
  f.count += b.count;
  if (b.first_seen < f.first_seen) {
    f.first_seen = b.first_seen;
    f.kernel = { ...b.kernel };
  }
  if (b.last_seen > f.last_seen) f.last_seen = b.last_seen;
  for (const [rel, k] of Object.entries(b.kernels)) {
    const mine = f.kernels[rel];
    if (!mine) f.kernels[rel] = { ...k };
    else {
      mine.count += k.count;
      if (k.first_seen < mine.first_seen) mine.first_seen = k.first_seen;
      if (k.last_seen > mine.last_seen) mine.last_seen = k.last_seen;
    }
  }
  const former = [...new Set([...(a.former_ids ?? []), ...(b.former_ids ?? [])])];
  if (former.length > 0) f.former_ids = former;
  return f;
}

function kernelRecord(k: KernelId, spec: string, release: string): KernelId {
  const out: KernelId = { spec, release };
  if (k.uacce) out.uacce = cleanTitle(k.uacce);
  if (k.uacce_src) out.uacce_src = cleanTitle(k.uacce_src);
  return out;
}

function describeKnown(k: KnownIssue): string {
  return [k.note, k.link ?? k.reason].filter(Boolean).join(' — ');
}
