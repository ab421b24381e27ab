/**
 * Bugs: findings (one per title) grouped by root cause. One bug often shows under several
 * titles: on Debian 6.1 the double free in uacce_vma_close() is reported by whichever slub check
 * trips first ("BUG: double free in vma_close", "BUG: slab wrong object count in kobject_put",
 * in kernfs_put, in uacce_fops_mmap, …). Titles are grouped only on evidence, each piece of which
 * is kept and shown (finding.json "bug.why", report.txt, the fuzz and nightly summaries):
 *
 *   same-run           the kernel printed the reports one after another while one program ran
 *                      (the later ones are what the first left behind: syzkaller keeps only the
 *                      first report of a run for the same reason)
 *   slab-object        slub, KFENCE or KASAN name the object's allocation and free sites, and
 *                      they are the same, with a uacce (or test driver) function among them
 *   minimized-program  the same minimized program showed these titles (svadiff repro)
 *   preceding-program  a program the crash needs before it (preceding.json) showed the other
 *                      title when it ran (svadiff repro)
 *   known-issue        a reviewed known-issue list names the titles as one issue: one entry, or
 *                      entries with the same link (corpus/known/)
 *
 * Evidence is a set of titles (at least two) with a one-line reason; bugs are the connected
 * components of titles. Everything here is pure: findings, evidence and known lists in, bugs out.
 */
import { normalizeFunction, isHelperFrame } from '../oracle/report.js';
import { stripControl } from '../util/sanitize.js';
import type { KnownIssue, KnownIssues } from './known.js';

export type EvidenceKind = 'same-run' | 'slab-object' | 'minimized-program' | 'preceding-program' | 'known-issue';
/** Evidence the store keeps (bugs.json); slab-object and known-issue are worked out from findings and lists. */
export type StoredEvidenceKind = 'same-run' | 'minimized-program' | 'preceding-program';
export const STORED_EVIDENCE_KINDS: readonly StoredEvidenceKind[] = ['same-run', 'minimized-program', 'preceding-program'];

export interface Evidence {
  kind: EvidenceKind;
  /** the titles it links, sorted, at least two */
  titles: string[];
  /** one line: what was seen, where */
  why: string;
  /** when it was first seen (ISO) */
  at?: string;
}

/** What grouping needs of a finding (a subset of finding.json). */
export interface FindingForBugs {
  id: string;
  kind: 'divergence' | 'crash' | 'hang';
  title: string;
  count: number;
  first_seen: string;
  last_seen: string;
  kernels: Record<string, { spec: string; count: number; first_seen: string; last_seen: string }>;
  /** slab object signatures of its reports (slabObjectSignatures) */
  slab_objects?: string[];
}

export interface BugTitle {
  title: string;
  /** the finding that has this title; absent for a title only a reproduction run showed */
  finding?: string;
  count: number;
}

export interface BugKernel {
  spec: string;
  count: number;
  first_seen: string;
  last_seen: string;
  /** the known issue that covers this bug on this kernel's series (through any of its titles) */
  known?: string;
}

export interface Bug {
  /** the id of its lead finding (findings/<id>/) */
  id: string;
  /** the lead finding's title */
  title: string;
  kind: 'divergence' | 'crash' | 'hang';
  /** every title it was seen with, most frequent first */
  titles: BugTitle[];
  /** its findings' ids, the lead first */
  findings: string[];
  count: number;
  first_seen: string;
  last_seen: string;
  kernels: Record<string, BugKernel>;
  /** known on every kernel it was seen on */
  known: boolean;
  known_note?: string;
  /** why its titles are one bug, one line per piece of evidence (empty for a single title) */
  why: string[];
}

/** At most this many pieces of evidence are kept per store; later ones with new titles still count. */
export const MAX_EVIDENCE = 2000;
/** At most this many slab object signatures per finding. */
export const MAX_SLAB_OBJECTS = 8;

export function evidenceKey(e: Pick<Evidence, 'kind' | 'titles'>): string {
  return `${e.kind}\n${e.titles.join('\n')}`;
}

