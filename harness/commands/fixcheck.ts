/**
 * svadiff fixcheck --patch FIX.patch [--kernels debian:6.12,debian:7.2] [--time 10m] [--claims NAME,...]
 *
 * Does a uacce patch fix what it claims and add nothing? For each kernel: uacce.ko built with
 * the patch (as --uacce-src does) next to the kernel's own, every program of that kernel's series
 * (regression entries, those its known-issue list links, the seeds, --findings DIR) run on both,
 * fuzzing for --time on both (the same programs), and a table of what the patch fixed, left and
 * introduced. Writes fixcheck.txt and fixcheck.json into --out. Exit status 0 when every claim is
 * fixed wherever the unpatched build showed it (no --claims: something is fixed) and nothing is
 * introduced; 1 otherwise.
 */
import { promises as fs } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { checkKernel } from '../fixcheck/run.js';
import { fixcheckVerdict, renderFixcheck, renderKernel, type Claim, type KernelCheck } from '../fixcheck/verdict.js';
import { loadRegressCorpus } from '../repro/regress.js';
import { parseAccel } from '../vm/accel.js';
import { atomicWrite, atomicWriteJson, sha256 } from '../util/fsx.js';
import { UserError } from '../util/errors.js';
import { info } from '../util/log.js';
import { DEFAULT_KERNEL, DEFAULT_OUT, parseDuration, parseIntOption } from './common.js';

export const FIXCHECK_FORMAT = 'svadiff-fixcheck';

const USAGE = 'usage: svadiff fixcheck --patch FIX.patch [--kernels debian:6.12,debian:7.2] [--time 10m] [--claims NAME,...] [--runs 1] [--seed N] [--only NAME,...] [--findings DIR] [--out DIR]';

export interface FixcheckFile {
  format: typeof FIXCHECK_FORMAT;
  version: 1;
  patch: { name: string; sha256: string };
  date: string;
  claims: Claim[];
  kernels: KernelCheck[];
  verdict: ReturnType<typeof fixcheckVerdict>;
}

/** Claims by regress entry name (its recorded title) or by title. */
export async function resolveClaims(names: readonly string[]): Promise<Claim[]> {
  const corpus = await loadRegressCorpus();
  return names.map((n) => {
    const e = corpus.find((x) => x.name === n || `corpus/regress/${x.name}.json` === n);
    if (e) return { name: e.name, title: e.outcome.title };
    if (/[:\s]/.test(n)) return { name: n, title: n };
    throw new UserError(`--claims ${n}: no regression entry has that name (corpus/regress/); give an entry's name or a finding title`);
  });
}

export async function cmdFixcheck(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      patch: { type: 'string' },
      kernels: { type: 'string' },
      kernel: { type: 'string' },
      time: { type: 'string' },
      seed: { type: 'string' },
      runs: { type: 'string' },
      claims: { type: 'string' },
      only: { type: 'string' },
      findings: { type: 'string' },
      out: { type: 'string' },
      accel: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (positionals.length > 0 || values.patch === undefined) throw new UserError(USAGE);
  const patch = resolve(values.patch);
  const text = await fs.readFile(patch).catch((e: NodeJS.ErrnoException) => {
    throw new UserError(`--patch ${values.patch}: ${e.code ?? e.message}; give a patch file (diff -u or git format-patch)`);
  });
  const list = (v: string | undefined) => (v ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  const kernels = list(values.kernels ?? values.kernel ?? DEFAULT_KERNEL);
  if (kernels.length === 0) throw new UserError(`--kernels is empty; give e.g. debian:6.12,debian:7.2`);
  const timeMs = values.time === undefined ? 600_000 : values.time === '0' ? 0 : parseDuration(values.time);
  const seed = parseIntOption('seed', values.seed, 0, 2 ** 31 - 1) ?? 1;
  const runs = parseIntOption('runs', values.runs, 1, 20) ?? 1;
  const claims = await resolveClaims(list(values.claims));
  const hash = sha256(text);
  const outDir = join(resolve(values.out ?? DEFAULT_OUT), 'fixcheck', `${basename(patch).replace(/\.[^.]*$/, '')}-${hash.slice(0, 8)}`);
  await fs.mkdir(outDir, { recursive: true });
  info(`checking ${basename(patch)} on ${kernels.join(', ')}${claims.length ? `; it claims to fix ${claims.map((c) => c.name).join(', ')}` : ''}; results in ${outDir}`);

  const checks: KernelCheck[] = [];
  for (const spec of kernels) {
    const k = await checkKernel(spec, {
      patch,
      kernels,
      timeMs,
      seed,
      runs,
      outDir,
      accel: parseAccel(values.accel),
      ...(values.findings ? { findingsDir: resolve(values.findings) } : {}),
      ...(values.only ? { only: list(values.only) } : {}),
      onLine: (l) => process.stdout.write(`${l}\n`),
    });
    checks.push(k);
    process.stdout.write(renderKernel(k).join('\n') + '\n\n');
  }
  const verdict = fixcheckVerdict(checks, claims);
  const file: FixcheckFile = { format: FIXCHECK_FORMAT, version: 1, patch: { name: basename(patch), sha256: hash }, date: new Date().toISOString(), claims, kernels: checks, verdict };
  const txt = renderFixcheck(basename(patch), checks, verdict);
  await atomicWriteJson(join(outDir, 'fixcheck.json'), file);
  await atomicWrite(join(outDir, 'fixcheck.txt'), txt);
  if (values.json) process.stdout.write(JSON.stringify(file, null, 2) + '\n');
  // the tables went out kernel by kernel; then the claims and the verdict
  else process.stdout.write(txt.slice(txt.search(/^(claim |verdict:)/m)));
  info(`wrote ${join(outDir, 'fixcheck.txt')} and fixcheck.json`);
  return verdict.ok ? 0 : 1;
}
