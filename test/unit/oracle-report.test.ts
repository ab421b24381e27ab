import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ConsoleOracle,
  crashFamily,
  sameCrash,
  isReportStart,
  isTainting,
  kmsgLines,
  MAX_EXCERPT,
  normalizeFunction,
  parseConsole,
  parseKmsg,
  parseReports,
  REPORT_PATTERNS,
  stripConsolePrefix,
  taintLetters,
  TaintTracker,
  type CrashReport,
} from '../../harness/oracle/report.js';

// Real serial console transcripts: see test/fixtures/console/README.md for how each was made.
const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'console');
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');
const lines = (name: string): string[] => fixture(name).split('\n');

interface Expected {
  title: string;
  kind: CrashReport['kind'];
  pattern: string;
  frame?: string;
}

/** Every 6.12 transcript and the exact reports it must give. */
const EXPECTED: Record<string, Expected[]> = {
  '6.12-warn.log': [{ title: 'WARNING in splat_warn', kind: 'warning', pattern: 'warning', frame: 'splat_warn' }],
  '6.12-bug.log': [{ title: 'kernel BUG in splat_bug', kind: 'crash', pattern: 'kernel-bug', frame: 'splat_bug' }],
  '6.12-null.log': [
    { title: 'BUG: kernel NULL pointer dereference in splat_null_deref', kind: 'crash', pattern: 'null-deref', frame: 'splat_null_deref' },
  ],
  '6.12-pagefault.log': [
    { title: 'BUG: unable to handle page fault in splat_page_fault', kind: 'crash', pattern: 'page-fault', frame: 'splat_page_fault' },
  ],
  '6.12-gpf.log': [{ title: 'general protection fault in splat_gpf', kind: 'crash', pattern: 'general-protection', frame: 'splat_gpf' }],
  '6.12-refcount.log': [
    { title: 'refcount bug in splat_refcount_underflow', kind: 'warning', pattern: 'refcount', frame: 'splat_refcount_underflow' },
  ],
  '6.12-listdel.log': [{ title: 'BUG: corrupted list in splat_list_del', kind: 'crash', pattern: 'list-corruption', frame: 'splat_list_del' }],
  '6.12-doublefree.log': [{ title: 'BUG: double free in splat_double_free', kind: 'crash', pattern: 'slub', frame: 'splat_double_free' }],
  '6.12-kfence.log': [
    { title: 'KFENCE: use-after-free read in splat_kfence_uaf', kind: 'crash', pattern: 'kfence', frame: 'splat_kfence_uaf' },
  ],
  '6.12-atomicsleep.log': [
    {
      title: 'BUG: scheduling while atomic in splat_sleep_in_atomic',
      kind: 'warning',
      pattern: 'scheduling-while-atomic',
      frame: 'splat_sleep_in_atomic',
    },
    // the task then exits with a preempt count left over: the scheduler complains again
    { title: 'BUG: scheduling while atomic in do_exit', kind: 'warning', pattern: 'scheduling-while-atomic', frame: 'do_exit' },
  ],
  '6.12-hung.log': Array.from({ length: 4 }, () => ({
    title: 'INFO: task hung in splat_hung_task',
    kind: 'hang' as const,
    pattern: 'hung-task',
    frame: 'splat_hung_task',
  })),
  '6.12-softlockup.log': [{ title: 'BUG: soft lockup in splat_soft_lockup', kind: 'hang', pattern: 'soft-lockup', frame: 'splat_soft_lockup' }],
  '6.12-rcustall.log': [{ title: 'INFO: rcu detected stall in splat_rcu_stall', kind: 'hang', pattern: 'rcu-stall', frame: 'splat_rcu_stall' }],
  '6.12-panic.log': [
    { title: 'Kernel panic - not syncing: splat: requested panic', kind: 'crash', pattern: 'panic', frame: 'splat_panic' },
  ],
  '6.12-iommu.log': [{ title: 'DMAR fault: PTE Read access is not set', kind: 'iommu-fault', pattern: 'dmar-fault' }],
  '6.12-pat.log': [{ title: 'x86/PAT: freeing invalid memtype', kind: 'warning', pattern: 'x86-pat' }],
  // arm64 (QEMU virt with an SMMUv3): other oops formats ("Unable to handle kernel …", "Internal
  // error: Oops - BUG", "pc : …", "Call trace:" without <TASK> markers)
  'arm64-6.12-warn.log': [{ title: 'WARNING in splat_warn', kind: 'warning', pattern: 'warning', frame: 'splat_warn' }],
  'arm64-6.12-bug.log': [
    { title: 'kernel BUG in splat_bug', kind: 'crash', pattern: 'kernel-bug', frame: 'splat_bug' },
    // the idle task then trips over context tracking left in a bad state by the oops
    { title: 'WARNING in ct_kernel_exit', kind: 'warning', pattern: 'warning', frame: 'ct_kernel_exit' },
  ],
  'arm64-6.12-null.log': [
    { title: 'BUG: kernel NULL pointer dereference in splat_null_deref', kind: 'crash', pattern: 'null-deref', frame: 'splat_null_deref' },
  ],
  'arm64-6.12-gpf.log': [{ title: 'BUG: unable to handle page fault in splat_gpf', kind: 'crash', pattern: 'page-fault', frame: 'splat_gpf' }],
  'arm64-6.12-refcount.log': [
    { title: 'refcount bug in splat_refcount_underflow', kind: 'warning', pattern: 'refcount', frame: 'splat_refcount_underflow' },
  ],
  'arm64-6.12-listdel.log': [
    { title: 'BUG: corrupted list in splat_list_del', kind: 'crash', pattern: 'list-corruption', frame: 'splat_list_del' },
    { title: 'WARNING in ct_kernel_exit', kind: 'warning', pattern: 'warning', frame: 'ct_kernel_exit' },
  ],
  'arm64-6.12-doublefree.log': [{ title: 'BUG: double free in splat_double_free', kind: 'crash', pattern: 'slub', frame: 'splat_double_free' }],
  // 6.1's arm64 unwinder prints dump_backtrace first: it is never the title's frame
  'arm64-6.1-kernfs-doublefree.log': [{ title: 'BUG: double free in uacce_vma_close', kind: 'crash', pattern: 'slub', frame: 'uacce_vma_close' }],
  'arm64-6.12-kfence.log': [
    { title: 'KFENCE: use-after-free read in splat_kfence_uaf', kind: 'crash', pattern: 'kfence', frame: 'splat_kfence_uaf' },
  ],
  'arm64-6.12-hung.log': Array.from({ length: 3 }, () => ({
    title: 'INFO: task hung in splat_hung_task',
    kind: 'hang' as const,
    pattern: 'hung-task',
    frame: 'splat_hung_task',
  })),
  'arm64-6.12-softlockup.log': [{ title: 'BUG: soft lockup in splat_soft_lockup', kind: 'hang', pattern: 'soft-lockup', frame: 'splat_soft_lockup' }],
  'arm64-6.12-iommu.log': Array.from({ length: 2 }, () => ({
    title: 'SMMU event 0x10 (F_TRANSLATION)',
    kind: 'iommu-fault' as const,
    pattern: 'smmu-event',
  })),
};

