/**
 * report.txt: a plain-text bug report a kernel developer can read in a mail client. Every line
 * is at most REPORT_WIDTH columns (long words are cut, shell commands are continued with a
 * backslash so that they still paste). Pure: everything it says comes in through ReportInput.
 */
import { promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import type { FindingKind } from '../findings/store.js';
import { describeRule } from '../model/rules.js';
import { descOf } from '../ops/index.js';
import type { DeviceParams, Op, Program } from '../program/types.js';
import { moduleParams } from './setup.js';
import { projectRoot } from '../util/paths.js';
import { stripControl } from '../util/sanitize.js';

export const REPORT_WIDTH = 80;

// ---------------------------------------------------------------------------------------------
// Wrapping

/**
 * Wrap one paragraph to `width` columns: words are kept whole when they fit, longer words are
 * cut. `indent` starts every line, `hang` every line after the first (default: indent).
 */
export function wrapText(text: string, width = REPORT_WIDTH, indent = '', hang = indent): string[] {
  const words = text.split(/\s+/).filter((w) => w.length > 0);
  const lines: string[] = [];
  let line = indent;
  let fresh = true;
  const lead = () => (lines.length === 0 ? indent : hang);
  for (let w of words) {
    const room = () => width - line.length - (fresh ? 0 : 1);
    if (!fresh && w.length > room()) {
      lines.push(line);
      line = lead();
      fresh = true;
    }
    while (w.length > width - line.length - (fresh ? 0 : 1)) {
      const n = Math.max(1, width - line.length - (fresh ? 0 : 1));
      line += (fresh ? '' : ' ') + w.slice(0, n);
      w = w.slice(n);
      lines.push(line);
      line = lead();
      fresh = true;
    }
    if (w.length > 0) {
      line += (fresh ? '' : ' ') + w;
      fresh = false;
    }
  }
  if (!fresh || lines.length === 0) lines.push(line);
  return lines.map((l) => l.trimEnd());
}

/** Cut a line that is not prose (log lines, table rows) into pieces that fit, continued with an indent. */
export function hardWrap(line: string, width = REPORT_WIDTH, indent = '', cont = '    '): string[] {
  const out: string[] = [];
  let rest = line;
  let first = true;
  while (indent.length + (first ? 0 : cont.length) + rest.length > width) {
    const lead = indent + (first ? '' : cont);
    const room = width - lead.length;
    // prefer a break at a space in the second half of the room
    let cut = rest.lastIndexOf(' ', room);
    if (cut < room / 2) cut = room;
    out.push((lead + rest.slice(0, cut)).trimEnd());
    rest = rest.slice(cut).replace(/^ /, '');
    first = false;
  }
  out.push((indent + (first ? '' : cont) + rest).trimEnd());
  return out;
}

/** Split a display command line (qemu.ts commandLine: words, single-quoted where needed) into words. */
export function splitDisplayedCommand(cmd: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < cmd.length) {
    while (cmd[i] === ' ') i++;
    if (i >= cmd.length) break;
    let w = '';
    while (i < cmd.length && cmd[i] !== ' ') {
      if (cmd[i] === "'") {
        const end = cmd.indexOf("'", i + 1);
        const stop = end < 0 ? cmd.length : end + 1;
        w += cmd.slice(i, stop);
        i = stop;
      } else {
        w += cmd[i]!;
        i++;
      }
    }
    words.push(w);
  }
  return words;
}

/**
 * A shell command (words as a shell would read them, already quoted) over several lines of at
 * most `width` columns, each continued with " \". An option and its value stay on one line
 * when they fit. A word too long for a line is cut where the shell joins it again: outside
 * quotes with a backslash-newline; inside single quotes by closing the quote, a backslash-
 * newline, and opening a new quote ('ab'\<newline>'cd' is the word abcd).
 */
