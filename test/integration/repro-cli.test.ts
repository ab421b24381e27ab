/**
 * `svadiff replay` end to end on a real guest (Debian 6.12, one boot): the reproducer of a real
 * finding (test/fixtures/repro/), written as svadiff writes it, replayed twice through the
 * command; its own title says what counts.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { cmdReplay } from '../../harness/commands/replay.js';
import { profileFor } from '../../harness/model/index.js';
import { parseProgram } from '../../harness/program/parse.js';
import { reproForProgram } from '../../harness/repro/csource.js';

const TITLE = 'mmap: expected ok, got EEXIST [mmap.ok]';
const dir = mkdtempSync(join(tmpdir(), 'svadiff-replay-it-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('svadiff replay repro.c', () => {
  it('reproduces a deterministic finding in every run: exit 0, "reproduced 2 of 2"', { timeout: 15 * 60_000 }, async () => {
    const program = parseProgram(readFileSync('test/fixtures/repro/mmap-ok-finding.program.json', 'utf8'), 'fixture');
    const profile = profileFor('6.12.117+deb12-amd64', { arch: 'x86_64', distro: 'debian' });
    const c = join(dir, 'repro.c');
    writeFileSync(c, reproForProgram(program, profile, { title: TITLE, kernel: '6.12.117+deb12-amd64 (debian:6.12)' }));
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    let code: number;
    try {
      code = await cmdReplay([c, '--runs', '2', '--out', join(dir, 'out')]);
    } finally {
      spy.mockRestore();
    }
    const text = out.join('');
    expect(code, text).toBe(0);
    expect(text).toContain(`run 1/2: reproduced: exit 1: ${TITLE}\n`);
    expect(text).toContain(`run 2/2: reproduced: exit 1: ${TITLE}\n`);
    expect(text).toMatch(/^reproduced 2 of 2 on debian:6\.12\.\d+ \(6\.12\.\d+\+deb12-amd64\)$/m);
  });
});
