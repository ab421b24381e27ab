/**
 * The arm64 leg on a real guest: Debian's arm64 6.12 kernel under qemu-system-aarch64 (`virt`
 * with an emulated SMMUv3, TCG), uacce.ko and the test module cross-built with bookworm's
 * aarch64-linux-gnu-gcc-12, the agent and busybox for arm64. The seed programs give no finding
 * (the model's arm64 profile agrees with the kernel, 4 KiB pages included), two uacce bugs of the
 * regression corpus show with the titles they have on x86_64 (the code is shared) and the
 * cross-compiled C reproducer of one of them reproduces it in the guest.
 *
 * Cost: about 30 s of boots and programs with everything cached; a cold cache adds the cross
 * compiler, qemu-system-arm and libc6-dev-arm64-cross (host packages, about 1 min), the arm64
 * kernel packages (about 250 MB) and the module build (about 40 s).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { staticElfProblem } from '../../guest/build.js';
import { fetchKernel } from '../../kernels/index.js';
import type { KernelArtifacts } from '../../kernels/types.js';
import { loadKnownIssues } from '../../harness/findings/known.js';
import { profileFor, type KernelProfile } from '../../harness/model/index.js';
import { parseProgram } from '../../harness/program/parse.js';
import type { Program } from '../../harness/program/types.js';
import { reproForProgram } from '../../harness/repro/csource.js';
import { loadRegressCorpus } from '../../harness/repro/regress.js';
import { compileRepro, guestReproPath, prepareReproImage, runReproOnGuest } from '../../harness/repro/replay.js';
import { executeProgram, findingCandidates, type ExecResult } from '../../harness/run/execute.js';
import { Guest } from '../../harness/vm/guest.js';

const KERNEL = 'debian:6.12/arm64';
const ROOT = join(import.meta.dirname, '..', '..');
/** shared-code divergences of the 6.12 regression corpus: the same title on both architectures */
const SHARED = ['uacce-private-mapping-region-never-freed.json', 'uacce-partial-munmap-frees-region.json'];

const seedDir = join(ROOT, 'corpus', 'seeds');
const seeds = readdirSync(seedDir)
  .filter((n) => n.endsWith('.json'))
  .sort()
  .map((n) => ({ name: n, program: parseProgram(readFileSync(join(seedDir, n), 'utf8'), n) }));
const regress = (await loadRegressCorpus()).filter((e) => SHARED.includes(`${e.name}.json`));

let kernel: KernelArtifacts;
let profile: KernelProfile;
let guest: Guest | undefined;
let reproBinary: string;
let reproProgram: Program;
let reproTitle: string;
let progId = 1;
const dir = mkdtempSync(join(tmpdir(), 'svadiff-arm64-'));

beforeAll(async () => {
  kernel = await fetchKernel(KERNEL);
  profile = profileFor(kernel.release, { arch: kernel.arch, distro: 'debian' });
  // the reproducer of the first shared bug, cross-compiled, goes into the guest's /repro
  const e = regress[0];
  if (!e) throw new Error(`corpus/regress lost ${SHARED[0]}`);
  reproProgram = e.program;
  reproTitle = e.outcome.title;
  const c = join(dir, 'repro.c');
  writeFileSync(c, reproForProgram(reproProgram, profile, { title: reproTitle, kernel: `${kernel.release} (${kernel.exactSpec})` }));
  reproBinary = await compileRepro(c, ['-Werror'], kernel.arch);
  const image = await prepareReproImage(kernel, [reproBinary]);
  guest = await Guest.boot(kernel, image, { consolePath: join(dir, 'boot.console.log') });
});

afterAll(async () => {
  await guest?.shutdown();
  rmSync(dir, { recursive: true, force: true });
});

