/**
 * svadiff fuzz [--kernel K] [--time 10m] [--seed N] [--out DIR] [--programs N] [--fresh] [--no-feedback] [--reset reset|reload] [--jobs N] [--family uacce|vfio] [--arch x86_64|arm64] [--snapshot on|off]
 *
 * Generates programs, runs them on a guest of kernel K, and keeps every distinct divergence,
 * kernel report and hang in DIR/findings/<id>/. A live progress line shows programs, checked
 * ops per second, findings and elapsed time; Ctrl-C stops after the current program (twice:
 * at once) and every finding written so far stays. Running again with the same --seed and
 * --out continues the same program stream (and its coverage and corpus). At the end it prints
 * the findings, the model rules reached (over time, as a plot) and the rules never reached.
 * --no-feedback runs the plain program stream (no corpus, no mutations). --reset reload gives
 * every program a freshly loaded test module (rmmod, insmod) instead of resetting it in place
 * through its control file (the default; a program the kernel reported on is followed by a reload).
 * --jobs N runs N guests at once (default: one per core, as far as free memory holds them),
 * each with its own program stream (seeds derived from --seed: harness/fuzz/jobs.ts) and saved
 * position, all writing one findings store; the progress line adds them up, --programs counts
 * all jobs' programs, and Ctrl-C stops every job after its current program.
 * --family vfio fuzzes DMA ownership through vfio's group path (harness/ops/vfio.ts), and on a
 * kernel with iommufd (src:debian:<v>+iommufd) through iommufd and the device cdev
 * (harness/ops/iommufd.ts; which a kernel has is its profile's vfioPaths), on the
 * x86_64-vtd-groups machine, with the kernel's vfio modules in the guest. A new guest (at
 * start, after a kernel report, a hang or a dead guest) is restored from a VM snapshot of a
 * ready guest instead of booted (harness/vm/snapshot.ts; saved after the first boot, cached per
 * kernel, initramfs, machine and QEMU); --snapshot off boots every time.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Bug } from '../findings/bugs.js';
import { FindingStore } from '../findings/store.js';
import { cpus, freemem } from 'node:os';
import { defaultJobs, jobSeed, jobStateDir, summedRates, sumStats } from '../fuzz/jobs.js';
import { fuzzLoop, loadState, type FuzzStats } from '../fuzz/loop.js';
import { RULES, type KernelProfile } from '../model/index.js';
import { plotSteps } from '../coverage/plot.js';
import { familyRules, profileUnreachable } from '../coverage/reach.js';
import { UserError } from '../util/errors.js';
import { fmtDuration, info, StatusLine, warn } from '../util/log.js';
import { safeLine } from '../util/sanitize.js';
import { bootGuest, fuzzMachine, kernelIdOf, parseDuration, parseIntOption, prepare, profileOf, withVfioGuest } from './common.js';
import { X86_64_VTD_GROUPS } from '../vm/machine.js';
import { vfioWeights } from '../generator/vfio.js';

export async function cmdFuzz(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      kernel: { type: 'string' },
      time: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      programs: { type: 'string' },
      accel: { type: 'string' },
      fresh: { type: 'boolean' },
      'uacce-src': { type: 'string' },
      'no-feedback': { type: 'boolean' },
      reset: { type: 'string' },
      jobs: { type: 'string' },
      family: { type: 'string' },
      arch: { type: 'string' },
      snapshot: { type: 'string' },
    },
  });
  if (positionals.length > 0) throw new UserError(`svadiff fuzz takes no positional arguments (got "${positionals[0]}"); the kernel goes in --kernel`);
  const timeMs = parseDuration(values.time ?? '10m');
  const deviceSetup = values.reset ?? 'reset';
  if (deviceSetup !== 'reset' && deviceSetup !== 'reload') throw new UserError(`--reset must be reset (the module's control file, the default) or reload (rmmod and insmod), got "${deviceSetup}"`);
  const maxPrograms = parseIntOption('programs', values.programs, 1, 1e9);
  const jobsGiven = parseIntOption('jobs', values.jobs, 1, 64);
  const snapshot = values.snapshot ?? 'on';
  if (snapshot !== 'on' && snapshot !== 'off') throw new UserError(`--snapshot must be on (restore a saved guest instead of booting, the default) or off, got "${snapshot}"`);
  const family = values.family ?? 'uacce';
  if (family !== 'uacce' && family !== 'vfio') throw new UserError(`--family ${family}: the op families are uacce and vfio`);
  const prepared = await prepare(values.kernel, values.accel, values.out, values['uacce-src'], values.arch);
  if (family === 'vfio' && prepared.kernel.arch !== 'x86_64') throw new UserError(`--family vfio needs the x86_64 machine with VT-d groups (x86_64-vtd-groups); ${prepared.kernel.arch} has no vfio machine yet: drop --family or use an x86_64 kernel`);
  // vfio programs need vfio in the guest (and, below, the machine with their IOMMU groups)
  const setup = family === 'vfio' ? await withVfioGuest(prepared) : prepared;
  const kernel = kernelIdOf(setup.kernel);
  let seed = parseIntOption('seed', values.seed, 0, 2 ** 31 - 1);
  const prev = await loadState(setup.outDir);
  if (seed === undefined) {
    // continue the previous run of this output directory, or start a new stream
    seed = prev && prev.kernel === kernel.spec && !values.fresh ? prev.seed : Math.floor(Math.random() * 2 ** 31);
  }
  if (prev && prev.seed === seed && prev.kernel === kernel.spec && !values.fresh) {
    info(`continuing the run in ${setup.outDir}: seed ${seed}, from program ${prev.nextIndex} (--fresh starts over)`);
  }
  const profile = profileOf(setup.kernel);
  // vfio: the machine with its IOMMU groups; uacce on a kernel whose SVA binds succeed: the SVA machine (both backends)
  const machine = family === 'vfio' ? { machine: X86_64_VTD_GROUPS.name } : fuzzMachine(setup, profile);
  const store = await FindingStore.open(setup.outDir);
  const auto = defaultJobs(cpus().length, Math.floor(freemem() / 2 ** 20));
  const jobs = jobsGiven ?? auto.jobs;
  info(`fuzzing ${kernel.spec} (${kernel.release}) for ${fmtDuration(timeMs)}, seed ${seed}, findings in ${join(setup.outDir, 'findings')}`);
  info(
    jobs === 1 && jobsGiven !== undefined
      ? 'jobs: 1'
      : `jobs: ${jobs} (${jobsGiven !== undefined ? 'from --jobs' : `the default here, limited by ${auto.why}`}), seeds ${Array.from({ length: Math.min(jobs, 4) }, (_, j) => jobSeed(seed, j)).join(', ')}${jobs > 4 ? ', …' : ''}; each job is one guest`,
  );
  if (setup.kernel.uacce?.custom) info(setup.kernel.uacce.text);

  let stop = 0;
  const onSigint = () => {
    stop++;
    if (stop === 1) info('interrupted: stopping after the current program (Ctrl-C again to stop at once)');
    else {
      info('stopping now; findings written so far are kept');
      process.exit(130);
    }
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);

  const status = new StatusLine(15_000);
  const line = (all: readonly FuzzStats[]) => {
    const s = sumStats(all);
    const r = summedRates(all);
    return `[${fmtDuration(s.elapsedMs)}] ${jobs > 1 ? `${jobs} jobs, ` : ''}programs ${s.programs} (${r.programsPerS.toFixed(2)}/s), checked ops ${s.checkedOps} (${r.checkedOpsPerS.toFixed(0)}/s), rules ${s.coverage.rules.size}, bugs ${store.bugs().length} (${s.bugs} first seen this run, ${s.newBugs} not known; ${store.list().length} titles), reboots ${s.reboots}`;
  };
  // --programs counts the programs of all jobs: each job takes one before it runs it
  let taken = 0;
  const latest: (FuzzStats | undefined)[] = Array.from({ length: jobs }, () => undefined);
  const progress = () => {
    const have = latest.filter((x): x is FuzzStats => x !== undefined);
    if (have.length > 0) status.update(line(have));
  };
  const runJob = (j: number) => {
    const tag = jobs > 1 ? `[job ${j}] ` : '';
    return fuzzLoop(
      {
        seed: jobSeed(seed, j),
        timeMs,
        outDir: setup.outDir,
        stateDir: jobStateDir(setup.outDir, j),
        kernel,
        profile,
        store,
        fresh: values.fresh ?? false,
        feedback: !values['no-feedback'],
        deviceSetup,
        // the vfio ops this kernel offers: the group path (Debian's), iommufd and cdevs (src:…+iommufd)
        ...(family === 'vfio' ? { generator: { family, weights: vfioWeights(profile.vfioPaths) } } : {}),
        shouldStop: () => stop > 0 || (maxPrograms !== undefined && taken++ >= maxPrograms),
      },
      {
        boot: () => bootGuest(setup, jobs > 1 ? `fuzz-job${j}` : 'fuzz', { ...machine, snapshot: snapshot === 'on' }),
        onProgress: (s) => {
          latest[j] = s;
          progress();
        },
        onFinding: (id, title, rec) => {
          if (rec.newBug) status.update(`${tag}bug${rec.bugKnown ? ' (known issue)' : ' (NEW)'}: ${safeLine(title, 160)}  [${id}]`, true);
          else if (rec.isNew) status.update(`${tag}another title of bug ${rec.bug}${rec.bugKnown ? ' (known issue)' : ''}: ${safeLine(title, 160)}`, true);
        },
        onAnomaly: (index, message) => warn(`${tag}program ${index}: the agent reported something impossible (${safeLine(message, 200)}); rebooting`),
      },
    );
  };
  let all: FuzzStats[];
  try {
    // a job that fails (its guest will not boot) stops the others, which save what they have
    const settled = await Promise.allSettled(
      Array.from({ length: jobs }, (_, j) =>
        runJob(j).catch((e: unknown) => {
          stop++;
          throw e;
        }),
      ),
    );
    const failed = settled.find((x): x is PromiseRejectedResult => x.status === 'rejected');
    if (failed) throw failed.reason;
    all = settled.map((x) => (x as PromiseFulfilledResult<FuzzStats>).value);
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
  const stats = sumStats(all);
  status.done(line(all));
  await fs.mkdir(setup.outDir, { recursive: true });
  process.stdout.write(summary(store, stats, setup.outDir, profile, familyRules(family, family === 'vfio' ? vfioWeights(profile.vfioPaths) : {})));
  return 0;
}

/** One line per bug (count, kind, known or NEW, lead title), then its other titles and why they are one bug. */
export function bugSummaryLines(bugs: readonly Bug[]): string[] {
  const L: string[] = [];
  for (const b of bugs) {
    L.push(`  ${String(b.count).padStart(5)}  ${b.kind.padEnd(10)} ${b.known ? 'known ' : 'NEW   '} ${b.title}`);
    const others = b.titles.filter((t) => t.title !== b.title);
    for (const t of others) L.push(`${' '.repeat(26)}+ ${t.title}${t.finding ? ` (${t.count})` : ' (only while reproducing)'}`);
    // the evidence is in bugs.json and finding.json; a few lines say what kind it is
    for (const w of b.why.slice(0, 3)) L.push(`${' '.repeat(26)}  why: ${w.length > 200 ? `${w.slice(0, 200)}…` : w}`);
    if (b.why.length > 3) L.push(`${' '.repeat(26)}  (${b.why.length - 3} more reasons in bugs.json)`);
  }
  return L;
}

