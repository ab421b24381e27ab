/**
 * Unpacking Debian kernel packages and building out-of-tree modules against their headers,
 * either on the host or in a Debian build root (debootstrap + chroot) that has the compiler
 * the kernel was built with (kernels/profiles.ts, COMPILER_PROFILES).
 */
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import { join, relative } from 'node:path';
import { UserError } from '../harness/util/errors.js';
import { atomicWrite, atomicWriteJson, exists, readJsonIfExists, sha256 } from '../harness/util/fsx.js';
import type { HostTool } from '../harness/util/host.js';
import { StatusLine, fmtDuration, info, warn } from '../harness/util/log.js';
import { cacheDir, projectRoot } from '../harness/util/paths.js';
import { execaTiedToParent } from '../harness/util/proc.js';
import { safeLine } from '../harness/util/sanitize.js';
import { withLock } from './lock.js';
import { DEBIAN_ARCHIVE_KEYRING, type BuildEnv } from './profiles.js';

export const UNPACK_TOOLS: HostTool[] = [
  { cmd: 'dpkg-deb', pkg: 'dpkg', why: 'unpacking kernel packages' },
  { cmd: 'tar', pkg: 'tar', why: 'unpacking kernel packages' },
  { cmd: 'xz', pkg: 'xz-utils', why: 'unpacking linux-source' },
];

export function buildTools(env: BuildEnv): HostTool[] {
  if (env.kind === 'host') {
    return [
      { cmd: 'make', pkg: 'make', why: 'building kernel modules' },
      { cmd: env.cmd ?? env.hostPackage, pkg: env.hostPackage, why: 'the compiler the kernel was built with' },
      { cmd: 'pahole', pkg: 'dwarves', why: 'BTF for kernel modules' },
    ];
  }
  return [
    { cmd: 'debootstrap', pkg: 'debootstrap', why: `a Debian ${env.suite} build root` },
    { cmd: 'chroot', pkg: 'coreutils', why: 'building in the build root' },
    { cmd: 'mount', pkg: 'mount', why: 'mounting /proc in the build root' },
  ];
}

function tail(text: string, lines = 12): string {
  return text
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .slice(-lines)
    .map((l) => safeLine(l, 300))
    .join('\n');
}

/** Extract the named members (as listed by dpkg-deb -c, "./boot/...") of a .deb into dest. */
export async function extractDebMembers(deb: string, dest: string, members: string[]): Promise<void> {
  await fs.mkdir(dest, { recursive: true });
  const r = await execa('dpkg-deb', ['--fsys-tarfile', deb], { reject: false, buffer: { stdout: false } })
    .pipe('tar', ['-x', '-f', '-', '-C', dest, ...members], { reject: false });
  if (r.exitCode !== 0 || r.pipedFrom[0]?.exitCode) {
    throw new Error(`extracting ${members.join(', ')} from ${deb} failed: ${tail(String(r.stderr ?? ''), 4)} ${tail(String(r.pipedFrom[0]?.stderr ?? ''), 4)}`);
  }
}

/** dpkg-deb -x: the whole package into dest. */
export async function extractDeb(deb: string, dest: string): Promise<void> {
  await fs.mkdir(dest, { recursive: true });
  const r = await execa('dpkg-deb', ['-x', deb, dest], { reject: false });
  if (r.exitCode !== 0) throw new Error(`dpkg-deb -x ${deb} failed: ${tail(String(r.stderr), 4)}`);
}

/** The source files uacce needs, relative to the top of linux-source (tar patterns). */
export const UACCE_SOURCE_MEMBERS = ['drivers/misc/uacce/*', 'include/linux/uacce.h', 'include/uapi/misc/uacce/*'];

/**
 * Stream ./usr/src/linux-source-<series>.tar.xz out of the linux-source .deb and extract only
 * the uacce sources into dest (without the linux-source-<series>/ prefix). The inner tarball
 * (~140 MB xz, ~1.4 GB unpacked) is never written to disk.
 */
export async function extractUacceSources(sourceDeb: string, series: string, dest: string): Promise<string[]> {
  await fs.mkdir(dest, { recursive: true });
  const top = `linux-source-${series}`;
  const r = await execa('dpkg-deb', ['--fsys-tarfile', sourceDeb], { reject: false, buffer: { stdout: false } })
    .pipe('tar', ['-x', '-O', '-f', '-', `./usr/src/${top}.tar.xz`], { reject: false, buffer: { stdout: false } })
    .pipe('tar', ['-x', '-J', '-f', '-', '-C', dest, '--strip-components=1', '--wildcards', ...UACCE_SOURCE_MEMBERS.map((m) => `${top}/${m}`)], {
      reject: false,
    });
  const failed = [r, ...r.pipedFrom].find((p) => p.exitCode !== 0);
  if (failed) throw new Error(`extracting the uacce sources from ${sourceDeb} failed: ${tail(String(failed.stderr ?? ''), 4)}`);
  const files = await listFiles(dest);
  for (const want of ['drivers/misc/uacce/uacce.c', 'include/linux/uacce.h']) {
    if (!files.includes(want)) throw new Error(`${sourceDeb} has no ${top}/${want}`);
  }
  return files;
}

