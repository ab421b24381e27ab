/**
 * svadiff boot [<kernel>]: boot a guest, load uacce and the test device, and print what a
 * kernel developer wants to know before trusting a run: kernel version, IOMMU mode, the test
 * device's sysfs attributes, the boot time. Shuts the guest down cleanly.
 */
import { parseArgs } from 'node:util';
import type { KmsgRecord } from '../oracle/report.js';
import { errnoName } from '../program/errno.js';
import { DEFAULT_DEVICE, PROGRAM_FORMAT, PROGRAM_VERSION, SYSFS_ATTRS, type Program } from '../program/types.js';
import { UserError } from '../util/errors.js';
import { info } from '../util/log.js';
import type { Guest } from '../vm/guest.js';
import { bootGuest, prepare } from './common.js';

export interface BootInfo {
  kernel: { spec: string; release: string; debianVersion: string; uacceSourceVersion: string; configHash: string; uacce?: string };
  accel: string;
  machine: string;
  bootMs: number;
  qemu: string;
  iommu: { units: { name: string; version?: string; cap?: string; ecap?: string; scalableMode?: boolean; pasid?: boolean }[]; defaultDomain?: string; log: string[] };
  device: { node?: string; attrs: Record<string, string> };
}

/** ecap bits (VT-d spec 11.4.3): PASID support is bit 40, scalable-mode translation bit 43. */
const ECAP_PASID = 40n;
const ECAP_SMTS = 43n;

export async function cmdBoot(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { accel: { type: 'string' }, json: { type: 'boolean' }, out: { type: 'string' }, kernel: { type: 'string' }, 'uacce-src': { type: 'string' }, arch: { type: 'string' } },
  });
  if (positionals.length > 1) throw new UserError('svadiff boot takes one kernel, e.g. svadiff boot debian:6.12');
  const spec = positionals[0] ?? values.kernel;
  const setup = await prepare(spec, values.accel, values.out, values['uacce-src'], values.arch);
  const iommuLog: string[] = [];
  const onKmsg = (r: KmsgRecord) => {
    if (/^(DMAR|DMAR-IR|iommu|AMD-Vi|arm-smmu)/i.test(r.text) && iommuLog.length < 40) iommuLog.push(r.text.split('\n')[0]!);
  };
  const guest = await bootGuest(setup, 'boot', { onKmsg });
  try {
    const bi = await collect(guest, iommuLog);
    if (values.json) process.stdout.write(JSON.stringify(bi, null, 2) + '\n');
    else process.stdout.write(render(bi));
  } finally {
    await guest.shutdown();
    info('guest shut down');
  }
  return 0;
}

async function collect(g: Guest, iommuLog: string[]): Promise<BootInfo> {
  const units: BootInfo['iommu']['units'] = [];
  for (let i = 0; i < 8; i++) {
    const base = `/sys/class/iommu/dmar${i}/intel-iommu`;
    const version = await g.readFile(`${base}/version`);
    if (version === undefined) break;
    const cap = (await g.readFile(`${base}/cap`))?.trim();
    const ecap = (await g.readFile(`${base}/ecap`))?.trim();
    const u: BootInfo['iommu']['units'][number] = { name: `dmar${i}`, version: version.trim() };
    if (cap) u.cap = cap;
    if (ecap && /^[0-9a-f]+$/i.test(ecap)) {
      u.ecap = ecap;
      const e = BigInt('0x' + ecap);
      u.scalableMode = ((e >> ECAP_SMTS) & 1n) === 1n;
      u.pasid = ((e >> ECAP_PASID) & 1n) === 1n;
    }
    units.push(u);
  }
  for (const name of g.machine.iommuUnits ?? []) {
    if ((await g.readFile(`/sys/class/iommu/${name}/uevent`)) !== undefined) units.push({ name });
  }
  const defaultDomain = (await g.readFile('/sys/kernel/iommu_groups/0/type'))?.trim();

  // The test device with default parameters: open it (to learn its node) and read every attribute.
  const prog: Program = {
    format: PROGRAM_FORMAT,
    version: PROGRAM_VERSION,
    device: DEFAULT_DEVICE,
    ops: [
      { op: 'open', task: 't0', fd: 'q', dev: 0, via: 'path' },
      ...SYSFS_ATTRS.map((attr) => ({ op: 'sysfs_read' as const, task: 't0', dev: 0, attr })),
      { op: 'close', task: 't0', fd: 'q' },
    ],
  };
  const run = await g.session.runProgram(1, prog);
  if (!run.started) throw new Error(`the test device did not come up: ${run.finished?.msg ?? run.errors.join('; ')}`);
  const attrs: Record<string, string> = {};
  SYSFS_ATTRS.forEach((attr, i) => {
    const r = run.results[i + 1];
    if (!r) attrs[attr] = '(no result)';
    else if (r.ret < 0n) attrs[attr] = `(absent: ${errnoName(r.errno)})`;
    else attrs[attr] = r.data.replace(/\n$/, '').replace(/\n/g, '\\n');
  });
  const opened = run.results[0];
  const device: BootInfo['device'] = { attrs };
  if (opened && opened.ret >= 0n) device.node = opened.data;

  const k = g.kernel;
  const bi: BootInfo = {
    kernel: { spec: k.exactSpec, release: g.session.hello?.release ?? k.release, debianVersion: k.debianVersion, uacceSourceVersion: k.uacceSourceVersion, configHash: k.configHash.slice(0, 12), ...(k.uacce ? { uacce: k.uacce.text } : {}) },
    accel: g.accel,
    machine: g.machine.name,
    bootMs: g.bootMs,
    qemu: g.vm.commandLine(),
    iommu: { units, log: iommuLog },
    device,
  };
  if (defaultDomain) bi.iommu.defaultDomain = defaultDomain;
  return bi;
}

function render(b: BootInfo): string {
  const L: string[] = [];
  L.push(`kernel       ${b.kernel.release} (${b.kernel.spec}${b.kernel.debianVersion ? `, Debian ${b.kernel.debianVersion}` : ''}, config ${b.kernel.configHash})`);
  L.push(b.kernel.uacce ? `uacce        ${b.kernel.uacce}` : `uacce.ko     built from linux-source ${b.kernel.uacceSourceVersion}`);
  L.push(`machine      ${b.machine}, ${b.accel.toUpperCase()}`);
  L.push(`boot time    ${(b.bootMs / 1000).toFixed(2)} s (QEMU start to agent ready)`);
  if (b.iommu.units.length === 0) L.push('IOMMU        none found in /sys/class/iommu');
  for (const u of b.iommu.units) {
    if (u.version === undefined) {
      L.push(`IOMMU        ${u.name}`);
      continue;
    }
    const sm = u.scalableMode === undefined ? '?' : u.scalableMode ? 'yes' : 'no';
    const pasid = u.pasid === undefined ? '?' : u.pasid ? 'yes' : 'no';
    L.push(`IOMMU        ${u.name}: VT-d ${u.version ?? '?'}, scalable mode ${sm}, PASID ${pasid} (cap ${u.cap ?? '?'}, ecap ${u.ecap ?? '?'})`);
  }
  if (b.iommu.defaultDomain) L.push(`             default domain of group 0: ${b.iommu.defaultDomain}`);
  for (const l of b.iommu.log.slice(0, 6)) L.push(`             log: ${l}`);
  L.push(`test device  ${b.device.node ?? '(open failed)'}`);
  for (const [k, v] of Object.entries(b.device.attrs)) L.push(`  ${k.padEnd(20)} ${v}`);
  return L.join('\n') + '\n';
}
