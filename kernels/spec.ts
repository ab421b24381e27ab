import { UserError } from '../harness/util/errors.js';

/**
 * A kernel the user asks for. Only Debian kernels for now:
 *   debian:6.12          the newest fetchable 6.12.x
 *   debian:6.12.117      exactly 6.12.117 (the preferred build of it, see SeriesProfile.preferredAbiTags)
 *   debian:6.12.107+deb13  that version from one particular build (ABI tag)
 */
export interface KernelSpec {
  distro: 'debian';
  /** "6.12" */
  series: string;
  /** "6.12.117" when an exact version was asked for */
  version?: string;
  /** "+deb13" when a build tag was asked for */
  abiTag?: string;
  /** the spec as the user wrote it (trimmed) */
  text: string;
}

const SPEC_HELP = 'use debian:<series> (e.g. debian:6.12) or debian:<version> (e.g. debian:6.12.117)';

export function parseKernelSpec(s: string): KernelSpec {
  const text = s.trim();
  const m = /^debian:(\d{1,3})\.(\d{1,3})(?:\.(\d{1,4})(\+deb\d{1,3})?)?$/.exec(text);
  if (!m) {
    const shown = JSON.stringify(text.slice(0, 80));
    if (/^\d/.test(text)) throw new UserError(`kernel spec ${shown} has no distribution: write debian:${text.slice(0, 40)}`);
    throw new UserError(`unknown kernel spec ${shown}: ${SPEC_HELP}`);
  }
  const series = `${Number(m[1])}.${Number(m[2])}`;
  const spec: KernelSpec = { distro: 'debian', series, text };
  if (m[3] !== undefined) spec.version = `${series}.${Number(m[3])}`;
  if (m[4] !== undefined) spec.abiTag = m[4];
  return spec;
}

/** The canonical text of a spec: "debian:6.12", "debian:6.12.117", "debian:6.12.107+deb13". */
export function formatKernelSpec(spec: Pick<KernelSpec, 'series' | 'version' | 'abiTag'>): string {
  if (spec.version === undefined) return `debian:${spec.series}`;
  return `debian:${spec.version}${spec.abiTag ?? ''}`;
}
