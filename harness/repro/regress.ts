/**
 * Regression corpus entries (corpus/regress/<name>.json): a minimized program of a real kernel
 * bug and the outcome recorded when it was made. test/integration/corpus.test.ts replays every
 * entry whose series matches the kernel under test and asserts the outcome exactly. Format:
 * corpus/regress/README.md.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { FindingKind } from '../findings/store.js';
import { checkProgram, parseProgram } from '../program/parse.js';
import type { Program } from '../program/types.js';
import { UserError } from '../util/errors.js';
import { projectRoot } from '../util/paths.js';

export const REGRESS_FORMAT = 'svadiff-regress';
export const REGRESS_VERSION = 1;

export interface RegressEntry {
  format: typeof REGRESS_FORMAT;
  version: typeof REGRESS_VERSION;
  /** the file name without .json */
  name: string;
  /** what the bug is, and why the semantics sheet is right about it (or why that is unsure) */
  note: string;
  outcome: {
    kind: FindingKind;
    /** the exact finding title the program gives on the recorded kernel */
    title: string;
  };
  recorded: {
    /** the kernel series the outcome holds for, e.g. "6.12" */
    series: string;
    /** the exact kernel it was recorded on */
    kernel: string;
    release: string;
    /** ISO date */
    date: string;
    /** how the program was made (commands) */
    how: string;
    /** reproducer reliability when it was recorded, e.g. "5/5" */
    reliability: string;
  };
  program: Program;
}

const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

export function parseRegressEntry(text: string, source: string, name: string): RegressEntry {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${source}: not valid JSON (${(e as Error).message}); see corpus/regress/README.md`);
  }
  return checkRegressEntry(raw, source, name);
}

/** A parsed entry checked; `name` is the file name it must carry (undefined: any, for a copy elsewhere). */
function checkRegressEntry(raw: unknown, source: string, name: string | undefined): RegressEntry {
  const fail = (msg: string): never => {
    throw new UserError(`${source}: ${msg}; see corpus/regress/README.md`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail('must be a JSON object');
  const o = raw as Record<string, unknown>;
  if (o.format !== REGRESS_FORMAT || o.version !== REGRESS_VERSION) fail(`must have "format": "${REGRESS_FORMAT}" and "version": ${REGRESS_VERSION}`);
  for (const k of Object.keys(o)) if (!['format', 'version', 'name', 'note', 'outcome', 'recorded', 'program'].includes(k)) fail(`unknown field "${k}"`);
  if (name !== undefined && o.name !== name) fail(`field "name" must be "${name}" (the file name)`);
  if (!isStr(o.name)) fail('field "name" must be the file name without .json');
  if (!isStr(o.note) || /^\s*TODO/i.test(o.note as string)) fail('field "note" must say what the bug is (not TODO)');
  const out = o.outcome as Record<string, unknown> | undefined;
  if (!out || !['divergence', 'crash', 'hang'].includes(out.kind as string) || !isStr(out.title)) fail('field "outcome" must have "kind" (divergence, crash or hang) and "title"');
  const rec = o.recorded as Record<string, unknown> | undefined;
  if (!rec || !['series', 'kernel', 'release', 'date', 'how', 'reliability'].every((k) => isStr(rec[k]))) {
    fail('field "recorded" must have series, kernel, release, date, how and reliability');
  }
  if (!/^\d{1,3}\.\d{1,3}$/.test(rec!.series as string)) fail('field "recorded.series" must look like 6.12');
  const program = checkProgram(o.program, `${source}: program`);
  return { ...(o as unknown as RegressEntry), program };
}

/**
 * A file given where a program is expected (run, replay, bisect): a program, or a regression
 * corpus entry, whose program runs and whose entry says what reproducing it means.
 */
export function parseProgramOrEntry(text: string, source: string): { program: Program; entry?: RegressEntry } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${source}: not valid JSON: ${(e as Error).message}`);
  }
  if (typeof raw === 'object' && raw !== null && (raw as { format?: unknown }).format === REGRESS_FORMAT) {
    const entry = checkRegressEntry(raw, source, undefined);
    return { program: entry.program, entry };
  }
  return { program: checkProgram(raw, source) };
}

export function regressDir(): string {
  return join(projectRoot(), 'corpus', 'regress');
}

/** Every entry of the corpus, sorted by name. */
export async function loadRegressCorpus(dir = regressDir()): Promise<RegressEntry[]> {
  let names: string[];
  try {
    names = (await fs.readdir(dir)).filter((n) => n.endsWith('.json')).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const out: RegressEntry[] = [];
  for (const n of names) {
    const path = join(dir, n);
    out.push(parseRegressEntry(await fs.readFile(path, 'utf8'), path, n.slice(0, -'.json'.length)));
  }
  return out;
}

/** The seed programs (corpus/seeds: valid programs that must give no finding), by file name order. */
export async function loadSeedPrograms(dir = join(projectRoot(), 'corpus', 'seeds')): Promise<Program[]> {
  const names = (await fs.readdir(dir)).filter((n) => n.endsWith('.json')).sort();
  return Promise.all(names.map(async (n) => parseProgram(await fs.readFile(join(dir, n), 'utf8'), n)));
}
