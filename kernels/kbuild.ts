/**
 * Kernels built from source (`src:debian:7.2+kasan`, `git:/src/linux@v6.13+iommufd`): the guest
 * base configuration plus fragments (kernels/kconfig.ts), built out of tree with the host's gcc
 * through ccache, in a persistent build directory per (source tree, configuration) so that the
 * next commit of a bisection rebuilds only what changed.
 *
 *   cacheDir()/kernel-src/<tree>/                source trees (kernels/source.ts)
 *   cacheDir()/kernel-build/<tree>-<config>/     build directories (O=); svadiff-build.json says
 *                                                "building" while make runs, "complete" after
 *   cacheDir()/ccache/                           the compiler cache
 *   cacheDir()/kernels/<entry>/                  a finished kernel, assembled under a temporary
 *                                                name and renamed: bzImage, config, System.map,
 *                                                uacce.ko, headers/ (for module builds, made by
 *                                                the tree's scripts/package/install-extmod-build),
 *                                                src/uacce/, build.log, modules-<h>/, manifest.json
 *
 * A self-built kernel does not need Debian's compiler: the host's gcc builds 6.12 and 7.2 (the
 * kernel needs gcc >= 8), and the test module is then built with the same gcc.
 */
import { execa } from 'execa';
import { createWriteStream, promises as fs } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../harness/util/errors.js';
import { atomicWrite, atomicWriteJson, exists, readJsonIfExists, sha256, sha256File } from '../harness/util/fsx.js';
import { ensureHostTools, type HostTool } from '../harness/util/host.js';
import { fmtDuration, info, StatusLine } from '../harness/util/log.js';
import { cacheDir } from '../harness/util/paths.js';
import { execaTiedToParent } from '../harness/util/proc.js';
import { LineSplitter, safeLine } from '../harness/util/sanitize.js';
import { buildErrorLines, buildOnHost, isBuildProduct, listFiles, type ModuleBuild } from './build.js';
import { configInputs, makeConfig, type ConfigInputs } from './kconfig.js';
import { withLock } from './lock.js';
import { checkVermagic } from './modinfo.js';
import { checkoutGitTree, cloneLockPath, debianSourceTree, gitSourceTree, GIT_TOOL, resolveDebianSource, type SourceTree } from './source.js';
import { formatSourceSpec, type SourceKernelSpec } from './spec.js';
import type { Arch, KernelArtifacts } from './types.js';
import { copyTestModule, hashModuleSources, kernelsDir, listEntries, UACCE_DEFINE, type ModuleSources } from './fetch.js';

/** Bump when the way a kernel is built or its entry assembled changes (forces a rebuild). */
const SOURCE_KERNEL_RECIPE = 2;
const MODULE_RECIPE = 1;

/** What building a kernel needs on the host (Debian package names). */
export const KERNEL_BUILD_TOOLS: HostTool[] = [
  { cmd: 'make', pkg: 'make', why: 'building kernels' },
  { cmd: 'gcc', pkg: 'gcc', why: 'building kernels' },
  { cmd: 'flex', pkg: 'flex', why: 'the kernel configuration parser' },
  { cmd: 'bison', pkg: 'bison', why: 'the kernel configuration parser' },
  { cmd: 'bc', pkg: 'bc', why: 'kernel build scripts' },
  { cmd: 'perl', pkg: 'perl', why: 'kernel build scripts' },
  { cmd: 'ccache', pkg: 'ccache', why: 'caching compiled kernel objects between builds' },
  { cmd: 'libelf-dev', pkg: 'libelf-dev', why: 'objtool and modpost', path: '/usr/include/libelf.h' },
  { cmd: 'libssl-dev', pkg: 'libssl-dev', why: 'kernel build host programs', path: '/usr/include/openssl/ssl.h' },
];

export const CCACHE_MAX_SIZE = '5G';

export function kernelBuildDir(): string {
  return join(cacheDir(), 'kernel-build');
}

/** Files a build from clean compiled, per configuration key (for the percentage of the next one). */
function fullCountsPath(): string {
  return join(kernelBuildDir(), 'full-build-counts.json');
}

