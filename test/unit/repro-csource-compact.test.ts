/**
 * The compact form of C reproducers (harness/repro/csource.ts generateC, one-task programs): a
 * straight-line main(). Every file is compiled for real (gcc -static -O2 -Wall -Wextra
 * -Werror) and run on this host with --no-setup-check next to the real agent (--stdio
 * --no-module): without the test device both see the same kernel (ENOENT for the nodes, EBADF
 * for the descriptors, anonymous memory, faults), so every op's outcome must be the same. What
 * the reproducers do with the real device is checked on a real guest
 * (test/integration/repro-replay.test.ts).
 */
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateProgram } from '../../harness/generator/index.js';
import { VFIO_DEVICE } from '../../harness/generator/vfio.js';
import { descOf } from '../../harness/ops/index.js';
import { profileFor } from '../../harness/model/index.js';
import { divergenceTitle } from '../../harness/oracle/check.js';
import { err, formatOutcomeSet, ok, sig, type Outcome } from '../../harness/program/outcome.js';
import { formatProgram, parseProgram } from '../../harness/program/parse.js';
import { DEFAULT_DEVICE, OP_KINDS, type Op, type Program } from '../../harness/program/types.js';
import { parseRegressEntry } from '../../harness/repro/regress.js';
import { generateC, insmodLine, parseReproSource, REPRO_FINDING_PREFIX, reproForm, reproForProgram, type ReproOptions } from '../../harness/repro/csource.js';
import { projectRoot } from '../../harness/util/paths.js';
import { cleanupAgentCache } from './agent-local.js';
import { EVERY_SINGLE_TASK_OP, none, printedOutcomes, program, scratch, viaAgent } from './repro-csource-helpers.js';

const tmp = scratch('svadiff-repro-compact-');
const compile = tmp.compile;
afterAll(() => {
  tmp.cleanup();
  cleanupAgentCache();
});

const PROFILE_612 = profileFor('6.12.117+deb12-amd64', { arch: 'x86_64', distro: 'debian' });
const PROFILE_61 = profileFor('6.1.0-41-amd64', { arch: 'x86_64', distro: 'debian' });

/** A real minimized finding (corpus/regress): open, mmap private, munmap, mmap shared -> EEXIST. */
function regress(name: string) {
  return parseRegressEntry(readFileSync(join(projectRoot(), 'corpus/regress', `${name}.json`), 'utf8'), name, name);
}
const FOUR_STEPS = regress('uacce-private-mapping-region-never-freed');

/** Single-task programs of the generator (those with fork or exit dropped). */
function singleTaskPrograms(seed: number, count: number): Program[] {
  const out: Program[] = [];
  for (let i = 0; out.length < count; i++) {
    const p = generateProgram(seed, i);
    if (!p.ops.some((op) => op.op === 'fork' || op.op === 'exit')) out.push(p);
  }
  return out;
}

/** The lines of main(), from "int main(" to its closing brace. */
function mainOf(source: string): string[] {
  const lines = source.split('\n');
  const start = lines.indexOf('int main(int argc, char **argv)');
  return lines.slice(start, lines.indexOf('}', start) + 1);
}

/** Every vfio op in one task (the group of two: test/unit/vfio-programs.ts has their outcomes). */
const VFIO_SINGLE_TASK_OPS: Op[] = [
  { op: 'pci_unbind', task: 't0', dev: 1 },
  { op: 'pci_bind', task: 't0', dev: 1, driver: 'vfio' },
  { op: 'vfio_group', task: 't0', fd: 'g', dev: 1 },
  { op: 'vfio_status', task: 't0', vgroup: 'g' },
  { op: 'vfio_container', task: 't0', fd: 'c' },
  { op: 'vfio_set_container', task: 't0', vgroup: 'g', container: 'c' },
  { op: 'vfio_set_iommu', task: 't0', container: 'c' },
  { op: 'vfio_device', task: 't0', fd: 'd', vgroup: 'g', dev: 1 },
  { op: 'close', task: 't0', fd: 'd' },
  { op: 'vfio_unset_container', task: 't0', vgroup: 'g' },
];

