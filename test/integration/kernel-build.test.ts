/**
 * A kernel built from source boots and the agent works (opt-in: a build from clean takes tens
 * of minutes on two cores, see the README). Set SVADIFF_TEST_KERNEL_BUILD=1 to run it;
 * SVADIFF_TEST_KERNEL_BUILD_SPEC picks the kernel (default src:debian:6.12+kasan). It checks
 * that the fragment took (KASAN initialised in the guest's log), that the seed programs give no
 * finding on it, and that --uacce-src builds against a self-built kernel too (a patch reverting
 * 6.12's qfrs[] fix makes the 6.1 region-never-freed program diverge).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { kernelIdOf, profileOf } from '../../harness/commands/common.js';
import { parseProgram } from '../../harness/program/parse.js';
import type { Program } from '../../harness/program/types.js';
import { executeProgram, findingCandidates } from '../../harness/run/execute.js';
import { Guest, prepareGuestImage } from '../../harness/vm/guest.js';
import { fetchKernel } from '../../kernels/index.js';
import type { KernelArtifacts } from '../../kernels/types.js';

const ENABLED = process.env.SVADIFF_TEST_KERNEL_BUILD === '1';
const SPEC = process.env.SVADIFF_TEST_KERNEL_BUILD_SPEC ?? 'src:debian:6.12+kasan';
const TITLE = 'mmap: expected ok, got EEXIST [mmap.ok]';
const FIX = '\t\tmutex_lock(&q->mutex);\n\t\tq->qfrs[vma->vm_pgoff] = NULL;\n\t\tmutex_unlock(&q->mutex);\n\t\tkfree(qfr);';
const dir = mkdtempSync(join(tmpdir(), 'svadiff-kbuild-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(kernel: KernelArtifacts, programs: Program[], name: string): Promise<{ titles: string[]; console: string; bootMs: number }> {
  const consolePath = join(dir, `${name}.console.log`);
  const guest = await Guest.boot(kernel, await prepareGuestImage(kernel), { consolePath });
  const titles: string[] = [];
  try {
    for (const [i, p] of programs.entries()) {
      const r = await executeProgram(guest, i + 1, p, profileOf(kernel));
      expect(r.check.anomaly).toBeUndefined();
      expect(r.run?.started).toBe(true);
      titles.push(...findingCandidates(r, kernelIdOf(kernel)).map((c) => c.title));
    }
  } finally {
    await guest.shutdown();
  }
  return { titles, console: readFileSync(consolePath, 'utf8'), bootMs: guest.bootMs };
}

describe.skipIf(!ENABLED)(`a self-built kernel (${SPEC})`, () => {
  it('builds, boots with its fragments, runs the seeds without a finding, and takes --uacce-src', { timeout: 4 * 3600_000 }, async () => {
    const t0 = Date.now();
    const kernel = await fetchKernel(SPEC);
    process.stderr.write(`kernel-build: ${kernel.exactSpec} (${kernel.release}) ready in ${Date.now() - t0} ms\n`);
    expect(kernel.built).toBeDefined();
    const config = readFileSync(kernel.config, 'utf8');
    for (const f of kernel.built!.fragments) if (f === 'kasan') expect(config).toMatch(/^CONFIG_KASAN=y$/m);
    const seeds = readdirSync('corpus/seeds').filter((n) => n.endsWith('.json')).map((n) => parseProgram(readFileSync(join('corpus/seeds', n), 'utf8'), n));
    const stock = await run(kernel, seeds, 'seeds');
    process.stderr.write(`kernel-build: boot ${stock.bootMs} ms\n`);
    expect(stock.console).toMatch(/svadiff_test|uacce/);
    if (kernel.built!.fragments.includes('kasan')) expect(stock.console).toMatch(/KernelAddressSanitizer initialized/);
    expect(stock.titles).toEqual([]);

    // --uacce-src against the self-built kernel's module tree
    const uacceC = readFileSync(join(kernel.dir, 'src', 'uacce', 'drivers', 'misc', 'uacce', 'uacce.c'), 'utf8');
    if (!uacceC.includes(FIX)) return; // a tree without 6.12's fix: nothing to revert
    for (const side of ['a', 'b']) mkdirSync(join(dir, side, 'drivers', 'misc', 'uacce'), { recursive: true });
    writeFileSync(join(dir, 'a', 'drivers', 'misc', 'uacce', 'uacce.c'), uacceC);
    writeFileSync(join(dir, 'b', 'drivers', 'misc', 'uacce', 'uacce.c'), uacceC.replace(FIX, '\t\tkfree(qfr);'));
    let diff = '';
    try {
      execFileSync('diff', ['-u', 'a/drivers/misc/uacce/uacce.c', 'b/drivers/misc/uacce/uacce.c'], { cwd: dir, encoding: 'utf8' });
    } catch (e) {
      diff = String((e as { stdout?: string }).stdout);
    }
    writeFileSync(join(dir, 'revert.patch'), diff);
    const patched = await fetchKernel(SPEC, { uacceSrc: join(dir, 'revert.patch') });
    expect(patched.uacce?.text).toMatch(/^uacce\.c: src:debian:\S+ \+ revert\.patch, sha256 [0-9a-f]{16}$/);
    const entry = JSON.parse(readFileSync('corpus/regress/uacce-6.1-region-never-freed.json', 'utf8')) as { program: unknown };
    const r = await run(patched, [parseProgram(JSON.stringify(entry.program), 'regress entry')], 'patched');
    expect(r.titles).toContain(TITLE);
  });
});
