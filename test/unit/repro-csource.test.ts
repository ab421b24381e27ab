/**
 * Standalone C reproducers (harness/repro/csource.ts): every generated file is compiled for
 * real (gcc -static -O2 -Wall -Wextra -Werror), and run on this host with --no-setup-check
 * next to the real agent (--stdio --no-module): without the test device both see the same
 * kernel (ENOENT for the nodes, EBADF for the descriptors, anonymous memory, fork, exit,
 * faults), so every op's outcome must be the same. What the reproducers do with the real
 * device is checked on a real guest (test/integration/repro-replay.test.ts).
 */
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { generateProgram } from '../../harness/generator/index.js';
import { profileFor } from '../../harness/model/index.js';
import { divergenceTitle } from '../../harness/oracle/check.js';
import { err, formatOutcomeSet, ok, sig, type Outcome } from '../../harness/program/outcome.js';
import { formatProgram, parseProgram } from '../../harness/program/parse.js';
import { DEFAULT_DEVICE, OP_KINDS, type Op, type Program } from '../../harness/program/types.js';
import { descOf } from '../../harness/ops/index.js';
import {
  cString,
  generateC,
  insmodLine,
  modelExpectations,
  parseReproSource,
  REPRO_FINDING_PREFIX,
  reproForProgram,
} from '../../harness/repro/csource.js';
import { cleanupAgentCache } from './agent-local.js';
import { none, printedOutcomes, program, scratch, viaAgent } from './repro-csource-helpers.js';

const work = scratch('svadiff-repro-test-');
const compile = work.compile;
afterAll(() => {
  work.cleanup();
  cleanupAgentCache();
});

const PROFILE_612 = profileFor('6.12.117+deb12-amd64', { arch: 'x86_64', distro: 'debian' });
const PROFILE_61 = profileFor('6.1.0-41-amd64', { arch: 'x86_64', distro: 'debian' });

/** Every op kind, every variant the agent distinguishes (via, prot, region, work, ioctl, attr). */
const EVERY_OP: Op[] = [
  { op: 'open', task: 't0', fd: 'q', dev: 0, via: 'path' },
  { op: 'open', task: 't0', fd: 'k', dev: 0, via: 'mknod' },
  { op: 'open', task: 't0', fd: 'p', dev: 1, via: 'procfd', of: 'q' },
  { op: 'dup', task: 't0', fd: 'q', as: 'q2' },
  { op: 'mmap', task: 't0', map: 'm', fd: 'q', region: 0, pages: 1, prot: 'rw', shared: true },
  { op: 'mmap', task: 't0', map: 'd', fd: 'q', region: 1, pages: 2, prot: 'r', shared: false },
  { op: 'mmap', task: 't0', map: 'x', fd: 'q', region: 5, pages: 1, prot: 'none', shared: true },
  { op: 'alloc', task: 't0', map: 'b', pages: 4 },
  { op: 'touch', task: 't0', map: 'b', page: 1, offset: 8, access: 'write', value: '0x1122334455667788' },
  { op: 'touch', task: 't0', map: 'b', page: 1, offset: 8, access: 'read' },
  { op: 'touch', task: 't0', map: 'm', page: 0, offset: 0x20, access: 'read' },
  { op: 'submit', task: 't0', mmio: 'm', dus: 'd', work: 'write', target: 'b', page: 0, offset: 0, value: '0x5', ack: true },
  { op: 'submit', task: 't0', mmio: 'b', dus: 'b', work: 'read', target: 'b', page: 2, offset: 16, ack: false },
  { op: 'submit', task: 't0', mmio: 'm', dus: 'd', work: 'invalid', target: 'b', page: 0, offset: 0, ack: false },
  { op: 'ioctl', task: 't0', fd: 'q', cmd: 'START_Q' },
  { op: 'ioctl', task: 't0', fd: 'q', cmd: 'PING' },
  { op: 'ioctl', task: 't0', fd: 'q', cmd: 0x5710 },
  { op: 'ioctl', task: 't0', fd: 'q', cmd: 'PUT_Q' },
  { op: 'poll', task: 't0', fd: 'q', timeout_ms: 20 },
  { op: 'madvise', task: 't0', map: 'b', page: 0, pages: 2, advice: 'dofork' },
  { op: 'fork', task: 't0', child: 't1' },
  { op: 'touch', task: 't1', map: 'b', page: 1, offset: 8, access: 'read' },
  { op: 'touch', task: 't1', map: 'b', page: 1, offset: 8, access: 'write', value: '0x99' },
  { op: 'mremap', task: 't1', map: 'b', page: 0, old_pages: 2, new_pages: 3, move: true, dontunmap: false, to: 'c' },
  { op: 'mremap', task: 't1', map: 'b', page: 2, old_pages: 1, new_pages: 1, move: false, dontunmap: true, to: 'e' },
  { op: 'mremap', task: 't0', map: 'b', page: 0, old_pages: 4, new_pages: 2, move: false, dontunmap: false },
  { op: 'touch', task: 't1', map: 'c', page: 1, offset: 8, access: 'read' },
  { op: 'touch', task: 't1', map: 'b', page: 0, offset: 0, access: 'read' },
  { op: 'exit', task: 't1' },
  { op: 'touch', task: 't0', map: 'b', page: 1, offset: 8, access: 'read' },
  { op: 'munmap', task: 't0', map: 'b', page: 1, pages: 1 },
  { op: 'touch', task: 't0', map: 'b', page: 1, offset: 0, access: 'read' },
  { op: 'remove', task: 't0', dev: 1 },
  { op: 'add', task: 't0', dev: 1 },
  ...(['api', 'flags', 'available_instances', 'algorithms', 'region_mmio_size', 'region_dus_size', 'isolate', 'isolate_strategy'] as const).map(
    (attr): Op => ({ op: 'sysfs_read', task: 't0', dev: 0, attr }),
  ),
  { op: 'sysfs_write', task: 't0', dev: 0, attr: 'isolate_strategy', value: 'a "quoted" ?? value\n' },
  { op: 'close', task: 't0', fd: 'q' },
  { op: 'close', task: 't0', fd: 'q' },
  { op: 'alloc', task: 't0', map: 'g', pages: 2 },
  { op: 'mprotect', task: 't0', map: 'g', page: 1, pages: 1, prot: 'r' },
  { op: 'fork', task: 't0', child: 't2' },
  { op: 'touch', task: 't2', map: 'g', page: 1, offset: 0, access: 'write', value: '0x1' },
  { op: 'mprotect', task: 't2', map: 'g', page: 0, pages: 3, prot: 'none' },
  { op: 'touch', task: 't2', map: 'g', page: 0, offset: 0, access: 'read' },
  { op: 'touch', task: 't0', map: 'g', page: 0, offset: 0, access: 'read' },
  { op: 'pasid', task: 't0', map: 'g' },
];

