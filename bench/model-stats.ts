/**
 * npm run model-stats: what the generator's programs do on the reference model alone (no
 * guest): issue 17's table (ops failing for reasons the generator caused, work items completed,
 * engines left running, split mappings remapped, rules never reached) for a sample of the
 * program stream. Options: --programs N (default 1500), --seed S (default 7), --kernel RELEASE
 * (the model profile, default 6.12.118+deb12-amd64), --json FILE (write the numbers there).
 */
import { promises as fs } from 'node:fs';
import { parseArgs } from 'node:util';
import * as generator from '../harness/generator/index.js';
import { runOnModel } from '../harness/coverage/model-run.js';
import { Coverage } from '../harness/coverage/signal.js';
import { addRun, emptyStats, finishStats, statsTable, type Intent } from '../harness/coverage/stats.js';
import { profileFor } from '../harness/model/index.js';
import type { Program } from '../harness/program/types.js';

type WithIntents = (seed: number, index: number, opts?: object) => { program: Program; intents: Intent[] };

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { programs: { type: 'string' }, seed: { type: 'string' }, kernel: { type: 'string' }, json: { type: 'string' } } });
  const n = Number(values.programs ?? 1500);
  const seed = Number(values.seed ?? 7);
  const release = values.kernel ?? '6.12.118+deb12-amd64';
  const profile = profileFor(release, { arch: 'x86_64', distro: 'debian' });
  const st = emptyStats();
  const cov = new Coverage();
  const t0 = performance.now();
  const withIntents = (generator as unknown as { generateWithIntents?: WithIntents }).generateWithIntents;
  for (let i = 0; i < n; i++) {
    const g = withIntents ? withIntents(seed, i, { profile }) : { program: generator.generateProgram(seed, i), intents: undefined };
    addRun(st, cov, runOnModel(g.program, profile), g.intents);
  }
  const ms = performance.now() - t0;
  finishStats(st, cov);
  process.stdout.write(`model-only run of ${n} programs, seed ${seed}, profile ${release} (${(ms / 1000).toFixed(1)} s)\n`);
  for (const line of statsTable(st)) process.stdout.write(`  ${line}\n`);
  if (values.json) await fs.writeFile(values.json, JSON.stringify({ seed, programs: n, release, ms: Math.round(ms), stats: st, coverage: cov.toJSON() }, null, 2) + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