interface BuildState {
  status: 'building' | 'complete' | 'failed';
  /** the source it was last configured and built for */
  identity: string;
  configKey: string;
  started: string;
  finished?: string;
  /** identity + configKey the .config in the directory was made for */
  configuredFor?: string;
}

export interface SourceManifest {
  schema: 1;
  kind: 'source';
  exactSpec: string;
  arch: Arch;
  kernel: {
    recipe: number;
    inputsHash: string;
    source: { label: string; identity: string; debianVersion?: string; commit?: string; subject?: string; userTree?: string };
    distro: 'debian' | 'upstream';
    kernelVersion: string;
    release: string;
    fragments: string[];
    configKey: string;
    configHash: string;
    compiler: string;
    paths: { image: string; config: string; systemMap: string; uacce?: string };
    uacce: 'module' | 'builtin';
    uacceSourceHash: string;
    /** headers/ for building modules later, or null when the tree has no install-extmod-build */
    moduleTree: string | null;
    buildDir: string;
    buildLog: string;
    buildMs: number;
    compiled: number;
    builtAt: string;
  };
  modules: { recipe: number; inputsHash: string; dir: string; svadiffTest: string; testModuleHash: string; vermagic: string; builtAt: string };
}

export interface SourceBuildOptions {
  arch?: Arch;
  refresh?: boolean;
  /** make -j (default: the number of CPUs) */
  jobs?: number;
  /** build again even when a complete entry exists */
  rebuild?: boolean;
  moduleSources: ModuleSources;
}

/** Everything one build of a kernel entry needs (built once in buildSourceKernel). */
interface BuildJob {
  /** the kernel's cache entry */
  dir: string;
  exactSpec: string;
  tree: SourceTree;
  inputs: ConfigInputs;
  inputsHash: string;
  compiler: string;
  arch: Arch;
  opts: SourceBuildOptions;
  testModuleHash: string;
}

/** The cache entry name of a self-built kernel. */
export function sourceEntryName(tree: SourceTree, fragments: string[], arch: Arch): string {
  const frags = fragments.map((f) => `+${f}`).join('');
  if (tree.commit) return `git-${tree.id.slice(4, 12)}-${tree.commit.slice(0, 12)}${frags}-${arch}`;
  return `src-debian-${tree.kernelVersion}${frags}-${arch}`;
}

async function compilerLine(): Promise<string> {
  const r = await execa('gcc', ['--version'], { reject: false });
  if (r.exitCode !== 0) throw new UserError('gcc does not run; install it: apt-get install gcc');
  return String(r.stdout).split('\n')[0] ?? 'gcc';
}

/**
 * A clean environment for make: nothing from the user's shell (ARCH, CROSS_COMPILE, KBUILD_*).
 * The fragments go into the release (6.12.118-svadiff-kasan-lockdep), so that findings and
 * modules of differently configured kernels of one source are told apart.
 */
export function kernelMakeEnv(fragments: readonly string[] = []): Record<string, string> {
  return {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    LC_ALL: 'C.UTF-8',
    HOME: '/tmp',
    CCACHE_DIR: join(cacheDir(), 'ccache'),
    CCACHE_MAXSIZE: CCACHE_MAX_SIZE,
    // always set (empty without fragments): no "+" appended to the release of a tree that is not at a tag
    LOCALVERSION: fragments.map((f) => `-${f}`).join(''),
    // fixed, so that init/version.c and friends hit the compiler cache and the build is reproducible
    KBUILD_BUILD_TIMESTAMP: 'Thu Jan  1 00:00:00 UTC 1970',
    KBUILD_BUILD_USER: 'svadiff',
    KBUILD_BUILD_HOST: 'svadiff',
  };
}

export const KERNEL_MAKE_VARS = ['CC=ccache gcc', 'HOSTCC=ccache gcc'];

/** A line of kbuild's short output: "  CC      kernel/fork.o", "  CC [M]  drivers/x.o". */
const KBUILD_STEP = /^\s{2}(CC|AS|CC \[M\]|HOSTCC|LD|AR|LD \[M\]|GEN|CHK|UPD|MODPOST|OBJCOPY|BUILD|SYNC|CALL|WRAP|VDSO\S*)\s+(\S+)/;