/** Relative paths of the regular files under dir, sorted. */
export async function listFiles(dir: string, skip: (rel: string) => boolean = () => false): Promise<string[]> {
  const out: string[] = [];
  async function walk(d: string): Promise<void> {
    for (const ent of await fs.readdir(d, { withFileTypes: true })) {
      const p = join(d, ent.name);
      const rel = relative(dir, p);
      if (skip(rel)) continue;
      if (ent.isDirectory()) await walk(p);
      else if (ent.isFile()) out.push(rel);
    }
  }
  await walk(dir);
  return out.sort();
}

/** Build products a source tree may contain if someone built in it; never inputs. */
export function isBuildProduct(rel: string): boolean {
  const base = rel.split('/').pop() ?? rel;
  return /\.(o|ko|mod|mod\.c|cmd|d|order|symvers|a)$/.test(base) || base.startsWith('.') || base === 'Module.symvers' || base === 'modules.order';
}

/** sha256 over the relative paths and contents of files (a tree hash). */
export async function hashTree(dir: string, files: string[]): Promise<string> {
  const parts: string[] = [];
  for (const f of files) parts.push(`${f}\0${sha256(await fs.readFile(join(dir, f)))}`);
  return sha256(parts.join('\n'));
}

/**
 * The headers Makefile of a Debian kernel includes the -common Makefile by absolute path
 * (`include /usr/src/linux-headers-6.12.117+deb12-common/Makefile`); when the headers live in
 * the cache instead of /usr/src, point it there. Everything else (the scripts and tools links
 * to ../../lib/linux-kbuild-*) is relative and works as unpacked.
 */
