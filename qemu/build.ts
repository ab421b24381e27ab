/**
 * Building the SVA machine's QEMU: Debian's QEMU source package (through the private source
 * apt state), svadiff's patch series and files applied, configured for one target, built,
 * and cached under cacheDir()/qemu/<debian version>-<inputs hash>/ with its build log. The
 * recipe (what, which options, which host packages) is qemu/recipe.ts; the patches and the
 * endpoint model are real files under qemu/patches and qemu/files.
 */
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative } from 'node:path';
import { PrivateApt } from '../kernels/apt.js';
import { buildErrorLines, extractDeb, hashTree, listFiles } from '../kernels/build.js';
import { parseAptShow } from '../kernels/catalog.js';
import { compareDebVersions, parseDebVersion } from '../kernels/debversion.js';
import { withLock } from '../kernels/lock.js';
import { UserError } from '../harness/util/errors.js';
import { atomicWrite, atomicWriteJson, exists, readJsonIfExists, sha256 } from '../harness/util/fsx.js';
import { ensureHostPackages, ensureHostTools } from '../harness/util/host.js';
import { StatusLine, fmtBytes, fmtDuration, info } from '../harness/util/log.js';
import { cacheDir, projectRoot } from '../harness/util/paths.js';
import { execaTiedToParent } from '../harness/util/proc.js';
import { safeLine } from '../harness/util/sanitize.js';
import {
  BUILD_PACKAGES,
  BUILD_PYTHON,
  BUILD_TOOLS,
  CONFIGURE_ARGS,
  FIRMWARE_DIRS,
  FIRMWARE_PACKAGES,
  MESON,
  QEMU_BINARY,
  QEMU_RECIPE,
  QEMU_SOURCE,
} from './recipe.js';

/** A built QEMU, ready to run. */
export interface QemuBuild {
  /** absolute path of qemu-system-x86_64 */
  binary: string;
  /** Debian version of the source package, e.g. "1:10.2.2+ds-1" */
  sourceVersion: string;
  /** hash of the patches, files and recipe (part of the cache key) */
  inputsHash: string;
  dir: string;
  /** wall time of the build that made it */
  buildMs: number;
}

interface QemuManifest {
  format: 'svadiff-qemu';
  recipe: number;
  sourceVersion: string;
  inputsHash: string;
  meson: string;
  binary: string;
  builtAt: string;
  buildMs: number;
}

export function qemuCacheDir(): string {
  return join(cacheDir(), 'qemu');
}

// ---------------------------------------------------------------------------------------------
// pure helpers (tested on recorded apt and patch output)

export interface SourceVersion {
  version: string;
  /** bytes of the files of the source package */
  size: number;
}

/** Versions of a source package from `apt-cache showsrc`, newest first, duplicates dropped. */
export function parseShowSrc(text: string, name: string): SourceVersion[] {
  const out = new Map<string, SourceVersion>();
  for (const para of text.split(/\n[ \t]*\n/)) {
    const pkg = /^Package: (.+)$/m.exec(para)?.[1]?.trim();
    const version = /^Version: (.+)$/m.exec(para)?.[1]?.trim();
    if (pkg !== name || version === undefined || out.has(version)) continue;
    const sums = /^Checksums-Sha256:\n((?:[ \t].*\n?)*)/m.exec(para)?.[1] ?? '';
    let size = 0;
    for (const line of sums.split('\n')) {
      const m = /^\s*[0-9a-f]{64} (\d+) \S+$/.exec(line);
      if (m) size += Number(m[1]);
    }
    out.set(version, { version, size });
  }
  return [...out.values()].sort((a, b) => compareDebVersions(b.version, a.version));
}

/** The newest version of the upstream series ("10.2" takes 10.2.x), or undefined. */
export function selectSourceVersion(versions: SourceVersion[], series: string): SourceVersion | undefined {
  return versions.find((v) => parseDebVersion(v.version).upstream.startsWith(`${series}.`));
}

/** The meson to use: >= minVersion, preferring builds for the host's release (bpo tag), oldest first. */
export function selectMeson(showText: string, minVersion: string, preferTag: string): { version: string; size: number } | undefined {
  const ok = parseAptShow(showText)
    .filter((r) => r.package === MESON.name && (r.architecture === 'all' || r.architecture === '') && compareDebVersions(r.version, minVersion) >= 0)
    .sort((a, b) => compareDebVersions(a.version, b.version));
  const pick = ok.find((r) => r.version.includes(preferTag)) ?? ok[0];
  return pick ? { version: pick.version, size: pick.size } : undefined;
}

