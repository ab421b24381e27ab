/**
 * Kernel source trees for kernels svadiff builds:
 *   - Debian's linux-source-<series> of one version, through the private apt state, unpacked
 *     once into cacheDir()/kernel-src/debian-<version>/ (written under a temporary name and
 *     renamed, so an interrupted unpack leaves nothing that looks complete);
 *   - a user's git tree: never touched; svadiff keeps a private clone that shares its objects
 *     (git clone --shared) in cacheDir()/kernel-src/git-<hash of the tree's path>/ and checks
 *     out the wanted commit there.
 */
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../harness/util/errors.js';
import { atomicWriteJson, exists, readJsonIfExists, sha256 } from '../harness/util/fsx.js';
import { ensureHostTools } from '../harness/util/host.js';
import { fmtDuration, info } from '../harness/util/log.js';
import { cacheDir } from '../harness/util/paths.js';
import { execaTiedToParent } from '../harness/util/proc.js';
import { safeLine } from '../harness/util/sanitize.js';
import { PrivateApt } from './apt.js';
import { UNPACK_TOOLS } from './build.js';
import { parseAptShow, resolveSpec, type PackageRef } from './catalog.js';
import { compareDebVersions, upstreamKernelVersion } from './debversion.js';
import { loadCatalog } from './fetch.js';
import { withLock } from './lock.js';
import { ARCH_PROFILES } from './profiles.js';
import type { SourceKernelSpec } from './spec.js';
import type { Arch } from './types.js';

export interface SourceTree {
  /** a name for cache directories: "debian-6.12.118-1-deb12u1", "git-1a2b3c4d5e6f7a8b" */
  id: string;
  /** the checked-out tree */
  dir: string;
  /** VERSION.PATCHLEVEL.SUBLEVEL[EXTRAVERSION] of its Makefile */
  kernelVersion: string;
  /** Debian's source carries Debian's patches (e.g. the SVA kill switch); a git tree is upstream for the model */
  distro: 'debian' | 'upstream';
  /** what it is, for messages and manifests */
  label: string;
  /** what the build depends on: "debian:6.12.118-1~deb12u1", "git:<full sha>" */
  identity: string;
  debianVersion?: string;
  commit?: string;
  subject?: string;
  /** the user's tree (git) */
  userTree?: string;
}

export function kernelSrcDir(): string {
  return join(cacheDir(), 'kernel-src');
}

/** VERSION = 6 / PATCHLEVEL = 12 / SUBLEVEL = 118 / EXTRAVERSION = -rc1 of a top Makefile. */
export function kernelVersionOfMakefile(text: string): string | undefined {
  const get = (k: string) => new RegExp(`^${k}\\s*=\\s*(\\S*)\\s*$`, 'm').exec(text)?.[1];
  const v = get('VERSION');
  const p = get('PATCHLEVEL');
  if (!v || !p || !/^\d+$/.test(v) || !/^\d+$/.test(p)) return undefined;
  const s = get('SUBLEVEL');
  return `${v}.${p}.${s && /^\d+$/.test(s) ? s : '0'}${get('EXTRAVERSION') ?? ''}`;
}

// ---------------------------------------------------------------------------------------------
// Debian's linux-source

/**
 * The linux-source package a src:debian spec means: the one `debian:<same version>` would build
 * its uacce.ko from (so a self-built kernel compares with Debian's own build), else the newest.
 */
export async function resolveDebianSource(spec: Extract<SourceKernelSpec, { kind: 'src-debian' }>, arch: Arch, refresh = false): Promise<PackageRef> {
  await ensureHostTools([{ cmd: 'apt-get', pkg: 'apt', why: 'looking up Debian kernel packages' }]);
  const apt = new PrivateApt(arch);
  await apt.ensureFresh({ refresh });
  const catalog = await loadCatalog(apt, ARCH_PROFILES[arch].flavour);
  try {
    const build = resolveSpec(catalog, { distro: 'debian', series: spec.series, ...(spec.version ? { version: spec.version } : {}), text: spec.text });
    if (build.source) return build.source;
  } catch {
    // no binary build of it: look at the source packages alone
  }
  const name = `linux-source-${spec.series}`;
  const recs = parseAptShow(await apt.show((await apt.packageNames(name)).filter((n) => n === name)))
    .filter((r) => r.package === name && (spec.version === undefined || upstreamKernelVersion(r.version) === spec.version))
    .sort((a, b) => compareDebVersions(b.version, a.version));
  const pick = recs[0];
  if (!pick) {
    const all = parseAptShow(await apt.show((await apt.packageNames(name)).filter((n) => n === name))).map((r) => upstreamKernelVersion(r.version));
    const have = [...new Set(all.filter((v): v is string => v !== undefined))].join(', ');
    if (have) throw new UserError(`Debian has no ${name} of ${spec.version}; available versions: ${have}`);
    const series = (await apt.packageNames('linux-source-')).map((n) => /^linux-source-(\d+\.\d+)$/.exec(n)?.[1]).filter((x): x is string => x !== undefined);
    throw new UserError(`Debian has no ${name}; series with a linux-source: ${series.join(', ') || 'none'}`);
  }
  const ref: PackageRef = { name: pick.package, version: pick.version, size: pick.size };
  if (pick.sha256) ref.sha256 = pick.sha256;
  return ref;
}

