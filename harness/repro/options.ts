/** What a C reproducer is made from besides its program. */
import type { Outcome } from '../program/outcome.js';

export interface ReproOptions {
  /** per op: the outcomes the model allows; undefined: no expectation (the step is not checked) */
  expected: readonly (readonly Outcome[] | undefined)[];
  /** per op: the model rules behind the expectation (they end the divergence title) */
  rules?: readonly (readonly string[] | undefined)[];
  /** the finding this reproduces */
  title?: string;
  /** the kernel it was seen on, e.g. "6.12.117+deb12-amd64 (debian:6.12.117)" */
  kernel?: string;
  /** more header lines (where the program came from, ...) */
  notes?: readonly string[];
  /** which form of reproducer: 'auto' (the default) is compact whenever reproForm allows it */
  form?: ReproForm | 'auto';
  /**
   * compact form: run the steps in a child process watched by the parent (hangs, deaths, a task
   * stuck as it exits). Default: unless the title is an ordinary divergence.
   */
  watch?: boolean;
}

/** The compact form (one task: straight-line main) or the general form (tasks, step tables). */
export type ReproForm = 'compact' | 'general';
