/**
 * report.txt: line width, shell commands that still paste after wrapping, the program in
 * words, the semantics sheet sections, and the facts the report must state.
 */
import { execa } from 'execa';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateProgram } from '../../harness/generator/index.js';
import { profileFor } from '../../harness/model/index.js';
import { parseProgram } from '../../harness/program/parse.js';
import { OP_KINDS } from '../../harness/program/types.js';
import {
  citedSections,
  cutShellWord,
  describeStep,
  hardWrap,
  reliabilityText,
  renderReport,
  reportPathNames,
  sheetSection,
  splitDisplayedCommand,
  subjectLine,
  testModuleParams,
  wrapCommand,
  wrapText,
  REPORT_WIDTH,
  type ReportInput,
} from '../../harness/repro/report.js';
import { describeRule } from '../../harness/model/rules.js';
import { hostMachine, machineFor } from '../../harness/vm/machine.js';
import { QemuVm } from '../../harness/vm/qemu.js';
import { cacheDir, projectRoot } from '../../harness/util/paths.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SHEET = readFileSync(join(ROOT, 'docs', 'uacce-semantics.md'), 'utf8');

/** What sh makes of the lines: one argument per output line. */
async function shellWords(lines: string[]): Promise<string[]> {
  const r = await execa('sh', ['-c', `printf '%s\\n' ${lines.join('\n')}`]);
  return r.stdout.split('\n');
}

/** A QEMU command line exactly as svadiff builds it, with long cache paths. */
function realisticQemu(): QemuVm {
  const cache = '/home/someone-with-a-long-name/.cache/svadiff/kernels/debian-6.12.117+deb12-amd64-0123456789abcdef';
  return new QemuVm({
    machine: hostMachine(machineFor('x86_64')),
    accel: 'tcg',
    kernelImage: `${cache}/boot/vmlinuz-6.12.117+deb12-amd64`,
    initrd: `${cache}/../../initramfs/0f3c9a1b2d4e5f60718293a4b5c6d7e8f90123456789abcdef0123456789abcd.cpio`,
    cmdline: ['panic=-1', 'printk.time=1', 'slub_debug=FZPU', 'kfence.sample_interval=10', 'sysctl.kernel.hung_task_timeout_secs=15'],
    memoryMb: 1024,
    workDir: '/tmp/svadiff-vm-AbCdEf',
  });
}

/** What svadiff repro gives the report (commands/repro.ts). */
function reportQemu(vm: QemuVm): ReportInput['qemu'] {
  const c = vm.command();
  return { commandLine: c.portable, kernelFile: c.kernelFile, initrdFile: c.initrdFile };
}

const MIN = parseProgram(
  JSON.stringify({
    format: 'svadiff-program',
    version: 1,
    ops: [
      { op: 'open', task: 't0', fd: 'q0', dev: 0, via: 'path' },
      { op: 'mmap', task: 't0', map: 'm3', fd: 'q0', region: 1, pages: 1, prot: 'rw', shared: false },
      { op: 'munmap', task: 't0', map: 'm3', page: 0, pages: 1 },
      { op: 'mmap', task: 't0', map: 'm4', fd: 'q0', region: 1, pages: 1, prot: 'rw', shared: true },
    ],
  }),
  'min',
);

function input(extra: Partial<ReportInput> = {}): ReportInput {
  return {
    kind: 'divergence',
    title: 'mmap: expected ok, got EEXIST [mmap.ok]',
    findingId: 'mmap-expected-ok-got-eexist-mmap-ok-639b14cf05',
    kernel: {
      exactSpec: 'debian:6.12.117',
      version: '6.12.117',
      release: '6.12.117+deb12-amd64',
      debianVersion: '6.12.117-1~deb12u1',
      arch: 'x86_64',
      configHash: 'c0ffee00112233445566778899aabbccddeeff00112233445566778899aabbcc',
      compiler: 'x86_64-linux-gnu-gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40',
    },
    qemu: reportQemu(realisticQemu()),
    program: MIN,
    expected: ['ok', 'ok', 'ok', 'ok'],
    divergence: { index: 3, expected: 'ok', observed: 'EEXIST', rules: ['mmap.ok'], stateBefore: 'devices: svt0-0 1/4 queues\nq1 svt0 INIT refs 1 regions [-,-] opener t0' },
    bootModules: ['uacce.ko'],
    reliability: { hits: 5, runs: 5, what: 'repro.c on a fresh guest' },
    minimization: { opsBefore: 13, opsAfter: 4, runs: 32, timeMs: 7187 },
    howToRun: { build: ['gcc -static -O2 -o repro repro.c'], run: ['./repro'] },
    semantics: SHEET,
    origin: 'generated: seed 7, program 216',
    ...extra,
  };
}

