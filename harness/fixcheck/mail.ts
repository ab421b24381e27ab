/**
 * The mail that sends a checked fix: the patch as `git format-patch` wrote it (subject, commit
 * message with its Fixes: line, diff), and under its `---` line what a maintainer needs besides:
 * the bug it fixes in steps, what the kernel did without the patch (the divergence, or the start
 * of the kernel's report), main() of the C reproducer, and the fix check's verification on each
 * kernel. Pure: everything comes in through MailInput. Lines of prose are at most REPORT_WIDTH
 * columns; the patch, the C and the kernel's log are kept as they are.
 */
import type { Program } from '../program/types.js';
import { describeStep, REPORT_WIDTH, wrapText } from '../repro/report.js';
import { stripControl } from '../util/sanitize.js';
import { summarizeKernel, type CaseEvidence, type Claim, type KernelCheck } from './verdict.js';

export interface ParsedPatch {
  /** "uacce: ..." without "[PATCH]" */
  subject: string;
  /** the header lines before the subject (From, Date) */
  from?: string;
  /** the commit message without its trailers */
  body: string[];
  /** Fixes:, Cc:, Signed-off-by: ... */
  trailers: string[];
  /** from the line after `---` on: diffstat and diff */
  diff: string;
}

/** Read a patch as `git format-patch` writes it (a plain diff gives no subject: an error). */
export function parsePatch(text: string): ParsedPatch {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const subjAt = lines.findIndex((l) => l.startsWith('Subject: '));
  if (subjAt < 0) throw new Error('the patch has no Subject: line; write it with git format-patch');
  let subject = lines[subjAt]!.slice('Subject: '.length);
  let i = subjAt + 1;
  while (i < lines.length && /^\s+\S/.test(lines[i]!)) subject += ` ${lines[i++]!.trim()}`;
  subject = subject.replace(/^\[PATCH[^\]]*\]\s*/, '');
  const fromLine = lines.slice(0, subjAt).findIndex((l) => l.startsWith('From: '));
  let from: string | undefined;
  if (fromLine >= 0) {
    from = lines[fromLine]!.slice('From: '.length);
    for (let j = fromLine + 1; j < subjAt && /^\s+\S/.test(lines[j]!); j++) from += ` ${lines[j]!.trim()}`;
  }
  while (i < lines.length && lines[i] !== '' ) i++; // the rest of the header
  const sep = lines.findIndex((l, k) => k > i && l === '---');
  if (sep < 0) throw new Error('the patch has no "---" line before its diff; write it with git format-patch');
  const message = lines.slice(i + 1, sep);
  while (message.length > 0 && message[message.length - 1] === '') message.pop();
  let t = message.length;
  while (t > 0 && /^[A-Za-z][A-Za-z-]*: \S/.test(message[t - 1]!)) t--;
  const body = message.slice(0, t);
  while (body.length > 0 && body[body.length - 1] === '') body.pop();
  const out: ParsedPatch = { subject, body, trailers: message.slice(t), diff: lines.slice(sep + 1).join('\n').replace(/\n+$/, '\n') };
  if (from) out.from = from;
  return out;
}

/** One fix check behind the mail: which patch file it checked and what it found. */
export interface MailCheck {
  patch: string;
  kernels: readonly KernelCheck[];
  date: string;
}

export interface MailInput {
  patch: ParsedPatch;
  /** the bug this mail reports (a claim of the patch) and its program */
  bug: Claim & { program: Program };
  /** the other bugs the same patch fixes */
  alsoFixes: readonly Claim[];
  /** the kernel release and evidence of the bug without the patch (from a fix check) */
  shown?: { release: string; evidence: CaseEvidence };
  /** main() of the C reproducer, and the name of the whole file */
  reproMain?: { code: string; file: string };
  checks: readonly MailCheck[];
}

const MAX_SPLAT_LINES = 30;

