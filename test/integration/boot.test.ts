/**
 * Boots the real Debian 6.12 kernel in QEMU (TCG here) with uacce.ko and the test module, and
 * drives the test device through the agent. Every result is asserted exactly.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchKernel } from '../../kernels/index.js';
import type { KernelArtifacts } from '../../kernels/types.js';
import type { ProgramRun } from '../../harness/agent/session.js';
import { slotAddress } from '../../harness/agent/conventions.js';
import { parseProgram } from '../../harness/program/parse.js';
import { Guest, GuestBootError, prepareGuestImage, type GuestImage } from '../../harness/vm/guest.js';
import { UserError } from '../../harness/util/errors.js';

const KERNEL = 'debian:6.12';
const SVT_MAGIC_AND_VERSION = '0x253565444'; // u64 at MMIO 0x0: magic "SVTD", ABI version 2
const EINVAL = 22;
const ENXIO = 6;

let kernel: KernelArtifacts;
let image: GuestImage;
let guest: Guest;
const logDir = mkdtempSync(join(tmpdir(), 'svadiff-it-'));

beforeAll(async () => {
  kernel = await fetchKernel(KERNEL);
  image = await prepareGuestImage(kernel);
  guest = await Guest.boot(kernel, image, { consolePath: join(logDir, 'boot.console.log') });
});

afterAll(async () => {
  await guest?.shutdown();
});

function result(run: ProgramRun, i: number) {
  const r = run.results[i];
  if (!r) throw new Error(`op ${i}: no result (run: ${JSON.stringify({ finished: run.finished, errors: run.errors })})`);
  return { ret: Number(r.ret), errno: r.errno, signal: r.signal, data: r.data, aux: r.aux };
}

describe(`real guest: ${KERNEL}`, () => {
  it('boots the expected kernel and its agent says hello', () => {
    expect(guest.session.hello?.release).toBe(kernel.release);
    expect(kernel.version).toMatch(/^6\.12\.\d+$/);
  });

  it('keeps the kernel log of the boot apart from the programs', () => {
    // the boot's records arrived before Guest.boot returned (a ping drains them), so none can
    // be taken for the first program's
    expect(guest.bootKmsg.some((r) => r.text.startsWith('Linux version'))).toBe(true);
    expect(guest.bootKmsg.some((r) => /^uacce: loading out-of-tree module/.test(r.text))).toBe(true);
  });

  it('runs the basic queue life cycle with exact results', async () => {
    const prog = parseProgram(readFileSync('corpus/seeds/basic-lifecycle.json', 'utf8'), 'basic-lifecycle.json');
    const run = await guest.session.runProgram(1, prog);
    expect(run.started).toBe(true);
    expect(run.finished?.status).toBe(0);
    expect(run.kmsg.some((k) => k.text.startsWith('Linux version'))).toBe(false);
    // open: a new queue on the device's node
    expect(result(run, 0)).toMatchObject({ errno: 0, signal: 0, data: '/dev/svt0-0' });
    expect(result(run, 0).ret).toBeGreaterThanOrEqual(0);
    // mmap of both regions and the anonymous buffer, each at its slot address
    expect(result(run, 1)).toEqual({ ret: 0, errno: 0, signal: 0, data: '', aux: '0x' + slotAddress(0).toString(16) });
    expect(result(run, 2)).toEqual({ ret: 0, errno: 0, signal: 0, data: '', aux: '0x' + slotAddress(1).toString(16) });
    expect(result(run, 3)).toMatchObject({ ret: 0, errno: 0, aux: '0x' + slotAddress(2).toString(16) });
    // START_Q
    expect(result(run, 4)).toMatchObject({ ret: 0, errno: 0 });
    // the MMIO page: magic and version, then queue id 1 in the low half and state STARTED (2)
    expect(result(run, 5)).toMatchObject({ ret: 0, signal: 0, data: SVT_MAGIC_AND_VERSION });
    expect(result(run, 6)).toMatchObject({ ret: 0, signal: 0, data: '0x200000001' });
    // one WRITE64 work item through ring and doorbell, done by the engine in our address space
    expect(result(run, 7)).toMatchObject({ ret: 0, errno: 0, signal: 0, data: 'done' });
    expect(result(run, 8)).toMatchObject({ ret: 0, signal: 0, data: '0x1122334455667788' });
    // PUT_Q, munmap both, close
    for (const i of [9, 10, 11, 12]) expect(result(run, i)).toMatchObject({ ret: 0, errno: 0, signal: 0 });
  });

  it('reports the errnos of the uacce ioctl table and SIGBUS after removal', async () => {
    const prog = parseProgram(
      JSON.stringify({
        format: 'svadiff-program',
        version: 1,
        ops: [
          { op: 'open', task: 't0', fd: 'q', dev: 0 },
          { op: 'mmap', task: 't0', map: 'm', fd: 'q', region: 0, pages: 1, prot: 'rw', shared: true },
          { op: 'ioctl', task: 't0', fd: 'q', cmd: 'START_Q' },
          { op: 'ioctl', task: 't0', fd: 'q', cmd: 'START_Q' }, // STARTED: EINVAL
          { op: 'ioctl', task: 't0', fd: 'q', cmd: 0x5710 }, // unknown, no driver ioctl: EINVAL
          { op: 'mmap', task: 't0', map: 'm2', fd: 'q', region: 2, pages: 1, prot: 'rw', shared: true }, // EINVAL
          { op: 'remove', task: 't0', dev: 0 },
          { op: 'ioctl', task: 't0', fd: 'q', cmd: 'PUT_Q' }, // ZOMBIE: ENXIO
          { op: 'touch', task: 't0', map: 'm', page: 0, offset: 0, access: 'read' }, // torn down: SIGBUS
          { op: 'close', task: 't0', fd: 'q' },
        ],
      }),
      'inline',
    );
    const run = await guest.session.runProgram(2, prog);
    expect(run.finished?.status).toBe(0);
    expect(result(run, 2)).toMatchObject({ ret: 0, errno: 0 });
    expect(result(run, 3)).toMatchObject({ ret: -1, errno: EINVAL });
    expect(result(run, 4)).toMatchObject({ ret: -1, errno: EINVAL });
    expect(result(run, 5)).toMatchObject({ ret: -1, errno: EINVAL });
    expect(result(run, 6)).toMatchObject({ ret: 0, errno: 0 });
    expect(result(run, 7)).toMatchObject({ ret: -1, errno: ENXIO });
    expect(result(run, 8)).toMatchObject({ signal: 7 });
    expect(result(run, 9)).toMatchObject({ ret: 0, errno: 0 });
  });

  it('answers a no-op round trip', async () => {
    const ms = await guest.session.ping();
    expect(ms).toBeGreaterThan(0);
  });
});

describe('bad input and failures', () => {
  it('an unknown kernel version lists the available versions of its series', async () => {
    const e = await fetchKernel('debian:6.12.999').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UserError);
    expect((e as Error).message).toMatch(/6\.12\.999/);
    expect((e as Error).message).toContain(kernel.version); // the newest, among those listed
  });

  it('a guest that does not reach its agent in time names the saved console log', async () => {
    const consolePath = join(logDir, 'short-timeout.console.log');
    const e = await Guest.boot(kernel, image, { consolePath, bootTimeoutMs: 300 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(GuestBootError);
    expect((e as GuestBootError).kind).toBe('timeout');
    expect((e as Error).message).toContain(consolePath);
  });
});