export interface PatchFailure {
  file?: string;
  hunks: { hunk: number; line?: number }[];
  /** the first line of patch's own complaint when it names no hunk */
  message?: string;
}

/** What `patch --dry-run` said about a patch that does not apply. */
export function parsePatchFailure(output: string): PatchFailure[] {
  const out: PatchFailure[] = [];
  let current: PatchFailure | undefined;
  // the file a "can't find file to patch" is about: patch quotes the header after its complaint
  let quotedFile: string | undefined;
  for (const raw of output.split('\n')) {
    const line = raw.trim();
    const file = /^(?:checking|patching) file '?([^']+?)'?$/.exec(line)?.[1];
    if (file !== undefined) {
      current = { file, hunks: [] };
      continue;
    }
    const quoted = /^\|\+\+\+ (?:b\/)?(\S+)/.exec(line)?.[1];
    if (quoted !== undefined) quotedFile = quoted;
    const h = /^Hunk #(\d+) FAILED(?: at (\d+))?/.exec(line);
    if (h) {
      if (!current) current = { hunks: [] };
      if (!out.includes(current)) out.push(current);
      current.hunks.push({ hunk: Number(h[1]), ...(h[2] !== undefined ? { line: Number(h[2]) } : {}) });
      continue;
    }
    if (/^No file to patch/.test(line)) {
      out.push({ ...(quotedFile !== undefined ? { file: quotedFile } : {}), hunks: [], message: 'no such file in the source' });
      quotedFile = undefined;
    } else if (/malformed patch|Only garbage|Reversed \(or previously applied\)/i.test(line)) {
      out.push({ ...(current?.file !== undefined ? { file: current.file } : {}), hunks: [], message: line });
    }
  }
  return out;
}

export function describePatchFailure(patch: string, version: string, failures: PatchFailure[], fallback: string): string {
  const what = failures.length
    ? failures
        .map((f) =>
          f.hunks.length
            ? `${f.file ?? '?'} hunk${f.hunks.length > 1 ? 's' : ''} ${f.hunks.map((h) => `#${h.hunk}${h.line !== undefined ? ` (at line ${h.line})` : ''}`).join(', ')}`
            : `${f.file ? `${f.file}: ` : ''}${f.message ?? 'rejected'}`,
        )
        .join('; ')
    : safeLine(fallback, 200);
  return `the svadiff patch ${patch} does not apply to qemu ${version}: ${what}; refresh qemu/patches/ for this version (or build the series qemu/recipe.ts names)`;
}

// ---------------------------------------------------------------------------------------------
// inputs

interface Inputs {
  hash: string;
  /** absolute path -> path inside the QEMU tree, for the files copied in */
  copies: { from: string; to: string }[];
  patches: string[];
}

/** The patch series, the files copied into the tree, and the recipe: what the build depends on. */
export async function qemuInputs(): Promise<Inputs> {
  const root = join(projectRoot(), 'qemu');
  const seriesText = await fs.readFile(join(root, 'patches', 'series'), 'utf8');
  const patches = seriesText
    .split('\n')
    .map((l) => l.replace(/#.*$/, '').trim())
    .filter((l) => l.length > 0)
    .map((l) => join(root, 'patches', l));
  const filesDir = join(root, 'files');
  const files = await listFiles(filesDir);
  const copies = files.map((f) => ({ from: join(filesDir, f), to: f }));
  // the endpoint includes the contract headers; they go next to it
  for (const h of ['svt_abi.h', 'svt_endpoint.h']) copies.push({ from: join(projectRoot(), 'guest', 'include', h), to: join('hw', 'misc', h) });
  const parts = [
    `recipe ${QEMU_RECIPE}`,
    JSON.stringify({ source: QEMU_SOURCE, configure: CONFIGURE_ARGS, meson: MESON, python: BUILD_PYTHON }),
    seriesText,
    await hashTree(join(root, 'patches'), patches.map((p) => relative(join(root, 'patches'), p))),
  ];
  for (const c of copies) {
    const text = await fs.readFile(c.from, 'utf8');
    parts.push(`${c.to}\0${sha256(/\.[ch]$/.test(c.to) ? cTokens(text) : text)}`);
  }
  return { hash: sha256(parts.join('\n')), copies, patches };
}

/**
 * C source without comments and with whitespace runs collapsed: what the compiler sees, so
 * that editing a comment of the device model or of svt_abi.h does not rebuild QEMU.
 */
export function cTokens(src: string): string {
  let out = '';
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < src.length && src[j] !== c) j += src[j] === '\\' ? 2 : 1;
      out += src.slice(i, j + 1);
      i = j + 1;
    } else if (src.startsWith('/*', i)) {
      const end = src.indexOf('*/', i + 2);
      i = end < 0 ? src.length : end + 2;
      out += ' ';
    } else if (src.startsWith('//', i)) {
      const end = src.indexOf('\n', i);
      i = end < 0 ? src.length : end;
    } else {
      out += c;
      i++;
    }
  }
  return out.replace(/[ \t]+/g, ' ').replace(/ *\n[\s]*/g, '\n').trim();
}