describe('generateC', () => {
  it('the hand-written program covers every op kind', () => {
    // the vfio ops need the IOMMU-group machine: their C compiles in test/integration/vfio.test.ts (-Werror) and runs there
    expect([...new Set(EVERY_OP.map((o) => o.op))].sort()).toEqual(OP_KINDS.filter((k) => descOf(k).family !== 'vfio').sort());
  });

  it('compiles without warnings for programs covering every op, with and without expectations', { timeout: 120_000 }, async () => {
    const p = program(EVERY_OP, { ...DEFAULT_DEVICE, devices: 2, ioctl: true });
    const withModel = reproForProgram(p, PROFILE_612, { title: 'a title with */ in it', kernel: 'k (debian:6.12)' });
    await compile(withModel);
    await compile(generateC(p, none(p)));
    // the PCI backend (device.sva): removal unbinds the svadiff-sva endpoint on the PCI bus
    const sva = program(EVERY_OP, { ...DEFAULT_DEVICE, devices: 2, ioctl: true, sva: true });
    const svaC = generateC(sva, none(sva));
    expect(svaC).toMatch(/#define SVA_DEVICE\t+1\b/);
    expect(svaC).toContain('#define PCI_DRIVER_DIR');
    expect(svaC).toContain('#define SVT_PCI_ADDR_FMT');
    expect(svaC).toContain('write_file(driver_file("unbind"), dev_name(1))');
    await compile(svaC);
    // nothing but fork and exit: the runtime parts for descriptors, paths and maps are left out
    const tiny = program([{ op: 'fork', task: 't0', child: 't1' }, { op: 'exit', task: 't1' }]);
    await compile(reproForProgram(tiny, PROFILE_61));
    const noFork = program([{ op: 'alloc', task: 't0', map: 'b', pages: 1 }]);
    await compile(reproForProgram(noFork, PROFILE_612));
    // names that are libc macros, or become one with a careless prefix
    const awkward = program([
      { op: 'open', task: 't0', fd: 'CLOEXEC', dev: 0, via: 'path' },
      { op: 'dup', task: 't0', fd: 'CLOEXEC', as: 'errno' },
      { op: 'open', task: 't0', fd: 'set', dev: 0, via: 'procfd', of: 'errno' },
      { op: 'mmap', task: 't0', map: 'SHARED', fd: 'set', region: 0, pages: 1, prot: 'rw', shared: true },
      { op: 'alloc', task: 't0', map: 'FAILED', pages: 1 },
      { op: 'alloc', task: 't0', map: 'BASE', pages: 1 },
      { op: 'fork', task: 't0', child: 'stdin' },
      { op: 'touch', task: 'stdin', map: 'BASE', page: 0, offset: 0, access: 'read' },
    ]);
    await compile(reproForProgram(awkward, PROFILE_612));
  });

  it('compiles without warnings for 48 generated programs (real gcc runs)', { timeout: 300_000 }, async () => {
    const sources: string[] = [];
    for (let i = 0; i < 48; i++) {
      const p = generateProgram(i % 2 === 0 ? 1 : 77, i);
      sources.push(reproForProgram(p, i % 3 === 0 ? PROFILE_61 : PROFILE_612, { title: `generated ${i}` }));
    }
    for (let i = 0; i < sources.length; i += 2) await Promise.all(sources.slice(i, i + 2).map(compile));
  });

  it('is deterministic and readable: named constants, one comment per step, the insmod line', () => {
    const p = generateProgram(5, 3);
    const a = reproForProgram(p, PROFILE_612, { title: 't', form: 'general' });
    expect(reproForProgram(p, PROFILE_612, { title: 't', form: 'general' })).toBe(a);
    expect(a).toContain(`rmmod svadiff_test; ${insmodLine(p.device)}`);
    expect(a).not.toMatch(/#include "/); // stands alone
    for (let i = 0; i < p.ops.length; i++) expect(a).toMatch(new RegExp(`\\tcase ${i}:\\t/\\* ${p.ops[i]!.task}: `));
    // every line of a mail-friendly width apart from the embedded JSON and expectation tables
    expect(a.split('\n').every((l) => !/[^\x09\x0a\x20-\x7e]/.test(l))).toBe(true);
  });

  it('holds only the parts of the test device ABI (svt_abi.h) it uses, each defined once', () => {
    const abi = readFileSync('guest/include/svt_abi.h', 'utf8');
    const all = [...abi.matchAll(/^#define (SVT_[A-Z0-9_]+)/gm)].map((m) => m[1]!);
    const src = reproForProgram(program(EVERY_OP, { ...DEFAULT_DEVICE, devices: 2, ioctl: true }), PROFILE_612, { form: 'general' });
    const defined = [...src.matchAll(/^#define (SVT_[A-Z0-9_]+)/gm)].map((m) => m[1]!).filter((d) => d !== 'SVT_OP_INVALID'); // the agent's, not the ABI's
    expect(new Set(defined).size).toBe(defined.length);
    expect(defined.every((d) => all.includes(d))).toBe(true);
    // what it uses is there (the ring, the registers, the ioctls), what it does not use is not
    for (const used of ['SVT_REG_DOORBELL', 'SVT_REG_CQ_HEAD', 'SVT_DESC_RESULT', 'SVT_RING_SLOTS', 'SVT_IOCTL_PING', 'SVT_UACCE_CMD_START_Q', 'SVT_PAGE_SIZE']) expect(defined).toContain(used);
    for (const unused of ['SVT_FILL', 'SVT_MAGIC', 'SVT_QSTATE_STARTED', 'SVT_UACCE_DEV_SVA', 'SVT_ABI_H']) expect(defined).not.toContain(unused);
    // every defined constant is used elsewhere in the file
    for (const d of defined) expect(src.split(d).length, d).toBeGreaterThan(2);
    const small = reproForProgram(program([{ op: 'fork', task: 't0', child: 't1' }, { op: 'exit', task: 't1' }]), PROFILE_61);
    expect([...small.matchAll(/^#define (SVT_[A-Z0-9_]+)/gm)].map((m) => m[1])).toEqual(['SVT_UACCE_NAME_FMT', 'SVT_DRIVER_NAME']);
  });

  it('embeds the program, the title and the kernel so that replay can read them back', () => {
    const p = generateProgram(3, 11);
    p.comment = 'ends a comment */ and has trigraphs ??/ and ünïcode';
    const src = reproForProgram(p, PROFILE_612, { title: 'mmap: expected ok, got EEXIST [mmap.ok]', kernel: '6.12.117+deb12-amd64 (debian:6.12.117)' });
    const back = parseReproSource(src, 'x.c');
    expect(back.program).toEqual(parseProgram(formatProgram(p), 'p'));
    expect(back.program.comment).toBe(p.comment);
    expect(back.title).toBe('mmap: expected ok, got EEXIST [mmap.ok]');
    expect(back.kernel).toBe('6.12.117+deb12-amd64 (debian:6.12.117)');
    expect(() => parseReproSource('int main(void) { return 0; }', 'plain.c')).toThrow(/no embedded program/);
  });

  it('escapes C strings so that nothing breaks out of them', () => {
    expect(cString('a"b\\c?\n\x01é')).toBe('"a\\"b\\\\c\\?\\n\\001\\351"');
  });

  it('the model expectations are the union over the model branches', () => {
    const p = program([
      { op: 'open', task: 't0', fd: 'q', dev: 0, via: 'path' },
      { op: 'open', task: 't0', fd: 'r', dev: 0, via: 'path' },
      { op: 'ioctl', task: 't0', fd: 'q', cmd: 'PING' },
    ], { ...DEFAULT_DEVICE, ioctl: true, queue_limit: 1 });
    const m = modelExpectations(p, PROFILE_612);
    expect(m.expected.map((e) => e && formatOutcomeSet(e))).toEqual(['ok("/dev/svt0-0")', 'EBUSY', 'ok(1)']);
    expect(m.rules[1]).toEqual(['open.busy']);
  });
});

describe('a reproducer behaves like the agent (this host, no test device)', () => {
  async function viaRepro(p: Program): Promise<{ outcomes: (string | undefined)[]; stdout: string; exitCode: number | undefined }> {
    const bin = await compile(generateC(p, none(p)));
    const r = await execa(bin, ['--no-setup-check'], { reject: false, timeout: 120_000 });
    return { outcomes: printedOutcomes(p, r.stdout), stdout: r.stdout, exitCode: r.exitCode };
  }

  it('every op kind gives the same outcome as through the agent', { timeout: 120_000 }, async () => {
    const p = program(EVERY_OP, { ...DEFAULT_DEVICE, devices: 2 });
    const [agent, repro] = await Promise.all([viaAgent(p), viaRepro(p)]);
    expect(repro.exitCode).toBe(0);
    expect(repro.outcomes).toEqual(agent);
    // a few that say the runtime really did something
    const at = (i: number) => repro.outcomes[i];
    expect(at(0)).toBe('ENOENT'); // /dev/svt0-none: the agent's name for a device it never saw
    expect(at(9)).toBe('ok(0x1122334455667788)');
    expect(at(21)).toBe('ok(0x1122334455667788)'); // the child has a copy
    expect(at(28)).toBe('ok'); // exit
    expect(at(29)).toBe('ok(0x1122334455667788)'); // the parent's copy is untouched by the child's write
    expect(at(31)).toBe('SIGSEGV'); // unmapped page
  });

  it('20 generated programs give the same outcomes as through the agent', { timeout: 600_000 }, async () => {
    for (let i = 0; i < 20; i++) {
      const p = generateProgram(2024, i);
      const [agent, repro] = await Promise.all([viaAgent(p), viaRepro(p)]);
      expect(repro.exitCode, `program ${i}:\n${repro.stdout}`).toBe(0);
      expect(repro.outcomes, `program ${i}`).toEqual(agent);
    }
  });
});

describe('checking outcomes', () => {
  const touchProg = program([
    { op: 'alloc', task: 't0', map: 'b', pages: 1 },
    { op: 'touch', task: 't0', map: 'b', page: 0, offset: 0, access: 'write', value: '0x123456789a' },
    { op: 'touch', task: 't0', map: 'b', page: 0, offset: 0, access: 'read' },
    { op: 'munmap', task: 't0', map: 'b', page: 0, pages: 1 },
    { op: 'touch', task: 't0', map: 'b', page: 0, offset: 0, access: 'read' },
    { op: 'fork', task: 't0', child: 't1' },
    { op: 'exit', task: 't1' },
  ]);

  async function run(expected: (Outcome[] | undefined)[], rules?: string[][]) {
    const bin = await compile(generateC(touchProg, { expected, ...(rules ? { rules } : {}) }));
    return execa(bin, ['--no-setup-check'], { reject: false });
  }

  it('exit 0 when every step matches, ok without a value matching any value', async () => {
    const r = await run([[ok()], [ok()], [ok('0x123456789a')], [ok()], [sig('SIGSEGV')], [ok()], [ok()]]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('RESULT: every checked step (7 of 7) did what the model expects');
    expect(r.stdout).not.toContain(REPRO_FINDING_PREFIX);
  });

  it('exit 1 at the first step outside the expected set, with the title checkProgram would give', async () => {
    const expected = [[ok()], [ok()], [ok('0x5'), err('EFAULT')], [ok()], [ok()], [ok()], [ok()]];
    const rules = [['alloc.ok'], ['touch.ok'], ['touch.read', 'touch.other', 'touch.third'], ['munmap.ok'], ['x'], ['y'], ['z']];
    const r = await run(expected, rules);
    expect(r.exitCode).toBe(1);
    const title = divergenceTitle(touchProg.ops[2]!, formatOutcomeSet(expected[2]!), 'ok(0x123456789a)', rules[2]!);
    expect(title).toBe('touch: expected one of {EFAULT, ok}, got ok (another value) [touch.other, touch.read]');
    expect(r.stdout).toContain(`${REPRO_FINDING_PREFIX}${title}\n`);
    expect(r.stdout).toContain('step 2 (t0): read u64 at b + page 0 + 0x0 = ok(0x123456789a) (expected one of {ok(0x5), EFAULT})  <-- DIVERGES');
    // later steps run but are not checked (step 4 would not match either)
    expect(r.stdout).toContain('step 4 (t0): read u64 at b + page 0 + 0x0 = SIGSEGV (not checked: an earlier step diverged)');
  });

  it('names kinds only: a value where the model expects a signal is "got ok" (one finding, whatever was read)', async () => {
    const expected = [[ok()], [ok()], [sig('SIGBUS')], [ok()], [ok()], [ok()], [ok()]];
    const rules = [['alloc.ok'], ['touch.ok'], ['touch.zombie'], ['munmap.ok'], ['x'], ['y'], ['z']];
    const r = await run(expected, rules);
    expect(r.exitCode).toBe(1);
    const title = divergenceTitle(touchProg.ops[2]!, formatOutcomeSet(expected[2]!), 'ok(0x123456789a)', rules[2]!);
    expect(title).toBe('touch: expected SIGBUS, got ok [touch.zombie]');
    expect(divergenceTitle(touchProg.ops[2]!, 'SIGBUS', 'ok()', rules[2]!)).toBe(title);
    expect(divergenceTitle(touchProg.ops[2]!, 'SIGBUS', 'ok(0x0)', rules[2]!)).toBe(title);
    expect(r.stdout).toContain(`${REPRO_FINDING_PREFIX}${title}\n`);
  });

  it('steps without an expectation are not checked', async () => {
    const r = await run([undefined, undefined, undefined, undefined, [ok()], undefined, undefined]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain('step 0 (t0): mmap(b, 1 page, rw, private anonymous) = ok (not checked)');
    expect(r.stdout).toContain(`${REPRO_FINDING_PREFIX}touch: expected ok, got SIGSEGV []`);
  });

  it('a task killed during a step: died(SIGKILL), then ESRCH for its later steps, as the agent reports', { timeout: 60_000 }, async () => {
    const p = program([
      { op: 'open', task: 't0', fd: 'q', dev: 0, via: 'path' }, // ENOENT here: q is -1, poll waits its whole timeout
      { op: 'fork', task: 't0', child: 't1' },
      { op: 'poll', task: 't1', fd: 'q', timeout_ms: 2000 },
      { op: 'alloc', task: 't1', map: 'b', pages: 1 },
      { op: 'alloc', task: 't0', map: 'c', pages: 1 },
    ]);
    const bin = await compile(generateC(p, { expected: [undefined, undefined, [ok('0x0')], [ok()], [ok()]] }));
    const child = execa(bin, ['--no-setup-check'], { reject: false });
    // the controller's children are t0 and t1; t1 is the younger one
    await new Promise((r) => setTimeout(r, 700));
    const kids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).map(Number).sort((a, b) => a - b);
    expect(kids.length).toBe(2);
    process.kill(kids[1]!, 'SIGKILL');
    const r = await child;
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain('step 2 (t1): poll(q, POLLIN, 2000 ms) = died(SIGKILL) (expected ok(0x0))  <-- DIVERGES');
    expect(r.stdout).toContain('step 3 (t1): mmap(b, 1 page, rw, private anonymous) = ESRCH (not checked: an earlier step diverged)');
    expect(r.stdout).toContain('step 4 (t0): mmap(c, 1 page, rw, private anonymous) = ok (not checked: an earlier step diverged)');
    expect(r.stdout).toContain(`${REPRO_FINDING_PREFIX}poll: expected ok, got died(SIGKILL) []`);
  });

  it('without the test device it is a setup problem (exit 2) that names the insmod line', async () => {
    const bin = await compile(generateC(touchProg, none(touchProg)));
    const r = await execa(bin, [], { reject: false });
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toContain('SETUP PROBLEM: no uacce device /sys/class/uacce/svt0-*');
    expect(r.stdout).toContain(`rmmod svadiff_test; ${insmodLine(touchProg.device)}`);
  });
});
