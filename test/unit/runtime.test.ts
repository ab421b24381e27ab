/**
 * The C runtime shared by the agent and the reproducers (guest/runtime): it compiles on its own
 * for every form with every section (-Wall -Wextra -Werror), csource.ts selects its sections as
 * the C preprocessor would, and the host's mirrors of its numbers (harness/agent/conventions.ts)
 * and of its names (errno.ts) agree with it.
 */
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as conventions from '../../harness/agent/conventions.js';
import { MAX_LINE } from '../../harness/agent/wire.js';
import { ERRNO_NAMES, SIGNAL_NAMES } from '../../harness/program/errno.js';
import { evalCondition, parseDefines, RUNTIME_FUNCTIONS, RUNTIME_TYPES, runtimeFeatures, selectSections } from '../../harness/repro/cruntime.js';
import { projectRoot } from '../../harness/util/paths.js';

const ROOT = projectRoot();
const read = (rel: string) => readFileSync(join(ROOT, rel), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'svadiff-runtime-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Every SVT_* name of the runtime that a program's steps turn on (SVT_<identifier>). */
const STEP_FEATURES = [...runtimeFeatures()].filter((f) => !['SVT_AGENT', 'SVT_GENERAL', 'SVT_COMPACT', 'SVT_WATCH', 'SVT_FAULTS', 'SVT_OK_VALUE'].includes(f));

const FORMS: Record<string, string[]> = {
  general: ['SVT_GENERAL', ...STEP_FEATURES],
  'compact, everything': ['SVT_COMPACT', 'SVT_WATCH', 'SVT_FAULTS', 'SVT_OK_VALUE', ...STEP_FEATURES],
  'compact, nothing': ['SVT_COMPACT'],
};

describe('the runtime on its own', () => {
  for (const [form, features] of Object.entries(FORMS)) {
    it(`compiles with -Wall -Wextra -Werror: ${form}`, { timeout: 60_000 }, async () => {
      const r = await execa(
        'gcc',
        [
          '-fsyntax-only',
          '-std=gnu11',
          '-Wall',
          '-Wextra',
          '-Werror',
          // which sections a program really uses is checked by compiling reproducers (-Werror)
          '-Wno-unused-function',
          '-Wno-unused-variable',
          ...features.map((f) => `-D${f}=1`),
          '-I',
          join(ROOT, 'guest/include'),
          '-I',
          join(ROOT, 'guest/runtime'),
          join(ROOT, 'test/fixtures/runtime/standalone.c'),
        ],
        { reject: false, all: true },
      );
      expect(r.exitCode, String(r.all)).toBe(0);
    });
  }
});

/** The lines of C that say what a text holds: function heads, definitions of types and macros. */
function outline(text: string): string[] {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => /^(static |struct |enum |int main|#define [A-Za-z])/.test(l))
    .map((l) => (l.startsWith('#define') ? /^#define \w+/.exec(l)![0] : l));
}

describe('selecting sections', () => {
  it('evaluates conditions as C does', () => {
    const on = new Set(['SVT_A', 'SVT_B']);
    expect(evalCondition('SVT_A', on)).toBe(true);
    expect(evalCondition('SVT_C', on)).toBe(false);
    expect(evalCondition('SVT_C || SVT_B', on)).toBe(true);
    expect(evalCondition('SVT_A && !SVT_B', on)).toBe(false);
    expect(evalCondition('!(SVT_C || SVT_D) && (SVT_A || SVT_C)', on)).toBe(true);
    expect(evalCondition('SVT_C || SVT_A && !SVT_B', on)).toBe(false);
    expect(evalCondition('1', on)).toBe(true);
    expect(() => evalCondition('defined(FOO)', on)).toThrow(/only SVT_/);
    expect(() => evalCondition('SVT_A ||', on)).toThrow(/unexpected end/);
  });

  it('keeps what gcc -E -fdirectives-only keeps, for every form', { timeout: 120_000 }, async () => {
    for (const features of [...Object.values(FORMS), ['SVT_GENERAL'], ['SVT_COMPACT', 'SVT_WATCH', 'SVT_SUBMIT'], ['SVT_AGENT']]) {
      for (const f of [RUNTIME_TYPES, ...RUNTIME_FUNCTIONS]) {
        const text = read(f);
        const file = join(dir, 'in.h');
        writeFileSync(file, text.replace(/^#include .*$/gm, ''));
        const r = await execa('gcc', ['-E', '-P', '-fdirectives-only', ...features.map((x) => `-D${x}=1`), '-x', 'c', file]);
        const ours = outline(selectSections(text, new Set(features))).filter((l) => !l.startsWith('#define _GNU_SOURCE'));
        // gcc also prints its predefined macros (#define __…): they are not the file's
        const gcc = outline(String(r.stdout)).filter((l) => !/^#define (_|SVT_|unix|linux|i386)/.test(l));
        expect(ours, `${f} with ${features.join(' ')}`).toEqual(gcc);
      }
    }
  });
});

describe('the host mirrors the runtime', () => {
  it('conventions.ts has every number of svt_defs.h', () => {
    const defs = parseDefines(read('guest/runtime/svt_defs.h'));
    const numbers = defs.flatMap((d) => {
      const m = /^#define\s+([A-Z_0-9]+)\s+(0x[0-9a-fA-F]+|\d+)(ULL|u)?\b/.exec(d.text);
      return m ? [[m[1]!, BigInt(m[2]!)] as const] : [];
    });
    expect(numbers.length).toBeGreaterThan(10);
    for (const [name, value] of numbers) {
      const mirror = (conventions as Record<string, unknown>)[name];
      expect(mirror, name).toBeDefined();
      expect(BigInt(mirror as number | bigint), name).toBe(value);
    }
  });

  it("the agent's line limit is the host's", () => {
    const m = /^#define MAX_LINE\s+(\d+)/m.exec(read('guest/agent/agent.c'));
    expect(Number(m?.[1])).toBe(MAX_LINE);
  });

  it("a reproducer's errno and signal names are errno.ts's", () => {
    const text = read('guest/runtime/svt_repro.h');
    const table = (name: string) => [...(new RegExp(`${name}\\[\\] = \\{([^}]*)\\}`).exec(text)?.[1] ?? '').matchAll(/NAME\((\w+)\)/g)].map((m) => m[1]);
    expect(table('errno_names')).toEqual(Object.values(ERRNO_NAMES));
    expect(table('signal_names')).toEqual(Object.values(SIGNAL_NAMES));
  });
});