/** Evidence with its titles cleaned (one line each), deduplicated and sorted; undefined when fewer than two remain. */
export function makeEvidence(kind: EvidenceKind, titles: readonly string[], why: string, at?: string): Evidence | undefined {
  const t = [...new Set(titles.map((x) => stripControl(x).replace(/\s+/g, ' ').trim()).filter(Boolean))].sort();
  if (t.length < 2) return undefined;
  const e: Evidence = { kind, titles: t, why: stripControl(why).replace(/\s+/g, ' ').trim().slice(0, 400) };
  if (at) e.at = at;
  return e;
}

// ---------------------------------------------------------------------------------------------
// Slab objects: where the object of a slub / KFENCE / KASAN report was allocated and freed

/** Modules whose functions make a slab object signature worth grouping on (uacce and its parent driver). */
export const SUBJECT_MODULES: readonly string[] = ['uacce', 'svadiff_test'];

/** The track headers of the allocators' debug reports and the frame they may name themselves. */
const TRACK_RE: readonly { which: 'alloc' | 'free'; re: RegExp }[] = [
  // slub print_track (mm/slub.c): "Allocated in f+0x49/0x120 [mod] age=13 cpu=0 pid=92"
  { which: 'alloc', re: /^Allocated in ([A-Za-z_.$][\w.$]*)\+0x[0-9a-f]+\/0x[0-9a-f]+(?:\s+\[([\w-]+)\])?/ },
  { which: 'free', re: /^Freed in ([A-Za-z_.$][\w.$]*)\+0x[0-9a-f]+\/0x[0-9a-f]+(?:\s+\[([\w-]+)\])?/ },
  // KFENCE (mm/kfence/report.c): "allocated by task 132 on cpu 0 at …:", "freed by task …:"
  { which: 'alloc', re: /^allocated by task \d+/ },
  { which: 'free', re: /^freed by task \d+/ },
  // KASAN (mm/kasan/report.c): "Allocated by task 132:", "Freed by task 132:"
  { which: 'alloc', re: /^Allocated by task \d+/ },
  { which: 'free', re: /^Freed by task \d+/ },
];
const STACK_FRAME_RE = /^\s+([A-Za-z_.$][\w.$]*)\+0x[0-9a-f]+\/0x[0-9a-f]+(?:\s+\[([\w-]+)\])?/;
const CONSOLE_PREFIX_RE = /^(?:<\d{1,3}>)?\[\s*\d+\.\d+\](?:\[\s*[CT]\d+\])? ?/;

interface Track {
  frames: { fn: string; module?: string }[];
}

