/**
 * Standalone C reproducers: one C file per program that does, with libc only, exactly what the
 * svadiff guest agent does for each op (docs/agent-protocol.md), checks every step against the
 * model's expectation and says whether the kernel did what the model expects.
 *
 * The file is meant to be pasted into a mail to kernel developers: it names every constant
 * (only the parts of the test device ABI, guest/include/svt_abi.h, that it uses), says in a
 * comment what each step does in kernel terms, and prints one line per step:
 *
 *   step 7 (t0): mmap(m2, q, region 0, 1 page, rw, shared) = EEXIST (expected ok)  <-- DIVERGES
 *
 * Exit status: 1 some step did not do what the model expects (the finding reproduced), 0 every
 * checked step did, 2 a setup problem (no test device, wrong module parameters, not root, a
 * mapping that did not land at its slot).
 *
 * Two forms, the same behaviour (each op's C comes from one place, stepCode):
 *
 *   - compact (programs of one task, no fork or exit: almost every minimized finding): main()
 *     is the program, one block per step, each checked right after it by a small helper. The
 *     steps run in a child process, task t0 (as the agent's task 0); the parent only watches
 *     it, as the agent does, for a step past its deadline (hang) or a task killed during a step
 *     (died), and at the end kills t0 and waits for it within a deadline (a task stuck in the
 *     kernel as it exits does not stall the run).
 *   - general (several tasks): a controller process hands each step to the task (process) that
 *     performs it and waits for the result, one step at a time, in program order, as the agent
 *     does, from tables of steps. Tasks are created like the agent's: task 0 with fork(), later
 *     ones with clone(CLONE_PARENT | SIGCHLD), so that every task is the controller's child.
 *
 * The program itself is embedded at the end of the file (REPRO_PROGRAM_MARKER), with the
 * finding's title and kernel in the header (REPRO_TITLE_MARKER, REPRO_KERNEL_MARKER): that is
 * how `svadiff replay repro.c` knows the device parameters and what to look for.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ioctlNumber, slotTable } from '../agent/wire.js';
import { initialState, predict, type KernelProfile, type ModelState } from '../model/index.js';
import { titleExpected, titleWhat } from '../oracle/check.js';
import { ERRNO_NAMES, SIGNAL_NAMES } from '../program/errno.js';
import { formatOutcome, formatOutcomeSet, type Outcome } from '../program/outcome.js';
import { formatProgram, parseProgram } from '../program/parse.js';
import { ROOT_TASK, type DeviceParams, type Op, type Program } from '../program/types.js';
import { UserError } from '../util/errors.js';
import { projectRoot } from '../util/paths.js';
import { stripControl } from '../util/sanitize.js';

export const REPRO_PROGRAM_MARKER = 'svadiff-program:';
export const REPRO_TITLE_MARKER = 'svadiff-title:';
export const REPRO_KERNEL_MARKER = 'svadiff-kernel:';

/** Exit statuses of a reproducer. */
export const REPRO_EXIT = { matched: 0, diverged: 1, setup: 2 } as const;

/** The line a reproducer prints for the divergence (or hang) it saw, in svadiff's title format. */
export const REPRO_FINDING_PREFIX = 'FINDING: ';

export interface ReproOptions {
  /** per op: the outcomes the model allows; undefined: no expectation (the step is not checked) */
  expected: readonly (readonly Outcome[] | undefined)[];
  /** per op: the model rules behind the expectation (they end the divergence title) */
  rules?: readonly (readonly string[] | undefined)[];
  /** the finding this reproduces */
  title?: string;
  /** the kernel it was seen on, e.g. "6.12.117+deb12-amd64 (debian:6.12.117)" */
  kernel?: string;
  /** more header lines (where the program came from, ...) */
  notes?: readonly string[];
  /** which form of reproducer: 'auto' (the default) is compact whenever reproForm allows it */
  form?: ReproForm | 'auto';
  /**
   * compact form: run the steps in a child process watched by the parent (hangs, deaths, a task
   * stuck as it exits). Default: unless the title is an ordinary divergence.
   */
  watch?: boolean;
}

/** The compact form (one task: straight-line main) or the general form (tasks, step tables). */
export type ReproForm = 'compact' | 'general';

/** Expectations per op from the model, following every branch it allows. */
export interface ModelExpectations {
  expected: (Outcome[] | undefined)[];
  rules: (string[] | undefined)[];
  /** the first op from which the model had too many possible states to follow (not checked) */
  lostAt?: number;
}

/** The insmod arguments the agent loads the test module with for this device (guest/agent/agent.c setup_device). */
export function moduleParams(d: DeviceParams): [string, string][] {
  const isolate = { none: 0, read: 1, write: 2, both: 3 }[d.isolate_ops];
  const b = (v: boolean) => (v ? '1' : '0');
  return [
    ['devices', String(d.devices)],
    ['mmio_pages', String(d.mmio_pages)],
    ['dus_pages', String(d.dus_pages)],
    ['queue_limit', String(d.queue_limit)],
    ['sva', b(d.sva)],
    ['isolate_ops', String(isolate)],
    ['isolate_state', b(d.isolate_state)],
    ['ioctl', b(d.ioctl)],
    ['api', d.api],
    ['algs', d.algorithms.join(',')],
  ];
}

export function insmodLine(d: DeviceParams): string {
  return `insmod svadiff_test.ko ${moduleParams(d)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')}`;
}

/**
 * What the model allows at every op when nothing is known about the kernel's earlier answers:
 * the union over every state the model may be in (each branch it allows is followed). After
 * an op where more than maxStates states are possible, nothing is expected any more. A step
 * whose outcome is outside this union diverges whatever path the kernel took.
 */
export function modelExpectations(program: Program, profile: KernelProfile, maxStates = 64): ModelExpectations {
  let states: ModelState[] = [initialState(program.device, profile)];
  const out: ModelExpectations = { expected: [], rules: [] };
  program.ops.forEach((op, i) => {
    if (out.lostAt !== undefined) {
      out.expected.push(undefined);
      out.rules.push(undefined);
      return;
    }
    const preds = states.flatMap((s) => predict(s, op));
    const seen = new Map<string, Outcome>();
    for (const p of preds) if (!seen.has(formatOutcome(p.outcome))) seen.set(formatOutcome(p.outcome), p.outcome);
    out.expected.push([...seen.values()]);
    out.rules.push([...new Set(preds.map((p) => p.rule))]);
    if (preds.length > maxStates) out.lostAt = i + 1;
    else states = preds.map((p) => p.next);
  });
  return out;
}

/** generateC with the model's expectations for the given kernel profile. */
export function reproForProgram(program: Program, profile: KernelProfile, opts: Omit<ReproOptions, 'expected' | 'rules'> = {}): string {
  const m = modelExpectations(program, profile);
  const notes = [...(opts.notes ?? [])];
  if (m.lostAt !== undefined) {
    notes.push(`Steps from ${m.lostAt} on are not checked: the model allows too many outcomes before them to follow.`);
  }
  notes.push(`Expectations: svadiff's reference model for ${profile.release} (${profile.distro}, ${profile.arch}).`);
  return generateC(program, { ...opts, expected: m.expected, rules: m.rules, notes });
}

// ---------------------------------------------------------------------------------------------
// Reading a reproducer back

export interface ReproSource {
  program: Program;
  title?: string;
  kernel?: string;
}

/** The program (and title, kernel) embedded in a reproducer's text. */
export function parseReproSource(text: string, source = 'repro.c'): ReproSource {
  const start = text.indexOf(`/* ${REPRO_PROGRAM_MARKER}`);
  if (start < 0) {
    throw new UserError(`${source}: no embedded program (a "/* ${REPRO_PROGRAM_MARKER}" comment); svadiff replay needs a reproducer written by svadiff`);
  }
  const bodyStart = start + `/* ${REPRO_PROGRAM_MARKER}`.length;
  const end = text.indexOf('*/', bodyStart);
  if (end < 0) throw new UserError(`${source}: the embedded program's comment is not closed`);
  const program = parseProgram(text.slice(bodyStart, end), `${source} (embedded program)`);
  const r: ReproSource = { program };
  const title = new RegExp(`^ \\* ${REPRO_TITLE_MARKER} (.+)$`, 'm').exec(text)?.[1]?.trim();
  const kernel = new RegExp(`^ \\* ${REPRO_KERNEL_MARKER} (.+)$`, 'm').exec(text)?.[1]?.trim();
  if (title) r.title = title;
  if (kernel) r.kernel = kernel;
  return r;
}

// ---------------------------------------------------------------------------------------------
// Text helpers

/** Text for a C comment: one line, printable ASCII, no comment end, no trigraphs. */
function commentText(s: string): string {
  return stripControl(s)
    .replace(/\s+/g, ' ')
    .replace(/[^\x20-\x7e]/g, '?')
    .replace(/\*\//g, '* /')
    .replace(/\?\?/g, '? ?')
    .trim();
}

/** A C string literal of the bytes of s (latin1), escaped so that nothing can break out of it. */
export function cString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.charCodeAt(0) & 0xff;
    let piece: string;
    if (ch === '"') piece = '\\"';
    else if (ch === '\\') piece = '\\\\';
    else if (ch === '?') piece = '\\?'; // no trigraphs
    else if (ch === '\n') piece = '\\n';
    else if (ch === '\t') piece = '\\t';
    else if (c < 0x20 || c >= 0x7f || ch.charCodeAt(0) > 0xff) piece = '\\' + c.toString(8).padStart(3, '0');
    else piece = ch;
    // a digit right after an octal escape is fine: octal escapes stop at 3 digits
    out += piece;
  }
  return out + '"';
}

/** The JSON of the program for the embedding comment: ASCII only, no comment end, no trigraphs. */
function embeddedJson(p: Program): string {
  return formatProgram(p)
    .replace(/[^\x00-\x7e]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))
    .replace(/\*\//g, '*\\/')
    .replace(/\?/g, '\\u003f');
}

/**
 * The program as compact JSON for the embedding comment (compact form): the device on one line,
 * one line per op. parseReproSource reads either.
 */
function embeddedJsonCompact(p: Program): string {
  const head: Record<string, unknown> = { format: p.format, version: p.version };
  if (p.comment !== undefined) head.comment = p.comment;
  const text = `${JSON.stringify(head).slice(0, -1)},\n"device": ${JSON.stringify(p.device)},\n"ops": [\n${p.ops.map((o) => JSON.stringify(o)).join(',\n')}\n]}`;
  return text
    .replace(/[^\x00-\x7e]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))
    .replace(/\*\//g, '*\\/')
    .replace(/\?/g, '\\u003f');
}

const ABI_HEADER = 'guest/include/svt_abi.h';

/** One #define of C text (with its continuation lines and trailing comment). */
interface CDefine {
  name: string;
  text: string;
}

/** The #defines of a C header, in order (the include guard left out). */
export function parseDefines(text: string): CDefine[] {
  const lines = text.split('\n');
  const out: CDefine[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^#define\s+([A-Za-z_][A-Za-z0-9_]*)/.exec(lines[i]!);
    if (!m || /_H$/.test(m[1]!)) continue;
    const block = [lines[i]!];
    while (block[block.length - 1]!.endsWith('\\') && i + 1 < lines.length) block.push(lines[++i]!);
    out.push({ name: m[1]!, text: block.join('\n') });
  }
  return out;
}