export function wrapCommand(words: readonly string[], width = REPORT_WIDTH, indent = '  ', cont = '      '): string[] {
  // group options with their value
  const groups: string[][] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const next = words[i + 1];
    if (i > 0 && w.startsWith('-') && next !== undefined && !next.startsWith('-')) {
      groups.push([w, next]);
      i++;
    } else groups.push([w]);
  }
  const lines: string[] = [];
  let line = indent;
  const max = width - 2; // room for " \"
  const flush = () => {
    lines.push(line);
    line = cont;
  };
  for (const g of groups) {
    const sep = line.trim() === '' ? '' : ' ';
    const text = g.join(' ');
    if (line.length + sep.length + text.length <= max) {
      line += sep + text;
      continue;
    }
    if (line.trim() !== '') flush();
    // the group alone on fresh lines, cut where needed
    for (const [k, part] of g.entries()) {
      const s = k === 0 || line.trim() === '' ? '' : ' ';
      if (line.length + s.length + part.length <= max) {
        line += s + part;
        continue;
      }
      if (line.trim() !== '') flush();
      const pieces = cutShellWord(part, max - line.length, max);
      for (const piece of pieces.slice(0, -1)) {
        lines.push(line + piece);
        line = ''; // a continuation inside a word must start at column 0
      }
      line += pieces[pieces.length - 1]!;
    }
  }
  if (line.trim() !== '') lines.push(line);
  return lines.map((l, i) => (i < lines.length - 1 && !l.endsWith('\\') ? `${l} \\` : l));
}

/**
 * Cut one shell word into pieces of at most `firstRoom` (then `room`) columns, each but the last
 * ending in a backslash-newline that the shell removes. Inside single quotes the quote is closed
 * before the backslash and opened again on the next line; a backslash escape is never split.
 */
export function cutShellWord(word: string, firstRoom: number, room: number): string[] {
  const pieces: string[] = [];
  let piece = '';
  let inQuote = false;
  let limit = Math.max(4, firstRoom);
  for (let i = 0; i < word.length; i++) {
    const c = word[i]!;
    // an unquoted backslash escape is one unit
    const unit = !inQuote && c === '\\' && i + 1 < word.length ? word.slice(i, i + 2) : c;
    // room for the unit, and for a closing quote and the backslash if we have to cut after it
    const reserve = i + unit.length < word.length ? 2 : 0;
    if (piece.length + unit.length + reserve > limit && piece.length > 0 && piece !== "'") {
      pieces.push(inQuote ? `${piece}'\\` : `${piece}\\`);
      piece = inQuote ? "'" : '';
      limit = Math.max(4, room);
    }
    piece += unit;
    if (unit === "'") inQuote = !inQuote;
    i += unit.length - 1;
  }
  pieces.push(piece);
  return pieces;
}

// ---------------------------------------------------------------------------------------------
// The program in words

/** One step of a program in words, e.g. "t0: mmap region 1 (DUS) of q0, 1 page, rw, MAP_PRIVATE -> m3". */
export function describeStep(op: Op): string {
  return `${op.task}: ${descOf(op.op).describe(op as never)}`;
}