/** Frames of the slab allocator's free path: a report whose stack goes through one was made by a free. */
const FREE_PATH_RE = /^(?:free_to_partial_list|__slab_free|do_slab_free|slab_free\w*|free_debug_processing|free_consistency_checks|kfree\w*|kmem_cache_free\w*|__kmem_cache_free\w*|kvfree)$/;
/** slub's report header (mm/slub.c slab_bug): "BUG kmalloc-8 (Tainted: …): Object already free" */
const SLUB_HEADER_RE = /^BUG ([\w.:-]+) \((?:Tainted|Not tainted)/;
const CALL_TRACE_RE = /^\s*Call [Tt]race:/;
const UNRELIABLE_FRAME_RE = /^\s+\?\s/;

/**
 * What a report's text says about slab objects, as signatures without addresses, offsets, ages
 * or pids (the same bug gives the same ones in every run):
 *
 * - "allocated in A, freed in F": an object's allocation and free sites (slub's tracks, KFENCE's
 *   and KASAN's stacks; A and F the first frames that are not the allocator's own), when a
 *   function of `modules` (or a uacce_* function) is in them;
 * - "<cache> object freed in F": slub found something wrong with an object of <cache> that F
 *   frees (slub's "Freed in F" track, or a report made on the free path, called from F).
 *
 * slabObjectEvidence groups on the first kind, and on the second only where the first kind
 * names F as the free site of a uacce object.
 */
export function slabObjectSignatures(excerpt: string, modules: readonly string[] = SUBJECT_MODULES): string[] {
  const out: string[] = [];
  const add = (sig: string) => {
    if (!out.includes(sig)) out.push(sig);
  };
  let cache: string | undefined;
  let alloc: Track | undefined;
  let current: Track | undefined;
  let pendingFree: Track | undefined;
  /** in a call trace: whether a free-path frame came before the first other one */
  let trace: { free: boolean } | undefined;
  const name = (x: { fn: string; module?: string }) => `${x.fn}${x.module ? ` [${x.module}]` : ''}`;
  const first = (t: Track) => t.frames.find((f) => !isHelperFrame(f.fn));
  const finish = (free: Track) => {
    const f = first(free);
    if (f && cache) add(`${cache} object freed in ${name(f)}`);
    if (!alloc) return;
    const subject = (t: Track) => t.frames.some((x) => (x.module !== undefined && modules.includes(x.module)) || /^uacce_/.test(x.fn));
    const a = first(alloc);
    if (a && f && (subject(alloc) || subject(free))) add(`allocated in ${name(a)}, freed in ${name(f)}`);
    alloc = undefined;
  };
  for (const raw of excerpt.split('\n')) {
    const line = stripControl(raw).replace(CONSOLE_PREFIX_RE, '');
    const header = SLUB_HEADER_RE.exec(line);
    if (header?.[1]) {
      cache = header[1];
      alloc = undefined;
      trace = undefined;
    }
    if (CALL_TRACE_RE.test(line)) {
      trace = { free: false };
      continue;
    }
    const track = TRACK_RE.find((t) => t.re.test(line.trim()));
    if (track) {
      trace = undefined;
      if (pendingFree) finish(pendingFree);
      pendingFree = undefined;
      const m = track.re.exec(line.trim());
      current = { frames: [] };
      if (m?.[1]) current.frames.push({ fn: normalizeFunction(m[1]), ...(m[2] ? { module: m[2] } : {}) });
      if (track.which === 'alloc') alloc = current;
      else pendingFree = current;
      continue;
    }
    const f = STACK_FRAME_RE.exec(line);
    if (trace) {
      if (f?.[1] && !UNRELIABLE_FRAME_RE.test(line)) {
        const fn = normalizeFunction(f[1]);
        if (FREE_PATH_RE.test(fn)) trace.free = true;
        else if (!isHelperFrame(fn)) {
          if (trace.free && cache) add(`${cache} object freed in ${name({ fn, ...(f[2] ? { module: f[2] } : {}) })}`);
          trace = undefined;
        }
      }
      continue;
    }
    if (!current) continue;
    if (f?.[1]) {
      const frame = { fn: normalizeFunction(f[1]), ...(f[2] ? { module: f[2] } : {}) };
      const last = current.frames[current.frames.length - 1];
      // slub names the caller on the header line and again as the stack's first frame
      if (!(current.frames.length === 1 && last?.fn === frame.fn)) current.frames.push(frame);
      continue;
    }
    // the track ended
    if (pendingFree) finish(pendingFree);
    pendingFree = undefined;
    current = undefined;
  }
  if (pendingFree) finish(pendingFree);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Grouping

class UnionFind {
  private readonly parent = new Map<string, string>();
  find(x: string): string {
    let p = this.parent.get(x) ?? x;
    if (p !== x) {
      p = this.find(p);
      this.parent.set(x, p);
    }
    return p;
  }
  union(a: string, b: string): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return;
    // the smaller key is the root: the result does not depend on the order of the unions
    if (ra < rb) this.parent.set(rb, ra);
    else this.parent.set(ra, rb);
  }
}

/** The known issues of a series, or undefined when none are loaded for it. */
export type KnownLookup = (series: string) => KnownIssues | undefined;

/** Evidence from the known-issue lists: titles of the findings that one entry, or entries with one link, cover. */
export function knownIssueEvidence(findings: readonly FindingForBugs[], knownFor: KnownLookup, seriesOfRelease: (release: string, spec: string) => string | undefined): Evidence[] {
  const groups = new Map<string, { titles: Set<string>; issue: KnownIssue; series: string }>();
  for (const f of findings) {
    for (const [rel, k] of Object.entries(f.kernels)) {
      const series = seriesOfRelease(rel, k.spec);
      const list = series ? knownFor(series) : undefined;
      const issue = list?.match(f.title);
      if (!issue || !series) continue;
      const key = `${series}\n${issue.link ?? issue.title ?? issue.title_regex ?? ''}`;
      const g = groups.get(key) ?? { titles: new Set<string>(), issue, series };
      g.titles.add(f.title);
      groups.set(key, g);
    }
  }
  const out: Evidence[] = [];
  for (const g of groups.values()) {
    const how = g.issue.link ? `entries linking ${g.issue.link}` : 'one entry';
    const e = makeEvidence('known-issue', [...g.titles], `the known-issue list of ${g.series} (corpus/known/${g.series}.json) names them as one issue (${how})`);
    if (e) out.push(e);
  }
  return out;
}

/**
 * Evidence from slab object signatures (slabObjectSignatures): findings whose reports name the
 * same uacce object's allocation and free sites, and findings whose reports are bad frees of a
 * cache's object from the function that such a uacce object is freed in.
 */
export function slabObjectEvidence(findings: readonly FindingForBugs[]): Evidence[] {
  const bySig = new Map<string, string[]>();
  for (const f of findings) for (const s of f.slab_objects ?? []) bySig.set(s, [...(bySig.get(s) ?? []), f.title]);
  /** free sites of uacce objects: "freed in F" of the allocated/freed signatures */
  const uacceFrees = new Set<string>();
  for (const s of bySig.keys()) {
    const m = /^allocated in .+, freed in (.+)$/.exec(s);
    if (m?.[1]) uacceFrees.add(m[1]);
  }
  const out: Evidence[] = [];
  for (const [sig, titles] of bySig) {
    const free = /^(\S+) object freed in (.+)$/.exec(sig);
    if (free) {
      if (!free[2] || !uacceFrees.has(free[2])) continue;
      const e = makeEvidence('slab-object', titles, `slub found a bad ${free[1]} object freed in ${free[2]}, where a uacce object is freed (the free site of a report's object)`);
      if (e) out.push(e);
      continue;
    }
    const e = makeEvidence('slab-object', titles, `the reports name the same slab object: ${sig}`);
    if (e) out.push(e);
  }
  return out;
}

export interface GroupInput {
  findings: readonly FindingForBugs[];
  /** stored evidence (same-run, minimized-program, preceding-program) */
  evidence: readonly Evidence[];
  /** known issues per series (already loaded) */
  knownFor?: KnownLookup;
  seriesOf?: (release: string, spec: string) => string | undefined;
  /** a known issue's note as shown */
  describeKnown?: (k: KnownIssue) => string;
}

/** Divergences group only with divergences, crashes and hangs with each other: evidence across them is ignored. */
function family(kind: FindingForBugs['kind']): 'divergence' | 'crash' {
  return kind === 'divergence' ? 'divergence' : 'crash';
}

/**
 * The bugs of a store: connected components of titles under the evidence. Every finding is in
 * exactly one bug; titles that evidence names but no finding has (a reproduction run showed
 * them) are added to the bug of a finding they are linked with. The lead finding (the bug's id
 * and title) is the most frequent one, then the earliest id; bugs come most frequent first.
 */
export function groupBugs(input: GroupInput): Bug[] {
  const byTitle = new Map<string, FindingForBugs>();
  for (const f of input.findings) byTitle.set(f.title, f);
  const seriesOf = input.seriesOf ?? (() => undefined);
  const all: Evidence[] = [
    ...input.evidence,
    ...slabObjectEvidence(input.findings),
    ...(input.knownFor ? knownIssueEvidence(input.findings, input.knownFor, seriesOf) : []),
  ];
  const uf = new UnionFind();
  /** per evidence used: the titles it links (those of findings, and extra titles of one family) */
  const used: { e: Evidence; titles: string[] }[] = [];
  const extraTitles = new Map<string, number>();
  for (const e of all) {
    const known = e.titles.filter((t) => byTitle.has(t));
    if (known.length === 0) continue;
    const fam = family(byTitle.get(known[0]!)!.kind);
    // titles of the other family are left out; unknown titles join as crash titles of this family
    const titles = e.titles.filter((t) => {
      const f = byTitle.get(t);
      return f ? family(f.kind) === fam : fam === 'crash';
    });
    if (titles.length < 2) continue;
    for (const t of titles) {
      uf.union(titles[0]!, t);
      if (!byTitle.has(t)) extraTitles.set(t, (extraTitles.get(t) ?? 0) + 1);
    }
    used.push({ e, titles });
  }
  const groups = new Map<string, { findings: FindingForBugs[]; extra: string[] }>();
  for (const f of input.findings) {
    const root = uf.find(f.title);
    const g = groups.get(root) ?? { findings: [], extra: [] };
    g.findings.push(f);
    groups.set(root, g);
  }
  for (const t of extraTitles.keys()) {
    const g = groups.get(uf.find(t));
    if (g) g.extra.push(t);
  }
  const bugs: Bug[] = [];
  for (const [root, g] of groups) {
    const members = [...g.findings].sort((a, b) => b.count - a.count || a.id.localeCompare(b.id));
    const lead = members[0]!;
    const titles: BugTitle[] = [
      ...members.map((f) => ({ title: f.title, finding: f.id, count: f.count })),
      ...g.extra.sort().map((t) => ({ title: t, count: 0 })),
    ];
    const kernels: Record<string, BugKernel> = {};
    for (const f of members) {
      for (const [rel, k] of Object.entries(f.kernels)) {
        const mine = kernels[rel];
        if (!mine) kernels[rel] = { spec: k.spec, count: k.count, first_seen: k.first_seen, last_seen: k.last_seen };
        else {
          mine.count += k.count;
          if (k.first_seen < mine.first_seen) mine.first_seen = k.first_seen;
          if (k.last_seen > mine.last_seen) mine.last_seen = k.last_seen;
        }
      }
    }
    // known on a kernel when any of its titles is listed for that kernel's series
    if (input.knownFor) {
      for (const [rel, k] of Object.entries(kernels)) {
        const series = seriesOf(rel, k.spec);
        const list = series ? input.knownFor(series) : undefined;
        for (const t of titles) {
          const issue = list?.match(t.title);
          if (issue) {
            const note = (input.describeKnown ?? ((i: KnownIssue) => i.note))(issue);
            k.known = t.title === lead.title ? note : `${note} (listed as "${t.title}")`;
            break;
          }
        }
      }
    }
    const why: string[] = [];
    for (const u of used) {
      if (uf.find(u.titles[0]!) !== root) continue;
      const line = `${u.e.kind}: ${u.titles.map((t) => JSON.stringify(t)).join(' + ')}: ${u.e.why}`;
      if (!why.includes(line)) why.push(line);
    }
    const ks = Object.values(kernels);
    const bug: Bug = {
      id: lead.id,
      title: lead.title,
      kind: lead.kind,
      titles,
      findings: members.map((f) => f.id),
      count: members.reduce((s, f) => s + f.count, 0),
      first_seen: members.reduce((s, f) => (f.first_seen < s ? f.first_seen : s), lead.first_seen),
      last_seen: members.reduce((s, f) => (f.last_seen > s ? f.last_seen : s), lead.last_seen),
      kernels,
      known: ks.length > 0 && ks.every((k) => k.known !== undefined),
      why,
    };
    const note = ks.find((k) => k.known !== undefined)?.known;
    if (note) bug.known_note = note;
    bugs.push(bug);
  }
  return bugs.sort((a, b) => b.count - a.count || a.id.localeCompare(b.id));
}
