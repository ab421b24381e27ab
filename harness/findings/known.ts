/**
 * Known issues: a small reviewed list, per kernel series, of finding titles that are already
 * understood (an upstream bug with a link, an artefact of the emulated machine with a reason).
 * The findings store labels a finding `known` when its title is listed for the kernels it was
 * seen on, so that a fuzzing run's summary points at what is new. Format: corpus/known/README.md.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { currentDivergenceTitle } from '../oracle/check.js';
import { parseJsonObject, UserError } from '../util/errors.js';
import { projectRoot } from '../util/paths.js';
import type { Arch } from '../../kernels/types.js';

export const KNOWN_FORMAT = 'svadiff-known-issues';
export const KNOWN_VERSION = 1;

export interface KnownIssue {
  /** exact title, or … */
  title?: string;
  /** … a regular expression (JavaScript syntax, matched against the whole title unless anchored otherwise) */
  title_regex?: string;
  /** what the issue is, one line */
  note: string;
  /** where it is discussed or fixed (mailing list, commit, bug tracker) … */
  link?: string;
  /** … or why it is not a kernel bug (e.g. an artefact of TCG) */
  reason?: string;
}

export interface KnownIssues {
  series: string;
  /** the file the list came from ('' when the series has no file) */
  source: string;
  issues: readonly KnownIssue[];
  /** the first issue whose title or title_regex matches */
  match(title: string): KnownIssue | undefined;
}

const SERIES_RE = /^\d{1,3}\.\d{1,3}$/;

/** The directory of the known-issue files: those shipped with svadiff, or SVADIFF_KNOWN_DIR (a team's own lists). */
export function knownIssuesDir(): string {
  return process.env.SVADIFF_KNOWN_DIR || join(projectRoot(), 'corpus', 'known');
}

/**
 * The guest architecture of a kernel, from its release ("6.12.118+deb12-arm64") or spec
 * ("debian:6.12.118/arm64"); x86_64 when neither names arm64 (every kernel before arm64).
 */
export function archOfKernel(release: string, spec = ''): Arch {
  return /-arm64$/.test(release) || /\/(arm64|aarch64)$/.test(spec) ? 'arm64' : 'x86_64';
}

/** The kernel series ("6.12") of a release ("6.12.117+deb12-amd64") or spec ("debian:6.12.117"). */
export function seriesOf(kernel: string): string | undefined {
  const m = /(?:^|[^\d.])(\d{1,3})\.(\d{1,3})(?:[.+-]|$)/.exec(kernel);
  return m ? `${Number(m[1])}.${Number(m[2])}` : undefined;
}

/**
 * Check the text of a known-issue file. Every problem is one line naming the file, the entry
 * and the fix.
 */
