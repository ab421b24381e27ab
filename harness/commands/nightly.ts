/**
 * svadiff nightly [--config FILE] [--kernels K,K] [--time 20m] [--seeds 1,2] [--ops …] [--jobs N]
 *                 [--programs N] [--repro-time 30m] [--repro-per-bug 10m] [--repro-runs 3] [--no-repro]
 *                 [--out DIR] [--history DIR] [--night ID] [--shard i/N] [--accel A]
 * svadiff nightly --report DIR [--history DIR] [--screenshot]
 *
 * The matrix run (nightly/run.ts), then its summary (nightly/summary.ts): summary.json,
 * junit.xml and index.html in DIR, the summary added to the history. Exit status: 0 no new bug,
 * 1 new bugs, 2 the run failed. With --shard, only that shard's cells run and no summary is
 * written: merge the shards' directories (svadiff merge) and summarize with --report.
 */
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { screenshotPage } from '../nightly/browser.js';
import { DEFAULT_CONFIG, kernelList, loadNightlyConfig, opList, parseShard, seedList, type NightlyConfig } from '../nightly/config.js';
import { nightId, runNight } from '../nightly/run.js';
import { newBugsOf, summarizeNight, writeSummary, type NightlySummary } from '../nightly/summary.js';
import { errorMessage, isUserError, UserError } from '../util/errors.js';
import { info, warn } from '../util/log.js';
import { parseDuration, parseIntOption } from './common.js';
import { reproFinding } from './repro.js';

export const DEFAULT_NIGHTLY_DIR = 'svadiff-nightly';

