/**
 * --uacce-src: uacce.ko built from the user's source for the chosen kernel, without building a
 * kernel. The argument is one of
 *   FILE.c   a uacce.c; the headers come from the kernel's own uacce source
 *   DIR      a kernel tree (DIR/drivers/misc/uacce/uacce.c, with its include/linux/uacce.h and
 *            include/uapi/misc/uacce/ when present) or a directory holding uacce.c
 *   PATCH    a patch (.patch, .diff, or anything that reads like one) applied with patch -p1 to
 *            the kernel's own uacce source (Debian's linux-source of that version)
 * The module and the test module (which links against it) are built once per content hash into
 * <kernel entry>/uacce-src/<hash>/, written under a temporary name and renamed when complete.
 * Every finding and report quotes where uacce came from (UacceOrigin.text).
 */
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { UserError } from '../harness/util/errors.js';
import { atomicWriteJson, exists, readJsonIfExists, sha256 } from '../harness/util/fsx.js';
import { ensureHostTools } from '../harness/util/host.js';
import { info } from '../harness/util/log.js';
import { safeLine } from '../harness/util/sanitize.js';
import { buildEnvLabel, buildOnHost, isBuildProduct, listFiles } from './build.js';
import { compileModules, findTestModule, hashModuleSources, layoutModules, readManifest, type ModuleSources } from './fetch.js';
import { hashUacceTree } from './kbuild.js';
import { withLock } from './lock.js';
import { checkVermagic } from './modinfo.js';
import { buildEnvFor, crossMakeVars } from './profiles.js';
import { git } from './source.js';
import type { KernelArtifacts, UacceOrigin } from './types.js';

/** Bump when the way these modules are built changes. */
const UACCE_SRC_RECIPE = 1;

export type UacceSourceKind = 'file' | 'dir' | 'patch';

/** What a --uacce-src argument is; a UserError for anything else. */
export async function classifyUacceSrc(arg: string): Promise<{ kind: UacceSourceKind; path: string }> {
  const path = resolve(arg);
  let st;
  try {
    st = await fs.stat(path);
  } catch (e) {
    throw new UserError(`--uacce-src ${arg}: ${(e as NodeJS.ErrnoException).code ?? 'cannot read it'}; give uacce.c, a directory with it (or a kernel tree), or a patch`);
  }
  if (st.isDirectory()) {
    if ((await exists(join(path, 'drivers', 'misc', 'uacce', 'uacce.c'))) || (await exists(join(path, 'uacce.c')))) return { kind: 'dir', path };
    throw new UserError(`--uacce-src ${arg}: the directory has neither uacce.c nor drivers/misc/uacce/uacce.c`);
  }
  if (/\.(patch|diff)$/.test(path)) return { kind: 'patch', path };
  if (path.endsWith('.c')) return { kind: 'file', path };
  const head = (await fs.readFile(path, 'utf8').catch(() => '')).slice(0, 64 * 1024);
  if (/^(diff --git |--- \S|Index: |From [0-9a-f]{40} )/m.test(head)) return { kind: 'patch', path };
  throw new UserError(`--uacce-src ${arg}: not a .c file, a directory or a patch (.patch/.diff); give one of these`);
}

/**
 * Make a uacce source tree (drivers/misc/uacce/, include/linux/uacce.h, include/uapi/misc/uacce/)
 * in dest from the user's source over the kernel's own (base). Returns what to call it.
 */
