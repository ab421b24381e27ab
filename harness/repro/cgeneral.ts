/**
 * The general form of a reproducer (several tasks): a controller process hands each step to the
 * task (process) that performs it and waits for the result, one step at a time, in program
 * order, as the agent does, from tables of steps. Tasks are created like the agent's: task 0
 * with fork(), later ones with clone(CLONE_PARENT | SIGCHLD), so that every task is the
 * controller's child. The controller, the tasks and the checks are the runtime's
 * (guest/runtime, SVT_GENERAL); this file writes the program: its constants, its steps (do_step),
 * what the controller resolves for them and the table of what each is and expects.
 */
import { cString } from '../ops/cstring.js';
import { titleWhat } from '../ops/index.js';
import { titleExpected, titleRules } from '../oracle/check.js';
import { formatOutcomeSet } from '../program/outcome.js';
import type { Program } from '../program/types.js';
import { definesFor, runtimeFor, usedFeatures, ABI_HEADER, DEFS_HEADER } from './cruntime.js';
import { cOutcome, descConst, GENERAL_NAMES, objConst, handleNames, mapOrigins, rawIoctlDefines, stepCode } from './csteps.js';
import { commentText, embeddedJson, programComment, REPRO_KERNEL_MARKER, REPRO_TITLE_MARKER } from './embed.js';
import type { ReproOptions } from './options.js';
import { insmodLine } from './setup.js';

export function generateGeneralC(program: Program, opts: ReproOptions): string {
  const { tasks, fds, maps, objs } = handleNames(program);
  const names = GENERAL_NAMES;
  const origins = mapOrigins(program);
  const codes = program.ops.map((op) => stepCode(op, names, origins));
  const d = program.device;
  const title = opts.title !== undefined ? commentText(opts.title) : undefined;
  const kernel = opts.kernel !== undefined ? commentText(opts.kernel) : undefined;
  const stepsC = codes.flatMap((c) => [...c.resolve, ...c.body]).join('\n');
  const defined = new Set(['SVT_GENERAL', ...usedFeatures(stepsC)]);
  const runtime = runtimeFor(defined);
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
    ' * Needs uacce.ko and the svadiff test device (guest/module/ of svadiff, svadiff_test.ko), freshly',
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
  push(...runtime.includes, '');
  const definesAt = L.length;

  const maxExpect = Math.max(1, ...opts.expected.map((e) => e?.length ?? 0));
  push(
    '/* ---- the program ---- */',
    '',
    `#define DEVICES\t\t\t${d.devices}`,
    `#define N_STEPS\t\t\t${program.ops.length}`,
    `#define MAX_EXPECT\t\t${maxExpect}`,
    `#define INSMOD_LINE\t\t${cString(insmodLine(d))}`,
    `#define SVA_DEVICE\t\t${d.sva ? 1 : 0}\t/* device.sva: the parents are svadiff-sva PCI endpoints */`,
    `enum { ${[...tasks.map(names.task), 'N_TASKS'].join(', ')} };`,
  );
  if (fds.length > 0) push(`enum { ${[...fds.map(descConst), 'N_FDS'].join(', ')} };\t/* descriptor names */`);
  if (maps.length > 0) push(`enum { ${maps.map(names.map).join(', ')} };\t/* mapping names: their slots */`);
  if (objs.length > 0) push(`enum { ${[...objs.map(objConst), 'N_OBJS'].join(', ')} };\t/* iommufd object names */`);
  push(...rawIoctlDefines(program));
  push(`static const char *const task_name[N_TASKS] = { ${tasks.map((t) => cString(t)).join(', ')} };`, '');

  push('/* ---- svadiff\'s runtime (guest/runtime of svadiff): results, tasks, steps ---- */', '', runtime.types, '');

  // the steps
  push(
    '/* ---- the steps, as the task that performs each one does it; 1: this is a new task ---- */',
    '',
    'static int do_step(struct cmd *c, struct res *r)',
    '{',
    ...(/\bpath\b/.test(stepsC) ? ['\tchar *path = c->path;'] : []),
    '\tlong long ret = 0;',
    '\tint e = 0;',
    '',
    '\terrno = 0;',
    '\tswitch (c->step) {',
  );
  program.ops.forEach((op, i) => {
    const c = codes[i]!;
    push(`\tcase ${i}:\t/* ${op.task}: ${commentText(c.comment)} */`);
    for (const line of c.body) push(`\t\t${line}`);
    push('\t\tbreak;');
  });
  push('\t}', '\treturn step_result(r, ret, e);', '}', '');

  // what the controller resolves
  push('/* What the controller looks up for a step before handing it over (the agent does the same). */', 'static void resolve(int s, char *path)', '{', "\tpath[0] = '\\0';");
  const byBody = new Map<string, number[]>();
  codes.forEach((c, i) => {
    if (c.resolve.length > 0) byBody.set(c.resolve.join('\n'), [...(byBody.get(c.resolve.join('\n')) ?? []), i]);
  });
  if (byBody.size === 0) push('\t(void)s;\t/* no step of this program needs one */');
  else {
    push('\tswitch (s) {');
    for (const [body, steps] of byBody) push(...steps.map((i) => `\tcase ${i}:`), ...body.split('\n').map((l) => `\t\t${l}`), '\t\tbreak;');
    push('\t}');
  }
  push('}', '');

  // the step table
  push('/* ---- what each step is and what the model expects of it ---- */', '', 'static const struct step steps[N_STEPS] = {');
  program.ops.forEach((op, i) => {
    const c = codes[i]!;
    const exp = opts.expected[i];
    const rules = opts.rules?.[i] ?? [];
    const fields = [
      `.task = ${names.task(op.task)}`,
      `.call = ${cString(c.call)}`,
      `.value = ${c.value}`,
      ...(c.deadline ? [`.deadline_ms = ${c.deadline}`] : []),
      ...(op.op === 'fork' ? [`.forks = ${names.task(op.child)}`] : []),
      ...(op.op === 'exit' ? ['.exit = 1'] : []),
      ...(c.placed ? ['.placed = 1'] : []),
      `.what = ${cString(titleWhat(op))}`,
      ...(exp ? [`.expect_text = ${cString(formatOutcomeSet(exp))}`, `.expect_title = ${cString(titleExpected(formatOutcomeSet(exp)))}`, `.rules = ${cString(titleRules(rules))}`, `.expect = { ${exp.map(cOutcome).join(', ')} }`] : []),
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

  push('/* ---- svadiff\'s runtime: the controller, the tasks, checking outcomes ---- */', '', runtime.functions, '');
  push(...programComment(embeddedJson(program)));
  // the test device's ABI and the agent's conventions: the parts the file uses
  const defs = definesFor(L.slice(definesAt).join('\n'));
  L.splice(
    definesAt,
    0,
    `/* ---- ${ABI_HEADER} of svadiff: the test device's ABI (the parts used here) ---- */`,
    '',
    ...defs.abi,
    '',
    `/* ---- ${DEFS_HEADER} of svadiff: conventions of its agent (docs/agent-protocol.md) ---- */`,
    '',
    ...defs.conventions,
    '',
  );
  return L.join('\n');
}
