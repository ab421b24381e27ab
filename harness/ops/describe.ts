/**
 * The language of op descriptions: one declarative description per op (harness/ops/<family>.ts)
 * that every mechanical site reads — the program format's types, parser and docs table
 * (harness/program), the wire encoding and the agent's argument order and checks
 * (harness/agent/wire.ts, the agent's generated ops), the C each op runs in the agent and in a
 * reproducer (harness/ops/render.ts), how a report words it, the minimizer's simplifications and
 * the generator's weight. What cannot be mechanical stays hand-written next to the model
 * (harness/model/<family>.ts: what the kernel is meant to do, with its rules) and in the
 * generator (which arguments are interesting).
 *
 * A field is a typed value of the op; handles (descriptors, mappings, tasks) are names that an op
 * creates or uses, numbered into slots on the wire. A new handle kind (an iommufd object id)
 * is a new entry of HANDLES.
 */

/** Kinds of named objects a program refers to. */
export const HANDLES = {
  /** a file descriptor of a task (inherited by fork) */
  fd: { noun: 'descriptor', slots: 'fds' },
  /** a mapping: a fixed address slot (SLOT_BASE + slot * SLOT_STRIDE) */
  map: { noun: 'mapping', slots: 'maps' },
  /** a task (process): t0 exists at the start, fork creates the others */
  task: { noun: 'task', slots: 'tasks' },
  /**
   * an iommufd object id (harness/ops/iommufd.ts): the number an op returned, kept by the task
   * under the name (inherited by fork; 0, an id iommufd never gives, in a task that has none)
   */
  obj: { noun: 'iommufd object', slots: 'objs' },
} as const;
export type HandleKind = keyof typeof HANDLES;
export type HandleRole = 'use' | 'create' | 'place';

/**
 * When an optional field is present: another field has a value (`{ field, is }`), or one of
 * some boolean fields is true (`{ any }`). Absent otherwise.
 */
export type Only = { readonly field: string; readonly is: string } | { readonly any: readonly string[] };

/** Is an optional field present for these values of the op's other fields? */
export function onlyHolds(only: Only, o: Readonly<Record<string, unknown>>): boolean {
  return 'field' in only ? o[only.field] === only.is : only.any.some((f) => o[f] === true);
}

/** The condition of an optional field as an error message says it: `via "procfd"`, `move or dontunmap`. */
export function onlyText(only: Only): string {
  return 'field' in only ? `${only.field} "${only.is}"` : only.any.join(' or ');
}

/** One value of an enum field: its wire number, the C it stands for, what it means. */
export interface EnumValue {
  readonly wire: number;
  /** C text (an expression) for the value; default: the wire number */
  readonly c?: string;
}

export type FieldSpec =
  | {
      readonly t: 'int';
      readonly min: number;
      readonly max: number;
      readonly multipleOf?: number;
      /** a device index: it must exist (device.devices) */
      readonly device?: boolean;
      /** C text for a value in a reproducer (e.g. a region's name); default: the number */
      readonly cName?: (v: number) => string;
    }
  | { readonly t: 'bool'; readonly c?: readonly [whenFalse: string, whenTrue: string] }
  | { readonly t: 'enum'; readonly values: Readonly<Record<string, EnumValue>> }
  /**
   * A name: one an earlier op created (use), a new one (create), or either (place: a mapping
   * destination that is a new name or an existing mapping's slot, e.g. mremap's `to`)
   */
  | { readonly t: 'handle'; readonly kind: HandleKind; readonly role: HandleRole }
  /** a u64 written "0x…" (at most 16 digits), passed as the op's string */
  | { readonly t: 'hex64' }
  /** printable text (a trailing newline allowed), passed as the op's string */
  | { readonly t: 'text'; readonly max: number }
  /** an ioctl command: a name of `names` or a number (u32) */
  | { readonly t: 'ioctl'; readonly names: Readonly<Record<string, { readonly number: number; readonly c: string }>> };

export interface Field<T = unknown, Opt extends boolean = boolean> {
  readonly spec: FieldSpec;
  /** what it is, for the docs */
  readonly doc: string;
  readonly default?: T;
  readonly only?: Only;
  /** simpler values for the minimizer, most aggressive first; 'half' halves an integer */
  readonly simpler?: readonly (T | 'half')[];
  /** the minimizer measures how far the op is from simplest by this field's value (pages) */
  readonly extentOf?: boolean;
  /** phantom: the field's value type and whether it is optional */
  readonly __t?: T;
  readonly __opt?: Opt;
}

