/**
 * The whole-reproduction time budget (`svadiff repro --total-time`, a nightly's per-bug time).
 *
 * A reproduction is more than the minimizer's search: the search is followed by confirmation
 * runs of the final program, maybe replays after the preceding programs, and `runs` runs of
 * repro.c, each on a freshly booted guest. Giving the search the whole budget made a nightly's
 * reproductions overrun it about twofold, so the search here gets the budget minus an estimate
 * of what must follow it, from the boot and program times measured on this very reproduction
 * (a kernel's boot differs 5x between builds, so no constant estimate holds). Pure: the clock
 * is passed in.
 */

/** before anything was measured: a Debian kernel's boot under load, and one program */
const DEFAULT_BOOT_MS = 30_000;
const DEFAULT_RUN_MS = 5_000;
/** compiling repro.c in the guest and its own run, beyond one program through the agent */
const REPRO_C_EXTRA_MS = 2_000;

export class ReproBudget {
  private readonly boots: number[] = [];
  /** one program through the agent, without a boot */
  private readonly programs: number[] = [];
  readonly startedAt: number;

  constructor(
    /** the whole reproduction's budget; undefined: unbounded (only the search's own limits) */
    readonly totalMs: number | undefined,
    /**
     * the finding is a crash or hang: the guest dies with every run that shows it, so each
     * confirmation run pays a boot (measured on 6.1: 34 s per confirmation, not the 2 s of
     * its program); a divergence leaves the guest up
     */
    private readonly runsKillTheGuest: boolean,
    private readonly now: () => number = Date.now,
  ) {
    this.startedAt = now();
  }

  noteBoot(ms: number): void {
    this.boots.push(ms);
  }

  noteRun(programMs: number): void {
    this.programs.push(programMs);
  }

  private bootMs(): number {
    return this.boots.length ? Math.max(...this.boots) : DEFAULT_BOOT_MS;
  }

  private programMs(): number {
    return this.programs.length ? mean(this.programs) : DEFAULT_RUN_MS;
  }

  /** one confirmation run of the final program through the agent */
  private confirmMs(): number {
    return (this.runsKillTheGuest ? this.bootMs() : 0) + this.programMs();
  }

  /** estimated time of n runs of repro.c, each on a fresh guest */
  reproRunsMs(n: number): number {
    return n * (this.bootMs() + this.programMs() + REPRO_C_EXTRA_MS);
  }

  /** estimated time of n runs of a sequence of programs, each run on a fresh guest */
  sequenceRunsMs(n: number, programs: number): number {
    return n * (this.bootMs() + programs * this.programMs());
  }

  /** estimated time of what follows the search: confirmation runs, then repro.c runs */
  reserveMs(confirmRuns: number, reproRuns: number): number {
    return confirmRuns * this.confirmMs() + this.reproRunsMs(reproRuns);
  }

  elapsedMs(): number {
    return this.now() - this.startedAt;
  }

  /** time left of the whole budget (Infinity when unbounded) */
  leftMs(): number {
    return this.totalMs === undefined ? Infinity : this.totalMs - this.elapsedMs();
  }

  /** time the search (or the preceding reduction) may still take, keeping the reserve */
  searchLeftMs(confirmRuns: number, reproRuns: number): number {
    return this.leftMs() - this.reserveMs(confirmRuns, reproRuns);
  }

  /** how many of the wanted repro.c runs fit in what is left; at least one (a report needs it) */
  reproRunsThatFit(wanted: number): number {
    const left = this.leftMs();
    if (left === Infinity) return wanted;
    const one = this.reproRunsMs(1);
    return Math.max(1, Math.min(wanted, Math.floor(left / one)));
  }
}

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}
