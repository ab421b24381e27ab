/**
 * A Debian kernel's cache entry keeps a few module builds (modules-<hash>/ with modules.json),
 * so switching between test module sources reuses a build instead of rebuilding, and a guest
 * that still boots an older build keeps its files. Plain files in a temporary directory: no kernel.
 */
import { mkdtempSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { keptModuleBuild, MODULE_RECIPE, writeManifest, type Manifest } from '../../kernels/fetch.js';

function moduleBuild(dir: string, hash: string, builtAt: string, record = true): Manifest['modules'] {
  const name = `modules-${hash.slice(0, 12)}`;
  const m: Manifest['modules'] = {
    recipe: MODULE_RECIPE,
    inputsHash: hash,
    dir: name,
    uacce: `${name}/uacce/uacce.ko`,
    svadiffTest: `${name}/svadiff/module/svadiff_test.ko`,
    buildEnv: 'host',
    testModuleHash: `t${hash}`,
    vermagic: '6.12.118+deb12-amd64 SMP',
    builtAt,
  };
  mkdirSync(join(dir, name, 'uacce'), { recursive: true });
  mkdirSync(join(dir, name, 'svadiff', 'module'), { recursive: true });
  writeFileSync(join(dir, m.uacce), 'ko');
  writeFileSync(join(dir, m.svadiffTest), 'ko');
  if (record) writeFileSync(join(dir, name, 'modules.json'), JSON.stringify(m));
  return m;
}

const hash = (c: string) => c.repeat(64);
const manifestWith = (modules: Manifest['modules']) => ({ schema: 1, exactSpec: 'debian:6.12.118', modules }) as unknown as Manifest;

describe('module builds kept in a kernel entry', () => {
  it('finds a kept build by its inputs hash, and not one with other inputs, a missing file or no record', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'svadiff-modbuilds-'));
    const a = moduleBuild(dir, hash('a'), '2026-12-04T10:00:00Z');
    const b = moduleBuild(dir, hash('b'), '2026-12-04T11:00:00Z', false);
    const man = manifestWith(a);
    expect(await keptModuleBuild(dir, man, hash('a'))).toEqual(a);
    expect(await keptModuleBuild(dir, man, hash('b'))).toBeUndefined(); // no modules.json: unfinished
    expect(await keptModuleBuild(dir, man, hash('c'))).toBeUndefined();
    writeFileSync(join(dir, b.dir, 'modules.json'), JSON.stringify(b));
    expect(await keptModuleBuild(dir, man, hash('b'))).toEqual(b);
    // same 12-character prefix, other inputs: not this build
    expect(await keptModuleBuild(dir, man, `${'a'.repeat(12)}${'f'.repeat(52)}`)).toBeUndefined();
  });

  it('writing the manifest keeps the current build and the three newest others, and drops builds without a record', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'svadiff-modbuilds-'));
    const builds = ['1', '2', '3', '4', '5'].map((c, i) => moduleBuild(dir, hash(c), `2026-12-04T0${i}:00:00Z`));
    moduleBuild(dir, hash('9'), '2026-12-04T09:00:00Z', false);
    await writeManifest(dir, manifestWith(builds[0]!));
    const left = readdirSync(dir).filter((n) => n.startsWith('modules-')).sort();
    // the manifest's (oldest) build, and the three newest others (5, 4, 3); 2 and the unrecorded 9 go
    expect(left).toEqual([builds[0]!.dir, builds[2]!.dir, builds[3]!.dir, builds[4]!.dir].sort());
  });
});
