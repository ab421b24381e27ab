/**
 * Fetch a Debian kernel into the cache and build svadiff's out-of-tree modules for it.
 *
 * Cache entry: cacheDir()/kernels/debian-<version>[+debNN]-<arch>/
 *   kernel/        image, config, System.map as unpacked from the packages (nothing else)
 *   headers/       headers, headers-common and kbuild packages unpacked (for module builds)
 *   src/uacce/     drivers/misc/uacce/*, include/linux/uacce.h, include/uapi/misc/uacce/* of linux-source
 *   modules-<h>/   uacce/ and the test module, built; <h> is the hash of the module inputs
 *   kernel.json    written atomically once the packages are unpacked (a failed module build keeps them)
 *   manifest.json  written last and atomically: an entry without it is incomplete
 * A lock (<entry>.lock) keeps two processes from working on the same entry at once.
 */
import { promises as fs } from 'node:fs';
import { basename, join } from 'node:path';
import { UserError } from '../harness/util/errors.js';
import { atomicWrite, atomicWriteJson, exists, readJsonIfExists, sha256, sha256File } from '../harness/util/fsx.js';
import { fmtBytes, fmtDuration, info, step } from '../harness/util/log.js';
import { cacheDir, projectRoot } from '../harness/util/paths.js';
import { PrivateApt } from './apt.js';
import {
  UNPACK_TOOLS,
  buildEnvLabel,
  buildInChroot,
  buildOnHost,
  buildTools,
  ensureBuildRoot,
  extractDeb,
  extractDebMembers,
  extractUacceSources,
  hashTree,
  isBuildProduct,
  listFiles,
  needsRootMessage,
  relocateHeadersMakefile,
  type BuildContext,
  type ModuleBuild,
} from './build.js';
import { ensureHostTools, isRoot } from '../harness/util/host.js';
import { buildCatalog, exactSpecOf, parseAptShow, relevantPackageName, resolveSpec, type KernelBuild, type PackageRef, type SeriesCatalog } from './catalog.js';
import { withLock } from './lock.js';
import { checkVermagic } from './modinfo.js';
import { ARCH_PROFILES, buildEnvFor, channelModules, crossMakeVars, seriesProfile, selectCompiler, type BuildEnv, type SeriesProfile } from './profiles.js';
import { resolveDebianMirrors } from './sources.js';
import { FRAGMENT_NAMES } from './kconfig.js';
import { buildSourceKernel } from './kbuild.js';
import { parseAnyKernelSpec, parseKernelSpec, type KernelSpec } from './spec.js';
import { withUacceSource } from './uacce-src.js';
import type { Arch, KernelArtifacts } from './types.js';

/** Bump when the way the kernel part of an entry is made changes (forces a re-fetch). */
const KERNEL_RECIPE = 1;
/** Bump when the way modules are built changes (forces a module rebuild). */
export const MODULE_RECIPE = 1;

/** Both modules are built with this: include/linux/uacce.h only declares the API when it is set. */
export const UACCE_DEFINE = '-DCONFIG_UACCE_MODULE=1';

export interface FetchOptions {
  arch?: Arch;
  /** update the package lists first, and re-resolve even an exact version that is cached */
  refresh?: boolean;
  /** where the test module comes from (default: the repository's guest/module and guest/include) */
  moduleSources?: ModuleSources;
  /** build uacce.ko from this instead (uacce.c, a directory with it or a kernel tree, or a patch); see kernels/uacce-src.ts */
  uacceSrc?: string;
  /** kernels built from source: make -j (default: the number of CPUs) */
  jobs?: number;
  /** kernels built from source: build again even when cached */
  rebuild?: boolean;
}

export interface ModuleSources {
  /** directory with the test module's Kbuild and sources */
  moduleDir: string;
  /** headers it includes as ../include/... */
  includeDir: string;
}

interface PathsRel {
  image: string;
  config: string;
  systemMap: string;
}

