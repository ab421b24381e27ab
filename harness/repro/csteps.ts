/**
 * The steps of a reproducer: each op's C (its description's, rendered with the op's values),
 * what it prints, what an ok outcome carries, and the C names of the program's handles.
 */
import { slotTable } from '../agent/wire.js';
import type { MapOrigins } from '../ops/describe.js';
import { cString } from '../ops/cstring.js';
import { descOf, type Op } from '../ops/index.js';
import { rawIoctlName, reproRender, type CNames } from '../ops/render.js';
import { hexOff } from '../ops/describe.js';
import type { Outcome } from '../program/outcome.js';
import type { Program } from '../program/types.js';

/** What an ok result of the step carries (harness/agent/observe.ts). */
export type ValueKind = 'VALUE_NONE' | 'VALUE_DATA' | 'VALUE_RETURN';

export interface StepCode {
  /** short description of the call for the output line */
  call: string;
  /** comment: what it does in kernel terms */
  comment: string;
  /** C statements of the step; may use ret, e, r, path (and pf for poll) */
  body: string[];
  /** C statements the controller runs first to resolve its path */
  resolve: string[];
  value: ValueKind;
  /** C expression of its deadline (ms), if not STEP_DEADLINE_MS */
  deadline?: string;
  /** the controller checks where the mapping landed */
  placed: boolean;
  /** SIGSEGV or SIGBUS during the step is its outcome */
  faults: boolean;
}

/**
 * C names of a program's tasks, descriptor names and mapping names (program names are
 * identifiers: parse.ts NAME_RE). The prefixes are ones no libc header uses, so that names like
 * SHARED, CLOEXEC or errno cannot turn into MAP_SHARED, FD_CLOEXEC or a macro.
 */
export const descConst = (f: string): string => `DESC_${f}`;
export const objConst = (o: string): string => `OBJ_${o}`;
export const GENERAL_NAMES: CNames = { task: (t) => `TASK_${t}`, fd: (f) => `fds[${descConst(f)}]`, map: (m) => `MAPPING_${m}`, obj: (o) => `objs[${objConst(o)}]` };

/**
 * The compact form's names: a variable per descriptor, an enum constant per mapping slot, in
 * lower case. Of libc's lower-case identifiers (the headers reproducers include, with
 * _GNU_SOURCE) only fd_set and fd_mask start with "fd_", none with "map_".
 */
const LIBC_FD_NAMES = new Set(['fd_set', 'fd_mask']);
export const fdVar = (f: string): string => (LIBC_FD_NAMES.has(`fd_${f}`) ? `fd_${f}_` : `fd_${f}`);
export const COMPACT_NAMES: CNames = { task: () => 'TASK_t0', fd: fdVar, map: (m) => `map_${m}`, obj: (o) => `obj_${o}` };

/** What a mapping name was created as, for comments (region of a queue, or anonymous). */
export function mapOrigins(p: Program): Map<string, string> {
  const m = new Map<string, string>();
  for (const op of p.ops) {
    const o = descOf(op.op).origin?.(op as never, m);
    if (o !== undefined && !m.has(o[0])) m.set(o[0], o[1]);
  }
  return m;
}

const VALUE_OF = { none: 'VALUE_NONE', data: 'VALUE_DATA', text: 'VALUE_DATA', return: 'VALUE_RETURN' } as const;

export function stepCode(op: Op, names: CNames, origins: MapOrigins): StepCode {
  const d = descOf(op.op);
  const v = reproRender(op, names, origins);
  const c = d.c(v);
  const code: StepCode = {
    call: d.call(op as never),
    comment: d.comment(op as never, origins),
    body: c.body,
    resolve: c.resolve ?? [],
    value: VALUE_OF[d.result],
    placed: d.placed !== undefined,
    faults: d.faults === true,
  };
  if (d.deadline) code.deadline = d.deadline(v);
  return code;
}

/** The call text of every step as the reproducer prints it ("step N (task): <call> = <outcome> ..."). */
export function stepCalls(program: Program): string[] {
  return program.ops.map((op) => descOf(op.op).call(op as never));
}

/** #defines for the raw ioctl numbers of a program (named constants in the file). */
export function rawIoctlDefines(program: Program): string[] {
  const s = new Set<number>();
  for (const op of program.ops) if (op.op === 'ioctl' && typeof op.cmd === 'number') s.add(op.cmd);
  return [...s].sort((a, b) => a - b).map((n) => `#define ${rawIoctlName(n)}\t${hexOff(n)}u\t/* no command of uacce or the test driver */`);
}

/** The names of a program's handles, in slot order. */
export function handleNames(program: Program): { tasks: string[]; fds: string[]; maps: string[]; objs: string[] } {
  const slots = slotTable(program);
  const inOrder = (m: Map<string, number>) => [...m.entries()].sort((a, b) => a[1] - b[1]).map(([name]) => name);
  return { tasks: inOrder(slots.tasks), fds: inOrder(slots.fds), maps: inOrder(slots.maps), objs: inOrder(slots.objs) };
}

const OUTCOME_KIND = { ok: 'OK', errno: 'ERRNO', signal: 'SIGNAL', died: 'DIED', hang: 'HANG' } as const;

/** An expected outcome as an initializer of struct outcome (the general form's step table). */
export function cOutcome(o: Outcome): string {
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
