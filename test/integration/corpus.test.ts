/**
 * The regression corpus on a real guest: every corpus/regress entry recorded for the default
 * kernel's series gives exactly its recorded outcome (the kernel bug is still there, and the
 * harness still sees it the same way), and every seed program of corpus/seeds gives no finding
 * at all; and the minimizer, on a real guest, shrinks a noisy program around one of these bugs
 * back to the bug's own ops. Runs the real Debian 6.12 kernel in QEMU (TCG here).
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchKernel } from '../../kernels/index.js';
import type { KernelArtifacts } from '../../kernels/types.js';
import { seriesOf } from '../../harness/findings/known.js';
import { profileFor, type KernelProfile } from '../../harness/model/index.js';
import { parseProgram } from '../../harness/program/parse.js';
import type { Op, Program } from '../../harness/program/types.js';
import { GuestTester, findingSignature, minimize } from '../../harness/repro/minimize.js';
import { loadRegressCorpus } from '../../harness/repro/regress.js';
import { executeProgram, findingCandidates, type ExecResult } from '../../harness/run/execute.js';
import { Guest, prepareGuestImage, type GuestImage } from '../../harness/vm/guest.js';

const KERNEL = 'debian:6.12';
const SERIES = '6.12';
const ROOT = join(import.meta.dirname, '..', '..');

const entries = (await loadRegressCorpus()).filter((e) => e.recorded.series === SERIES);
const seedDir = join(ROOT, 'corpus', 'seeds');
const seeds = readdirSync(seedDir)
  .filter((n) => n.endsWith('.json'))
  .sort()
  .map((n) => ({ name: n, program: parseProgram(readFileSync(join(seedDir, n), 'utf8'), n) }));

let kernel: KernelArtifacts;
let image: GuestImage;
let profile: KernelProfile;
let guest: Guest | undefined;
let progId = 1;
const logDir = mkdtempSync(join(tmpdir(), 'svadiff-corpus-'));

beforeAll(async () => {
  kernel = await fetchKernel(KERNEL);
  image = await prepareGuestImage(kernel);
  profile = profileFor(kernel.release, { arch: kernel.arch, distro: 'debian' });
});

afterAll(async () => {
  await guest?.shutdown();
});

/** Run one program from a fresh test device; reboot afterwards when the run calls for it. */
async function run(program: Program): Promise<{ r: ExecResult; titles: { kind: string; title: string }[] }> {
  guest ??= await Guest.boot(kernel, image, { consolePath: join(logDir, `boot-${progId}.console.log`) });
  const r = await executeProgram(guest, progId++, program, profile);
  const titles = findingCandidates(r, { spec: kernel.exactSpec, release: kernel.release }).map((c) => ({ kind: c.kind, title: c.title }));
  if (r.needsReboot) {
    await guest.kill();
    guest = undefined;
  }
  return { r, titles };
}

describe(`regression corpus on ${KERNEL}`, () => {
  it('has entries for this series, all made on it', () => {
    expect(entries.length).toBeGreaterThan(0);
    expect(kernel.release.startsWith(SERIES + '.')).toBe(true);
    for (const e of entries) expect(seriesOf(e.recorded.release)).toBe(SERIES);
  });

  for (const e of entries) {
    it(`${e.name}: ${e.outcome.kind} "${e.outcome.title}"`, { timeout: 180_000 }, async () => {
      const { r, titles } = await run(e.program);
      expect(r.check.anomaly).toBeUndefined();
      expect(r.run?.started).toBe(true);
      // exactly the recorded outcome, nothing else
      expect(titles).toEqual([{ kind: e.outcome.kind, title: e.outcome.title }]);
    });
  }

  for (const s of seeds) {
    it(`seed ${s.name} gives no finding`, { timeout: 180_000 }, async () => {
      const { r, titles } = await run(s.program);
      expect(r.check.anomaly).toBeUndefined();
      expect(titles).toEqual([]);
      expect(r.check.checked).toBe(s.program.ops.length);
    });
  }
});

describe(`minimization on a real ${KERNEL} guest`, () => {
  it('shrinks a noisy program around a corpus bug back to its four ops', { timeout: 15 * 60_000 }, async () => {
    const bug = entries.find((e) => e.name === 'uacce-private-mapping-region-never-freed');
    expect(bug).toBeDefined();
    const core = bug!.program.ops;
    // the bug's ops with unrelated work around and between them, on a non-default device
    const noise: Op[] = [
      { op: 'sysfs_read', task: 't0', dev: 1, attr: 'available_instances' },
      { op: 'open', task: 't0', fd: 'x0', dev: 1, via: 'path' },
      { op: 'mmap', task: 't0', map: 'x1', fd: 'x0', region: 0, pages: 1, prot: 'rw', shared: true },
      { op: 'fork', task: 't0', child: 't1' },
      { op: 'ioctl', task: 't1', fd: 'x0', cmd: 'START_Q' },
      { op: 'alloc', task: 't0', map: 'x2', pages: 2 },
      { op: 'touch', task: 't0', map: 'x2', page: 1, offset: 64, access: 'write', value: '0x1234' },
    ];
    const program: Program = {
      ...bug!.program,
      device: { ...bug!.program.device, devices: 2, queue_limit: 8 },
      ops: [noise[0]!, core[0]!, noise[1]!, noise[2]!, core[1]!, noise[3]!, noise[4]!, core[2]!, noise[5]!, noise[6]!, core[3]!],
    };
    const sig = findingSignature({ kind: 'divergence', title: bug!.outcome.title, expected: 'ok', observed: 'EEXIST', op_index: program.ops.length - 1 }, program);
    const tester = new GuestTester({
      boot: () => Guest.boot(kernel, image, { consolePath: join(logDir, `minimize-${Date.now()}.console.log`) }),
      profile,
      kernel: { spec: kernel.exactSpec, release: kernel.release },
    });
    try {
      const r = await minimize(program, sig, tester, { fastCheckRuns: 0 });
      expect(r.reproduced).toBe(true);
      expect(r.opsBefore).toBe(11);
      expect(r.program.ops.map((o) => o.op)).toEqual(['open', 'mmap', 'munmap', 'mmap']);
      expect(r.program.device).toMatchObject({ devices: 1, queue_limit: 4 });
      expect(r.confirm).toEqual({ hits: 3, runs: 3, firstHit: 1 });
      expect(r.witness?.result?.check.divergence?.title).toBe(bug!.outcome.title);
    } finally {
      await tester.close();
    }
  });
});
