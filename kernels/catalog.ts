/**
 * What kernels the Debian registry offers, computed from `apt-cache show` records of the private
 * apt state. Pure: no I/O here, so that the resolution can be tested on recorded apt output.
 *
 * A "build" is one kernel release (uname -r, e.g. 6.12.117+deb12-amd64) at one Debian version.
 * It is fetchable when the registry still has everything svadiff needs for it: the image
 * (and for the split layout the base package with config and System.map), the headers, their
 * -common and kbuild dependencies, and linux-source-<series> of the same upstream version
 * (uacce is not enabled in Debian's config, so it is built from source).
 */
import { UserError } from '../harness/util/errors.js';
import {
  compareDebVersions,
  compareKernelVersions,
  satisfies,
  seriesOf,
  upstreamKernelVersion,
} from './debversion.js';
import { seriesProfile, type SeriesProfile } from './profiles.js';
import { formatKernelSpec, type KernelSpec } from './spec.js';
import type { Arch } from './types.js';

export interface PackageRecord {
  package: string;
  version: string;
  architecture: string;
  /** download size in bytes */
  size: number;
  depends: string;
  sha256?: string;
}

export interface PackageRef {
  name: string;
  version: string;
  size: number;
  sha256?: string;
}

export interface KernelBuild {
  series: string;
  /** upstream version "6.12.117" */
  version: string;
  debianVersion: string;
  /** uname -r, e.g. "6.12.117+deb12-amd64" */
  release: string;
  /** "+deb12" for releases named X.Y.Z+debNN, "" otherwise */
  abiTag: string;
  image?: PackageRef;
  /** split layout only: the package with config and System.map */
  base?: PackageRef;
  headers?: PackageRef;
  headersCommon?: PackageRef;
  kbuild?: PackageRef;
  source?: PackageRef;
  /** compiler named in the headers' Depends (gcc-12, gcc-16-for-host, linux-compiler-gcc-12-x86) */
  compilerHint?: string;
  /** what the registry lacks for this build; empty when it is fetchable */
  missing: string[];
}

export interface SeriesCatalog {
  series: string;
  profile?: SeriesProfile;
  /** one entry per upstream version, newest first: the chosen build of that version */
  versions: KernelBuild[];
  /** every build found, for exact selection by ABI tag */
  builds: KernelBuild[];
}