function entryName(version: string, hash: string): string {
  return `${version.replace(/^\d+:/, '').replace(/[^A-Za-z0-9.+~-]/g, '_')}-${hash.slice(0, 12)}`;
}

async function readBuild(dir: string, inputsHash: string): Promise<QemuBuild | undefined> {
  const man = await readJsonIfExists<QemuManifest>(join(dir, 'manifest.json')).catch(() => undefined);
  if (!man || man.format !== 'svadiff-qemu' || man.recipe !== QEMU_RECIPE || man.inputsHash !== inputsHash) return undefined;
  const binary = join(dir, man.binary);
  if (!(await exists(binary))) return undefined;
  return { binary, sourceVersion: man.sourceVersion, inputsHash, dir, buildMs: man.buildMs };
}

/** A complete build of the current inputs in the cache, of any source version (newest first). */
export async function cachedQemu(): Promise<QemuBuild | undefined> {
  const { hash } = await qemuInputs();
  let names: string[] = [];
  try {
    names = await fs.readdir(qemuCacheDir());
  } catch {
    return undefined;
  }
  const found: QemuBuild[] = [];
  for (const n of names.filter((x) => x.endsWith(`-${hash.slice(0, 12)}`))) {
    const b = await readBuild(join(qemuCacheDir(), n), hash);
    if (b) found.push(b);
  }
  return found.sort((a, b) => compareDebVersions(b.sourceVersion, a.sourceVersion))[0];
}

// ---------------------------------------------------------------------------------------------
// the build

export interface QemuBuildOptions {
  /** build even when the cache has this version and these inputs */
  force?: boolean;
  /** refresh the package lists first */
  refresh?: boolean;
}

/**
 * The SVA machine's QEMU: the cached build of the current inputs if there is one (no network),
 * else a build of the newest Debian source of the recipe's series.
 */
export async function ensureSvaQemu(): Promise<QemuBuild> {
  const cached = await cachedQemu();
  if (cached) return cached;
  info('the SVA machine needs QEMU built from Debian source with the svadiff patches (once; `svadiff qemu build` does it ahead)');
  return buildQemu();
}

/** Find the newest source of the series, and build it unless the cache has it. */
export async function buildQemu(opts: QemuBuildOptions = {}): Promise<QemuBuild> {
  const t0 = Date.now();
  await ensureHostTools(BUILD_TOOLS);
  await ensureHostPackages([...BUILD_PACKAGES, ...FIRMWARE_PACKAGES]);
  const inputs = await qemuInputs();
  const apt = new PrivateApt('x86_64', { kind: 'source', suites: QEMU_SOURCE.suites });
  await apt.ensureFresh({ refresh: opts.refresh ?? false });
  const versions = parseShowSrc(await apt.showSource(QEMU_SOURCE.name), QEMU_SOURCE.name);
  const src = selectSourceVersion(versions, QEMU_SOURCE.upstreamSeries);
  if (!src) {
    throw new UserError(
      `Debian's archive has no ${QEMU_SOURCE.name} ${QEMU_SOURCE.upstreamSeries}.x source in ${QEMU_SOURCE.suites.join(', ')} (it has ${versions.map((v) => v.version).join(', ') || 'none'}); the svadiff patches are made for ${QEMU_SOURCE.upstreamSeries}: port qemu/patches and set upstreamSeries in qemu/recipe.ts`,
    );
  }
  const dir = join(qemuCacheDir(), entryName(src.version, inputs.hash));
  return withLock(`${dir}.lock`, { what: `building QEMU ${src.version}` }, async () => {
    if (!opts.force) {
      const have = await readBuild(dir, inputs.hash);
      if (have) {
        info(`QEMU ${src.version} with the current svadiff patches is built already: ${have.binary}`);
        return have;
      }
    }
    return buildInto(dir, src, inputs, apt, t0);
  });
}

/** One step of the build: its command's output goes to the log; a failure names the step. */
class BuildLog {
  private text = '';
  constructor(readonly path: string) {}