export type Fields = Readonly<Record<string, Field<unknown, boolean>>>;

type ValueOf<F> = F extends Field<infer T, boolean> ? T : never;
type RequiredKeys<F extends Fields> = { [K in keyof F]: F[K] extends Field<unknown, true> ? never : K }[keyof F];
type OptionalKeys<F extends Fields> = { [K in keyof F]: F[K] extends Field<unknown, true> ? K : never }[keyof F];
type Simplify<T> = { [K in keyof T]: T[K] } & {};

/**
 * The op's value in a program: its kind, its task, its fields, and the concurrent group it
 * belongs to if any (ops of one group run at the same time: docs/program-format.md).
 */
export type OpValue<K extends string, F extends Fields> = Simplify<
  { op: K; task: string; group?: number } & { [P in RequiredKeys<F>]: ValueOf<F[P]> } & { [P in OptionalKeys<F>]?: ValueOf<F[P]> }
>;

interface FieldOpts<T> {
  doc: string;
  default?: T;
  simpler?: readonly (T | 'half')[];
}

type OptOf<O> = O extends { only: Only } ? true : false;

export function int<O extends FieldOpts<number> & { only?: Only }>(
  min: number,
  max: number,
  opts: O & { multipleOf?: number; device?: boolean; cName?: (v: number) => string; extentOf?: boolean },
): Field<number, OptOf<O>> {
  const { multipleOf, device, cName, ...rest } = opts;
  return { ...rest, spec: { t: 'int', min, max, ...(multipleOf ? { multipleOf } : {}), ...(device ? { device } : {}), ...(cName ? { cName } : {}) } };
}

export function bool<O extends FieldOpts<boolean> & { only?: Only }>(opts: O & { c?: readonly [string, string] }): Field<boolean, OptOf<O>> {
  const { c, ...rest } = opts;
  return { ...rest, spec: { t: 'bool', ...(c ? { c } : {}) } };
}

export function oneOf<V extends string, O extends FieldOpts<V> & { only?: Only }>(values: Readonly<Record<V, EnumValue>>, opts: O): Field<V, OptOf<O>> {
  return { ...opts, spec: { t: 'enum', values } };
}

export function handle<O extends { doc: string; only?: Only }>(kind: HandleKind, role: HandleRole, opts: O): Field<string, OptOf<O>> {
  return { ...opts, spec: { t: 'handle', kind, role } };
}

export function hex64<O extends FieldOpts<string> & { only?: Only }>(opts: O): Field<string, OptOf<O>> {
  return { ...opts, spec: { t: 'hex64' } };
}

export function text<O extends FieldOpts<string> & { only?: Only }>(max: number, opts: O): Field<string, OptOf<O>> {
  return { ...opts, spec: { t: 'text', max } };
}

export function ioctlCmd<N extends string, O extends FieldOpts<N | number>>(
  names: Readonly<Record<N, { number: number; c: string }>>,
  opts: O,
): Field<N | number, false> {
  return { ...opts, spec: { t: 'ioctl', names } };
}

/** Several boolean fields packed into one wire argument, each as a bit. */
export interface WireBits {
  readonly bits: Readonly<Record<string, number>>;
  readonly doc: string;
}
export type WireArg = string | WireBits;

/** Number of numeric arguments of an O line. */
export const WIRE_ARGS = 8;

/** How an op travels in an O line: its numeric arguments (a0..a7) and its string argument. */
export interface WireLayout {
  args: WireArg[];
  /** the field passed as the string argument, if any */
  str?: string;
}

/** The wire layout of an op kind: its description's, or its fields in order (hex64/text: the string). */
export function wireLayout(d: OpDesc): WireLayout {
  const strs = Object.entries(d.fields).filter(([, f]) => f.spec.t === 'hex64' || f.spec.t === 'text');
  if (strs.length > 1) throw new Error(`op ${d.op}: more than one string field`);
  const args = d.wire ?? Object.keys(d.fields).filter((f) => !strs.some(([s]) => s === f));
  if (args.length > WIRE_ARGS) throw new Error(`op ${d.op}: more than ${WIRE_ARGS} wire arguments`);
  return strs[0] ? { args: [...args], str: strs[0][0] } : { args: [...args] };
}

/**
 * The C of an op, written once and rendered twice: for a reproducer (the op's values are known:
 * literals and named constants) and for the agent (values come from the wire arguments a[i] and
 * the string argument). Every method returns C text.
 */