export interface Manifest {
  schema: 1;
  exactSpec: string;
  arch: Arch;
  kernel: {
    recipe: number;
    inputsHash: string;
    series: string;
    version: string;
    debianVersion: string;
    release: string;
    packages: PackageRef[];
    paths: PathsRel;
    /** modules of the image package the agent's channel needs (relative to the entry, in load order), when any */
    channelModules?: string[];
    /** Debian ships a one-line placeholder System.map; the real one is in the -dbg package */
    systemMapIsPlaceholder: boolean;
    configHash: string;
    compiler: string;
    ccVersionText?: string;
    uacceSource: PackageRef;
    uacceSourceHash: string;
    fetchedAt: string;
  };
  modules: {
    recipe: number;
    inputsHash: string;
    dir: string;
    uacce: string;
    svadiffTest: string;
    buildEnv: string;
    testModuleHash: string;
    vermagic: string;
    builtAt: string;
  };
}

export function kernelsDir(): string {
  return join(cacheDir(), 'kernels');
}

export function entryName(exactSpec: string, arch: Arch): string {
  // the /arm64 of a spec is the -arm64 of the name
  return `${exactSpec.replace(/^debian:/, 'debian-').replace(/\/[a-z0-9_]+$/, '')}-${arch}`;
}

export function defaultModuleSources(): ModuleSources {
  const root = projectRoot();
  return { moduleDir: join(root, 'guest', 'module'), includeDir: join(root, 'guest', 'include') };
}

/** The tree hash of the test module sources (module dir + include dir), build products ignored. */
export async function hashModuleSources(src: ModuleSources): Promise<{ hash: string; moduleFiles: string[]; includeFiles: string[] }> {
  if (!(await exists(join(src.moduleDir, 'Kbuild'))) && !(await exists(join(src.moduleDir, 'Makefile')))) {
    throw new UserError(`the test module sources are missing: ${src.moduleDir} has no Kbuild; restore guest/module from the repository`);
  }
  const moduleFiles = await listFiles(src.moduleDir, isBuildProduct);
  const includeFiles = (await exists(src.includeDir)) ? await listFiles(src.includeDir, isBuildProduct) : [];
  const hash = sha256(`module\n${await hashTree(src.moduleDir, moduleFiles)}\ninclude\n${await hashTree(src.includeDir, includeFiles)}`);
  return { hash, moduleFiles, includeFiles };
}

function kernelInputsHash(build: KernelBuild, profile: SeriesProfile, packages: PackageRef[], channel: readonly string[]): string {
  return sha256(
    JSON.stringify({
      recipe: KERNEL_RECIPE,
      release: build.release,
      layout: profile.layout,
      packages: packages.map((p) => `${p.name}=${p.version}`),
      // only when there are any, so that the entries of every other kernel keep their hash
      ...(channel.length > 0 ? { channel } : {}),
    }),
  );
}

function moduleInputsHash(m: Manifest['kernel'], buildEnv: string, testModuleHash: string): string {
  return sha256(
    JSON.stringify({ recipe: MODULE_RECIPE, release: m.release, compiler: m.compiler, buildEnv, uacce: m.uacceSourceHash, test: testModuleHash, define: UACCE_DEFINE }),
  );
}

function artifactsOf(dir: string, spec: string, man: Manifest): KernelArtifacts {
  return {
    spec,
    exactSpec: man.exactSpec,
    version: man.kernel.version,
    debianVersion: man.kernel.debianVersion,
    release: man.kernel.release,
    arch: man.arch,
    image: join(dir, man.kernel.paths.image),
    config: join(dir, man.kernel.paths.config),
    systemMap: join(dir, man.kernel.paths.systemMap),
    configHash: man.kernel.configHash,
    compiler: man.kernel.ccVersionText ?? man.kernel.compiler,
    modules: { uacce: join(dir, man.modules.uacce), svadiffTest: join(dir, man.modules.svadiffTest) },
    uacceSourceVersion: man.kernel.uacceSource.version,
    uacce: {
      text: `uacce.c: Debian ${man.kernel.version} (${man.kernel.uacceSource.name} ${man.kernel.uacceSource.version}), sha256 ${man.kernel.uacceSourceHash.slice(0, 16)}`,
      sha256: man.kernel.uacceSourceHash,
      custom: false,
      builtin: false,
    },
    distro: 'debian',
    extraModules: [],
    ...(man.kernel.channelModules?.length ? { channelModules: man.kernel.channelModules.map((p) => join(dir, p)) } : {}),
    dir,
  };
}

