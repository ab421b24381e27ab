/**
 * Fuzzing throughput on one guest (TCG here): the real fuzz loop (generate, run, model check,
 * kernel log oracle, findings) for a fixed number of programs, compared with the guest-bound
 * limit: the same programs' time inside the agent (from the program sent to its last result,
 * i.e. with no host round trip per op, no generation, no checking, no gaps between programs).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FindingStore } from '../harness/findings/store.js';
import { fuzzLoop } from '../harness/fuzz/loop.js';
import { profileFor } from '../harness/model/index.js';
import { Guest } from '../harness/vm/guest.js';
import type { BenchContext } from './bench.js';

export async function benchFuzz(ctx: BenchContext, programs = 400, seed = 12345) {
  const out = mkdtempSync(join(tmpdir(), 'svadiff-bench-fuzz-'));
  const store = await FindingStore.open(out, { onProblem: () => undefined });
  const profile = profileFor(ctx.kernel.release, { arch: ctx.kernel.arch, distro: 'debian' });
  let agentMs = 0;
  let programsRun = 0;
  let boots = 0;
  const stats = await fuzzLoop(
    {
      seed,
      timeMs: 60 * 60_000,
      maxPrograms: programs,
      outDir: out,
      kernel: { spec: ctx.kernel.exactSpec, release: ctx.kernel.release },
      profile,
      store,
      fresh: true,
      shouldStop: () => false,
    },
    {
      boot: async () => {
        boots++;
        return Guest.boot(ctx.kernel, ctx.image, { consolePath: join(ctx.logDir, `fuzz-${boots}.console.log`) });
      },
      onProgram: (_i, _p, r) => {
        if (r.run) {
          agentMs += r.run.elapsedMs;
          programsRun++;
        }
      },
    },
  );
  const loopS = (stats.elapsedMs - stats.bootMs) / 1000;
  const limitS = agentMs / 1000;
  const r2 = (x: number) => Math.round(x * 100) / 100;
  return {
    what: `fuzz loop on one ${ctx.kernel.exactSpec} guest, ${stats.programs} programs (seed ${seed}), boot time excluded`,
    programs: stats.programs,
    executed_ops: stats.executedOps,
    checked_ops: stats.checkedOps,
    reboots: stats.reboots,
    findings: store.list().length,
    programs_per_s: r2(stats.programs / loopS),
    checked_ops_per_s: r2(stats.checkedOps / loopS),
    executed_ops_per_s: r2(stats.executedOps / loopS),
    limit: {
      what: 'the same programs inside the agent only (program sent → last result), no host work between programs',
      programs_per_s: r2(programsRun / limitS),
      executed_ops_per_s: r2(stats.executedOps / limitS),
    },
    ratio_to_limit: r2(loopS > 0 ? limitS / loopS : 0),
  };
}