/** Parse the output of `apt-cache show` (RFC 822 style paragraphs). Duplicates are dropped. */
export function parseAptShow(text: string): PackageRecord[] {
  const out: PackageRecord[] = [];
  const seen = new Set<string>();
  for (const para of text.split(/\n[ \t]*\n/)) {
    const fields = new Map<string, string>();
    let current: string | undefined;
    for (const line of para.split('\n')) {
      if (/^[ \t]/.test(line)) {
        if (current !== undefined) fields.set(current, `${fields.get(current) ?? ''}\n${line.trim()}`);
        continue;
      }
      const m = /^([A-Za-z0-9-]+):[ \t]?(.*)$/.exec(line);
      if (!m || m[1] === undefined) continue;
      current = m[1].toLowerCase();
      fields.set(current, m[2] ?? '');
    }
    const pkg = fields.get('package');
    const version = fields.get('version');
    if (!pkg || !version) continue;
    const key = `${pkg}\0${version}\0${fields.get('architecture') ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const size = Number(fields.get('size') ?? '0');
    const rec: PackageRecord = {
      package: pkg,
      version,
      architecture: fields.get('architecture') ?? '',
      size: Number.isFinite(size) ? size : 0,
      depends: fields.get('depends') ?? '',
    };
    const sha = fields.get('sha256');
    if (sha && /^[0-9a-f]{64}$/.test(sha)) rec.sha256 = sha;
    out.push(rec);
  }
  return out;
}

export interface Relation {
  name: string;
  op?: string;
  version?: string;
}

/** Parse a Depends field into and-groups of or-alternatives. */
export function parseDepends(field: string): Relation[][] {
  const groups: Relation[][] = [];
  for (const group of field.split(',')) {
    const alts: Relation[] = [];
    for (const alt of group.split('|')) {
      const m = /^\s*([a-z0-9][a-z0-9+.-]*)(?::[a-z0-9-]+)?\s*(?:\(\s*(<<|<=|=|>=|>>|<|>)\s*([^)\s]+)\s*\))?/.exec(alt);
      if (!m || m[1] === undefined) continue;
      const rel: Relation = { name: m[1] };
      if (m[2] !== undefined && m[3] !== undefined) {
        rel.op = m[2];
        rel.version = m[3];
      }
      alts.push(rel);
    }
    if (alts.length > 0) groups.push(alts);
  }
  return groups;
}

/**
 * Which package names `list --available` and fetch need from apt: every kernel image, base,
 * headers, kbuild and source package of the flavour. Applied to `apt-cache pkgnames linux-`.
 */
export function relevantPackageName(name: string, flavour: string): boolean {
  const f = escapeRe(flavour);
  return (
    new RegExp(`^linux-(image|headers|binary-unsigned|base)-\\d+\\.\\d+\\.\\d+(-\\d+|\\+deb\\d+(\\.\\d+)*)-${f}(-unsigned)?$`).test(name) ||
    /^linux-headers-\d+\.\d+\.\d+(-\d+|\+deb\d+(\.\d+)*)-common$/.test(name) ||
    /^linux-kbuild-\d+\.\d+(\.\d+\+deb\d+(\.\d+)*)?$/.test(name) ||
    /^linux-source-\d+\.\d+$/.test(name)
  );
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function ref(r: PackageRecord): PackageRef {
  const p: PackageRef = { name: r.package, version: r.version, size: r.size };
  if (r.sha256) p.sha256 = r.sha256;
  return p;
}

/** The ABI tag of a release name: "+deb12" of "6.12.117+deb12-amd64", "" of "6.1.0-56-amd64". */
export function abiTagOfRelease(release: string): string {
  return /(\+deb\d+)(?:\.\d+)*-/.exec(release)?.[1] ?? '';
}

function compilerFromDepends(groups: Relation[][]): string | undefined {
  for (const g of groups) {
    for (const r of g) {
      const m = /^gcc-(\d+)(?:-for-host)?$/.exec(r.name) ?? /^linux-compiler-gcc-(\d+)-/.exec(r.name);
      if (m) return `gcc-${m[1]}`;
    }
  }
  return undefined;
}

/**
 * Index the records into series and builds for one flavour ("amd64"). Series without a profile
 * (older than every profile) are listed with no versions fetchable.
 */
export function buildCatalog(records: PackageRecord[], flavour: string): SeriesCatalog[] {
  const byName = new Map<string, PackageRecord[]>();
  for (const r of records) {
    const list = byName.get(r.package) ?? [];
    list.push(r);
    byName.set(r.package, list);
  }
  const f = escapeRe(flavour);
  const bootImage = new RegExp(`^linux-image-(\\d+\\.\\d+\\.\\d+(?:-\\d+|\\+deb\\d+(?:\\.\\d+)*)-${f})(-unsigned)?$`);
  const splitImage = new RegExp(`^linux-binary-unsigned-(\\d+\\.\\d+\\.\\d+\\+deb\\d+(?:\\.\\d+)*-${f})$`);

  // (release, debian version) -> image candidates
  const builds = new Map<string, KernelBuild & { imageCandidates: PackageRecord[]; profile?: SeriesProfile }>();
  for (const [name, recs] of byName) {
    const boot = bootImage.exec(name);
    const split = splitImage.exec(name);
    const release = boot?.[1] ?? split?.[1];
    if (release === undefined) continue;
    for (const r of recs) {
      const version = upstreamKernelVersion(r.version);
      if (version === undefined) continue;
      const series = seriesOf(version);
      const profile = seriesProfile(series);
      // linux-image-<release> of a split-layout series is a metapackage without the image
      if (profile && (profile.layout === 'boot') !== Boolean(boot)) continue;
      const key = `${release}\0${r.version}`;
      let b = builds.get(key);
      if (!b) {
        b = { series, version, debianVersion: r.version, release, abiTag: abiTagOfRelease(release), missing: [], imageCandidates: [] };
        if (profile) b.profile = profile;
        builds.set(key, b);
      }
      b.imageCandidates.push(r);
    }
  }

  const exact = (name: string, version: string) => byName.get(name)?.find((r) => r.version === version);
  const best = (name: string, pred: (r: PackageRecord) => boolean) =>
    (byName.get(name) ?? []).filter(pred).sort((a, b) => compareDebVersions(b.version, a.version))[0];

  const out = new Map<string, SeriesCatalog>();
  for (const b of builds.values()) {
    const profile = b.profile;
    // unsigned first: same kernel, without the Secure Boot signature QEMU does not need
    const img = b.imageCandidates.find((r) => r.package.endsWith('-unsigned')) ?? b.imageCandidates[0];
    if (img) b.image = ref(img);
    if (!profile) b.missing.push(`no svadiff profile for series ${b.series} (kernels/profiles.ts)`);
    if (profile?.layout === 'split') {
      const base = exact(`linux-base-${b.release}`, b.debianVersion);
      if (base) b.base = ref(base);
      else b.missing.push(`linux-base-${b.release}`);
    }
    const headers = exact(`linux-headers-${b.release}`, b.debianVersion);
    if (!headers) {
      b.missing.push(`linux-headers-${b.release}`);
    } else {
      b.headers = ref(headers);
      const deps = parseDepends(headers.depends);
      const hint = compilerFromDepends(deps);
      if (hint) b.compilerHint = hint;
      for (const kind of ['common', 'kbuild'] as const) {
        const rel = deps.flat().find((r) => (kind === 'common' ? /^linux-headers-.*-common$/.test(r.name) : r.name.startsWith('linux-kbuild-')));
        if (!rel) {
          b.missing.push(`the ${kind === 'common' ? 'linux-headers-*-common' : 'linux-kbuild-*'} dependency of ${headers.package}`);
          continue;
        }
        const ok = (r: PackageRecord) => (rel.op && rel.version ? satisfies(r.version, rel.op, rel.version) : true);
        // the same Debian version as the kernel when the registry has it, else the newest allowed
        const pick = exact(rel.name, b.debianVersion) ?? best(rel.name, ok);
        if (!pick) {
          b.missing.push(rel.op ? `${rel.name} (${rel.op} ${rel.version})` : rel.name);
          continue;
        }
        if (kind === 'common') b.headersCommon = ref(pick);
        else b.kbuild = ref(pick);
      }
    }
    const sourceName = `linux-source-${b.series}`;
    const source = exact(sourceName, b.debianVersion) ?? best(sourceName, (r) => upstreamKernelVersion(r.version) === b.version);
    if (source) b.source = ref(source);
    else b.missing.push(`${sourceName} ${b.version}`);

    let sc = out.get(b.series);
    if (!sc) {
      sc = { series: b.series, versions: [], builds: [] };
      if (profile) sc.profile = profile;
      out.set(b.series, sc);
    }
    const { imageCandidates: _c, profile: _p, ...plain } = b;
    sc.builds.push(plain);
  }

  for (const sc of out.values()) {
    sc.builds.sort((a, b) => preferBuild(sc.profile, a, b));
    const seen = new Set<string>();
    for (const b of sc.builds) {
      if (seen.has(b.version)) continue;
      seen.add(b.version);
      sc.versions.push(b);
    }
  }
  return [...out.values()].sort((a, b) => compareKernelVersions(b.series, a.series));
}

function abiRank(profile: SeriesProfile | undefined, tag: string): number {
  const i = profile?.preferredAbiTags.indexOf(tag) ?? -1;
  return i < 0 ? 1000 : i;
}

/**
 * Order of builds: newest upstream version first; for one version fetchable builds first, then
 * the profile's preferred ABI tag, then the newest Debian version.
 */
function preferBuild(profile: SeriesProfile | undefined, a: KernelBuild, b: KernelBuild): number {
  const v = compareKernelVersions(b.version, a.version);
  if (v !== 0) return v;
  const fa = a.missing.length === 0 ? 0 : 1;
  const fb = b.missing.length === 0 ? 0 : 1;
  if (fa !== fb) return fa - fb;
  const t = abiRank(profile, a.abiTag) - abiRank(profile, b.abiTag);
  if (t !== 0) return t;
  return compareDebVersions(b.debianVersion, a.debianVersion);
}

export function isFetchable(b: KernelBuild): boolean {
  return b.missing.length === 0;
}

/**
 * The canonical spec of a build: the version alone when that is what `debian:<version>` picks,
 * with the ABI tag otherwise (e.g. 6.12.107+deb13 when a +deb12 build of 6.12.107 exists).
 */
export function exactSpecOf(sc: SeriesCatalog, b: KernelBuild, arch?: Arch): string {
  const chosen = sc.versions.find((v) => v.version === b.version);
  const needTag = chosen !== undefined && chosen.release !== b.release;
  return formatKernelSpec({ series: b.series, version: b.version, abiTag: needTag ? b.abiTag : undefined, arch });
}

/** Pick the build a spec means, or throw a UserError that lists what is available. */
export function resolveSpec(catalog: SeriesCatalog[], spec: KernelSpec): KernelBuild {
  const sc = catalog.find((s) => s.series === spec.series);
  const seriesList = catalog
    .filter((s) => s.versions.some(isFetchable))
    .map((s) => s.series)
    .join(', ');
  if (!sc) {
    throw new UserError(`Debian has no kernel series ${spec.series} in the configured suites; available series: ${seriesList || 'none'}`);
  }
  const fetchable = sc.versions.filter(isFetchable).map((b) => b.version);
  const available = fetchable.length > 0 ? fetchable.join(', ') : 'none';
  if (spec.version === undefined) {
    const newest = sc.versions.find(isFetchable);
    if (!newest) {
      const why = sc.versions[0]?.missing.join(', ') ?? 'no builds';
      throw new UserError(`no fetchable Debian ${spec.series} kernel (newest lacks: ${why}); available series: ${seriesList || 'none'}`);
    }
    return newest;
  }
  const candidates = sc.builds.filter((b) => b.version === spec.version && (spec.abiTag === undefined || b.abiTag === spec.abiTag));
  const pick = candidates.find(isFetchable);
  if (pick) return pick;
  if (candidates.length > 0) {
    const first = candidates[0];
    throw new UserError(
      `Debian ${spec.text} (${first?.release}) is not fetchable any more: missing ${first?.missing.join(', ')}; fetchable ${spec.series} versions: ${available}`,
    );
  }
  throw new UserError(`Debian has no kernel ${spec.text}; fetchable ${spec.series} versions: ${available}`);
}