/** Progress of a kernel build from its output: files compiled so far and where it is. */
export class BuildProgress {
  compiled = 0;
  where = '';
  feed(line: string): void {
    const m = KBUILD_STEP.exec(line);
    if (!m) return;
    const kind = m[1]!;
    if (kind === 'CC' || kind === 'AS' || kind === 'CC [M]') {
      this.compiled++;
      const path = m[2]!;
      this.where = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : path;
    } else if (kind.startsWith('LD') || kind === 'BUILD' || kind === 'OBJCOPY') {
      this.where = `linking ${m[2]}`;
    }
  }
  text(fullCount?: number): string {
    const pct = fullCount && fullCount > 0 ? ` (~${Math.min(99, Math.round((100 * this.compiled) / fullCount))}% of a full build)` : '';
    return `${this.compiled} files compiled${pct}${this.where ? `, now ${this.where}` : ''}`;
  }
}

/** Run make in the build directory with a status line; the whole output goes to logPath. */
async function runKernelMake(
  src: string,
  build: string,
  args: string[],
  env: Record<string, string>,
  logPath: string,
  what: string,
  fullCount?: number,
): Promise<{ compiled: number; ms: number }> {
  const t0 = Date.now();
  const log = createWriteStream(logPath, { flags: 'a' });
  log.write(`$ make -C ${src} O=${build} ${[...KERNEL_MAKE_VARS.map((v) => `'${v}'`), ...args].join(' ')}\n`);
  const progress = new BuildProgress();
  const status = new StatusLine(15_000);
  const proc = execaTiedToParent('make', ['-C', src, `O=${build}`, ...KERNEL_MAKE_VARS, ...args], {
    env,
    extendEnv: false,
    reject: false,
    all: true,
    buffer: false,
  });
  const splitter = new LineSplitter(4096);
  const errors: string[] = [];
  const tailLines: string[] = [];
  proc.all?.setEncoding('utf8');
  proc.all?.on('data', (chunk: string) => {
    log.write(chunk);
    for (const line of splitter.push(chunk)) {
      progress.feed(line);
      if (errors.length < 20 && /\berror:|^ERROR: |\*\*\* /.test(line)) errors.push(line);
      tailLines.push(line);
      if (tailLines.length > 40) tailLines.shift();
    }
    status.update(`${what}: ${progress.text(fullCount)} (${fmtDuration(Date.now() - t0)})`);
  });
  const r = await proc;
  status.done();
  await new Promise<void>((res) => log.end(() => res()));
  if (r.exitCode !== 0) {
    const why = buildErrorLines([...errors, ...tailLines].join('\n'), 1)[0] ?? `make exit ${r.exitCode}`;
    throw new UserError(`${what} failed (make exit ${r.exitCode}): ${safeLine(why, 300)}; full log: ${logPath}`, 1);
  }
  return { compiled: progress.compiled, ms: Date.now() - t0 };
}

async function readSourceManifest(dir: string): Promise<SourceManifest | undefined> {
  const m = await readJsonIfExists<SourceManifest>(join(dir, 'manifest.json')).catch(() => undefined);
  if (!m || m.schema !== 1 || m.kind !== 'source' || m.kernel?.recipe !== SOURCE_KERNEL_RECIPE) return undefined;
  return m;
}

async function entryComplete(dir: string, m: SourceManifest): Promise<boolean> {
  const paths = [m.kernel.paths.image, m.kernel.paths.config, m.kernel.paths.systemMap, m.modules.svadiffTest, ...(m.kernel.paths.uacce ? [m.kernel.paths.uacce] : [])];
  for (const p of paths) if (!(await exists(join(dir, p)))) return false;
  return true;
}

