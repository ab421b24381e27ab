/**
 * The compact form of a reproducer (programs of one task, no fork or exit: almost every
 * minimized finding): main() is the program, one block per step, each checked right after it.
 * With a watcher the steps run in a child process, task t0 (as the agent's task 0); the parent
 * only watches it, as the agent does, for a step past its deadline (hang) or a task killed
 * during a step (died), and at the end kills t0 and waits for it within a deadline. What runs
 * the steps and checks them is the runtime's (guest/runtime, SVT_COMPACT); this file writes
 * main(): each step's comment, its STEP() line (what it is, what the model allows), its C and
 * its check().
 */
import { cString } from '../ops/cstring.js';
import { descOf, titleWhat } from '../ops/index.js';
import { titleRules } from '../oracle/check.js';
import { formatOutcome, formatOutcomeSet, type Outcome } from '../program/outcome.js';
import type { Program } from '../program/types.js';
import { definesFor, runtimeFor, usedFeatures, ABI_HEADER } from './cruntime.js';
import { COMPACT_NAMES, handleNames, mapOrigins, rawIoctlDefines, stepCode } from './csteps.js';
import { commentText, embeddedJsonCompact, programComment, REPRO_KERNEL_MARKER, REPRO_TITLE_MARKER } from './embed.js';
import type { ReproOptions } from './options.js';
import { insmodLine } from './setup.js';

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

/** A divergence title whose observed outcome is an ordinary one (not died, not a hang). */
const PLAIN_DIVERGENCE_RE = /^.+?: expected .+, got (?!died\()\S.* \[[^\]]*\]$/;

/**
 * Whether a compact reproducer watches its task from a parent process: always, except for a
 * finding that is an ordinary divergence (the step returns, the task lives on). The watcher
 * reports a step that does not return (hang), a task killed during a step (died), and ends the
 * task within a deadline, so that a task stuck in the kernel as it exits (an oops while its
 * files are released) does not hold the run up until the agent's timeout.
 */
export function compactWatches(opts: ReproOptions): boolean {
  return opts.watch ?? !(opts.title !== undefined && PLAIN_DIVERGENCE_RE.test(opts.title));
}