async function kernelFilesPresent(dir: string, man: Manifest): Promise<boolean> {
  const paths = [man.kernel.paths.image, man.kernel.paths.config, man.kernel.paths.systemMap, 'src/uacce/drivers/misc/uacce/uacce.c', `headers/usr/src/linux-headers-${man.kernel.release}/Makefile`];
  for (const p of paths) if (!(await exists(join(dir, p)))) return false;
  return true;
}

async function modulesPresent(dir: string, man: Manifest): Promise<boolean> {
  return (await exists(join(dir, man.modules.uacce))) && (await exists(join(dir, man.modules.svadiffTest)));
}

/** Read the records apt has for the kernel packages of one flavour and index them. */
export async function loadCatalog(apt: PrivateApt, flavour: string): Promise<SeriesCatalog[]> {
  const names = (await apt.packageNames('linux-')).filter((n) => relevantPackageName(n, flavour));
  const records = parseAptShow(await apt.show(names));
  return buildCatalog(records, flavour);
}

/** The packages to download for a build, in the order they are unpacked. */
function packagesOf(build: KernelBuild, profile: SeriesProfile): PackageRef[] {
  const need = [build.image, profile.layout === 'split' ? build.base : undefined, build.headers, build.headersCommon, build.kbuild, build.source];
  return need.filter((p): p is PackageRef => p !== undefined);
}

function ensureFetchSupported(profile: SeriesProfile): void {
  if (profile.extraModules.length > 0) {
    // Kept honest: the profile asks for modules this code does not extract yet.
    throw new Error(`series ${profile.fromSeries} lists extraModules, but extracting kernel modules is not implemented (kernels/fetch.ts)`);
  }
}

/**
 * Fetch (or find in the cache) a kernel and its modules: a Debian kernel (debian:...), or one
 * built from source (src:debian:..., git:...; kernels/kbuild.ts). With opts.uacceSrc, uacce.ko
 * (and the test module) are built from the user's uacce source for it (kernels/uacce-src.ts).
 */
export async function fetchKernel(specText: string, opts: FetchOptions = {}): Promise<KernelArtifacts> {
  const any = parseAnyKernelSpec(specText, FRAGMENT_NAMES, { home: process.env.HOME ?? '' });
  const src = opts.moduleSources ?? defaultModuleSources();
  const k =
    any.kind === 'debian'
      ? await fetchDebianKernel(any, opts, src)
      : await buildSourceKernel(any, {
          moduleSources: src,
          ...(opts.arch ? { arch: opts.arch } : {}),
          ...(opts.refresh ? { refresh: true } : {}),
          ...(opts.jobs ? { jobs: opts.jobs } : {}),
          ...(opts.rebuild ? { rebuild: true } : {}),
        });
  return opts.uacceSrc === undefined ? k : withUacceSource(k, opts.uacceSrc, src);
}