  add(s: string): void {
    this.text += s.endsWith('\n') ? s : `${s}\n`;
  }

  async save(): Promise<void> {
    await atomicWrite(this.path, this.text);
  }

  async saveTo(path: string): Promise<void> {
    await atomicWrite(path, this.text);
  }

  async run(stepName: string, cmd: string, args: string[], opts: { cwd: string; env: Record<string, string>; onLine?: (l: string) => void }): Promise<void> {
    this.add(`\n==== ${stepName}\n$ ${[cmd, ...args].join(' ')}`);
    const proc = execaTiedToParent(cmd, args, { cwd: opts.cwd, env: opts.env, extendEnv: false, reject: false, all: true, buffer: { all: true } });
    let partial = '';
    proc.all?.setEncoding('utf8');
    proc.all?.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const l of parts) opts.onLine?.(l);
    });
    const r = await proc;
    const out = String(r.all ?? '');
    this.add(out);
    if (r.exitCode !== 0) {
      await this.save();
      const why = buildErrorLines(out, 1)[0] ?? `exit ${r.exitCode}`;
      throw new UserError(`building QEMU failed at step "${stepName}" (${cmd} exit ${r.exitCode}): ${why}; full log: ${this.path}`, 1);
    }
  }
}

async function buildInto(dir: string, src: SourceVersion, inputs: Inputs, apt: PrivateApt, t0: number): Promise<QemuBuild> {
  const work = `${dir}.build`;
  const log = new BuildLog(`${dir}.build.log`);
  await fs.rm(work, { recursive: true, force: true });
  await fs.rm(dir, { recursive: true, force: true });
  await fs.mkdir(work, { recursive: true });
  const env: Record<string, string> = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    LC_ALL: 'C.UTF-8',
    HOME: work,
  };
  const srcDir = join(work, 'src');
  const buildDir = join(work, 'build');
  const stepInfo = (n: number, what: string) => info(`QEMU build step ${n}/6: ${what}`);
  try {
    stepInfo(1, `downloading the source of ${QEMU_SOURCE.name} ${src.version} (${fmtBytes(src.size)})`);
    const dsc = await apt.downloadSource(QEMU_SOURCE.name, src.version, join(work, 'dl'));

    stepInfo(2, 'unpacking it (dpkg-source, with Debian\'s patches)');
    // apt-get checked the files against the signed Sources lists; the .dsc signature needs a keyring dpkg-source does not have here
    await log.run('unpack', 'dpkg-source', ['--no-check', '-x', dsc, srcDir], { cwd: work, env });
    await fs.rm(join(work, 'dl'), { recursive: true, force: true });

    stepInfo(3, `applying the svadiff patches (${inputs.patches.map((p) => relative(join(projectRoot(), 'qemu', 'patches'), p)).join(', ')}) and files`);
    for (const p of inputs.patches) {
      const name = relative(join(projectRoot(), 'qemu', 'patches'), p);
      const dry = await execa('patch', ['-p1', '--forward', '--batch', '--dry-run', '-i', p], { cwd: srcDir, reject: false, all: true });
      log.add(`\n==== patch ${name} (dry run)\n${String(dry.all ?? '')}`);
      if (dry.exitCode !== 0) {
        await log.save();
        throw new UserError(`${describePatchFailure(name, src.version, parsePatchFailure(String(dry.all ?? '')), String(dry.all ?? ''))}; full log: ${log.path}`, 1);
      }
      await log.run(`patch ${name}`, 'patch', ['-p1', '--forward', '--batch', '-i', p], { cwd: srcDir, env });
    }
    for (const c of inputs.copies) {
      const to = join(srcDir, c.to);
      if (await exists(to)) throw new UserError(`qemu/files/${c.to} would replace a file of the QEMU source ${src.version}; change it with a patch instead`);
      await fs.mkdir(join(to, '..'), { recursive: true });
      await fs.copyFile(c.from, to);
    }

    stepInfo(4, `getting meson >= ${MESON.minVersion} (bookworm has 1.0)`);
    const meson = await ensureMeson();
    env.PYTHONPATH = meson.pythonPath;

    stepInfo(5, 'configuring');
    await fs.mkdir(buildDir, { recursive: true });
    await log.run('configure', 'sh', [join(srcDir, 'configure'), `--python=${BUILD_PYTHON}`, `--prefix=${join(work, 'install')}`, ...CONFIGURE_ARGS], { cwd: buildDir, env });

    const jobs = Math.max(1, availableParallelism());
    stepInfo(6, `compiling ${QEMU_BINARY} (ninja -j${jobs}; about 1000 steps, minutes on 2 cores)`);
    const status = new StatusLine(15_000);
    const tc = Date.now();
    try {
      await log.run('compile', 'ninja', [`-j${jobs}`, QEMU_BINARY], {
        cwd: buildDir,
        env,
        onLine: (l) => {
          const m = /^\[(\d+)\/(\d+)\]/.exec(l);
          if (m) status.update(`compiling QEMU: ${m[1]}/${m[2]} steps (${fmtDuration(Date.now() - tc)})`);
        },
      });
    } finally {
      status.done();
    }

    const binDir = join(dir, 'bin');
    await fs.mkdir(binDir, { recursive: true });
    await fs.copyFile(join(buildDir, QEMU_BINARY), join(binDir, QEMU_BINARY));
    await fs.chmod(join(binDir, QEMU_BINARY), 0o755);
    await checkBuilt(join(binDir, QEMU_BINARY), log);
    const buildMs = Date.now() - t0;
    log.add(`\n==== done in ${fmtDuration(buildMs)}`);
    await log.saveTo(join(dir, 'build.log'));
    await fs.rm(log.path, { force: true });
    const man: QemuManifest = {
      format: 'svadiff-qemu',
      recipe: QEMU_RECIPE,
      sourceVersion: src.version,
      inputsHash: inputs.hash,
      meson: meson.version,
      binary: join('bin', QEMU_BINARY),
      builtAt: new Date().toISOString(),
      buildMs,
    };
    await atomicWriteJson(join(dir, 'manifest.json'), man);
    info(`built QEMU ${src.version} with the svadiff patches in ${fmtDuration(buildMs)}: ${join(binDir, QEMU_BINARY)}`);
    return { binary: join(binDir, QEMU_BINARY), sourceVersion: src.version, inputsHash: inputs.hash, dir, buildMs };
  } catch (e) {
    await log.save().catch(() => undefined);
    await fs.rm(dir, { recursive: true, force: true });
    throw e;
  } finally {
    // the source and objects are about 1 GB: only the binary and the log are kept
    await fs.rm(work, { recursive: true, force: true });
  }
}