export function generateCompactC(program: Program, opts: ReproOptions): string {
  const { fds, maps, objs } = handleNames(program);
  const names = COMPACT_NAMES;
  const origins = mapOrigins(program);
  const codes = program.ops.map((op) => stepCode(op, names, origins));
  const watch = compactWatches(opts);
  const faults = codes.some((c) => c.faults);
  const d = program.device;
  const title = opts.title !== undefined ? commentText(opts.title) : undefined;
  const kernel = opts.kernel !== undefined ? commentText(opts.kernel) : undefined;
  // the longest expected set as report() prints it
  const expectLen = Math.max(64, ...opts.expected.map((e) => (e ? formatOutcomeSet(e).length + 1 : 0)));
  const stepsC = codes.flatMap((c) => [...c.resolve, ...c.body]).join('\n');
  const defined = new Set([
    'SVT_COMPACT',
    ...(watch ? ['SVT_WATCH'] : []),
    ...(faults ? ['SVT_FAULTS'] : []),
    ...(program.ops.some((op) => descOf(op.op).result === 'text') ? ['SVT_OK_VALUE'] : []),
    ...usedFeatures(stepsC),
  ]);
  const runtime = runtimeFor(defined);
  const L: string[] = [];
  const push = (...lines: string[]) => L.push(...lines);

  push('// SPDX-License-Identifier: GPL-2.0', '/*', ' * svadiff reproducer');
  if (title) push(` * ${REPRO_TITLE_MARKER} ${title}`);
  if (kernel) push(` * ${REPRO_KERNEL_MARKER} ${kernel}`);
  for (const n of opts.notes ?? []) push(` * ${commentText(n)}`);
  if (program.comment) push(` * Program: ${commentText(program.comment)}`);
  push(
    ' *',
    ' * Needs uacce.ko and the svadiff test device (guest/module/ of svadiff, svadiff_test.ko), loaded',
    ' * fresh with these parameters (node names and queue ids assume it); then, as root:',
    ` *   rmmod svadiff_test; ${insmodLine(d)}`,
    ' *   gcc -static -O2 -Wall -o repro repro.c && ./repro; rmmod svadiff_test',
    ' * Some reports only appear at rmmod. Exit status: 1 a step did not do what the model expects',
    ` * (the finding reproduced), 0 every checked step did, 2 a setup problem.${watch ? ' The steps run in' : ''}`,
    ...(watch ? [' * a child process, task t0, as in the svadiff agent; the parent watches it (hangs, deaths).'] : []),
    ' */',
    ...runtime.includes,
    '',
  );
  const definesAt = L.length;
  push(
    `#define DEVICES\t\t\t${d.devices}`,
    `#define N_STEPS\t\t\t${program.ops.length}`,
    `#define EXPECT_LEN\t\t${expectLen}\t/* the longest expected set as printed */`,
    `#define INSMOD_LINE\t\t${cString(insmodLine(d))}`,
    `#define SVA_DEVICE\t\t${d.sva ? 1 : 0}\t/* device.sva: the parents are svadiff-sva PCI endpoints */`,
    ...rawIoctlDefines(program),
  );
  if (fds.length > 0) {
    push(...wrapList(fds.map((f) => `${names.fd(f)} = -1`)).replace(/^\t/, 'static int ').replace(/,$/, ';\t/* descriptors */').split('\n'));
  }
  if (maps.length > 0) push(`enum { ${maps.map(names.map).join(', ')} };\t/* mappings, at SLOT(map_<name>) */`);
  if (objs.length > 0) {
    push(...wrapList(objs.map((o) => `${names.obj(o)} = 0`)).replace(/^\t/, 'static uint32_t ').replace(/,$/, ';\t/* iommufd object ids (0: none) */').split('\n'));
  }

  push('', '/* ---- the steps: STEP() says what each is, check() prints its outcome and checks it ---- */', '', runtime.types, '');
  push('int main(int argc, char **argv)', '{', '\tbegin_run(argc, argv);');
  program.ops.forEach((op, i) => {
    const c = codes[i]!;
    // in the order of the kinds a title names (sorted), so that the runtime's title is checkProgram's
    const exp = opts.expected[i] ? [...opts.expected[i]!].sort((a, b) => byTitleKind(a, b)) : undefined;
    const rules = titleRules(opts.rules?.[i] ?? []);
    push('', ...commentLines('\t', commentText(c.comment)));
    push(...callLines('\t', 'STEP', [String(i), cString(c.call), cString(titleWhat(op)), cString(rules), ...(exp ? exp.map((o) => cString(formatOutcome(o))) : ['NULL'])]));
    if (watch && c.deadline) push(`\trun->ms = ${c.deadline};`);
    push(...c.resolve.map((l) => `\t${l}`));
    if (c.faults) push('\tif (sigsetjmp(fault, 1) == 0) {', '\t\tcatching = 1;', ...c.body.map((l) => `\t\t${l}`), '\t}', '\tcatching = 0;');
    else push(...c.body.map((l) => `\t${l}`));
    push(`\tcheck(${c.value});`);
  });
  push('', '\treturn end_run();', '}', '');

  // svadiff's part, after main
  push("/* ---- svadiff's helpers: finding the device, checking outcomes (the reproducer is main) ---- */", '', runtime.functions, '');
  push(...programComment(embeddedJsonCompact(program)));

  const defs = definesFor(L.slice(definesAt).join('\n'));
  L.splice(definesAt, 0, `/* ${ABI_HEADER} of svadiff (the test device's ABI) and its agent's conventions */`, ...defs.abi, ...defs.conventions);
  return L.join('\n');
}

/** Outcomes by the kind a title names them by (ok without its value), as titleExpected sorts them. */
function byTitleKind(a: Outcome, b: Outcome): number {
  const k = (o: Outcome) => (o.kind === 'ok' ? 'ok' : formatOutcome(o));
  return k(a) < k(b) ? -1 : k(a) > k(b) ? 1 : 0;
}
