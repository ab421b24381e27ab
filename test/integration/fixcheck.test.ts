/**
 * svadiff fixcheck on a real guest (Debian 6.12 under QEMU): a deliberately wrong fix
 * (test/fixtures/fixcheck/wrong-region-without-count.patch: uacce_vma_close() finds the region
 * through vm_private_data instead of vm_pgoff, but counts no VMAs) fixes the private-mapping bug
 * it claims, and frees the region a second time when the second piece of a split mapping is
 * closed. fixcheck must reject it and name what it introduced: a kernel report in
 * uacce_vma_close on the partial-munmap program, which the kernel's own uacce.ko does not give.
 * Two regression programs, no fuzzing: a few minutes under TCG (the two module builds are cached
 * by content after the first run).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveClaims } from '../../harness/commands/fixcheck.js';
import { checkKernel } from '../../harness/fixcheck/run.js';
import { compareCase, fixcheckVerdict, renderFixcheck } from '../../harness/fixcheck/verdict.js';
import { isModelTitle } from '../../harness/repro/replay.js';

const KERNEL = 'debian:6.12';
const WRONG = 'test/fixtures/fixcheck/wrong-region-without-count.patch';
const PRIVATE = 'uacce-private-mapping-region-never-freed';
const PARTIAL = 'uacce-partial-munmap-frees-region';
const dir = mkdtempSync(join(tmpdir(), 'svadiff-fixcheck-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe(`fixcheck on ${KERNEL}`, () => {
  it('rejects a fix that fixes its claim but breaks another rule, naming what it introduced', { timeout: 1_200_000 }, async () => {
    const claims = await resolveClaims([PRIVATE]);
    const k = await checkKernel(KERNEL, { patch: WRONG, kernels: [KERNEL], timeMs: 0, seed: 1, runs: 1, outDir: dir, only: [PRIVATE, PARTIAL] });
    expect(k.uacce.patched).toContain('wrong-region-without-count.patch');
    const byName = Object.fromEntries(k.cases.map((c) => [c.name, c]));
    // the claim: the private mapping's region is freed with the patch, not without it
    expect(byName[PRIVATE]!.unpatched).toContain(claims[0]!.title);
    expect(compareCase(byName[PRIVATE]!.unpatched, byName[PRIVATE]!.patched).verdict).toBe('fixed');
    // the partial munmap: the stock kernel diverges quietly; the patched one frees the region twice
    const partial = compareCase(byName[PARTIAL]!.unpatched, byName[PARTIAL]!.patched);
    expect(byName[PARTIAL]!.unpatched).toEqual(['mmap: expected EEXIST, got ok [mmap.exists]']);
    expect(partial.introduced.length).toBeGreaterThan(0);
    const crash = partial.introduced.find((t) => !isModelTitle(t));
    expect(crash).toMatch(/uacce_vma_close|double free|use-after-free/);

    const v = fixcheckVerdict([k], claims);
    expect(v.ok).toBe(false);
    expect(v.claims[0]).toMatchObject({ name: PRIVATE, ok: true });
    expect(v.reasons).toContain(`introduced on ${k.spec}: ${crash}`);
    const txt = renderFixcheck('wrong-region-without-count.patch', [k], v);
    expect(txt).toContain(`introduced: ${crash}`);
    expect(txt).toContain('verdict: FAIL');
  });
});