/** The binary runs and has what the SVA machine needs. */
async function checkBuilt(binary: string, log: BuildLog): Promise<void> {
  const r = await execa(binary, ['-device', 'help'], { reject: false, all: true, timeout: 30_000 });
  const out = String(r.all ?? '');
  log.add(`\n==== check\n$ ${binary} -device help\n${out}`);
  for (const dev of ['svadiff-sva', 'intel-iommu', 'pcie-root-port']) {
    if (!new RegExp(`name "${dev}"`).test(out)) {
      await log.save();
      throw new UserError(`the QEMU just built has no ${dev} device (${binary} -device help); full log: ${log.path}`, 1);
    }
  }
}

/** meson from the private binary apt state, unpacked once into the cache. */
async function ensureMeson(): Promise<{ version: string; pythonPath: string }> {
  const apt = new PrivateApt('x86_64');
  await apt.ensureFresh();
  const pick = selectMeson(await apt.show([MESON.name]), MESON.minVersion, MESON.preferVersionTag);
  if (!pick) throw new UserError(`Debian's archive (bookworm-backports and later) has no ${MESON.name} >= ${MESON.minVersion}; QEMU ${QEMU_SOURCE.upstreamSeries} cannot be configured`);
  const dir = join(qemuCacheDir(), 'tools', `meson-${pick.version.replace(/[^A-Za-z0-9.+~-]/g, '_')}`);
  const pythonPath = join(dir, 'usr', 'lib', 'python3', 'dist-packages');
  if (await exists(join(pythonPath, 'mesonbuild'))) return { version: pick.version, pythonPath };
  await withLock(`${dir}.lock`, { what: `unpacking meson ${pick.version}` }, async () => {
    if (await exists(join(pythonPath, 'mesonbuild'))) return;
    const dl = `${dir}.dl`;
    await fs.rm(dl, { recursive: true, force: true });
    const debs = await apt.download([{ name: MESON.name, version: pick.version, size: pick.size }], dl);
    const deb = debs.get(MESON.name);
    if (!deb) throw new Error(`internal: ${MESON.name} was not downloaded`);
    const tmp = `${dir}.partial`;
    await fs.rm(tmp, { recursive: true, force: true });
    await extractDeb(deb, tmp);
    await fs.rm(dir, { recursive: true, force: true });
    await fs.rename(tmp, dir);
    await fs.rm(dl, { recursive: true, force: true });
  });
  return { version: pick.version, pythonPath };
}

export { FIRMWARE_DIRS };
