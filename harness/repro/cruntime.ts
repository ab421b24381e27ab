/**
 * The C runtime a reproducer carries: the sections of guest/runtime/*.h its program needs, and
 * the #defines of the test device's ABI (guest/include/svt_abi.h) and of the agent's
 * conventions (guest/runtime/svt_defs.h) it uses. The files are real C (the agent compiles them
 * whole); here they are only selected and pasted, as syzkaller's csource preprocesses
 * executor/common_linux.h: `#if` lines over SVT_* names are evaluated (svt_types.h says which
 * names exist), false sections dropped, and every #include hoisted to the top of the file.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../util/paths.js';

export const ABI_HEADER = 'guest/include/svt_abi.h';
export const DEFS_HEADER = 'guest/runtime/svt_defs.h';
/** the endpoint's registers (ep_dma programs them through a vfio device fd) */
export const ENDPOINT_HEADER = 'guest/include/svt_endpoint.h';
/** The runtime's parts, in the order a reproducer holds them. */
export const RUNTIME_TYPES = 'guest/runtime/svt_types.h';
export const RUNTIME_FUNCTIONS = ['guest/runtime/svt_runtime.h', 'guest/runtime/svt_repro.h'] as const;

const cache = new Map<string, string>();

/** A file of the project (read once). */
export function projectFile(rel: string): string {
  let t = cache.get(rel);
  if (t === undefined) {
    t = readFileSync(join(projectRoot(), rel), 'utf8');
    cache.set(rel, t);
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// Sections

/** The value of an #if condition: SVT_* names (0 unless defined), 0, 1, !, &&, || and parentheses. */
export function evalCondition(expr: string, defined: ReadonlySet<string>): boolean {
  const tokens = expr.match(/\|\||&&|!|\(|\)|[A-Za-z_][A-Za-z0-9_]*|\d+|\S/g) ?? [];
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`runtime #if ${expr}: ${why} (only SVT_* names, 0, 1, !, &&, || and parentheses)`);
  };
  const primary = (): boolean => {
    const t = tokens[i++];
    if (t === '!') return !primary();
    if (t === '(') {
      const v = or();
      if (tokens[i++] !== ')') fail('a ( without its )');
      return v;
    }
    if (t === '0' || t === '1') return t === '1';
    if (t !== undefined && /^SVT_[A-Z0-9_]+$/.test(t)) return defined.has(t);
    return fail(`unexpected ${t ?? 'end'}`);
  };
  const and = (): boolean => {
    let v = primary();
    while (tokens[i] === '&&') {
      i++;
      v = primary() && v;
    }
    return v;
  };
  const or = (): boolean => {
    let v = and();
    while (tokens[i] === '||') {
      i++;
      v = and() || v;
    }
    return v;
  };
  const v = or();
  if (i !== tokens.length) fail(`unexpected ${tokens[i]}`);
  return v;
}

/**
 * The text of a runtime file with `defined` set: its leading comment dropped (it documents the
 * file, not a reproducer), #if/#elif/#else/#endif evaluated, runs of blank lines made one.
 */