export interface CRender {
  /** a field's value: a number, an enum's or a bool's C text, a u64 (ULL), a C string */
  v(field: string): string;
  /** the address of a mapping's slot */
  slot(map: string): string;
  /** the address of (page, offset) of a mapping; registers: name MMIO page 0 offsets */
  at(map: string, page?: string, offset?: string, opts?: { registers?: boolean }): string;
  /** a descriptor handle's lvalue */
  fd(field: string): string;
  /** an iommufd object handle's lvalue (a uint32_t id) */
  obj(field: string): string;
  /** a task handle (its index) */
  task(field: string): string;
  /** C for an optional handle: ifSet(its slot address) when present, else otherwise */
  ifSet(field: string, ifSet: (slot: string) => string, otherwise: string): string;
  /** flags: each flag when any of its boolean fields is true; 0 when none */
  flags(list: readonly (readonly [flag: string, when: readonly string[]])[]): string;
  /** statements by the value of an enum field (branches with equal text are merged) */
  choose(field: string, branches: Readonly<Record<string, readonly string[]>>): string[];
  /** the address a mapping made by this op must land at (mapped()'s want) */
  placed(): string;
  /** the parent device name of a device index field (the runtime's dev_name: platform or PCI) */
  devName(field: string): string;
}

export interface StepC {
  /** what the controller looks up for the step before handing it to the task (path) */
  resolve?: string[];
  /** the step, in the task: sets ret and e (errno), may fill r (DATAF, mapped) */
  body: string[];
}

/** What the program knows about a mapping name, for comments: a queue region or anonymous. */
export type MapOrigins = ReadonlyMap<string, string>;

export type OpFamily = 'core' | 'uacce' | 'sva' | 'vfio';

export interface OpDesc<K extends string = string, F extends Fields = Fields> {
  readonly op: K;
  readonly opcode: number;
  readonly family: OpFamily;
  /** what it does (docs table) */
  readonly doc: string;
  readonly fields: F;
  /** argument order on the wire; default: the fields in order, hex64/text fields as the string */
  readonly wire?: readonly WireArg[];
  /**
   * What an ok outcome carries (harness/agent/observe.ts): nothing, the agent's data (text:
   * data that may hold any character, e.g. sysfs contents), or the call's return value.
   */
  readonly result: 'none' | 'data' | 'text' | 'return';
  /** what ret, data and aux say (agent protocol table) */
  readonly resultDoc: string;
  /** a mapping it makes must land at its slot (mmap, mremap): which mapping, from which page */
  readonly placed?: (op: OpValue<K, F>) => { map: string; page: number };
  /** SIGSEGV/SIGBUS during the op is its outcome (touch, submit) */
  readonly faults?: boolean;
  /** the order in which the minimizer simplifies fields (those with `simpler`); default: field order */
  readonly simplify?: readonly string[];
  /** the op's task ends (exit) */
  readonly endsTask?: boolean;
  /** fields page and pages of a range that must end within LIMITS.maxPages */
  readonly extent?: readonly [page: string, pages: string];
  /** C expression of the op's deadline in ms; default STEP_DEADLINE_MS */
  readonly deadline?: (v: CRender) => string;
  readonly c: (v: CRender) => StepC;
  /** the call as a reproducer prints it: "mmap(m, q, region 0, 1 page, rw, shared)" */
  readonly call: (op: OpValue<K, F>) => string;
  /** what the step does in kernel terms (a reproducer's comment) */
  readonly comment: (op: OpValue<K, F>, origins: MapOrigins) => string;
  /** the op in words for a report, after "t0: " */
  readonly describe: (op: OpValue<K, F>) => string;
  /** the call in finding titles; default: the op's name */
  readonly title?: (op: OpValue<K, F>) => string;
  /** what a mapping name it creates was made as, for comments (a queue region, anonymous) */
  readonly origin?: (op: OpValue<K, F>, origins: MapOrigins) => readonly [name: string, origin: string] | undefined;
  /** the section of docs/uacce-semantics.md about it (for rules that cite none) */
  readonly sheet: string;
  /** default relative frequency in generated programs */
  readonly weight: number;
}

/** An op description (type inference of its fields and functions). */
export function defineOp<const K extends string, const F extends Fields>(d: OpDesc<K, F>): OpDesc<K, F> {
  return d;
}

export const pagesText = (n: number): string => `${n} page${n === 1 ? '' : 's'}`;
export const hexOff = (n: number): string => '0x' + n.toString(16);