interface DebianSourceStamp {
  package: string;
  version: string;
  kernelVersion: string;
  unpackedAt: string;
}

/** Unpack (once) the whole linux-source tree of a package version into the cache. */
export async function debianSourceTree(pkg: PackageRef, arch: Arch): Promise<SourceTree> {
  const id = `debian-${pkg.version.replace(/[^A-Za-z0-9.+-]/g, '-')}`;
  const dir = join(kernelSrcDir(), id);
  const stampPath = join(dir, '.svadiff-source.json');
  const tree = (s: DebianSourceStamp): SourceTree => ({
    id,
    dir,
    kernelVersion: s.kernelVersion,
    distro: 'debian',
    label: `Debian ${pkg.name} ${pkg.version}`,
    identity: `debian:${pkg.name}=${pkg.version}`,
    debianVersion: pkg.version,
  });
  const ok = async () => {
    const s = await readJsonIfExists<DebianSourceStamp>(stampPath).catch(() => undefined);
    return s && s.version === pkg.version ? s : undefined;
  };
  const have = await ok();
  if (have) return tree(have);
  return withLock(`${dir}.lock`, { what: `unpacking ${pkg.name} ${pkg.version}` }, async () => {
    const again = await ok();
    if (again) return tree(again);
    await ensureHostTools(UNPACK_TOOLS);
    const partial = join(kernelSrcDir(), `.${id}.partial`);
    await fs.rm(partial, { recursive: true, force: true });
    await fs.rm(dir, { recursive: true, force: true });
    await fs.mkdir(partial, { recursive: true });
    const debs = join(partial, '.debs');
    try {
      const apt = new PrivateApt(arch);
      const deb = (await apt.download([pkg], debs)).get(pkg.name);
      if (!deb) throw new Error(`internal: ${pkg.name} was not downloaded`);
      const series = pkg.name.replace(/^linux-source-/, '');
      const top = `linux-source-${series}`;
      info(`unpacking ${pkg.name} ${pkg.version} (about 1.7 GB) into ${dir}`);
      const t0 = Date.now();
      const r = await execa('dpkg-deb', ['--fsys-tarfile', deb], { reject: false, buffer: { stdout: false } })
        .pipe('tar', ['-x', '-O', '-f', '-', `./usr/src/${top}.tar.xz`], { reject: false, buffer: { stdout: false } })
        .pipe('tar', ['-x', '-J', '-f', '-', '-C', partial, '--strip-components=1'], { reject: false });
      const failed = [r, ...r.pipedFrom].find((p) => p.exitCode !== 0);
      if (failed) throw new UserError(`unpacking ${deb} failed: ${safeLine(String(failed.stderr ?? ''), 300)}`, 1);
      const kernelVersion = kernelVersionOfMakefile(await fs.readFile(join(partial, 'Makefile'), 'utf8'));
      if (!kernelVersion) throw new UserError(`${pkg.name} ${pkg.version} has no kernel Makefile at its top`, 1);
      const stamp: DebianSourceStamp = { package: pkg.name, version: pkg.version, kernelVersion, unpackedAt: new Date().toISOString() };
      await fs.rm(debs, { recursive: true, force: true });
      await atomicWriteJson(join(partial, '.svadiff-source.json'), stamp);
      await fs.rename(partial, dir);
      info(`unpacked ${pkg.name} ${pkg.version} in ${fmtDuration(Date.now() - t0)}`);
      return tree(stamp);
    } catch (e) {
      await fs.rm(partial, { recursive: true, force: true });
      throw e;
    }
  });
}

// ---------------------------------------------------------------------------------------------
// A user's git tree

export const GIT_TOOL = [{ cmd: 'git', pkg: 'git', why: 'kernels from git trees and bisection' }];

