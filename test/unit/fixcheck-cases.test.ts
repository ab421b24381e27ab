import { describe, expect, it } from 'vitest';
import { resolveClaims } from '../../harness/commands/fixcheck.js';
import { casesForSeries } from '../../harness/fixcheck/run.js';
import { UserError } from '../../harness/util/errors.js';

describe('what a fix check runs on a kernel series', () => {
  it('the regression entries of the series and those its known-issue list links, then the seeds', async () => {
    const names72 = (await casesForSeries('7.2')).map((c) => c.name);
    // 7.2 has no entries of its own: its known list links the 6.12 ones it is known to have
    expect(names72).toEqual([
      'uacce-failed-mremap-frees-region',
      'uacce-partial-munmap-frees-region',
      'uacce-private-mapping-region-never-freed',
      'uacce-stale-node-open-use-after-free',
      'seed:basic-lifecycle',
      'seed:mprotect',
    ]);
    const c61 = await casesForSeries('6.1');
    expect(c61.filter((c) => c.source === 'regress').map((c) => c.name)).toEqual([
      'uacce-6.1-failed-mremap-double-free',
      'uacce-6.1-region-never-freed',
      'uacce-6.1-removal-keeps-mknod-mapping',
      'uacce-stale-node-open-use-after-free',
    ]);
    expect(c61.find((c) => c.name === 'uacce-6.1-region-never-freed')!.recorded).toBe('mmap: expected ok, got EEXIST [mmap.ok]');
  });

  it('--only keeps the named ones, and names the known ones when a name is wrong', async () => {
    expect((await casesForSeries('6.12', { only: ['seed:mprotect'] })).map((c) => c.name)).toEqual(['seed:mprotect']);
    await expect(casesForSeries('6.12', { only: ['nope'] })).rejects.toThrow(/--only: no program named nope for 6\.12; the names are: uacce-failed-mremap/);
  });

  it('claims are regression entries (their titles) or titles', async () => {
    expect(await resolveClaims(['uacce-stale-node-open-use-after-free', 'BUG: double free in vma_close'])).toEqual([
      { name: 'uacce-stale-node-open-use-after-free', title: 'general protection fault in __mutex_lock' },
      { name: 'BUG: double free in vma_close', title: 'BUG: double free in vma_close' },
    ]);
    await expect(resolveClaims(['uacce-no-such-entry'])).rejects.toThrow(UserError);
  });
});