export function relocateHeadersMakefile(text: string, root: string): string {
  return text.replace(/^(\s*include\s+)\/usr\/src\//gm, `$1${root}/usr/src/`).replace(/^(KBUILD_OUTPUT\s*:?=\s*)\/usr\/src\//gm, `$1${root}/usr/src/`);
}

export interface ModuleBuild {
  /** directory with the module's Kbuild (absolute, on the host) */
  dir: string;
  /** extra make variables */
  vars: Record<string, string>;
  /** what it is, for messages */
  label: string;
  /** where the make output goes when the build fails */
  log: string;
}

export interface BuildContext {
  release: string;
  env: BuildEnv;
  /** root the headers/kbuild packages were unpacked into (contains usr/src/linux-headers-<release>) */
  headersRoot: string;
  /** the directory make -C builds modules against, when it is not headersRoot/usr/src/linux-headers-<release> (kernels built from source) */
  headersDir?: string;
  /** spec to name in messages ("debian:7.2.13") */
  spec: string;
  /** make variables of every module (ARCH and CROSS_COMPILE of a cross build, profiles.ts crossMakeVars) */
  makeVars?: Record<string, string>;
}

function makeArgs(headersDir: string, m: { dir: string; vars: Record<string, string> }, common: Record<string, string> = {}): string[] {
  return ['-C', headersDir, `M=${m.dir}`, ...Object.entries({ ...common, ...m.vars }).map(([k, v]) => `${k}=${v}`), 'modules'];
}

/** The lines of a failed build that say why: compiler and modpost errors, else the tail. */
export function buildErrorLines(output: string, max = 5): string[] {
  const lines = output.split('\n').map((l) => safeLine(l, 300));
  const errors = lines.filter((l) => /\berror:|^ERROR: |undefined!|No such file or directory|not found/.test(l));
  return (errors.length > 0 ? errors : lines.filter((l) => l.trim().length > 0).slice(-max)).slice(0, max);
}

async function runMake(cmd: string, args: string[], label: string, logPath: string): Promise<void> {
  const t0 = Date.now();
  const r = await execaTiedToParent(cmd, args, {
    reject: false,
    all: true,
    // a clean make environment: no ARCH/CROSS_COMPILE/KBUILD_* from the user's shell
    env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C.UTF-8', HOME: '/tmp' },
    extendEnv: false,
  });
  if (r.exitCode !== 0) {
    const out = String(r.all ?? '');
    await atomicWrite(logPath, `$ ${cmd} ${args.join(' ')}\n${out}`);
    const why = buildErrorLines(out, 1)[0] ?? '';
    throw new UserError(`building ${label} failed (make exit ${r.exitCode}): ${why}; full log: ${logPath}`, 1);
  }
  info(`built ${label} in ${fmtDuration(Date.now() - t0)}`);
}

/** Build the modules in order on the host (their dirs are final locations). */
export async function buildOnHost(ctx: BuildContext, modules: ModuleBuild[]): Promise<void> {
  const headersDir = ctx.headersDir ?? join(ctx.headersRoot, 'usr', 'src', `linux-headers-${ctx.release}`);
  for (const m of modules) await runMake('make', makeArgs(headersDir, m, ctx.makeVars), m.label, m.log);
}

interface BuildRootStamp {
  suite: string;
  packages: string[];
  createdAt: string;
  mirror: string;
}

export function buildRootDir(name: string): string {
  return join(cacheDir(), 'buildroots', name);
}

function debootstrapArgs(env: Extract<BuildEnv, { kind: 'chroot' }>, dir: string, mirror: string): string[] {
  return ['--variant=minbase', `--include=${env.packages.join(',')}`, `--keyring=${DEBIAN_ARCHIVE_KEYRING}`, env.suite, dir, mirror];
}

/** The one-line instruction for a non-root user. */
export function needsRootMessage(ctx: { release: string; spec: string }, env: Extract<BuildEnv, { kind: 'chroot' }>, compiler: string): string {
  const cli = join(projectRoot(), 'bin', 'svadiff.js');
  return `building modules for ${ctx.release} needs ${compiler} from a Debian ${env.suite} build root (debootstrap and chroot), which needs root; run as root: sudo env SVADIFF_CACHE=${cacheDir()} ${process.execPath} ${cli} kernels fetch ${ctx.spec}`;
}

/** Create the build root for env once (cached, ~30 s and ~550 MB for sid). */
export async function ensureBuildRoot(env: Extract<BuildEnv, { kind: 'chroot' }>, mirror: string): Promise<string> {
  const rootName = env.root ?? env.suite;
  const dir = buildRootDir(rootName);
  const stampPath = join(dir, '.svadiff-buildroot.json');
  const ok = async () => {
    const stamp = await readJsonIfExists<BuildRootStamp>(stampPath).catch(() => undefined);
    return stamp !== undefined && env.packages.every((p) => stamp.packages.includes(p));
  };
  if (await ok()) return dir;
  return withLock(`${dir}.lock`, { what: `creating the ${env.suite} build root` }, async () => {
    if (await ok()) return dir;
    const partial = join(cacheDir(), 'buildroots', `.${rootName}.partial`);
    await unmountUnder(partial);
    await fs.rm(partial, { recursive: true, force: true });
    if (await exists(dir)) {
      await unmountUnder(dir);
      await fs.rm(dir, { recursive: true, force: true });
    }
    await fs.mkdir(partial, { recursive: true });
    const args = debootstrapArgs(env, partial, mirror);
    info(`creating a Debian ${env.suite} build root: debootstrap ${args.join(' ')}`);
    const t0 = Date.now();
    const status = new StatusLine(10_000);
    const proc = execaTiedToParent('debootstrap', args, { reject: false, all: true });
    proc.all?.setEncoding('utf8');
    let part = '';
    proc.all?.on('data', (chunk: string) => {
      const lines = (part + chunk).split('\n');
      part = lines.pop() ?? '';
      const last = lines.filter((l) => l.startsWith('I: ')).pop();
      if (last) status.update(`debootstrap ${env.suite}: ${last.slice(3)} (${fmtDuration(Date.now() - t0)})`);
    });
    const r = await proc;
    status.done();
    if (r.exitCode !== 0) {
      const log = join(partial, 'debootstrap', 'debootstrap.log');
      const logTail = await fs.readFile(log, 'utf8').then((t) => tail(t, 6)).catch(() => '');
      throw new UserError(`debootstrap of the ${env.suite} build root failed (exit ${r.exitCode}): ${tail(String(r.all ?? ''), 6)}${logTail ? `\n${logTail}` : ''}`, 1);
    }
    // nothing runs apt inside the root: drop the downloaded .debs and lists (~160 MB for sid)
    for (const sub of ['var/cache/apt/archives', 'var/lib/apt/lists']) {
      for (const name of await fs.readdir(join(partial, sub)).catch(() => [] as string[])) {
        if (name.endsWith('.deb') || name.includes('_dists_')) await fs.rm(join(partial, sub, name), { force: true });
      }
    }
    const stamp: BuildRootStamp = { suite: env.suite, packages: env.packages, createdAt: new Date().toISOString(), mirror };
    await atomicWriteJson(join(partial, '.svadiff-buildroot.json'), stamp);
    await fs.rename(partial, dir);
    info(`created the ${env.suite} build root in ${fmtDuration(Date.now() - t0)} (${dir})`);
    return dir;
  });
}

async function mountPointsUnder(dir: string): Promise<string[]> {
  const text = await fs.readFile('/proc/self/mounts', 'utf8').catch(() => '');
  return text
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => p === dir || p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** Unmount whatever a crashed run left mounted under dir. */
export async function unmountUnder(dir: string): Promise<void> {
  for (const p of await mountPointsUnder(dir)) {
    const r = await execa('umount', [p], { reject: false });
    if (r.exitCode !== 0) await execa('umount', ['-l', p], { reject: false });
  }
}

/**
 * Build the modules in a chroot. The headers/kbuild trees of the cache entry are bind-mounted at
 * the Debian paths their Makefile names (/usr/src/linux-headers-<release>, ...), the module tree
 * at /build/<id>, and /proc is mounted; all of it is unmounted afterwards, also on failure.
 * (Bind mounts instead of copies: copying the ~17,000 header files took 6-15 s here.)
 */
export async function buildInChroot(
  ctx: BuildContext & { env: Extract<BuildEnv, { kind: 'chroot' }> },
  root: string,
  modules: ModuleBuild[],
  /** the directory containing every module dir; mounted as a whole so relative includes work */
  tree: string,
): Promise<void> {
  await withLock(`${root}.lock`, { what: `building in the ${ctx.env.suite} build root` }, async () => {
    const id = `${ctx.release}-${process.pid}`;
    const binds: [string, string][] = [];
    for (const sub of ['usr/src', 'usr/lib']) {
      const from = join(ctx.headersRoot, sub);
      if (!(await exists(from))) continue;
      for (const name of await fs.readdir(from)) {
        if (name.startsWith('linux-headers-') || name.startsWith('linux-kbuild-')) binds.push([join(from, name), join(root, sub, name)]);
      }
    }
    binds.push([tree, join(root, 'build', id)]);
    const mounted: string[] = [];
    // the lock is ours: anything still mounted in the root was left by a run that crashed
    await unmountUnder(root);
    try {
      const mount = async (args: string[], target: string) => {
        await fs.mkdir(target, { recursive: true });
        const m = await execa('mount', [...args, target], { reject: false });
        if (m.exitCode !== 0) throw new UserError(`mount ${args.join(' ')} ${target} failed: ${safeLine(String(m.stderr))}`, 1);
        mounted.push(target);
      };
      await mount(['-t', 'proc', 'proc'], join(root, 'proc'));
      for (const [from, to] of binds) await mount(['--bind', from], to);
      await ensureDevNodes(root);
      for (const mod of modules) {
        const inside = { dir: `/build/${id}/${relative(tree, mod.dir)}`, vars: rewriteVars(mod.vars, tree, `/build/${id}`) };
        await runMake('chroot', [root, 'make', ...makeArgs(`/usr/src/linux-headers-${ctx.release}`, inside, ctx.makeVars)], mod.label, mod.log);
      }
    } finally {
      for (const target of mounted.reverse()) {
        const u = await execa('umount', [target], { reject: false });
        if (u.exitCode !== 0) {
          await execa('umount', ['-l', target], { reject: false });
          warn(`umount ${target} failed (${safeLine(String(u.stderr))}); detached it lazily`);
        }
      }
      // the (now empty) mount points
      for (const [, to] of binds) await fs.rmdir(to).catch(() => undefined);
    }
  });
}

function rewriteVars(vars: Record<string, string>, hostTree: string, chrootTree: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(vars)) out[k] = v.split(hostTree).join(chrootTree);
  return out;
}

/** debootstrap in a container may leave /dev empty; make and gcc need /dev/null. */
async function ensureDevNodes(root: string): Promise<void> {
  const devNull = join(root, 'dev', 'null');
  try {
    const st = await fs.stat(devNull);
    if (st.isCharacterDevice()) return;
    await fs.rm(devNull, { force: true });
  } catch {
    /* missing */
  }
  const r = await execa('mknod', ['-m', '666', devNull, 'c', '1', '3'], { reject: false });
  if (r.exitCode !== 0) throw new UserError(`the build root ${root} has no /dev/null and mknod failed: ${safeLine(String(r.stderr))}`, 1);
}

export function buildEnvLabel(env: BuildEnv): string {
  if (env.kind === 'host') return env.cmd ? `host:${env.cmd}` : 'host';
  return `chroot:${env.root ?? env.suite}`;
}
