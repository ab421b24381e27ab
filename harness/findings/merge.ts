/**
 * Merging stores: the findings, grouping evidence and night records of several output
 * directories (shards of one nightly matrix, runs on several machines) into one. A finding's
 * counts are kept per run, so a run seen in two sources, or a source merged twice, is counted
 * once; first and last seen are the extremes over the runs. Findings new to the target come with
 * their whole directory; a reproduction (repro.json and its files) comes along when the target
 * has none. Sources are only read.
 */
import { resolve } from 'node:path';
import { UserError } from '../util/errors.js';
import { atomicWriteJson, exists } from '../util/fsx.js';
import { nightPath, readNight, type NightRun } from '../nightly/run.js';
import { FindingStore } from './store.js';

export interface MergeResult {
  sources: number;
  /** findings the target did not have */
  added: number;
  /** findings whose counts or files changed */
  updated: number;
  unchanged: number;
  findings: number;
  bugs: number;
  /** cells of the merged night (when the sources had night.json) */
  cells?: number;
}

export async function mergeStores(target: string, sources: readonly string[], onProblem?: (m: string) => void): Promise<MergeResult> {
  const t = resolve(target);
  for (const s of sources) {
    if (resolve(s) === t) throw new UserError(`${s} is the target of the merge; give the directories to merge from and --out for the one to merge into`);
    if (!(await exists(resolve(s, 'findings'))) && !(await exists(nightPath(s)))) {
      throw new UserError(`${s} is not an svadiff output directory (no findings/ and no night.json); give the --out directories of svadiff fuzz or svadiff nightly`);
    }
  }
  const store = await FindingStore.open(t, onProblem ? { onProblem } : {});
  const res: MergeResult = { sources: sources.length, added: 0, updated: 0, unchanged: 0, findings: 0, bugs: 0 };
  const nights: NightRun[] = [];
  const mine = await readNight(t);
  if (mine) nights.push(mine);
  for (const s of sources) {
    const src = await FindingStore.open(resolve(s), { readOnly: true, ...(onProblem ? { onProblem } : {}) });
    for (const f of src.list()) {
      const r = await store.absorbFinding(f, resolve(src.dir, f.id));
      if (r === 'new') res.added++;
      else if (r === 'merged') res.updated++;
      else res.unchanged++;
    }
    store.absorbEvidence(src.storedEvidence());
    const n = await readNight(resolve(s));
    if (n) nights.push(n);
  }
  await store.refresh();
  res.findings = store.list().length;
  res.bugs = store.bugs().length;
  if (nights.length > 0) {
    const merged = mergeNights(nights);
    await atomicWriteJson(nightPath(t), merged);
    res.cells = merged.cells.length;
  }
  return res;
}

/** One night record from several (shards of one night): cells, shards and reproductions by name, once each. */
export function mergeNights(nights: readonly NightRun[]): NightRun {
  const first = nights[0]!;
  const matrix = (n: NightRun) => JSON.stringify({ k: n.config.kernels, s: n.config.seeds });
  for (const n of nights) {
    if (matrix(n) !== matrix(first)) {
      throw new UserError(`night ${n.night} ran kernels ${n.config.kernels.join(',')} × seeds ${n.config.seeds.join(',')}, night ${first.night} ${first.config.kernels.join(',')} × ${first.config.seeds.join(',')}: merge shards of one matrix`);
    }
  }
  const out: NightRun = structuredClone(first);
  out.night = nights.map((n) => n.night).sort()[0]!;
  out.started = nights.map((n) => n.started).sort()[0]!;
  const finished = nights.map((n) => n.finished).filter((x): x is string => x !== undefined).sort();
  if (finished.length === nights.length) out.finished = finished[finished.length - 1]!;
  else delete out.finished;
  const cells = new Map<string, NightRun['cells'][number]>();
  const shards = new Map<string, { index: number; count: number }>();
  const repros = new Map<string, NightRun['repros'][number]>();
  for (const n of nights) {
    for (const c of n.cells) {
      const have = cells.get(c.name);
      // a finished cell wins over a failed or interrupted one; of two, the one that ran more
      if (!have || (have.status !== 'ok' && c.status === 'ok') || (have.status === c.status && c.programs > have.programs)) cells.set(c.name, c);
    }
    for (const s of n.shards) shards.set(`${s.index}/${s.count}`, s);
    for (const r of n.repros) {
      const have = repros.get(r.bug);
      if (!have || (have.status === 'skipped' || have.status === 'failed')) repros.set(r.bug, r);
    }
  }
  out.cells = [...cells.values()].sort((a, b) => a.index - b.index);
  out.shards = [...shards.values()].sort((a, b) => a.count - b.count || a.index - b.index);
  out.repros = [...repros.values()].sort((a, b) => a.bug.localeCompare(b.bug));
  return out;
}
