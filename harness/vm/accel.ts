/**
 * KVM or TCG. /dev/kvm existing is not enough: on nested, paravirtual hosts KVM can be present
 * and still kill a Debian kernel in its decompressor (shared/notes/platform.md). So we boot a
 * real kernel once with KVM to a marker, cache the answer per host, and fall back to TCG with
 * a one-line explanation. --accel kvm|tcg overrides the probe.
 */
import { execa } from 'execa';
import { accessSync, constants } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { release } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../util/errors.js';
import { atomicWriteJson, readJsonIfExists, sha256 } from '../util/fsx.js';
import { info } from '../util/log.js';
import { cacheDir } from '../util/paths.js';
import { execaTiedToParent } from '../util/proc.js';
import { stripControl } from '../util/sanitize.js';
import { hostArch, machineQemuArgs, type Accel, type Machine } from './machine.js';

export type AccelChoice = Accel | 'auto';

/** The automatic choice, once per process and machine profile (reboots do not ask again). */
const decidedThisRun = new Map<string, Accel>();

export const PROBE_MARKER = 'SVADIFF-ACCEL-PROBE-OK';

interface ProbeRecord {
  key: string;
  kvmWorks: boolean;
  reason: string;
  measuredAt: string;
}

/** accel-probe.json: one record per machine profile (each runs its own QEMU). */
type ProbeFile = Record<string, ProbeRecord>;

export function parseAccel(s: string | undefined): AccelChoice {
  if (s === undefined || s === 'auto') return 'auto';
  if (s === 'kvm' || s === 'tcg') return s;
  throw new UserError(`--accel must be auto, kvm or tcg, got "${s}"`);
}

function kvmDeviceUsable(): string | undefined {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? '/dev/kvm does not exist' : `/dev/kvm is not accessible (${code}; add yourself to group kvm)`;
  }
}

async function hostKey(machine: Machine): Promise<string> {
  let cpu = '';
  try {
    const text = await readFile('/proc/cpuinfo', 'utf8');
    cpu = /^model name\s*:\s*(.*)$/m.exec(text)?.[1] ?? '';
  } catch {
    /* not Linux? the key is then less specific */
  }
  let qemuVersion = '';
  try {
    const r = await execa(machine.qemuBinary, ['--version'], { reject: false, timeout: 10_000 });
    qemuVersion = String(r.stdout).split('\n')[0] ?? '';
  } catch {
    /* resolved when QEMU is run */
  }
  return sha256(JSON.stringify({ host: release(), cpu, qemuVersion, machine: machine.name })).slice(0, 16);
}

/**
 * Decide the accelerator. `probe` boots the kernel with KVM and resolves to true when the guest
 * reached PROBE_MARKER; it is only called when the answer is not cached.
 */
export async function chooseAccel(
  choice: AccelChoice,
  machine: Machine,
  probe: () => Promise<{ ok: boolean; reason: string }>,
): Promise<Accel> {
  if (choice === 'tcg') return 'tcg';
  const host = hostArch();
  if (machine.arch !== host) {
    const why = `${machine.arch} guest on ${host ?? process.arch} host`;
    if (choice === 'kvm') throw new UserError(`--accel kvm: KVM cannot run an ${why}; use --accel tcg`);
    if (!decidedThisRun.has(machine.name)) info(`accelerator: TCG (${why})`);
    decidedThisRun.set(machine.name, 'tcg');
    return 'tcg';
  }
  const devProblem = kvmDeviceUsable();
  if (choice === 'kvm') {
    if (devProblem) throw new UserError(`--accel kvm: ${devProblem}; use --accel tcg`);
    return 'kvm';
  }
  if (devProblem) {
    info(`accelerator: TCG (${devProblem})`);
    return 'tcg';
  }
  const decided = decidedThisRun.get(machine.name);
  if (decided) return decided;
  const path = join(cacheDir(), 'accel-probe.json');
  const key = await hostKey(machine);
  const file = await readJsonIfExists<ProbeFile>(path).catch(() => undefined);
  // a file of the old format (a single record, written before there were two machines) is ignored
  const cached = file && typeof file === 'object' && !('key' in file) ? file[machine.name] : undefined;
  if (cached && cached.key === key) {
    if (!cached.kvmWorks) info(`accelerator: TCG (KVM probe of ${cached.measuredAt}: ${cached.reason}; --accel kvm forces it)`);
    const a: Accel = cached.kvmWorks ? 'kvm' : 'tcg';
    decidedThisRun.set(machine.name, a);
    return a;
  }
  info('accelerator: probing KVM once (booting the kernel with KVM) …');
  const r = await probe();
  const rec: ProbeRecord = { key, kvmWorks: r.ok, reason: r.reason, measuredAt: new Date().toISOString() };
  const now = await readJsonIfExists<ProbeFile>(path).catch(() => undefined);
  await atomicWriteJson(path, { ...(now && !('key' in now) ? now : {}), [machine.name]: rec } satisfies ProbeFile);
  info(r.ok ? 'accelerator: KVM works here' : `accelerator: TCG (KVM is present but unusable: ${r.reason})`);
  const a: Accel = r.ok ? 'kvm' : 'tcg';
  decidedThisRun.set(machine.name, a);
  return a;
}

/** Boot kernel+initrd with KVM and wait for the marker; used as the probe of chooseAccel. */
export async function probeKvmBoot(
  machine: Machine,
  kernelImage: string,
  probeInitrd: string,
  timeoutMs = 60_000,
): Promise<{ ok: boolean; reason: string }> {
  const args = [
    ...machine.firmwareDirs.flatMap((d) => ['-L', d]),
    ...machineQemuArgs(machine, 'kvm'),
    '-accel',
    'kvm',
    '-cpu',
    machine.cpu('kvm'),
    '-m',
    '512',
    '-nodefaults',
    '-display',
    'none',
    '-no-reboot',
    '-serial',
    'stdio',
    '-kernel',
    kernelImage,
    '-initrd',
    probeInitrd,
    '-append',
    [`console=${machine.consoleTty}`, 'panic=-1', ...machine.cmdline].join(' '),
  ];
  const r = await execaTiedToParent(machine.qemuBinary, args, {
    reject: false,
    timeout: timeoutMs,
    stdin: 'ignore',
    all: true,
    maxBuffer: 4 * 1024 * 1024,
  });
  const out = stripControl(String(r.all ?? ''));
  if (out.includes(PROBE_MARKER)) return { ok: true, reason: 'guest reached user space' };
  if (r.timedOut) return { ok: false, reason: `no guest output within ${timeoutMs / 1000} s` };
  const kvmErr = /KVM internal error[^\n]*|kvm[^\n]*(?:error|fail)[^\n]*/i.exec(out)?.[0];
  return { ok: false, reason: kvmErr ? kvmErr.trim().slice(0, 160) : `QEMU exited (${r.exitCode}) before the guest reached user space` };
}