export async function prepareUacceTree(input: { kind: UacceSourceKind; path: string }, base: string, baseLabel: string, dest: string): Promise<string> {
  await fs.rm(dest, { recursive: true, force: true });
  await fs.cp(base, dest, { recursive: true });
  const uacceDir = join(dest, 'drivers', 'misc', 'uacce');
  if (input.kind === 'file') {
    await fs.copyFile(input.path, join(uacceDir, 'uacce.c'));
    return `uacce.c: ${input.path} (headers of ${baseLabel})`;
  }
  if (input.kind === 'patch') {
    await ensureHostTools([{ cmd: 'patch', pkg: 'patch', why: 'applying --uacce-src patches' }]);
    const r = await execa('patch', ['-p1', '--batch', '--forward', '--no-backup-if-mismatch', '-d', dest, '-i', input.path], { reject: false, all: true, env: { LC_ALL: 'C' } });
    if (r.exitCode !== 0) {
      const lines = String(r.all ?? '').split('\n').filter((l) => l.trim());
      const why = lines.find((l) => /FAILED|can't find file|malformed|Only garbage|Reversed|No such file/i.test(l)) ?? lines.pop() ?? `exit ${r.exitCode}`;
      throw new UserError(`--uacce-src ${basename(input.path)} does not apply to the uacce sources of ${baseLabel}: ${safeLine(why, 200)}`);
    }
    return `uacce.c: ${baseLabel} + ${basename(input.path)}`;
  }
  // a directory: a kernel tree, or a directory with uacce.c (then the headers of the tree it
  // sits in, <tree>/drivers/misc/uacce, when that is what it is)
  const inTree = await exists(join(input.path, 'drivers', 'misc', 'uacce', 'uacce.c'));
  const treeRoot = inTree ? input.path : resolve(input.path, '..', '..', '..');
  const srcDir = inTree ? join(input.path, 'drivers', 'misc', 'uacce') : input.path;
  for (const f of await listFiles(srcDir, (rel) => isBuildProduct(rel) || rel.includes('/'))) {
    if (/\.(c|h)$/.test(f)) await fs.copyFile(join(srcDir, f), join(uacceDir, f));
  }
  const headersFrom = inTree || (await exists(join(treeRoot, 'include', 'linux', 'uacce.h'))) ? treeRoot : undefined;
  if (headersFrom) {
    await fs.copyFile(join(headersFrom, 'include', 'linux', 'uacce.h'), join(dest, 'include', 'linux', 'uacce.h')).catch(() => undefined);
    const uapi = join(headersFrom, 'include', 'uapi', 'misc', 'uacce');
    if (await exists(uapi)) await fs.cp(uapi, join(dest, 'include', 'uapi', 'misc', 'uacce'), { recursive: true });
  }
  const at = await gitDescription(input.path);
  return `uacce.c: ${input.path}${at}${headersFrom ? '' : ` (headers of ${baseLabel})`}`;
}

/** " at 1a2b3c4d5e6f with local changes" for a directory inside a git work tree, else "". */
async function gitDescription(dir: string): Promise<string> {
  const head = await git(dir, ['rev-parse', '--short=12', 'HEAD']).catch(() => undefined);
  if (!head || head.code !== 0) return '';
  const dirty = await git(dir, ['status', '--porcelain', '--untracked-files=no', '--', '.']).catch(() => undefined);
  return ` at ${head.out}${dirty && dirty.out !== '' ? ' with local changes' : ''}`;
}

interface UacceSrcStamp {
  recipe: number;
  origin: UacceOrigin;
  uacce: string;
  svadiffTest: string;
  vermagic: string;
  builtAt: string;
}

/**
 * The kernel with uacce.ko (and the test module) built from the user's uacce source. A build
 * failure is a UserError with the compiler's first error and the full log's path.
 */
export async function withUacceSource(k: KernelArtifacts, arg: string, src: ModuleSources, opts: { label?: string } = {}): Promise<KernelArtifacts> {
  if (k.uacce?.builtin) throw new UserError(`${k.exactSpec} has uacce built in (+uacce-builtin), so --uacce-src cannot replace it; drop the fragment`);
  const input = await classifyUacceSrc(arg);
  const base = join(k.dir, 'src', 'uacce');
  if (!(await exists(join(base, 'drivers', 'misc', 'uacce', 'uacce.c')))) throw new Error(`internal: ${k.dir} has no uacce sources (src/uacce)`);
  const baseLabel = k.distro === 'upstream' || k.built ? k.exactSpec : `Debian ${k.version}`;
  const work = join(k.dir, 'uacce-src', `.tree-${process.pid}`);
  return withLock(`${k.dir}.lock`, { what: `building uacce.ko from ${arg} for ${k.exactSpec}` }, async () => {
    try {
      const prepared = await prepareUacceTree(input, base, baseLabel, work);
      const describe = opts.label ?? prepared;
      const uacceHash = await hashUacceTree(work);
      const testHash = (await hashModuleSources(src)).hash;
      const key = sha256(JSON.stringify({ recipe: UACCE_SRC_RECIPE, uacce: uacceHash, test: testHash, release: k.release, kernel: k.configHash, dir: k.dir }));
      const out = join(k.dir, 'uacce-src', key.slice(0, 16));
      const origin: UacceOrigin = { text: `${describe}, sha256 ${uacceHash.slice(0, 16)}`, sha256: uacceHash, custom: true, builtin: false, src: input.path };
      let stamp = await readJsonIfExists<UacceSrcStamp>(join(out, 'stamp.json')).catch(() => undefined);
      if (!stamp || stamp.recipe !== UACCE_SRC_RECIPE || !(await exists(join(out, stamp.uacce))) || !(await exists(join(out, stamp.svadiffTest)))) {
        stamp = await buildInto(k, work, out, origin, src, input.path, opts.label);
      }
      await checkVermagic(join(out, stamp.uacce), k.release);
      if (!opts.label) info(`uacce from --uacce-src: ${origin.text}`);
      return { ...k, modules: { uacce: join(out, stamp.uacce), svadiffTest: join(out, stamp.svadiffTest) }, uacce: origin };
    } finally {
      await fs.rm(work, { recursive: true, force: true });
    }
  });
}

async function buildInto(k: KernelArtifacts, uacceRoot: string, out: string, origin: UacceOrigin, src: ModuleSources, userPath: string, label?: string): Promise<UacceSrcStamp> {
  const what = label?.replace(/^uacce\.c: /, '') ?? userPath;
  const partial = `${out}.partial`;
  await fs.rm(partial, { recursive: true, force: true });
  await fs.mkdir(partial, { recursive: true });
  const log = join(dirname(out), `build-failure-${basename(out)}.log`);
  const { modules, uacceKo, testDir } = await layoutModules(partial, uacceRoot, src, log, `uacce.ko from ${label ? what : basename(userPath)} for ${k.release}`, `the test module for ${k.release}`);
  try {
    const debian = await readManifest(k.dir);
    if (debian) {
      const env = buildEnvFor(debian.kernel.compiler, k.arch);
      if (!env) throw new UserError(`${k.exactSpec} was built with ${debian.kernel.compiler}, for which svadiff has no build environment (kernels/profiles.ts)`);
      const ctx = { release: k.release, env, headersRoot: join(k.dir, 'headers'), spec: k.exactSpec, makeVars: crossMakeVars(k.arch) };
      info(`building uacce.ko from ${what} for ${k.release} (${buildEnvLabel(env)})`);
      await compileModules(k.dir, debian.kernel, env, ctx, modules, partial);
    } else {
      const headers = join(k.dir, 'headers');
      if (!(await exists(join(headers, 'Makefile')))) {
        throw new UserError(`${k.exactSpec} keeps no module build tree (its source has no scripts/package/install-extmod-build), so --uacce-src cannot build for it; use a newer tree or rebuild with the patch applied`);
      }
      info(`building uacce.ko from ${what} for ${k.release}`);
      await buildOnHost({ release: k.release, env: { kind: 'host', hostPackage: 'gcc' }, headersRoot: k.dir, headersDir: headers, spec: k.exactSpec }, modules);
    }
    const testKo = await findTestModule(testDir);
    const vermagic = await checkVermagic(uacceKo, k.release);
    await checkVermagic(testKo, k.release);
    const rel = (p: string) => p.slice(partial.length + 1);
    const stamp: UacceSrcStamp = { recipe: UACCE_SRC_RECIPE, origin, uacce: rel(uacceKo), svadiffTest: rel(testKo), vermagic, builtAt: new Date().toISOString() };
    await atomicWriteJson(join(partial, 'stamp.json'), stamp);
    await fs.rm(out, { recursive: true, force: true });
    await fs.rename(partial, out);
    await fs.rm(log, { force: true });
    return stamp;
  } catch (e) {
    await fs.rm(partial, { recursive: true, force: true });
    // name the user's file in the compiler's message, not the copy it compiled
    if (e instanceof UserError) throw new UserError(e.message.split(join(partial, 'uacce', 'uacce.c')).join(userPath.endsWith('.c') ? userPath : 'uacce.c'), e.exitCode);
    throw e;
  }
}
