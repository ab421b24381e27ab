/**
 * svadiff known add <finding-dir> (--link URL | --reason TEXT) --note TEXT [--series S]
 * svadiff known list [--series S]
 *
 * The reviewed known-issue lists of corpus/known/<series>.json (format: corpus/known/README.md,
 * parser: harness/findings/known.ts). `add` puts a finding's exact title into its kernel
 * series' list, so that later runs label that finding known; the file is checked with the same
 * parser the store uses before it is written (atomically).
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { currentTitle, FINDING_FORMAT, type Finding } from '../findings/store.js';
import { parseArch } from '../../kernels/index.js';
import { KNOWN_ARCHES, KNOWN_FORMAT, KNOWN_VERSION, knownIssuesDir, loadKnownIssues, parseKnownIssues, seriesOf, type KnownIssue } from '../findings/known.js';
import { UserError } from '../util/errors.js';
import { atomicWrite } from '../util/fsx.js';
import { info } from '../util/log.js';
import { safeLine } from '../util/sanitize.js';

const USAGE =
  'usage: svadiff known add <finding-dir> (--link URL | --reason TEXT) --note TEXT [--series S] [--arch A]\n' + '       svadiff known list [--series S]';

const SERIES_RE = /^\d{1,3}\.\d{1,3}$/;

/** The finding.json of a finding directory (<out>/findings/<id>/), checked enough to use. */
export async function readFinding(dir: string): Promise<Finding> {
  const fpath = join(dir, 'finding.json');
  let text: string;
  try {
    text = await fs.readFile(fpath, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new UserError(`${dir} is not a finding directory (no finding.json); give one like <out>/findings/<id>`);
    }
    throw new UserError(`cannot read ${fpath}: ${(e as Error).message}`);
  }
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new UserError(`${fpath}: not valid JSON (${(e as Error).message}); run the fuzzer again to rewrite it`);
  }
  const k = raw.kernel as Record<string, unknown> | null | undefined;
  if (
    raw.format !== FINDING_FORMAT ||
    typeof raw.id !== 'string' ||
    typeof raw.title !== 'string' ||
    raw.title === '' ||
    !['divergence', 'crash', 'hang'].includes(raw.kind as string) ||
    typeof k !== 'object' ||
    k === null ||
    typeof k.spec !== 'string' ||
    typeof k.release !== 'string'
  ) {
    throw new UserError(`${fpath}: not an svadiff finding (id, kind, title and kernel are needed)`);
  }
  return raw as unknown as Finding;
}

export async function cmdKnown(args: string[], dir: string = knownIssuesDir()): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'add') return knownAdd(rest, dir);
  if (sub === 'list') return knownList(rest, dir);
  throw new UserError(`svadiff known: say add or list\n${USAGE}`);
}

function checkSeries(s: string | undefined): string | undefined {
  if (s !== undefined && !SERIES_RE.test(s)) throw new UserError(`--series must look like 6.12, got "${safeLine(s, 40)}"`);
  return s;
}

/** One line of text for a JSON field: no control characters, not empty. */
function oneLine(name: string, v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const t = v.trim();
  if (t === '') throw new UserError(`--${name} must not be empty`);
  if (/[\x00-\x1f\x7f]/.test(t)) throw new UserError(`--${name} must be one line of text without control characters`);
  return t;
}

