/**
 * The oracle's console part: kernel log lines in, titled crash reports out, in the manner of
 * syzkaller's pkg/report. A title is what kernel developers already know ("WARNING in f",
 * "KFENCE: use-after-free read in f", "DMAR fault: PTE Read access is not set") and is stable
 * across runs: no addresses, pids, timestamps or register values, so that findings can be
 * deduplicated by title.
 *
 * Input is the serial console (already split into lines) and/or /dev/kmsg records. Guest output
 * is untrusted: every line is stripped of control characters and cut to MAX_LOG_LINE before any
 * matching, reports are cut at MAX_REPORT_LINES and excerpts at MAX_EXCERPT.
 *
 * Every report pattern lives in REPORT_PATTERNS below, one commented entry each; README.md next
 * to this file has the table of titles.
 */
import { stripControl, unescapeKmsg } from '../util/sanitize.js';

/**
 * - crash: the kernel killed a task or found memory corruption (oops, BUG(), KASAN, KFENCE,
 *   slub debug, list corruption, panic);
 * - warning: the kernel noticed a bug and went on (WARN, refcount_t, scheduling while atomic,
 *   lockdep, x86/PAT complaints);
 * - hang: hung task, RCU stall, soft lockup;
 * - iommu-fault: the IOMMU refused a DMA (DMAR fault, SMMU event, AMD-Vi event);
 * - device: a line of the svadiff test device about what it saw (a work item that faulted, a
 *   queue uacce did not put). Whether it was expected is the reference model's decision, not
 *   the oracle's.
 */
export type ReportKind = 'crash' | 'warning' | 'hang' | 'iommu-fault' | 'device';

/** One log line; `seq` is the /dev/kmsg sequence number when the line came from a kmsg record. */
export interface LogLine {
  text: string;
  seq?: number;
}

export interface CrashReport {
  /** one line, stable across runs */
  title: string;
  kind: ReportKind;
  /** name of the REPORT_PATTERNS entry that matched */
  pattern: string;
  /** first interesting function of the report (suffixes such as .isra.0 removed) */
  frame?: string;
  /** module of that frame, e.g. "splat" for "f+0x1/0x2 [splat]" */
  frameModule?: string;
  /** first and last line of the report: indices into the input lines, inclusive */
  start: number;
  end: number;
  /** kmsg sequence numbers of the first and last line, when known */
  startSeq?: number;
  endSeq?: number;
  /** the report's lines with console prefixes removed, bounded */
  excerpt: string;
  /** the report is cut short or has no usable frame; the title may then be less precise */
  corrupted: boolean;
  corruptedReason?: string;
  /**
   * the kernel is tainted or stuck after this kind of report: reboot the guest before trusting
   * it again (false for IOMMU faults, x86/PAT complaints and test device lines)
   */
  needsReboot: boolean;
  /** fields of one-line reports (device and IOMMU faults): device, addr, pasid, queue, reason … */
  details?: Record<string, string>;
}

export interface Suppression {
  /**
   * 'line': console lines that are known noise; they never start a report and never count as
   * a new taint. 'title': reports with a matching title are dropped (returned as suppressed).
   */
  on: 'line' | 'title';
  match: RegExp;
  /** why this is noise, for the log and for reviewers */
  reason: string;
}

export interface SuppressedReport {
  report: CrashReport;
  reason: string;
}

export interface ParseResult {
  reports: CrashReport[];
  suppressed: SuppressedReport[];
}

/** Longest line the parser looks at; the kernel's own limit is 1024 (PRINTK_MESSAGE_MAX). */
export const MAX_LOG_LINE = 2048;
/** A report longer than this is cut (hung-task dumps of many tasks can be long). */
export const MAX_REPORT_LINES = 600;
/** Excerpts are cut to this many characters. */
export const MAX_EXCERPT = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Lines: console prefixes, /dev/kmsg records

/** "[   12.345678] " with an optional caller id ("[T123]", CONFIG_PRINTK_CALLER) and log level. */
const CONSOLE_PREFIX_RE = /^(?:<\d{1,3}>)?\[\s*\d+\.\d+\](?:\[\s*[CT]\d+\])? ?/;
/** The same prefix after user-space output that did not end its line ("done[    3.45] ..."). */
const EMBEDDED_PREFIX_RE = /(?:<\d{1,3}>)?\[\s*\d+\.\d{6}\](?:\[\s*[CT]\d+\])? ?/;

/** One line as the parser sees it: control characters removed, bounded, console prefix removed. */
export function stripConsolePrefix(line: string): string {
  const text = stripControl(line.length > MAX_LOG_LINE ? line.slice(0, MAX_LOG_LINE) : line);
  const m = CONSOLE_PREFIX_RE.exec(text);
  if (m) return text.slice(m[0].length);
  const e = EMBEDDED_PREFIX_RE.exec(text);
  if (e) return text.slice(e.index + e[0].length);
  return text;
}

/** One kernel log record: what the agent forwards (its K lines) and what the oracle reads. */
export interface KmsgRecord {
  seq: number;
  /** log level, 0-7 */
  level: number;
  /** microseconds since boot */
  usec: number;
  /** the message, \xNN escapes decoded, control characters but TAB and LF removed; continuation lines joined with \n */
  text: string;
}

/** A record of a /dev/kmsg dump (Documentation/ABI/testing/dev-kmsg): also what the agent leaves out. */
export interface KmsgDumpRecord extends KmsgRecord {
  /** syslog facility (the record's first field is facility * 8 + level) */
  facility: number;
  /** '-' (or 'c' in old kernels): continuation flags */
  flags: string;
  /** "T123" or "C0" with CONFIG_PRINTK_CALLER */
  caller?: string;
  /** " KEY=value" lines that followed the record (SUBSYSTEM, DEVICE, …) */
  dict: Record<string, string>;
}

const KMSG_HEAD_RE = /^(\d{1,4}),(\d{1,20}),(\d{1,20}),([^,;]*)((?:,[^;]*)?);(.*)$/;


/**
 * Parse the text read from /dev/kmsg (one record per line, dictionary lines start with a space).
 * Lines that are not records are skipped: the caller gets what could be understood.
 */
export function parseKmsg(text: string): KmsgDumpRecord[] {
  const out: KmsgDumpRecord[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.length > MAX_LOG_LINE * 4 ? raw.slice(0, MAX_LOG_LINE * 4) : raw;
    if (line.startsWith(' ')) {
      const last = out[out.length - 1];
      const eq = line.indexOf('=');
      if (last && eq > 1 && Object.keys(last.dict).length < 16) {
        last.dict[stripControl(line.slice(1, eq))] = stripControl(unescapeKmsg(line.slice(eq + 1)));
      }
      continue;
    }
    const m = KMSG_HEAD_RE.exec(line);
    if (!m) continue;
    const pri = Number(m[1]);
    const rec: KmsgDumpRecord = {
      facility: pri >> 3,
      level: pri & 7,
      seq: Number(m[2]),
      usec: Number(m[3]),
      flags: m[4] ?? '',
      text: stripControl(unescapeKmsg(m[6] ?? '').replace(/\r/g, '')),
      dict: {},
    };
    const caller = /,caller=([CT]\d+)/.exec(m[5] ?? '');
    if (caller?.[1]) rec.caller = caller[1];
    out.push(rec);
  }
  return out;
}

