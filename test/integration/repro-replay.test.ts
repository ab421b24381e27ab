/**
 * Reproducers on a real guest (Debian 6.12 under QEMU, one boot): the C reproducer of a real
 * finding (test/fixtures/repro/) reproduces it through the agent's U line with the same title,
 * a fixed-up variant of the same program does not, and the program itself, run by the agent,
 * shows the same divergence.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchKernel } from '../../kernels/index.js';
import type { KernelArtifacts } from '../../kernels/types.js';
import { profileFor } from '../../harness/model/index.js';
import { parseProgram } from '../../harness/program/parse.js';
import type { Program } from '../../harness/program/types.js';
import { modelExpectations, parseReproSource, reproForm, reproForProgram } from '../../harness/repro/csource.js';
import { compileRepro, guestReproPath, prepareReproImage, runReproOnGuest } from '../../harness/repro/replay.js';
import { executeProgram, findingCandidates } from '../../harness/run/execute.js';
import { Guest } from '../../harness/vm/guest.js';

const KERNEL = 'debian:6.12';
const TITLE = 'mmap: expected ok, got EEXIST [mmap.ok]';
const DIVERGING_OP = 36;
const dir = mkdtempSync(join(tmpdir(), 'svadiff-repro-it-'));

let kernel: KernelArtifacts;
let guest: Guest;
let finding: Program;
let fixed: Program;
const bin: { finding?: string; fixed?: string; compact?: string } = {};
/** a minimized single-task program of the regression corpus: its reproducer takes the compact form */
let compact: Program;
const COMPACT_TITLE = 'mmap: expected ok, got EEXIST [mmap.ok]';

beforeAll(async () => {
  kernel = await fetchKernel(KERNEL);
  const profile = profileFor(kernel.release, { arch: kernel.arch, distro: 'debian' });
  finding = parseProgram(readFileSync('test/fixtures/repro/mmap-ok-finding.program.json', 'utf8'), 'fixture');
  // the fix-up: op 2 maps the MMIO region shared instead of privately (see the fixture's README)
  fixed = structuredClone(finding);
  const op2 = fixed.ops[2]!;
  if (op2.op !== 'mmap' || op2.shared) throw new Error('fixture changed: op 2 is no longer a private mmap');
  op2.shared = true;
  const files = { finding: join(dir, 'finding.c'), fixed: join(dir, 'fixed.c') };
  writeFileSync(files.finding, reproForProgram(finding, profile, { title: TITLE, kernel: `${kernel.release} (${kernel.exactSpec})` }));
  writeFileSync(files.fixed, reproForProgram(fixed, profile, { title: `${TITLE} (fixed up)` }));
  bin.finding = await compileRepro(files.finding, ['-Werror']);
  bin.fixed = await compileRepro(files.fixed, ['-Werror']);
  const entry = JSON.parse(readFileSync('corpus/regress/uacce-private-mapping-region-never-freed.json', 'utf8')) as { program: unknown; outcome: { title: string } };
  compact = parseProgram(JSON.stringify(entry.program), 'regress entry');
  if (entry.outcome.title !== COMPACT_TITLE) throw new Error('regress entry changed its title');
  const compactC = reproForProgram(compact, profile, { title: COMPACT_TITLE });
  if (reproForm(compact, modelExpectations(compact, profile).expected) !== 'compact') throw new Error('not a compact reproducer');
  writeFileSync(join(dir, 'compact.c'), compactC);
  bin.compact = await compileRepro(join(dir, 'compact.c'), ['-Werror']);
  const image = await prepareReproImage(kernel, [bin.finding, bin.fixed, bin.compact]);
  guest = await Guest.boot(kernel, image, { consolePath: join(dir, 'boot.console.log') });
});

afterAll(async () => {
  await guest?.shutdown();
  rmSync(dir, { recursive: true, force: true });
});

describe(`reproducers on a real guest: ${KERNEL}`, () => {
  it('the embedded program is the finding program', () => {
    const src = parseReproSource(readFileSync(join(dir, 'finding.c'), 'utf8'));
    expect(src.program).toEqual(finding);
    expect(src.title).toBe(TITLE);
  });

  it("the finding's reproducer reproduces it: exit 1, the finding's title, at the same op", { timeout: 120_000 }, async () => {
    const r = await runReproOnGuest(guest, guestReproPath(bin.finding!), finding.device, { progId: 1 });
    expect(r.exec?.finished?.status).toBe(0);
    expect(r.exitCode, r.output).toBe(1);
    expect(r.finding).toBe(TITLE);
    expect(r.output).toContain(`step ${DIVERGING_OP} (t0): mmap(m4, q3, region 0, 1 page, rw, private) = EEXIST (expected ok)  <-- DIVERGES`);
    // every step before it matched the model
    for (let i = 0; i < DIVERGING_OP; i++) expect(r.output).toMatch(new RegExp(`^step ${i} \\(t\\d\\): .* \\(expected .*\\)$`, 'm'));
    expect(r.output).not.toMatch(new RegExp(`^step ${DIVERGING_OP - 1} .*DIVERGES`, 'm'));
    expect(r.reports).toEqual([]);
    expect(r.needsReboot).toBe(false);
  });

  it('the fixed-up variant does not: exit 0, every step as the model expects', { timeout: 120_000 }, async () => {
    const r = await runReproOnGuest(guest, guestReproPath(bin.fixed!), fixed.device, { progId: 2 });
    expect(r.exitCode, r.output).toBe(0);
    expect(r.finding).toBeUndefined();
    expect(r.output).toContain(`RESULT: every checked step (${fixed.ops.length} of ${fixed.ops.length}) did what the model expects`);
    expect(r.reports).toEqual([]);
  });

  it('the program itself through the agent shows the same divergence at the same op', { timeout: 120_000 }, async () => {
    const profile = profileFor(kernel.release, { arch: kernel.arch, distro: 'debian' });
    const r = await executeProgram(guest, 3, finding, profile);
    expect(r.check.divergence?.index).toBe(DIVERGING_OP);
    expect(findingCandidates(r, { spec: kernel.exactSpec, release: kernel.release }).map((c) => c.title)).toEqual([TITLE]);
  });

  it('the compact reproducer of a minimized single-task finding reproduces it', { timeout: 120_000 }, async () => {
    const r = await runReproOnGuest(guest, guestReproPath(bin.compact!), compact.device, { progId: 4 });
    expect(r.exitCode, r.output).toBe(1);
    expect(r.finding).toBe(COMPACT_TITLE);
    expect(r.output).toMatch(/^step 3 \(t0\): mmap\(.*\) = EEXIST \(expected ok\)/m);
    expect(r.reports).toEqual([]);
  });
});
