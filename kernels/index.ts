/**
 * kernels/: Debian kernels for svadiff. Finds what the Debian registry offers (through a private
 * apt state in the cache), fetches a kernel's image, config and System.map, and builds uacce.ko
 * and the test module (guest/module) for it, cached per kernel.
 *
 *   svadiff kernels list [--available] [--arch x86_64|arm64] [--refresh] [--json]
 *   svadiff kernels fetch <kernel> [...] [--uacce-src S] [--arch ...] [--refresh] [--json]
 *   svadiff kernels build <src:debian:...|git:...> [...] [--jobs N] [--rebuild] [--json]
 */
import { parseArgs } from 'node:util';
import { UserError } from '../harness/util/errors.js';
import { ensureHostTools } from '../harness/util/host.js';
import { fmtBytes } from '../harness/util/log.js';
import { PrivateApt } from './apt.js';
import { exactSpecOf, isFetchable, type KernelBuild } from './catalog.js';
import { duBytes, fetchKernel, listCached, loadCatalog, type FetchOptions } from './fetch.js';
import { FRAGMENTS, FRAGMENT_NAMES } from './kconfig.js';
import { listBuildDirs, listSourceKernels } from './kbuild.js';
import { parseAnyKernelSpec } from './spec.js';
import { ARCH_PROFILES, buildEnvFor } from './profiles.js';
import type { Arch, KernelArtifacts } from './types.js';

export { parseKernelSpec, formatKernelSpec, type KernelSpec } from './spec.js';
export { fetchKernel, type FetchOptions, type ModuleSources } from './fetch.js';
export type { Arch, KernelArtifacts } from './types.js';

export interface AvailableVersion {
  /** "6.12.117" */
  version: string;
  /** spec that fetches exactly this build */
  exactSpec: string;
  release: string;
  debianVersion: string;
  fetchable: boolean;
  /** what the registry lacks when not fetchable */
  missing: string[];
  /** compiler named by the headers package, when there are headers */
  compiler?: string;
  /** bytes to download for a fetch */
  downloadBytes: number;
}

export interface AvailableSeries {
  series: string;
  /** false when svadiff has no profile for the series */
  supported: boolean;
  /** newest fetchable version (what debian:<series> fetches) */
  newest?: string;
  versions: AvailableVersion[];
}

/** The Debian kernels the registry has for an architecture, per series, newest first. */
export async function listAvailable(opts: { arch?: Arch; refresh?: boolean } = {}): Promise<AvailableSeries[]> {
  const arch = opts.arch ?? 'x86_64';
  await ensureHostTools([{ cmd: 'apt-get', pkg: 'apt', why: 'looking up Debian kernel packages' }]);
  const apt = new PrivateApt(arch);
  await apt.ensureFresh({ refresh: opts.refresh });
  const catalog = await loadCatalog(apt, ARCH_PROFILES[arch].flavour);
  return catalog.map((sc) => {
    const versions = sc.versions.map((b: KernelBuild): AvailableVersion => {
      const v: AvailableVersion = {
        version: b.version,
        exactSpec: exactSpecOf(sc, b, arch),
        release: b.release,
        debianVersion: b.debianVersion,
        fetchable: isFetchable(b),
        missing: b.missing,
        downloadBytes: [b.image, b.base, b.headers, b.headersCommon, b.kbuild, b.source].reduce((s, p) => s + (p?.size ?? 0), 0),
      };
      if (b.compilerHint) v.compiler = b.compilerHint;
      return v;
    });
    const s: AvailableSeries = { series: sc.series, supported: sc.profile !== undefined, versions };
    const newest = versions.find((v) => v.fetchable);
    if (newest) s.newest = newest.version;
    return s;
  });
}

/** "x86_64"/"amd64" and "arm64"/"aarch64" */
export function parseArch(s: string | undefined): Arch {
  if (s === undefined) return 'x86_64';
  const a = s.trim().toLowerCase();
  if (a === 'x86_64' || a === 'amd64') return 'x86_64';
  if (a === 'arm64' || a === 'aarch64') return 'arm64';
  throw new UserError(`unknown architecture ${JSON.stringify(s.slice(0, 40))}: use --arch x86_64 or --arch arm64`);
}

