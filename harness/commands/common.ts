/** Pieces shared by the commands that boot guests. */
import { promises as fs, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fetchKernel, parseArch } from '../../kernels/index.js';
import { withArch } from '../../kernels/spec.js';
import type { KernelArtifacts } from '../../kernels/types.js';
import type { KernelId } from '../findings/store.js';
import { profileFor, type KernelProfile } from '../model/index.js';
import { parseConsole, type KmsgRecord } from '../oracle/report.js';
import { svaBinds } from '../model/profile.js';
import { machineForDevice } from '../vm/machine.js';
import { parseAccel, type AccelChoice } from '../vm/accel.js';
import { Guest, GuestBootError, prepareGuestImage, type GuestImage, type GuestOptions } from '../vm/guest.js';
import { info, warn } from '../util/log.js';
import { vfioPaths, withVfioModules } from '../../kernels/vfio-modules.js';
import { descOf } from '../ops/index.js';
import type { Program } from '../program/types.js';
import { UserError } from '../util/errors.js';

export const DEFAULT_KERNEL = 'debian:6.12';
export const DEFAULT_OUT = 'svadiff-out';

export interface GuestSetup {
  kernel: KernelArtifacts;
  image: GuestImage;
  accel: AccelChoice;
  outDir: string;
}

/**
 * Fetch the kernel (cached; uacce.ko from --uacce-src when given), build agent and initramfs
 * (cached). `arch` is the command's --arch: debian:6.12 with --arch arm64 is debian:6.12/arm64.
 */
export async function prepare(kernelSpec: string | undefined, accel: string | undefined, out: string | undefined, uacceSrc?: string, arch?: string): Promise<GuestSetup> {
  const spec = withArch(kernelSpec ?? DEFAULT_KERNEL, arch === undefined ? undefined : parseArch(arch));
  const kernel = await fetchKernel(spec, uacceSrc !== undefined ? { uacceSrc } : {});
  const image = await prepareGuestImage(kernel);
  const outDir = resolve(out ?? DEFAULT_OUT);
  await fs.mkdir(join(outDir, 'logs'), { recursive: true });
  return { kernel, image, accel: parseAccel(accel), outDir };
}

/**
 * The setup vfio programs need: the kernel's vfio modules in the guest (Debian builds vfio as
 * modules: kernels/vfio-modules.ts) and so another initramfs.
 */
export async function withVfioGuest(s: GuestSetup): Promise<GuestSetup> {
  const kernel = await withVfioModules(s.kernel);
  return { ...s, kernel, image: await prepareGuestImage(kernel) };
}

/** The setup a program needs: withVfioGuest for a program with vfio ops; else unchanged. */
export async function setupFor(s: GuestSetup, program: Program): Promise<GuestSetup> {
  return program.ops.some((op) => descOf(op.op).family === 'vfio') ? withVfioGuest(s) : s;
}

/** Who a finding was seen on: the exact kernel and, when known, where its uacce came from. */
export function kernelIdOf(k: KernelArtifacts): KernelId {
  const id: KernelId = { spec: k.exactSpec, release: k.release };
  if (k.arch !== 'x86_64') id.arch = k.arch;
  if (k.uacce) id.uacce = k.uacce.text;
  if (k.uacce?.src) id.uacce_src = k.uacce.src;
  return id;
}

/** The model profile of a kernel (Debian's patches or upstream). */
export function profileOf(k: KernelArtifacts): KernelProfile {
  // which vfio paths (group, iommufd) it has is the config's say (a self-built kernel may differ from Debian's)
  let config: string | undefined;
  try {
    config = readFileSync(k.config, 'utf8');
  } catch {
    config = undefined;
  }
  return profileFor(k.release, { arch: k.arch, distro: k.distro ?? 'debian', ...(config !== undefined ? { vfioPaths: vfioPaths(config) } : {}) });
}

let bootCounter = 0;

/** A console log path for a new boot under outDir/logs. */
export function consoleLogPath(outDir: string, what: string): string {
  const ts = new Date().toISOString().replace(/[:.]/g, '-');
  return join(outDir, 'logs', `${what}-${ts}-${process.pid}-${bootCounter++}.console.log`);
}

/**
 * Boot a guest; a boot that fails (a panic or a timeout of the emulated machine on a loaded
 * host) is tried again up to `attempts` times in all, each failure saying where its console log is.
 */
export async function bootGuest(s: GuestSetup, what: string, extra: Partial<GuestOptions> = {}, attempts = 3): Promise<Guest> {
  for (let i = 1; ; i++) {
    const consolePath = consoleLogPath(s.outDir, what);
    info(`${extra.snapshot ? 'starting' : 'booting'} ${s.kernel.exactSpec} (${s.kernel.release}) …`);
    try {
      const g = await Guest.boot(s.kernel, s.image, { accel: s.accel, consolePath, ...extra });
      info(`guest up in ${(g.bootMs / 1000).toFixed(1)} s (${g.restored ? 'restored from its VM snapshot, ' : ''}${g.accel.toUpperCase()}, ${g.machine.iommu})`);
      for (const t of bootReportTitles(g.bootKmsg)) warn(`the guest's boot logged "${t}" before any program ran (not a finding; console log: ${consolePath})`);
      return g;
    } catch (e) {
      if (!(e instanceof GuestBootError) || i >= attempts) throw e;
      warn(`boot ${i} of ${attempts} failed: ${e.message}; trying again`);
    }
  }
}

/** Kernel reports in the log of a boot (crashes, warnings, stalls; the test device's own lines left out). */
export function bootReportTitles(kmsg: readonly KmsgRecord[]): string[] {
  const lines = kmsg.flatMap((r) => r.text.split('\n').map((text) => ({ text, seq: r.seq })));
  return [...new Set(parseConsole(lines).reports.filter((r) => r.kind !== 'device').map((r) => r.title))];
}

/**
 * The machine generated programs run on: the SVA machine where the kernel's SVA binds succeed
 * (the generator then mixes both backends, and the platform one needs no hardware), else the
 * architecture's plain machine.
 */
export function fuzzMachine(s: GuestSetup, profile: KernelProfile): Partial<GuestOptions> {
  return svaBinds(profile) ? { machine: machineForDevice(s.kernel.arch, { sva: true }).name } : {};
}

/** Parse a duration like 90s, 10m, 2h, 1h30m. */
export function parseDuration(s: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let consumed = 0;
  for (const m of s.matchAll(re)) {
    const n = Number(m[1]);
    total += n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    consumed += m[0].length;
  }
  if (consumed !== s.length || total <= 0) throw new UserError(`cannot read the duration "${s}"; write e.g. 90s, 10m, 2h or 1h30m`);
  return total;
}

export function parseIntOption(name: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new UserError(`--${name} must be an integer in ${min}..${max}, got "${v}"`);
  return n;
}
