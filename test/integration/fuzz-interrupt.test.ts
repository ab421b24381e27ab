/**
 * svadiff fuzz on a real debian:6.12 guest, interrupted once it has found something: with
 * Ctrl-C (SIGINT), and killed outright (SIGKILL, as the OOM killer would). Either way every
 * finding written so far must be complete on disk and a second run with the same seed and
 * output directory must continue the same program stream; a killed harness must take its QEMU
 * with it (harness/util/proc.ts). Seed 1 finds the private-mapping region leak within its first
 * programs (see corpus/regress).
 */
import { execa } from 'execa';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { childrenOf, killLeft, waitGone, type ProcInfo } from '../unit/process-state.js';

const CLI = join(process.cwd(), 'bin', 'svadiff.js');

/**
 * `svadiff fuzz --seed 1` into out (one job unless given), and a promise that resolves when it
 * reports its first finding (with jobs: job 0 has, and every other job has saved its position).
 */
function startFuzz(out: string, jobs = 1) {
  const child = execa('node', [CLI, 'fuzz', '--kernel', 'debian:6.12', '--time', '10m', '--seed', '1', '--out', out, '--jobs', String(jobs)], {
    reject: false,
    all: false,
    stdin: 'ignore',
    env: { ...process.env, CI: 'true' },
  });
  let stderr = '';
  const found = new Promise<void>((resolve) => {
    child.stderr?.on('data', (b: Buffer) => {
      stderr += b.toString();
      if (jobs === 1 && /^bug \((NEW|known issue)\): /m.test(stderr)) resolve();
      // with jobs: job 0 found something and every other job has saved a position
      const saved = (j: number) => {
        try {
          return (JSON.parse(readFileSync(join(out, 'jobs', String(j), 'fuzz-state.json'), 'utf8')) as { nextIndex: number }).nextIndex > 0;
        } catch {
          return false;
        }
      };
      if (jobs > 1 && /^\[job 0\] (bug|another title of bug)/m.test(stderr) && Array.from({ length: jobs - 1 }, (_, j) => j + 1).every(saved)) resolve();
    });
  });
  const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), jobs > 1 ? 360_000 : 240_000));
  const first = Promise.race([found.then(() => 'found' as const), timeout, child.then(() => 'exited' as const)]);
  return { child, first, stderr: () => stderr };
}

/** Every finding directory is complete: finding.json names it, program.json parses. */
function checkFindings(out: string): Record<string, number> {
  const dirs = readdirSync(join(out, 'findings')).filter((d) => !d.startsWith('.'));
  expect(dirs.length).toBeGreaterThan(0);
  const counts: Record<string, number> = {};
  for (const d of dirs) {
    const f = JSON.parse(readFileSync(join(out, 'findings', d, 'finding.json'), 'utf8')) as Record<string, unknown>;
    expect(f.id).toBe(d);
    expect(['divergence', 'crash', 'hang']).toContain(f.kind);
    expect(typeof f.title).toBe('string');
    expect(f.count).toBeGreaterThan(0);
    JSON.parse(readFileSync(join(out, 'findings', d, 'program.json'), 'utf8'));
    counts[d] = f.count as number;
  }
  return counts;
}

/** Two more programs with the same seed and directory start where the state says. */
async function checkResumes(out: string): Promise<void> {
  const state = JSON.parse(readFileSync(join(out, 'fuzz-state.json'), 'utf8')) as { nextIndex: number; seed: number };
  expect(state.seed).toBe(1);
  expect(state.nextIndex).toBeGreaterThan(0);
  const again = await execa('node', [CLI, 'fuzz', '--kernel', 'debian:6.12', '--seed', '1', '--out', out, '--programs', '2', '--jobs', '1'], {
    reject: false,
    stdin: 'ignore',
  });
  expect(again.exitCode, String(again.stderr).slice(-2000)).toBe(0);
  expect(String(again.stderr)).toContain(`from program ${state.nextIndex}`);
  const state2 = JSON.parse(readFileSync(join(out, 'fuzz-state.json'), 'utf8')) as { nextIndex: number };
  expect(state2.nextIndex).toBe(state.nextIndex + 2);
}