export async function git(dir: string, args: string[], opts: { reject?: boolean } = {}): Promise<{ code: number; out: string; err: string }> {
  const r = await execaTiedToParent('git', ['-C', dir, ...args], {
    reject: false,
    // no pager, no prompts, no user configuration that could change what the commands print
    env: { GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1', GIT_PAGER: 'cat', LC_ALL: 'C' },
  });
  const res = { code: r.exitCode ?? 1, out: String(r.stdout).trim(), err: String(r.stderr).trim() };
  if (opts.reject && res.code !== 0) throw new Error(`git -C ${dir} ${args.join(' ')} failed (exit ${res.code}): ${safeLine(res.err, 300)}`);
  return res;
}

/** The top of the git work tree at path, or a UserError saying it is not one. */
export async function gitTopLevel(path: string): Promise<string> {
  await ensureHostTools(GIT_TOOL);
  if (!(await exists(path))) throw new UserError(`${path} does not exist; give the path of a kernel git tree`);
  const r = await git(path, ['rev-parse', '--show-toplevel']);
  if (r.code !== 0) throw new UserError(`${path} is not a git tree (${safeLine(r.err, 120)}); give the path of a kernel git tree`);
  return r.out;
}

/** The full commit id a revision names in a tree, or a UserError. */
export async function resolveRev(tree: string, rev: string): Promise<string> {
  const r = await git(tree, ['rev-parse', '--verify', '--quiet', '--end-of-options', `${rev}^{commit}`]);
  if (r.code !== 0 || !/^[0-9a-f]{40,64}$/.test(r.out)) throw new UserError(`${tree} has no commit ${JSON.stringify(rev.slice(0, 60))}; check the revision (git -C ${tree} log --oneline)`);
  return r.out;
}

export async function commitSubject(tree: string, commit: string): Promise<string> {
  return safeLine((await git(tree, ['log', '-1', '--format=%s', commit], { reject: true })).out, 200);
}

/** Files a commit must have to be built as a kernel by svadiff. */
export const KERNEL_TREE_FILES = ['Makefile', 'Kconfig', 'scripts/kconfig/merge_config.sh', 'arch/x86/Kconfig'];

/** Throw a UserError unless the tree at commit is a kernel tree. */
export async function checkKernelTree(tree: string, commit: string, rev: string): Promise<void> {
  for (const f of KERNEL_TREE_FILES) {
    const r = await git(tree, ['cat-file', '-e', `${commit}:${f}`]);
    if (r.code !== 0) throw new UserError(`${tree} at ${rev} is not a kernel tree (it has no ${f}); give the top of a Linux source tree`);
  }
}

/** The private clone of a user's tree (shares its objects; the user's tree is never changed). */
export async function privateClone(userTree: string): Promise<string> {
  const dir = join(kernelSrcDir(), `git-${sha256(userTree).slice(0, 16)}`);
  if (await exists(join(dir, '.git'))) return dir;
  return withLock(`${dir}.lock`, { what: `cloning ${userTree}` }, async () => {
    if (await exists(join(dir, '.git'))) return dir;
    const partial = `${dir}.partial`;
    await fs.rm(partial, { recursive: true, force: true });
    await fs.mkdir(kernelSrcDir(), { recursive: true });
    const r = await execaTiedToParent('git', ['clone', '--quiet', '--shared', '--no-checkout', userTree, partial], { reject: false, all: true });
    if (r.exitCode !== 0) throw new UserError(`git clone --shared ${userTree} failed: ${safeLine(String(r.all ?? ''), 300)}`, 1);
    await fs.rename(partial, dir);
    return dir;
  });
}

/** Lock of a private clone: its checkout changes under it (builds and bisect steps). */
export function cloneLockPath(cloneDir: string): string {
  return `${cloneDir}.checkout.lock`;
}

/**
 * Resolve rev in the user's tree and describe it; the checkout happens in checkoutGitTree (under
 * the clone's lock).
 */
export async function gitSourceTree(userPath: string, rev: string): Promise<SourceTree> {
  const top = await gitTopLevel(userPath);
  const commit = await resolveRev(top, rev);
  await checkKernelTree(top, commit, rev);
  const version = kernelVersionOfMakefile((await git(top, ['show', `${commit}:Makefile`], { reject: true })).out);
  if (!version) throw new UserError(`${top} at ${rev}: its Makefile names no kernel version; not a kernel tree`);
  const subject = await commitSubject(top, commit);
  const clone = await privateClone(top);
  return {
    id: `git-${sha256(top).slice(0, 16)}`,
    dir: clone,
    kernelVersion: version,
    distro: 'upstream',
    label: `${top} at ${commit.slice(0, 12)} ("${subject}")`,
    identity: `git:${commit}`,
    commit,
    subject,
    userTree: top,
  };
}

/** Check the commit out in the private clone (call under cloneLockPath). */
export async function checkoutGitTree(t: SourceTree): Promise<void> {
  if (!t.commit) throw new Error('internal: not a git source tree');
  const head = await git(t.dir, ['rev-parse', 'HEAD']);
  if (head.code === 0 && head.out === t.commit && (await git(t.dir, ['status', '--porcelain', '--untracked-files=no'])).out === '') return;
  const t0 = Date.now();
  const r = await git(t.dir, ['checkout', '--quiet', '--force', '--detach', t.commit]);
  if (r.code !== 0) throw new UserError(`checking out ${t.commit.slice(0, 12)} in ${t.dir} failed: ${safeLine(r.err, 300)}`, 1);
  if (Date.now() - t0 > 5000) info(`checked out ${t.commit.slice(0, 12)} in ${fmtDuration(Date.now() - t0)}`);
}
