/**
 * The kernel log of a guest's boot belongs to no program (harness/vm/guest.ts keeps it apart;
 * harness/commands/common.ts warns about reports in it): its reports are found, a clean boot
 * has none. Fixtures: test/fixtures/console/README.md.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bootReportTitles } from '../../harness/commands/common.js';
import type { KmsgRecord } from '../../harness/oracle/report.js';

const FIX = join(import.meta.dirname, '..', 'fixtures', 'console');
const records = (file: string): KmsgRecord[] =>
  readFileSync(join(FIX, file), 'utf8')
    .split('\n')
    .map((text, i) => ({ seq: i, level: 6, usec: i, text: text.replace(/^\[\s*\d+\.\d+\] /, '') }));

describe('reports of a boot', () => {
  it('a starved boot: the RCU stall in an initcall is found', () => {
    expect(bootReportTitles(records('kmsg-6.1-boot-rcustall.txt'))).toEqual(['INFO: rcu detected stall in hpet_insert_resource']);
  });
  it('a clean boot with the modules loaded has none', () => {
    expect(bootReportTitles(records('boot-6.12.log'))).toEqual([]);
  });
});