describe('which form', () => {
  const single = program([{ op: 'alloc', task: 't0', map: 'b', pages: 1 }, { op: 'touch', task: 't0', map: 'b', page: 0, offset: 0, access: 'read' }]);
  const forked = program([{ op: 'fork', task: 't0', child: 't1' }, { op: 'alloc', task: 't1', map: 'b', pages: 1 }]);

  it('compact for one task, general with fork or exit, with died/hang expected, with checked steps after unchecked ones', () => {
    expect(reproForm(single, [[ok()], [ok('0x0')]])).toBe('compact');
    expect(reproForm(single, [undefined, undefined])).toBe('compact');
    expect(reproForm(single, [[ok()], undefined])).toBe('compact');
    expect(reproForm(forked, [[ok()], [ok()]])).toBe('general');
    expect(reproForm(program([{ op: 'exit', task: 't0' }]), [[ok()]])).toBe('general');
    expect(reproForm(single, [[ok()], [{ kind: 'hang' }]])).toBe('general');
    expect(reproForm(single, [[ok()], [{ kind: 'died', signal: 'SIGKILL' }]])).toBe('general');
    expect(reproForm(single, [undefined, [ok()]])).toBe('general');
  });

  it('generateC follows it, and opts.form overrides it where it can', () => {
    expect(generateC(single, none(single))).toContain('STEP(0, ');
    expect(generateC(single, { ...none(single), form: 'general' })).toContain('static void task_loop(void)');
    expect(generateC(forked, none(forked))).toContain('static void task_loop(void)');
    expect(() => generateC(forked, { ...none(forked), form: 'compact' })).toThrow(/one task/);
  });
});

