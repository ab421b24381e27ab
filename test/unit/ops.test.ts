/**
 * The op descriptions (harness/ops): consistent in themselves, read the same way by every site
 * (parser, wire, agent, reproducer, docs), and the docs' tables are theirs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeOp, slotTable } from '../../harness/agent/wire.js';
import { wireLayout, WIRE_ARGS } from '../../harness/ops/describe.js';
import { DEFAULT_WEIGHTS } from '../../harness/generator/index.js';
import { GENERATED_DOCS, withTable } from '../../harness/ops/docs.js';
import { OP_DESCS, OP_KINDS, descOf } from '../../harness/ops/index.js';
import { agentOpsHeader, agentRender } from '../../harness/ops/render.js';
import { parseProgram } from '../../harness/program/parse.js';
import { projectRoot } from '../../harness/util/paths.js';
import { EVERY_SINGLE_TASK_OP } from './repro-csource-helpers.js';

describe('op descriptions', () => {
  it('opcodes are 1..N in order for core and uacce, from 32 for vfio (41-50 iommufd, 51-53 DMA), one per op kind', () => {
    const base = OP_DESCS.filter((d) => d.family !== 'vfio');
    expect(base.map((d) => d.opcode)).toEqual(base.map((_, i) => i + 1));
    const vfio = OP_DESCS.filter((d) => d.family === 'vfio');
    // the agreed blocks (helpers' notes iommufd-interface.md): group path 32-40, iommufd 41-50, endpoint DMA 51-53
    const block = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
    const iommufd = vfio.some((d) => d.opcode >= 41 && d.opcode <= 50) ? block(41, 50) : [];
    expect(vfio.map((d) => d.opcode)).toEqual([...block(32, 40), ...iommufd, ...block(51, 53)]);
    expect(OP_KINDS).toEqual(OP_DESCS.map((d) => d.op));
    expect(Object.keys(DEFAULT_WEIGHTS)).toEqual([...OP_KINDS]);
  });

  it('optional fields, simplifications and wire arguments name fields that exist', () => {
    for (const d of OP_DESCS) {
      const names = Object.keys(d.fields);
      for (const f of Object.values(d.fields)) {
        if (f.only === undefined) continue;
        for (const n of 'field' in f.only ? [f.only.field] : f.only.any) expect(names, `${d.op}: only depends on ${n}`).toContain(n);
      }
      for (const n of d.simplify ?? []) expect(d.fields[n]?.simpler, `${d.op}: simplify ${n}`).toBeDefined();
      const layout = wireLayout(d);
      expect(layout.args.length).toBeLessThanOrEqual(WIRE_ARGS);
      const onWire = layout.args.flatMap((a) => (typeof a === 'string' ? [a] : Object.keys(a.bits)));
      expect([...onWire, ...(layout.str ? [layout.str] : [])].sort(), d.op).toEqual([...names].sort());
    }
  });

  it("the agent's rendering names only wire arguments and the agent's helpers", () => {
    for (const d of OP_DESCS) {
      const c = d.c(agentRender(d));
      for (const l of [...(c.resolve ?? []), ...c.body]) expect(l, d.op).not.toMatch(/undefined|NaN|\[object/);
    }
    const h = agentOpsHeader();
    for (const d of OP_DESCS) expect(h).toContain(`case OP_${d.op.toUpperCase()}:`);
  });

  it('every op of a program goes on the wire in its description\'s order', () => {
    const p = parseProgram(JSON.stringify({ format: 'svadiff-program', version: 1, device: { devices: 2 }, ops: EVERY_SINGLE_TASK_OP }), 'every');
    const t = slotTable(p);
    const lines = p.ops.map((op, i) => encodeOp(i, op, t));
    expect(lines[4]).toBe('O 4 0 4 0 0 0 1 3 1 0 0 -'); // mmap m, q, region 0, 1 page, rw, shared
    expect(lines[12]).toBe('O 12 0 10 0 1 1 3 0 0 1 0 307835'); // submit write through m, d into b, ack
    expect(lines[21]).toBe('O 21 0 7 3 0 2 3 1 4 0 0 -'); // mremap b -> c, move
    for (const [i, l] of lines.entries()) expect(l.split(' ')[3], `op ${i}`).toBe(String(descOf(p.ops[i]!.op).opcode));
  });
});

describe('the docs', () => {
  for (const d of GENERATED_DOCS) {
    it(`${d.file} has the op table of the descriptions (npm run docs writes it)`, () => {
      const text = readFileSync(join(projectRoot(), d.file), 'utf8');
      expect(withTable(text, d.table(), d.file) === text, `${d.file} is stale: run npm run docs`).toBe(true);
    });
  }
});