export function sourceArtifacts(dir: string, spec: string, m: SourceManifest): KernelArtifacts {
  const k = m.kernel;
  const uacceText = k.uacce === 'builtin' ? `uacce.c: built in, from ${k.source.label}` : `uacce.c: ${k.source.label}`;
  return {
    spec,
    exactSpec: m.exactSpec,
    version: k.kernelVersion,
    debianVersion: k.source.debianVersion ?? '',
    release: k.release,
    arch: m.arch,
    distro: k.distro,
    image: join(dir, k.paths.image),
    config: join(dir, k.paths.config),
    systemMap: join(dir, k.paths.systemMap),
    configHash: k.configHash,
    compiler: k.compiler,
    modules: { uacce: k.paths.uacce ? join(dir, k.paths.uacce) : '', svadiffTest: join(dir, m.modules.svadiffTest) },
    uacceSourceVersion: k.source.label,
    uacce: { text: `${uacceText}, sha256 ${k.uacceSourceHash.slice(0, 16)}`, sha256: k.uacceSourceHash, custom: false, builtin: k.uacce === 'builtin' },
    extraModules: [],
    dir,
    built: {
      source: k.source.label,
      ...(k.source.commit ? { commit: k.source.commit } : {}),
      ...(k.source.subject ? { subject: k.source.subject } : {}),
      fragments: k.fragments,
      buildLog: join(dir, k.buildLog),
    },
  };
}

/** Resolve the source of a spec (download or clone as needed); nothing is built. */
export async function resolveSourceTree(spec: SourceKernelSpec, arch: Arch, refresh = false): Promise<SourceTree> {
  if (spec.kind === 'git') return gitSourceTree(spec.tree, spec.rev);
  return debianSourceTree(await resolveDebianSource(spec, arch, refresh), arch);
}

/** Build (or find in the cache) a kernel from source, with its test module. */
export async function buildSourceKernel(spec: SourceKernelSpec, opts: SourceBuildOptions): Promise<KernelArtifacts> {
  const arch = opts.arch ?? 'x86_64';
  if (arch !== 'x86_64') throw new UserError(`building ${arch} kernels is not supported yet (kernels/config/base.config is for the x86_64 machine); use --arch x86_64`);
  const inputs = await configInputs(spec.fragments);
  const compiler = await compilerLine();
  const testModule = await hashModuleSources(opts.moduleSources);
  const hashOf = (identity: string) => sha256(JSON.stringify({ recipe: SOURCE_KERNEL_RECIPE, source: identity, config: inputs.key, compiler, arch }));

  // an exact Debian version built before needs no package lists (like debian:<version>)
  if (spec.kind === 'src-debian' && spec.version && !opts.refresh && !opts.rebuild) {
    const cached = join(kernelsDir(), `src-debian-${spec.version}${spec.fragments.map((f) => `+${f}`).join('')}-${arch}`);
    const man = await readSourceManifest(cached);
    if (man && man.kernel.inputsHash === hashOf(man.kernel.source.identity) && man.modules.testModuleHash === testModule.hash && man.modules.recipe === MODULE_RECIPE && (await entryComplete(cached, man))) {
      await checkVermagic(join(cached, man.modules.svadiffTest), man.kernel.release);
      return sourceArtifacts(cached, spec.text, man);
    }
  }

  await ensureHostTools(spec.kind === 'git' ? [...KERNEL_BUILD_TOOLS, ...GIT_TOOL] : KERNEL_BUILD_TOOLS);
  const tree = await resolveSourceTree(spec, arch, opts.refresh);
  const exactSpec = formatSourceSpec(spec, tree.commit ? { commit: tree.commit } : { version: tree.kernelVersion });
  const dir = join(kernelsDir(), sourceEntryName(tree, spec.fragments, arch));
  const inputsHash = hashOf(tree.identity);

  const job: BuildJob = { dir, exactSpec, tree, inputs, inputsHash, compiler, arch, opts, testModuleHash: testModule.hash };
  return withLock(`${dir}.lock`, { what: `building ${exactSpec}` }, async () => {
    let man = await readSourceManifest(dir);
    if (!man || man.kernel.inputsHash !== inputsHash || opts.rebuild || !(await entryComplete(dir, man))) {
      if (man && man.kernel.inputsHash !== inputsHash) info(`${exactSpec}: the source, configuration or compiler changed since the cached build; building again`);
      man = await buildEntry(job);
    } else if (man.modules.testModuleHash !== testModule.hash || man.modules.recipe !== MODULE_RECIPE) {
      if (man.kernel.moduleTree === null) {
        info(`${exactSpec}: the test module changed and this tree keeps no module build tree; building the kernel again (incremental)`);
        man = await buildEntry(job);
      } else {
        info(`${exactSpec}: the test module sources changed; rebuilding it`);
        const modules = await buildTestModule(dir, man.kernel.release, join(dir, man.kernel.moduleTree), opts.moduleSources, testModule.hash);
        const old = man.modules.dir;
        man = { ...man, modules };
        await atomicWriteJson(join(dir, 'manifest.json'), man);
        if (old !== modules.dir) await fs.rm(join(dir, old), { recursive: true, force: true });
      }
    }
    await checkVermagic(join(dir, man.modules.svadiffTest), man.kernel.release);
    return sourceArtifacts(dir, spec.text, man);
  });
}