async function fetchDebianKernel(spec: KernelSpec, opts: FetchOptions, src: ModuleSources): Promise<KernelArtifacts> {
  if (spec.arch !== undefined && opts.arch !== undefined && spec.arch !== opts.arch) {
    throw new UserError(`kernel spec ${spec.text} names ${spec.arch} but --arch is ${opts.arch}; drop one of them`);
  }
  const arch = spec.arch ?? opts.arch ?? 'x86_64';
  const testModule = await hashModuleSources(src);

  // An exact version already in the cache needs no package lists at all.
  if (spec.version !== undefined && !opts.refresh) {
    const dir = join(kernelsDir(), entryName(spec.text, arch));
    const man = await readManifest(dir);
    if (man && (await kernelFilesPresent(dir, man))) {
      return withEntryLock(dir, () => finishFromCache(dir, spec, man, src, testModule.hash));
    }
  }

  const profileArch = ARCH_PROFILES[arch];
  const apt = new PrivateApt(arch);
  await ensureHostTools([{ cmd: 'apt-get', pkg: 'apt', why: 'looking up Debian kernel packages' }]);
  await apt.ensureFresh({ refresh: opts.refresh });
  const catalog = await loadCatalog(apt, profileArch.flavour);
  const build = resolveSpec(catalog, spec);
  const sc = catalog.find((s) => s.series === build.series);
  const profile = seriesProfile(build.series);
  if (!sc || !profile) throw new Error(`internal: resolved ${build.release} without a series profile`);
  ensureFetchSupported(profile);
  const exactSpec = exactSpecOf(sc, build, arch);
  const dir = join(kernelsDir(), entryName(exactSpec, arch));
  if (exactSpec !== spec.text) info(`${spec.text} is ${exactSpec} (${build.release}, Debian ${build.debianVersion})`);
  const packages = packagesOf(build, profile);
  const channel = channelModules(arch, build.series);
  const inputs = kernelInputsHash(build, profile, packages, channel);

  return withEntryLock(dir, async () => {
    const man = await readManifest(dir);
    if (man && man.kernel.inputsHash === inputs && (await kernelFilesPresent(dir, man))) {
      return finishFromCache(dir, spec, man, src, testModule.hash);
    }
    const t0 = Date.now();
    // The kernel part may be complete from a run whose module build failed: keep it.
    const kernel = (await readKernelPart(dir, inputs)) ?? (await fetchKernelPart(dir, build, profile, packages, inputs, apt, arch, channel));
    const modules = await buildModules(dir, exactSpec, arch, kernel, src, testModule.hash);
    const full: Manifest = { schema: 1, exactSpec, arch, kernel, modules };
    await writeManifest(dir, full);
    info(`${exactSpec} ready in ${fmtDuration(Date.now() - t0)}: ${dir} (${fmtBytes(await duBytes(dir))})`);
    return artifactsOf(dir, spec.text, full);
  });
}

async function withEntryLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  return withLock(`${dir}.lock`, { what: `preparing ${basename(dir)}` }, fn);
}

/**
 * Module builds a kernel entry keeps besides the one its manifest names: two checkouts of svadiff
 * (or a branch switch) with different test module sources share one cache without rebuilding
 * each time, and a guest that is still booting with an older build keeps its files.
 */
const KEPT_MODULE_BUILDS = 4;
/** What a modules-<hash>/ directory holds: its part of the manifest. */
const MODULE_BUILD_FILE = 'modules.json';

/** Write the manifest (the entry is complete from now on) and drop all but the newest module builds. */
export async function writeManifest(dir: string, man: Manifest): Promise<void> {
  await atomicWriteJson(join(dir, 'manifest.json'), man);
  await fs.rm(join(dir, 'module-build-failure.log'), { force: true });
  const others: { name: string; builtAt: string }[] = [];
  for (const name of await fs.readdir(dir)) {
    if (!name.startsWith('modules-') || name === man.modules.dir) continue;
    const m = await readJsonIfExists<Manifest['modules']>(join(dir, name, MODULE_BUILD_FILE)).catch(() => undefined);
    // a build without its record is unfinished or from an older svadiff: not reusable
    if (m?.dir === name && typeof m.builtAt === 'string') others.push({ name, builtAt: m.builtAt });
    else await fs.rm(join(dir, name), { recursive: true, force: true });
  }
  others.sort((a, b) => (a.builtAt < b.builtAt ? 1 : -1));
  for (const o of others.slice(KEPT_MODULE_BUILDS - 1)) await fs.rm(join(dir, o.name), { recursive: true, force: true });
}

