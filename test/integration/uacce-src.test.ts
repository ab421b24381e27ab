/**
 * --uacce-src on a real guest (Debian 6.12 under QEMU): a patch that reverts 6.12's fix in
 * uacce_vma_close() (the lines that clear q->qfrs[] when a region's mapping goes) brings back
 * 6.1's bug, so the regression program of that bug (corpus/regress/uacce-6.1-region-never-freed)
 * diverges, while Debian's own uacce.c gives no finding; the finding records where uacce came
 * from. A uacce.c that does not compile fails with the compiler's first error, naming the file.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kernelIdOf, profileOf } from '../../harness/commands/common.js';
import { FindingStore } from '../../harness/findings/store.js';
import { parseProgram } from '../../harness/program/parse.js';
import type { Program } from '../../harness/program/types.js';
import { executeProgram, findingCandidates } from '../../harness/run/execute.js';
import { UserError } from '../../harness/util/errors.js';
import { Guest, prepareGuestImage } from '../../harness/vm/guest.js';
import { fetchKernel } from '../../kernels/index.js';
import type { KernelArtifacts } from '../../kernels/types.js';

const KERNEL = 'debian:6.12';
const TITLE = 'mmap: expected ok, got EEXIST [mmap.ok]';
const dir = mkdtempSync(join(tmpdir(), 'svadiff-uacce-src-'));
/** the fix as 6.12's uacce_vma_close() has it (drivers/misc/uacce/uacce.c) */
const FIX = '\t\tmutex_lock(&q->mutex);\n\t\tq->qfrs[vma->vm_pgoff] = NULL;\n\t\tmutex_unlock(&q->mutex);\n\t\tkfree(qfr);';

let stock: KernelArtifacts;
let program: Program;
const patchPath = join(dir, 'revert-qfrs-clear.patch');

/** A unified diff (diff -u, as a maintainer would send) of uacce.c against Debian's own. */
function writeRevertPatch(uacceC: string): void {
  const a = join(dir, 'a', 'drivers', 'misc', 'uacce');
  const b = join(dir, 'b', 'drivers', 'misc', 'uacce');
  mkdirSync(a, { recursive: true });
  mkdirSync(b, { recursive: true });
  if (!uacceC.includes(FIX)) throw new Error("Debian's uacce_vma_close() no longer has the fix this test reverts");
  writeFileSync(join(a, 'uacce.c'), uacceC);
  writeFileSync(join(b, 'uacce.c'), uacceC.replace(FIX, '\t\tkfree(qfr);'));
  let diff = '';
  try {
    execFileSync('diff', ['-u', 'a/drivers/misc/uacce/uacce.c', 'b/drivers/misc/uacce/uacce.c'], { cwd: dir, encoding: 'utf8' });
  } catch (e) {
    diff = String((e as { stdout?: string }).stdout);
  }
  if (!diff.includes('-\t\tq->qfrs[vma->vm_pgoff] = NULL;')) throw new Error('diff -u made no patch');
  writeFileSync(patchPath, diff);
}

async function runOn(kernel: KernelArtifacts, name: string): Promise<ReturnType<typeof findingCandidates>> {
  const guest = await Guest.boot(kernel, await prepareGuestImage(kernel), { consolePath: join(dir, `${name}.console.log`) });
  try {
    const r = await executeProgram(guest, 1, program, profileOf(kernel));
    expect(r.check.anomaly).toBeUndefined();
    return findingCandidates(r, kernelIdOf(kernel));
  } finally {
    await guest.shutdown();
  }
}

beforeAll(async () => {
  stock = await fetchKernel(KERNEL);
  writeRevertPatch(readFileSync(join(stock.dir, 'src', 'uacce', 'drivers', 'misc', 'uacce', 'uacce.c'), 'utf8'));
  const entry = JSON.parse(readFileSync('corpus/regress/uacce-6.1-region-never-freed.json', 'utf8')) as { program: unknown; outcome: { title: string } };
  if (entry.outcome.title !== TITLE) throw new Error('regress entry changed its title');
  program = parseProgram(JSON.stringify(entry.program), 'regress entry');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe(`--uacce-src on ${KERNEL}`, () => {
  it('with a patch reverting the qfrs[] fix, the 6.1 regression program diverges, and the finding says which uacce', { timeout: 600_000 }, async () => {
    const t0 = Date.now();
    const patched = await fetchKernel(KERNEL, { uacceSrc: patchPath });
    const buildMs = Date.now() - t0;
    expect(patched.release).toBe(stock.release);
    expect(patched.modules.uacce).not.toBe(stock.modules.uacce);
    expect(patched.uacce).toMatchObject({ custom: true, builtin: false, src: patchPath });
    expect(patched.uacce?.text).toMatch(new RegExp(`^uacce\\.c: Debian ${stock.version.replace(/\./g, '\\.')} \\+ revert-qfrs-clear\\.patch, sha256 [0-9a-f]{16}$`));
    expect(patched.uacce?.sha256).not.toBe(stock.uacce?.sha256);
    // the same source again: cached by content, nothing rebuilt
    const t1 = Date.now();
    const again = await fetchKernel(KERNEL, { uacceSrc: patchPath });
    expect(again.modules.uacce).toBe(patched.modules.uacce);
    process.stderr.write(`uacce-src: modules built in ${buildMs} ms, cached lookup ${Date.now() - t1} ms\n`);

    const found = await runOn(patched, 'patched');
    expect(found.map((c) => [c.kind, c.title])).toEqual([['divergence', TITLE]]);
    const store = await FindingStore.open(join(dir, 'out'));
    const rec = await store.record(found[0]!);
    const f = JSON.parse(readFileSync(join(dir, 'out', 'findings', rec.id, 'finding.json'), 'utf8')) as { kernel: { uacce?: string; uacce_src?: string }; kernels: Record<string, { uacce?: string }> };
    expect(f.kernel.uacce).toBe(patched.uacce?.text);
    expect(f.kernel.uacce_src).toBe(patchPath);
    expect(Object.values(f.kernels)[0]?.uacce).toBe(patched.uacce?.text);
  });

  it("Debian's own uacce.c gives no finding on the same program", { timeout: 300_000 }, async () => {
    expect(stock.uacce).toMatchObject({ custom: false });
    expect(await runOn(stock, 'stock')).toEqual([]);
  });

  it('a uacce.c that does not compile: the first compiler error, naming the file', { timeout: 300_000 }, async () => {
    const broken = join(dir, 'uacce.c');
    writeFileSync(broken, readFileSync(join(stock.dir, 'src', 'uacce', 'drivers', 'misc', 'uacce', 'uacce.c'), 'utf8').replace('kfree(qfr);', 'kfree(qfr)'));
    let err: unknown;
    try {
      await fetchKernel(KERNEL, { uacceSrc: broken });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(new RegExp(`${broken.replace(/[.]/g, '\\.')}:\\d+:\\d+: error: expected ';'`));
    expect((err as Error).message).not.toContain('\n');
  });
});