describe('svadiff fuzz, interrupted', () => {
  it('keeps every finding on Ctrl-C and resumes the stream', async () => {
    const out = mkdtempSync(join(tmpdir(), 'svadiff-fuzz-int-'));
    const run = startFuzz(out);
    expect(await run.first, run.stderr().slice(-2000)).toBe('found');
    run.child.kill('SIGINT');
    const r = await run.child;
    expect(r.exitCode, run.stderr().slice(-2000)).toBe(0);
    expect(run.stderr()).toMatch(/interrupted: stopping after the current program/);
    expect(String(r.stdout)).toMatch(/bugs \(\d+ distinct titles\) in /);
    checkFindings(out);
    await checkResumes(out);
  }, 400_000);

  it('killed with SIGKILL: its QEMU dies with it, findings and the resume state stay', async () => {
    const out = mkdtempSync(join(tmpdir(), 'svadiff-fuzz-kill-'));
    const run = startFuzz(out);
    let qemu: ProcInfo[] = [];
    try {
      expect(await run.first, run.stderr().slice(-2000)).toBe('found');
      // the guest that is running programs: QEMU, a child of the harness (setpriv execs it)
      // (right after a kernel report the harness may be between two guests: wait for the next one)
      for (let t = Date.now(); Date.now() - t < 60_000; await new Promise((r) => setTimeout(r, 200))) {
        qemu = childrenOf(run.child.pid!).filter((p) => p.comm.startsWith('qemu-system'));
        if (qemu.length > 0) break;
      }
      expect(qemu.length, 'no QEMU child of the harness found').toBe(1);
      run.child.kill('SIGKILL');
      const tookMs = await waitGone(qemu, 10_000);
      expect(tookMs, `QEMU (pid ${qemu[0]!.pid}) still runs 10 s after its harness was killed`).toBeDefined();
      console.log(`QEMU gone ${tookMs} ms after the harness was sent SIGKILL`);
      expect((await run.child).signal).toBe('SIGKILL');
    } finally {
      killLeft(qemu);
    }
    const before = checkFindings(out);
    await checkResumes(out);
    // what the killed run found is still there (the resumed run may have added to it)
    const after = checkFindings(out);
    for (const [id, n] of Object.entries(before)) expect(after[id]).toBeGreaterThanOrEqual(n);
  }, 400_000);

  it("with --jobs 2, killed with SIGKILL: both QEMUs die with it, every job's findings and both positions stay", async () => {
    const out = mkdtempSync(join(tmpdir(), 'svadiff-fuzz-jobs-'));
    const run = startFuzz(out, 2);
    let qemu: ProcInfo[] = [];
    try {
      expect(await run.first, run.stderr().slice(-3000)).toBe('found');
      expect(run.stderr()).toMatch(/^svadiff: jobs: 2 \(from --jobs\), seeds 1, \d+; each job is one guest$/m);
      expect(run.stderr()).toMatch(/2 jobs, programs \d+ \(/);
      for (let t = Date.now(); Date.now() - t < 90_000; await new Promise((r) => setTimeout(r, 200))) {
        qemu = childrenOf(run.child.pid!).filter((p) => p.comm.startsWith('qemu-system'));
        if (qemu.length === 2) break;
      }
      expect(qemu.length, 'not two QEMU children of the harness').toBe(2);
      run.child.kill('SIGKILL');
      expect(await waitGone(qemu, 10_000), 'a QEMU still runs 10 s after its harness was killed').toBeDefined();
      expect((await run.child).signal).toBe('SIGKILL');
    } finally {
      killLeft(qemu);
    }
    checkFindings(out);
    // every title a job announced is on disk with that job's program (named by its seed)
    const seeds = new Set<string>();
    for (const d of readdirSync(join(out, 'findings')).filter((x) => !x.startsWith('.'))) {
      const p = JSON.parse(readFileSync(join(out, 'findings', d, 'program.json'), 'utf8')) as { comment?: string };
      const m = /seed (\d+)/.exec(p.comment ?? '');
      if (m) seeds.add(m[1]!);
    }
    const job1Seed = /seeds 1, (\d+);/.exec(run.stderr())![1]!;
    const announced = ['1', ...(/^\[job 1\] bug/m.test(run.stderr()) ? [job1Seed] : [])];
    for (const seed of announced) expect([...seeds]).toContain(seed);
    // both positions were saved with the findings
    for (const dir of [out, join(out, 'jobs', '1')]) {
      const st = JSON.parse(readFileSync(join(dir, 'fuzz-state.json'), 'utf8')) as { nextIndex: number; seed: number };
      expect(st.nextIndex).toBeGreaterThan(0);
    }
  }, 600_000);
});