/** A module build kept from earlier with exactly these inputs, if its files are there. */
export async function keptModuleBuild(dir: string, man: Manifest, inputsHash: string): Promise<Manifest['modules'] | undefined> {
  const name = `modules-${inputsHash.slice(0, 12)}`;
  const m = await readJsonIfExists<Manifest['modules']>(join(dir, name, MODULE_BUILD_FILE)).catch(() => undefined);
  if (!m || m.dir !== name || m.inputsHash !== inputsHash || m.recipe !== MODULE_RECIPE) return undefined;
  return (await modulesPresent(dir, { ...man, modules: m })) ? m : undefined;
}

/** The kernel part of an entry whose download and unpacking completed (kernel.json), if its inputs match. */
async function readKernelPart(dir: string, inputsHash: string): Promise<Manifest['kernel'] | undefined> {
  const k = await readJsonIfExists<Manifest['kernel']>(join(dir, 'kernel.json')).catch(() => undefined);
  if (!k || k.recipe !== KERNEL_RECIPE || k.inputsHash !== inputsHash) return undefined;
  const probe = { kernel: k } as Manifest;
  return (await kernelFilesPresent(dir, probe)) ? k : undefined;
}

export async function readManifest(dir: string): Promise<Manifest | undefined> {
  const man = await readJsonIfExists<Manifest>(join(dir, 'manifest.json')).catch(() => undefined);
  // kernels built from source have their own manifest (kind "source", kernels/kbuild.ts)
  if (!man || man.schema !== 1 || (man as { kind?: string }).kind !== undefined || man.kernel?.recipe !== KERNEL_RECIPE) return undefined;
  return man;
}

/** A cached kernel: rebuild the modules if their inputs changed, check them, return. */
async function finishFromCache(dir: string, spec: KernelSpec, cached: Manifest, src: ModuleSources, testModuleHash: string): Promise<KernelArtifacts> {
  // re-read under the lock: another process may have rebuilt the modules meanwhile
  const man = (await readManifest(dir)) ?? cached;
  const env = buildEnvFor(man.kernel.compiler, man.arch);
  if (!env) throw new UserError(`${man.exactSpec} was built with ${man.kernel.compiler}, for which svadiff has no build environment (kernels/profiles.ts)`);
  const want = moduleInputsHash(man.kernel, buildEnvLabel(env), testModuleHash);
  // the manifest's own build, else one kept from earlier with these inputs (a checkout switch)
  const current = man.modules.inputsHash === want && man.modules.recipe === MODULE_RECIPE && (await modulesPresent(dir, man)) ? man.modules : await keptModuleBuild(dir, man, want);
  if (current) {
    await checkVermagic(join(dir, current.uacce), man.kernel.release);
    await checkVermagic(join(dir, current.svadiffTest), man.kernel.release);
    if (current === man.modules) return artifactsOf(dir, spec.text, man);
    const full: Manifest = { ...man, modules: current };
    await writeManifest(dir, full);
    return artifactsOf(dir, spec.text, full);
  }
  info(`${man.exactSpec}: the module sources changed; rebuilding the modules`);
  const modules = await buildModules(dir, man.exactSpec, man.arch, man.kernel, src, testModuleHash);
  const full: Manifest = { ...man, modules };
  await writeManifest(dir, full);
  return artifactsOf(dir, spec.text, full);
}