function summary(store: FindingStore, s: FuzzStats, outDir: string, profile: KernelProfile, rules: ReadonlySet<string>): string {
  const L: string[] = [];
  const fuzzSecs = Math.max(0.001, (s.elapsedMs - s.bootMs) / 1000);
  L.push(
    `${s.programs} programs, ${s.executedOps} ops (${s.checkedOps} checked, ${(s.checkedOps / fuzzSecs).toFixed(0)}/s), ${s.reboots} reboots, in ${fmtDuration(s.elapsedMs)}`,
  );
  const bugs = store.bugs();
  L.push(
    `${bugs.length} bugs (${store.list().length} distinct titles) in ${join(outDir, 'findings')} (${s.bugs} first seen in this run, ${s.newBugs} not known):`,
  );
  L.push(...bugSummaryLines(bugs));
  if (s.anomalies > 0) L.push(`${s.anomalies} agent anomalies (harness problems, see the warnings above)`);
  L.push(`leak check after every program: ${s.leaks} left something behind; ${(s.leakCheckMs / Math.max(1, s.programs)).toFixed(0)} ms a program (${((100 * s.leakCheckMs) / Math.max(1, s.elapsedMs - s.bootMs)).toFixed(1)}% of the fuzzing time)`);
  L.push(...coverageSummary(s, profile, rules));
  return L.join('\n') + '\n';
}

