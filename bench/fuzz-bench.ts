/**
 * Fuzzing throughput on one guest or several (TCG here): the real fuzz loop (generate, run,
 * model check, kernel log oracle, findings) for a fixed number of programs, compared with the
 * guest-bound limit: the same programs' time inside the agent (from the program sent to its
 * last result, i.e. with no host round trip per op, no generation, no checking, no gaps between
 * programs). Variants (device reset or reload, jobs) run side by side in one bench run, so that
 * their ratio is measured under the same host load; the load average is kept with each figure.
 */
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeviceSetup } from '../harness/agent/wire.js';
import { FindingStore } from '../harness/findings/store.js';
import { jobSeed } from '../harness/fuzz/jobs.js';
import { fuzzLoop, type FuzzStats } from '../harness/fuzz/loop.js';
import { profileFor } from '../harness/model/index.js';
import { Guest } from '../harness/vm/guest.js';
import type { BenchContext } from './bench.js';

export interface FuzzVariant {
  /** how programs get a fresh device */
  setup: DeviceSetup;
  /** guests at once */
  jobs: number;
  /** new guests restored from a VM snapshot instead of booted */
  snapshot?: boolean;
}

const r2 = (x: number) => Math.round(x * 100) / 100;

/** The host's load averages (1, 5, 15 minutes), as `uptime` shows them. */
export function load(): number[] {
  return loadavg().map((x) => r2(x));
}

export async function benchFuzz(ctx: BenchContext, programs = 400, seed = 12345, variant: FuzzVariant = { setup: 'reload', jobs: 1 }) {
  const out = mkdtempSync(join(tmpdir(), 'svadiff-bench-fuzz-'));
  const store = await FindingStore.open(out, { onProblem: () => undefined });
  const profile = profileFor(ctx.kernel.release, { arch: ctx.kernel.arch, distro: 'debian' });
  const loadBefore = load();
  let agentMs = 0;
  let programsRun = 0;
  let boots = 0;
  let taken = 0;
  const t0 = Date.now();
  const all: FuzzStats[] = await Promise.all(
    Array.from({ length: variant.jobs }, (_, j) =>
      fuzzLoop(
        {
          seed: jobSeed(seed, j),
          timeMs: 60 * 60_000,
          outDir: out,
          stateDir: join(out, `job${j}`),
          kernel: { spec: ctx.kernel.exactSpec, release: ctx.kernel.release },
          profile,
          store,
          fresh: true,
          deviceSetup: variant.setup,
          // the programs of all jobs together
          shouldStop: () => taken++ >= programs,
        },
        {
          boot: async () => {
            boots++;
            return Guest.boot(ctx.kernel, ctx.image, { snapshot: variant.snapshot ?? false, consolePath: join(ctx.logDir, `fuzz-${variant.setup}-${variant.jobs}-${boots}.console.log`) });
          },
          onProgram: (_i, _p, r) => {
            if (r.run) {
              agentMs += r.run.elapsedMs;
              programsRun++;
            }
          },
        },
      ),
    ),
  );
  const wallS = (Date.now() - t0) / 1000;
  const sum = (k: 'programs' | 'checkedOps' | 'executedOps' | 'reboots' | 'bootMs') => all.reduce((a, s) => a + s[k], 0);
  // per job without its boots, added up over jobs
  const loopRate = (k: 'programs' | 'checkedOps' | 'executedOps') => all.reduce((a, s) => a + s[k] / Math.max(0.001, (s.elapsedMs - s.bootMs) / 1000), 0);
  const limitS = agentMs / 1000 / variant.jobs;
  return {
    what: `fuzz loop, ${variant.jobs} guest(s) of ${ctx.kernel.exactSpec}, device ${variant.setup}, ${variant.snapshot ? 'new guests restored from a VM snapshot' : 'new guests booted'}, ${sum('programs')} programs (seed ${seed}${variant.jobs > 1 ? ' and its job seeds' : ''})`,
    variant,
    programs: sum('programs'),
    executed_ops: sum('executedOps'),
    checked_ops: sum('checkedOps'),
    reboots: sum('reboots'),
    findings: store.list().length,
    wall_s: r2(wallS),
    boot_s: r2(sum('bootMs') / 1000),
    /** per guest started (the first ones and every reboot or restore) */
    mean_guest_start_s: r2(sum('bootMs') / 1000 / (sum('reboots') + variant.jobs)),
    /** everything counted: boots, reboots, generation, checking */
    wall: { programs_per_s: r2(sum('programs') / wallS), checked_ops_per_s: r2(sum('checkedOps') / wallS) },
    /** boot time excluded (each job's own rate, added up) */
    programs_per_s: r2(loopRate('programs')),
    checked_ops_per_s: r2(loopRate('checkedOps')),
    executed_ops_per_s: r2(loopRate('executedOps')),
    limit: {
      what: 'the same programs inside the agent only (program sent → last result), no host work between programs',
      programs_per_s: r2(programsRun / Math.max(0.001, limitS)),
    },
    load_before: loadBefore,
    load_after: load(),
  };
}