/** Download and unpack the kernel packages; returns the kernel part of the manifest. */
async function fetchKernelPart(
  dir: string,
  build: KernelBuild,
  profile: SeriesProfile,
  packages: PackageRef[],
  inputsHash: string,
  apt: PrivateApt,
  arch: Arch,
  channel: readonly string[],
): Promise<Manifest['kernel']> {
  await ensureHostTools(UNPACK_TOOLS);
  // Whatever is here is incomplete or outdated (no manifest, or other inputs): start clean.
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(dir, { recursive: true });
  const debsDir = join(dir, 'debs');
  const R = build.release;
  const image = build.image;
  const source = build.source;
  if (!image || !source || !build.headers) throw new Error(`internal: ${R} is not fetchable`);
  try {
    // A cross build runs the kbuild tools (fixdep, modpost) here: the host architecture's
    // linux-kbuild of the same version (Multi-Arch: foreign), from the host's private apt state.
    const hostKbuild = ARCH_PROFILES[arch].cross !== undefined ? build.kbuild : undefined;
    const debs = await apt.download(packages.filter((p) => p !== hostKbuild), debsDir);
    if (hostKbuild) {
      const hostApt = new PrivateApt('x86_64');
      await hostApt.ensureFresh();
      for (const [name, path] of await hostApt.download([hostKbuild], join(debsDir, 'host'))) debs.set(name, path);
    }
    const deb = (p: PackageRef | undefined): string => {
      const path = p ? debs.get(p.name) : undefined;
      if (!path) throw new Error(`internal: ${p?.name ?? 'a package'} was not downloaded`);
      return path;
    };
    const mod = `usr/lib/modules/${R}`;
    const paths: PathsRel =
      profile.layout === 'boot'
        ? { image: `kernel/boot/vmlinuz-${R}`, config: `kernel/boot/config-${R}`, systemMap: `kernel/boot/System.map-${R}` }
        : { image: `kernel/${mod}/vmlinuz.unsigned`, config: `kernel/${mod}/config`, systemMap: `kernel/${mod}/System.map` };
    // Unpacking linux-source is one long xz stream (~8 s); it runs beside the rest.
    await Promise.all([
      step(`unpacking the uacce sources from ${source.name} ${source.version}`, () =>
        extractUacceSources(deb(source), build.series, join(dir, 'src', 'uacce')),
      ),
      step(`unpacking the kernel image, config, System.map, headers and kbuild of ${R}`, async () => {
        if (profile.layout === 'boot') {
          const modules = channel.map((m) => `./lib/modules/${R}/${m}`);
          await extractDebMembers(deb(image), join(dir, 'kernel'), [`./boot/vmlinuz-${R}`, `./boot/config-${R}`, `./boot/System.map-${R}`, ...modules]);
        } else {
          if (channel.length > 0) throw new Error(`internal: channel modules of the split layout (${R}) are not extracted`);
          await extractDebMembers(deb(image), join(dir, 'kernel'), [`./${mod}/vmlinuz.unsigned`]);
          await extractDebMembers(deb(build.base), join(dir, 'kernel'), [`./${mod}/config`, `./${mod}/System.map`]);
        }
        for (const p of [build.headers, build.headersCommon, build.kbuild]) await extractDeb(deb(p), join(dir, 'headers'));
      }),
    ]);
    const configText = await fs.readFile(join(dir, paths.config), 'utf8');
    const { compiler, versionText } = selectCompiler(configText, profile);
    const systemMapText = await fs.readFile(join(dir, paths.systemMap), 'utf8');
    const uacceFiles = await listFiles(join(dir, 'src', 'uacce'));
    const kernel: Manifest['kernel'] = {
      recipe: KERNEL_RECIPE,
      inputsHash,
      series: build.series,
      version: build.version,
      debianVersion: build.debianVersion,
      release: R,
      packages,
      paths,
      systemMapIsPlaceholder: systemMapText.length < 4096 && /real System\.map is in/i.test(systemMapText),
      configHash: await sha256File(join(dir, paths.config)),
      compiler,
      uacceSource: source,
      uacceSourceHash: await hashTree(join(dir, 'src', 'uacce'), uacceFiles),
      fetchedAt: new Date().toISOString(),
    };
    if (versionText !== undefined) kernel.ccVersionText = versionText;
    if (channel.length > 0) kernel.channelModules = channel.map((m) => `kernel/lib/modules/${R}/${m}`);
    if (build.compilerHint && build.compilerHint !== compiler) {
      info(`note: ${build.headers.name} depends on ${build.compilerHint}, the config says ${compiler}; using ${compiler}`);
    }
    await atomicWriteJson(join(dir, 'kernel.json'), kernel);
    return kernel;
  } finally {
    // the .debs are not needed once unpacked (about 130-300 MB per kernel)
    await fs.rm(debsDir, { recursive: true, force: true });
  }
}