const summary = (r: CrashReport) => {
  const s: Expected = { title: r.title, kind: r.kind, pattern: r.pattern };
  if (r.frame !== undefined) s.frame = r.frame;
  return s;
};

describe('oracle: real 6.12 transcripts (amd64 and arm64)', () => {
  for (const [name, expected] of Object.entries(EXPECTED)) {
    it(`${name}: ${expected.map((e) => e.title).join(' + ')}`, () => {
      const reports = parseReports(fixture(name));
      expect(reports.map(summary)).toEqual(expected);
      for (const r of reports) {
        expect(r.corrupted, `${r.title}: ${r.corruptedReason}`).toBe(false);
        expect(r.start).toBeLessThanOrEqual(r.end);
      }
    });
  }

  it('titles carry no addresses, pids, timestamps or register values', () => {
    for (const name of Object.keys(EXPECTED)) {
      for (const r of parseReports(fixture(name))) {
        expect(r.title).not.toMatch(/0x[0-9a-f]{3,}|\b[0-9a-f]{8,}\b|\[\s*\d+\.\d+\]|\bpid\b|:\d{2,}\b|CPU#?\d|\/tmp\//i);
        expect(r.title).not.toContain('\n');
      }
    }
  });

  it('the report spans the splat: from its first line to the end marker or the end of the dump', () => {
    const text = lines('6.12-warn.log');
    const [r] = parseReports(text);
    expect(text[r!.start]).toMatch(/WARNING: CPU: 0 PID: \d+ at .*splat\.c:\d+ splat_warn/);
    expect(text[r!.end]).toMatch(/---\[ end trace [0-9a-f]+ \]---/);
    expect(text[r!.end + 1]).toMatch(/splat: warn returned/);
    // the excerpt is those lines without the console's timestamps
    expect(r!.excerpt.split('\n')).toHaveLength(r!.end - r!.start + 1);
    expect(r!.excerpt).not.toMatch(/^\[\s*\d+\.\d+\]/m);
    expect(r!.excerpt.split('\n')[0]).toMatch(/^WARNING: CPU/);
  });

  it('an oops keeps the register summary printed after its end marker', () => {
    const text = lines('6.12-bug.log');
    const [r] = parseReports(text);
    expect(text[r!.end]).toMatch(/PKRU: /);
    expect(text[r!.end + 1]).toBe('Segmentation fault');
  });

  it('KFENCE and slub reports are cut at their own end lines, opening separator included', () => {
    const k = lines('6.12-kfence.log');
    const [kr] = parseReports(k);
    expect(k[kr!.start]).toMatch(/={60,}$/);
    expect(k[kr!.start + 1]).toMatch(/BUG: KFENCE: use-after-free read/);
    expect(k[kr!.end]).toMatch(/={60,}$/);
    const d = lines('6.12-doublefree.log');
    const [dr] = parseReports(d);
    expect(d[dr!.start]).toMatch(/={60,}$/);
    expect(d[dr!.end]).toMatch(/FIX kmalloc-64: Object at 0x[0-9a-f]+ not freed/);
  });

  it('the hung task is reported each time khungtaskd prints it, with one stable title', () => {
    const reports = parseReports(fixture('6.12-hung.log'));
    expect(new Set(reports.map((r) => r.title)).size).toBe(1);
    const ranges = reports.map((r) => [r.start, r.end]);
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]![0]).toBeGreaterThan(ranges[i - 1]![1]!);
  });

  it('the RCU stall takes its frame from the stalled task, not from the grace-period kthread', () => {
    const [r] = parseReports(fixture('6.12-rcustall.log'));
    expect(r!.excerpt).toContain('rcu_gp_kthread');
    expect(r!.frame).toBe('splat_rcu_stall');
    expect(r!.frameModule).toBe('splat');
  });

  it('the DMAR fault report carries the faulting device, address and reason as details', () => {
    const [r] = parseReports(fixture('6.12-iommu.log'));
    expect(r!.details).toEqual({
      type: 'DMA Read',
      device: '00:01.0',
      pasid: '0x0',
      addr: '0x100000',
      code: '0x06',
      reason: 'PTE Read access is not set',
    });
    expect(r!.needsReboot).toBe(false);
  });

  it('an SMMU event report keeps its raw event lines, and the device and event as details', () => {
    const text = lines('arm64-6.12-iommu.log');
    const [r] = parseReports(text);
    expect(r!.end - r!.start).toBe(4);
    expect(text.slice(r!.start + 1, r!.end + 1).every((l) => /arm-smmu-v3 9050000\.smmuv3: \t0x[0-9a-f]{16}$/.test(l))).toBe(true);
    expect(r!.details).toEqual({ device: '9050000.smmuv3', event: '0x10' });
  });

  it('the same splat on amd64 and arm64 has the same title', () => {
    for (const s of ['warn', 'refcount', 'listdel', 'doublefree', 'kfence', 'softlockup', 'null']) {
      const amd = parseReports(fixture(`6.12-${s}.log`))[0]!;
      const arm = parseReports(fixture(`arm64-6.12-${s}.log`))[0]!;
      expect(arm.title, s).toBe(amd.title);
    }
  });

  it('the same splat recorded in two boots, through the console and through /dev/kmsg, has the same title', () => {
    const viaConsole = parseReports(fixture('6.12-refcount.log'));
    const viaKmsg = parseReports(kmsgLines(parseKmsg(fixture('kmsg-6.12-refcount.txt'))));
    expect(viaKmsg.map(summary)).toEqual(viaConsole.map(summary));
  });
});