const identifiers = (s: string) => new Set(s.replace(/\/\*[\s\S]*?\*\//g, ' ').match(/\b[A-Za-z_][A-Za-z0-9_]*\b/g) ?? []);

/** The defines `code` uses, directly or through other used defines, in their original order. */
export function usedDefines(defs: readonly CDefine[], code: string): CDefine[] {
  const used = new Set<string>();
  let refs = identifiers(code);
  for (;;) {
    const added = defs.filter((d) => !used.has(d.name) && refs.has(d.name));
    if (added.length === 0) break;
    for (const d of added) used.add(d.name);
    refs = identifiers(added.map((d) => d.text.replace(/^#define\s+[A-Za-z0-9_]+/, '')).join('\n'));
  }
  return defs.filter((d) => used.has(d.name));
}

let abiDefs: CDefine[] | undefined;

/** The #defines of guest/include/svt_abi.h (the file must stand alone: plain #defines). */
function abiDefines(): CDefine[] {
  abiDefs ??= parseDefines(readFileSync(join(projectRoot(), ABI_HEADER), 'utf8'));
  return abiDefs;
}

/** Conventions of the svadiff agent (docs/agent-protocol.md) that reproducers share. */
const AGENT_DEFINES: CDefine[] = parseDefines(`#define UACCE_CLASS\t\t"/sys/class/uacce"
#define DRIVER_DIR\t\t"/sys/bus/platform/drivers/" SVT_DRIVER_NAME
#define MODULE_PARAMS\t\t"/sys/module/" SVT_DRIVER_NAME "/parameters"
#define SLOT(s)\t\t\t(0x200000000000ULL + (uint64_t)(s) * 0x1000000ULL)\t/* mapping slot s, mapped there without MAP_FIXED */
#define AT(s, page, off)\t(SLOT(s) + (uint64_t)(page) * SVT_PAGE_SIZE + (uint64_t)(off))
#define UACCE_REGION_MMIO\t0\t/* mmap offset (in pages) of a queue's MMIO region */
#define UACCE_REGION_DUS\t1\t/* ... and of its DUS region */
#define SVT_OP_INVALID\t\t7\t/* a work item opcode the device does not know */
#define SUBMIT_WAIT_US\t\t200000\t/* how long a work item may take to complete */
#define SUBMIT_POLL_US\t\t200
#define STEP_DEADLINE_MS\t10000\t/* a step that takes longer is a hang */
#define SUBMIT_DEADLINE_MS\t5000
#define POLL_EXTRA_MS\t\t5000\t/* poll: its timeout plus this */
#define KILL_DEADLINE_MS\t5000
#define PATH_LEN\t\t200
#define DATA_MAX\t\t1024\t/* bytes of a result (what was read, the path opened) */`);

/** The ABI and agent #defines that `code` uses, as C text (empty lines: none). */
function definesFor(code: string): { abi: string[]; agent: string[] } {
  const agent = usedDefines(AGENT_DEFINES, code);
  const abi = usedDefines(abiDefines(), code + '\n' + agent.map((d) => d.text).join('\n'));
  return { abi: abi.map((d) => d.text), agent: agent.map((d) => d.text) };
}

// ---------------------------------------------------------------------------------------------
// Per op: what the step does in C, what the controller resolves for it, how it reads

/** What an ok result of the step carries (harness/agent/observe.ts). */
type ValueKind = 'VALUE_NONE' | 'VALUE_DATA' | 'VALUE_RETURN';

interface Names {
  task: (t: string) => string;
  /** the C lvalue that holds a descriptor name's fd in the task */
  fd: (f: string) => string;
  /** the C constant of a mapping name's slot */
  map: (m: string) => string;
}

/**
 * C names of a program's tasks, descriptor names and mapping names (program names are
 * identifiers: parse.ts NAME_RE). The prefixes are ones no libc header uses, so that names like
 * SHARED, CLOEXEC or errno cannot turn into MAP_SHARED, FD_CLOEXEC or a macro.
 */
const descConst = (f: string) => `DESC_${f}`;
const NAMES: Names = { task: (t) => `TASK_${t}`, fd: (f) => `fds[${descConst(f)}]`, map: (m) => `MAPPING_${m}` };

/**
 * The compact form's names: a variable per descriptor, an enum constant per mapping slot, in
 * lower case. Of libc's lower-case identifiers (the headers reproducers include, with
 * _GNU_SOURCE) only fd_set and fd_mask start with "fd_", none with "map_".
 */
const LIBC_FD_NAMES = new Set(['fd_set', 'fd_mask']);
const fdVar = (f: string) => (LIBC_FD_NAMES.has(`fd_${f}`) ? `fd_${f}_` : `fd_${f}`);
const COMPACT_NAMES: Names = { task: () => 'TASK_t0', fd: fdVar, map: (m) => `map_${m}` };

interface StepCode {
  /** short description of the call for the output line */
  call: string;
  /** comment: what it does in kernel terms */
  comment: string;
  /** C statements of the step; may use ret, e, r, path (and pf for poll) */
  body: string[];
  value: ValueKind;
  /** the controller resolves a path for it (agent.c resolve()) */
  resolve?: string;
  deadline?: string;
  /** mmap/alloc/mremap: the controller checks where the mapping landed */
  placed?: boolean;
  /** touch/submit: SIGSEGV or SIGBUS during the step is its outcome */
  faults?: boolean;
  /** runtime pieces it needs */
  needs: Need[];
}

type Need = 'mapped' | 'write_file' | 'read_file' | 'submit' | 'fork_task' | 'node_path' | 'mknod_path' | 'sysfs_path' | 'fds' | 'faults';

const PROT = { none: 'PROT_NONE', r: 'PROT_READ', rw: 'PROT_READ | PROT_WRITE' } as const;

const REG_NAMES: Record<number, string> = {
  0x000: 'SVT_REG_MAGIC',
  0x004: 'SVT_REG_VERSION',
  0x008: 'SVT_REG_QUEUE_ID',
  0x00c: 'SVT_REG_STATE',
  0x010: 'SVT_REG_START_COUNT',
  0x014: 'SVT_REG_STOP_COUNT',
  0x018: 'SVT_REG_OPENER_TGID',
  0x01c: 'SVT_REG_PASID',
  0x020: 'SVT_REG_DOORBELL',
  0x024: 'SVT_REG_CQ_HEAD',
  0x028: 'SVT_REG_FAULTS',
  0x02c: 'SVT_REG_ACK',
  0x030: 'SVT_REG_DROPPED',
  0x034: 'SVT_REG_DEV_INDEX',
};

const REGION_NAME = (r: number) => (r === 0 ? 'UACCE_REGION_MMIO' : r === 1 ? 'UACCE_REGION_DUS' : String(r));

function hexOff(n: number): string {
  return '0x' + n.toString(16);
}

function pages(n: number): string {
  return `${n} page${n === 1 ? '' : 's'}`;
}

/** What a mapping name was created as, for comments (region of a queue, or anonymous). */
function mapOrigins(p: Program): Map<string, string> {
  const m = new Map<string, string>();
  for (const op of p.ops) {
    if (op.op === 'mmap' && !m.has(op.map)) m.set(op.map, op.region === 0 ? 'MMIO' : op.region === 1 ? 'DUS' : `region ${op.region}`);
    if (op.op === 'alloc' && !m.has(op.map)) m.set(op.map, 'anon');
    if (op.op === 'mremap' && op.to !== undefined && !m.has(op.to)) m.set(op.to, m.get(op.map) ?? '?');
  }
  return m;
}

/** The address of (page, offset) of a mapping: SLOT(m), or AT(m, page, offset). */
function at(n: Names, map: string, page: number, off: string | number): string {
  return page === 0 && (off === 0 || off === '0x0') ? `SLOT(${n.map(map)})` : `AT(${n.map(map)}, ${page}, ${off})`;
}

function stepCode(op: Op, n: Names, origin: Map<string, string>): StepCode {
  const F = n.fd;
  const M = n.map;
  switch (op.op) {
    case 'open': {
      const base = { value: 'VALUE_DATA' as const, needs: ['fds'] as Need[] };
      if (op.via === 'procfd') {
        return {
          ...base,
          call: `${op.fd} = open(/proc/self/fd/<${op.of}>)`,
          comment: `reopen ${op.of} through /proc/self/fd: a new open of the same device inode, i.e. a new queue`,
          body: [
            `snprintf(path, PATH_LEN, "/proc/self/fd/%d", ${F(op.of!)});`,
            `ret = ${F(op.fd)} = open(path, O_RDWR | O_CLOEXEC);`,
            'e = errno;',
            'DATAF(r, "%s", path);',
          ],
        };
      }
      const mk = op.via === 'mknod';
      return {
        ...base,
        call: mk ? `${op.fd} = open(/tmp/svt${op.dev}.node)` : `${op.fd} = open(/dev/svt${op.dev}-<id>)`,
        comment: mk
          ? `open a second device node of svt${op.dev} (mknod of its major:minor): uacce_fops_open() gets a new queue`
          : `open svt${op.dev}'s node: uacce_fops_open() gets a new queue from the driver (get_queue)`,
        body: [`ret = ${F(op.fd)} = open(path, O_RDWR | O_CLOEXEC);`, 'e = errno;', 'DATAF(r, "%s", path);'],
        resolve: mk ? `mknod_path(${op.dev}, path);` : `node_path(${op.dev}, path);`,
        needs: [...base.needs, mk ? 'mknod_path' : 'node_path'],
      };
    }
    case 'close':
      return {
        call: `close(${op.fd})`,
        comment: `close ${op.fd} (uacce_fops_release() runs once the last reference to the file is gone)`,
        body: [`ret = close(${F(op.fd)});`, 'e = errno;', `${F(op.fd)} = -1;`],
        value: 'VALUE_NONE',
        needs: ['fds'],
      };
    case 'dup':
      return {
        call: `${op.as} = dup(${op.fd})`,
        comment: `dup ${op.fd} as ${op.as}: the same file, the same queue`,
        body: [`ret = ${F(op.as)} = dup(${F(op.fd)});`, 'e = errno;'],
        value: 'VALUE_NONE',
        needs: ['fds'],
      };
    case 'mmap': {
      const what =
        op.region === 0 ? 'the MMIO region (registers)' : op.region === 1 ? 'the DUS region (the submission ring)' : `region ${op.region} (uacce has 0 and 1)`;
      return {
        call: `mmap(${op.map}, ${op.fd}, region ${op.region}, ${pages(op.pages)}, ${op.prot}, ${op.shared ? 'shared' : 'private'})`,
        comment: `map ${what} of ${op.fd}'s queue at ${op.map}'s slot, ${op.shared ? 'shared' : 'private'}: uacce_fops_mmap()`,
        body: [
          `ret = mapped(r, mmap((void *)SLOT(${M(op.map)}), ${op.pages} * SVT_PAGE_SIZE, ${PROT[op.prot]},`,
          `\t\t     ${op.shared ? 'MAP_SHARED' : 'MAP_PRIVATE'}, ${F(op.fd)}, ${REGION_NAME(op.region)} * SVT_PAGE_SIZE), SLOT(${M(op.map)}));`,
          'e = errno;',
        ],
        value: 'VALUE_NONE',
        placed: true,
        needs: ['fds', 'mapped'],
      };
    }
    case 'alloc':
      return {
        call: `mmap(${op.map}, ${pages(op.pages)}, rw, private anonymous)`,
        comment: `anonymous private memory at ${op.map}'s slot: a target for work items`,
        body: [
          `ret = mapped(r, mmap((void *)SLOT(${M(op.map)}), ${op.pages} * SVT_PAGE_SIZE, PROT_READ | PROT_WRITE,`,
          `\t\t     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), SLOT(${M(op.map)}));`,
          'e = errno;',
        ],
        value: 'VALUE_NONE',
        placed: true,
        needs: ['mapped'],
      };
    case 'munmap':
      return {
        call: `munmap(${op.map} + page ${op.page}, ${pages(op.pages)})`,
        comment: `munmap ${op.pages === 1 ? `page ${op.page}` : `pages ${op.page}..${op.page + op.pages - 1}`} of ${op.map}${origin.get(op.map) === 'anon' ? '' : ' (uacce_vma_close() when a whole queue mapping goes)'}`,
        body: [`ret = munmap((void *)${at(n, op.map, op.page, 0)}, ${op.pages} * SVT_PAGE_SIZE);`, 'e = errno;'],
        value: 'VALUE_NONE',
        needs: [],
      };
    case 'mremap': {
      const moving = op.move || op.dontunmap;
      const flags = [...(moving ? ['MREMAP_MAYMOVE'] : []), ...(op.dontunmap ? ['MREMAP_DONTUNMAP'] : []), ...(moving && op.to !== undefined ? ['MREMAP_FIXED'] : [])];
      const to = moving && op.to !== undefined ? `(void *)SLOT(${M(op.to)})` : 'NULL';
      const want = moving && op.to !== undefined ? `SLOT(${M(op.to)})` : at(n, op.map, op.page, 0);
      return {
        call: `mremap(${op.map} + page ${op.page}, ${op.old_pages} -> ${pages(op.new_pages)}${moving ? `, to ${op.to}` : ''}${op.dontunmap ? ', dontunmap' : ''})`,
        comment: moving
          ? `move pages ${op.page}.. of ${op.map} to ${op.to}'s slot${op.dontunmap ? ', leaving the old range mapped (MREMAP_DONTUNMAP)' : ''}: the vma is copied, its vm_ops see open and close`
          : `resize pages ${op.page}.. of ${op.map} in place from ${op.old_pages} to ${pages(op.new_pages)}`,
        body: [
          `ret = mapped(r, mremap((void *)${at(n, op.map, op.page, 0)}, ${op.old_pages} * SVT_PAGE_SIZE, ${op.new_pages} * SVT_PAGE_SIZE,`,
          `\t\t     ${flags.length ? flags.join(' | ') : '0'}, ${to}), ${want});`,
          'e = errno;',
        ],
        value: 'VALUE_NONE',
        placed: true,
        needs: ['mapped'],
      };
    }
    case 'madvise':
      return {
        call: `madvise(${op.map} + page ${op.page}, ${pages(op.pages)}, MADV_DOFORK)`,
        comment: `MADV_DOFORK on ${op.map}: clears VM_DONTCOPY, so that fork would copy the mapping`,
        body: [`ret = madvise((void *)${at(n, op.map, op.page, 0)}, ${op.pages} * SVT_PAGE_SIZE, MADV_DOFORK);`, 'e = errno;'],
        value: 'VALUE_NONE',
        needs: [],
      };
    case 'touch': {
      const reg = origin.get(op.map) === 'MMIO' && op.page === 0 ? REG_NAMES[op.offset] : undefined;
      const off = reg ?? hexOff(op.offset);
      const where = `${op.map} page ${op.page} + ${hexOff(op.offset)}${reg ? ` (${reg})` : ''}`;
      if (op.access === 'read') {
        return {
          call: `read u64 at ${op.map} + page ${op.page} + ${hexOff(op.offset)}`,
          comment: `64-bit load from ${where}`,
          body: [`DATAF(r, "0x%llx", (unsigned long long)*(volatile uint64_t *)${at(n, op.map, op.page, off)});`],
          value: 'VALUE_DATA',
          faults: true,
          needs: ['faults'],
        };
      }
      return {
        call: `write u64 ${op.value} at ${op.map} + page ${op.page} + ${hexOff(op.offset)}`,
        comment: `64-bit store of ${op.value} to ${where}`,
        body: [`*(volatile uint64_t *)${at(n, op.map, op.page, off)} = ${op.value}ULL;`],
        value: 'VALUE_DATA',
        faults: true,
        needs: ['faults'],
      };
    }
    case 'submit': {
      const opcode = op.work === 'write' ? 'SVT_OP_WRITE64' : op.work === 'read' ? 'SVT_OP_READ64' : 'SVT_OP_INVALID';
      const what =
        op.work === 'write'
          ? `the engine writes ${op.value ?? '0x0'} at ${op.target} page ${op.page} + ${hexOff(op.offset)} in the opener's address space`
          : op.work === 'read'
            ? `the engine reads ${op.target} page ${op.page} + ${hexOff(op.offset)} in the opener's address space`
            : 'an opcode the device does not know (BADOP)';
      return {
        call: `submit ${op.work.toUpperCase()} to ${op.target} + page ${op.page} + ${hexOff(op.offset)} via ring ${op.dus}, doorbell ${op.mmio}${op.ack ? ', ack' : ''}`,
        comment: `one work item through the ring in ${op.dus} and the doorbell in ${op.mmio}: ${what}`,
        body: [
          `ret = submit(r, SLOT(${M(op.mmio)}), SLOT(${M(op.dus)}), ${opcode}, ${at(n, op.target, op.page, hexOff(op.offset))},`,
          `\t     ${op.value ?? '0x0'}ULL, ${op.ack ? 1 : 0});`,
          'e = errno;',
        ],
        value: 'VALUE_DATA',
        deadline: 'SUBMIT_DEADLINE_MS',
        faults: true,
        needs: ['submit', 'faults'],
      };
    }
    case 'ioctl': {
      const named = typeof op.cmd === 'string';
      const cmd =
        op.cmd === 'START_Q' ? 'SVT_UACCE_CMD_START_Q' : op.cmd === 'PUT_Q' ? 'SVT_UACCE_CMD_PUT_Q' : op.cmd === 'PING' ? 'SVT_IOCTL_PING' : `IOCTL_${hexOff(ioctlNumber(op.cmd)).toUpperCase().replace('0X', '0x')}`;
      const comment =
        op.cmd === 'START_Q'
          ? 'UACCE_CMD_START_Q: uacce_start_queue() -> the driver\'s start_queue'
          : op.cmd === 'PUT_Q'
            ? 'UACCE_CMD_PUT_Q: uacce_put_queue() stops and puts the queue'
            : op.cmd === 'PING'
              ? 'the driver\'s own ioctl (SVT_IOCTL_PING, with ioctl=1): returns the queue id'
              : `ioctl ${hexOff(ioctlNumber(op.cmd))}, which neither uacce nor the test driver knows`;
      return {
        call: `ioctl(${op.fd}, ${named ? String(op.cmd) : hexOff(ioctlNumber(op.cmd))})`,
        comment,
        body: [`ret = ioctl(${F(op.fd)}, ${cmd}, 0UL);`, 'e = errno;'],
        value: 'VALUE_RETURN',
        needs: ['fds'],
      };
    }
    case 'poll':
      return {
        call: `poll(${op.fd}, POLLIN, ${op.timeout_ms} ms)`,
        comment: `poll ${op.fd} for POLLIN: uacce_fops_poll() asks the driver's is_q_updated`,
        body: [
          `pf.fd = ${F(op.fd)};`,
          'pf.events = POLLIN;',
          `ret = poll(&pf, 1, ${op.timeout_ms});`,
          'e = errno;',
          'DATAF(r, "0x%x", (unsigned int)(uint16_t)pf.revents);',
        ],
        value: 'VALUE_DATA',
        deadline: `${op.timeout_ms} + POLL_EXTRA_MS`,
        needs: ['fds'],
      };
    case 'fork':
      return {
        call: `fork() -> ${op.child}`,
        comment: `${op.task} forks ${op.child}: it shares the open files (queues); uacce mappings are VM_DONTCOPY and stay behind`,
        body: [
          'ret = fork_task();',
          'e = errno;',
          'if (ret == 0) {',
          `\tme = ${n.task(op.child)};`,
          '\treturn 1;',
          '}',
          'r->child = (int)ret;',
          'if (ret > 0)',
          '\tret = 0;',
        ],
        value: 'VALUE_NONE',
        needs: ['fork_task'],
      };
    case 'exit':
      return {
        call: '_exit(0)',
        comment: `${op.task} exits: its files and mappings are released before the next step`,
        body: ['_exit(0);'],
        value: 'VALUE_NONE',
        needs: [],
      };
    case 'remove':
    case 'add':
      return {
        call: `${op.op === 'remove' ? 'unbind' : 'bind'} ${'svadiff_test'}.${op.dev}`,
        comment:
          op.op === 'remove'
            ? `remove device ${op.dev}: unbind the parent driver, whose remove calls uacce_remove()`
            : `re-add device ${op.dev}: bind the parent driver again, a fresh uacce device`,
        body: [`ret = write_file(DRIVER_DIR "/${op.op === 'remove' ? 'unbind' : 'bind'}", SVT_DRIVER_NAME ".${op.dev}");`, 'e = errno;', 'if (ret >= 0)', '\tret = 0;'],
        value: 'VALUE_NONE',
        needs: ['write_file'],
      };
    case 'sysfs_read':
      return {
        call: `read /sys/class/uacce/svt${op.dev}-<id>/${op.attr}`,
        comment: `read uacce's sysfs attribute ${op.attr} of svt${op.dev}`,
        body: ['ret = read_file(r, path);', 'e = errno;'],
        value: 'VALUE_DATA',
        resolve: `sysfs_path(${op.dev}, ${cString(op.attr)}, path);`,
        needs: ['read_file', 'sysfs_path'],
      };
    case 'sysfs_write':
      return {
        call: `write ${JSON.stringify(op.value)} to /sys/class/uacce/svt${op.dev}-<id>/${op.attr}`,
        comment: `write uacce's sysfs attribute ${op.attr} of svt${op.dev}`,
        body: [`ret = write_file(path, ${cString(op.value)});`, 'e = errno;'],
        value: 'VALUE_RETURN',
        resolve: `sysfs_path(${op.dev}, ${cString(op.attr)}, path);`,
        needs: ['write_file', 'sysfs_path'],
      };
  }
}

/** The call text of every step as the reproducer prints it ("step N (task): <call> = <outcome> ..."). */
export function stepCalls(program: Program): string[] {
  const origin = mapOrigins(program);
  return program.ops.map((op) => stepCode(op, NAMES, origin).call);
}

/** Raw ioctl numbers of a program (named constants in the file). */
function rawIoctls(p: Program): number[] {
  const s = new Set<number>();
  for (const op of p.ops) if (op.op === 'ioctl' && typeof op.cmd === 'number') s.add(op.cmd);
  return [...s].sort((a, b) => a - b);
}

// ---------------------------------------------------------------------------------------------
// Expected outcomes as C

const OUTCOME_KIND = { ok: 'OK', errno: 'ERRNO', signal: 'SIGNAL', died: 'DIED', hang: 'HANG' } as const;

function cOutcome(o: Outcome): string {
  switch (o.kind) {
    case 'ok':
      return o.value === undefined ? '{ OK, "", 0 }' : `{ OK_VALUE, V(${cString(o.value)}) }`;
    case 'errno':
      return `{ ERRNO, V(${cString(o.errno)}) }`;
    case 'signal':
    case 'died':
      return `{ ${OUTCOME_KIND[o.kind]}, V(${cString(o.signal)}) }`;
    case 'hang':
      return '{ HANG, "", 0 }';
  }
}

// ---------------------------------------------------------------------------------------------
// The file

/**
 * The C source of a standalone reproducer of `program`. opts.expected has one entry per op
 * (the outcomes the model allows; undefined: not checked). Deterministic: the same input gives
 * the same text. The compact form whenever reproForm allows it (opts.form overrides).
 */
export function generateC(program: Program, opts: ReproOptions): string {
  if (opts.expected.length !== program.ops.length) {
    throw new Error(`generateC: ${opts.expected.length} expectations for ${program.ops.length} ops`);
  }
  const possible = reproForm(program, opts.expected);
  const form = opts.form === undefined || opts.form === 'auto' ? possible : opts.form;
  if (form === 'compact' && possible !== 'compact') throw new Error('generateC: the compact form is for programs of one task (no fork, no exit)');
  return form === 'compact' ? generateCompactC(program, opts) : generateGeneralC(program, opts);
}

/**
 * The form a reproducer of this program takes: compact for one task (no fork, no exit) when
 * the model expects no death or hang (the compact form's watcher reports those as divergences)
 * and the unchecked steps are at the end (after a task died, the general form would go on and
 * check later steps as ESRCH; the compact form stops there).
 */
export function reproForm(program: Program, expected: readonly (readonly Outcome[] | undefined)[]): ReproForm {
  if (program.ops.some((op) => op.op === 'fork' || op.op === 'exit' || op.task !== ROOT_TASK)) return 'general';
  if (expected.some((e) => e?.some((o) => o.kind === 'died' || o.kind === 'hang'))) return 'general';
  const firstUnchecked = expected.findIndex((e) => e === undefined);
  if (firstUnchecked >= 0 && expected.slice(firstUnchecked).some((e) => e !== undefined)) return 'general';
  return 'compact';
}

/** The general form: a controller, task processes, tables of steps. */
function generateGeneralC(program: Program, opts: ReproOptions): string {
  const slots = slotTable(program);
  const taskNames = [...slots.tasks.entries()].sort((a, b) => a[1] - b[1]).map(([name]) => name);
  const fdNames = [...slots.fds.entries()].sort((a, b) => a[1] - b[1]).map(([name]) => name);
  const mapNames = [...slots.maps.entries()].sort((a, b) => a[1] - b[1]).map(([name]) => name);
  const names = NAMES;
  const origin = mapOrigins(program);
  const codes = program.ops.map((op) => stepCode(op, names, origin));
  const needs = new Set<Need>(codes.flatMap((c) => c.needs));
  const d = program.device;
  const title = opts.title !== undefined ? commentText(opts.title) : undefined;
  const kernel = opts.kernel !== undefined ? commentText(opts.kernel) : undefined;
  const L: string[] = [];
  const push = (...lines: string[]) => L.push(...lines);

  // header
  push('// SPDX-License-Identifier: GPL-2.0', '/*');
  push(` * svadiff reproducer${title ? `: ${title}` : ''}`, ' *');
  if (kernel) push(` * Seen on: ${kernel}`);
  for (const n of opts.notes ?? []) push(` * ${commentText(n)}`);
  if (program.comment) push(` * Program: ${commentText(program.comment)}`);
  push(
    ' *',
    ' * Needs uacce.ko and the svadiff test device (guest/module/svadiff_test.c of svadiff), freshly',
    ' * loaded with these parameters (node names and queue ids below assume a fresh load):',
    ' *',
    ` *   rmmod svadiff_test; ${insmodLine(d)}`,
    ' *',
    ' * Build and run as root:',
    ' *',
    ' *   gcc -static -O2 -Wall -o repro repro.c && ./repro',
    ' *',
    ' * Then unload the module (rmmod svadiff_test): some reports only appear then.',
    ' * Exit status: 1 some step did not do what the model expects (the finding reproduced), 0 every',
    ' * checked step did, 2 a setup problem.',
    ' *',
    ' * Steps run one at a time, in this order, each in the task (process) named. A controller',
    ' * process hands each step to its task and checks the outcome, as the svadiff agent does.',
    ' *',
  );
  program.ops.forEach((op, i) => {
    const exp = opts.expected[i];
    push(` * ${String(i).padStart(4)} ${op.task.padEnd(4)} ${commentText(codes[i]!.call)}${exp ? ` -> ${commentText(formatOutcomeSet(exp))}` : ''}`);
  });
  push(' *');
  if (title) push(` * ${REPRO_TITLE_MARKER} ${title}`);
  if (kernel) push(` * ${REPRO_KERNEL_MARKER} ${kernel}`);
  push(' */');

  push(
    '#define _GNU_SOURCE',
    ...[
      'errno.h',
      'fcntl.h',
      'glob.h',
      'poll.h',
      'sched.h',
      'setjmp.h',
      'signal.h',
      'stdint.h',
      'stdio.h',
      'stdlib.h',
      'string.h',
      'time.h',
      'unistd.h',
      'sys/ioctl.h',
      'sys/mman.h',
      'sys/stat.h',
      'sys/syscall.h',
      'sys/sysmacros.h',
      'sys/types.h',
      'sys/wait.h',
    ].map((h) => `#include <${h}>`),
    '',
  );
  const definesAt = L.length;
  push(
    '/* ---- the program ---- */',
    '',
    `#define DEVICES\t\t\t${d.devices}`,
    `#define N_STEPS\t\t\t${program.ops.length}`,
    `#define INSMOD_LINE\t\t${cString(insmodLine(d))}`,
    `enum { ${[...taskNames.map(names.task), 'N_TASKS'].join(', ')} };`,
  );
  if (fdNames.length > 0) push(`enum { ${[...fdNames.map(descConst), 'N_FDS'].join(', ')} };\t/* descriptor names */`);
  if (mapNames.length > 0) push(`enum { ${mapNames.map(names.map).join(', ')} };\t/* mapping names: their slots */`);
  push(...rawIoctlDefines(program));
  push(`static const char *const task_name[N_TASKS] = { ${taskNames.map((t) => cString(t)).join(', ')} };`, '');

  push(RUNTIME_TYPES);
  if (needs.has('fds')) push('static int fds[N_FDS];\t\t\t/* this task\'s descriptor of each name, -1: none */');
  push(RUNTIME_TASK_GLOBALS);
  push(RT_DATAF);
  if (needs.has('mapped')) push(RT_MAPPED);
  if (needs.has('write_file')) push(RT_WRITE_FILE);
  if (needs.has('read_file')) push(RT_READ_FILE);
  if (needs.has('submit')) push(RT_SUBMIT);
  if (needs.has('fork_task')) push(RT_FORK_TASK);

  // do_step
  push(
    '/* ---- the steps, as the task that performs each one does it; 1: this is a new task ---- */',
    '',
    'static int do_step(int s, char *path, struct res *r)',
    '{',
    ...(program.ops.some((o) => o.op === 'poll') ? ['\tstruct pollfd pf;'] : []),
    '\tlong long ret = 0;',
    '\tint e = 0;',
    '',
    ...(codes.some((c) => c.body.some((l) => /\bpath\b/.test(l))) ? [] : ['\t(void)path;\t/* no step of this program uses a path */']),
    '\terrno = 0;',
    '\tswitch (s) {',
  );
  program.ops.forEach((op, i) => {
    const c = codes[i]!;
    push(`\tcase ${i}:\t/* ${op.task}: ${commentText(c.comment)} */`);
    for (const line of c.body) push(`\t\t${line}`);
    if (op.op !== 'exit') push('\t\tbreak;');
  });
  push(
    '\t}',
    '\tr->ret = ret;',
    '\tr->err = ret < 0 ? (e ? e : EIO) : 0;',
    '\treturn 0;',
    '}',
    '',
  );

  push(RT_TASK);
  push('/* ---- the controller: device nodes ---- */', '', rtNodes(needs.has('mknod_path')));
  if (needs.has('node_path')) push(RT_NODE_PATH);
  if (needs.has('mknod_path')) push(RT_MKNOD_PATH);
  if (needs.has('sysfs_path')) push(RT_SYSFS_PATH);

  // resolve
  push('/* What the controller looks up for a step before handing it over (the agent does the same). */', 'static void resolve(int s, char *path)', '{', '\tpath[0] = \'\\0\';');
  const byBody = new Map<string, number[]>();
  codes.forEach((c, i) => {
    if (c.resolve) byBody.set(c.resolve, [...(byBody.get(c.resolve) ?? []), i]);
  });
  if (byBody.size === 0) push('\t(void)s;\t/* no step of this program needs one */');
  else {
    push('\tswitch (s) {');
    for (const [body, steps] of byBody) push(...steps.map((i) => `\tcase ${i}:`), `\t\t${body}`, '\t\tbreak;');
    push('\t}');
  }
  push('}', '');

  // step table
  const maxExpect = Math.max(1, ...opts.expected.map((e) => e?.length ?? 0));
  push(
    '/* ---- what each step is and what the model expects of it ---- */',
    '',
    `#define MAX_EXPECT\t${maxExpect}`,
    '#define V(s)\t\ts, sizeof(s) - 1',
    '',
    'struct step {',
    '\tint task;',
    '\tconst char *call;\t\t/* what it does, for the output */',
    '\tenum value_kind value;\t\t/* what an ok result carries */',
    '\tint deadline_ms;\t\t/* 0: STEP_DEADLINE_MS */',
    '\tint forks;\t\t\t/* fork: the new task (never task 0) */',
    '\tint exit;\t\t\t/* the task ends: done when it is gone */',
    '\tint placed;\t\t\t/* mmap, mremap: the mapping must land at its slot */',
    '\tconst char *what;\t\t/* the call in the title */',
    '\tconst char *expect_text;\t/* the expectation as svadiff prints it, NULL: not checked */',
    '\tconst char *expect_title;\t/* the same as the title names it: kinds, no values */',
    '\tconst char *rules;\t\t/* the model rules behind it */',
    '\tstruct outcome expect[MAX_EXPECT];',
    '};',
    '',
    'static const struct step steps[N_STEPS] = {',
  );
  program.ops.forEach((op, i) => {
    const c = codes[i]!;
    const exp = opts.expected[i];
    const rules = opts.rules?.[i] ?? [];
    const what = titleWhat(op);
    const fields = [
      `.task = ${names.task(op.task)}`,
      `.call = ${cString(c.call)}`,
      `.value = ${c.value}`,
      ...(c.deadline ? [`.deadline_ms = ${c.deadline}`] : []),
      ...(op.op === 'fork' ? [`.forks = ${names.task(op.child)}`] : []),
      ...(op.op === 'exit' ? ['.exit = 1'] : []),
      ...(c.placed ? ['.placed = 1'] : []),
      `.what = ${cString(what)}`,
      ...(exp ? [`.expect_text = ${cString(formatOutcomeSet(exp))}`, `.expect_title = ${cString(titleExpected(formatOutcomeSet(exp)))}`, `.rules = ${cString(rules.slice(0, 2).join(', '))}`, `.expect = { ${exp.map(cOutcome).join(', ')} }`] : []),
    ];
    push(`\t[${i}] = {`);
    // a few fields per line, readable in a mail
    let line = '\t\t';
    for (const f of fields) {
      if (line.length > 2 && line.length + f.length > 96) {
        push(line.trimEnd());
        line = '\t\t';
      }
      line += f + ', ';
    }
    push(line.trimEnd().replace(/,$/, ','), '\t},');
  });
  push('};', '');

  push(RT_CONTROLLER(needs.has('fds'), needs.has('mknod_path'), needs.has('fork_task')));
  push('', `/* ${REPRO_PROGRAM_MARKER}`, embeddedJson(program).trimEnd(), '*/', '');
  // the test device's ABI and the agent's conventions: the parts the file uses
  const defs = definesFor(L.slice(definesAt).join('\n'));
  L.splice(
    definesAt,
    0,
    `/* ---- ${ABI_HEADER} of svadiff: the test device's ABI (the parts used here) ---- */`,
    '',
    ...defs.abi,
    '',
    '/* ---- conventions of the svadiff agent (docs/agent-protocol.md) ---- */',
    '',
    ...defs.agent,
    '',
  );
  return L.join('\n');
}

/** #defines for the raw ioctl numbers of a program (named constants in the file). */
function rawIoctlDefines(program: Program): string[] {
  return rawIoctls(program).map((n) => `#define IOCTL_${hexOff(n).toUpperCase().replace('0X', '0x')}\t${hexOff(n)}u\t/* no command of uacce or the test driver */`);
}

// ---------------------------------------------------------------------------------------------
// The runtime: the same in every reproducer (parts only where a program needs them)

const RUNTIME_TYPES = `/* ---- runtime: results, outcomes (the terms svadiff reports in) ---- */

/* controller -> task: which step, and the path the controller resolved for it */
#define PATH_LEN	200

struct cmd {
	int step;
	char path[PATH_LEN];
};

/* task -> controller: what the step did (a pipe write of less than PIPE_BUF is atomic) */
struct res {
	int step;
	long long ret;		/* the call's return value (mmap, mremap: 0 or -1) */
	int err;		/* its errno, 0 on success */
	int sig;		/* SIGSEGV or SIGBUS raised during the step, 0 if none */
	int child;		/* fork: the new task's pid */
	uint64_t addr, want;	/* mmap, mremap: where the mapping went, where it should be */
	unsigned int len;
	char data[DATA_MAX];	/* what the step read, or the path it opened */
};

enum value_kind { VALUE_NONE, VALUE_DATA, VALUE_RETURN };
enum outcome_kind { NONE, OK, OK_VALUE, ERRNO, SIGNAL, DIED, HANG };

/* ok, ok(value), an errno name, SIGSEGV/SIGBUS, died(SIG...), hang */
struct outcome {
	enum outcome_kind kind;
	const char *text;
	size_t len;
};
`;

const RUNTIME_TASK_GLOBALS = `static int me;				/* the task this process is */
static int cmd_pipe[N_TASKS][2];	/* controller -> task */
static int res_pipe[2];			/* tasks -> controller */
static sigjmp_buf fault_env;
static volatile sig_atomic_t in_step, fault_sig;
`;

const RT_DATAF = `#define DATAF(r, ...)	((r)->len = (unsigned int)snprintf((r)->data, DATA_MAX, __VA_ARGS__))
`;

const RT_MAPPED = `/* mmap, mremap: 0 or -1, and where the mapping went (it must be its slot) */
static long long mapped(struct res *r, void *got, uint64_t want)
{
	r->want = want;
	if (got == MAP_FAILED)
		return -1;
	r->addr = (uintptr_t)got;
	return 0;
}
`;

const RT_WRITE_FILE = `static long long write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;
	int e;

	if (fd < 0)
		return -1;
	n = write(fd, s, strlen(s));
	e = errno;
	close(fd);
	errno = e;
	return n;
}
`;

const RT_READ_FILE = `/* one read(2) of at most DATA_MAX bytes, as the agent reads sysfs files */
static long long read_file(struct res *r, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	int e;

	if (fd < 0)
		return -1;
	n = read(fd, r->data, DATA_MAX);
	e = errno;
	close(fd);
	errno = e;
	if (n > 0)
		r->len = (unsigned int)n;
	return n;
}
`;

const RT_SUBMIT = `/*
 * One work item through a queue's mappings, as the agent does it: read the tail from the
 * doorbell, write the descriptor at ring slot tail % SVT_RING_SLOTS, ring the doorbell with
 * tail + 1, wait until the completion count passes it (at most SUBMIT_WAIT_US), then with ack
 * write the count to ACK. 0 if it completed, else -1 with ETIMEDOUT; data: how it ended.
 */
static long long submit(struct res *r, uint64_t mmio_at, uint64_t dus_at, uint32_t opcode, uint64_t addr,
			uint64_t value, int ack)
{
	volatile uint32_t *mmio = (volatile uint32_t *)(uintptr_t)mmio_at;
	volatile uint8_t *desc;
	struct timespec t0, t1;
	uint32_t tail, status;
	int done = 0;

	tail = mmio[SVT_REG_DOORBELL / 4];
	desc = (volatile uint8_t *)(uintptr_t)dus_at + (tail % SVT_RING_SLOTS) * SVT_DESC_SIZE;
	*(volatile uint32_t *)(desc + SVT_DESC_OPCODE) = opcode;
	*(volatile uint32_t *)(desc + SVT_DESC_STATUS) = SVT_STATUS_PENDING;
	*(volatile uint64_t *)(desc + SVT_DESC_ADDR) = addr;
	*(volatile uint64_t *)(desc + SVT_DESC_VALUE) = value;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);	/* descriptor before doorbell */
	mmio[SVT_REG_DOORBELL / 4] = tail + 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if ((int32_t)(mmio[SVT_REG_CQ_HEAD / 4] - (tail + 1)) >= 0) {
			done = 1;
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if ((t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000 >= SUBMIT_WAIT_US)
			break;
		usleep(SUBMIT_POLL_US);
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);	/* completion before the descriptor's status */
	if (done && ack)
		mmio[SVT_REG_ACK / 4] = mmio[SVT_REG_CQ_HEAD / 4];
	status = *(volatile uint32_t *)(desc + SVT_DESC_STATUS);
	if (status == SVT_STATUS_OK && opcode == SVT_OP_READ64)
		DATAF(r, "done 0x%llx", (unsigned long long)*(volatile uint64_t *)(desc + SVT_DESC_RESULT));
	else if (status == SVT_STATUS_OK)
		DATAF(r, "done");
	else if (status == SVT_STATUS_FAULT)
		DATAF(r, "fault");
	else if (status == SVT_STATUS_BADOP)
		DATAF(r, "badop");
	else
		DATAF(r, "status %u", status);
	if (done)
		return 0;
	errno = ETIMEDOUT;
	return -1;
}
`;

const RT_FORK_TASK = `/*
 * fork(2), except that the new task's parent is the controller (CLONE_PARENT), which can then
 * wait for it like for every task; the svadiff agent creates its tasks the same way.
 */
static pid_t fork_task(void)
{
	return (pid_t)syscall(SYS_clone, (unsigned long)(CLONE_PARENT | SIGCHLD), 0UL, 0UL, 0UL, 0UL);
}
`;

const RT_TASK = `/* ---- tasks ---- */

/* SIGSEGV or SIGBUS during a step is its outcome; the task goes on */
static void on_fault(int sig)
{
	if (in_step) {
		in_step = 0;
		fault_sig = sig;
		siglongjmp(fault_env, 1);
	}
	signal(sig, SIG_DFL);	/* a fault outside a step: die of it */
}

/* A task: run each step the controller hands over, send back its result. */
static void task_loop(void)
{
	static struct cmd c;
	static struct res r;

	for (;;) {
		if (read(cmd_pipe[me][0], &c, sizeof(c)) != (ssize_t)sizeof(c))
			_exit(0);	/* the controller is done */
		memset(&r, 0, sizeof(r));
		r.step = c.step;
		if (sigsetjmp(fault_env, 1) == 0) {
			in_step = 1;
			if (do_step(c.step, c.path, &r)) {
				in_step = 0;
				continue;	/* a new task: wait for its first step */
			}
			in_step = 0;
		} else {
			r.ret = -1;
			r.err = 0;
			r.sig = fault_sig;
		}
		if (write(res_pipe[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
			_exit(4);
	}
}
`;

/**
 * Device nodes, as the agent finds them (guest/agent/agent.c scan_node): device dev's uacce
 * class entry is the one named svt<dev>-<id> (the first by name if ever two: glob sorts, in
 * the C locale as strcmp); a removed device keeps the last name seen, a device never seen is
 * svt<dev>-none (ENOENT). With mknod, also its major:minor.
 */
function rtNodes(devt: boolean): string {
  return `static char node[DEVICES][128];	/* each device's uacce class entry: the current or last seen */
${devt ? 'static dev_t devt[DEVICES];\t\t/* and its major:minor */\nstatic int have_devt[DEVICES];\n' : ''}
/* Device dev's class entry, svt<dev>-<id>: 1 if it is there now. */
static int scan_node(int dev)
{
	char p[300];
	glob_t g;
	int now;
${devt ? '\tunsigned int ma, mi;\n\tFILE *f;\n' : ''}
	snprintf(p, sizeof(p), UACCE_CLASS "/" SVT_UACCE_NAME_FMT "-*", dev);
	now = glob(p, 0, NULL, &g) == 0;
	if (now)
		snprintf(node[dev], sizeof(node[dev]), "%s", strrchr(g.gl_pathv[0], '/') + 1);
	else if (!node[dev][0])
		snprintf(node[dev], sizeof(node[dev]), SVT_UACCE_NAME_FMT "-none", dev);	/* never seen: ENOENT */
	globfree(&g);
${
  devt
    ? `	snprintf(p, sizeof(p), UACCE_CLASS "/%s/dev", node[dev]);
	f = now ? fopen(p, "re") : NULL;
	if (f && fscanf(f, "%u:%u", &ma, &mi) == 2) {
		devt[dev] = makedev(ma, mi);
		have_devt[dev] = 1;
	}
	if (f)
		fclose(f);
`
    : ''
}	return now;
}
`;
}

const RT_NODE_PATH = `static void node_path(int dev, char *path)
{
	scan_node(dev);
	snprintf(path, PATH_LEN, "/dev/%s", node[dev]);
}
`;

const RT_MKNOD_PATH = `static int mknod_done[DEVICES];

/* a second node of the device, made once (from the current or last seen major:minor) */
static void mknod_path(int dev, char *path)
{
	scan_node(dev);
	snprintf(path, PATH_LEN, "/tmp/" SVT_UACCE_NAME_FMT ".node", dev);
	if (!mknod_done[dev] && have_devt[dev]) {
		unlink(path);
		if (mknod(path, S_IFCHR | 0600, devt[dev]) == 0)
			mknod_done[dev] = 1;
	}
}
`;

const RT_SYSFS_PATH = `static void sysfs_path(int dev, const char *attr, char *path)
{
	scan_node(dev);
	snprintf(path, PATH_LEN, UACCE_CLASS "/%s/%s", node[dev], attr);
}
`;

/** Items joined with ", ", wrapped at about 96 columns, each line indented by a tab. */
function wrapList(items: readonly string[]): string {
  const lines: string[] = [];
  let line = '\t';
  for (const e of items) {
    if (line.length > 1 && line.length + e.length > 96) {
      lines.push(line.trimEnd());
      line = '\t';
    }
    line += e + ', ';
  }
  lines.push(line.trimEnd());
  return lines.join('\n');
}

/**
 * errno (and signal) names as svadiff writes them (harness/program/errno.ts), and a lookup:
 * ERRNO_NAME(v), SIGNAL_NAME(v); with lookup false only the errno table (the caller looks up).
 */
function rtNames(signals: boolean, lookup = true): string {
  return `/* errno ${signals ? 'and signal ' : ''}names as svadiff writes them (harness/program/errno.ts), else errno<N>${signals ? ', SIG<N>' : ''} */
#define NAME(x)	[x] = #x
static const char *const errno_names[] = {
${wrapList(Object.values(ERRNO_NAMES).map((n) => `NAME(${n})`))}
};
${
  signals
    ? `static const char *const signal_names[] = {
${wrapList(Object.values(SIGNAL_NAMES).map((n) => `NAME(${n})`))}
};
`
    : ''
}${
  lookup
    ? `#define ERRNO_NAME(v)	name_of(errno_names, sizeof(errno_names) / sizeof(*errno_names), v, "errno%d")
${signals ? '#define SIGNAL_NAME(v)\tname_of(signal_names, sizeof(signal_names) / sizeof(*signal_names), v, "SIG%d")\n' : ''}
static const char *name_of(const char *const *names, size_t n, int v, const char *fmt)
{
	static char buf[32];

	if (v > 0 && (size_t)v < n && names[v])
		return names[v];
	snprintf(buf, sizeof(buf), fmt, v);
	return buf;
}
`
    : ''
}`;
}

/** The setup check: root, every device's node, the module parameters of INSMOD_LINE. */
const RT_CHECK_SETUP = `/* The test device must be there, loaded with the parameters of INSMOD_LINE; we must be root. */
static int check_setup(void)
{
	char want[] = INSMOD_LINE, *kv, p[300], got[160], msg[512] = "";
	FILE *f;
	int dev, n;

	if (geteuid() != 0) {
		printf("SETUP PROBLEM: run as root (device nodes, sysfs and the driver's bind files are root's)\\n");
		return -1;
	}
	for (dev = 0; dev < DEVICES && !msg[0]; dev++) {
		if (!scan_node(dev))
			snprintf(msg, sizeof(msg), "no uacce device " UACCE_CLASS "/" SVT_UACCE_NAME_FMT "-*", dev);
		else if (snprintf(p, sizeof(p), "/dev/%s", node[dev]) > 0 && access(p, F_OK) != 0)
			snprintf(msg, sizeof(msg), "no device node %s", p);
	}
	for (kv = strtok(want, " "); kv && !msg[0]; kv = strtok(NULL, " ")) {	/* name=value */
		n = (int)strcspn(kv, "=");
		snprintf(p, sizeof(p), MODULE_PARAMS "/%.*s", n, kv);
		if (!kv[n] || !(f = fopen(p, "re")))
			continue;	/* not a parameter ("insmod"), or not shown: cannot check */
		got[fgets(got, sizeof(got), f) ? strcspn(got, "\\n") : 0] = '\\0';
		fclose(f);
		if (strcmp(got, kv + n + 1) != 0)
			snprintf(msg, sizeof(msg), "the test module was loaded with %.*s=%s, this reproducer needs %s", n, kv, got, kv);
	}
	if (msg[0])
		printf("SETUP PROBLEM: %s\\nload the test device first, with these parameters (uacce.ko before it):\\n"
		       "  rmmod svadiff_test; " INSMOD_LINE "\\n", msg);
	return msg[0] ? -1 : 0;
}
`;

const RT_CONTROLLER = (hasFds: boolean, hasMknod: boolean, hasFork: boolean) => `/* ---- the controller: running the steps, checking outcomes ---- */

${rtNames(true)}
static pid_t pid_of[N_TASKS];	/* 0: not created (yet), -1: gone */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* has task t ended? (it is the controller's child: reap it) */
static int task_gone(int t, int *status)
{
	if (pid_of[t] > 0 && waitpid(pid_of[t], status, WNOHANG) == pid_of[t])
		pid_of[t] = -1;
	return pid_of[t] <= 0;
}

static int deadline_of(int s)
{
	return steps[s].deadline_ms ? steps[s].deadline_ms : STEP_DEADLINE_MS;
}

/* Hand step s to its task and wait for its result, the task's end, or the deadline (hang). */
static enum outcome_kind run_step(int s, struct res *r, int *status)
{
	const struct step *st = &steps[s];
	struct cmd c;
	long long deadline;

	memset(r, 0, sizeof(*r));
	memset(&c, 0, sizeof(c));
	*status = 0;
	if (task_gone(st->task, status)) {
		r->ret = -1;	/* a step of a task that is gone: ESRCH, as the agent answers */
		r->err = ESRCH;
		return NONE;
	}
	c.step = s;
	resolve(s, c.path);
	if (write(cmd_pipe[st->task][1], &c, sizeof(c)) != (ssize_t)sizeof(c)) {
		/* the task is gone: the loop below sees it */
	}
	deadline = now_ms() + deadline_of(s);
	for (;;) {
		struct pollfd pf = { .fd = res_pipe[0], .events = POLLIN };

		if (poll(&pf, 1, 10) > 0 && read(res_pipe[0], r, sizeof(*r)) == (ssize_t)sizeof(*r) && r->step == s)
			return NONE;
		if (task_gone(st->task, status)) {
			/* a result written just before the task ended still counts */
			if (read(res_pipe[0], r, sizeof(*r)) == (ssize_t)sizeof(*r) && r->step == s)
				return NONE;
			return DIED;	/* the exit step ends here too */
		}
		if (now_ms() >= deadline)
			return HANG;
	}
}

/* The outcome of step s in svadiff's terms (harness/agent/observe.ts). */
static struct outcome observe(int s, enum outcome_kind end, int status, const struct res *r, char *buf, size_t n)
{
	struct outcome o = { OK, "", 0 };

	if (end == HANG) {
		o.kind = HANG;
	} else if (end == DIED && steps[s].exit && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		o.kind = OK;	/* the exit step: the task is gone */
	} else if (end == DIED) {
		o.kind = DIED;
		o.text = SIGNAL_NAME(WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	} else if (r->sig != 0) {
		o.kind = SIGNAL;
		o.text = SIGNAL_NAME(r->sig);
	} else if (r->ret < 0) {
		o.kind = ERRNO;
		o.text = ERRNO_NAME(r->err);
	} else if (steps[s].value == VALUE_DATA) {
		o.kind = OK_VALUE;
		memcpy(buf, r->data, r->len < n ? r->len : n);
		o.text = buf;
		o.len = r->len < n ? r->len : n;
		return o;
	} else if (steps[s].value == VALUE_RETURN) {
		o.kind = OK_VALUE;
		snprintf(buf, n, "%lld", r->ret);
		o.text = buf;
	}
	o.len = strlen(o.text);
	return o;
}

static int matches(const struct outcome *want, const struct outcome *got)
{
	if (want->kind == OK)	/* the model says nothing about the value */
		return got->kind == OK || got->kind == OK_VALUE;
	return want->kind == got->kind && want->len == got->len && memcmp(want->text, got->text, got->len) == 0;
}

/* A value as svadiff prints it: plain, or quoted like JSON when it has other characters. */
static void print_value(FILE *f, const char *s, size_t n)
{
	size_t i;
	int plain = 1;

	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c && strchr("_.: -", c))))
			plain = 0;
		if (c == ' ' && i + 1 < n && s[i + 1] == ' ')
			plain = 0;
	}
	if (plain) {
		fwrite(s, 1, n, f);
		return;
	}
	fputc('"', f);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\\\')
			fprintf(f, "\\\\%c", c);
		else if (c == '\\n')
			fputs("\\\\n", f);
		else if (c == '\\t')
			fputs("\\\\t", f);
		else if (c == '\\r')
			fputs("\\\\r", f);
		else if (c == '\\b')
			fputs("\\\\b", f);
		else if (c == '\\f')
			fputs("\\\\f", f);
		else if (c < 0x20)
			fprintf(f, "\\\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void print_outcome(FILE *f, const struct outcome *o)
{
	switch (o->kind) {
	case OK_VALUE:
		fputs("ok(", f);
		print_value(f, o->text, o->len);
		fputc(')', f);
		break;
	case ERRNO:
	case SIGNAL:
		fwrite(o->text, 1, o->len, f);
		break;
	case DIED:
		fprintf(f, "died(%.*s)", (int)o->len, o->text);
		break;
	case HANG:
		fputs("hang", f);
		break;
	default:
		fputs("ok", f);
		break;
	}
}

/*
 * The finding's title as svadiff writes it: "touch: expected SIGBUS, got ok [touch.zombie]".
 * Kinds only (ok, errno, signal): the values an ok carries vary between runs.
 */
static void print_title(int s, const struct outcome *got)
{
	int k, ok_expected = 0;

	for (k = 0; k < MAX_EXPECT && steps[s].expect[k].kind != NONE; k++)
		ok_expected |= steps[s].expect[k].kind == OK || steps[s].expect[k].kind == OK_VALUE;
	printf("${REPRO_FINDING_PREFIX}%s: expected %s, got ", steps[s].what, steps[s].expect_title);
	if (got->kind == OK || got->kind == OK_VALUE)
		fputs(ok_expected ? "ok (another value)" : "ok", stdout);
	else
		print_outcome(stdout, got);
	printf(" [%s]\\n", steps[s].rules);
}

${RT_CHECK_SETUP}
/* Task 0: a fresh process with every command pipe and the result pipe (as the agent's). */
static int start_tasks(void)
{
	struct sigaction sa;
	pid_t pid;
	int t;

	for (t = 0; t < N_TASKS; t++)
		if (pipe2(cmd_pipe[t], O_CLOEXEC) != 0)
			return -1;
	if (pipe2(res_pipe, O_CLOEXEC) != 0)
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		for (t = 0; t < N_TASKS; t++)
			close(cmd_pipe[t][1]);
		close(res_pipe[0]);
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_fault;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGSEGV, &sa, NULL);
		sigaction(SIGBUS, &sa, NULL);
${hasFds ? '\t\tfor (t = 0; t < N_FDS; t++)\n\t\t\tfds[t] = -1;\n' : ''}\t\tme = 0;
		task_loop();
		_exit(0);
	}
	pid_of[0] = pid;
	for (t = 0; t < N_TASKS; t++)
		close(cmd_pipe[t][0]);
	close(res_pipe[1]);
	fcntl(res_pipe[0], F_SETFL, O_NONBLOCK);
	return 0;
}

/* The end, as the agent's: SIGKILL every task left and wait until they are gone. */
static void end_tasks(void)
{
	long long end = now_ms() + KILL_DEADLINE_MS;
	int t, status, left;

	for (t = 0; t < N_TASKS; t++)
		if (pid_of[t] > 0)
			kill(pid_of[t], SIGKILL);
	do {
		left = 0;
		for (t = 0; t < N_TASKS; t++)
			left += !task_gone(t, &status);
		if (left)
			usleep(10000);
	} while (left && now_ms() < end);
	if (left)
		printf("note: %d task(s) did not die within %d ms of SIGKILL (stuck in the kernel)\\n", left, KILL_DEADLINE_MS);
${
  hasMknod
    ? `	for (t = 0; t < DEVICES; t++) {
		char p[64];

		if (mknod_done[t]) {
			snprintf(p, sizeof(p), "/tmp/" SVT_UACCE_NAME_FMT ".node", t);
			unlink(p);
		}
	}
`
    : ''
}}

int main(int argc, char **argv)
{
	static struct res r;
	char buf[2 * DATA_MAX];
	int s, k, status, checked = 0, diverged = -1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);	/* as in the agent, whose tasks inherit it */
	/* --no-setup-check: run without the test device (svadiff's tests compare with its agent) */
	if (!(argc > 1 && strcmp(argv[1], "--no-setup-check") == 0) && check_setup() != 0)
		return 2;
	if (start_tasks() != 0) {
		printf("SETUP PROBLEM: cannot start task 0: %s\\n", strerror(errno));
		return 2;
	}
	for (s = 0; s < N_STEPS; s++) {
		const struct step *st = &steps[s];
		enum outcome_kind end = run_step(s, &r, &status);
		struct outcome got = observe(s, end, status, &r, buf, sizeof(buf));
		int ok = 0;

		if (end == NONE && st->placed && r.ret == 0 && r.addr != r.want) {
			printf("step %d (%s): %s landed at 0x%llx, not at its slot 0x%llx\\n", s, task_name[st->task], st->call,
			       (unsigned long long)r.addr, (unsigned long long)r.want);
			printf("SETUP PROBLEM: the address plan of the program does not hold here (not a kernel finding)\\n");
			end_tasks();
			return 2;
		}
${
  hasFork
    ? `		if (end == NONE && st->forks && r.ret == 0)
			pid_of[st->forks] = r.child;	/* the controller's child (CLONE_PARENT) */
`
    : ''
}		printf("step %d (%s): %s = ", s, task_name[st->task], st->call);
		print_outcome(stdout, &got);
		if (diverged >= 0 || !st->expect_text) {
			printf(" (%s)\\n", diverged >= 0 ? "not checked: an earlier step diverged" : "not checked");
		} else {
			for (k = 0; k < MAX_EXPECT && st->expect[k].kind != NONE; k++)
				ok |= matches(&st->expect[k], &got);
			printf(" (expected %s)%s\\n", st->expect_text, ok ? "" : "  <-- DIVERGES");
			checked++;
			if (!ok) {
				diverged = s;
				printf("RESULT: step %d did not do what the model expects: the kernel diverged\\n", s);
				if (got.kind == HANG)
					printf("${REPRO_FINDING_PREFIX}hang: %s did not return\\n", st->what);
				else
					print_title(s, &got);
			}
		}
		if (end == HANG) {
			printf("step %d did not finish within %d ms: stopping here\\n", s, deadline_of(s));
			break;
		}
	}
	end_tasks();
	if (diverged >= 0)
		return 1;
	printf("RESULT: every checked step (%d of %d) did what the model expects\\n", checked, N_STEPS);
	return 0;
}`;

// ---------------------------------------------------------------------------------------------
// The compact form: main() is the program

/** Columns of a line as an editor with 8-column tabs shows it. */
function columns(line: string): number {
  let n = 0;
  for (const ch of line) n = ch === '\t' ? n - (n % 8) + 8 : n + 1;
  return n;
}

/** `head(args);` on one line, or wrapped after an argument where it would pass 100 columns. */
function callLines(indent: string, head: string, args: readonly string[]): string[] {
  const cont = indent + ' '.repeat(head.length + 1);
  const lines: string[] = [];
  let line = `${indent}${head}(`;
  args.forEach((a, i) => {
    const piece = a + (i === args.length - 1 ? ');' : ',');
    if (i > 0 && columns(`${line} ${piece}`) > 100) {
      lines.push(line);
      line = cont + piece;
    } else {
      line += (i > 0 ? ' ' : '') + piece;
    }
  });
  lines.push(line);
  return lines;
}

/** A C comment of one line, or of several (net style: text right after the opening) within 100 columns. */
function commentLines(indent: string, text: string): string[] {
  const out: string[] = [];
  let line = `${indent}/*`;
  for (const word of text.split(' ')) {
    if (columns(`${line} ${word}`) > 97 && line !== `${indent}/*` && line !== `${indent} *`) {
      out.push(line);
      line = `${indent} *`;
    }
    line += ` ${word}`;
  }
  out.push(`${line} */`);
  return out;
}

/** Prototypes of the functions a piece of C defines ("static ... name(...)" lines before "{"). */
function prototypes(code: string): string[] {
  const out: string[] = [];
  const lines = code.split('\n');
  lines.forEach((l, i) => {
    if (l !== '{' || i === 0) return;
    let j = i - 1;
    while (j > 0 && !lines[j]!.startsWith('static ')) j--;
    if (lines[j]!.startsWith('static ') && lines[j]!.includes('(')) out.push(...lines.slice(j, i - 1), lines[i - 1]! + ';');
  });
  return out;
}

/** A divergence title whose observed outcome is an ordinary one (not died, not a hang). */
const PLAIN_DIVERGENCE_RE = /^.+?: expected .+, got (?!died\()\S.* \[[^\]]*\]$/;

/**
 * Whether a compact reproducer watches its task from a parent process: always, except for a
 * finding that is an ordinary divergence (the step returns, the task lives on). The watcher
 * reports a step that does not return (hang), a task killed during a step (died), and ends the
 * task within a deadline, so that a task stuck in the kernel as it exits (an oops while its
 * files are released) does not hold the run up until the agent's timeout.
 */
function compactWatches(opts: ReproOptions): boolean {
  return opts.watch ?? !(opts.title !== undefined && PLAIN_DIVERGENCE_RE.test(opts.title));
}

/**
 * The compact form of a one-task program: a straight-line main(), one block per step, each
 * checked right after it. Only what the program uses is in the file.
 */
function generateCompactC(program: Program, opts: ReproOptions): string {
  const slots = slotTable(program);
  const fdNames = [...slots.fds.entries()].sort((a, b) => a[1] - b[1]).map(([name]) => name);
  const mapNames = [...slots.maps.entries()].sort((a, b) => a[1] - b[1]).map(([name]) => name);
  const names = COMPACT_NAMES;
  const origin = mapOrigins(program);
  const codes = program.ops.map((op) => stepCode(op, names, origin));
  const needs = new Set<Need>(codes.flatMap((c) => c.needs));
  const has = (k: Op['op']) => program.ops.some((op) => op.op === k);
  const watch = compactWatches(opts);
  const faults = needs.has('faults');
  const usesPath = codes.some((c) => c.resolve !== undefined || c.body.some((l) => /\bpath\b/.test(l)));
  const d = program.device;
  const title = opts.title !== undefined ? commentText(opts.title) : undefined;
  const kernel = opts.kernel !== undefined ? commentText(opts.kernel) : undefined;
  // the longest expected set as report() prints it
  const expectLen = Math.max(64, ...opts.expected.map((e) => (e ? formatOutcomeSet(e).length + 1 : 0)));
  const mknodDevs = [...new Set(program.ops.flatMap((op) => (op.op === 'open' && op.via === 'mknod' ? [op.dev] : [])))].sort((a, b) => a - b);
  // the helpers of the ops, and of running the steps; main comes before them (prototypes)
  const opHelpers: string[] = [];
  if (needs.has('node_path')) opHelpers.push(RT_NODE_PATH);
  if (needs.has('mknod_path')) opHelpers.push(RT_MKNOD_PATH);
  if (needs.has('sysfs_path')) opHelpers.push(RT_SYSFS_PATH);
  if (needs.has('mapped')) opHelpers.push(RT_MAPPED);
  if (needs.has('write_file')) opHelpers.push(RT_WRITE_FILE);
  if (needs.has('read_file')) opHelpers.push(RT_READ_FILE);
  if (needs.has('submit')) opHelpers.push(RT_SUBMIT);
  const begin = RT_BEGIN(watch);
  const check = rtCheck(needs.has('mapped'), faults, has('sysfs_read'), watch);
  const verdict = rtVerdict(mknodDevs, program.ops.length);
  const startTask = watch ? rtStartTask(faults) : '';
  const runHelpers = [begin, check, ...(watch ? [verdict, RT_WATCH, startTask] : []), RT_CHECK_SETUP];
  const mainCalls = [...opHelpers, ...(faults && !watch ? [RT_ON_FAULT] : []), begin, check, ...(watch ? [startTask] : []), RT_CHECK_SETUP];
  const L: string[] = [];
  const push = (...lines: string[]) => L.push(...lines);

  push('// SPDX-License-Identifier: GPL-2.0', '/*', ' * svadiff reproducer');
  if (title) push(` * ${REPRO_TITLE_MARKER} ${title}`);
  if (kernel) push(` * ${REPRO_KERNEL_MARKER} ${kernel}`);
  for (const n of opts.notes ?? []) push(` * ${commentText(n)}`);
  if (program.comment) push(` * Program: ${commentText(program.comment)}`);
  push(
    ' *',
    ' * Needs uacce.ko and the svadiff test device (guest/module/svadiff_test.c of svadiff), loaded',
    ' * fresh with these parameters (node names and queue ids assume it); then, as root:',
    ` *   rmmod svadiff_test; ${insmodLine(d)}`,
    ' *   gcc -static -O2 -Wall -o repro repro.c && ./repro; rmmod svadiff_test',
    ' * Some reports only appear at rmmod. Exit status: 1 a step did not do what the model expects',
    ` * (the finding reproduced), 0 every checked step did, 2 a setup problem.${watch ? ' The steps run in' : ''}`,
    ...(watch ? [' * a child process, task t0, as in the svadiff agent; the parent watches it (hangs, deaths).'] : []),
    ' */',
    '#define _GNU_SOURCE',
  );
  const headers = [
    'errno.h',
    'fcntl.h',
    'glob.h',
    ...(faults ? ['setjmp.h'] : []),
    ...(has('poll') ? ['poll.h'] : []),
    'signal.h',
    'stdint.h',
    'stdio.h',
    'stdlib.h',
    'string.h',
    ...(watch || has('submit') ? ['time.h'] : []),
    'unistd.h',
    ...(has('ioctl') ? ['sys/ioctl.h'] : []),
    'sys/mman.h',
    ...(needs.has('mknod_path') ? ['sys/stat.h', 'sys/sysmacros.h'] : []),
    ...(watch ? ['sys/wait.h'] : []),
  ];
  push(...headers.map((h) => `#include <${h}>`), '');
  const definesAt = L.length;
  push(`#define DEVICES\t\t\t${d.devices}`, `#define INSMOD_LINE\t\t${cString(insmodLine(d))}`, ...rawIoctlDefines(program));
  if (!has('sysfs_read')) push('#define PLAIN_CHARS\t\t"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.: -"');
  if (fdNames.length > 0) {
    push(...wrapList(fdNames.map((f) => `${names.fd(f)} = -1`)).replace(/^\t/, 'static int ').replace(/,$/, ';\t/* descriptors */').split('\n'));
  }
  if (mapNames.length > 0) push(`enum { ${mapNames.map(names.map).join(', ')} };\t/* mappings, at SLOT(map_<name>) */`);

  push(
    '',
    '/* ---- the steps: STEP() says what each is, check() prints its outcome and checks it ---- */',
    '',
    'enum value_kind { VALUE_NONE, VALUE_DATA, VALUE_RETURN };\t/* what an ok outcome shows */',
    '/* a step: the call, its name and the model\'s rules (for the title), the outcomes the model allows */',
    'struct step { int n; const char *call, *what, *rules, *const *expect; };',
    '#define STEP(n, call, what, rules, ...) do {\t\t\t\t\t\t\\',
    '\tstatic const char *const expect_[] = { __VA_ARGS__, NULL };\t\t\t\\',
    '\tstatic const struct step step_ = { n, call, what, rules, expect_ };\t\t\\',
    '\tbegin(&step_);\t\t\t\t\t\t\t\t\t\\',
    '} while (0)',
    '',
    '/* What a step did besides its return value (ret) and errno (e). */',
    'static struct res {',
    ...(faults ? ['\tint sig;\t\t/* SIGSEGV or SIGBUS raised during the step, 0 if none */'] : []),
    ...(needs.has('mapped') ? ['\tuint64_t addr, want;\t/* mmap, mremap: where the mapping went, where it should be */'] : []),
    '\tunsigned int len;',
    '\tchar data[DATA_MAX];\t/* what the step read, or the path it opened */',
    '} res, *const r = &res;',
    'static long long ret;',
    'static int e;',
    ...(usesPath ? ['static char path[PATH_LEN];\t/* the path a step opens */'] : []),
    ...(has('poll') ? ['static struct pollfd pf;'] : []),
    ...(faults ? ['static sigjmp_buf fault;\t/* where a fault during a touch or submit goes */', 'static volatile sig_atomic_t catching;'] : []),
    RT_DATAF.trimEnd(),
    rtRun(watch),
    ...prototypes(mainCalls.join('\n')),
    '',
    'int main(int argc, char **argv)',
    '{',
    '\tsetvbuf(stdout, NULL, _IOLBF, 0);',
    '\tsignal(SIGPIPE, SIG_IGN);\t/* as in the agent, whose tasks inherit it */',
    '\t/* --no-setup-check: run without the test device (svadiff\'s tests compare with its agent) */',
    '\tif (!(argc > 1 && strcmp(argv[1], "--no-setup-check") == 0) && check_setup() != 0)',
    '\t\treturn 2;',
  );
  if (watch) push('\tstart_task();\t/* from here on this is t0, a child process; the parent watches it */');
  else if (faults) push(...FAULT_HANDLERS.map((l) => `\t${l}`));
  program.ops.forEach((op, i) => {
    const c = codes[i]!;
    const exp = opts.expected[i];
    const rules = (opts.rules?.[i] ?? []).slice(0, 2).join(', ');
    push('', ...commentLines('\t', commentText(c.comment)));
    push(...callLines('\t', 'STEP', [String(i), cString(c.call), cString(titleWhat(op)), cString(rules), ...(exp ? exp.map((o) => cString(formatOutcome(o))) : ['NULL'])]));
    if (watch && c.deadline) push(`\trun->ms = ${c.deadline};`);
    if (c.resolve) push(`\t${c.resolve}`);
    if (c.faults) push('\tif (sigsetjmp(fault, 1) == 0) {', '\t\tcatching = 1;', ...c.body.map((l) => `\t\t${l}`), '\t}', '\tcatching = 0;');
    else push(...c.body.map((l) => `\t${l}`));
    push(`\tcheck(${c.value});`);
  });
  if (watch) push('', '\trun->done = 1;\t/* the parent ends t0 (SIGKILL, as the agent ends its tasks) and gives the verdict */', '\tfor (;;)', '\t\tpause();', '}');
  else {
    push('', ...mknodDevs.map((dev) => `\tunlink(${cString(`/tmp/svt${dev}.node`)});\t/* made by mknod_path */`));
    push('\tif (run->diverged)', '\t\treturn 1;', `\tprintf("RESULT: every checked step (%d of ${program.ops.length}) did what the model expects\\n", run->checked);`, '\treturn 0;', '}');
  }

  // svadiff's part, after main: each function after the ones it calls
  push('', "/* ---- svadiff's helpers: finding the device, checking outcomes (the reproducer is main) ---- */", '');
  push(rtNames(faults || watch, faults || watch));
  if (watch) push(RT_NOW_MS);
  push(rtNodes(needs.has('mknod_path')), ...opHelpers);
  if (faults) push(RT_ON_FAULT);
  if (has('sysfs_read')) push(RT_OK_VALUE_ESCAPED);
  push(rtReport(expectLen), runHelpers.join('\n'));
  push(`/* ${REPRO_PROGRAM_MARKER}`, embeddedJsonCompact(program), '*/', '');

  const defs = definesFor(L.slice(definesAt).join('\n'));
  L.splice(definesAt, 0, `/* ${ABI_HEADER} of svadiff (the test device's ABI) and its agent's conventions */`, ...defs.abi, ...defs.agent);
  return L.join('\n');
}

/** The run so far: with a watcher, in a page shared with the parent. */
function rtRun(watch: boolean): string {
  return `/* The run so far${watch ? ' (shared with the parent, which watches t0)' : ''}. */
static struct run {
	const struct step *step;	/* the step running or last run${watch ? ' (static: the same in both processes)' : ''} */
	int checked, diverged;
${watch ? '\tint running, ms, done;\t\t/* ms: the running step\'s deadline */\n\tlong long started;\n' : ''}} run0, *run = &run0;
`;
}

const RT_NOW_MS = `static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
`;

const FAULT_HANDLERS = [
  'sigaction(SIGSEGV, &(struct sigaction){ .sa_handler = on_fault }, NULL);',
  'sigaction(SIGBUS, &(struct sigaction){ .sa_handler = on_fault }, NULL);',
];

const RT_ON_FAULT = `/* SIGSEGV or SIGBUS during a touch or submit is its outcome; t0 goes on */
static void on_fault(int sig)
{
	if (catching) {
		catching = 0;
		r->sig = sig;
		siglongjmp(fault, 1);
	}
	signal(sig, SIG_DFL);	/* a fault anywhere else: die of it */
}
`;

const RT_OK_VALUE_ESCAPED = `/* ok(value): plain, or quoted like JSON when it has other characters (harness/program/outcome.ts) */
static void ok_value(char *out, const char *s, unsigned int n)
{
	static const char esc[] = "\\"\\\\\\n\\t\\r\\b\\f", letter[] = "\\"\\\\ntrbf";
	unsigned int i;
	int plain = !memmem(s, n, "  ", 2);

	for (i = 0; i < n; i++)
		plain = plain && s[i] && strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.: -", s[i]);
	out += sprintf(out, plain ? "ok(" : "ok(\\"");
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *x = c ? strchr(esc, c) : NULL;

		if (x)
			out += sprintf(out, "\\\\%c", letter[x - esc]);
		else if (c < 0x20 && !plain)
			out += sprintf(out, "\\\\u%04x", c);
		else
			*out++ = (char)c;
	}
	strcpy(out, plain ? ")" : "\\")");
}
`;

const RT_BEGIN = (watch: boolean) => `/* Step s begins: nothing done yet (as the agent's task starts an op). */
static void begin(const struct step *s)
{
	run->step = s;
${watch ? '\trun->ms = STEP_DEADLINE_MS;\n\trun->started = now_ms();\n' : ''}	memset(r, 0, sizeof(*r));
	ret = 0;
	e = errno = 0;
${watch ? '\trun->running = 1;\n' : ''}}
`;

function rtCheck(placed: boolean, faults: boolean, escaped: boolean, watch: boolean): string {
  const signals = faults || watch;
  return `/* The step is over: its outcome as svadiff writes it (harness/agent/observe.ts), checked. */
static void check(enum value_kind value)
{
	static char got[${escaped ? '6 * DATA_MAX + 16' : 'DATA_MAX + 16'}];
${signals ? '' : '\tint err = e ? e : EIO;\n'}
${watch ? '\trun->running = 0;\n' : ''}${
    placed
      ? `	if (r->want && ret == 0 && r->addr != r->want) {
		printf("step %d (t0): %s landed at 0x%llx, not at its slot 0x%llx\\n", run->step->n, run->step->call,
		       (unsigned long long)r->addr, (unsigned long long)r->want);
		printf("SETUP PROBLEM: the address plan of the program does not hold here (not a kernel finding)\\n");
		exit(2);
	}
`
      : ''
  }${faults ? '\tif (r->sig)\n\t\tstrcpy(got, SIGNAL_NAME(r->sig));\n\telse ' : '\t'}${
    signals
      ? `if (ret < 0)
		strcpy(got, ERRNO_NAME(e ? e : EIO));`
      : `if (ret < 0 && err < (int)(sizeof(errno_names) / sizeof(*errno_names)) && errno_names[err])
		strcpy(got, errno_names[err]);
	else if (ret < 0)
		sprintf(got, "errno%d", err);`
  }
${
  escaped
    ? `	else if (value == VALUE_DATA)
		ok_value(got, r->data, r->len);`
    : `	else if (value == VALUE_DATA)	/* plain, or quoted when it has other characters (outcome.ts) */
		sprintf(got, strspn(r->data, PLAIN_CHARS) == r->len && !strstr(r->data, "  ") ? "ok(%.*s)" : "ok(\\"%.*s\\")",
			(int)r->len, r->data);`
}
	else if (value == VALUE_RETURN)
		sprintf(got, "ok(%lld)", ret);
	else
		strcpy(got, "ok");
	report(got);
}
`;
}

function rtReport(expectLen: number): string {
  return `#define KIND(o)	(strncmp(o, "ok", 2) == 0 ? "ok" : (o))	/* as titles name it: no values (they vary) */

/* The step's line; the first step whose outcome the model does not allow is the finding. */
static void report(char *got)
{
	const struct step *s = run->step;
	char want[${expectLen}] = "", kinds[${expectLen}] = "";	/* the expected set as printed; its kinds */
	int k, j, ok = 0, n = 0, ok_expected = 0;

	for (k = 0; s->expect[k]; k++) {
		sprintf(want + strlen(want), "%s%s", k ? ", " : s->expect[1] ? "one of {" : "", s->expect[k]);
		ok |= strcmp(s->expect[k], got) == 0 ||
		      (strcmp(s->expect[k], "ok") == 0 && strncmp(got, "ok(", 3) == 0);	/* ok: any value */
		for (j = 0; j < k && strcmp(KIND(s->expect[j]), KIND(s->expect[k])) != 0; j++)
			;
		if (j == k)	/* a kind not named yet */
			sprintf(kinds + strlen(kinds), "%s%s", n++ ? ", " : "", KIND(s->expect[k]));
		ok_expected |= strcmp(KIND(s->expect[k]), "ok") == 0;
	}
	if (k > 1)
		strcat(want, "}");
	printf("step %d (t0): %s = %s", s->n, s->call, got);
	if (run->diverged || k == 0) {
		printf(" (%s)\\n", run->diverged ? "not checked: an earlier step diverged" : "not checked");
		return;
	}
	printf(" (expected %s)%s\\n", want, ok ? "" : "  <-- DIVERGES");
	run->checked++;
	if (ok)
		return;
	run->diverged = 1;
	printf("RESULT: step %d did not do what the model expects: the kernel diverged\\n", s->n);
	if (strcmp(got, "hang") == 0)
		printf("${REPRO_FINDING_PREFIX}hang: %s did not return\\n", s->what);
	else
		printf("${REPRO_FINDING_PREFIX}%s: expected %s%s%s, got %s [%s]\\n", s->what, n > 1 ? "one of {" : "", kinds, n > 1 ? "}" : "",
		       strcmp(KIND(got), "ok") != 0 ? got : ok_expected ? "ok (another value)" : "ok", s->rules);
}
`;
}

function rtVerdict(mknodDevs: readonly number[], nSteps: number): string {
  return `/* After the last step, t0 gone: 1 a step diverged, else 0 */
static int verdict(void)
{
${mknodDevs.map((dev) => `\tunlink(${cString(`/tmp/svt${dev}.node`)});\t/* made by mknod_path */\n`).join('')}	if (run->diverged)
		return 1;
	printf("RESULT: every checked step (%d of ${nSteps}) did what the model expects\\n", run->checked);
	return 0;
}
`;
}

const RT_WATCH = `/*
 * The parent watches t0 as the agent watches its tasks: a step past its deadline is a hang,
 * t0 gone during a step died. At the end or at a hang it kills t0 and waits for it, at most
 * KILL_DEADLINE_MS (a task stuck in the kernel does not hold the verdict up).
 */
static int watch(pid_t t0)
{
	static char died[48];
	long long end = 0;
	int status = 0;

	while (waitpid(t0, &status, WNOHANG) != t0) {
		if (run->running && now_ms() >= run->started + run->ms) {
			run->running = 0;
			report("hang");
			printf("step %d did not finish within %d ms: stopping here\\n", run->step->n, run->ms);
			run->done = 1;
		}
		if (run->done && !end) {
			kill(t0, SIGKILL);
			end = now_ms() + KILL_DEADLINE_MS;
		}
		if (end && now_ms() >= end) {
			printf("note: 1 task(s) did not die within %d ms of SIGKILL (stuck in the kernel)\\n", KILL_DEADLINE_MS);
			break;
		}
		usleep(10000);
	}
	if (!end && WIFEXITED(status) && WEXITSTATUS(status) == 2)
		return 2;	/* a setup problem, said */
	if (!end && !run->done && run->step) {	/* gone during a step */
		snprintf(died, sizeof(died), "died(%s)", SIGNAL_NAME(WIFSIGNALED(status) ? WTERMSIG(status) : 0));
		report(died);
		printf("t0 is gone: the steps after it do not run\\n");
	}
	return verdict();
}
`;

function rtStartTask(faults: boolean): string {
  return `/* Fork t0, the task that runs the steps (main goes on in it); this process watches it. */
static void start_task(void)
{
	pid_t t0;

	run = mmap(NULL, sizeof(*run), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	fflush(stdout);
	if (run == MAP_FAILED || (t0 = fork()) < 0) {
		printf("SETUP PROBLEM: cannot start task 0: %s\\n", strerror(errno));
		exit(2);
	}
	if (t0 > 0)
		exit(watch(t0));
${faults ? FAULT_HANDLERS.map((l) => `\t${l}\n`).join('') : ''}}
`;
}
