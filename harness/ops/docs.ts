/**
 * The docs' op tables, from the op descriptions: the program format's (docs/program-format.md:
 * each op's fields with their ranges and defaults) and the agent protocol's
 * (docs/agent-protocol.md: opcodes and the arguments of an O line). The docs hold them between
 * markers; `npm run docs` rewrites them, test/unit/ops.test.ts fails when they are stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { HANDLES, onlyText, wireLayout, type Field, type OpDesc } from './describe.js';
import { OP_DESCS } from './index.js';
import { projectRoot } from '../util/paths.js';

const code = (s: string | number | boolean) => `\`${s}\``;

/** A field's type, range and default, as the program format's table says it. */
function fieldDoc(name: string, f: Field): string {
  const s = f.spec;
  let what: string;
  switch (s.t) {
    case 'int':
      what = `${s.min}..${s.max}${s.multipleOf ? `, a multiple of ${s.multipleOf}` : ''}`;
      break;
    case 'bool':
      what = 'true/false';
      break;
    case 'enum':
      what = Object.keys(s.values).map(code).join(', ');
      break;
    case 'handle':
      what = `${s.role === 'create' ? 'new ' : s.role === 'place' ? 'new or existing ' : ''}${HANDLES[s.kind].noun} name`;
      break;
    case 'hex64':
      what = '`"0x…"`';
      break;
    case 'text':
      what = `text, at most ${s.max}`;
      break;
    case 'ioctl':
      what = `${Object.keys(s.names).map(code).join(', ')} or a number`;
      break;
  }
  const dflt = f.default !== undefined ? `, default ${code(String(f.default))}` : '';
  const only = f.only !== undefined ? `, only with ${onlyText(f.only)}` : '';
  return `${code(name)} (${what}${dflt}${only})`;
}

export function programFormatTable(): string {
  const rows = OP_DESCS.map((d) => {
    const fields = Object.entries(d.fields).map(([n, f]) => fieldDoc(n, f));
    return `| ${code(d.op)} | ${fields.length > 0 ? fields.join(', ') : '—'} | ${d.doc} |`;
  });
  return ['| op | fields (range, default) | what it does |', '|---|---|---|', ...rows].join('\n');
}

/** One wire argument as the protocol table says it: "a2 region", "a4 prot (0 none, 1 r, 3 rw)". */
function argDoc(d: OpDesc, i: number): string {
  const arg = wireLayout(d).args[i]!;
  if (typeof arg !== 'string') return `a${i} ${arg.doc} (${Object.entries(arg.bits).map(([f, b]) => `${b} ${f}`).join(', ')})`;
  const f = d.fields[arg]!;
  const s = f.spec;
  switch (s.t) {
    case 'handle':
      return s.kind === 'task' ? `a${i} ${arg} (task index)` : `a${i} ${arg} (${HANDLES[s.kind].noun} slot${f.only !== undefined ? ', −1 without' : ''})`;
    case 'enum':
      return `a${i} ${arg} (${Object.entries(s.values).map(([v, e]) => `${e.wire} ${v}`).join(', ')})`;
    case 'ioctl':
      return `a${i} ${arg} (u32)`;
    default:
      return `a${i} ${arg}`;
  }
}

export function agentProtocolTable(): string {
  const rows = OP_DESCS.map((d) => {
    const layout = wireLayout(d);
    const args = layout.args.map((_, i) => argDoc(d, i));
    if (layout.str !== undefined) args.push(`str: ${layout.str}`);
    return `| ${d.op} | ${d.opcode} | ${args.length > 0 ? args.join(', ') : '—'} | ${d.resultDoc} |`;
  });
  return ['| op | opcode | arguments | `ret`, `data`, `aux` |', '|---|---|---|---|', ...rows].join('\n');
}

const BEGIN = '<!-- op table: generated from harness/ops by `npm run docs` -->';
const END = '<!-- end of op table -->';

/** The docs with their generated tables, and where each is. */
export const GENERATED_DOCS: readonly { file: string; table: () => string }[] = [
  { file: 'docs/program-format.md', table: programFormatTable },
  { file: 'docs/agent-protocol.md', table: agentProtocolTable },
];

/** A doc's text with its table replaced by a fresh one. */
export function withTable(text: string, table: string, file: string): string {
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  if (a < 0 || b < a) throw new Error(`${file}: no "${BEGIN}" … "${END}" markers`);
  return `${text.slice(0, a + BEGIN.length)}\n\n${table}\n\n${text.slice(b)}`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const d of GENERATED_DOCS) {
    const p = join(projectRoot(), d.file);
    const text = readFileSync(p, 'utf8');
    const fresh = withTable(text, d.table(), d.file);
    if (fresh !== text) {
      writeFileSync(p, fresh);
      console.log(`${d.file}: op table rewritten`);
    }
  }
}