describe('oracle: noise gives no report', () => {
  for (const name of ['boot-6.1.log', 'boot-6.12.log', 'boot-7.2.log', 'boot-arm64-6.12.log']) {
    it(`${name}: a whole boot (QEMU q35 with VT-d, or virt with SMMUv3; TCG) has no report and no tainting line`, () => {
      const text = lines(name);
      expect(text.length).toBeGreaterThan(250);
      const result = parseConsole(text);
      expect(result.reports).toEqual([]);
      expect(result.suppressed).toEqual([]);
      expect(text.filter((l) => isTainting(l))).toEqual([]);
      expect(text.filter((l) => isReportStart(l))).toEqual([]);
    });
  }

  it('the module taint lines are there and are suppressed, not ignored by accident', () => {
    const text = lines('boot-6.12.log');
    const taintLines = text.filter((l) => /taints kernel|tainting kernel/.test(l));
    expect(taintLines).toHaveLength(2);
    // without the default suppressions they count as new taints
    for (const l of taintLines) expect(isTainting(l, 'OE', [])).toBe(true);
    // 6.1's AMD IOMMUv2 boot line is in the 6.1 log and is suppressed
    expect(lines('boot-6.1.log').some((l) => /This is not a bug\.$/.test(l))).toBe(true);
  });

  it('the /dev/kmsg records of a whole boot give only the one splat of that boot', () => {
    const records = parseKmsg(fixture('kmsg-6.12-refcount.txt'));
    expect(records.length).toBeGreaterThan(400);
    expect(records[0]).toMatchObject({ seq: 0, facility: 0, level: 5, usec: 0 });
    expect(records[0]!.text).toMatch(/^Linux version 6\.12\.117\+deb12-amd64/);
    const reports = parseReports(kmsgLines(records));
    expect(reports).toHaveLength(1);
    const r = reports[0]!;
    expect(r.startSeq).toBe(380);
    expect(records.find((x) => x.seq === r.startSeq)!.text).toBe('refcount_t: underflow; use-after-free.');
    expect(records.find((x) => x.seq === r.endSeq)!.text).toMatch(/---\[ end trace/);
    // \x09 escapes are decoded and dictionary lines attach to their record
    expect(records.some((x) => x.text.startsWith('\tTrampoline variant of Tasks RCU enabled.'))).toBe(true);
    expect(records.some((x) => x.dict.SUBSYSTEM === 'acpi')).toBe(true);
  });
});

describe('oracle: truncated and mixed logs', () => {
  it('a report cut before its end marker is corrupted but keeps its title', () => {
    const text = lines('6.12-warn.log');
    const end = text.findIndex((l) => /Call Trace:/.test(l));
    const [r] = parseReports(text.slice(0, end + 3));
    expect(r!.title).toBe('WARNING in splat_warn');
    expect(r!.corrupted).toBe(true);
    expect(r!.corruptedReason).toMatch(/truncated/);
  });

  it('a report without any usable frame gets a placeholder and is corrupted', () => {
    const text = lines('6.12-refcount.log');
    const head = text.findIndex((l) => /refcount_t: underflow/.test(l));
    const [r] = parseReports(text.slice(head, head + 2));
    expect(r!.title).toBe('refcount bug in ?');
    expect(r!.corrupted).toBe(true);
  });

  it('reports in one long log come out in order with their own line numbers', () => {
    const boot = lines('boot-6.12.log');
    const warn = lines('6.12-warn.log');
    const dmar = lines('6.12-iommu.log');
    const kfence = lines('6.12-kfence.log');
    const all = [...boot, ...warn, ...dmar, ...kfence];
    const reports = parseReports(all);
    expect(reports.map((r) => r.title)).toEqual([
      'WARNING in splat_warn',
      'DMAR fault: PTE Read access is not set',
      'KFENCE: use-after-free read in splat_kfence_uaf',
    ]);
    expect(all[reports[0]!.start]).toMatch(/WARNING: CPU/);
    expect(reports[1]!.start).toBe(boot.length + warn.length + dmar.findIndex((l) => /DMAR: \[DMA Read/.test(l)));
  });

  it('a one-line report inside another report does not end it', () => {
    const warn = lines('6.12-warn.log');
    const dmarLine = lines('6.12-iommu.log').find((l) => /DMAR: \[DMA Read/.test(l))!;
    const at = warn.findIndex((l) => /Call Trace:/.test(l));
    const mixed = [...warn.slice(0, at), dmarLine, ...warn.slice(at)];
    const reports = parseReports(mixed);
    expect(reports.map((r) => [r.title, r.corrupted])).toEqual([
      ['WARNING in splat_warn', false],
      ['DMAR fault: PTE Read access is not set', false],
    ]);
  });

  it('a new report before the end marker of the previous one closes it as truncated', () => {
    const warn = lines('6.12-warn.log');
    const gpf = lines('6.12-gpf.log');
    const at = warn.findIndex((l) => /Call Trace:/.test(l));
    const reports = parseReports([...warn.slice(0, at + 4), ...gpf]);
    expect(reports.map((r) => [r.title, r.corrupted])).toEqual([
      ['WARNING in splat_warn', true],
      ['general protection fault in splat_gpf', false],
    ]);
  });

  it('a panic caused by the report before it belongs to that report', () => {
    // The kernel prints this after an oops that killed init (kernel/exit.c do_exit); here it
    // is appended to the real BUG transcript.
    const text = lines('6.12-bug.log');
    const last = text.findIndex((l) => l === 'Segmentation fault');
    const withPanic = [...text.slice(0, last), '[    2.431687] Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b'];
    const reports = parseReports(withPanic);
    expect(reports.map((r) => r.title)).toEqual(['kernel BUG in splat_bug']);
    expect(reports[0]!.end).toBe(withPanic.length - 1);
  });
});

describe('oracle: lines built from the kernel and test-device format strings', () => {
  // No real transcript exists for these in this repository; each line is the printk format
  // string named in the comment, filled in by hand.

  it('svadiff_test faults are device reports with the fields the model needs', () => {
    // guest/module/svt_platform.c: pr_warn("fault: queue %u pasid %u addr 0x%llx (%s)\n"), pr_fmt "svadiff_test: "
    const [a] = parseReports(['[   10.000000] svadiff_test: fault: queue 3 pasid 0 addr 0x7f0012345000 (address not accessible)']);
    expect(a).toMatchObject({
      title: 'svadiff_test fault: address not accessible',
      kind: 'device',
      needsReboot: false,
      details: { queue: '3', pasid: '0', addr: '0x7f0012345000', reason: 'address not accessible' },
    });
    // … and the variant with an error code: "(%s, error %d)"
    const [b] = parseReports(['svadiff_test: fault: queue 1 pasid 0 addr 0x1000 (address space gone, error -14)']);
    expect(b).toMatchObject({ title: 'svadiff_test fault: address space gone', details: { error: '-14' } });
    // the addresses differ, the titles do not
    const [c] = parseReports(['svadiff_test: fault: queue 9 pasid 0 addr 0x2000 (address not accessible)']);
    expect(c!.title).toBe(a!.title);
  });

  it('svadiff_test queue lifecycle complaints are device reports', () => {
    // guest/module/svt_main.c: pr_warn("queue %u: still live after uacce_remove of svt%d\n")
    const [r] = parseReports(['svadiff_test: queue 4: still live after uacce_remove of svt0']);
    expect(r).toMatchObject({ title: 'svadiff_test: queue still live after uacce_remove', kind: 'device' });
  });

  it('DMAR faults without a PASID and older formats give the same kind of title', () => {
    // drivers/iommu/intel/dmar.c dmar_fault_do_one (6.1-6.12): "[%s NO_PASID] Request device [%02x:%02x.%d] fault addr 0x%llx [fault reason 0x%02x] %s"
    const [a] = parseReports(['DMAR: [DMA Write NO_PASID] Request device [00:03.0] fault addr 0xfffff000 [fault reason 0x05] PTE Write access is not set']);
    expect(a).toMatchObject({ title: 'DMAR fault: PTE Write access is not set', kind: 'iommu-fault', details: { type: 'DMA Write', device: '00:03.0' } });
    // 7.2 names the segment: "Request device [%04x:%02x:%02x.%d]" (the format string in Debian 7.2.13's image)
    const [b] = parseReports(['DMAR: [DMA Read NO_PASID] Request device [0000:02:00.0] fault addr 0x103000 [fault reason 0x06] PTE Read access is not set']);
    expect(b).toMatchObject({ title: 'DMAR fault: PTE Read access is not set', kind: 'iommu-fault', details: { type: 'DMA Read', device: '0000:02:00.0', addr: '0x103000' } });
  });

  it('every pattern in the table has a distinct name', () => {
    const names = REPORT_PATTERNS.map((p) => p.name);
    expect(new Set(names).size).toBe(names.length);
  });
});

describe('oracle: suppressions', () => {
  it('a per-run title suppression drops the report and says why', () => {
    const oracle = new ConsoleOracle();
    expect(oracle.parse(fixture('6.12-rcustall.log')).reports).toHaveLength(1);
    oracle.addSuppression({ on: 'title', match: /^INFO: rcu detected stall in /, reason: 'TCG host overloaded' });
    const r = oracle.parse(fixture('6.12-rcustall.log'));
    expect(r.reports).toEqual([]);
    expect(r.suppressed.map((s) => [s.report.title, s.reason])).toEqual([['INFO: rcu detected stall in splat_rcu_stall', 'TCG host overloaded']]);
  });

  it('a line suppression keeps a line from starting a report', () => {
    const oracle = new ConsoleOracle([{ on: 'line', match: /^x86\/PAT: .* freeing invalid memtype/, reason: 'test' }]);
    expect(oracle.parse(fixture('6.12-pat.log')).reports).toEqual([]);
    expect(parseReports(fixture('6.12-pat.log'))).toHaveLength(1);
  });
});

describe('oracle: taint', () => {
  it('taint letters from the CPU line, the 6.12 taint legend and slub headers', () => {
    expect(taintLetters('[ 2.4] CPU: 0 UID: 0 PID: 131 Comm: sh Tainted: G        W  OE      6.12.117+deb12-amd64 #1')).toEqual(['W', 'O', 'E']);
    expect(taintLetters('Tainted: [B]=BAD_PAGE, [O]=OOT_MODULE, [E]=UNSIGNED_MODULE')).toEqual(['B', 'O', 'E']);
    expect(taintLetters('BUG kmalloc-64 (Tainted: G           OE     ): Object already free')).toEqual(['O', 'E']);
    expect(taintLetters('CPU: 0 PID: 1 Comm: init Not tainted 6.1.0-56-amd64 #1')).toEqual([]);
    expect(taintLetters('splat: triggering warn')).toBeUndefined();
  });

  it('follows the new taints of a real log: B from the slub report, nothing for O and E', () => {
    const tracker = new TaintTracker();
    const fresh = lines('6.12-doublefree.log').flatMap((l) => tracker.observe(l));
    expect(fresh).toEqual(['B']);
    const boot = new TaintTracker();
    expect(lines('boot-6.12.log').flatMap((l) => boot.observe(l))).toEqual([]);
  });

  it('every splat transcript has a tainting line; IOMMU faults and PAT complaints do not', () => {
    for (const name of Object.keys(EXPECTED)) {
      const tainting = lines(name).some((l) => isTainting(l));
      expect(tainting, name).toBe(!/iommu|pat/.test(name));
    }
  });
});

describe('oracle: untrusted input', () => {
  it('console prefixes, caller ids and control characters are removed', () => {
    expect(stripConsolePrefix('[    2.452205]  <TASK>')).toBe(' <TASK>');
    expect(stripConsolePrefix('[   12.000001][  T123] WARNING: x')).toBe('WARNING: x');
    expect(stripConsolePrefix('\x1b[0mdone[    3.449210] ACPI: PM: x\r')).toBe('ACPI: PM: x');
  });

  it('function clone suffixes are removed from frames', () => {
    expect(normalizeFunction('count_memcg_events.constprop.0')).toBe('count_memcg_events');
    expect(normalizeFunction('foo.isra.0.cold')).toBe('foo');
    expect(normalizeFunction('bar')).toBe('bar');
  });

  it('huge lines and excerpts are bounded', () => {
    const long = 'x'.repeat(5_000_000);
    const warn = lines('6.12-warn.log');
    const at = warn.findIndex((l) => /Call Trace:/.test(l));
    const many = Array.from({ length: 200 }, () => long.slice(0, 1000));
    const [r] = parseReports([...warn.slice(0, at), long, ...many, ...warn.slice(at)]);
    expect(r!.excerpt.length).toBeLessThanOrEqual(MAX_EXCERPT + 100);
    expect(r!.title).toBe('WARNING in splat_warn');
  });

  it('never throws and keeps its invariants on arbitrary input', () => {
    const pieces = [...lines('6.12-warn.log'), ...lines('6.12-hung.log').slice(0, 40), ...lines('6.12-kfence.log')];
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string(), fc.constantFrom(...pieces)), { maxLength: 120 }), (input) => {
        const { reports } = parseConsole(input);
        for (const r of reports) {
          expect(r.start).toBeGreaterThanOrEqual(0);
          expect(r.end).toBeLessThan(input.length);
          expect(r.start).toBeLessThanOrEqual(r.end);
          expect(r.title.length).toBeGreaterThan(0);
          expect(r.title).not.toMatch(/[\n\x00-\x1f]/);
        }
      }),
      { numRuns: 300, seed: 7 },
    );
  });
});

describe('titles from a real fuzzing run (6.1 double free in uacce_vma_close)', () => {
  it('gives the double free and the slab count report stable titles, without counts', () => {
    const text = readFileSync('test/fixtures/console/fuzz-6.1-double-free.log', 'utf8');
    const titles = parseReports(text).map((r) => r.title);
    expect(titles.slice(0, 2)).toEqual(['BUG: double free in vma_close', 'BUG: slab wrong object count in kobject_put']);
  });
});

describe('crash families', () => {
  it('slab corruption titles of one bug are one family; other titles are their own', () => {
    const text = readFileSync('test/fixtures/console/fuzz-6.1-double-free.log', 'utf8');
    const [doubleFree, wrongCount] = parseReports(text).map((r) => r.title);
    expect(sameCrash(doubleFree!, wrongCount!)).toBe(true);
    expect(crashFamily(doubleFree!)).toBe('slab corruption (slub debug)');
    expect(sameCrash('WARNING in uacce_remove', 'WARNING in uacce_put_queue')).toBe(false);
    expect(sameCrash(doubleFree!, 'general protection fault in __mutex_lock')).toBe(false);
    expect(crashFamily('general protection fault in __mutex_lock')).toBe('general protection fault in __mutex_lock');
  });
});
