/**
 * The C of each op (its description's `c`), rendered for a reproducer, where the op's values are
 * known (literals, named constants), and for the agent, where they come from the O line's
 * arguments a[i] and its string (the agent's generated ops header, agentOpsHeader). Both run the
 * same calls with the same arguments: one text, two renderings.
 */
import { hexOff, onlyText, wireLayout, type CRender, type EnumValue, type Field, type MapOrigins, type OpDesc } from './describe.js';
import { cString } from './cstring.js';
import { descOf, fieldsOf, OP_DESCS, type Op } from './index.js';
import { REG_NAMES } from './registers.js';
import { LIMITS } from '../program/limits.js';

/** C names of a program's handles in a reproducer. */
export interface CNames {
  /** the C lvalue holding a descriptor name's fd in the task */
  fd: (name: string) => string;
  /** the C constant of a mapping name's slot */
  map: (name: string) => string;
  /** the C constant of a task name */
  task: (name: string) => string;
  /** the C lvalue holding an iommufd object name's id in the task */
  obj: (name: string) => string;
}

/** The name of a raw ioctl number in a reproducer (a #define the program carries). */
export const rawIoctlName = (n: number): string => `IOCTL_${hexOff(n).toUpperCase().replace('0X', '0x')}`;

function fieldOf(d: OpDesc, field: string): Field {
  const f = d.fields[field];
  if (f === undefined) throw new Error(`op ${d.op}: no field ${field}`);
  return f;
}

/** The reproducer's rendering of op's C: values known. */
export function reproRender(op: Op, names: CNames, origins: MapOrigins): CRender {
  const d = descOf(op.op);
  const o = fieldsOf(op);
  const at = (map: string, page: number, off: string | number) =>
    page === 0 && (off === 0 || off === '0x0') ? `SLOT(${names.map(map)})` : `AT(${names.map(map)}, ${page}, ${off})`;
  const r: CRender = {
    v(field) {
      const s = fieldOf(d, field).spec;
      const v = o[field];
      switch (s.t) {
        case 'int':
          return s.cName ? s.cName(v as number) : String(v);
        case 'bool':
          return s.c ? s.c[v ? 1 : 0] : v ? '1' : '0';
        case 'enum': {
          const e = s.values[v as string]!;
          return e.c ?? String(e.wire);
        }
        case 'hex64':
          return `${(v as string | undefined) ?? '0x0'}ULL`;
        case 'text':
          return cString(v as string);
        case 'ioctl':
          return typeof v === 'number' ? rawIoctlName(v) : s.names[v as string]!.c;
        case 'handle':
          throw new Error(`op ${d.op}: field ${field} is a handle`);
      }
    },
    slot: (map) => `SLOT(${names.map(o[map] as string)})`,
    at(map, page, offset, opts) {
      const pg = page === undefined ? 0 : (o[page] as number);
      const off = offset === undefined ? 0 : (o[offset] as number);
      const reg = opts?.registers && origins.get(o[map] as string) === 'MMIO' && pg === 0 ? REG_NAMES.get(off) : undefined;
      return at(o[map] as string, pg, offset === undefined ? 0 : (reg ?? hexOff(off)));
    },
    fd: (field) => names.fd(o[field] as string),
    obj: (field) => names.obj(o[field] as string),
    task: (field) => names.task(o[field] as string),
    ifSet: (field, ifSet, otherwise) => (o[field] === undefined ? otherwise : ifSet(`SLOT(${names.map(o[field] as string)})`)),
    flags: (list) => list.filter(([, when]) => when.some((f) => o[f] === true)).map(([flag]) => flag).join(' | ') || '0',
    choose: (field, branches) => [...(branches[o[field] as string] ?? [])],
    placed() {
      if (d.placed === undefined) throw new Error(`op ${d.op} makes no mapping`);
      const p = d.placed(op as never);
      return at(p.map, p.page, 0);
    },
    devName: (field) => `dev_name(${o[field] as number})`,
  };
  return r;
}

