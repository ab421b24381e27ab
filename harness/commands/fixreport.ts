/**
 * svadiff fixreport --patch FIX.patch --bug NAME --fixcheck DIR[,DIR...] [--out FILE]
 *
 * The mail for a checked fix (harness/fixcheck/mail.ts): the patch, the bug NAME (a regression
 * entry it claims) in steps, what the unpatched kernel did (from the fix check), main() of the C
 * reproducer, and the verification of every fix check given (fixcheck.json in each DIR, e.g. the
 * patch on 6.12 and 7.2 and its backport on 6.1). Writes FILE and the whole reproducer next to
 * it (FILE without .txt, plus .repro.c); without --out prints the mail.
 */
import { promises as fs } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { renderMail, parsePatch, reproMainOf, type MailCheck } from '../fixcheck/mail.js';
import type { CaseEvidence } from '../fixcheck/verdict.js';
import { profileFor } from '../model/index.js';
import { reproForProgram } from '../repro/csource.js';
import { loadRegressCorpus } from '../repro/regress.js';
import { atomicWrite } from '../util/fsx.js';
import { UserError } from '../util/errors.js';
import { info } from '../util/log.js';
import { FIXCHECK_FORMAT, type FixcheckFile } from './fixcheck.js';

const USAGE = 'usage: svadiff fixreport --patch FIX.patch --bug NAME --fixcheck DIR[,DIR...] [--out FILE]';

async function readCheck(dir: string): Promise<FixcheckFile> {
  const path = dir.endsWith('.json') ? dir : join(dir, 'fixcheck.json');
  let v: FixcheckFile;
  try {
    v = JSON.parse(await fs.readFile(path, 'utf8')) as FixcheckFile;
  } catch (e) {
    throw new UserError(`--fixcheck ${dir}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); give the directory svadiff fixcheck wrote`);
  }
  if (v.format !== FIXCHECK_FORMAT || !Array.isArray(v.kernels)) throw new UserError(`--fixcheck ${dir}: ${path} is not a fixcheck.json`);
  return v;
}

export async function cmdFixreport(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { patch: { type: 'string' }, bug: { type: 'string' }, fixcheck: { type: 'string' }, out: { type: 'string' } },
  });
  if (positionals.length > 0 || !values.patch || !values.bug || !values.fixcheck) throw new UserError(USAGE);
  const patchText = await fs.readFile(resolve(values.patch), 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new UserError(`--patch ${values.patch}: ${e.code ?? e.message}`);
  });
  let patch;
  try {
    patch = parsePatch(patchText);
  } catch (e) {
    throw new UserError(`--patch ${values.patch}: ${(e as Error).message}`);
  }
  const entry = (await loadRegressCorpus()).find((e) => e.name === values.bug);
  if (!entry) throw new UserError(`--bug ${values.bug}: no regression entry of that name in corpus/regress/`);
  const files = await Promise.all(values.fixcheck.split(',').map((d) => readCheck(resolve(d.trim()))));
  if (!files.some((f) => f.claims.some((c) => c.name === entry.name))) {
    throw new UserError(`--bug ${entry.name}: none of the fix checks given claims it; run svadiff fixcheck --claims ${entry.name}`);
  }
  const checks: MailCheck[] = files.map((f) => ({ patch: f.patch.name, kernels: f.kernels, date: f.date }));
  const others = new Map<string, { name: string; title: string }>();
  for (const f of files) for (const c of f.claims) if (c.name !== entry.name) others.set(c.name, c);
  // what the kernel did without the patch: the first check that ran the bug's program and saw its title
  let shown: { release: string; evidence: CaseEvidence } | undefined;
  for (const f of files) {
    for (const k of f.kernels) {
      const c = k.cases.find((x) => x.name === entry.name);
      const e = c?.evidence?.unpatched.find((x) => x.title === entry.outcome.title) ?? c?.evidence?.unpatched[0];
      if (e && !shown) shown = { release: k.release, evidence: e };
    }
  }
  const release = shown?.release ?? entry.recorded.release;
  const profile = profileFor(release, { arch: 'x86_64', distro: 'debian' });
  const reproC = reproForProgram(entry.program, profile, { title: entry.outcome.title, notes: [`svadiff regression entry ${entry.name} (corpus/regress/${entry.name}.json)`] });
  const out = values.out ? resolve(values.out) : undefined;
  const reproFile = out ? `${out.replace(/\.txt$/, '')}.repro.c` : `${entry.name}.repro.c`;
  const mail = renderMail({
    patch,
    bug: { name: entry.name, title: entry.outcome.title, program: entry.program },
    alsoFixes: [...others.values()],
    ...(shown ? { shown } : {}),
    reproMain: { code: reproMainOf(reproC), file: basename(reproFile) },
    checks,
  });
  if (!out) {
    process.stdout.write(mail);
    return 0;
  }
  await fs.mkdir(dirname(out), { recursive: true });
  await atomicWrite(out, mail);
  await atomicWrite(reproFile, reproC);
  info(`wrote ${out} and ${reproFile}`);
  return 0;
}
