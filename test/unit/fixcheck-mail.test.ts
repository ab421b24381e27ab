import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parsePatch, renderMail, reproMainOf } from '../../harness/fixcheck/mail.js';
import type { KernelCheck } from '../../harness/fixcheck/verdict.js';
import { profileFor } from '../../harness/model/index.js';
import { reproForProgram } from '../../harness/repro/csource.js';
import { loadRegressCorpus } from '../../harness/repro/regress.js';

const PATCH = readFileSync('corpus/fixes/uacce-region-vmas.patch', 'utf8');
const GPF = 'general protection fault in __mutex_lock';

describe('parsePatch', () => {
  it('splits a format-patch file into subject, message, trailers and diff', () => {
    const p = parsePatch(PATCH);
    expect(p.subject).toBe('uacce: free a queue file region only when its last VMA is closed');
    expect(p.from).toMatch(/^Seed .* <.*>$/);
    expect(p.body[0]).toMatch(/^uacce_fops_mmap\(\) allocates/);
    expect(p.trailers[0]).toBe('Fixes: 015d239ac014 ("uacce: add uacce driver")');
    expect(p.trailers.some((t) => t.startsWith('Signed-off-by: '))).toBe(true);
    expect(p.diff).toMatch(/^ drivers\/misc\/uacce\/uacce\.c \| /m);
    expect(p.diff).toContain('+static void uacce_vma_open(struct vm_area_struct *vma)');
  });

  it('refuses a plain diff, which has no subject to send', () => {
    expect(() => parsePatch('--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n')).toThrow(/git format-patch/);
  });
});

describe('renderMail', () => {
  it('is the patch with the bug, what the kernel did, the reproducer and the verification under ---', async () => {
    const entry = (await loadRegressCorpus()).find((e) => e.name === 'uacce-partial-munmap-frees-region')!;
    const k: KernelCheck = {
      spec: 'debian:6.12.118',
      release: '6.12.118+deb12-amd64',
      uacce: { unpatched: 'uacce.c: Debian 6.12.118', patched: 'uacce.c: Debian 6.12.118 + uacce-region-vmas.patch' },
      cases: [
        { name: entry.name, source: 'regress', unpatched: [entry.outcome.title], patched: [], runs: 1 },
        { name: 'uacce-stale-node-open-use-after-free', source: 'regress', unpatched: [GPF], patched: [GPF], runs: 1 },
      ],
      fuzz: { timeMs: 120_000, seed: 1, programs: { patched: 50, unpatched: 50 }, patched: [], unpatched: [], patchedOnly: [] },
      times: { buildMs: 2000, replayMs: 200_000, fuzzMs: 300_000, totalMs: 502_000 },
    };
    const c = reproForProgram(entry.program, profileFor(k.release, { arch: 'x86_64', distro: 'debian' }), { title: entry.outcome.title });
    const mail = renderMail({
      patch: parsePatch(PATCH),
      bug: { name: entry.name, title: entry.outcome.title, program: entry.program },
      alsoFixes: [{ name: 'uacce-private-mapping-region-never-freed', title: 'mmap: expected ok, got EEXIST [mmap.ok]' }],
      shown: { release: k.release, evidence: { title: entry.outcome.title, kind: 'divergence', opIndex: 3, expected: 'EEXIST', observed: 'ok' } },
      reproMain: { code: reproMainOf(c), file: 'x.repro.c' },
      checks: [{ patch: 'uacce-region-vmas.patch', kernels: [k], date: '2026-12-04' }],
    });
    const lines = mail.split('\n');
    expect(lines[1]).toBe('Subject: [PATCH] uacce: free a queue file region only when its last VMA is closed');
    // the commit message and its trailers come before ---, everything svadiff adds after it
    const sep = lines.indexOf('---');
    expect(lines.slice(0, sep).some((l) => l.startsWith('Fixes: 015d239ac014'))).toBe(true);
    const notes = lines.slice(sep).join('\n');
    const prose = notes.replace(/\s+/g, ' ');
    expect(prose).toContain('This mail is about: mmap: expected EEXIST, got ok [mmap.exists] (uacce-partial-munmap-frees-region)');
    expect(prose).toContain('- mmap: expected ok, got EEXIST [mmap.ok] (uacce-private-mapping-region-never-freed)');
    expect(notes).toMatch(/ 3\. t0: munmap /);
    expect(prose).toContain('Without the patch (6.12.118+deb12-amd64), step 4 gives ok where EEXIST is expected.');
    expect(notes).toContain('int main(int argc, char **argv)');
    expect(prose).toContain('6.12.118+deb12-amd64 with uacce-region-vmas.patch: fixed 1, left 1, introduced 0; 2 programs on both builds, fuzzing 2m00s (the same 50 programs on both builds); 8m22s');
    expect(notes).toContain(`left: ${GPF}`);
    // the diff goes out unchanged, as git am reads it
    expect(mail).toContain(parsePatch(PATCH).diff.trimEnd());
    // prose lines fit a mail; only the C, the diff and the kernel's own lines may be longer
    const long = lines.slice(sep, lines.findIndex((l) => l.startsWith('int main'))).filter((l) => l.length > 80);
    expect(long).toEqual([]);
  });
});