async function run(program: Program): Promise<{ r: ExecResult; titles: { kind: string; title: string }[] }> {
  if (!guest) throw new Error('the guest went away earlier');
  const r = await executeProgram(guest, progId++, program, profile);
  const titles = findingCandidates(r, { spec: kernel.exactSpec, release: kernel.release, arch: kernel.arch }).map((c) => ({ kind: c.kind, title: c.title }));
  if (r.needsReboot) throw new Error(`program ${progId - 1} needs a reboot (${JSON.stringify(titles)}): no program here may`);
  return { r, titles };
}

describe(`real arm64 guest: ${KERNEL}`, () => {
  it('is the arm64 kernel on the SMMUv3 machine', () => {
    expect(kernel.arch).toBe('arm64');
    expect(kernel.exactSpec).toMatch(/^debian:6\.12\.\d+\/arm64$/);
    expect(guest!.session.hello?.release).toBe(kernel.release);
    expect(kernel.release).toMatch(/-arm64$/);
    expect(guest!.machine.name).toBe('arm64-smmuv3');
    expect(guest!.accel).toBe('tcg');
    expect(guest!.bootKmsg.some((r) => /^arm-smmu-v3 [0-9a-f]+\.smmuv3: /.test(r.text))).toBe(true);
    expect(guest!.bootKmsg.some((r) => /^uacce: loading out-of-tree module/.test(r.text))).toBe(true);
  });

  it('the profile: no IOMMU SVA, 4 KiB pages (the guest agrees: the 2-page region is 8192 bytes)', { timeout: 120_000 }, async () => {
    expect([profile.iommuSva, profile.pageSize, profile.svaBindKillSwitch]).toEqual([false, 4096, false]);
    const program = parseProgram(
      JSON.stringify({
        format: 'svadiff-program',
        version: 1,
        device: { mmio_pages: 2 },
        ops: [
          { op: 'open', task: 't0', fd: 'q', dev: 0 },
          { op: 'sysfs_read', task: 't0', dev: 0, attr: 'region_mmio_size' },
          { op: 'sysfs_read', task: 't0', dev: 0, attr: 'flags' },
          { op: 'close', task: 't0', fd: 'q' },
        ],
      }),
      'inline',
    );
    const { r, titles } = await run(program);
    expect(titles).toEqual([]);
    expect(r.run?.results[1]?.data).toBe('8192\n');
    expect(r.run?.results[2]?.data).toBe('0\n');
  });

  for (const s of seeds) {
    it(`seed ${s.name}: no finding`, { timeout: 180_000 }, async () => {
      const { r, titles } = await run(s.program);
      expect(r.check.anomaly).toBeUndefined();
      expect(titles).toEqual([]);
    });
  }

  it('the shared uacce bugs of the regression corpus give their x86_64 titles', { timeout: 300_000 }, async () => {
    expect(regress.map((e) => `${e.name}.json`).sort()).toEqual([...SHARED].sort());
    for (const e of regress) {
      const { titles } = await run(e.program);
      expect(titles, e.name).toEqual([{ kind: e.outcome.kind, title: e.outcome.title }]);
    }
  });

  it("the cross-compiled C reproducer is an arm64 static binary and reproduces the bug in the guest", { timeout: 120_000 }, async () => {
    expect(staticElfProblem(readFileSync(reproBinary), 'arm64')).toBeUndefined();
    const r = await runReproOnGuest(guest!, guestReproPath(reproBinary), reproProgram.device, { progId: progId++ });
    expect(r.exitCode, r.output).toBe(1);
    expect(r.finding).toBe(reproTitle);
    expect(r.reports).toEqual([]);
  });

  it("arm64's own title of the stale-node use-after-free is known for 6.12 on arm64 only", async () => {
    const title = 'BUG: unable to handle page fault in __mutex_lock';
    expect((await loadKnownIssues('6.12', undefined, 'arm64')).match(title)).toBeDefined();
    expect((await loadKnownIssues('6.12', undefined, 'x86_64')).match(title)).toBeUndefined();
  });
});