/** Wrap an expression in parentheses unless it is a name or a number. */
const paren = (c: string) => (/^[A-Za-z0-9_."]+$/.test(c) ? c : `(${c})`);

/** The agent's rendering of an op's C: values from the O line (a[i], str). */
export function agentRender(d: OpDesc): CRender {
  const layout = wireLayout(d);
  const arg = (field: string): string => {
    const i = layout.args.findIndex((a) => a === field);
    if (i >= 0) return `a[${i}]`;
    const b = layout.args.findIndex((a) => typeof a !== 'string' && field in a.bits);
    if (b >= 0) {
      const bits = layout.args[b] as { bits: Record<string, number> };
      return `((a[${b}] & ${bits.bits[field]}) != 0)`;
    }
    throw new Error(`op ${d.op}: field ${field} is not on the wire`);
  };
  const enumC = (a: string, values: Readonly<Record<string, EnumValue>>) => {
    const vs = Object.values(values);
    if (vs.every((e) => e.c === undefined)) return a;
    if (vs.length === 1) return paren(vs[0]!.c ?? String(vs[0]!.wire));
    const last = vs[vs.length - 1]!;
    return paren(vs.slice(0, -1).map((e) => `${a} == ${e.wire} ? ${paren(e.c ?? String(e.wire))} : `).join('') + paren(last.c ?? String(last.wire)));
  };
  const r: CRender = {
    v(field) {
      const s = fieldOf(d, field).spec;
      switch (s.t) {
        case 'int':
          return arg(field);
        case 'bool':
          return s.c ? `(${arg(field)} ? ${s.c[1]} : ${s.c[0]})` : arg(field);
        case 'enum':
          return enumC(arg(field), s.values);
        case 'hex64':
          return 'str_u64(str)';
        case 'text':
          return 'str';
        case 'ioctl':
          return `(unsigned long)(uint32_t)${arg(field)}`;
        case 'handle':
          throw new Error(`op ${d.op}: field ${field} is a handle`);
      }
    },
    slot: (map) => `SLOT(${arg(map)})`,
    at: (map, page, offset) => `AT(${arg(map)}, ${page === undefined ? 0 : arg(page)}, ${offset === undefined ? 0 : arg(offset)})`,
    fd: (field) => `fds[${arg(field)}]`,
    obj: (field) => `objs[${arg(field)}]`,
    task: (field) => `(int)${arg(field)}`,
    ifSet: (field, ifSet, otherwise) => `(${arg(field)} >= 0 ? ${ifSet(`SLOT(${arg(field)})`)} : ${otherwise})`,
    flags: (list) => list.map(([flag, when]) => `(${when.map(arg).join(' || ')} ? ${flag} : 0)`).join(' | '),
    choose(field, branches) {
      const s = fieldOf(d, field).spec;
      if (s.t !== 'enum') throw new Error(`op ${d.op}: choose on ${field}, which is not an enum`);
      // values with the same statements share a branch; the last branch with statements is the else
      const groups: { wires: number[]; body: readonly string[] }[] = [];
      for (const [value, e] of Object.entries(s.values)) {
        const body = branches[value] ?? [];
        const g = groups.find((x) => x.body.join('\n') === body.join('\n'));
        if (g) g.wires.push(e.wire);
        else groups.push({ wires: [e.wire], body });
      }
      if (groups.length === 1) return [...groups[0]!.body];
      const live = groups.filter((g) => g.body.length > 0);
      const out: string[] = [];
      live.forEach((g, i) => {
        const cond = g.wires.map((w) => `${arg(field)} == ${w}`).join(' || ');
        const last = i === live.length - 1 && live.length === groups.length;
        out.push(i === 0 ? `if (${cond}) {` : last ? '} else {' : `} else if (${cond}) {`);
        out.push(...g.body.map((l) => `\t${l}`));
      });
      out.push('}');
      return out;
    },
    placed: () => '0', // the host checks where mappings land (the aux field)
    devName: (field) => `dev_name(${arg(field)})`,
  };
  return r;
}

const indent = (lines: readonly string[], tabs: string) => lines.map((l) => (l === '' ? l : tabs + l));
const opConst = (d: OpDesc) => `OP_${d.op.toUpperCase()}`;

/** The agent's checks of one op's arguments: the program format's ranges. */
function argChecks(d: OpDesc): string[] {
  const layout = wireLayout(d);
  const out: string[] = [];
  const r = agentRender(d);
  layout.args.forEach((a, i) => {
    if (typeof a !== 'string') {
      const max = Object.values(a.bits).reduce((x, y) => x | y, 0);
      out.push(`ARG_RANGE(${i}, 0, ${max}, "${a.doc}");`);
      return;
    }
    const f = fieldOf(d, a);
    const s = f.spec;
    switch (s.t) {
      case 'int':
        out.push(`ARG_RANGE(${i}, ${s.min}, ${s.max}, "${a}");`);
        if (s.multipleOf) out.push(`ARG_MULTIPLE(${i}, "${a}", ${s.multipleOf});`);
        break;
      case 'bool':
        out.push(`ARG_RANGE(${i}, 0, 1, "${a}");`);
        break;
      case 'enum': {
        const wires = Object.values(s.values).map((e) => e.wire).sort((x, y) => x - y);
        if (wires.every((w, k) => w === wires[0]! + k)) out.push(`ARG_RANGE(${i}, ${wires[0]}, ${wires[wires.length - 1]}, "${a}");`);
        else out.push(`ARG_ONE_OF(${i}, "${a}", "${wires.slice(0, -1).join(', ')} or ${wires[wires.length - 1]}", ${wires.map((w) => `a[${i}] == ${w}`).join(' || ')});`);
        break;
      }
      case 'ioctl':
        out.push(`ARG_RANGE(${i}, 0, 0xffffffffLL, "${a}");`);
        break;
      case 'handle': {
        const lo = f.only !== undefined ? -1 : s.kind === 'task' ? 1 : 0;
        const hi = s.kind === 'task' ? 'MAX_TASKS - 1' : 'MAX_SLOTS - 1';
        out.push(`ARG_RANGE(${i}, ${lo}, ${hi}, "${a} (${s.kind === 'task' ? 'task index' : `${s.kind} slot`})");`);
        if (f.only !== undefined) out.push(`ARG_NEEDED(${onlyC(d, f, r)} ? a[${i}] >= 0 : a[${i}] == -1, "${a}", "${onlyText(f.only).replace(/"/g, '')}");`);
        break;
      }
      case 'hex64':
      case 'text':
        break;
    }
  });
  if (layout.str !== undefined) {
    const f = fieldOf(d, layout.str);
    const present = f.only === undefined ? '1' : onlyC(d, f, r);
    if (f.spec.t === 'hex64') out.push(`STR_HEX(${present}, "${layout.str}");`);
    else if (f.spec.t === 'text') out.push(`STR_TEXT(${f.spec.max}, "${layout.str}");`);
  } else {
    out.push('STR_NONE();');
  }
  return out;
}

/** The condition of an optional field, over the wire arguments. */
function onlyC(d: OpDesc, f: Field, r: CRender): string {
  const only = f.only!;
  if ('any' in only) return `(${only.any.map((b) => r.v(b)).join(' || ')})`;
  const s = fieldOf(d, only.field).spec;
  if (s.t !== 'enum') throw new Error(`op ${d.op}: a field's presence depends on ${only.field}, which is not an enum`);
  const i = wireLayout(d).args.indexOf(only.field);
  return `(a[${i}] == ${s.values[only.is]!.wire})`;
}

/**
 * The agent's ops, from the descriptions: opcodes, argument checks, deadlines, what the agent
 * resolves for a step (paths), and the step itself (do_step, run by a task). Written next to the
 * agent's sources when it is built (guest/build.ts); part of its cache key.
 */
export function agentOpsHeader(): string {
  const L: string[] = [];
  const last = OP_DESCS[OP_DESCS.length - 1]!;
  L.push(
    '/* Generated by harness/ops/render.ts from the op descriptions (harness/ops): do not edit. */',
    '',
    `enum { ${OP_DESCS.map((d) => `${opConst(d)} = ${d.opcode}`).join(', ')}, OP_LAST = ${last.opcode} };`,
    '',
    '/* The arguments of an O line: the program format\'s ranges (a value outside them is a host bug). */',
    'static int check_args(const struct op *o, char *err, size_t errlen)',
    '{',
    '\tconst int64_t *a = o->a;',
    '',
    '\tswitch (o->opcode) {',
  );
  for (const d of OP_DESCS) L.push(`\tcase ${opConst(d)}:`, ...indent(argChecks(d), '\t\t'), '\t\tbreak;');
  L.push('\t}', '\treturn 0;', '}', '');

  L.push('/* How long an op may take (ms): past it the agent gives up on the program. */', 'static int op_deadline_ms(const struct op *o)', '{');
  const deadlines = OP_DESCS.filter((d) => d.deadline !== undefined);
  if (deadlines.some((d) => d.deadline!(agentRender(d)).includes('a['))) L.push('\tconst int64_t *a = o->a;', '');
  L.push('\tswitch (o->opcode) {');
  for (const d of deadlines) L.push(`\tcase ${opConst(d)}:`, `\t\treturn ${d.deadline!(agentRender(d))};`);
  L.push('\tdefault:', '\t\treturn STEP_DEADLINE_MS;', '\t}', '}', '');

  const resolving = OP_DESCS.filter((d) => (d.c(agentRender(d)).resolve ?? []).length > 0);
  L.push(
    '/* What the agent looks up for a step before it hands the step to its task (a path). */',
    'static void resolve(struct cmd *c)',
    '{',
    '\tconst int64_t *a = c->op.a;',
    '\tchar *path = c->path;',
    '',
    "\tpath[0] = '\\0';",
    '\tswitch (c->op.opcode) {',
  );
  for (const d of resolving) L.push(`\tcase ${opConst(d)}:`, ...indent(d.c(agentRender(d)).resolve!, '\t\t'), '\t\tbreak;');
  L.push('\t}', '}', '');

  const bodies = OP_DESCS.map((d) => d.c(agentRender(d)).body);
  const uses = (name: string) => bodies.some((b) => b.some((l) => new RegExp(`\\b${name}\\b`).test(l)));
  L.push(
    "/* One step in the task that performs it (each op's C); 1: this process is a new task (fork). */",
    'static int do_step(struct cmd *c, struct res *r)',
    '{',
    '\tconst int64_t *a = c->op.a;',
    ...(uses('str') ? ['\tconst char *str = c->op.str;'] : []),
    ...(uses('path') ? ['\tchar *path = c->path;'] : []),
    '\tlong long ret = 0;',
    '\tint e = 0;',
    '',
    '\terrno = 0;',
    '\tswitch (c->op.opcode) {',
  );
  OP_DESCS.forEach((d, i) => L.push(`\tcase ${opConst(d)}:`, ...indent(bodies[i]!, '\t\t'), '\t\tbreak;'));
  L.push('\tdefault:', '\t\tret = -1;', '\t\te = ENOSYS;', '\t\tbreak;', '\t}', '\treturn step_result(r, ret, e);', '}', '');
  // the program format's limits are the agent's tables' sizes
  L.push(`_Static_assert(MAX_SLOTS >= ${Math.max(LIMITS.maxFds, LIMITS.maxMaps, LIMITS.maxObjs)} && MAX_TASKS >= ${LIMITS.maxTasks}, "the agent's tables hold every program");`, '');
  return L.join('\n');
}
