/**
 * Memory contents as the model keeps them: 4 KiB pages at u32 granularity (the device's
 * registers and descriptor fields are u32 or u64, little-endian, so a u64 is two words).
 *
 * A word is a number (0..2^32-1) or `null` when the model cannot know it (the opener's tgid,
 * words an asynchronously running engine may be writing). A page stores only the words that
 * were written; the others come from its base: zero (anonymous memory), the device's initial
 * contents of a region page (docs/test-device.md "get_queue"), or unknown.
 */
import { SVT_DUS_SCRATCH, SVT_MMIO_SCRATCH, WORDS_PER_PAGE } from './abi.js';

export type Word = number | null;

/** base of a page: >= 0 the initial contents of device page (region << 8 | page); or one of: */
export const BASE_ZERO = -1;
export const BASE_UNKNOWN = -2;

export interface Page {
  base: number;
  /** values of written words */
  val: Uint32Array;
  /** per word: 0 not written (the base applies), 1 written (val), 2 written but unknown */
  st: Uint8Array;
}

export function devBase(region: number, page: number): number {
  return (region << 8) | page;
}

/**
 * svt_abi.h: every u64 of a scratch area holds SVT_FILL(region, page, offset); the register
 * block of MMIO page 0 (below SVT_MMIO_SCRATCH) and the ring of DUS page 0 (below
 * SVT_DUS_SCRATCH) start as 0 (the registers get their values at get_queue, stored explicitly).
 */
export function baseWord(base: number, idx: number): Word {
  if (base === BASE_ZERO) return 0;
  if (base < 0) return null;
  const region = base >> 8;
  const page = base & 0xff;
  const byte = idx * 4;
  if (page === 0 && byte < (region === 0 ? SVT_MMIO_SCRATCH : SVT_DUS_SCRATCH)) return 0;
  if ((idx & 1) === 0) return ((page << 24) | (byte & ~7)) >>> 0; // low half: page << 24 | offset
  return (0x53560000 | (region << 8)) >>> 0; // high half: 0x5356 << 16 | region << 8
}

export function pageWord(p: Page | undefined, base: number, idx: number): Word {
  if (p === undefined) return baseWord(base, idx);
  const st = p.st[idx];
  if (st === 1) return p.val[idx]!;
  if (st === 2) return null;
  return baseWord(p.base, idx);
}

export function setWord(p: Page, idx: number, v: Word): void {
  if (v === null) {
    p.st[idx] = 2;
  } else {
    p.st[idx] = 1;
    p.val[idx] = v;
  }
}

export function emptyPage(base: number): Page {
  return { base, val: new Uint32Array(WORDS_PER_PAGE), st: new Uint8Array(WORDS_PER_PAGE) };
}

export function clonePage(p: Page): Page {
  return { base: p.base, val: p.val.slice(), st: p.st.slice() };
}

/** A snapshot of device page (region, page) with its current contents, as a private COW copy. */
export function snapshotPage(p: Page | undefined, base: number): Page {
  return p === undefined ? emptyPage(base) : clonePage(p);
}

export const u32 = (n: number): number => n >>> 0;

/** Signed 32-bit difference a - b, as the agent's wait loop computes it. */
export const diff32 = (a: number, b: number): number => (a - b) | 0;

/** "0x…" lowercase hex without leading zeros (printf %#llx style, but 0 is "0x0"). */
export function hex64(lo: number, hi: number): string {
  if (hi === 0) return '0x' + lo.toString(16);
  return '0x' + hi.toString(16) + lo.toString(16).padStart(8, '0');
}

/** Parse "0x…" (≤ 16 hex digits) into u32 halves. */
export function parseHex64(s: string): { lo: number; hi: number } {
  const digits = s.replace(/^0x/i, '').padStart(16, '0').slice(-16);
  return { hi: parseInt(digits.slice(0, 8), 16) >>> 0, lo: parseInt(digits.slice(8), 16) >>> 0 };
}

