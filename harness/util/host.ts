import { execa } from 'execa';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { UserError } from './errors.js';
import { info } from './log.js';

/** A program the host needs and the Debian package that provides it. */
export interface HostTool {
  cmd: string;
  pkg: string;
  why: string;
  /** for packages without a program (libraries): a file whose presence shows the package is installed */
  path?: string;
}

function present(t: HostTool): boolean {
  if (t.path === undefined) return which(t.cmd) !== undefined;
  try {
    accessSync(t.path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

export function which(cmd: string): string | undefined {
  const path = process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin';
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  // sbin is often missing from a user's PATH although the tools are there.
  for (const dir of ['/usr/sbin', '/sbin']) {
    const p = join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** The apt-get line that installs the packages of these tools. */
export function installCommand(tools: HostTool[]): string {
  const pkgs = [...new Set(tools.map((t) => t.pkg))].sort();
  return `apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;
}

/** What a user who is not root reads when tools are missing: what, why, and the command. */
export function missingToolsMessage(tools: HostTool[]): string {
  const what = tools.map((t) => `${t.cmd} (${t.why})`).join(', ');
  return `missing on this host: ${what}; install with: sudo ${installCommand(tools)}`;
}

/**
 * Make sure the host has these tools. As root, install the missing Debian packages with
 * apt-get (this is the only change svadiff makes to the host outside its cache); otherwise
 * fail with the exact command to run.
 */
export async function ensureHostTools(tools: HostTool[]): Promise<void> {
  const missing = tools.filter((t) => !present(t));
  if (missing.length === 0) return;
  const what = missing.map((t) => `${t.cmd} (${t.why})`).join(', ');
  if (!isRoot()) throw new UserError(missingToolsMessage(missing));
  await installPackages(missing.map((t) => t.pkg), what, installCommand(missing));
  const still = missing.filter((t) => !present(t));
  if (still.length > 0) {
    throw new UserError(`installed ${[...new Set(missing.map((t) => t.pkg))].sort().join(' ')} but still cannot find ${still.map((t) => t.cmd).join(', ')}`);
  }
}

/** A Debian package the host needs installed for its files (libraries, headers, firmware). */
export interface HostPackage {
  pkg: string;
  why: string;
}

/** Which of these packages dpkg does not have installed (`dpkg-query -W`). */
export async function missingPackages(pkgs: readonly string[]): Promise<string[]> {
  if (pkgs.length === 0) return [];
  const r = await execa('dpkg-query', ['-W', '-f=${Package} ${db:Status-Status}\\n', ...pkgs], { reject: false });
  const installed = new Set(
    String(r.stdout)
      .split('\n')
      .map((l) => l.trim().split(' '))
      .filter((f) => f[1] === 'installed')
      .map((f) => (f[0] ?? '').replace(/:.*$/, '')),
  );
  return [...new Set(pkgs)].filter((p) => !installed.has(p));
}

/** The one-line instruction for a user who is not root. */
export function missingPackagesMessage(pkgs: HostPackage[]): string {
  const what = pkgs.map((p) => `${p.pkg} (${p.why})`).join(', ');
  return `missing on this host: ${what}; install with: sudo apt-get install -y --no-install-recommends ${[...new Set(pkgs.map((p) => p.pkg))].sort().join(' ')}`;
}

/** Make sure these Debian packages are installed: as root install them, otherwise say how. */
export async function ensureHostPackages(pkgs: HostPackage[]): Promise<void> {
  const missingNames = await missingPackages(pkgs.map((p) => p.pkg));
  if (missingNames.length === 0) return;
  const missing = pkgs.filter((p) => missingNames.includes(p.pkg));
  if (!isRoot()) throw new UserError(missingPackagesMessage(missing));
  const names = [...new Set(missingNames)].sort();
  await installPackages(names, missing.map((p) => `${p.pkg} (${p.why})`).join(', '), `apt-get install -y --no-install-recommends ${names.join(' ')}`);
  const still = await missingPackages(names);
  if (still.length > 0) throw new UserError(`apt-get did not install ${still.join(' ')}; run: apt-get install -y --no-install-recommends ${still.join(' ')}`);
}

/** apt-get install (root only), with one apt-get update and retry for a machine without lists. */
async function installPackages(pkgs: string[], what: string, cmd: string): Promise<void> {
  const names = [...new Set(pkgs)].sort();
  info(`installing host packages for ${what}: ${names.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    execa('apt-get', ['install', '-y', '--no-install-recommends', ...names], { env, all: true, reject: false });
  let r = await install();
  if (r.exitCode !== 0) {
    // A fresh machine may have no package lists yet.
    info('apt-get install failed; running apt-get update and trying again');
    await execa('apt-get', ['update'], { env, all: true, reject: false });
    r = await install();
  }
  if (r.exitCode !== 0) {
    const tail = String(r.all ?? '').split('\n').slice(-5).join(' | ');
    throw new UserError(`could not install ${names.join(' ')} (apt-get exit ${r.exitCode}): ${tail}; run: ${cmd}`);
  }
}