/** The lines of kmsg records (a record with embedded newlines gives several lines, same seq). */
export function kmsgLines(records: readonly KmsgRecord[]): LogLine[] {
  const out: LogLine[] = [];
  for (const r of records) for (const text of r.text.split('\n')) out.push({ text, seq: r.seq });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Frames

/** " ? f+0x1a/0x30 [mod]" (x86, arm64, KFENCE's indented stacks); "?" marks an unreliable frame. */
const FRAME_RE = /^\s*(\?\s+)?(?:\[<[0-9a-f]+>\]\s+)?([A-Za-z_.$][\w.$]*)\+0x[0-9a-f]+\/0x[0-9a-f]+(?:\s+\[([\w-]+)\])?/;
/** The faulting kernel PC: "RIP: 0010:f+0x1a/0x30 [mod]" (x86), "pc : f+0x10/0x20 [mod]" (arm64). */
const RIP_RE = /^(?:RIP: [0-9a-f]{4}:|pc : )([A-Za-z_.$][\w.$]*)\+0x[0-9a-f]+\/0x[0-9a-f]+(?:\s+\[([\w-]+)\])?/;
const CALL_TRACE_RE = /^\s*Call [Tt]race:/;
/** KFENCE's access line opens the stack of the bad access (mm/kfence/report.c kfence_report_error). */
const KFENCE_ACCESS_RE = /^(?:Use-after-free|Out-of-bounds|Invalid|Corrupted memory)\b.*\b(?:at|of) 0x[0-9a-f]+.*:$/;
/** lockdep's "… at: f+0x…" naming where the lock is being taken (kernel/locking/lockdep.c). */
const LOCKDEP_AT_RE = /, at: ([A-Za-z_.$][\w.$]*)\+0x[0-9a-f]+\/0x[0-9a-f]+/;

/** Remove compiler clone suffixes so that the same function has the same name in every build. */
export function normalizeFunction(name: string): string {
  let n = name;
  for (;;) {
    const next = n.replace(/\.(?:isra|constprop|part|cold|llvm|lto_priv|localalias|specialized)(?:\.\d+)*$/, '');
    if (next === n) return n;
    n = next;
  }
}

/**
 * Frames that report, trap, or take part in every such report: never chosen while another
 * frame is available. Matched against normalized names.
 */
const HELPER_FRAMES: readonly RegExp[] = [
  // stack dumping, WARN/BUG and oops machinery (lib/dump_stack.c, kernel/panic.c, lib/bug.c)
  /^dump_stack(?:_lvl)?$/,
  /^show_(?:stack|trace_log_lvl|regs)/,
  // arm64's unwinder prints itself first (arch/arm64/kernel/stacktrace.c dump_backtrace)
  /^dump_backtrace$/,
  /^__warn(?:_printk)?$/,
  /^warn_slowpath/,
  /^report_bug$/,
  /^handle_bug$/,
  /^fixup_bug$/,
  /^do_error_trap$/,
  /^do_trap$/,
  /^die(?:_body|_kernel_fault)?$/,
  /^__die/,
  /^oops_/,
  /^(?:v?panic|nmi_panic)$/,
  /^_?printk$/,
  /^vprintk/,
  // exception and interrupt entry, x86 (arch/x86/entry, arch/x86/mm/fault.c) and arm64 (entry-common.c, fault.c)
  /^asm_(?:exc|sysvec|common_interrupt)/,
  /^exc_/,
  /^_{0,2}sysvec_/,
  /^_{0,2}irq_exit/,
  /^page_fault_oops$/,
  /^kernelmode_fixup_or_oops$/,
  /^_{0,2}bad_area_nosemaphore$/,
  /^do_kern_addr_fault$/,
  /^handle_page_fault$/,
  /^el1h?_\w+$/,
  /^do_mem_abort$/,
  /^__do_kernel_fault$/,
  /^do_translation_fault$/,
  /^do_el1_\w+$/,
  /^bug_handler$/,
  /^(?:call_el1_break_hook|call_break_hook|brk_handler|do_debug_exception|arm64_notify_die)$/,
  // sanitizers and their reports (mm/kasan, mm/kfence)
  /^_{0,2}kasan/,
  /^__asan_/,
  /^_{0,2}kfence/,
  /^print_report$/,
  /^print_address_description/,
  /^(?:start|end)_report$/,
  // refcount_t and list debugging (lib/refcount.c, lib/list_debug.c)
  /^refcount_warn_saturate$/,
  /^_{0,2}refcount_/,
  /^__list_(?:add|del)(?:_entry)?(?:_valid(?:_or_report)?)?$/,
  /^list_(?:add|del)\w*$/,
  // the slab allocator's debugging, alloc and free paths (mm/slub.c)
  /^(?:object_err|slab_err|slab_bug|slab_fix|print_trailer|print_tracking|on_freelist|free_debug_processing|free_consistency_checks|free_to_partial_list)$/,
  /^(?:__)?(?:kfree|kvfree|kfree_sensitive|kmem_cache_free|slab_free|do_slab_free|__slab_free|kmem_cache_alloc|kmalloc|kvmalloc|krealloc)(?:_\w+)?$/,
  // "check_*" helpers of the checkers (slub, usercopy, …)
  /^_{0,2}check_/,
  // the scheduler's report of scheduling while atomic (kernel/sched/core.c)
  /^__schedule_bug$/,
  // busy waits: the top of every soft lockup and RCU stall that spins in a delay
  /^(?:delay_tsc|delay_loop|delay_halt\w*|__const_udelay|__udelay|__ndelay|__delay|udelay|mdelay|cpu_relax)$/,
];

/** Whether a (normalized) function only reports, traps or allocates: never the subject of a report. */
export function isHelperFrame(fn: string): boolean {
  return HELPER_FRAMES.some((re) => re.test(fn));
}

/**
 * Dispatch and entry frames: real functions, but the same for every bug reached the same way.
 * Chosen only when no other frame is left.
 */
const WEAK_FRAMES: readonly RegExp[] = [
  /^ret_from_fork/,
  /^entry_SYSCALL/,
  /^do_syscall_/,
  /^x64_sys_call$/,
  /^__(?:x64|ia32|arm64)_sys_/,
  /^__do_sys_/,
  /^__se_sys_/,
  /^ksys_/,
  /^invoke_syscall$/,
  /^(?:do_)?el0_svc/,
  /^el0t_/,
  /^kthread$/,
  /^worker_thread$/,
  /^process_one_work$/,
  /^smpboot_thread_fn$/,
  /^(?:syscall_)?exit_to_user_mode/,
  /^vfs_(?:read|write|ioctl)$/,
  /^kernfs_fop_\w+$/,
];

/** Sleeping and lock-waiting frames: the place a task waits, not the reason it waits. */
const SLEEP_FRAMES: readonly RegExp[] = [
  /^_{0,2}schedule(?:_\w+)?$/,
  /^do_task_dead$/,
  /^io_schedule/,
  /^_{0,2}wait_for_(?:common|completion)\w*$/,
  /^wait_for_completion\w*$/,
  /^(?:msleep\w*|usleep_range\w*|ssleep|schedule_timeout\w*|schedule_hrtimeout\w*|schedule_preempt_disabled)$/,
  /^_{0,2}mutex_lock/,
  /^mutex_lock/,
  /^_{0,2}down(?:_\w+)?$/,
  /^rwsem_/,
  /^_{0,2}rt_mutex/,
  /^(?:prepare_to_wait|finish_wait|wait_woken|out_of_line_wait_on\w*|__wait_on\w*|bit_wait\w*)$/,
  /^_{0,2}cond_resched/,
  /^_{0,3}might_(?:sleep|resched|fault)$/,
  /^(?:context_switch|__switch_to(?:_asm)?|preempt_schedule\w*)$/,
];

/** Frames of RCU itself: never the cause of a stall. */
const RCU_FRAMES: readonly RegExp[] = [/^_*rcu_/, /^rcu/];

interface Frame {
  fn: string;
  module?: string;
}

interface ReportFrames {
  header?: Frame;
  rip?: Frame;
  trace: Frame[];
  lockdep?: Frame;
}

function frameOf(fn: string | undefined, module: string | undefined): Frame | undefined {
  if (!fn) return undefined;
  const f: Frame = { fn: normalizeFunction(fn) };
  if (module) f.module = module;
  return f;
}

/**
 * The frames of a report, by where they were found. Stack sections start at "Call Trace:" (and
 * at KFENCE's access line); "?" frames are left out; with `stall`, frames inside <IRQ>/<NMI>
 * and the dump of the RCU grace-period kthread are left out too (they show the detector, not
 * the looping code).
 */
function collectFrames(lines: readonly string[], header: Frame | undefined, stall: boolean): ReportFrames {
  const out: ReportFrames = { trace: [] };
  if (header) out.header = header;
  let section: Frame[] | undefined;
  let markers = false;
  let inIrq = false;
  const sections: Frame[][] = [];
  const endSection = () => {
    if (section) sections.push(section);
    section = undefined;
  };
  for (const line of lines) {
    if (!out.rip && !section) {
      const r = RIP_RE.exec(line);
      if (r) out.rip = frameOf(r[1], r[2]);
    }
    if (!out.lockdep) {
      const l = LOCKDEP_AT_RE.exec(line);
      if (l) out.lockdep = frameOf(l[1], undefined);
    }
    if (CALL_TRACE_RE.test(line) || KFENCE_ACCESS_RE.test(line)) {
      endSection();
      section = [];
      markers = false;
      inIrq = false;
      continue;
    }
    if (!section) continue;
    const t = line.trim();
    if (t === '') {
      endSection();
    } else if (/^<(?:IRQ|NMI|SOFTIRQ|#DF|#MC|#DB|#VC|#HV|ENTRY_TRAMPOLINE)>$/.test(t)) {
      markers = true;
      inIrq = true;
    } else if (/^<\/(?:IRQ|NMI|SOFTIRQ|#DF|#MC|#DB|#VC|#HV|ENTRY_TRAMPOLINE)>$/.test(t)) {
      inIrq = false;
    } else if (t === '<TASK>') {
      markers = true;
    } else if (t === '</TASK>') {
      endSection();
    } else {
      const f = parseFrameLine(line);
      if (f?.reliable) {
        if (!(stall && inIrq)) section.push(f.frame);
      } else if (!f && !markers && section.length > 0) {
        // arm64 and KFENCE stacks have no <TASK> markers: the first other line ends them
        endSection();
      }
    }
  }
  endSection();
  for (const s of sections) {
    if (stall && s.some((f) => f.fn === 'rcu_gp_kthread')) continue;
    out.trace.push(...s);
  }
  return out;
}

/** A stack frame line (or a kernel RIP/pc line inside a stack); "?" frames are unreliable. */
function parseFrameLine(line: string): { frame: Frame; reliable: boolean } | undefined {
  const f = FRAME_RE.exec(line);
  if (f) {
    const frame = frameOf(f[2], f[3]);
    return frame && { frame, reliable: !f[1] };
  }
  const r = RIP_RE.exec(line);
  if (r) {
    const frame = frameOf(r[1], r[2]);
    return frame && { frame, reliable: true };
  }
  return undefined;
}

type FrameSource = 'header' | 'rip' | 'trace' | 'lockdep';

function chooseFrame(found: ReportFrames, sources: readonly FrameSource[], skip: readonly RegExp[]): Frame | undefined {
  const candidates: Frame[] = [];
  for (const s of sources) {
    if (s === 'trace') candidates.push(...found.trace);
    else {
      const f = found[s];
      if (f) candidates.push(f);
    }
  }
  const matches = (f: Frame, list: readonly RegExp[]) => list.some((re) => re.test(f.fn));
  const strong = candidates.find((f) => !matches(f, HELPER_FRAMES) && !matches(f, skip) && !matches(f, WEAK_FRAMES));
  if (strong) return strong;
  const weak = candidates.find((f) => !matches(f, HELPER_FRAMES) && !matches(f, skip));
  return weak ?? candidates[0];
}

// ---------------------------------------------------------------------------------------------
// The pattern table

/**
 * How a report ends:
 * - end-trace: at "---[ end trace … ]---" plus the register summary that may follow;
 * - separator: at the closing "=====…" line (KASAN, KFENCE);
 * - slub: at the "FIX <cache>: …" line (mm/slub.c slab_fix);
 * - dump: after the stack dump (the first line that is neither a frame nor part of a dump,
 *   once a frame was seen);
 * - panic: at "---[ end Kernel panic" or the end of the input (the machine stops);
 * - line: the header line, plus `continuation` lines.
 */
type EndRule = 'end-trace' | 'separator' | 'slub' | 'dump' | 'panic' | 'line';

interface TitleContext {
  m: RegExpExecArray;
  frame?: string;
  lines: readonly string[];
}

export interface ReportPattern {
  name: string;
  kind: ReportKind;
  start: RegExp;
  title: (c: TitleContext) => string;
  /** where the title's frame comes from, in order; absent: the title has no frame */
  frames?: readonly FrameSource[];
  /** the title reads well without a frame: a missing frame does not make the report corrupted */
  frameOptional?: boolean;
  /** extra frames to pass over for this kind of report */
  skip?: readonly RegExp[];
  /** stalls: ignore interrupt frames and the RCU GP kthread's own stack */
  stall?: boolean;
  end: EndRule;
  /** header lines of other reports that belong to this one when they follow it */
  absorbs?: readonly RegExp[];
  /** for one-line reports: following lines that belong to the report */
  continuation?: RegExp;
  /** see CrashReport.needsReboot */
  needsReboot: boolean;
  details?: (m: RegExpExecArray) => Record<string, string>;
}

const UNKNOWN_FRAME = '?';
const inFrame =
  (base: string) =>
  (c: TitleContext): string =>
    `${base} in ${c.frame ?? UNKNOWN_FRAME}`;

/** A function in a header line; the named groups give the title's frame when the pattern asks for 'header'. */
const FN = String.raw`(?<fn>[A-Za-z_.$][\w.$]*)\+0x[0-9a-f]+\/0x[0-9a-f]+(?:\s+\[(?<mod>[\w-]+)\])?`;

/** SMMUv3 event names: drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.h EVT_ID_* and event_str[] (7.2); the rest from the SMMUv3 architecture (IHI 0070, 7.3). */
const SMMU_EVENTS: Record<string, string> = {
  '01': 'F_UUT',
  '02': 'C_BAD_STREAMID',
  '03': 'F_STE_FETCH',
  '04': 'C_BAD_STE',
  '05': 'F_BAD_ATS_TREQ',
  '06': 'F_STREAM_DISABLED',
  '07': 'F_TRANSL_FORBIDDEN',
  '08': 'C_BAD_SUBSTREAMID',
  '09': 'F_CD_FETCH',
  '0a': 'C_BAD_CD',
  '0b': 'F_WALK_EABT',
  '10': 'F_TRANSLATION',
  '11': 'F_ADDR_SIZE',
  '12': 'F_ACCESS',
  '13': 'F_PERMISSION',
  '20': 'F_TLB_CONFLICT',
  '21': 'F_CFG_CONFLICT',
  '24': 'E_PAGE_REQUEST',
  '25': 'F_VMS_FETCH',
};

/** slub debug messages (mm/slub.c) and the titles they get. */
function slubTitle(msg: string): string {
  // "Object already free": free_consistency_checks() found the object on the freelist
  if (/^Object already free$/.test(msg)) return 'BUG: double free';
  // "Invalid object pointer 0x…": kfree of a pointer that is not an object of that slab
  if (/^Invalid object pointer/.test(msg)) return 'BUG: invalid free';
  // "Left Redzone overwritten", "Right Redzone overwritten", "Poison overwritten",
  // "Object padding overwritten", "Freepointer corrupt", "Wrong object count", …
  // The message's first sentence names the check; what follows carries counts and addresses
  // ("Wrong object count. Counter is 26 but counted were 35") that differ between runs.
  const first = msg.split('. ')[0] ?? msg;
  return `BUG: slab ${first.toLowerCase().replace(/\s*0x[0-9a-f]+/g, '').replace(/\d+/g, 'N').replace(/\s+/g, ' ').replace(/\.$/, '').trim()}`;
}

/** Keep only the stable part of a free-form message: no offsets, addresses, ranges or counters. */
function stableText(s: string): string {
  return s
    .replace(/\+0x[0-9a-f]+\/0x[0-9a-f]+/gi, '')
    .replace(/\s*(?:for )?\[mem [^\]]*\]/g, '')
    .replace(/\b(?:0x)?[0-9a-f]{5,}-(?:0x)?[0-9a-f]{5,}\b/gi, '')
    .replace(/\b0x[0-9a-f]{9,}\b/gi, 'ADDR')
    .replace(/\b[0-9a-f]{12,}\b/gi, 'ADDR')
    .replace(/\[#\d+\]/g, '')
    .replace(/\[[0-9a-f]{8,}\]/gi, '')
    .replace(/\s+/g, ' ')
    .replace(/[\s,:;]+$/, '')
    .trim();
}

/** Panics that follow a report they are the consequence of; they never start a report of their own after one. */
const CONSEQUENCE_PANIC_RE =
  /^Kernel panic - not syncing: (?:\S+: )?(?:Fatal exception|Attempted to kill init|panic_on_warn set|panic_on_oops|hung_task: blocked tasks|softlockup: hung tasks|RCU Stall|Hard LOCKUP)/;

/** Lines that continue any open oops-style report instead of starting a new one. */
const GENERIC_ABSORB: readonly RegExp[] = [
  /^(?:Oops: )+(?!general protection)(?:[a-z ]+: )?[0-9a-f]{4} \[#\d+\]/, // x86 die() header after the "BUG: …" line
  /^Internal error: /, // arm64 die() header
  /^#PF: /,
  CONSEQUENCE_PANIC_RE,
];

/**
 * The report patterns, most specific first (the first match wins). Each `start` is matched
 * against a line without its console prefix.
 */
export const REPORT_PATTERNS: readonly ReportPattern[] = [
  // KASAN (mm/kasan/report.c print_error_description): "BUG: KASAN: slab-use-after-free in f+0x…"
  // then "Read of size 8 at addr … by task …"; not in Debian kernels, kept for self-built ones.
  {
    name: 'kasan',
    kind: 'crash',
    start: new RegExp(String.raw`^BUG: KASAN: ([a-z0-9-]+) in ${FN}`),
    title: (c) => {
      const rw = c.lines.slice(0, 8).map((l) => /^(Read|Write) of size \d+/.exec(l)?.[1]).find(Boolean);
      return `BUG: KASAN: ${c.m[1]}${rw ? ` ${rw}` : ''} in ${c.frame ?? UNKNOWN_FRAME}`;
    },
    frames: ['header', 'trace'],
    end: 'separator',
    needsReboot: true,
  },
  // KFENCE (mm/kfence/report.c kfence_report_error): "BUG: KFENCE: use-after-free read in f+0x…"
  {
    name: 'kfence',
    kind: 'crash',
    start: new RegExp(String.raw`^BUG: KFENCE: (use-after-free|out-of-bounds|invalid|memory corruption|invalid free)(?: (read|write))? in ${FN}`),
    title: (c) => `KFENCE: ${c.m[1]}${c.m[2] ? ` ${c.m[2]}` : ''} in ${c.frame ?? UNKNOWN_FRAME}`,
    frames: ['header', 'trace'],
    end: 'separator',
    needsReboot: true,
  },
  // x86 page fault on NULL (arch/x86/mm/fault.c show_fault_oops), arm64 (arch/arm64/mm/fault.c die_kernel_fault)
  {
    name: 'null-deref',
    kind: 'crash',
    start: /^(?:BUG: kernel NULL pointer dereference|BUG: unable to handle kernel NULL pointer dereference|Unable to handle kernel NULL pointer dereference)/,
    title: inFrame('BUG: kernel NULL pointer dereference'),
    frames: ['rip', 'trace'],
    end: 'end-trace',
    needsReboot: true,
  },
  // any other kernel page fault: "BUG: unable to handle page fault for address: …" (x86 ≥ 5.x),
  // "BUG: unable to handle kernel paging request at …" (older x86), arm64's "Unable to handle kernel paging request"
  {
    name: 'page-fault',
    kind: 'crash',
    start: /^(?:BUG: unable to handle page fault for address|BUG: unable to handle kernel paging request|Unable to handle kernel (?:paging request|execute from non-executable memory|write to read-only memory|access to user memory))/,
    title: inFrame('BUG: unable to handle page fault'),
    frames: ['rip', 'trace'],
    end: 'end-trace',
    needsReboot: true,
  },
  // x86 #GP (arch/x86/kernel/traps.c exc_general_protection; "Oops: " prefix since 6.10)
  {
    name: 'general-protection',
    kind: 'crash',
    start: /^(?:Oops: )?general protection fault/,
    title: inFrame('general protection fault'),
    frames: ['rip', 'trace'],
    end: 'end-trace',
    needsReboot: true,
  },
  // CONFIG_DEBUG_LIST (lib/list_debug.c): "list_del corruption, …->next is LIST_POISON1 (…)", then
  // BUG() with CONFIG_BUG_ON_DATA_CORRUPTION (Debian) or WARN() without
  {
    name: 'list-corruption',
    kind: 'crash',
    start: /^(?:list_add corruption|list_del corruption|list_add double add)/,
    title: inFrame('BUG: corrupted list'),
    frames: ['trace'],
    end: 'end-trace',
    absorbs: [/^kernel BUG at lib\/list_debug\.c/, /^WARNING: .*\bat lib\/list_debug\.c/],
    needsReboot: true,
  },
  // the same BUG when the "list_… corruption" line was lost
  {
    name: 'list-corruption-bug',
    kind: 'crash',
    start: /^kernel BUG at lib\/list_debug\.c/,
    title: inFrame('BUG: corrupted list'),
    frames: ['trace'],
    end: 'end-trace',
    needsReboot: true,
  },
  // BUG()/BUG_ON() (lib/bug.c report_bug): "kernel BUG at file:line!", then "Oops: invalid opcode" (x86)
  // or "Internal error: Oops - BUG" (arm64)
  {
    name: 'kernel-bug',
    kind: 'crash',
    start: /^kernel BUG at \S+/,
    title: inFrame('kernel BUG'),
    frames: ['rip', 'trace'],
    end: 'end-trace',
    needsReboot: true,
  },
  // refcount_t (lib/refcount.c refcount_warn_saturate): "refcount_t: underflow; use-after-free." then a WARNING
  {
    name: 'refcount',
    kind: 'warning',
    start: /^refcount_t: (?:underflow|saturated|addition on 0|decrement hit 0)/,
    title: inFrame('refcount bug'),
    frames: ['header', 'rip', 'trace'],
    end: 'end-trace',
    absorbs: [/^WARNING: .*\bat lib\/refcount\.c/],
    needsReboot: true,
  },
  // the refcount WARNING when its message line was lost
  {
    name: 'refcount-warning',
    kind: 'warning',
    start: /^WARNING: .*\bat lib\/refcount\.c/,
    title: inFrame('refcount bug'),
    frames: ['rip', 'trace'],
    end: 'end-trace',
    needsReboot: true,
  },
  // slub debug (mm/slub.c slab_bug): "BUG kmalloc-64 (Tainted: …): Object already free"; needs slub_debug=…
  {
    name: 'slub',
    kind: 'crash',
    start: /^BUG ([\w.:-]+) \((?:Tainted: [^)]*|Not tainted)\): (.+)$/,
    title: (c) => `${slubTitle(c.m[2] ?? '')} in ${c.frame ?? UNKNOWN_FRAME}`,
    frames: ['trace'],
    end: 'slub',
    absorbs: [/^WARNING: .*\bat mm\/slub\.c/, /^kernel BUG at mm\/slub\.c/],
    needsReboot: true,
  },
  // lockdep (kernel/locking/lockdep.c); not in Debian kernels, kept for self-built ones
  {
    name: 'lockdep-deadlock',
    kind: 'warning',
    start: /^WARNING: (?:possible circular locking dependency detected|possible recursive locking detected|possible irq lock inversion dependency detected|[A-Z]+-safe -> [A-Z]+-unsafe lock order detected)/,
    title: inFrame('possible deadlock'),
    frames: ['lockdep', 'trace'],
    skip: SLEEP_FRAMES,
    end: 'dump',
    needsReboot: true,
  },
  {
    name: 'lockdep-inconsistent',
    kind: 'warning',
    start: /^WARNING: inconsistent lock state/,
    title: inFrame('inconsistent lock state'),
    frames: ['lockdep', 'trace'],
    skip: SLEEP_FRAMES,
    end: 'dump',
    needsReboot: true,
  },
  // RCU lockdep (kernel/rcu/update.c lockdep_rcu_suspicious)
  {
    name: 'suspicious-rcu',
    kind: 'warning',
    start: /^WARNING: suspicious RCU usage/,
    title: inFrame('WARNING: suspicious RCU usage'),
    frames: ['trace'],
    skip: RCU_FRAMES,
    end: 'dump',
    needsReboot: true,
  },
  // WARN()/WARN_ON() (kernel/panic.c __warn): "WARNING: CPU: 0 PID: 1 at file:line f+0x…"
  {
    name: 'warning',
    kind: 'warning',
    start: new RegExp(String.raw`^WARNING: (?:CPU: \d+ PID: \d+ )?at \S+(?: ${FN})?`),
    title: inFrame('WARNING'),
    frames: ['header', 'rip', 'trace'],
    end: 'end-trace',
    needsReboot: true,
  },
  // kernel/sched/core.c __schedule_bug: "BUG: scheduling while atomic: comm/pid/0x…" (Debian has no
  // CONFIG_DEBUG_ATOMIC_SLEEP, so sleeping in atomic context is caught here)
  {
    name: 'scheduling-while-atomic',
    kind: 'warning',
    start: /^BUG: scheduling while atomic/,
    title: inFrame('BUG: scheduling while atomic'),
    frames: ['trace'],
    skip: SLEEP_FRAMES,
    end: 'dump',
    needsReboot: true,
  },
  // kernel/sched/core.c __might_resched (CONFIG_DEBUG_ATOMIC_SLEEP)
  {
    name: 'sleep-in-atomic',
    kind: 'warning',
    start: /^BUG: sleeping function called from invalid context/,
    title: inFrame('BUG: sleeping function called from invalid context'),
    frames: ['trace'],
    skip: SLEEP_FRAMES,
    end: 'dump',
    needsReboot: true,
  },
  // kernel/watchdog.c watchdog_timer_fn: "watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [comm:pid]"
  {
    name: 'soft-lockup',
    kind: 'hang',
    start: /^(?:watchdog: )?BUG: soft lockup - CPU#\d+ stuck/,
    title: inFrame('BUG: soft lockup'),
    frames: ['rip', 'trace'],
    skip: RCU_FRAMES,
    stall: true,
    end: 'dump',
    needsReboot: true,
  },
  // kernel/watchdog.c watchdog_hardlockup_check
  {
    name: 'hard-lockup',
    kind: 'hang',
    start: /^(?:watchdog: |NMI watchdog: )?Watchdog detected hard LOCKUP on cpu \d+/,
    title: inFrame('BUG: hard lockup'),
    frames: ['rip', 'trace'],
    stall: true,
    end: 'dump',
    needsReboot: true,
  },
  // kernel/rcu/tree_stall.h print_cpu_stall/print_other_cpu_stall: "rcu: INFO: rcu_preempt detected
  // stalls on CPUs/tasks:", "… self-detected stall on CPU"
  {
    name: 'rcu-stall',
    kind: 'hang',
    start: /^(?:rcu: )?INFO: rcu_(?:preempt|sched|bh|tasks\w*) (?:self-)?detected(?: expedited)? stalls?/,
    title: inFrame('INFO: rcu detected stall'),
    frames: ['trace'],
    skip: [...RCU_FRAMES, ...SLEEP_FRAMES],
    stall: true,
    end: 'dump',
    needsReboot: true,
  },
  // kernel/hung_task.c check_hung_task: "INFO: task comm:pid blocked for more than N seconds."
  {
    name: 'hung-task',
    kind: 'hang',
    start: /^INFO: task .+:\d+ blocked for more than \d+ seconds/,
    title: inFrame('INFO: task hung'),
    frames: ['trace'],
    skip: SLEEP_FRAMES,
    end: 'dump',
    needsReboot: true,
  },
  // mm/page_alloc.c bad_page, mm/memory.c print_bad_pte: no frame in the title (the stack is
  // the page allocator's or the unmapper's, not the culprit's)
  {
    name: 'bad-page',
    kind: 'crash',
    start: /^BUG: Bad page (state|map)/,
    title: (c) => `BUG: Bad page ${c.m[1]}`,
    end: 'dump',
    needsReboot: true,
  },
  // kernel/fork.c check_mm: "BUG: Bad rss-counter state mm:… type:MM_FILEPAGES val:1 …"
  {
    name: 'bad-rss-counter',
    kind: 'crash',
    start: /^BUG: Bad rss-counter state/,
    title: () => 'BUG: Bad rss-counter state',
    end: 'line',
    needsReboot: true,
  },
  // mm/pgtable-generic.c / kernel/fork.c: "BUG: non-zero pgtables_bytes on freeing mm: -4096"
  {
    name: 'non-zero-pgtables',
    kind: 'crash',
    start: /^BUG: non-zero (\w+) on freeing mm/,
    title: (c) => `BUG: non-zero ${c.m[1]} on freeing mm`,
    end: 'line',
    needsReboot: true,
  },
  // kernel/workqueue.c show_cpu_pools_hogs / wq_watchdog_timer_fn
  {
    name: 'workqueue-lockup',
    kind: 'hang',
    start: /^BUG: workqueue lockup/,
    title: () => 'BUG: workqueue lockup',
    end: 'line',
    needsReboot: true,
  },
  // any other "BUG: …" line: the text up to the first ':' or ',' is the stable part
  {
    name: 'bug-other',
    kind: 'crash',
    start: /^BUG: ([A-Za-z][^:,]*?)(?:[:,]|$)/,
    title: (c) => `BUG: ${stableText(c.m[1] ?? '')}${c.frame ? ` in ${c.frame}` : ''}`,
    frames: ['rip', 'trace'],
    frameOptional: true,
    end: 'dump',
    needsReboot: true,
  },
  // an oops whose header line was lost, or a trap without one (x86 die(): "Oops: invalid opcode:
  // 0000 [#1] …", "Oops: divide error: …", "Oops: Oops: 0000 [#1] …"; arm64 "Internal error: Oops: …")
  {
    name: 'oops',
    kind: 'crash',
    start: /^(?:(?:Oops: )+(?:(invalid opcode|divide error|stack segment|int3|double fault|alignment check|bounds|coprocessor segment overrun|invalid TSS|segment not present): )?[0-9a-f]{4} \[#\d+\]|Internal error: (Oops)\b)/,
    title: (c) => `${c.m[1] ?? 'Oops'} in ${c.frame ?? UNKNOWN_FRAME}`,
    frames: ['rip', 'trace'],
    end: 'end-trace',
    needsReboot: true,
  },
  // arch/x86/kernel/traps.c exc_double_fault
  {
    name: 'double-fault',
    kind: 'crash',
    start: /^PANIC: double fault/,
    title: inFrame('PANIC: double fault'),
    frames: ['rip', 'trace'],
    end: 'dump',
    needsReboot: true,
  },
  // kernel/panic.c panic(): "Kernel panic - not syncing: <message>"
  {
    name: 'panic',
    kind: 'crash',
    start: /^Kernel panic - not syncing: (.*)$/,
    title: (c) => `Kernel panic - not syncing: ${stableText(c.m[1] ?? '')}`,
    frames: ['trace'],
    frameOptional: true,
    end: 'panic',
    needsReboot: true,
  },
  // arch/x86/mm/pat/memtype.c and memtype_interval.c: "x86/PAT: comm:pid freeing invalid memtype
  // [mem …]", "… map pfn expected mapping type uncached-minus for [mem …], got write-back",
  // "… conflicting memory types …": pfn tracking gone wrong, e.g. around remap_pfn_range()
  {
    name: 'x86-pat',
    kind: 'warning',
    start: /^x86\/PAT: \S.{0,40}?:\d+ ([a-z/].*)$/,
    title: (c) => `x86/PAT: ${stableText(c.m[1] ?? '')}`,
    end: 'line',
    needsReboot: false,
  },
  // drivers/iommu/intel/dmar.c dmar_fault_do_one: "DMAR: [DMA Read NO_PASID] Request device [00:01.0]
  // fault addr 0x100000 [fault reason 0x06] PTE Read access is not set"; older kernels: "[DMA Read]
  // Request device [00:01.0] PASID ffffffff fault addr 100000 [fault reason 06] …"; 7.2 names the
  // PCI segment too, "Request device [%04x:%02x:%02x.%d]" (the format in Debian 7.2.13's image)
  {
    name: 'dmar-fault',
    kind: 'iommu-fault',
    start:
      /^DMAR: \[(DMA Read|DMA Write|INTR-REMAP)(?: NO_PASID| PASID (0x[0-9a-f]+|[0-9a-f]+))?\] Request device \[((?:[0-9a-f]{4}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])\](?: PASID (\S+))? fault (?:addr|index) ((?:0x)?[0-9a-f]+) \[fault reason ((?:0x)?[0-9a-f]+)\] (.+)$/,
    title: (c) => `DMAR fault: ${stableText(c.m[7] ?? '')}`,
    end: 'line',
    needsReboot: false,
    details: (m) => ({
      type: m[1] ?? '',
      device: m[3] ?? '',
      pasid: m[2] ?? m[4] ?? '',
      addr: m[5] ?? '',
      code: m[6] ?? '',
      reason: m[7] ?? '',
    }),
  },
  // drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c: "arm-smmu-v3 9050000.smmuv3: event 0x10 received:"
  // then the raw event dwords (and, since 6.15, a decoded "event: F_TRANSLATION client: …" line)
  {
    name: 'smmu-event',
    kind: 'iommu-fault',
    start: /^arm-smmu-v3 (\S+): event 0x([0-9a-f]{2}) received:/,
    title: (c) => {
      const id = (c.m[2] ?? '').toLowerCase();
      return `SMMU event 0x${id} (${SMMU_EVENTS[id] ?? 'UNKNOWN'})`;
    },
    end: 'line',
    continuation: /^arm-smmu-v3 \S+: (?:\s*0x[0-9a-f]{16}$|event: |(?:un)?priv (?:data|inst) )/,
    needsReboot: false,
    details: (m) => ({ device: m[1] ?? '', event: `0x${m[2] ?? ''}` }),
  },
  // drivers/iommu/amd/iommu.c amd_iommu_print_event: "AMD-Vi: Event logged [IO_PAGE_FAULT domain=… address=…]"
  {
    name: 'amd-iommu-event',
    kind: 'iommu-fault',
    start: /^(?:\S+ \S+: )?AMD-Vi: Event logged \[([A-Z_]+)/,
    title: (c) => `AMD-Vi event: ${c.m[1]}`,
    end: 'line',
    needsReboot: false,
  },
  // guest/module/svt_platform.c svt_execute_one and svt_pci.c svt_pci_irq: "svadiff_test[ 0000:01:00.0]: fault: queue Q pasid P addr 0x… (reason[, error E])"
  {
    name: 'svadiff-test-fault',
    kind: 'device',
    start: /^svadiff_test(?: [\w.:-]+)?: fault: queue (\d+) pasid (\d+) addr (0x[0-9a-f]+) \(([^,)]*)(?:, error (-?\d+))?\)/,
    title: (c) => `svadiff_test fault: ${stableText(c.m[4] ?? '')}`,
    end: 'line',
    needsReboot: false,
    details: (m) => {
      const d: Record<string, string> = { queue: m[1] ?? '', pasid: m[2] ?? '', addr: m[3] ?? '', reason: m[4] ?? '' };
      if (m[5] !== undefined) d.error = m[5];
      return d;
    },
  },
  // guest/module/svt_main.c: the test driver saw uacce break its contract with the driver
  // ("queue Q: put_queue called again", "… still live after uacce_remove of svtN", "… never put by uacce, freeing at unload")
  {
    name: 'svadiff-test-queue',
    kind: 'device',
    start: /^svadiff_test(?: [\w.:-]+)?: queue (\d+): (put_queue called again|still live after uacce_remove|never put by uacce)/,
    title: (c) => `svadiff_test: queue ${c.m[2]}`,
    end: 'line',
    needsReboot: false,
    details: (m) => ({ queue: m[1] ?? '', event: m[2] ?? '' }),
  },
];

// ---------------------------------------------------------------------------------------------
// Suppressions and taint

/** Known noise, in every run. Per-run additions go through ConsoleOracle.addSuppression. */
export const DEFAULT_SUPPRESSIONS: readonly Suppression[] = [
  {
    on: 'line',
    match: /^[\w-]+: loading out-of-tree module taints kernel\.$/,
    reason: 'svadiff loads its own out-of-tree modules (uacce, svadiff_test): taint O is expected',
  },
  {
    on: 'line',
    match: /^[\w-]+: module verification failed: signature and\/or required key missing - tainting kernel$/,
    reason: 'the test modules are unsigned and Debian kernels do not enforce signatures: taint E is expected',
  },
  {
    on: 'line',
    match: /AMD IOMMUv2 functionality not available on this system - This is not a bug\.$/,
    reason: '6.1 prints it at every boot on non-AMD machines (drivers/iommu/amd/iommu_v2.c amd_iommu_v2_init)',
  },
];

/** Taint letters (kernel/panic.c taint_flags, 6.12). */
export const TAINT_NAMES: Readonly<Record<string, string>> = {
  P: 'PROPRIETARY_MODULE',
  F: 'FORCED_MODULE',
  S: 'CPU_OUT_OF_SPEC',
  R: 'FORCED_RMMOD',
  M: 'MACHINE_CHECK',
  B: 'BAD_PAGE',
  U: 'USER',
  D: 'DIE',
  A: 'OVERRIDDEN_ACPI_TABLE',
  W: 'WARN',
  C: 'CRAP',
  I: 'FIRMWARE_WORKAROUND',
  O: 'OOT_MODULE',
  E: 'UNSIGNED_MODULE',
  L: 'SOFTLOCKUP',
  K: 'LIVEPATCH',
  X: 'AUX',
  T: 'RANDSTRUCT',
  N: 'TEST',
  J: 'FWCTL',
};

/** Taints svadiff causes itself by loading its unsigned out-of-tree test modules. */
export const EXPECTED_TAINTS = 'OE';

/**
 * The taint letters a line shows, if it has a "Tainted:" field ("CPU: 0 … Tainted: G    B  OE
 * 6.12…", "Tainted: [B]=BAD_PAGE, [O]=OOT_MODULE" (6.12+), slub's "(Tainted: G  OE  )");
 * [] for "Not tainted", undefined when the line says nothing about taint. 'G' (no proprietary
 * module) is not a taint and is left out.
 */
export function taintLetters(line: string): string[] | undefined {
  const t = stripConsolePrefix(line);
  if (/\bNot tainted\b/.test(t)) return [];
  const named = /Tainted: ((?:\[[A-Z]\]=\w+(?:, )?)+)/.exec(t);
  if (named?.[1]) return [...new Set([...named[1].matchAll(/\[([A-Z])\]/g)].map((x) => x[1] ?? ''))].filter((l) => l !== 'G');
  const flags = /Tainted: ([A-Z][A-Z ]*?)(?=\s+\d|\s*\)|\s*$)/.exec(t);
  if (flags?.[1]) return [...new Set(flags[1].replace(/ /g, '').split(''))].filter((l) => l !== 'G');
  return undefined;
}

/** Generic announcements of a new taint (kernel/panic.c add_taint, kernel/module/*.c). */
const TAINT_ANNOUNCE_RE = /(?:\btaints kernel\b|\btainting kernel\b|^Disabling lock debugging due to kernel taint$)/;

// ---------------------------------------------------------------------------------------------
// The parser

interface Open {
  pattern: ReportPattern;
  m: RegExpExecArray;
  start: number;
  end: number;
  phase: 'body' | 'trailer';
  rule: EndRule;
  sawEnd: boolean;
  sawFrame: boolean;
  cut: boolean;
}

const END_TRACE_RE = /^---\[ end trace [0-9a-f]+ \]---/;
const END_PANIC_RE = /^---\[ end Kernel panic - not syncing/;
const SEPARATOR_RE = /^={40,}$/;
const SLUB_FIX_RE = /^FIX [\w.:-]+: /;
/** Lines a 'dump' report may have before its stack dump starts (bad page: the page's fields). */
const DUMP_PREAMBLE_LINES = 30;
/** What may follow "---[ end trace ]---" and still belong to the report (x86 oops_end's summary, notes). */
const TRAILER_RE =
  /^(?:RIP: |Code: |R[A-Z0-9]{2}: |FS: |CS: |CR2: |DR[0-9]: |PKRU: |note: \S+\[\d+\] exited with|Fixing recursive fault|Kernel Offset:|Rebooting in|---\[ end Kernel panic)/;
/** Lines that belong to a stack dump or its preamble (after them the dump goes on). */
const DUMP_LINE_RE =
  /^(?:\s*<\/?(?:TASK|IRQ|NMI|SOFTIRQ|#DF|#MC|#DB|EOI|ENTRY_TRAMPOLINE)>|\s*Call [Tt]race:|CPU: \d|\s*Tainted: |Hardware name:|Workqueue: |RIP: |pc : |lr : |sp : |x\d+\s*: |Code: |R[A-Z0-9]{2}: |FS: |CS: |CR2: |DR[0-9]: |PKRU: |Modules linked in:|\s*task:|rcu: |Sending NMI|NMI backtrace|"echo 0 > |INFO: lockdep|Showing all locks held|\d+ locks? held by|\s+#\d+: |\s+\(|irq event stamp|hardirqs last|softirqs last|Preemption disabled at:|stack backtrace:|other info that might help|\s*Possible unsafe locking scenario|\s+CPU\d+\s+CPU\d+|\s+-{4}|\s+lock\(|\s+\*\*\* DEADLOCK|the existing dependency chain|-> #\d+|which lock already depends|but task is already holding|is trying to acquire|Mem abort info:|Data abort info:|\s+(?:ESR|EC|SET|FnV|EA|S1PTW|FSC|ISV|ISS|CM|WnR|TnD|TagAccess|GCS|Xs|ISS2) = |user pgtable|\[[0-9a-f]{16}\] (?:pgd|p4d|pud|pmd|pte)=|\s*\.\.\.$)/;

/** The first pattern whose start matches a (prefix-stripped) line. */
function matchStart(t: string): { pattern: ReportPattern; m: RegExpExecArray } | undefined {
  for (const pattern of REPORT_PATTERNS) {
    const m = pattern.start.exec(t);
    if (m) return { pattern, m };
  }
  return undefined;
}

function lineSuppression(t: string, suppressions: readonly Suppression[]): Suppression | undefined {
  return suppressions.find((s) => s.on === 'line' && s.match.test(t));
}

/** Whether a line starts a report (what a streaming reader checks before waiting for more output). */
export function isReportStart(line: string, suppressions: readonly Suppression[] = DEFAULT_SUPPRESSIONS): boolean {
  const t = stripConsolePrefix(line);
  if (lineSuppression(t, suppressions)) return false;
  return matchStart(t) !== undefined;
}

/**
 * Whether a line shows that the kernel just got (or has) a taint beyond `allowed`: a tainting
 * report starts, a "Tainted:" field lists another letter, or a taint is announced. After such a
 * line the fuzzer should reboot the guest: its state is no longer trustworthy.
 */
export function isTainting(
  line: string,
  allowed: string = EXPECTED_TAINTS,
  suppressions: readonly Suppression[] = DEFAULT_SUPPRESSIONS,
): boolean {
  const t = stripConsolePrefix(line);
  if (lineSuppression(t, suppressions)) return false;
  const s = matchStart(t);
  if (s?.pattern.needsReboot) return true;
  const letters = taintLetters(t);
  if (letters?.some((l) => !allowed.includes(l))) return true;
  return TAINT_ANNOUNCE_RE.test(t);
}

/** Follows a log and says which taint letters appear for the first time (beyond `allowed`). */
export class TaintTracker {
  private readonly seen = new Set<string>();
  constructor(private readonly allowed: string = EXPECTED_TAINTS) {}

  /** The letters first seen on this line, e.g. ['W'] after the first WARN. */
  observe(line: string): string[] {
    const letters = taintLetters(line);
    if (!letters) return [];
    const fresh = letters.filter((l) => !this.allowed.includes(l) && !this.seen.has(l));
    for (const l of fresh) this.seen.add(l);
    return fresh;
  }

  get letters(): string[] {
    return [...this.seen].sort();
  }
}

function toLines(input: string | readonly (string | LogLine)[]): LogLine[] {
  if (typeof input === 'string') return input.split('\n').map((text) => ({ text }));
  return input.map((l) => (typeof l === 'string' ? { text: l } : l));
}

function finish(o: Open, texts: readonly string[], lines: readonly LogLine[], atEnd: boolean): CrashReport {
  const p = o.pattern;
  const body = texts.slice(o.start, o.end + 1);
  const headerFrame = frameOf(o.m.groups?.fn, o.m.groups?.mod);
  const found = collectFrames(body, headerFrame, p.stall === true);
  const frame = p.frames ? chooseFrame(found, p.frames, p.skip ?? []) : undefined;
  const title = sanitizeTitle(p.title({ m: o.m, frame: frame?.fn, lines: body }));
  const report: CrashReport = {
    title,
    kind: p.kind,
    pattern: p.name,
    start: o.start,
    end: o.end,
    excerpt: boundExcerpt(body.join('\n')),
    corrupted: false,
    needsReboot: p.needsReboot,
  };
  if (frame) {
    report.frame = frame.fn;
    if (frame.module) report.frameModule = frame.module;
  }
  const startSeq = lines[o.start]?.seq;
  const endSeq = lines[o.end]?.seq;
  if (startSeq !== undefined) report.startSeq = startSeq;
  if (endSeq !== undefined) report.endSeq = endSeq;
  if (p.details) report.details = p.details(o.m);
  const needsEnd = o.rule === 'end-trace' || o.rule === 'separator' || o.rule === 'slub';
  if (needsEnd && !o.sawEnd) {
    report.corrupted = true;
    report.corruptedReason = atEnd ? 'truncated: the log ends before the end of the report' : 'truncated: another report started before this one ended';
  } else if (p.frames && !frame && !p.frameOptional) {
    report.corrupted = true;
    report.corruptedReason = 'no frame found for the title';
  }
  if (o.cut) {
    report.corrupted = true;
    report.corruptedReason = `longer than ${MAX_REPORT_LINES} lines: cut`;
  }
  return report;
}

function sanitizeTitle(t: string): string {
  const one = stripControl(t).replace(/\s+/g, ' ').trim();
  return one.length > 200 ? one.slice(0, 200) : one;
}

function boundExcerpt(s: string): string {
  return s.length > MAX_EXCERPT ? s.slice(0, MAX_EXCERPT) + `\n… [${s.length - MAX_EXCERPT} more characters dropped]` : s;
}

/**
 * Find the reports in a log. `input` is the console text, its lines, or LogLines (from
 * kmsgLines). A report still being printed when the input ends is returned with
 * corrupted=true: parse again when the console has been quiet for a while.
 */
export function parseConsole(
  input: string | readonly (string | LogLine)[],
  suppressions: readonly Suppression[] = DEFAULT_SUPPRESSIONS,
): ParseResult {
  const lines = toLines(input);
  const texts = lines.map((l) => stripConsolePrefix(l.text));
  const reports: CrashReport[] = [];
  let open: Open | undefined;
  /** the multi-line report closed last, and where its CrashReport is in `reports` */
  let last: { o: Open; index: number } | undefined;
  const close = (atEnd: boolean) => {
    if (!open) return;
    reports.push(finish(open, texts, lines, atEnd));
    last = { o: open, index: reports.length - 1 };
    open = undefined;
  };
  const consumed = new Set<number>();

  for (let i = 0; i < texts.length; i++) {
    if (consumed.has(i)) continue;
    const t = texts[i] ?? '';
    const s = lineSuppression(t, suppressions) ? undefined : matchStart(t);

    // one-line reports never disturb a report being printed around them
    if (s && s.pattern.end === 'line') {
      let end = i;
      while (s.pattern.continuation && end + 1 < texts.length && end - i < 16 && s.pattern.continuation.test(texts[end + 1] ?? '')) {
        end++;
        consumed.add(end);
      }
      const o: Open = { pattern: s.pattern, m: s.m, start: i, end, phase: 'body', rule: 'line', sawEnd: true, sawFrame: false, cut: false };
      reports.push(finish(o, texts, lines, false));
      if (open?.phase === 'body') open.end = end;
      continue;
    }

    if (open) {
      const absorbed = s !== undefined && absorbs(open, t);
      const consequence = CONSEQUENCE_PANIC_RE.test(t);
      if (open.phase === 'trailer') {
        if (TRAILER_RE.test(t) || consequence) {
          open.end = i;
          if (consequence) {
            open.rule = 'panic';
            open.phase = 'body';
          }
          continue;
        }
        close(false);
      } else if (s && !absorbed) {
        close(false);
      } else if (
        open.rule === 'dump' &&
        (open.sawFrame || i - open.start > DUMP_PREAMBLE_LINES) &&
        !FRAME_RE.test(t) &&
        !DUMP_LINE_RE.test(t) &&
        !absorbed
      ) {
        close(false);
      } else {
        open.end = i;
        if (FRAME_RE.test(t)) open.sawFrame = true;
        if (consequence) {
          // panic_on_warn, panic_on_oops …: the panic ends the report
          open.rule = 'panic';
          open.sawEnd = true;
        } else if (open.rule === 'end-trace' && END_TRACE_RE.test(t)) {
          open.sawEnd = true;
          open.phase = 'trailer';
        } else if (open.rule === 'separator' && SEPARATOR_RE.test(t)) {
          open.sawEnd = true;
          close(false);
        } else if (open.rule === 'slub' && SLUB_FIX_RE.test(t)) {
          open.sawEnd = true;
          close(false);
        } else if (open.rule === 'panic' && END_PANIC_RE.test(t)) {
          open.sawEnd = true;
          close(false);
        } else if (open.rule === 'panic' && /^Kernel Offset:/.test(t)) {
          open.phase = 'trailer';
        } else if (i - open.start >= MAX_REPORT_LINES) {
          open.cut = true;
          close(false);
        }
        continue;
      }
    }

    if (!s) continue;
    // A panic caused by the report just closed (panic_on_oops, killing init, hung_task_panic …)
    // belongs to that report.
    if (last && CONSEQUENCE_PANIC_RE.test(t) && i - last.o.end <= 10) {
      reports.splice(last.index, 1);
      open = last.o;
      last = undefined;
      open.end = i;
      open.rule = 'panic';
      open.phase = 'body';
      open.sawEnd = true;
      continue;
    }
    let start = i;
    // KASAN, KFENCE and slub reports open with a "=====" line
    if ((s.pattern.end === 'separator' || s.pattern.end === 'slub') && i > 0 && SEPARATOR_RE.test(texts[i - 1] ?? '')) {
      if (!last || last.o.end < i - 1) start = i - 1;
    }
    open = { pattern: s.pattern, m: s.m, start, end: i, phase: 'body', rule: s.pattern.end, sawEnd: false, sawFrame: false, cut: false };
  }
  close(true);

  const kept: CrashReport[] = [];
  const suppressed: SuppressedReport[] = [];
  for (const r of reports.sort((a, b) => a.start - b.start || a.end - b.end)) {
    const sup = suppressions.find((x) => x.on === 'title' && x.match.test(r.title));
    if (sup) suppressed.push({ report: r, reason: sup.reason });
    else kept.push(r);
  }
  return { reports: kept, suppressed };
}

function absorbs(open: Open, t: string): boolean {
  if (open.pattern.absorbs?.some((re) => re.test(t))) return true;
  return GENERIC_ABSORB.some((re) => re.test(t));
}

/**
 * The crash family of a title, for deciding whether a rerun reproduced a crash. Slab corruption
 * (a double free, a write after free) is reported by whichever slub check trips first, in
 * whichever function next touches that slab, so one bug's titles vary between runs ("BUG: double
 * free in vma_close", "BUG: slab wrong object count in kobject_put"): they form one family. Every
 * other title is its own family. Findings are still deduplicated by exact title.
 */
export function crashFamily(title: string): string {
  if (/^BUG: (?:double free|invalid free|slab [^]*) in /.test(title)) return 'slab corruption (slub debug)';
  return title;
}

/** Do two crash titles show the same crash (the same title or the same family)? */
export function sameCrash(a: string, b: string): boolean {
  return a === b || crashFamily(a) === crashFamily(b);
}

/** The reports of a log, suppressed ones left out. */
export function parseReports(
  input: string | readonly (string | LogLine)[],
  suppressions: readonly Suppression[] = DEFAULT_SUPPRESSIONS,
): CrashReport[] {
  return parseConsole(input, suppressions).reports;
}

/** The parser with a run's own suppressions added to the defaults. */
export class ConsoleOracle {
  private readonly suppressions: Suppression[];

  constructor(
    extra: readonly Suppression[] = [],
    private readonly allowedTaints: string = EXPECTED_TAINTS,
  ) {
    this.suppressions = [...DEFAULT_SUPPRESSIONS, ...extra];
  }

  /** Add a suppression for the rest of this run (e.g. RCU stalls on an overloaded TCG host). */
  addSuppression(s: Suppression): void {
    this.suppressions.push(s);
  }

  get activeSuppressions(): readonly Suppression[] {
    return this.suppressions;
  }

  parse(input: string | readonly (string | LogLine)[]): ParseResult {
    return parseConsole(input, this.suppressions);
  }

  isReportStart(line: string): boolean {
    return isReportStart(line, this.suppressions);
  }

  isTainting(line: string): boolean {
    return isTainting(line, this.allowedTaints, this.suppressions);
  }
}