async function knownAdd(args: string[], dir: string): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { link: { type: 'string' }, reason: { type: 'string' }, note: { type: 'string' }, series: { type: 'string' }, arch: { type: 'string' } },
  });
  if (positionals.length !== 1) throw new UserError(USAGE);
  const note = oneLine('note', values.note);
  const link = oneLine('link', values.link);
  const reason = oneLine('reason', values.reason);
  if (!note) throw new UserError('say what the issue is with --note TEXT');
  if (!link && !reason) throw new UserError('give --link URL (where the bug is discussed or fixed) or --reason TEXT (why it is not a kernel bug)');
  if (link && !/^[a-z][a-z0-9+.-]*:\S+$/i.test(link)) throw new UserError(`--link must be a URL (scheme:…), got "${safeLine(link, 80)}"`);

  const f = await readFinding(positionals[0]!);
  const title = currentTitle(f.kind, f.title); // a finding of an older svadiff may have values in its title
  const { release, spec } = f.kernel;
  const series = checkSeries(values.series) ?? seriesOf(release) ?? seriesOf(spec);
  if (!series) throw new UserError(`cannot tell the kernel series of ${safeLine(release, 60)}; give --series (e.g. 6.12)`);

  // --arch: a title only that architecture gives goes into <series>-<arch>.json
  const arch = values.arch === undefined ? undefined : parseArch(values.arch);
  const path = join(dir, arch === undefined ? `${series}.json` : `${series}-${arch}.json`);
  let doc: Record<string, unknown>;
  let text: string | undefined;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new UserError(`cannot read ${path}: ${(e as Error).message}`);
  }
  if (text !== undefined) {
    const current = parseKnownIssues(text, path, series, arch); // a broken file is reported, never overwritten
    const already = current.match(title);
    if (already) {
      info(`already known for ${series}: ${safeLine(title, 120)} (${safeLine(already.note, 80)}); ${path} unchanged`);
      return 0;
    }
    doc = JSON.parse(text) as Record<string, unknown>;
  } else {
    doc =
      arch === undefined
        ? { format: KNOWN_FORMAT, version: KNOWN_VERSION, series, comment: `Reviewed titles known for ${series} kernels; see README.md.`, issues: [] }
        : { format: KNOWN_FORMAT, version: KNOWN_VERSION, series, arch, comment: `Reviewed titles known for ${series} kernels on ${arch} only; see README.md.`, issues: [] };
  }
  const entry: KnownIssue = { title, note };
  if (link) entry.link = link;
  if (reason) entry.reason = reason;
  doc.issues = [...((doc.issues as unknown[]) ?? []), entry];
  const out = JSON.stringify(doc, null, 2) + '\n';
  parseKnownIssues(out, path, series, arch); // the result must be what the store reads
  await atomicWrite(path, out);
  info(`added to ${path}: ${safeLine(title, 160)}`);
  return 0;
}

async function knownList(args: string[], dir: string): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { series: { type: 'string' } } });
  if (positionals.length > 0) throw new UserError(USAGE);
  let series: string[];
  const one = checkSeries(values.series);
  if (one) series = [one];
  else {
    let names: string[] = [];
    try {
      names = await fs.readdir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new UserError(`cannot list ${dir}: ${(e as Error).message}`);
    }
    series = names
      .filter((n) => n.endsWith('.json') && SERIES_RE.test(n.slice(0, -5)))
      .map((n) => n.slice(0, -5))
      .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  }
  const L: string[] = [];
  const lists: { label: string; issues: readonly KnownIssue[]; source: string }[] = [];
  for (const s of series) {
    const k = await loadKnownIssues(s, dir);
    lists.push({ label: s, issues: k.issues, source: k.source });
    for (const a of KNOWN_ARCHES) {
      const both = await loadKnownIssues(s, dir, a);
      const own = both.issues.slice(k.issues.length);
      if (own.length > 0) lists.push({ label: `${s} (${a} only)`, issues: own, source: both.source });
    }
  }
  for (const k of lists) {
    L.push(`${k.label}: ${k.issues.length} known issue${k.issues.length === 1 ? '' : 's'}${k.source ? '' : ' (no file)'}`);
    for (const i of k.issues) {
      L.push(`  ${i.title !== undefined ? i.title : `/${i.title_regex}/`}`);
      L.push(`      ${i.note}`);
      if (i.link) L.push(`      link: ${i.link}`);
      if (i.reason) L.push(`      reason: ${i.reason}`);
    }
  }
  if (series.length === 0) L.push(`no known-issue files in ${dir}`);
  process.stdout.write(L.map((l) => safeLine(l, 400)).join('\n') + '\n');
  return 0;
}
