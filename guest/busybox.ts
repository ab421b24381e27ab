/**
 * The guest's busybox: a static binary for the guest's architecture. For the host's own
 * architecture it is the host's busybox-static (installed by the host-package step); for another
 * (arm64 guests on an x86_64 host) it is Debian bookworm's busybox-static of that architecture,
 * downloaded once through the private apt state of that architecture and cached as
 * cacheDir()/busybox/<arch>/<version>/busybox (the package is never installed on the host).
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { PrivateApt } from '../kernels/apt.js';
import { extractDebMembers, UNPACK_TOOLS } from '../kernels/build.js';
import type { Arch } from '../kernels/types.js';
import { UserError } from '../harness/util/errors.js';
import { atomicWrite, exists } from '../harness/util/fsx.js';
import { ensureHostTools, which } from '../harness/util/host.js';
import { info } from '../harness/util/log.js';
import { cacheDir } from '../harness/util/paths.js';
import { hostArch } from '../harness/vm/machine.js';
import { staticElfProblem } from './build.js';

/** The suites a foreign busybox-static comes from: the host's own release, as for the host's busybox. */
const BUSYBOX_SUITES = ['bookworm', 'bookworm-security'] as const;
const BUSYBOX_PACKAGE = 'busybox-static';

export interface GuestBusybox {
  /** where it was read from (for messages) */
  path: string;
  data: Buffer;
}

/** The static busybox for guests of arch. */
export async function guestBusybox(arch: Arch): Promise<GuestBusybox> {
  const b = arch === hostArch() ? await hostBusybox() : await foreignBusybox(arch);
  const problem = staticElfProblem(b.data, arch);
  if (problem) {
    throw new UserError(`${b.path} cannot run in the ${arch} guest (${problem}); install the static one: apt-get install busybox-static`);
  }
  return b;
}

async function hostBusybox(): Promise<GuestBusybox> {
  await ensureHostTools([{ cmd: 'busybox', pkg: 'busybox-static', why: 'the guest initramfs' }]);
  const path = which('busybox');
  if (path === undefined) throw new UserError('busybox not found after installing busybox-static; run: apt-get install busybox-static');
  return { path, data: await fs.readFile(path) };
}

/** The newest cached foreign busybox, if any (no package lists needed). */
async function cachedForeign(arch: Arch): Promise<string | undefined> {
  const dir = join(cacheDir(), 'busybox', arch);
  const versions = await fs.readdir(dir).catch(() => [] as string[]);
  for (const v of versions.sort().reverse()) {
    const p = join(dir, v, 'busybox');
    if (await exists(p)) return p;
  }
  return undefined;
}

async function foreignBusybox(arch: Arch): Promise<GuestBusybox> {
  const cached = await cachedForeign(arch);
  if (cached) return { path: cached, data: await fs.readFile(cached) };
  await ensureHostTools([{ cmd: 'apt-get', pkg: 'apt', why: 'looking up Debian packages' }, ...UNPACK_TOOLS]);
  const apt = new PrivateApt(arch);
  await apt.ensureFresh();
  const ref = await apt.newestIn(BUSYBOX_PACKAGE, BUSYBOX_SUITES);
  if (!ref) throw new UserError(`Debian ${BUSYBOX_SUITES.join('/')} has no ${BUSYBOX_PACKAGE} for ${arch} in the private apt state ${apt.dir}; retry with svadiff kernels list --available --arch ${arch} --refresh`);
  info(`getting ${BUSYBOX_PACKAGE} ${ref.version} (${arch}) for the ${arch} guests`);
  const dir = join(cacheDir(), 'busybox', arch, ref.version.replace(/[^A-Za-z0-9.+~-]/g, '_'));
  await fs.mkdir(join(cacheDir(), 'busybox'), { recursive: true });
  const work = await fs.mkdtemp(join(cacheDir(), 'busybox', `.${arch}-`));
  try {
    const debs = await apt.download([ref], join(work, 'debs'));
    const deb = debs.get(BUSYBOX_PACKAGE);
    if (!deb) throw new Error(`internal: ${BUSYBOX_PACKAGE} was not downloaded`);
    await extractDebMembers(deb, join(work, 'root'), ['./bin/busybox']);
    const data = await fs.readFile(join(work, 'root', 'bin', 'busybox'));
    const problem = staticElfProblem(data, arch);
    if (problem) throw new Error(`${BUSYBOX_PACKAGE} ${ref.version} (${arch}) is not usable in the guest: ${problem}`);
    await fs.mkdir(dir, { recursive: true });
    await atomicWrite(join(dir, 'busybox'), data);
    return { path: join(dir, 'busybox'), data };
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}
