import { resolve as resolvePath } from 'node:path';
import { UserError } from '../harness/util/errors.js';
import type { Arch } from './types.js';

/**
 * A Debian kernel the user asks for (kernels built from source: SourceKernelSpec below):
 *   debian:6.12          the newest fetchable 6.12.x
 *   debian:6.12.117      exactly 6.12.117 (the preferred build of it, see SeriesProfile.preferredAbiTags)
 *   debian:6.12.107+deb13  that version from one particular build (ABI tag)
 *   debian:6.12/arm64    any of these for another architecture (x86_64 when none is given)
 */
export interface KernelSpec {
  distro: 'debian';
  /** "6.12" */
  series: string;
  /** "6.12.117" when an exact version was asked for */
  version?: string;
  /** "+deb13" when a build tag was asked for */
  abiTag?: string;
  /** "arm64" when written as debian:…/arm64; absent: x86_64 (or the command's --arch) */
  arch?: Arch;
  /** the spec as the user wrote it (trimmed) */
  text: string;
}

const SPEC_HELP = 'use debian:<series> (e.g. debian:6.12) or debian:<version> (e.g. debian:6.12.117), optionally with /arm64 or /x86_64';

/** The guest architecture a spec suffix names ("arm64", "aarch64", "x86_64", "amd64"). */
export function archOfSuffix(s: string, shown: string): Arch {
  const a = s.toLowerCase();
  if (a === 'x86_64' || a === 'amd64') return 'x86_64';
  if (a === 'arm64' || a === 'aarch64') return 'arm64';
  throw new UserError(`unknown architecture ${JSON.stringify(s.slice(0, 20))} in kernel spec ${shown}: write /arm64 or /x86_64`);
}

/** "debian:6.12/arm64" -> ["debian:6.12", "arm64"]; no suffix -> [text, undefined]. */
function splitArch(text: string): [string, Arch | undefined] {
  const m = /^(.*)\/([A-Za-z0-9_]{1,20})$/.exec(text);
  if (!m || m[1] === undefined || m[2] === undefined) return [text, undefined];
  return [m[1], archOfSuffix(m[2], JSON.stringify(text.slice(0, 80)))];
}

export function parseKernelSpec(s: string): KernelSpec {
  const text = s.trim();
  const [body, arch] = text.startsWith('debian:') ? splitArch(text) : [text, undefined];
  const m = /^debian:(\d{1,3})\.(\d{1,3})(?:\.(\d{1,4})(\+deb\d{1,3})?)?$/.exec(body);
  if (!m) {
    const shown = JSON.stringify(text.slice(0, 80));
    if (/^\d/.test(text)) throw new UserError(`kernel spec ${shown} has no distribution: write debian:${text.slice(0, 40)}`);
    throw new UserError(`unknown kernel spec ${shown}: ${SPEC_HELP}`);
  }
  const series = `${Number(m[1])}.${Number(m[2])}`;
  const spec: KernelSpec = { distro: 'debian', series, text };
  if (m[3] !== undefined) spec.version = `${series}.${Number(m[3])}`;
  if (m[4] !== undefined) spec.abiTag = m[4];
  if (arch !== undefined) spec.arch = arch;
  return spec;
}

/**
 * The canonical text of a spec: "debian:6.12", "debian:6.12.117", "debian:6.12.107+deb13",
 * "debian:6.12.118/arm64". x86_64 has no suffix (every spec written before arm64 stays valid).
 */
export function formatKernelSpec(spec: Pick<KernelSpec, 'series' | 'version' | 'abiTag' | 'arch'>): string {
  const suffix = spec.arch !== undefined && spec.arch !== 'x86_64' ? `/${spec.arch}` : '';
  if (spec.version === undefined) return `debian:${spec.series}${suffix}`;
  return `debian:${spec.version}${spec.abiTag ?? ''}${suffix}`;
}

/**
 * A spec with the architecture a command's --arch asks for: the spec's own suffix wins when they
 * agree, and a conflict is an error. Non-Debian specs are returned as they are.
 */
export function withArch(specText: string, arch: Arch | undefined): string {
  const text = specText.trim();
  if (arch === undefined || !text.startsWith('debian:')) return text;
  const own = parseKernelSpec(text).arch;
  if (own !== undefined && own !== arch) throw new UserError(`kernel spec ${text} names ${own} but --arch is ${arch}; drop one of them`);
  if (own !== undefined || arch === 'x86_64') return text;
  return `${text}/${arch}`;
}

// ---------------------------------------------------------------------------------------------
// Kernels built from source (kernels/kbuild.ts):
//   src:debian:7.2+kasan+lockdep         Debian's linux-source of a series (its newest) or of
//   src:debian:6.12.118+kfence           one version, with config fragments (kernels/config/)
//   git:/path/to/linux@v6.13+iommufd     a user's git tree at a revision (default HEAD)

/** A kernel built by svadiff from a source tree, on top of the guest base config. */
export type SourceKernelSpec =
  | {
      kind: 'src-debian';
      series: string;
      /** "6.12.118" when an exact version was asked for */
      version?: string;
      /** fragment names, sorted and without duplicates (the order they are merged in) */
      fragments: string[];
      text: string;
    }
  | {
      kind: 'git';
      /** absolute path of the user's tree */
      tree: string;
      /** the revision as written (HEAD when none was given) */
      rev: string;
      fragments: string[];
      text: string;
    };

