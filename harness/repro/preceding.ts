/**
 * Replaying a crash after the programs that ran before it. A crash finding whose program does
 * not reproduce alone is often the delayed effect of an earlier program on the same guest: slub
 * finds a double free or a corrupted freelist only when the cache is next used, maybe several
 * programs later. The fuzzing loop keeps the programs a guest ran since boot (preceding.json);
 * this runs them again, in order, on a fresh guest, followed by the finding's program, and says
 * how often, and after which program, the signature showed. A sequence that showed it every
 * time is then cut down to the preceding programs it needs (preceding.min.json); the programs
 * themselves are not minimized.
 */
import { join } from 'node:path';
import { PROGRAM_LOG_FORMAT } from '../findings/store.js';
import { checkProgram } from '../program/parse.js';
import type { Program } from '../program/types.js';
import { UserError } from '../util/errors.js';
import { readJsonIfExists } from '../util/fsx.js';
import type { Signature, Tester } from './minimize.js';

/** A tester that can be asked for a fresh guest (GuestTester). */
export interface SequenceTester extends Tester {
  close(): Promise<void>;
}

export interface SequenceResult {
  /** programs in the sequence, the finding's program included */
  programs: number;
  hits: number;
  runs: number;
  /** per run: the 0-based position in the sequence of the program that showed the signature, or null */
  shownBy: (number | null)[];
  /** per run: a short account */
  lines: string[];
}

/** The programs of a finding's preceding.json, or [] when it has none. Malformed: one-line error. */
export async function readPreceding(findingDir: string): Promise<Program[]> {
  const path = join(findingDir, 'preceding.json');
  let raw: unknown;
  try {
    raw = await readJsonIfExists<unknown>(path);
  } catch (e) {
    const why = e instanceof SyntaxError ? `not valid JSON (${e.message})` : `cannot read it (${(e as Error).message})`;
    throw new UserError(`${path}: ${why}; delete it to reproduce without the preceding programs`);
  }
  if (raw === undefined) return [];
  const o = raw as { format?: unknown; programs?: unknown };
  if (typeof o !== 'object' || o === null || o.format !== PROGRAM_LOG_FORMAT || !Array.isArray(o.programs)) {
    throw new UserError(`${path}: field "format" must be "${PROGRAM_LOG_FORMAT}" with a "programs" array; delete it to reproduce without the preceding programs`);
  }
  return o.programs.map((p: unknown, i: number) => checkProgram(p, `${path}: programs[${i}]`));
}

/** One run of a sequence on a fresh guest: which program showed the signature, and what happened. */
async function runSequenceOnce(seq: readonly Program[], sig: Signature, tester: SequenceTester): Promise<{ shown: number | null; what: string }> {
  await tester.close();
  for (let i = 0; i < seq.length; i++) {
    const t = await tester.run(seq[i]!);
    if (t.keys.includes(sig.key)) return { shown: i, what: `shown by program ${i + 1} of ${seq.length}${seq[i]!.comment ? ` (${seq[i]!.comment})` : ''}` };
    if (t.result?.needsReboot) {
      return { shown: null, what: `program ${i + 1} of ${seq.length} showed something else (${t.keys.join('; ') || 'the guest stopped'}), sequence stopped` };
    }
  }
  return { shown: null, what: `not shown after all ${seq.length} programs` };
}

/**
 * Run `preceding` then `program` on a fresh guest, `runs` times. A run stops early when a
 * program shows the signature (a hit) or leaves the guest unusable (a different splat, a hang):
 * what came after would run on a rebooted guest and prove nothing.
 */
export async function replayAfterPreceding(
  preceding: readonly Program[],
  program: Program,
  sig: Signature,
  tester: SequenceTester,
  runs: number,
  onProgress?: (message: string) => void,
): Promise<SequenceResult> {
  const seq = [...preceding, program];
  const res: SequenceResult = { programs: seq.length, hits: 0, runs, shownBy: [], lines: [] };
  for (let run = 0; run < runs; run++) {
    const { shown, what } = await runSequenceOnce(seq, sig, tester);
    const line = `run ${run + 1}/${runs}: ${what}`;
    if (shown !== null) res.hits++;
    res.shownBy.push(shown);
    res.lines.push(line);
    onProgress?.(line);
  }
  await tester.close();
  return res;
}

export interface ReducedPreceding {
  /** the preceding programs still needed, in their order */
  kept: Program[];
  /** sequence runs the reduction took */
  runs: number;
  timeMs: number;
  /** the time budget ran out before every program was tried */
  stoppedByTime: boolean;
}

/**
 * Drop the preceding programs the signature does not need: each in turn (oldest first) is left
 * out for one run on a fresh guest and stays out when the signature still shows. One run per
 * candidate, so call this only for a sequence that reproduced every time, and confirm the result
 * with replayAfterPreceding.
 */
export async function reducePreceding(
  preceding: readonly Program[],
  program: Program,
  sig: Signature,
  tester: SequenceTester,
  opts: { maxTimeMs?: number; onProgress?: (message: string) => void } = {},
): Promise<ReducedPreceding> {
  const t0 = Date.now();
  let kept = [...preceding];
  let runs = 0;
  let stoppedByTime = false;
  for (let i = 0; i < kept.length; ) {
    if (opts.maxTimeMs !== undefined && Date.now() - t0 > opts.maxTimeMs) {
      stoppedByTime = true;
      break;
    }
    const candidate = [...kept.slice(0, i), ...kept.slice(i + 1)];
    const { shown } = await runSequenceOnce([...candidate, program], sig, tester);
    runs++;
    if (shown !== null) {
      opts.onProgress?.(`preceding program ${kept[i]!.comment ?? i + 1} is not needed; ${candidate.length} left`);
      kept = candidate;
    } else {
      i++;
    }
  }
  await tester.close();
  return { kept, runs, timeMs: Date.now() - t0, stoppedByTime };
}
