/**
 * VM snapshots on a real Debian 6.12 guest (QEMU from the host's qemu-system-x86): the first
 * guest boots and saves itself once its agent is ready, the next is restored from that file and
 * runs the seed programs with the same outcomes as the booted one (device reset in place
 * included), and a snapshot that does not restore (here: cut short) makes the next guest boot,
 * then save a good one again. Snapshots go to a directory of the test's own.
 */
import { mkdtempSync, readdirSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { fetchKernel } from '../../kernels/index.js';
import type { KernelArtifacts } from '../../kernels/types.js';
import { observe } from '../../harness/agent/observe.js';
import { slotTable } from '../../harness/agent/wire.js';
import { profileFor, type KernelProfile } from '../../harness/model/index.js';
import type { Program } from '../../harness/program/types.js';
import { loadSeedPrograms } from '../../harness/repro/regress.js';
import { executeProgram } from '../../harness/run/execute.js';
import { Guest, prepareGuestImage, type GuestImage } from '../../harness/vm/guest.js';

const seeds: Program[] = await loadSeedPrograms();

let kernel: KernelArtifacts;
let image: GuestImage;
let profile: KernelProfile;
const dir = mkdtempSync(join(tmpdir(), 'svadiff-snap-'));
const logDir = mkdtempSync(join(tmpdir(), 'svadiff-snap-logs-'));

beforeAll(async () => {
  kernel = await fetchKernel('debian:6.12');
  image = await prepareGuestImage(kernel);
  profile = profileFor(kernel.release, { arch: kernel.arch, distro: 'debian' });
});

/** A guest (restored when a snapshot is there), the seeds run on it, their outcomes. */
async function seedsOn(name: string): Promise<{ restored: boolean; outcomes: string[] }> {
  const g = await Guest.boot(kernel, image, { snapshot: true, snapshotDir: dir, consolePath: join(logDir, `${name}.console.log`) });
  try {
    const outcomes: string[] = [];
    let id = 1;
    for (const p of seeds) {
      const r = await executeProgram(g, id++, p, profile, { setup: 'reset' });
      expect(r.reports, `${p.comment}: ${r.kmsgText.slice(-2000)}`).toEqual([]);
      expect(r.check.divergence?.title).toBeUndefined();
      const slots = slotTable(p);
      outcomes.push(...p.ops.map((op, i) => (r.run?.results[i] ? JSON.stringify(observe(op, r.run.results[i]!, slots)) : 'no result')));
    }
    return { restored: g.restored, outcomes };
  } finally {
    await g.shutdown();
  }
}

const snapshots = () => readdirSync(dir).filter((f) => f.endsWith('.vmstate'));

describe('VM snapshots on debian:6.12', () => {
  it('boots and saves, then restores; a broken snapshot falls back to a boot and is saved again', { timeout: 20 * 60_000 }, async () => {
    const booted = await seedsOn('boot');
    expect(booted.restored).toBe(false);
    expect(snapshots()).toHaveLength(1);

    const restored = await seedsOn('restore');
    expect(restored.restored).toBe(true);
    expect(restored.outcomes).toEqual(booted.outcomes);

    const file = join(dir, snapshots()[0]!);
    const size = statSync(file).size;
    truncateSync(file, Math.floor(size / 2));
    const fallback = await seedsOn('fallback');
    expect(fallback.restored).toBe(false);
    expect(fallback.outcomes).toEqual(booted.outcomes);
    // saved again, whole
    expect(snapshots()).toHaveLength(1);
    expect(statSync(file).size).toBeGreaterThan(size / 2);
  });
});