describe('what a compact reproducer holds', () => {
  const src = reproForProgram(FOUR_STEPS.program, PROFILE_612, {
    title: FOUR_STEPS.outcome.title,
    kernel: `${FOUR_STEPS.recorded.release} (${FOUR_STEPS.recorded.kernel})`,
    notes: [`Minimized by svadiff repro from finding ${FOUR_STEPS.name}.`],
  });

  it('the real 4-step finding: main() first, nothing it does not use', async () => {
    const lines = src.split('\n');
    const main = mainOf(src);
    // one block per step: what it does in kernel terms, then the call, then the check
    expect(main.filter((l) => /^\tSTEP\(\d+, /.test(l)).length).toBe(4);
    expect(main.filter((l) => /^\tcheck\(VALUE_/.test(l)).length).toBe(4);
    expect(main.join('\n')).toContain(
      [
        "\t/* map the DUS region (the submission ring) of q0's queue at m4's slot, shared:",
        '\t * uacce_fops_mmap() */',
        '\tSTEP(3, "mmap(m4, q0, region 1, 1 page, rw, shared)", "mmap", "mmap.ok", "ok");',
      ].join('\n'),
    );
    expect(main.join('\n')).toContain('MAP_SHARED, fd_q0, UACCE_REGION_DUS * SVT_PAGE_SIZE), SLOT(map_m4));');
    // only what it uses: no fault catching, ring, mknod, sysfs, poll, watcher, signal names
    for (const absent of ['sigsetjmp', 'submit(', 'mknod', 'sysfs_path', 'poll', 'waitpid', 'signal_names', 'SVT_REG_', 'SVT_DESC_', 'UACCE_REGION_MMIO', 'AT(s, page']) {
      expect(src, absent).not.toContain(absent);
    }
    // the test device's ABI: only the constants used, each once
    const defines = lines.filter((l) => l.startsWith('#define SVT_')).map((l) => l.split(/\s+/)[1]);
    expect(defines).toEqual(['SVT_PAGE_SIZE', 'SVT_UACCE_NAME_FMT', 'SVT_DRIVER_NAME']);
    await compile(src);
  });

  it('the real 4-step finding: under 130 lines up to the end of main(), under 350 in all (the general form: over 600)', () => {
    const lines = src.split('\n');
    // what a reader reads: the header, the constants, main(); svadiff's helpers and the
    // embedded program come after main()
    const endOfMain = lines.indexOf('}', lines.indexOf('int main(int argc, char **argv)'));
    expect(endOfMain + 1).toBeLessThan(130);
    // the runtime's sections it needs (guest/runtime), not a copy made for this program
    expect(lines.length).toBeLessThan(350);
    expect(reproForProgram(FOUR_STEPS.program, PROFILE_612, { title: FOUR_STEPS.outcome.title, form: 'general' }).split('\n').length).toBeGreaterThan(600);
  });

  it('watches its task unless the finding is an ordinary divergence', () => {
    const p = FOUR_STEPS.program;
    const watches = (o: Partial<ReproOptions>) => reproForProgram(p, PROFILE_612, o).includes('static int watch(pid_t t0)');
    expect(watches({ title: 'mmap: expected ok, got EEXIST [mmap.ok]' })).toBe(false);
    expect(watches({ title: 'general protection fault in __mutex_lock' })).toBe(true);
    expect(watches({ title: 'hang: poll did not return' })).toBe(true);
    expect(watches({ title: 'poll: expected ok(0x0), got died(SIGKILL) [poll.idle]' })).toBe(true);
    expect(watches({})).toBe(true);
    expect(watches({ title: 'general protection fault in f', watch: false })).toBe(false);
  });

  it('holds what a program of every single-task op needs, and compiles with and without the watcher', { timeout: 120_000 }, async () => {
    const p = program(EVERY_SINGLE_TASK_OP, { ...DEFAULT_DEVICE, devices: 2, ioctl: true });
    // the vfio ops need device.groups: their compact reproducer is compiled below
    expect([...new Set(p.ops.map((o) => o.op))].sort()).toEqual(OP_KINDS.filter((k) => k !== 'fork' && k !== 'exit' && descOf(k).family !== 'vfio').sort());
    const a = reproForProgram(p, PROFILE_612, { title: 'a title with */ in it', kernel: 'k (debian:6.12)', watch: false });
    const b = reproForProgram(p, PROFILE_612, { title: 'x', kernel: 'k (debian:6.12)', watch: true });
    for (const s of [a, b]) {
      for (const present of ['sigsetjmp(fault, 1)', 'static long long submit(', 'static void mknod_path(', 'static void sysfs_path(', 'static long long read_file(', '#define SVT_REG_DOORBELL', '#define IOCTL_0x5710']) {
        expect(s, present).toContain(present);
      }
    }
    expect(b).toContain('run->ms = 20 + POLL_EXTRA_MS;');
    expect(b).toContain('run->ms = SUBMIT_DEADLINE_MS;');
    expect(a).not.toContain('run->ms');
    expect(reproForProgram(p, PROFILE_612, {})).toBe(reproForProgram(p, PROFILE_612, {})); // deterministic
    const v = program(VFIO_SINGLE_TASK_OPS, { ...VFIO_DEVICE });
    await Promise.all([compile(a), compile(b), compile(generateC(p, none(p))), compile(reproForProgram(v, PROFILE_612, { watch: true }))]);
    // every line printable ASCII
    expect(a.split('\n').every((l) => !/[^\x09\x20-\x7e]/.test(l))).toBe(true);
  });

  it('compiles for names that are libc identifiers, or become one with a careless prefix', { timeout: 60_000 }, async () => {
    const awkward = program([
      { op: 'open', task: 't0', fd: 'set', dev: 0, via: 'path' },
      { op: 'dup', task: 't0', fd: 'set', as: 'mask' },
      { op: 'open', task: 't0', fd: 'errno', dev: 0, via: 'procfd', of: 'mask' },
      { op: 'dup', task: 't0', fd: 'errno', as: 'e' },
      { op: 'mmap', task: 't0', map: 'SHARED', fd: 'e', region: 0, pages: 1, prot: 'rw', shared: true },
      { op: 'alloc', task: 't0', map: 'FAILED', pages: 1 },
      { op: 'alloc', task: 't0', map: 'r', pages: 1 },
      { op: 'touch', task: 't0', map: 'r', page: 0, offset: 0, access: 'read' },
    ]);
    await compile(reproForProgram(awkward, PROFILE_612, { watch: false }));
    await compile(reproForProgram(awkward, PROFILE_612, { watch: true }));
  });

  it('compiles without warnings for 40 generated single-task programs with the model\'s expectations', { timeout: 300_000 }, async () => {
    const sources = [...singleTaskPrograms(1, 20), ...singleTaskPrograms(77, 20)].map((p, i) =>
      reproForProgram(p, i % 3 === 0 ? PROFILE_61 : PROFILE_612, { title: i % 2 ? `generated ${i}` : 'mmap: expected ok, got EEXIST [mmap.ok]' }),
    );
    for (let i = 0; i < sources.length; i += 2) await Promise.all(sources.slice(i, i + 2).map(compile));
  });

  it('embeds the program, the title and the kernel so that replay can read them back', () => {
    const p = singleTaskPrograms(3, 1)[0]!;
    p.comment = 'ends a comment */ and has trigraphs ??/ and ünïcode';
    const c = reproForProgram(p, PROFILE_612, { title: 'mmap: expected ok, got EEXIST [mmap.ok]', kernel: '6.12.117+deb12-amd64 (debian:6.12.117)' });
    expect(c).toContain('STEP(0, ');
    const back = parseReproSource(c, 'x.c');
    expect(back.program).toEqual(parseProgram(formatProgram(p), 'p'));
    expect(back.title).toBe('mmap: expected ok, got EEXIST [mmap.ok]');
    expect(back.kernel).toBe('6.12.117+deb12-amd64 (debian:6.12.117)');
  });
});

describe('a compact reproducer behaves like the agent (this host, no test device)', () => {
  async function viaRepro(p: Program, opts: Partial<ReproOptions> = {}) {
    const src = generateC(p, { ...none(p), ...opts });
    expect(src).toContain('STEP(0, ');
    const r = await execa(await compile(src), ['--no-setup-check'], { reject: false, timeout: 120_000 });
    return { outcomes: printedOutcomes(p, r.stdout), stdout: r.stdout, exitCode: r.exitCode };
  }

  it('every single-task op gives the same outcome as through the agent, with and without the watcher', { timeout: 120_000 }, async () => {
    const p = program(EVERY_SINGLE_TASK_OP, { ...DEFAULT_DEVICE, devices: 2 });
    const [agent, plain, watched] = await Promise.all([viaAgent(p), viaRepro(p, { watch: false }), viaRepro(p, { watch: true })]);
    for (const repro of [plain, watched]) {
      expect(repro.exitCode, repro.stdout).toBe(0);
      expect(repro.outcomes).toEqual(agent);
    }
    // a few that say the steps really did something
    const at = (i: number) => plain.outcomes[i];
    expect(at(0)).toBe('ENOENT'); // /dev/svt0-none: the agent's name for a device it never saw
    expect(at(9)).toBe('ok(0x1122334455667788)');
    expect(at(11)).toBe('ok(0x0)');
    expect(at(24)).toBe('ok(0x1122334455667788)'); // moved with mremap
    expect(at(25)).toBe('SIGSEGV'); // the old place is gone
    expect(at(28)).toBe('SIGSEGV'); // unmapped page
    expect(at(14)).toBe('SIGSEGV'); // submit through a mapping that never was
    expect(plain.stdout).toContain(`RESULT: every checked step (0 of ${p.ops.length}) did what the model expects`);
  });

  it('40 generated single-task programs give the same outcomes as through the agent', { timeout: 600_000 }, async () => {
    const programs = [...singleTaskPrograms(2024, 20), ...singleTaskPrograms(7, 20)];
    for (const [i, p] of programs.entries()) {
      const [agent, repro] = await Promise.all([viaAgent(p), viaRepro(p, { watch: i % 2 === 0 })]);
      expect(repro.exitCode, `program ${i}:\n${repro.stdout}`).toBe(0);
      expect(repro.outcomes, `program ${i} (${p.comment})`).toEqual(agent);
    }
  });
});

describe('a compact reproducer checks outcomes as the general form does', () => {
  const touchProg = program([
    { op: 'alloc', task: 't0', map: 'b', pages: 1 },
    { op: 'touch', task: 't0', map: 'b', page: 0, offset: 0, access: 'write', value: '0x123456789a' },
    { op: 'touch', task: 't0', map: 'b', page: 0, offset: 0, access: 'read' },
    { op: 'munmap', task: 't0', map: 'b', page: 0, pages: 1 },
    { op: 'touch', task: 't0', map: 'b', page: 0, offset: 0, access: 'read' },
  ]);

  async function run(expected: (Outcome[] | undefined)[], rules: string[][] | undefined, watch: boolean, args = ['--no-setup-check']) {
    const bin = await compile(generateC(touchProg, { expected, ...(rules ? { rules } : {}), watch }));
    return execa(bin, args, { reject: false });
  }

  for (const watch of [false, true]) {
    describe(watch ? 'with the watcher' : 'without the watcher', () => {
      it('exit 0 when every step matches, ok without a value matching any value', async () => {
        const r = await run([[ok()], [ok()], [ok('0x123456789a')], [ok()], [sig('SIGSEGV')]], undefined, watch);
        expect(r.exitCode, r.stdout).toBe(0);
        expect(r.stdout).toContain('RESULT: every checked step (5 of 5) did what the model expects');
        expect(r.stdout).not.toContain(REPRO_FINDING_PREFIX);
      });

      it('exit 1 at the first step outside the expected set, with the title checkProgram would give', async () => {
        const expected = [[ok()], [ok()], [ok('0x5'), err('EFAULT')], [ok()], [ok()]];
        const rules = [['alloc.ok'], ['touch.ok'], ['touch.read', 'touch.other', 'touch.third'], ['munmap.ok'], ['x']];
        const r = await run(expected, rules, watch);
        expect(r.exitCode).toBe(1);
        const title = divergenceTitle(touchProg.ops[2]!, formatOutcomeSet(expected[2]!), 'ok(0x123456789a)', rules[2]!);
        expect(title).toBe('touch: expected one of {EFAULT, ok}, got ok (another value) [touch.other, touch.read]');
        expect(r.stdout).toContain(`${REPRO_FINDING_PREFIX}${title}\n`);
        expect(r.stdout).toContain('step 2 (t0): read u64 at b + page 0 + 0x0 = ok(0x123456789a) (expected one of {EFAULT, ok(0x5)})  <-- DIVERGES');
        expect(r.stdout).toContain('RESULT: step 2 did not do what the model expects: the kernel diverged');
        // later steps run but are not checked (step 4 would not match either)
        expect(r.stdout).toContain('step 4 (t0): read u64 at b + page 0 + 0x0 = SIGSEGV (not checked: an earlier step diverged)');
      });

      it('names kinds only: a value where the model expects a signal is "got ok"', async () => {
        const expected = [[ok()], [ok()], [sig('SIGBUS')], [ok()], [ok()]];
        const rules = [['alloc.ok'], ['touch.ok'], ['touch.zombie'], ['munmap.ok'], ['x']];
        const r = await run(expected, rules, watch);
        expect(r.exitCode).toBe(1);
        const title = divergenceTitle(touchProg.ops[2]!, formatOutcomeSet(expected[2]!), 'ok(0x123456789a)', rules[2]!);
        expect(title).toBe('touch: expected SIGBUS, got ok [touch.zombie]');
        expect(r.stdout).toContain(`${REPRO_FINDING_PREFIX}${title}\n`);
      });

      it('steps without an expectation are not checked', async () => {
        const r = await run([[ok()], [ok()], [ok('0x123456789a')], [ok()], undefined], undefined, watch);
        expect(r.exitCode).toBe(0);
        expect(r.stdout).toContain('step 4 (t0): read u64 at b + page 0 + 0x0 = SIGSEGV (not checked)');
        expect(r.stdout).toContain('RESULT: every checked step (4 of 5) did what the model expects');
      });

      it('without the test device it is a setup problem (exit 2) that names the insmod line', async () => {
        const r = await run(none(touchProg).expected, undefined, watch, []);
        expect(r.exitCode).toBe(2);
        expect(r.stdout).toContain('SETUP PROBLEM: no uacce device /sys/class/uacce/svt0-*');
        expect(r.stdout).toContain(`rmmod svadiff_test; ${insmodLine(touchProg.device)}`);
      });

      it('a mapping that does not land at its slot is a setup problem (exit 2), not a finding', async () => {
        // the hint moved 3 pages away: the kernel maps it there, not at the slot
        const src = generateC(touchProg, { ...none(touchProg), watch }).replace('mmap((void *)SLOT(map_b),', 'mmap((void *)(SLOT(map_b) + 3 * SVT_PAGE_SIZE),');
        expect(src).toContain('SLOT(map_b) + 3 * SVT_PAGE_SIZE');
        const r = await execa(await compile(src), ['--no-setup-check'], { reject: false });
        expect(r.exitCode).toBe(2);
        expect(r.stdout).toMatch(/^step 0 \(t0\): mmap\(b, 1 page, rw, private anonymous\) landed at 0x200000003000, not at its slot 0x200000000000$/m);
        expect(r.stdout).toContain('SETUP PROBLEM: the address plan of the program does not hold here (not a kernel finding)');
        expect(r.stdout).not.toContain('RESULT');
      });
    });
  }

  it('the watcher: a step past its deadline is a hang; t0 is killed, the run goes on to the verdict', { timeout: 60_000 }, async () => {
    // munmap made to block for 60 s, and a 300 ms step deadline: only the watcher can end it
    const src = generateC(touchProg, { expected: [[ok()], [ok()], [ok()], [ok()], [sig('SIGSEGV')]], rules: [[], [], [], ['munmap.ok'], []], watch: true })
      .replace(/#define STEP_DEADLINE_MS\t10000/, '#define STEP_DEADLINE_MS\t300')
      .replace('\tret = munmap(', '\tsleep(60);\n\tret = munmap(');
    expect(src).toContain('sleep(60);');
    const t0 = Date.now();
    const r = await execa(await compile(src), ['--no-setup-check'], { reject: false, timeout: 50_000 });
    expect(Date.now() - t0).toBeLessThan(50_000);
    expect(r.exitCode, r.stdout).toBe(1);
    expect(r.stdout).toContain('step 3 (t0): munmap(b + page 0, 1 page) = hang (expected ok)  <-- DIVERGES');
    expect(r.stdout).toContain(`${REPRO_FINDING_PREFIX}hang: munmap did not return\n`);
    expect(r.stdout).toContain('step 3 did not finish within 300 ms: stopping here');
    expect(r.stdout).not.toContain('step 4 (t0)');
  });

  it('the watcher: t0 killed during a step died (the title as checkProgram gives it)', { timeout: 60_000 }, async () => {
    const p = program([
      { op: 'open', task: 't0', fd: 'q', dev: 0, via: 'path' }, // ENOENT here: q is -1, poll waits its whole timeout
      { op: 'poll', task: 't0', fd: 'q', timeout_ms: 2000 },
      { op: 'alloc', task: 't0', map: 'b', pages: 1 },
    ]);
    const bin = await compile(generateC(p, { expected: [[err('ENOENT')], [ok('0x0')], [ok()]], rules: [[], ['poll.idle'], []], watch: true, form: 'compact' }));
    const child = execa(bin, ['--no-setup-check'], { reject: false });
    await new Promise((r) => setTimeout(r, 700));
    // the reproducer's only child is t0
    const kids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
    expect(kids.length).toBe(1);
    process.kill(kids[0]!, 'SIGKILL');
    const r = await child;
    expect(r.exitCode, r.stdout).toBe(1);
    expect(r.stdout).toContain('step 1 (t0): poll(q, POLLIN, 2000 ms) = died(SIGKILL) (expected ok(0x0))  <-- DIVERGES');
    expect(r.stdout).toContain(`${REPRO_FINDING_PREFIX}poll: expected ok, got died(SIGKILL) [poll.idle]\n`);
    expect(r.stdout).toContain('t0 is gone: the steps after it do not run');
    expect(r.stdout).not.toContain('step 2 (t0)');
  });
});