describe('wrapping', () => {
  it('wrapText keeps words and width', () => {
    fc.assert(
      fc.property(fc.array(fc.stringMatching(/^[a-z]{1,100}$/), { maxLength: 40 }), fc.nat({ max: 10 }), (words, ind) => {
        const indent = ' '.repeat(ind);
        const lines = wrapText(words.join(' '), REPORT_WIDTH, indent);
        for (const l of lines) expect(l.length).toBeLessThanOrEqual(REPORT_WIDTH);
        // words that fit come back whole; long ones are cut but nothing is lost
        expect(lines.join('').replace(/\s+/g, '')).toBe(words.join(''));
      }),
    );
  });

  it('hardWrap cuts long log lines within the width', () => {
    const l = 'svadiff_test: fault: queue 3 pasid 0 addr 0x200001000000 (address not accessible, error -14) ' + 'x'.repeat(200);
    const out = hardWrap(l, REPORT_WIDTH, '  ');
    for (const x of out) expect(x.length).toBeLessThanOrEqual(REPORT_WIDTH);
    expect(out.join('').replace(/\s+/g, '')).toBe(l.replace(/\s+/g, ''));
  });

  it('a wrapped QEMU command line fits in 80 columns and gives sh the same arguments', async () => {
    const vm = realisticQemu();
    const lines = wrapCommand(splitDisplayedCommand(vm.commandLine()));
    for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(REPORT_WIDTH);
    expect(lines.length).toBeGreaterThan(3);
    expect(await shellWords(lines)).toEqual([vm.binary, ...vm.args]);
  });

  it('long words are cut where the shell joins them again, inside quotes too', async () => {
    const words = ['cmd', 'x'.repeat(230), `'${'a b '.repeat(60)}'`, `'it'\\''s'`, 'tail'];
    const lines = wrapCommand(words, 40);
    for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(40);
    expect(await shellWords(lines)).toEqual(['cmd', 'x'.repeat(230), 'a b '.repeat(60), "it's", 'tail']);
    // an escape is never split
    for (const p of cutShellWord(`ab\\'cd`, 4, 4)) expect(p.endsWith('\\\\') && !p.endsWith('\\\\\\')).toBe(false);
  });
});