async function buildEntry(job: BuildJob): Promise<SourceManifest> {
  const { tree, inputs, exactSpec } = job;
  const build = join(kernelBuildDir(), `${tree.id}-${inputs.key.slice(0, 16)}`);
  const run = async (): Promise<SourceManifest> => {
    if (tree.commit) await checkoutGitTree(tree);
    return withLock(`${build}.lock`, { what: `building in ${build}` }, () => buildInDir(job, build));
  };
  // a git tree has one checkout for every build of it: keep it while this build reads it
  return tree.commit ? withLock(cloneLockPath(tree.dir), { what: `building ${exactSpec} from ${tree.dir}` }, run) : run();
}

async function buildInDir(job: BuildJob, build: string): Promise<SourceManifest> {
  const { tree, inputs, exactSpec, dir, opts } = job;
  await fs.mkdir(build, { recursive: true });
  const statePath = join(build, 'svadiff-build.json');
  const prev = await readJsonIfExists<BuildState>(statePath).catch(() => undefined);
  // a build from an empty directory: its file count is what a full build compiles
  const fresh = prev === undefined && !(await exists(join(build, 'vmlinux')));
  const state: BuildState = { status: 'building', identity: tree.identity, configKey: inputs.key, started: new Date().toISOString() };
  if (prev?.configuredFor !== undefined) state.configuredFor = prev.configuredFor;
  await atomicWriteJson(statePath, state);
  const logPath = join(build, 'svadiff-build.log');
  await atomicWrite(logPath, `svadiff: building ${exactSpec} (${tree.label}) in ${build}, ${new Date().toISOString()}\n`);
  const t0 = Date.now();
  const makeEnv = kernelMakeEnv(inputs.fragments);
  try {
    // the configuration depends on the tree's Kconfig: make it again for another source
    const configuredFor = `${tree.identity} ${inputs.key}`;
    if (state.configuredFor !== configuredFor || !(await exists(join(build, '.config')))) {
      info(`configuring ${exactSpec}: allnoconfig + ${['base', ...inputs.fragments].join(' + ')} (kernels/config/)`);
      await makeConfig({ src: tree.dir, build, inputs, makeVars: KERNEL_MAKE_VARS, env: makeEnv });
      state.configuredFor = configuredFor;
      await atomicWriteJson(statePath, state);
    }
    const jobs = opts.jobs ?? availableParallelism();
    info(`building ${exactSpec} in ${build} with make -j${jobs} (ccache in ${makeEnv.CCACHE_DIR}); log: ${logPath}`);
    // a percentage only for a build from clean, from what a full build of this configuration compiled before
    const counts = (await readJsonIfExists<Record<string, number>>(fullCountsPath()).catch(() => undefined)) ?? {};
    const made = await runKernelMake(tree.dir, build, [`-j${jobs}`, 'bzImage', 'modules'], makeEnv, logPath, `building ${exactSpec}`, fresh ? counts[inputs.key] : undefined);
    const release = (await execa('make', ['-s', '-C', tree.dir, `O=${build}`, ...KERNEL_MAKE_VARS, 'kernelrelease'], { env: makeEnv, extendEnv: false })).stdout.trim().split('\n').pop() ?? '';
    if (!/^\d+\.\d+/.test(release)) throw new Error(`make kernelrelease printed ${JSON.stringify(release.slice(0, 80))}`);
    const man = await assembleEntry(job, build, release, made, logPath);
    const done: BuildState = { ...state, status: 'complete', finished: new Date().toISOString() };
    if (fresh) await atomicWriteJson(fullCountsPath(), { ...counts, [inputs.key]: made.compiled });
    await atomicWriteJson(statePath, done);
    info(`built ${exactSpec} (${release}) in ${fmtDuration(Date.now() - t0)}: ${made.compiled} files compiled; ${dir}`);
    return man;
  } catch (e) {
    await atomicWriteJson(statePath, { ...state, status: 'failed', finished: new Date().toISOString() } satisfies BuildState);
    throw e;
  }
}