const COMMON_OPTIONS = { arch: { type: 'string' }, refresh: { type: 'boolean' }, json: { type: 'boolean' } } as const;

function parse(args: string[], allowPositionals: boolean) {
  try {
    return parseArgs({
      args,
      allowPositionals,
      strict: true,
      options: { ...COMMON_OPTIONS, available: { type: 'boolean' }, 'uacce-src': { type: 'string' }, jobs: { type: 'string' }, rebuild: { type: 'boolean' } },
    });
  } catch (e) {
    throw new UserError(
      `${((e as Error).message.split('\n')[0] ?? '').replace(/\. .*$/, '')}; usage: svadiff kernels list [--available] | fetch <kernel> [--uacce-src S] | build <src:debian:...|git:...> [--jobs N] [--rebuild]`,
    );
  }
}

function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd()).join('\n');
}

/** `svadiff kernels list [--available]`: cached kernels, or what the registry offers. */
export async function cmdKernelsList(args: string[]): Promise<void> {
  const { values } = parse(args, false);
  const arch = parseArch(values.arch);
  if (values.available) {
    const series = await listAvailable({ arch, refresh: values.refresh ?? false });
    if (values.json) {
      process.stdout.write(JSON.stringify({ arch, series }, null, 2) + '\n');
      return;
    }
    const out: string[] = [];
    for (const s of series) {
      const fetchable = s.versions.filter((v) => v.fetchable).length;
      const head = s.supported
        ? `Debian ${s.series} (${arch}): ${fetchable} of ${s.versions.length} versions fetchable${s.newest ? `; debian:${s.series} = ${s.newest}` : ''}`
        : `Debian ${s.series} (${arch}): not supported by svadiff (no profile in kernels/profiles.ts)`;
      out.push(head);
      const rows = s.versions.map((v) => [
        `  ${v.exactSpec}`,
        v.release,
        v.debianVersion,
        v.fetchable ? `fetchable (${fmtBytes(v.downloadBytes)}, ${v.compiler ?? '?'}${v.compiler && !buildEnvFor(v.compiler, arch) ? ': no build environment' : ''})` : `missing ${v.missing.join(', ')}`,
      ]);
      out.push(table(rows), '');
    }
    process.stdout.write(out.join('\n'));
    return;
  }
  const cached = await listCached();
  const built = await listSourceKernels();
  const buildDirs = await listBuildDirs();
  if (values.json) {
    const out = { debian: cached.map((c) => ({ dir: c.dir, ...c.manifest })), built: built.map((c) => ({ dir: c.dir, ...c.manifest })), buildDirs };
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return;
  }
  if (cached.length === 0 && built.length === 0) {
    process.stdout.write('no kernels in the cache; see what can be fetched with: svadiff kernels list --available\n');
    return;
  }
  const rows: string[][] = [];
  for (const c of cached) {
    const m = c.manifest;
    rows.push([m.exactSpec, m.arch, m.kernel.release, m.kernel.debianVersion, m.kernel.compiler, m.modules.buildEnv, fmtBytes(await duBytes(c.dir))]);
  }
  for (const c of built) {
    const m = c.manifest;
    rows.push([m.exactSpec, m.arch, m.kernel.release, m.kernel.source.label, `last build ${Math.round(m.kernel.buildMs / 1000)} s`, `uacce ${m.kernel.uacce}`, fmtBytes(await duBytes(c.dir))]);
  }
  process.stdout.write(table(rows) + '\n');
  const unfinished = buildDirs.filter((b) => b.state?.status !== 'complete');
  if (unfinished.length > 0) {
    process.stdout.write(`\nbuild directories not complete (a build running now, or one that failed or was interrupted; the next build there continues it):\n`);
    for (const b of unfinished) process.stdout.write(`  ${b.dir}: ${b.state?.status ?? 'no state'}\n`);
  }
}