describe('the program in words', () => {
  it('describes every op kind on one line', () => {
    const seen = new Set<string>();
    // 7.2: its SVA binds succeed, so the SVA ops (pasid) are generated too
    const profile = profileFor('7.2.13+deb14-amd64', { arch: 'x86_64', distro: 'debian' });
    for (let i = 0; i < 300 && seen.size < OP_KINDS.length; i++) {
      // the vfio family's programs are their own stream (generator/vfio.ts)
      // and the iommufd ops only on a kernel with iommufd
      const iommufd = { ...profile, vfioPaths: { group: false, iommufd: true } };
      for (const op of [...generateProgram(11, i, { profile }).ops, ...generateProgram(11, i, { family: 'vfio' }).ops, ...generateProgram(11, i, { family: 'vfio', profile: iommufd }).ops]) {
        const s = describeStep(op);
        expect(s).toMatch(new RegExp(`^${op.task}: \\S`));
        expect(s).not.toMatch(/\n|undefined|\[object/);
        seen.add(op.op);
      }
    }
    expect([...seen].sort()).toEqual([...OP_KINDS].sort());
    expect(describeStep(MIN.ops[1]!)).toBe('t0: mmap region 1 (DUS) of q0, 1 page, PROT_READ|PROT_WRITE, MAP_PRIVATE -> m3');
  });

  it('gives the test module parameters as the agent passes them', () => {
    expect(testModuleParams(MIN.device)).toBe(
      'devices=1 mmio_pages=2 dus_pages=2 queue_limit=4 sva=0 isolate_ops=0 isolate_state=0 ioctl=0 api=svadiff-test-v1 algs=copy,fill',
    );
  });
});

describe('semantics sheet', () => {
  it('finds the sections rules cite, and bullets named like sections', () => {
    expect(citedSections(describeRule('mmap.exists'))).toEqual(['mmap']);
    expect(sheetSection(SHEET, 'mmap')?.heading).toMatch(/^mmap \(region/);
    expect(sheetSection(SHEET, 'mmap')?.body.join('\n')).toContain('stays *mapped*');
    const mr = sheetSection(SHEET, 'mremap');
    expect(mr?.body[0]).toMatch(/^- mremap:/);
    expect(sheetSection(SHEET, 'Device removal')?.body.join(' ')).toContain('SIGBUS');
    expect(sheetSection(SHEET, 'no such thing')).toBeUndefined();
  });
});

describe('renderReport', () => {
  it('states subject, kernel, machine, modules, steps, expectation, rule, log, reliability and how to run, within 80 columns', () => {
    const text = renderReport(input());
    const lines = text.split('\n');
    for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(REPORT_WIDTH);
    expect(lines[0]).toBe('[BUG] uacce: mmap: expected ok, got EEXIST [mmap.ok]');
    expect(text).toContain('6.12.117+deb12-amd64 (debian:6.12.117, Debian 6.12.117-1~deb12u1)');
    expect(text).toContain('config sha256 c0ffee0011223344');
    expect(text).toContain('qemu-system-x86_64');
    expect(text).toContain('insmod /lib/modules/svadiff/uacce.ko');
    expect(text).toMatch(/insmod \/lib\/modules\/svadiff\/svadiff_test\.ko devices=1 mmio_pages=2/);
    expect(text).toContain('  2. t0: mmap region 1 (DUS) of q0, 1 page, PROT_READ|PROT_WRITE,');
    expect(text).toMatch(/4\. t0: mmap region 1 \(DUS\) of q0, .*MAP_SHARED ->\s+m4\n +expected: ok, observed: EEXIST +<-- the kernel diverges here/);
    expect(text).toContain('expected: ok');
    expect(text).toContain('observed: EEXIST');
    expect(text).toContain('Rule mmap.ok: uacce_fops_mmap()');
    expect(text).toContain('From the uacce semantics sheet (docs/uacce-semantics.md), "mmap (region');
    expect(text).toMatch(/A region stays mapped from a successful mmap until every page of\s+that\s+mapping is gone/);
    expect(text).toContain('No kernel report');
    expect(text).toContain('Reliability: reproduced 5/5 (repro.c on a fresh guest).');
    expect(text).toContain('Minimized from 13 to 4 operations in 7 s (32 runs on the guest).');
    expect(text).toContain('gcc -static -O2 -o repro repro.c');
    expect(text).toContain('./repro');
    expect(text).not.toContain('shows in dmesg');
  });

  it('carries no path of the machine it was made on: QEMU with bzImage and initramfs.cpio, and how to get them', () => {
    // a guest as Guest.boot starts one: files in this machine's cache, sockets in a temporary directory
    const workDir = mkdtempSync(join(tmpdir(), 'svadiff-vm-'));
    try {
      const kdir = join(cacheDir(), 'kernels', 'debian-6.12.117-x86_64');
      const modules = join(kdir, 'modules-0123456789ab');
      const vm = new QemuVm({
        machine: hostMachine(machineFor('x86_64')),
        accel: 'tcg',
        kernelImage: join(kdir, 'kernel', 'boot', 'vmlinuz-6.12.117+deb12-amd64'),
        initrd: join(cacheDir(), 'initramfs', `${'0f3c'.repeat(16)}.cpio`),
        cmdline: ['panic=-1', 'printk.time=1', 'slub_debug=FZPU'],
        memoryMb: 1024,
        workDir,
      });
      // a WARN in uacce.c names the file as compiled: in the module build directory in the cache
      const warn = readFileSync(join(ROOT, 'test', 'fixtures', 'console', '6.12-warn.log'), 'utf8').replace(/\/tmp\/splat-record\.\w+\/mod\/splat\.c/g, join(modules, 'uacce', 'uacce.c'));
      expect(warn).toContain(`at ${cacheDir()}/`);
      const pathNames = reportPathNames({ uacceKo: join(modules, 'uacce', 'uacce.ko'), testModuleKo: join(modules, 'svadiff', 'module', 'svadiff_test.ko'), cache: cacheDir(), home: homedir() });
      const text = renderReport(input({ qemu: reportQemu(vm), kernelReport: warn, pathNames }));
      for (const path of [homedir(), cacheDir(), projectRoot(), workDir, `${tmpdir()}/svadiff`]) expect(text, path).not.toContain(path);
      expect(text.replace(/\s+/g, ' ')).toContain('WARNING: CPU: 0 PID: 133 at drivers/misc/uacce/uacce.c:45 splat_warn');
      expect(text).toContain('-kernel bzImage -initrd initramfs.cpio');
      expect(text).toMatch(/socket,id=agent,path=agent\.sock,server=on,wait=off/);
      expect(text).toContain('unix:qmp.sock,server=on,wait=off');
      expect(text.replace(/\s+/g, ' ')).toContain(
        "bzImage is the kernel image of Debian's 6.12.117+deb12-amd64: svadiff kernels fetch debian:6.12.117 downloads it and builds uacce.ko and svadiff_test.ko for it.",
      );
      expect(text.replace(/\s+/g, ' ')).toContain('svadiff boot debian:6.12.117 --json builds it and prints the QEMU command with the paths of both files.');
      // the same command, exactly as it ran, is what repro.json keeps
      const c = vm.command();
      expect(c.argv).toEqual([vm.binary, ...vm.args]);
      expect(c.argv).toContain(c.kernelImage);
      expect(c.argv).toContain(c.initrd);
      expect(c.argv.join(' ')).toContain(join(workDir, 'agent.sock'));
      // and the portable one is the same but for those files
      const portable = splitDisplayedCommand(c.portable).map((w) => w.replace(/^'|'$/g, ''));
      expect(portable.length).toBe(c.argv.length);
      const differ = c.argv.map((w, i) => [w, portable[i]]).filter(([a, b]) => a !== b);
      expect(differ.map(([, b]) => b)).toEqual(['socket,id=agent,path=agent.sock,server=on,wait=off', 'unix:qmp.sock,server=on,wait=off', 'bzImage', 'initramfs.cpio']);
    } finally {
      rmSync(workDir, { recursive: true, force: true });
    }
  });

  it('names module sources by their place in the kernel or svadiff tree, other cache and home paths by name', () => {
    const names = reportPathNames({ uacceKo: '/home/u/.cache/svadiff/k/m/uacce/uacce.ko', testModuleKo: '/home/u/.cache/svadiff/k/m/svadiff/module/svadiff_test.ko', cache: '/home/u/.cache/svadiff', home: '/home/u' });
    const text = renderReport(
      input({
        kernelReport: [
          'WARNING: CPU: 0 PID: 7 at /home/u/.cache/svadiff/k/m/uacce/uacce.c:214 uacce_vma_close+0x5/0x9 [uacce]',
          'kernel BUG at /home/u/.cache/svadiff/k/m/uacce/include/linux/uacce.h:12!',
          'WARNING: CPU: 0 PID: 7 at /home/u/.cache/svadiff/k/m/svadiff/module/svadiff_test.c:99 svt_remove+0x1/0x2 [svadiff_test]',
          'x /home/u/.cache/svadiff/other y /home/u/z',
        ].join('\n'),
        pathNames: names,
      }),
    );
    const flat = text.replace(/\s+/g, ' ');
    expect(flat).toContain('at drivers/misc/uacce/uacce.c:214 uacce_vma_close');
    expect(flat).toContain('kernel BUG at include/linux/uacce.h:12!');
    expect(flat).toContain('at guest/module/svadiff_test.c:99 svt_remove');
    expect(flat).toContain('x $SVADIFF_CACHE/other y ~/z');
    expect(text).not.toContain('/home/u');
  });

  it('calls a partly reproducing finding flaky and keeps kernel reports within the width', () => {
    const excerpt = readFileSync(join(ROOT, 'test', 'fixtures', 'console', '6.12-warn.log'), 'utf8');
    const text = renderReport(
      input({ kind: 'crash', title: 'WARNING in splat_warn', divergence: undefined, kernelReport: excerpt, reliability: { hits: 2, runs: 5, what: 'repro.c' } }),
    );
    for (const l of text.split('\n')) expect(l.length, l).toBeLessThanOrEqual(REPORT_WIDTH);
    expect(text).toContain('Reliability: flaky (2/5)');
    expect(text).toContain('expected: no kernel report; observed: the report below.');
    expect(text).toMatch(/WARNING: CPU: \d+ PID: \d+/);
    expect(text.replace(/\s+/g, ' ')).toContain('The crash itself shows in dmesg (the kernel log above), during the run or at rmmod, whatever the exit status.');
  });

  it('lists the other titles of the bug and why, within the width', () => {
    const why = [
      'same-run: "BUG: double free in vma_close" + "BUG: slab wrong object count in kobject_put": reported one after another while one program ran (generated: seed 101, program 201 on 6.1.0-57-amd64)',
      'slab-object: "BUG: double free in vma_close" + "BUG: slab slab has N allocated objects but N are to be freed in vma_close": slub found a bad kmalloc-8 object freed in vma_close, where a uacce object is freed',
    ];
    const titles = ['BUG: double free in vma_close', 'BUG: slab wrong object count in kobject_put', 'BUG: slab slab has N allocated objects but N are to be freed in vma_close'];
    const text = renderReport(input({ kind: 'crash', title: titles[0]!, divergence: undefined, bug: { titles, why } }));
    for (const l of text.split('\n')) expect(l.length, l).toBeLessThanOrEqual(REPORT_WIDTH);
    const flat = text.replace(/\s+/g, ' ');
    expect(text).toContain('The same bug under other titles');
    for (const t of titles) expect(flat).toContain(`- ${t}`);
    expect(flat).toContain('slub found a bad kmalloc-8 object freed in vma_close');
    // a bug with one title has no such section
    expect(renderReport(input({ bug: { titles: [titles[0]!], why: [] } }))).not.toContain('The same bug under other titles');
  });

  it('says where the bug came in and which fix was checked, when bisect and fixcheck said so', () => {
    const text = renderReport(
      input({
        introducedBy: { firstBad: '015d239ac014', lastGood: 'v5.6-rc1~1', subject: 'uacce: add uacce driver', fixes: 'Fixes: 015d239ac014 ("uacce: add uacce driver")' },
        fixChecks: [
          { patch: 'uacce-region-vmas.patch', ok: true, kernels: [{ release: '6.12.118+deb12-amd64', status: 'fixed', introduced: [] }, { release: '7.2.13+deb14-amd64', status: 'fixed', introduced: [] }] },
          { patch: 'wrong.patch', ok: false, kernels: [{ release: '6.12.118+deb12-amd64', status: 'left', introduced: ['BUG: unable to handle page fault in uacce_vma_close'] }] },
        ],
      }),
    );
    for (const l of text.split('\n')) expect(l.length, l).toBeLessThanOrEqual(REPORT_WIDTH);
    const flat = text.replace(/\s+/g, ' ');
    expect(flat).toContain('the first version or commit that shows it is 015d239ac014 ("uacce: add uacce driver"); the last that does not is v5.6-rc1~1.');
    expect(flat).toContain('A fix would carry: Fixes: 015d239ac014 ("uacce: add uacce driver")');
    expect(flat).toContain('uacce-region-vmas.patch (svadiff fixcheck: fixes what it claims, introduces nothing): 6.12.118+deb12-amd64: fixed; introduced nothing 7.2.13+deb14-amd64: fixed');
    expect(flat).toContain('wrong.patch (svadiff fixcheck: REJECTED): 6.12.118+deb12-amd64: left; introduced BUG: unable to handle page fault in uacce_vma_close');
    // neither section without its source
    expect(renderReport(input())).not.toMatch(/Introduced by|Fix verification/);
  });

  it('reliability words', () => {
    expect(reliabilityText(5, 5)).toBe('reproduced 5/5');
    expect(reliabilityText(1, 5)).toBe('flaky (1/5)');
    expect(reliabilityText(0, 5)).toBe('did not reproduce (0/5), flaky');
    expect(subjectLine('crash', 'DMAR fault: PTE Read access is not set')).toBe('[BUG] iommu: DMAR fault: PTE Read access is not set');
  });
});

describe('where uacce came from', () => {
  it('the report quotes it when the kernel says (--uacce-src, self-built kernels)', () => {
    const text = renderReport(input({ kernel: { ...input().kernel, uacce: 'uacce.c: Debian 6.12.117 + fix.patch, sha256 0123456789abcdef' } }));
    expect(text).toContain('  uacce.c: Debian 6.12.117 + fix.patch, sha256 0123456789abcdef');
    expect(text).not.toContain('from the matching linux-source');
  });
});