export async function cmdNightly(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      kernels: { type: 'string' },
      time: { type: 'string' },
      seeds: { type: 'string' },
      ops: { type: 'string' },
      jobs: { type: 'string' },
      programs: { type: 'string' },
      'repro-time': { type: 'string' },
      'repro-per-bug': { type: 'string' },
      'repro-runs': { type: 'string' },
      'no-repro': { type: 'boolean' },
      out: { type: 'string' },
      history: { type: 'string' },
      night: { type: 'string' },
      shard: { type: 'string' },
      report: { type: 'string' },
      screenshot: { type: 'boolean' },
      accel: { type: 'string' },
    },
  });
  if (positionals.length > 0) throw new UserError(`svadiff nightly takes no positional arguments (got "${positionals[0]}"); kernels go in --kernels or the --config file`);
  if (values.report !== undefined) {
    const out = resolve(values.report);
    const history = resolve(values.history ?? join(dirname(out), 'history'));
    return report(out, history, values.screenshot ?? false);
  }

  const cfg: NightlyConfig = structuredClone(DEFAULT_CONFIG);
  if (values.config !== undefined) Object.assign(cfg, await loadNightlyConfig(values.config, parseDuration));
  const flag = (name: string) => (m: string): never => {
    throw new UserError(`--${name}: ${m}`);
  };
  if (values.kernels !== undefined) cfg.kernels = kernelList(values.kernels, flag('kernels'));
  if (values.time !== undefined) cfg.timeMs = parseDuration(values.time);
  if (values.seeds !== undefined) cfg.seeds = seedList(values.seeds, flag('seeds'));
  if (values.ops !== undefined) cfg.ops = opList(values.ops, flag('ops'));
  cfg.jobs = parseIntOption('jobs', values.jobs, 1, 64) ?? cfg.jobs;
  const programs = parseIntOption('programs', values.programs, 1, 1e9);
  if (programs !== undefined) cfg.programs = programs;
  if (values['repro-time'] !== undefined) cfg.repro.timeMs = parseDuration(values['repro-time']);
  if (values['repro-per-bug'] !== undefined) cfg.repro.perBugMs = parseDuration(values['repro-per-bug']);
  cfg.repro.runs = parseIntOption('repro-runs', values['repro-runs'], 1, 100) ?? cfg.repro.runs;
  if (values['no-repro']) cfg.repro.enabled = false;
  const shard = values.shard !== undefined ? parseShard(values.shard) : undefined;
  if (values.night !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(values.night)) {
    throw new UserError('--night must be a name of letters, digits, ".", "_" and "-" (e.g. 2026-12-04), the same for every shard of one night');
  }
  // a night run again in the same --out continues under its own id
  const out = resolve(values.out ?? join(DEFAULT_NIGHTLY_DIR, values.night ?? nightId(new Date())));
  const history = resolve(values.history ?? join(dirname(out), 'history'));

  let stop = 0;
  const onSigint = () => {
    stop++;
    if (stop === 1) info('interrupted: stopping after the current programs (Ctrl-C again to stop at once); what was found is kept');
    else process.exit(130);
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  try {
    const run = await runNight(cfg, {
      out,
      ...(values.night !== undefined ? { night: values.night } : {}),
      ...(shard ? { shard } : {}),
      ...(values.accel !== undefined ? { accel: values.accel } : {}),
      shouldStop: () => stop > 0,
      newBugs: (store, n) => newBugsOf(store, n, history),
      repro: async (dir, o) => {
        const s = await reproFinding(dir, { runs: o.runs, totalTimeMs: o.totalTimeMs, kernel: o.kernel, ...(o.accel !== undefined ? { accel: o.accel } : {}) });
        return { reliability: s.reliability, reproduced: s.reproduced, ops_before: s.ops_before, ops_after: s.ops_after };
      },
    });
    if (stop > 0) {
      warn(`interrupted: ${out} keeps what was found; run the same command with --out ${out} to continue`);
      return 2;
    }
    if (shard) {
      const failed = run.cells.filter((c) => c.status !== 'ok');
      process.stdout.write(
        `shard ${shard.index}/${shard.count} of night ${run.night}: ${run.cells.length} cells in ${out}${failed.length ? `, ${failed.length} failed` : ''}\n` +
          `merge the shards with: svadiff merge --out DIR <shard dirs>, then: svadiff nightly --report DIR --history ${history}\n`,
      );
      return failed.length > 0 ? 2 : 0;
    }
    return await report(out, history, values.screenshot ?? false);
  } catch (e) {
    if (isUserError(e)) throw e;
    process.stderr.write(`svadiff nightly: the run failed: ${errorMessage(e)}\n${(e as Error)?.stack ?? ''}\n`);
    return 2;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
}

async function report(out: string, history: string, screenshot: boolean): Promise<number> {
  const s = await summarizeNight(out, history, (m) => warn(m));
  await writeSummary(out, history, s);
  if (screenshot) await screenshotPage(join(out, 'index.html'), join(out, 'index.png'));
  process.stdout.write(summaryText(s, out, history) + (screenshot ? `  ${join(out, 'index.png')}\n` : ''));
  return s.exit_code;
}

export function summaryText(s: NightlySummary, out: string, history: string): string {
  const L: string[] = [];
  L.push(`night ${s.night}: ${s.result === 'failed' ? 'THE RUN FAILED' : s.result === 'new-bugs' ? `${s.totals.new} NEW BUGS` : 'no new bugs'} (compared with ${s.compared_with.length} earlier nights in ${history})`);
  for (const k of s.kernels) {
    L.push(
      `  ${k.spec.padEnd(12)} ${(k.release ?? 'not run').padEnd(24)} ${String(k.bugs.length).padStart(3)} bugs, ${String(k.titles).padStart(3)} titles: ` +
        `${k.counts.new} new, ${k.counts.regressed} regressed, ${k.counts.known} known, ${k.counts['seen-before']} seen before, ${k.counts.fixed} fixed, ${k.counts['not-seen']} not seen; ` +
        `${k.programs} programs, ${k.checked_ops_per_s} checked ops/s${k.errors.length ? `; FAILED: ${k.errors.join('; ')}` : ''}`,
    );
    for (const b of k.bugs) L.push(`      ${b.status.padEnd(11)} ${String(b.count).padStart(4)}  ${b.title}${b.titles.length > 1 ? ` (+${b.titles.length - 1} titles)` : ''}`);
    for (const f of k.gone) L.push(`      ${f.status.padEnd(11)} ${''.padStart(4)}  ${f.title}`);
  }
  L.push(`  ${join(out, 'index.html')}`, `  ${join(out, 'summary.json')}`, `  ${join(out, 'junit.xml')}`);
  return L.join('\n') + '\n';
}