function describe(k: KernelArtifacts): string {
  return [
    `${k.exactSpec} (${k.arch}): ${k.release}, ${k.built ? k.built.source : `Debian ${k.debianVersion}`}`,
    `  image       ${k.image}`,
    `  config      ${k.config} (sha256 ${k.configHash.slice(0, 12)}${k.built ? `; base${k.built.fragments.map((f) => ` + ${f}`).join('')}` : ''})`,
    `  System.map  ${k.systemMap}`,
    `  compiler    ${k.compiler}`,
    k.uacce?.builtin ? `  uacce       built in` : `  uacce.ko    ${k.modules.uacce}`,
    `  uacce.c     ${k.uacce?.text.replace(/^uacce\.c: /, '') ?? `linux-source ${k.uacceSourceVersion}`}`,
    `  test module ${k.modules.svadiffTest}`,
    ...(k.built ? [`  build log   ${k.built.buildLog}`] : []),
  ].join('\n');
}

function fetchOptions(values: ReturnType<typeof parse>['values']): FetchOptions {
  const opts: FetchOptions = { refresh: values.refresh ?? false };
  // no --arch: each spec's own (debian:6.12/arm64), x86_64 when it names none
  if (values.arch !== undefined) opts.arch = parseArch(values.arch);
  if (values['uacce-src'] !== undefined) opts.uacceSrc = values['uacce-src'];
  if (values.jobs !== undefined) {
    const n = Number(values.jobs);
    if (!Number.isInteger(n) || n < 1 || n > 256) throw new UserError(`--jobs must be an integer in 1..256, got "${values.jobs}"`);
    opts.jobs = n;
  }
  if (values.rebuild) opts.rebuild = true;
  return opts;
}

/** `svadiff kernels fetch <spec>...`: fetch kernels and build their modules; prints where they are. */
export async function cmdKernelsFetch(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, true);
  if (values.available) throw new UserError('--available belongs to svadiff kernels list');
  if (positionals.length === 0) throw new UserError('which kernel? e.g. svadiff kernels fetch debian:6.12 (see svadiff kernels list --available)');
  const opts = fetchOptions(values);
  const results: KernelArtifacts[] = [];
  for (const spec of positionals) results.push(await fetchKernel(spec, opts));
  if (values.json) process.stdout.write(JSON.stringify(results.length === 1 ? results[0] : results, null, 2) + '\n');
  else process.stdout.write(results.map(describe).join('\n') + '\n');
}

/** The fragments, one line each (for help and error messages). */
export function fragmentHelp(): string {
  return FRAGMENT_NAMES.map((n) => `  +${n.padEnd(16)} ${FRAGMENTS[n]}`).join('\n');
}

/**
 * `svadiff kernels build <spec>...`: build kernels from source (src:debian:<series|version>,
 * git:<tree>[@rev]) with config fragments; prints where they are.
 */
export async function cmdKernelsBuild(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, true);
  if (values.available) throw new UserError('--available belongs to svadiff kernels list');
  if (positionals.length === 0) {
    throw new UserError(`which kernel? e.g. svadiff kernels build src:debian:7.2+kasan+lockdep or git:~/linux@v6.13+iommufd; fragments: ${FRAGMENT_NAMES.join(', ')}`);
  }
  for (const p of positionals) {
    const s = parseAnyKernelSpec(p, FRAGMENT_NAMES, { home: process.env.HOME ?? '' });
    if (s.kind === 'debian') throw new UserError(`${p} is a Debian binary kernel: get it with svadiff kernels fetch ${p}, or build its source with src:${p}`);
  }
  const opts = fetchOptions(values);
  const results: KernelArtifacts[] = [];
  for (const spec of positionals) results.push(await fetchKernel(spec, opts));
  if (values.json) process.stdout.write(JSON.stringify(results.length === 1 ? results[0] : results, null, 2) + '\n');
  else process.stdout.write(results.map(describe).join('\n') + '\n');
}
