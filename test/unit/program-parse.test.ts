import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkProgram, formatProgram, parseProgram } from '../../harness/program/parse.js';
import { DEFAULT_DEVICE } from '../../harness/program/types.js';
import { UserError } from '../../harness/util/errors.js';
import { missingToolsMessage } from '../../harness/util/host.js';

const prog = (ops: unknown[], extra: Record<string, unknown> = {}) =>
  JSON.stringify({ format: 'svadiff-program', version: 1, ops, ...extra });

function errorOf(text: string): string {
  try {
    parseProgram(text, 'p.json');
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    const msg = (e as Error).message;
    expect(msg.split('\n')).toHaveLength(1); // one line
    return msg;
  }
  throw new Error('no error');
}

describe('program files: errors name the op and the field', () => {
  it('not JSON', () => {
    expect(errorOf('{"format": ')).toMatch(/^p\.json: not valid JSON: /);
  });

  it('wrong format and version', () => {
    expect(errorOf(JSON.stringify({ format: 'x', version: 1, ops: [] }))).toBe('p.json: field "format": must be "svadiff-program", got "x"');
    expect(errorOf(JSON.stringify({ format: 'svadiff-program', version: 3, ops: [] }))).toBe(
      'p.json: field "version": this svadiff reads versions 1 and 2, got 3',
    );
  });

  it('a bad field of an op', () => {
    const text = prog([
      { op: 'open', fd: 'q' },
      { op: 'mmap', fd: 'q', map: 'm', region: 0, pages: 0 },
    ]);
    expect(errorOf(text)).toBe('p.json: ops[1] (mmap): field "pages": must be an integer in 1..64, got 0');
  });

  it('an unknown op and an unknown field', () => {
    expect(errorOf(prog([{ op: 'frobnicate' }]))).toMatch(/^p\.json: ops\[0\] \(frobnicate\): field "op": must be one of open, close, /);
    expect(errorOf(prog([{ op: 'close', fd: 'q', colour: 'red' }]))).toBe('p.json: ops[0] (close): field "colour": unknown for this operation');
  });

  it('names used before they exist, twice, or by a task that has exited', () => {
    expect(errorOf(prog([{ op: 'close', fd: 'q' }]))).toBe('p.json: ops[0] (close): field "fd": descriptor "q" is not created by an earlier op');
    expect(errorOf(prog([{ op: 'open', fd: 'q' }, { op: 'open', fd: 'q' }]))).toBe('p.json: ops[1] (open): field "fd": name "q" is already used');
    expect(
      errorOf(
        prog([
          { op: 'fork', child: 't1' },
          { op: 'exit', task: 't1' },
          { op: 'open', task: 't1', fd: 'q' },
        ]),
      ),
    ).toBe('p.json: ops[2] (open): field "task": task "t1" has exited');
    expect(errorOf(prog([{ op: 'open', task: 't9', fd: 'q' }]))).toBe(
      'p.json: ops[0] (open): field "task": no task "t9" (tasks come from "t0" and fork)',
    );
  });

  it('device parameters', () => {
    expect(errorOf(prog([], { device: { devices: 9 } }))).toBe('p.json: device: field "devices": must be an integer in 1..8, got 9');
    expect(errorOf(prog([{ op: 'open', fd: 'q', dev: 1 }]))).toBe(
      'p.json: ops[0] (open): field "dev": device 1 does not exist (device.devices is 1)',
    );
  });

  it('touch needs an aligned offset and a hex value for writes', () => {
    const base = [{ op: 'alloc', map: 'b', pages: 1 }];
    expect(errorOf(prog([...base, { op: 'touch', map: 'b', offset: 4, access: 'read' }]))).toBe(
      'p.json: ops[1] (touch): field "offset": must be a multiple of 8, got 4',
    );
    expect(errorOf(prog([...base, { op: 'touch', map: 'b', access: 'write', value: 12 }]))).toBe(
      'p.json: ops[1] (touch): field "value": must be a hex string "0x…" of at most 16 digits, got 12',
    );
  });

  it('defaults are filled in and the canonical text round-trips', () => {
    const p = parseProgram(prog([{ op: 'open', fd: 'q' }]), 'p.json');
    expect(p.device).toEqual(DEFAULT_DEVICE);
    expect(p.ops[0]).toEqual({ op: 'open', task: 't0', fd: 'q', dev: 0, via: 'path' });
    expect(parseProgram(formatProgram(p), 'again')).toEqual(p);
  });

  it('every program shipped in corpus/ parses', () => {
    for (const dir of ['corpus/seeds']) {
      for (const f of readdirSync(dir).filter((x) => x.endsWith('.json'))) {
        const p = parseProgram(readFileSync(join(dir, f), 'utf8'), f);
        expect(checkProgram(JSON.parse(formatProgram(p)), f)).toEqual(p);
      }
    }
  });
});

describe('missing host tools', () => {
  it('names the tool, why it is needed, and the install command', () => {
    expect(missingToolsMessage([{ cmd: 'qemu-system-x86_64', pkg: 'qemu-system-x86', why: 'running guests' }])).toBe(
      'missing on this host: qemu-system-x86_64 (running guests); install with: sudo apt-get install -y --no-install-recommends qemu-system-x86',
    );
  });
});