/** Build uacce.ko and the test module into a fresh modules-<hash>/ directory. */
async function buildModules(dir: string, exactSpec: string, arch: Arch, kernel: Manifest['kernel'], src: ModuleSources, testModuleHash: string): Promise<Manifest['modules']> {
  const env = buildEnvFor(kernel.compiler, arch);
  if (!env) {
    throw new UserError(`${exactSpec} was built with ${kernel.ccVersionText ?? kernel.compiler}; svadiff has no build environment for ${kernel.compiler} on ${arch} (add one to COMPILER_PROFILES or ARCH_PROFILES in kernels/profiles.ts)`);
  }
  const envLabel = buildEnvLabel(env);
  const inputsHash = moduleInputsHash(kernel, envLabel, testModuleHash);
  const modDirName = `modules-${inputsHash.slice(0, 12)}`;
  const tree = join(dir, modDirName);
  await fs.rm(tree, { recursive: true, force: true });
  const log = join(dir, 'module-build-failure.log');
  const { modules, uacceKo, testDir } = await layoutModules(tree, join(dir, 'src', 'uacce'), src, log, `uacce.ko for ${kernel.release} (${kernel.compiler}, ${envLabel})`, `the test module for ${kernel.release}`);
  const ctx = { release: kernel.release, env, headersRoot: join(dir, 'headers'), spec: exactSpec, makeVars: crossMakeVars(arch) };
  let vermagic: string;
  let testKo: string;
  try {
    await compileModules(dir, kernel, env, ctx, modules, tree);
    testKo = await findTestModule(testDir);
    vermagic = await checkVermagic(uacceKo, kernel.release);
    await checkVermagic(testKo, kernel.release);
  } catch (e) {
    // a failed build leaves no modules-* directory behind (the log says why)
    await fs.rm(tree, { recursive: true, force: true });
    throw e;
  }
  await fs.rm(log, { force: true });
  info(`modules for ${kernel.release} checked: vermagic "${vermagic}"`);
  const built: Manifest['modules'] = {
    recipe: MODULE_RECIPE,
    inputsHash,
    dir: modDirName,
    uacce: relativeTo(dir, uacceKo),
    svadiffTest: relativeTo(dir, testKo),
    buildEnv: envLabel,
    testModuleHash,
    vermagic,
    builtAt: new Date().toISOString(),
  };
  await atomicWriteJson(join(tree, MODULE_BUILD_FILE), built);
  return built;
}

/** Copy the test module into tree/svadiff/ (guest/module and guest/include side by side, as it includes ../include/svt_abi.h); returns its directory. */
export async function copyTestModule(src: ModuleSources, tree: string): Promise<string> {
  const testDir = join(tree, 'svadiff', 'module');
  await fs.cp(src.moduleDir, testDir, { recursive: true, filter: (p) => !isBuildProduct(relativeTo(src.moduleDir, p)) });
  if (await exists(src.includeDir)) await fs.cp(src.includeDir, join(tree, 'svadiff', 'include'), { recursive: true });
  return testDir;
}

/**
 * Lay out uacce (from a uacce source root holding drivers/misc/uacce/uacce.c and include/...)
 * and the test module under tree, and say how to build them, uacce first (the test module links
 * against its Module.symvers).
 */