function secs(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** The verification lines of one kernel of one check. */
export function verificationLines(patch: string, k: KernelCheck): string[] {
  const s = summarizeKernel(k);
  const L: string[] = [];
  const fuzz = k.fuzz ? `, fuzzing ${secs(k.fuzz.timeMs)} (the same ${Math.min(k.fuzz.programs.patched, k.fuzz.programs.unpatched)} programs on both builds)` : ', no fuzzing';
  L.push(...wrapText(`${k.release} with ${patch}: fixed ${s.fixed.length}, left ${s.left.length}, introduced ${s.introduced.length}; ${k.cases.length} program${k.cases.length === 1 ? '' : 's'} on both builds${fuzz}; ${secs(k.times.totalMs)}`, REPORT_WIDTH, '  ', '    '));
  for (const [what, list] of [['fixed', s.fixed], ['left', s.left], ['introduced', s.introduced], ['flaky (shown once, not again)', s.flaky]] as const) {
    for (const t of list) L.push(...wrapText(`${what}: ${t}`, REPORT_WIDTH, '    ', '      '));
  }
  return L;
}

export function renderMail(m: MailInput): string {
  const p = m.patch;
  const out: string[] = [];
  if (p.from) out.push(`From: ${p.from}`);
  out.push(`Subject: [PATCH] ${p.subject}`, '');
  out.push(...p.body, '');
  out.push(...p.trailers);
  out.push('---');
  out.push(...wrapText('Found by svadiff, a differential fuzzer that runs uacce on real kernels under QEMU with a test parent driver (svadiff_test.ko) and compares every result with a model of the intended semantics. This mail is about:'));
  out.push(...wrapText(`${m.bug.title} (${m.bug.name})`, REPORT_WIDTH, '  ', '    '));
  if (m.alsoFixes.length > 0) {
    out.push('', ...wrapText('The same patch also fixes:'));
    for (const c of m.alsoFixes) out.push(...wrapText(`- ${c.title} (${c.name})`, REPORT_WIDTH, '  ', '    '));
  }
  out.push('', 'Steps (one process):');
  const w = String(m.bug.program.ops.length).length;
  m.bug.program.ops.forEach((op, i) => {
    const n = `${String(i + 1).padStart(w)}. `;
    out.push(...wrapText(describeStep(op), REPORT_WIDTH, `  ${n}`, ' '.repeat(2 + n.length)));
  });
  if (m.shown) {
    const e = m.shown.evidence;
    out.push('');
    if (e.kind === 'divergence' && e.opIndex !== undefined) {
      out.push(...wrapText(`Without the patch (${m.shown.release}), step ${e.opIndex + 1} gives ${e.observed ?? '?'} where ${e.expected ?? '?'} is expected.`));
    } else if (e.excerpt) {
      out.push(...wrapText(`Without the patch (${m.shown.release}), the kernel reports${e.opIndex !== undefined ? ` at step ${e.opIndex + 1}` : ''}:`));
      const lines = stripControl(e.excerpt).split('\n').filter((l) => l.trim() !== '');
      for (const l of lines.slice(0, MAX_SPLAT_LINES)) out.push(`  ${l}`);
      if (lines.length > MAX_SPLAT_LINES) out.push(`  [... ${lines.length - MAX_SPLAT_LINES} more lines]`);
    } else out.push(...wrapText(`Without the patch (${m.shown.release}): ${e.title}.`));
  }
  if (m.reproMain) {
    out.push('', ...wrapText(`The reproducer's main() (${m.reproMain.file} is the whole file, with the helpers it calls; it prints each step and exits 1 at the first result the model does not allow):`), '');
    out.push(...m.reproMain.code.replace(/\n+$/, '').split('\n'));
  }
  out.push('', ...wrapText('Verification (svadiff fixcheck: every regression program and known finding of the kernel series and the seed programs, run on the kernel\'s own uacce.ko and on one built with the patch, then fuzzing both):'));
  for (const c of m.checks) for (const k of c.kernels) out.push(...verificationLines(c.patch, k));
  out.push('');
  out.push(p.diff.replace(/\n$/, ''));
  return out.map((l) => l.replace(/\s+$/, '')).join('\n') + '\n';
}

/** main() of a generated C reproducer (csource.ts), from its line to its closing brace. */
export function reproMainOf(c: string): string {
  const lines = c.split('\n');
  const start = lines.findIndex((l) => /^int main\(/.test(l));
  if (start < 0) throw new Error('the reproducer has no main()');
  const end = lines.findIndex((l, i) => i > start && l === '}');
  return lines.slice(start, end + 1).join('\n') + '\n';
}
