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
  const pkgs = [...new Set(missing.map((t) => t.pkg))].sort();
  const what = missing.map((t) => `${t.cmd} (${t.why})`).join(', ');
  const cmd = installCommand(missing);
  if (!isRoot()) throw new UserError(missingToolsMessage(missing));
  info(`installing host packages for ${what}: ${pkgs.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    execa('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { env, all: true, reject: false });
  let r = await install();
  if (r.exitCode !== 0) {
    // A fresh machine may have no package lists yet.
    info('apt-get install failed; running apt-get update and trying again');
    await execa('apt-get', ['update'], { env, all: true, reject: false });
    r = await install();
  }
  if (r.exitCode !== 0) {
    const tail = String(r.all ?? '').split('\n').slice(-5).join(' | ');
    throw new UserError(`could not install ${pkgs.join(' ')} (apt-get exit ${r.exitCode}): ${tail}; run: ${cmd}`);
  }
  const still = missing.filter((t) => !present(t));
  if (still.length > 0) {
    throw new UserError(`installed ${pkgs.join(' ')} but still cannot find ${still.map((t) => t.cmd).join(', ')}`);
  }
}