export type AnyKernelSpec = ({ kind: 'debian' } & KernelSpec) | SourceKernelSpec;

const ANY_SPEC_HELP =
  'use debian:<series|version> (e.g. debian:6.12), src:debian:<series|version>[+fragment...] (e.g. src:debian:7.2+kasan) or git:<path>[@rev][+fragment...] (e.g. git:~/linux@v6.13+iommufd)';

const FRAGMENT_NAME = /^[a-z][a-z0-9-]{0,31}$/;

/**
 * Check fragment names against the known ones; throws a UserError that lists them. Returns them
 * sorted without duplicates: the merge order, and the cache key, do not depend on how they were written.
 */
export function checkFragments(names: string[], known: readonly string[], shown: string): string[] {
  for (const n of names) {
    if (!known.includes(n)) {
      throw new UserError(`unknown config fragment ${JSON.stringify(n.slice(0, 40))} in ${shown}; known fragments: ${known.join(', ')}`);
    }
  }
  return [...new Set(names)].sort();
}

/** "+a+b" -> ["a", "b"]; the empty string -> []. */
function splitFragments(text: string, shown: string): string[] {
  if (text === '') return [];
  const parts = text.split('+').slice(1);
  for (const p of parts) {
    if (!FRAGMENT_NAME.test(p)) throw new UserError(`bad config fragment name ${JSON.stringify(p.slice(0, 40))} in ${shown}; ${ANY_SPEC_HELP}`);
  }
  return parts;
}

/**
 * Parse any kernel spec. `knownFragments` are the fragment names a source spec may use;
 * `cwd` resolves a relative git tree path; `home` expands a leading ~.
 */
export function parseAnyKernelSpec(s: string, knownFragments: readonly string[], opts: { cwd?: string; home?: string } = {}): AnyKernelSpec {
  const text = s.trim();
  const shown = JSON.stringify(text.slice(0, 80));
  if (text.startsWith('debian:')) return { kind: 'debian', ...parseKernelSpec(text) };
  if (text.startsWith('src:')) {
    if (/^src:debian:\d+\.\d+\.\d+\+deb\d+(\+|$)/.test(text)) throw new UserError(`${shown}: a source spec takes no ABI tag (+debNN); write src:debian:<version>[+fragment...]`);
    const m = /^src:debian:(\d{1,3})\.(\d{1,3})(?:\.(\d{1,4}))?((?:\+[^+]*)*)$/.exec(text);
    if (!m) throw new UserError(`unknown kernel spec ${shown}: ${ANY_SPEC_HELP}`);
    const series = `${Number(m[1])}.${Number(m[2])}`;
    const fragments = checkFragments(splitFragments(m[4] ?? '', shown), knownFragments, shown);
    const spec: SourceKernelSpec = { kind: 'src-debian', series, fragments, text };
    if (m[3] !== undefined) spec.version = `${series}.${Number(m[3])}`;
    return spec;
  }
  if (text.startsWith('git:')) {
    let rest = text.slice(4);
    let rev = 'HEAD';
    let fragText = '';
    const at = rest.lastIndexOf('@');
    if (at >= 0) {
      const tail = rest.slice(at + 1);
      rest = rest.slice(0, at);
      const plus = tail.indexOf('+');
      rev = plus >= 0 ? tail.slice(0, plus) : tail;
      fragText = plus >= 0 ? tail.slice(plus) : '';
      if (rev === '' || !/^[A-Za-z0-9._\/~^{}-]+$/.test(rev) || rev.includes('..')) {
        throw new UserError(`bad git revision ${JSON.stringify(rev.slice(0, 60))} in ${shown}; write git:<path>@<commit, tag or branch>`);
      }
    } else {
      // fragments end the path: git:/src/linux+kasan
      const m = /((?:\+[a-z][a-z0-9-]{0,31})+)$/.exec(rest);
      if (m) {
        fragText = m[1] ?? '';
        rest = rest.slice(0, rest.length - fragText.length);
      }
    }
    if (rest === '') throw new UserError(`${shown} names no tree: write git:<path to a kernel tree>[@rev][+fragment...]`);
    if (rest.startsWith('~/') && opts.home) rest = `${opts.home}/${rest.slice(2)}`;
    const tree = resolvePath(opts.cwd ?? process.cwd(), rest);
    const fragments = checkFragments(splitFragments(fragText, shown), knownFragments, shown);
    return { kind: 'git', tree, rev, fragments, text };
  }
  if (/^\d/.test(text)) throw new UserError(`kernel spec ${shown} has no distribution: write debian:${text.slice(0, 40)} (or src:debian:${text.slice(0, 40)} to build it)`);
  throw new UserError(`unknown kernel spec ${shown}: ${ANY_SPEC_HELP}`);
}

/** The canonical text of a source spec, fragments sorted: "src:debian:6.12.118+kasan+lockdep", "git:/src/linux@1a2b3c4d5e6f+iommufd". */
export function formatSourceSpec(s: SourceKernelSpec, exact?: { version?: string; commit?: string }): string {
  const frags = s.fragments.map((f) => `+${f}`).join('');
  if (s.kind === 'src-debian') return `src:debian:${exact?.version ?? s.version ?? s.series}${frags}`;
  return `git:${s.tree}@${exact?.commit ? exact.commit.slice(0, 12) : s.rev}${frags}`;
}