/** The test module's parameters for this device, as the agent passes them to insmod. */
export function testModuleParams(d: DeviceParams): string {
  return moduleParams(d)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

// ---------------------------------------------------------------------------------------------
// The semantics sheet

/** The section of the sheet about an op (its description's), for rules that cite none. */
export function sheetSectionOf(op: Op): string {
  return descOf(op.op).sheet;
}

/** docs/uacce-semantics.md of this checkout ('' if it is missing). */
export async function loadSemanticsSheet(): Promise<string> {
  try {
    return await fs.readFile(join(projectRoot(), 'docs', 'uacce-semantics.md'), 'utf8');
  } catch {
    return '';
  }
}

/** The sections of the sheet a rule text cites as Spec "name". */
export function citedSections(ruleText: string): string[] {
  return [...new Set([...ruleText.matchAll(/Spec "([^"]+)"/g)].map((m) => m[1]!))];
}

/**
 * One section of the sheet: the `## name…` heading's section, or, for a name that is a bullet
 * inside a section ("- mremap: …"), that bullet. Undefined when the sheet has neither.
 */
export function sheetSection(sheet: string, name: string): { heading: string; body: string[] } | undefined {
  const lines = sheet.split('\n');
  const heads: number[] = [];
  lines.forEach((l, i) => {
    if (l.startsWith('## ')) heads.push(i);
  });
  const bodyOf = (h: number) => {
    const next = heads.find((x) => x > h) ?? lines.length;
    return lines.slice(h + 1, next);
  };
  const lname = name.toLowerCase();
  for (const h of heads) {
    const title = lines[h]!.slice(3).trim();
    if (title.toLowerCase() === lname || title.toLowerCase().startsWith(lname + ' ')) return { heading: title, body: bodyOf(h) };
  }
  for (const h of heads) {
    const body = bodyOf(h);
    const at = body.findIndex((l) => l.toLowerCase().startsWith(`- ${lname}:`));
    if (at >= 0) {
      const end = body.findIndex((l, i) => i > at && !/^\s{2,}\S/.test(l));
      return { heading: `${lines[h]!.slice(3).trim()}, ${name}`, body: body.slice(at, end < 0 ? undefined : end) };
    }
  }
  return undefined;
}

/** Markdown lines to report lines: bullets and paragraphs re-wrapped, tables and code cut. */
function markdownLines(body: string[], indent: string, maxLines: number): string[] {
  const out: string[] = [];
  // join continuation lines of bullets and paragraphs
  const blocks: string[] = [];
  for (const raw of body) {
    // plain text: no code quotes, no emphasis marks
    const l = raw.replace(/`/g, '').replace(/\*\*([^*]+)\*\*/g, '$1').replace(/(^|[\s(])\*([^*\s][^*]*)\*/g, '$1$2');
    if (l.trim() === '') {
      blocks.push('');
      continue;
    }
    const prev = blocks[blocks.length - 1];
    const isStart = /^\s*([-*]|\d+\.)\s/.test(l) || l.startsWith('|') || prev === undefined || prev === '';
    if (!isStart && prev !== undefined && !prev.startsWith('|')) blocks[blocks.length - 1] = `${prev} ${l.trim()}`;
    else blocks.push(l.trimEnd());
  }
  for (const b of blocks) {
    if (b === '') {
      if (out.length > 0 && out[out.length - 1] !== '') out.push('');
      continue;
    }
    if (b.startsWith('|')) {
      if (/^\|[\s|:-]+\|$/.test(b)) continue; // the header rule of a table
      out.push(...hardWrap(b, REPORT_WIDTH, indent));
      continue;
    }
    const m = /^(\s*)([-*]|\d+\.)\s+(.*)$/.exec(b);
    if (m) {
      const lead = indent + m[1]! + m[2]! + ' ';
      out.push(...wrapText(m[3]!, REPORT_WIDTH, lead, ' '.repeat(lead.length)));
    } else out.push(...wrapText(b, REPORT_WIDTH, indent));
  }
  while (out.length > 0 && out[out.length - 1] === '') out.pop();
  if (out.length > maxLines) return [...out.slice(0, maxLines), `${indent}[… see docs/uacce-semantics.md]`];
  return out;
}

// ---------------------------------------------------------------------------------------------
// The report

export interface ReportKernel {
  exactSpec: string;
  version: string;
  release: string;
  debianVersion?: string;
  arch: string;
  configHash: string;
  compiler?: string;
  /** where uacce came from (kernels/types.ts UacceOrigin.text) */
  uacce?: string;
}

export interface ReportInput {
  kind: FindingKind;
  title: string;
  findingId?: string;
  kernel: ReportKernel;
  /**
   * QEMU as the guest it was reproduced on ran (qemu.ts command()): the command line with its
   * files by name, never by their paths on the reporter's machine (those go to repro.json)
   */
  qemu?: { commandLine: string; kernelFile: string; initrdFile: string };
  /** the minimized program */
  program: Program;
  /** what the model expected at each op of the program ('' or undefined: not checked) */
  expected?: (string | undefined)[];
  /** divergences: where and how */
  divergence?: { index: number; expected: string; observed: string; rules: string[]; stateBefore?: string };
  /** the kernel's report (oracle excerpt) of a reproducing run, if it had one */
  kernelReport?: string;
  /**
   * Paths of this machine the kernel's report may name (module sources, compiled in for WARN
   * and BUG lines) and what the report says instead, most specific first (reportPathNames)
   */
  pathNames?: readonly { from: string; to: string }[];
  /** module file names loaded at boot, in order (extra modules, then uacce.ko) */
  bootModules: string[];
  /** where the guest keeps the modules */
  moduleDir?: string;
  reliability: { hits: number; runs: number; what: string };
  minimization?: { opsBefore: number; opsAfter: number; runs: number; timeMs: number; note?: string; skipped?: boolean };
  howToRun: { build: string[]; run: string[]; note?: string };
  /** crashes whose program alone did not reproduce: the replay after the programs run before it since boot */
  afterPreceding?: {
    programs: number;
    hits: number;
    runs: number;
    shownBy: (number | null)[];
    /** the preceding programs it needs (preceding.min.json), and how often that sequence showed it */
    reduced?: { origins: string[]; timeMs: number; stoppedByTime: boolean; hits: number; runs: number };
  };
  /** the text of docs/uacce-semantics.md ('' to leave the sheet out) */
  semantics: string;
  /** the seed program's origin, e.g. "generated: seed 7, program 216" */
  origin?: string;
  /** the bug this finding is part of, when it has other titles (findings/bugs.ts): every title and why */
  bug?: { titles: string[]; why: string[] };
  /** where it came in, when svadiff bisect found the first bad version or commit (bisect.json) */
  introducedBy?: { firstBad: string; lastGood?: string; subject?: string; fixes?: string };
  /** fix checks of patches that claim or fixed this finding (fixcheck.json of svadiff fixcheck) */
  fixChecks?: { patch: string; ok: boolean; kernels: { release: string; status: 'fixed' | 'left' | 'not shown'; introduced: string[] }[] }[];
}

/**
 * What a report calls the paths of the reporter's machine: the module sources by their place in
 * the kernel's tree (uacce.c is linux-source's drivers/misc/uacce/uacce.c, copied unchanged by
 * kernels/fetch.ts) or in svadiff's (the test module is guest/module/), then svadiff's cache and
 * the home directory by name.
 */
export function reportPathNames(p: { uacceKo: string; testModuleKo: string; cache: string; home: string }): { from: string; to: string }[] {
  const uacce = dirname(p.uacceKo);
  const svadiffGuest = dirname(dirname(p.testModuleKo)); // <modules>/svadiff/{module,include}
  return [
    { from: `${uacce}/include/`, to: 'include/' },
    { from: `${uacce}/`, to: 'drivers/misc/uacce/' },
    { from: `${svadiffGuest}/`, to: 'guest/' },
    { from: p.cache, to: '$SVADIFF_CACHE' },
    { from: p.home, to: '~' },
  ].filter((x) => x.from.length > 2);
}

function namePaths(text: string, names: readonly { from: string; to: string }[] | undefined): string {
  let out = text;
  for (const n of names ?? []) out = out.split(n.from).join(n.to);
  return out;
}

/** "reproduced 5/5", "flaky (2/5)", "did not reproduce (0/5), flaky" or "not verified". */
export function reliabilityText(hits: number, runs: number): string {
  if (runs === 0) return 'not verified';
  if (runs > 0 && hits === runs) return `reproduced ${hits}/${runs}`;
  if (hits === 0) return `did not reproduce (0/${runs}), flaky`;
  return `flaky (${hits}/${runs})`;
}

/** "[BUG] uacce: mmap: expected ok, got EEXIST [mmap.ok]" */
export function subjectLine(kind: FindingKind, title: string): string {
  const subsystem = /\b(iommu|dmar|smmu|pasid)\b/i.test(title) && kind !== 'divergence' ? 'iommu' : 'uacce';
  return `[BUG] ${subsystem}: ${title}`;
}

function section(out: string[], title: string): void {
  out.push('', title, '-'.repeat(Math.min(REPORT_WIDTH, title.length)));
}

const MAX_REPORT_LINES = 60;

export function renderReport(r: ReportInput): string {
  const out: string[] = [];
  const title = stripControl(r.title).replace(/\s+/g, ' ');
  out.push(...wrapText(subjectLine(r.kind, title), REPORT_WIDTH, '', '    '));
  out.push('');
  const what =
    r.kind === 'divergence'
      ? 'The kernel did something other than what uacce is meant to do (see "Expected versus observed" below).'
      : r.kind === 'hang'
        ? 'The kernel stopped making progress (a hang) while running the program below.'
        : 'The kernel reported a problem while running the program below.';
  out.push(...wrapText(`${what} Found by svadiff, a differential fuzzer that compares the kernel with a reference model of the intended uacce semantics.`));

  section(out, 'Kernel');
  out.push(...wrapText(`${r.kernel.release} (${r.kernel.exactSpec}${r.kernel.debianVersion ? `, Debian ${r.kernel.debianVersion}` : ''}), ${r.kernel.arch}`, REPORT_WIDTH, '  ', '    '));
  out.push(...wrapText(`config sha256 ${r.kernel.configHash.slice(0, 16)}`, REPORT_WIDTH, '  '));
  if (r.kernel.compiler) out.push(...wrapText(`built with ${r.kernel.compiler}`, REPORT_WIDTH, '  ', '    '));
  if (r.kernel.uacce) out.push(...wrapText(r.kernel.uacce, REPORT_WIDTH, '  ', '    '));
  else out.push(...wrapText('uacce built as a module from the matching linux-source (Debian kernels have CONFIG_UACCE off).', REPORT_WIDTH, '  ', '    '));

  section(out, 'Machine');
  if (r.qemu) {
    const q = r.qemu;
    out.push('  QEMU, as svadiff ran it:');
    out.push(...wrapCommand(splitDisplayedCommand(stripControl(q.commandLine))));
    const spec = r.kernel.exactSpec;
    out.push(
      ...wrapText(
        `${q.kernelFile} is the kernel image of Debian's ${r.kernel.release}: svadiff kernels fetch ${spec} downloads it and builds uacce.ko and svadiff_test.ko for it. ` +
          `${q.initrdFile} holds busybox, the svadiff agent (run by /init) and those modules: svadiff boot ${spec} --json builds it and prints the QEMU command with the paths of both files.`,
        REPORT_WIDTH,
        '  ',
        '  ',
      ),
    );
  } else out.push('  (no guest was booted for this report)');

  section(out, 'Test device and modules');
  const dir = r.moduleDir ?? '/lib/modules/svadiff';
  out.push(...wrapText('svadiff_test.ko plays the uacce parent driver without hardware (docs/test-device.md). Loaded as:', REPORT_WIDTH, '  ', '  '));
  for (const m of r.bootModules) out.push(...wrapCommand(['insmod', `${dir}/${m}`]));
  out.push(...wrapCommand(['insmod', `${dir}/svadiff_test.ko`, ...testModuleParams(r.program.device).split(' ')]));

  section(out, `Steps (${r.program.ops.length} operations, one at a time, in this order)`);
  const width = String(r.program.ops.length).length;
  r.program.ops.forEach((op, i) => {
    const n = `${String(i + 1).padStart(width)}. `;
    const under = ' '.repeat(2 + n.length);
    out.push(...wrapText(describeStep(op), REPORT_WIDTH, `  ${n}`, under + '  '));
    const d = r.divergence;
    const exp = d?.index === i ? d.expected : r.expected?.[i];
    const what = d?.index === i ? `expected: ${exp}, observed: ${d.observed}   <-- the kernel diverges here` : `expected: ${exp}`;
    if (exp) out.push(...wrapText(what, REPORT_WIDTH, under, under + '  '));
  });
  if (r.origin) out.push(...wrapText(`(minimized from ${r.origin})`, REPORT_WIDTH, '  '));

  section(out, 'Expected versus observed');
  if (r.divergence) {
    const d = r.divergence;
    const op = r.program.ops[d.index];
    out.push(...wrapText(`At step ${d.index + 1}${op ? ` (${op.op} by ${op.task})` : ''}:`, REPORT_WIDTH, '  '));
    out.push(...wrapText(`expected: ${d.expected}`, REPORT_WIDTH, '    ', '      '));
    out.push(...wrapText(`observed: ${d.observed}`, REPORT_WIDTH, '    ', '      '));
    for (const rule of d.rules) {
      out.push('');
      out.push(...wrapText(`Rule ${rule}: ${describeRule(rule)}`, REPORT_WIDTH, '  ', '    '));
      const cited = citedSections(describeRule(rule));
      const names = cited.length > 0 ? cited : op ? [sheetSectionOf(op)] : [];
      for (const name of names) {
        const s = r.semantics ? sheetSection(r.semantics, name) : undefined;
        if (!s) continue;
        out.push('');
        out.push(...wrapText(`From the uacce semantics sheet (docs/uacce-semantics.md), "${s.heading}":`, REPORT_WIDTH, '  ', '    '));
        out.push(...markdownLines(s.body, '    ', 40));
      }
    }
    if (d.stateBefore) {
      out.push('', '  The model\'s view just before that step:');
      for (const l of d.stateBefore.split('\n')) out.push(...hardWrap(stripControl(l), REPORT_WIDTH, '    '));
    }
  } else {
    out.push(...wrapText(r.kind === 'hang' ? 'expected: every operation returns; observed: the kernel hung (report below).' : 'expected: no kernel report; observed: the report below.', REPORT_WIDTH, '  ', '    '));
  }

  section(out, 'Kernel log');
  if (r.kernelReport && r.kernelReport.trim() !== '') {
    const lines = namePaths(stripControl(r.kernelReport), r.pathNames).split('\n');
    for (const l of lines.slice(0, MAX_REPORT_LINES)) out.push(...hardWrap(l, REPORT_WIDTH, '  '));
    if (lines.length > MAX_REPORT_LINES) out.push(`  [… ${lines.length - MAX_REPORT_LINES} more lines in dmesg.txt]`);
  } else {
    out.push(...wrapText('No kernel report (no oops, warning, hang or IOMMU fault) during the run: the kernel returned a wrong result quietly.', REPORT_WIDTH, '  ', '  '));
  }

  if (r.introducedBy) {
    const b = r.introducedBy;
    section(out, 'Introduced by');
    out.push(...wrapText(`svadiff bisect: the first version or commit that shows it is ${b.firstBad}${b.subject ? ` ("${b.subject}")` : ''}${b.lastGood ? `; the last that does not is ${b.lastGood}` : ''}.`, REPORT_WIDTH, '  ', '    '));
    if (b.fixes) out.push(...wrapText(`A fix would carry: ${b.fixes}`, REPORT_WIDTH, '  ', '    '));
  }
  if (r.fixChecks && r.fixChecks.length > 0) {
    section(out, 'Fix verification');
    for (const c of r.fixChecks) {
      out.push(...wrapText(`${c.patch} (svadiff fixcheck: ${c.ok ? 'fixes what it claims, introduces nothing' : 'REJECTED'}):`, REPORT_WIDTH, '  ', '    '));
      for (const k of c.kernels) {
        out.push(...wrapText(`${k.release}: ${k.status}${k.introduced.length ? `; introduced ${k.introduced.join('; ')}` : '; introduced nothing'}`, REPORT_WIDTH, '    ', '      '));
      }
    }
  }

  if (r.bug && r.bug.titles.length > 1) {
    section(out, 'The same bug under other titles');
    out.push(...wrapText('svadiff groups these titles into one bug; the kernel reported it under each of them:', REPORT_WIDTH, '  ', '  '));
    for (const t of r.bug.titles) out.push(...wrapText(`- ${stripControl(t)}`, REPORT_WIDTH, '    ', '      '));
    out.push(...wrapText('Why:', REPORT_WIDTH, '  '));
    for (const w of r.bug.why) out.push(...wrapText(`- ${stripControl(w)}`, REPORT_WIDTH, '    ', '      '));
  }

  section(out, 'Reproducer');
  out.push(...wrapText(`Reliability: ${reliabilityText(r.reliability.hits, r.reliability.runs)} (${r.reliability.what}).`, REPORT_WIDTH, '  ', '    '));
  if (r.afterPreceding) {
    const a = r.afterPreceding;
    const by = [...new Set(a.shownBy.filter((x): x is number => x !== null))].map((x) => x + 1);
    out.push(
      ...wrapText(
        `The program alone did not show it. Replayed after the ${a.programs - 1} programs the guest had run before it since boot (preceding.json, then program.json, on a fresh guest): ${reliabilityText(a.hits, a.runs)}` +
          (by.length ? `, shown by program ${by.join(', ')} of ${a.programs}` : '') +
          (a.hits > 0 ? '. The report is the delayed effect of what an earlier program did.' : '. The cause is not among the programs svadiff kept.'),
        REPORT_WIDTH,
        '  ',
        '    ',
      ),
    );
    if (a.reduced) {
      const r = a.reduced;
      out.push(
        ...wrapText(
          `It needs ${r.origins.length} of the ${a.programs - 1} (preceding.min.json${r.origins.length ? `: ${r.origins.join('; ')}` : ''}), found in ${Math.round(r.timeMs / 1000)} s` +
            `${r.stoppedByTime ? ' (the time budget ran out, so some may not be needed)' : ''}; those, then program.json, on a fresh guest: ${reliabilityText(r.hits, r.runs)}.`,
          REPORT_WIDTH,
          '  ',
          '    ',
        ),
      );
    }
  }
  if (r.minimization?.skipped) {
    const m = r.minimization;
    out.push(...wrapText(`Not minimized (${m.opsAfter} operations)${m.note ? `; ${m.note}` : ''}.`, REPORT_WIDTH, '  ', '    '));
  } else if (r.minimization) {
    const m = r.minimization;
    out.push(
      ...wrapText(
        `Minimized from ${m.opsBefore} to ${m.opsAfter} operations in ${Math.round(m.timeMs / 1000)} s (${m.runs} runs on the guest)${m.note ? `; ${m.note}` : ''}.`,
        REPORT_WIDTH,
        '  ',
        '    ',
      ),
    );
  }
  out.push('', '  Build:');
  for (const l of r.howToRun.build) out.push(...wrapCommand(splitDisplayedCommand(l), REPORT_WIDTH, '    ', '        '));
  out.push('  Load the modules (as above), then run as root in the guest:');
  for (const l of r.howToRun.run) out.push(...wrapCommand(splitDisplayedCommand(l), REPORT_WIDTH, '    ', '        '));
  if (r.howToRun.note) out.push(...wrapText(r.howToRun.note, REPORT_WIDTH, '  ', '  '));
  if (r.kind !== 'divergence') {
    // the reproducer checks return values; a splat is the kernel's to print
    out.push(...wrapText(`The ${r.kind === 'hang' ? 'hang' : 'crash'} itself shows in dmesg (the kernel log above), during the run or at rmmod, whatever the exit status.`, REPORT_WIDTH, '  ', '  '));
  }
  if (r.findingId) {
    out.push('');
    out.push(...wrapText(`svadiff finding ${r.findingId}: program.json, program.min.json, repro.c, dmesg.txt and console.log are next to this file.`, REPORT_WIDTH, '  ', '  '));
  }
  return out.map((l) => l.trimEnd()).join('\n') + '\n';
}