function configValue(config: string, symbol: string): string | undefined {
  return new RegExp(`^${symbol}=(.*)$`, 'm').exec(config)?.[1];
}

/** Copy the built kernel into a new entry directory, renamed into place when complete. */
async function assembleEntry(job: BuildJob, build: string, release: string, made: { compiled: number; ms: number }, logPath: string): Promise<SourceManifest> {
  const { dir, exactSpec, tree, inputs, inputsHash, compiler, arch, opts, testModuleHash } = job;
  const partial = `${dir}.partial`;
  await fs.rm(partial, { recursive: true, force: true });
  await fs.mkdir(join(partial, 'kernel'), { recursive: true });
  try {
    const config = await fs.readFile(join(build, '.config'), 'utf8');
    const uacce = configValue(config, 'CONFIG_UACCE') === 'y' ? 'builtin' : 'module';
    const paths: SourceManifest['kernel']['paths'] = { image: 'kernel/bzImage', config: 'kernel/config', systemMap: 'kernel/System.map' };
    await fs.copyFile(join(build, 'arch', 'x86', 'boot', 'bzImage'), join(partial, paths.image));
    await fs.copyFile(join(build, '.config'), join(partial, paths.config));
    await fs.copyFile(join(build, 'System.map'), join(partial, paths.systemMap));
    if (uacce === 'module') {
      paths.uacce = 'kernel/uacce.ko';
      await fs.copyFile(join(build, 'drivers', 'misc', 'uacce', 'uacce.ko'), join(partial, paths.uacce));
    }
    await fs.copyFile(logPath, join(partial, 'build.log'));
    // uacce's sources as built, for --uacce-src with a patch
    const srcUacce = join(partial, 'src', 'uacce');
    for (const rel of ['drivers/misc/uacce', 'include/linux/uacce.h', 'include/uapi/misc/uacce']) {
      if (await exists(join(tree.dir, rel))) await fs.cp(join(tree.dir, rel), join(srcUacce, rel), { recursive: true });
    }
    if (!(await exists(join(srcUacce, 'drivers', 'misc', 'uacce', 'uacce.c')))) throw new UserError(`${tree.label} has no drivers/misc/uacce/uacce.c: svadiff needs a kernel with uacce (5.7 or newer)`);
    const uacceSourceHash = await hashUacceTree(srcUacce);
    // a tree for building modules later (--uacce-src, a changed test module), made the way
    // Debian's linux-headers is: by the tree's own script
    let moduleTree: string | null = null;
    const script = join(tree.dir, 'scripts', 'package', 'install-extmod-build');
    if (await exists(script)) {
      const env = { ...kernelMakeEnv(inputs.fragments), srctree: tree.dir, SRCARCH: 'x86', CC: 'gcc', HOSTCC: 'gcc', MAKE: 'make' };
      const r = await execaTiedToParent('sh', [script, join(partial, 'headers')], { cwd: build, env, extendEnv: false, reject: false, all: true });
      if (r.exitCode !== 0) throw new UserError(`install-extmod-build failed for ${exactSpec}: ${safeLine(String(r.all ?? '').split('\n').filter(Boolean).pop() ?? '', 300)}`, 1);
      moduleTree = 'headers';
    }
    const moduleDir = moduleTree ? join(partial, moduleTree) : build;
    const modules = await buildTestModule(partial, release, moduleDir, opts.moduleSources, testModuleHash);
    const man: SourceManifest = {
      schema: 1,
      kind: 'source',
      exactSpec,
      arch,
      kernel: {
        recipe: SOURCE_KERNEL_RECIPE,
        inputsHash,
        source: {
          label: tree.label,
          identity: tree.identity,
          ...(tree.debianVersion ? { debianVersion: tree.debianVersion } : {}),
          ...(tree.commit ? { commit: tree.commit } : {}),
          ...(tree.subject ? { subject: tree.subject } : {}),
          ...(tree.userTree ? { userTree: tree.userTree } : {}),
        },
        distro: tree.distro,
        kernelVersion: tree.kernelVersion,
        release,
        fragments: inputs.fragments,
        configKey: inputs.key,
        configHash: await sha256File(join(partial, paths.config)),
        compiler: (/^CONFIG_CC_VERSION_TEXT="(.*)"$/m.exec(config)?.[1] ?? compiler).replace(/\\"/g, '"'),
        paths,
        uacce,
        uacceSourceHash,
        moduleTree,
        buildDir: build,
        buildLog: 'build.log',
        buildMs: made.ms,
        compiled: made.compiled,
        builtAt: new Date().toISOString(),
      },
      modules,
    };
    await atomicWriteJson(join(partial, 'manifest.json'), man);
    await fs.rm(dir, { recursive: true, force: true });
    await fs.rename(partial, dir);
    return man;
  } catch (e) {
    await fs.rm(partial, { recursive: true, force: true });
    throw e;
  }
}

/** sha256 of a uacce source tree (drivers/misc/uacce/*, include/linux/uacce.h, include/uapi/misc/uacce/*). */
export async function hashUacceTree(root: string): Promise<string> {
  const files = await listFiles(root, isBuildProduct);
  const parts: string[] = [];
  for (const f of files) parts.push(`${f}\0${sha256(await fs.readFile(join(root, f)))}`);
  return sha256(parts.join('\n'));
}

/** Build the test module against a kernel's module build tree into <entry>/modules-<h>/. */
async function buildTestModule(entry: string, release: string, moduleTree: string, src: ModuleSources, testModuleHash: string): Promise<SourceManifest['modules']> {
  const inputsHash = sha256(JSON.stringify({ recipe: MODULE_RECIPE, release, test: testModuleHash, tree: moduleTree.endsWith('/headers') ? 'headers' : 'build' }));
  const name = `modules-${inputsHash.slice(0, 12)}`;
  const tree = join(entry, name);
  await fs.rm(tree, { recursive: true, force: true });
  const testDir = await copyTestModule(src, tree);
  const log = join(entry, 'module-build-failure.log');
  const mod: ModuleBuild = { dir: testDir, vars: { KCFLAGS: UACCE_DEFINE }, label: `the test module for ${release}`, log };
  try {
    await buildOnHost({ release, env: { kind: 'host', hostPackage: 'gcc' }, headersRoot: entry, headersDir: moduleTree, spec: release }, [mod]);
    const ko = join(testDir, 'svadiff_test.ko');
    const vermagic = await checkVermagic(ko, release);
    await fs.rm(log, { force: true });
    return { recipe: MODULE_RECIPE, inputsHash, dir: name, svadiffTest: `${name}/${ko.slice(tree.length + 1)}`, testModuleHash, vermagic, builtAt: new Date().toISOString() };
  } catch (e) {
    await fs.rm(tree, { recursive: true, force: true });
    throw e;
  }
}

/** Self-built kernels in the cache (complete entries only). */
export async function listSourceKernels(): Promise<{ dir: string; manifest: SourceManifest }[]> {
  return listEntries(readSourceManifest);
}

/** Build directories and their state (for `kernels list`). */
export async function listBuildDirs(): Promise<{ dir: string; state?: BuildState }[]> {
  let names: string[] = [];
  try {
    names = await fs.readdir(kernelBuildDir());
  } catch {
    return [];
  }
  const out: { dir: string; state?: BuildState }[] = [];
  for (const n of names.sort()) {
    if (n.endsWith('.lock') || n.endsWith('.json')) continue;
    const d = join(kernelBuildDir(), n);
    const state = await readJsonIfExists<BuildState>(join(d, 'svadiff-build.json')).catch(() => undefined);
    out.push(state ? { dir: d, state } : { dir: d });
  }
  return out;
}
