/**
 * svadiff fuzz on a real debian:6.12 guest, interrupted with Ctrl-C (SIGINT) once it has found
 * something: every finding written so far must be complete on disk, the summary printed, and a
 * second run with the same seed and output directory must continue the same program stream.
 * Seed 1 finds the private-mapping region leak within its first programs (see corpus/regress).
 */
import { execa } from 'execa';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const CLI = join(process.cwd(), 'bin', 'svadiff.js');

describe('svadiff fuzz, interrupted', () => {
  it('keeps every finding on Ctrl-C and resumes the stream', async () => {
    const out = mkdtempSync(join(tmpdir(), 'svadiff-fuzz-int-'));
    const child = execa('node', [CLI, 'fuzz', '--kernel', 'debian:6.12', '--time', '10m', '--seed', '1', '--out', out], {
      reject: false,
      all: false,
      stdin: 'ignore',
      env: { ...process.env, CI: 'true' },
    });
    let stderr = '';
    const found = new Promise<void>((resolve) => {
      child.stderr?.on('data', (b: Buffer) => {
        stderr += b.toString();
        if (/^finding \((NEW|known issue)\): /m.test(stderr)) resolve();
      });
    });
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 240_000));
    const first = await Promise.race([found.then(() => 'found' as const), timeout, child.then(() => 'exited' as const)]);
    expect(first, stderr.slice(-2000)).toBe('found');
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode, stderr.slice(-2000)).toBe(0);
    expect(stderr).toMatch(/interrupted: stopping after the current program/);
    expect(String(r.stdout)).toMatch(/distinct findings in /);

    const dirs = readdirSync(join(out, 'findings'));
    expect(dirs.length).toBeGreaterThan(0);
    for (const d of dirs) {
      const f = JSON.parse(readFileSync(join(out, 'findings', d, 'finding.json'), 'utf8')) as Record<string, unknown>;
      expect(f.id).toBe(d);
      expect(['divergence', 'crash', 'hang']).toContain(f.kind);
      expect(typeof f.title).toBe('string');
      expect(f.count).toBeGreaterThan(0);
      JSON.parse(readFileSync(join(out, 'findings', d, 'program.json'), 'utf8'));
    }
    const state = JSON.parse(readFileSync(join(out, 'fuzz-state.json'), 'utf8')) as { nextIndex: number; seed: number };
    expect(state.seed).toBe(1);
    expect(state.nextIndex).toBeGreaterThan(0);

    // the same seed and directory continue where the first run stopped
    const again = await execa('node', [CLI, 'fuzz', '--kernel', 'debian:6.12', '--seed', '1', '--out', out, '--programs', '2'], {
      reject: false,
      stdin: 'ignore',
    });
    expect(again.exitCode, String(again.stderr).slice(-2000)).toBe(0);
    expect(String(again.stderr)).toContain(`from program ${state.nextIndex}`);
    const state2 = JSON.parse(readFileSync(join(out, 'fuzz-state.json'), 'utf8')) as { nextIndex: number };
    expect(state2.nextIndex).toBe(state.nextIndex + 2);
  }, 400_000);
});