export function selectSections(text: string, defined: ReadonlySet<string>): string {
  const lines = text.split('\n');
  let start = 0;
  if (lines[0]?.startsWith('/* SPDX')) start = 1;
  if (lines[start]?.startsWith('/*')) {
    while (start < lines.length && !lines[start]!.includes('*/')) start++;
    start++;
  }
  const stack: { active: boolean; taken: boolean }[] = [];
  const out: string[] = [];
  const live = () => stack.every((s) => s.active);
  for (const line of lines.slice(start)) {
    const m = /^#\s*(if|elif|else|endif|ifdef|ifndef)\b\s*(.*)$/.exec(line);
    if (!m) {
      if (live()) out.push(line);
      continue;
    }
    const [, dir, rest] = m;
    const cond = (rest ?? '').replace(/\/\*.*?\*\//g, '').trim();
    if (dir === 'ifdef' || dir === 'ifndef') throw new Error(`runtime: #${dir} ${cond}: use #if SVT_* (sections are selected by value)`);
    if (dir === 'if') {
      const v = evalCondition(cond, defined);
      stack.push({ active: v, taken: v });
    } else {
      const top = stack[stack.length - 1];
      if (top === undefined) throw new Error(`runtime: #${dir} without #if`);
      if (dir === 'endif') stack.pop();
      else if (dir === 'else') {
        top.active = !top.taken;
        top.taken = true;
      } else {
        top.active = !top.taken && evalCondition(cond, defined);
        top.taken ||= top.active;
      }
    }
  }
  if (stack.length > 0) throw new Error('runtime: #if without #endif');
  return out
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .replace(/^\n+|\n+$/g, '');
}

/** Every SVT_* name the runtime's #if lines test. */
export function runtimeFeatures(): Set<string> {
  const names = new Set<string>();
  for (const f of [RUNTIME_TYPES, ...RUNTIME_FUNCTIONS]) {
    for (const m of projectFile(f).matchAll(/^#\s*(?:if|elif)\b(.*)$/gm)) for (const n of m[1]!.matchAll(/\bSVT_[A-Z0-9_]+/g)) names.add(n[0]);
  }
  return names;
}

/** Features named after what the program's C uses: SVT_<NAME> for the identifier <name>. */
export function usedFeatures(code: string): string[] {
  const ids = identifiers(code);
  return [...runtimeFeatures()].filter((f) => ids.has(f.slice('SVT_'.length).toLowerCase()));
}

/**
 * The runtime for a reproducer: its types (to go before the program's steps) and its functions
 * (after them), and the #includes of both, hoisted (system headers, then sys/ ones).
 */
export function runtimeFor(defined: ReadonlySet<string>): { includes: string[]; types: string; functions: string } {
  const hoist = (text: string, into: Set<string>) =>
    text
      .split('\n')
      .filter((l) => {
        if (!/^#include <[^>]+>$/.test(l) && l !== '#define _GNU_SOURCE') return true;
        into.add(l);
        return false;
      })
      .join('\n')
      .replace(/\n{3,}/g, '\n\n')
      .replace(/^\n+|\n+$/g, '');
  const inc = new Set<string>();
  const types = hoist(selectSections(projectFile(RUNTIME_TYPES), defined), inc);
  const functions = RUNTIME_FUNCTIONS.map((f) => hoist(selectSections(projectFile(f), defined), inc))
    .filter((t) => t !== '')
    .join('\n\n');
  const headers = [...inc].filter((l) => l.startsWith('#include')).sort((a, b) => {
    const sa = a.includes('/') ? 1 : 0;
    const sb = b.includes('/') ? 1 : 0;
    return sa - sb || a.localeCompare(b);
  });
  return { includes: [...(inc.has('#define _GNU_SOURCE') ? ['#define _GNU_SOURCE'] : []), ...headers], types, functions };
}

// ---------------------------------------------------------------------------------------------
// #defines

/** One #define of C text (with its continuation lines and trailing comment). */
export interface CDefine {
  name: string;
  text: string;
}

/** The #defines of a C header, in order (the include guard left out). */
export function parseDefines(text: string): CDefine[] {
  const lines = text.split('\n');
  const out: CDefine[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^#define\s+([A-Za-z_][A-Za-z0-9_]*)/.exec(lines[i]!);
    if (!m || /_H$/.test(m[1]!)) continue;
    const block = [lines[i]!];
    while (block[block.length - 1]!.endsWith('\\') && i + 1 < lines.length) block.push(lines[++i]!);
    out.push({ name: m[1]!, text: block.join('\n') });
  }
  return out;
}

/** The identifiers of C text, comments left out. */
export function identifiers(s: string): Set<string> {
  return new Set(s.replace(/\/\*[\s\S]*?\*\//g, ' ').match(/\b[A-Za-z_][A-Za-z0-9_]*\b/g) ?? []);
}

/** The defines `code` uses, directly or through other used defines, in their original order. */
export function usedDefines(defs: readonly CDefine[], code: string): CDefine[] {
  const used = new Set<string>();
  let refs = identifiers(code);
  for (;;) {
    const added = defs.filter((d) => !used.has(d.name) && refs.has(d.name));
    if (added.length === 0) break;
    for (const d of added) used.add(d.name);
    refs = identifiers(added.map((d) => d.text.replace(/^#define\s+[A-Za-z0-9_]+/, '')).join('\n'));
  }
  return defs.filter((d) => used.has(d.name));
}

/** The ABI's and the conventions' #defines that `code` uses, as C lines. */
export function definesFor(code: string): { abi: string[]; conventions: string[] } {
  const conventions = usedDefines(parseDefines(projectFile(DEFS_HEADER)), code);
  const abi = usedDefines(parseDefines(projectFile(ABI_HEADER)), code + '\n' + conventions.map((d) => d.text).join('\n'));
  const endpoint = usedDefines(parseDefines(projectFile(ENDPOINT_HEADER)), code + '\n' + conventions.map((d) => d.text).join('\n'));
  return { abi: [...abi, ...endpoint].map((d) => d.text), conventions: conventions.map((d) => d.text) };
}