export function parseKnownIssues(text: string, source: string, series: string, arch?: Arch): KnownIssues {
  const fail = (msg: string): never => {
    throw new UserError(`${source}: ${msg}`);
  };
  const o = parseJsonObject(text, source, 'fix the file or restore it from git', 'see corpus/known/README.md');
  if (o.format !== KNOWN_FORMAT) fail(`field "format" must be "${KNOWN_FORMAT}"`);
  if (o.version !== KNOWN_VERSION) fail(`field "version" must be ${KNOWN_VERSION}`);
  if (o.series !== series) fail(`field "series" must be "${series}" (the file name), got ${JSON.stringify(o.series)}`);
  // a list of one architecture (<series>-<arch>.json) says which; the series list names none
  if (o.arch !== arch) fail(arch === undefined ? 'field "arch" belongs in <series>-<arch>.json files only' : `field "arch" must be "${arch}" (the file name), got ${JSON.stringify(o.arch)}`);
  for (const k of Object.keys(o)) {
    if (!['format', 'version', 'series', 'arch', 'comment', 'issues'].includes(k)) fail(`unknown field "${k}"`);
  }
  if (!Array.isArray(o.issues)) return fail('field "issues" must be an array (empty when nothing is known)');
  const issues: KnownIssue[] = [];
  const regexes: (RegExp | undefined)[] = [];
  o.issues.forEach((e: unknown, i: number) => {
    const where = `issues[${i}]`;
    if (typeof e !== 'object' || e === null || Array.isArray(e)) return fail(`${where}: must be an object`);
    const x = e as Record<string, unknown>;
    for (const k of Object.keys(x)) {
      if (!['title', 'title_regex', 'note', 'link', 'reason'].includes(k)) fail(`${where}: unknown field "${k}"`);
    }
    const hasTitle = typeof x.title === 'string' && x.title.length > 0;
    const hasRegex = typeof x.title_regex === 'string' && x.title_regex.length > 0;
    if (hasTitle === hasRegex) fail(`${where}: give exactly one of "title" and "title_regex" (a non-empty string)`);
    if (typeof x.note !== 'string' || x.note.trim() === '') fail(`${where}: field "note" must say what the issue is`);
    const hasLink = typeof x.link === 'string' && x.link.length > 0;
    const hasReason = typeof x.reason === 'string' && x.reason.length > 0;
    if (!hasLink && !hasReason) fail(`${where}: give a "link" (where the bug is discussed or fixed) or a "reason" (why it is not a kernel bug)`);
    for (const k of ['link', 'reason'] as const) {
      if (x[k] !== undefined && typeof x[k] !== 'string') fail(`${where}: field "${k}" must be a string`);
    }
    const issue: KnownIssue = { note: x.note as string };
    let re: RegExp | undefined;
    if (hasTitle) issue.title = x.title as string;
    else {
      issue.title_regex = x.title_regex as string;
      try {
        re = new RegExp(issue.title_regex);
      } catch (err) {
        fail(`${where}: field "title_regex" is not a valid regular expression: ${(err as Error).message}`);
      }
    }
    if (hasLink) issue.link = x.link as string;
    if (hasReason) issue.reason = x.reason as string;
    issues.push(issue);
    regexes.push(re);
  });
  return knownIssues(series, source, issues, regexes);
}

function knownIssues(series: string, source: string, issues: KnownIssue[], regexes: (RegExp | undefined)[]): KnownIssues {
  return {
    series,
    source,
    issues,
    match(title: string): KnownIssue | undefined {
      // an exact title written when divergence titles carried values still matches
      const now = currentDivergenceTitle(title);
      const exact = (t: string) => issues.find((issue, i) => (issue.title !== undefined ? currentDivergenceTitle(issue.title) === t : (regexes[i]?.test(title) ?? false)));
      // a known divergence seen inside a concurrent group ("mmap (concurrent with exit): expected
      // EEXIST, got ok [mmap.exists]") is the same bug when the op alone gives the known title;
      // a group-only outcome ("one of {…}", "no order of the group gives it") stays its own title
      const alone = now.replace(/^([^:(]+?) \(concurrent with [^)]*\):/, '$1:');
      return exact(now) ?? (alone !== now ? exact(alone) : undefined);
    },
  };
}

/** The architectures that may have a list of their own besides the series list. */
export const KNOWN_ARCHES: readonly Arch[] = ['x86_64', 'arm64'];

async function readKnownFile(path: string, series: string, arch?: Arch): Promise<KnownIssues | undefined> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UserError(`cannot read ${path}: ${(e as Error).message}`);
  }
  return parseKnownIssues(text, path, series, arch);
}

/**
 * The known issues of a kernel series, from `<dir>/<series>.json`, and for a kernel of one
 * architecture also `<dir>/<series>-<arch>.json`: what only that architecture shows (the same
 * use-after-free is "general protection fault in …" on x86_64 and "BUG: unable to handle page
 * fault in …" on arm64). A series without a file has no known issues; a file that is there but
 * wrong is an error naming the fix.
 */
export async function loadKnownIssues(series: string, dir: string = knownIssuesDir(), arch?: Arch): Promise<KnownIssues> {
  if (!SERIES_RE.test(series)) throw new UserError(`kernel series ${JSON.stringify(series.slice(0, 40))} is not of the form 6.12`);
  const common = await readKnownFile(join(dir, `${series}.json`), series);
  const own = arch === undefined ? undefined : await readKnownFile(join(dir, `${series}-${arch}.json`), series, arch);
  const lists = [common, own].filter((k): k is KnownIssues => k !== undefined);
  if (lists.length === 0) return knownIssues(series, '', [], []);
  if (lists.length === 1) return lists[0]!;
  const issues = lists.flatMap((k) => k.issues);
  return {
    series,
    source: lists.map((k) => k.source).join(' + '),
    issues,
    match: (title) => common?.match(title) ?? own?.match(title),
  };
}