export async function layoutModules(
  tree: string,
  uacceRoot: string,
  src: ModuleSources,
  log: string,
  uacceLabel: string,
  testLabel: string,
): Promise<{ modules: ModuleBuild[]; uacceKo: string; testDir: string }> {
  const uacceDir = join(tree, 'uacce');
  // uacce: its sources, and a Kbuild that defines CONFIG_UACCE_MODULE and puts the headers of
  // the same source first on the include path (NOSTDINC_FLAGS precedes LINUXINCLUDE).
  await fs.cp(join(uacceRoot, 'drivers', 'misc', 'uacce', 'uacce.c'), join(uacceDir, 'uacce.c'));
  await fs.cp(join(uacceRoot, 'include'), join(uacceDir, 'include'), { recursive: true });
  await atomicWrite(join(uacceDir, 'Kbuild'), `obj-m := uacce.o\nccflags-y := ${UACCE_DEFINE}\nNOSTDINC_FLAGS += -I$(src)/include\n`);
  const testDir = await copyTestModule(src, tree);
  const modules: ModuleBuild[] = [
    { dir: uacceDir, vars: {}, label: uacceLabel, log },
    { dir: testDir, vars: { KBUILD_EXTRA_SYMBOLS: join(uacceDir, 'Module.symvers'), KCFLAGS: UACCE_DEFINE }, label: testLabel, log },
  ];
  return { modules, uacceKo: join(uacceDir, 'uacce.ko'), testDir };
}

function relativeTo(base: string, p: string): string {
  return p === base ? '' : p.startsWith(`${base}/`) ? p.slice(base.length + 1) : p;
}

/** Compile the modules where the kernel's compiler is: on the host or in a build root. */
export async function compileModules(dir: string, kernel: Manifest['kernel'], env: BuildEnv, ctx: BuildContext, modules: ModuleBuild[], tree: string): Promise<void> {
  if (env.kind === 'host') {
    await ensureHostTools(buildTools(env));
    const mk = join(dir, 'headers', 'usr', 'src', `linux-headers-${kernel.release}`, 'Makefile');
    const text = await fs.readFile(mk, 'utf8');
    const relocated = relocateHeadersMakefile(text, join(dir, 'headers'));
    if (relocated !== text) await atomicWrite(mk, relocated);
    await buildOnHost(ctx, modules);
    return;
  }
  if (!isRoot()) throw new UserError(needsRootMessage(ctx, env, kernel.compiler));
  await ensureHostTools(buildTools(env));
  const mirrors = await resolveDebianMirrors();
  const root = await ensureBuildRoot(env, mirrors.archive);
  await buildInChroot({ ...ctx, env }, root, modules, tree);
}

export async function findTestModule(dir: string): Promise<string> {
  const kos = (await fs.readdir(dir)).filter((n) => n.endsWith('.ko'));
  const pick = kos.find((n) => n === 'svadiff_test.ko') ?? (kos.length === 1 ? kos[0] : undefined);
  if (!pick) throw new Error(`the test module build in ${dir} produced ${kos.length === 0 ? 'no .ko' : `several modules (${kos.join(', ')}) and none is svadiff_test.ko`}`);
  return join(dir, pick);
}

export async function duBytes(dir: string): Promise<number> {
  let n = 0;
  async function walk(d: string): Promise<void> {
    let ents;
    try {
      ents = await fs.readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of ents) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) n += (await fs.stat(p)).size;
    }
  }
  await walk(dir);
  return n;
}

/** Kernels in the cache (complete entries only). */
export async function listCached(): Promise<{ dir: string; manifest: Manifest }[]> {
  return listEntries(readManifest);
}

/** The cache entries whose manifest `read` accepts, by name. */
export async function listEntries<M>(read: (dir: string) => Promise<M | undefined>): Promise<{ dir: string; manifest: M }[]> {
  let names: string[] = [];
  try {
    names = await fs.readdir(kernelsDir());
  } catch {
    return [];
  }
  const out: { dir: string; manifest: M }[] = [];
  for (const name of names.sort()) {
    if (name.endsWith('.lock') || name.endsWith('.partial')) continue;
    const dir = join(kernelsDir(), name);
    const man = await read(dir);
    if (man) out.push({ dir, manifest: man });
  }
  return out;
}

