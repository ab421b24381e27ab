/**
 * The generator measured on the model (issue 17, "measure the model, not only the kernel"): the
 * programs of a fixed stream, run through the model alone, reach every rule a valid program can
 * reach, and no rule's reach falls far behind the recorded baseline (test/fixtures/reach). 400
 * programs: seed 7 reaches every rule after 281 of them on 6.12 and 6.1 (a few seconds).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runOnModel } from '../../harness/coverage/model-run.js';
import { OVERLAP_ONLY_RULES, profileUnreachable } from '../../harness/coverage/reach.js';
import { generateProgram } from '../../harness/generator/index.js';
import { profileFor, RULES, type KernelProfile } from '../../harness/model/index.js';
import { VFIO_RULES } from '../../harness/model/vfio.js';
import { IOMMUFD_RULES } from '../../harness/model/iommufd.js';

const PROGRAMS = 400;
const SEED = 7;

function reach(profile: KernelProfile): Map<string, number> {
  const n = new Map<string, number>();
  for (let i = 0; i < PROGRAMS; i++) {
    for (const s of runOnModel(generateProgram(SEED, i, { profile }), profile).steps) n.set(s.rule, (n.get(s.rule) ?? 0) + 1);
  }
  return n;
}

const profiles = {
  '6.12': profileFor('6.12.118+deb12-amd64', { arch: 'x86_64', distro: 'debian' }),
  '6.1': profileFor('6.1.0-57-amd64', { arch: 'x86_64', distro: 'debian' }),
  // binds succeed: a quarter of the programs are SVA ones (device.sva), with the pasid op
  '7.2': profileFor('7.2.13+deb14-amd64', { arch: 'x86_64', distro: 'debian' }),
};

describe('rule reach of generated programs on the model', () => {
  for (const [series, profile] of Object.entries(profiles)) {
    it(`${PROGRAMS} programs reach every rule a valid program can reach on ${series}`, () => {
      const got = reach(profile);
      const cannot = { ...profileUnreachable(profile), ...OVERLAP_ONLY_RULES };
      // the vfio family's rules are reached by its own programs (test/unit/model-vfio.test.ts,
      // test/unit/model-iommufd.test.ts)
      const missing = Object.keys(RULES).filter((r) => !(r in cannot) && !(r in VFIO_RULES) && !(r in IOMMUFD_RULES) && !got.has(r));
      expect(missing).toEqual([]);
      // and the ones it cannot reach it does not reach (else the list is stale)
      expect(Object.keys(cannot).filter((r) => got.has(r))).toEqual([]);
    }, 120_000);
  }

  it('no rule falls below half its recorded reach (test/fixtures/reach)', () => {
    const base = JSON.parse(readFileSync('test/fixtures/reach/rule-reach-6.12.json', 'utf8')) as { programs: number; seed: number; coverage: { rules: Record<string, number> } };
    expect([base.programs, base.seed]).toEqual([PROGRAMS, SEED]);
    const got = reach(profiles['6.12']);
    const fell = Object.entries(base.coverage.rules)
      .filter(([r, n]) => (got.get(r) ?? 0) < n / 2)
      .map(([r, n]) => `${r}: ${got.get(r) ?? 0} (was ${n})`);
    expect(fell).toEqual([]);
  }, 120_000);
});
