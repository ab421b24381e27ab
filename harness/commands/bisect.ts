/**
 * svadiff bisect <finding-dir | program.json | repro.c> --good K --bad K [--runs 3] [--threshold 1] [--expect-title T]
 * svadiff bisect <...> --tree PATH --good REV --bad REV [--kernel K] [--paths P,...] [--fragments F,...]
 *
 * Which Debian version, or which commit of a git range, first shows a finding (its title, as
 * replay counts it). Prints every step and the answer, and writes bisect.json and bisect.log next
 * to the finding (or in --out/bisect/<name>/). Exit status: 0 when a first bad version or commit
 * was found, 1 when there is no boundary to find (the good end reproduces, the bad end does not,
 * or only untestable steps separate them).
 */
import { basename, join, resolve } from 'node:path';
import { promises as fs } from 'node:fs';
import { parseArgs } from 'node:util';
import { bisectDebian, bisectGit, type BisectReport } from '../bisect/run.js';
import { loadReplayTarget } from '../repro/replay.js';
import { parseAccel } from '../vm/accel.js';
import { UserError } from '../util/errors.js';
import { sha256 } from '../util/fsx.js';
import { info } from '../util/log.js';
import { DEFAULT_OUT, parseIntOption } from './common.js';

const USAGE =
  'usage: svadiff bisect <finding-dir | program.json | repro.c> --good debian:<version> --bad debian:<version> [--runs 3] | --tree PATH --good REV --bad REV [--kernel K] [--paths P,...] [--fragments F,...]';

export async function cmdBisect(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      good: { type: 'string' },
      bad: { type: 'string' },
      tree: { type: 'string' },
      kernel: { type: 'string' },
      paths: { type: 'string' },
      fragments: { type: 'string' },
      runs: { type: 'string' },
      threshold: { type: 'string' },
      jobs: { type: 'string' },
      accel: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean' },
      'expect-title': { type: 'string' },
    },
  });
  if (positionals.length !== 1 || values.good === undefined || values.bad === undefined) throw new UserError(USAGE);
  const runs = parseIntOption('runs', values.runs, 1, 100) ?? 3;
  const threshold = parseIntOption('threshold', values.threshold, 1, runs) ?? 1;
  const jobs = parseIntOption('jobs', values.jobs, 1, 256);
  const target = await loadReplayTarget(positionals[0]!);
  // like replay: a program.json alone counts any finding unless told which title
  if (values['expect-title'] !== undefined) {
    if (values['expect-title'] === '') delete target.title;
    else target.title = values['expect-title'];
  }
  const input = resolve(positionals[0]!);
  const isFindingDir = (await fs.stat(input)).isDirectory();
  // next to the finding, like repro's files; else a directory of its own under --out
  const outDir = isFindingDir && values.out === undefined ? input : join(resolve(values.out ?? DEFAULT_OUT), 'bisect', `${basename(input).replace(/\.[^.]*$/, '')}-${sha256(input).slice(0, 8)}`);
  const common = {
    target,
    runs,
    threshold,
    accel: parseAccel(values.accel),
    outDir,
    onLine: (l: string) => process.stdout.write(`${l}\n`),
  };
  const list = (v: string | undefined) => (v === undefined ? undefined : v.split(',').map((x) => x.trim()).filter(Boolean));
  let report: BisectReport;
  if (values.tree !== undefined) {
    report = await bisectGit({
      ...common,
      tree: resolve(values.tree),
      good: values.good,
      bad: values.bad,
      ...(values.kernel !== undefined ? { kernel: values.kernel } : {}),
      ...(list(values.paths) ? { paths: list(values.paths)! } : {}),
      ...(list(values.fragments) ? { fragments: list(values.fragments)! } : {}),
      ...(jobs !== undefined ? { jobs } : {}),
    });
  } else {
    for (const [flag, v] of [['--kernel', values.kernel], ['--paths', values.paths], ['--fragments', values.fragments]] as const) {
      if (v !== undefined) throw new UserError(`${flag} belongs to a git bisection (--tree PATH); a Debian bisection fetches each version`);
    }
    if (!values.good.startsWith('debian:') || !values.bad.startsWith('debian:')) {
      throw new UserError(`without --tree, --good and --bad are Debian versions (debian:6.12.95); for commits of a git tree add --tree PATH`);
    }
    report = await bisectDebian({ ...common, good: values.good, bad: values.bad });
  }
  info(`wrote ${join(outDir, 'bisect.json')} and ${join(outDir, 'bisect.log')}`);
  if (values.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  return report.outcome === 'first-bad' ? 0 : 1;
}