/** Rules reached (a plot over time), concurrent groups, rules never reached: of the run's family's rules (`rules`, familyRules). */
export function coverageSummary(s: FuzzStats, profile: KernelProfile, rules: ReadonlySet<string> = new Set(Object.keys(RULES))): string[] {
  const L: string[] = [];
  const cov = s.coverage;
  const total = rules.size;
  const fuzzSecs = Math.max(0.001, (s.elapsedMs - s.bootMs) / 1000);
  L.push(`coverage: ${[...cov.rules.keys()].filter((r) => rules.has(r)).length} of ${total} model rules, ${cov.pairs.size} (rule, state feature) pairs; ${s.mutated} of ${s.programs} programs mutated from the corpus (${s.corpusSize} entries)`);
  L.push(...plotSteps(s.timeline.map((p) => ({ ms: p.ms, value: p.rules })), { label: 'model rules reached over time:', unit: (ms) => fmtDuration(ms) }).map((l) => `  ${l}`));
  L.push(`concurrent groups: ${s.groups} run (${(s.groups / fuzzSecs).toFixed(2)}/s), ${s.groupDivergences} diverged`);
  const unreachable = profileUnreachable(profile);
  const never = cov.neverReached(new Set(Object.keys(unreachable))).filter((r) => rules.has(r));
  L.push(`rules never reached: ${never.length === 0 ? 'none' : never.join(', ')}`);
  const cannot = Object.keys(unreachable).filter((r) => !cov.rules.has(r) && rules.has(r));
  if (cannot.length > 0) L.push(`  (not reachable by valid programs on ${profile.release}: ${cannot.join(', ')})`);
  return L;
}
