import { promises as fs } from 'node:fs';
import { basename, dirname } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildAgent, staticElfProblem } from '../../guest/build.js';
import { cleanupAgentCache, useTestCache } from './agent-local.js';

afterAll(() => cleanupAgentCache());

describe('buildAgent', () => {
  it('builds a static x86_64 binary once and reuses it', { timeout: 120_000 }, async () => {
    const cache = useTestCache();
    const path = await buildAgent('x86_64');
    expect(path.startsWith(cache + '/agent/')).toBe(true);
    expect(basename(dirname(path))).toMatch(/^[0-9a-f]{64}$/);
    const elf = await fs.readFile(path);
    expect(staticElfProblem(elf, 'x86_64')).toBeUndefined();
    const st = await fs.stat(path);
    expect(st.mode & 0o111).not.toBe(0);
    const again = await buildAgent('x86_64');
    expect(again).toBe(path);
    expect((await fs.stat(again)).mtimeMs).toBe(st.mtimeMs);
    // no temporary files left next to it
    expect(await fs.readdir(dirname(path))).toEqual(['svadiff-agent']);
  });

  it('builds a static arm64 agent with the cross compiler', async () => {
    useTestCache();
    const path = await buildAgent('arm64');
    expect(staticElfProblem(await fs.readFile(path), 'arm64')).toBeUndefined();
    expect(staticElfProblem(await fs.readFile(path), 'x86_64')).toMatch(/not x86_64/);
  });
});

describe('staticElfProblem', () => {
  it('spots a dynamically linked executable', async () => {
    const node = await fs.readFile(process.execPath);
    // Node from Debian or nodesource is dynamically linked; skip the check for a static build.
    const problem = staticElfProblem(node, 'x86_64');
    if (problem !== undefined) expect(problem).toMatch(/dynamically linked/);
  });

  it('spots the wrong architecture and non-ELF data', async () => {
    useTestCache();
    const elf = Buffer.from(await fs.readFile(await buildAgent('x86_64')));
    expect(staticElfProblem(elf, 'arm64')).toMatch(/machine 62/);
    expect(staticElfProblem(Buffer.from('#!/bin/sh\n'), 'x86_64')).toBe('not an ELF file');
    expect(staticElfProblem(elf.subarray(0, 80), 'x86_64')).toMatch(/truncated/);
  });
});
