/**
 * Debian package versions: ordering as dpkg does it, and the upstream kernel version inside.
 * The algorithm is dpkg's verrevcmp() (dpkg lib/dpkg/version.c): compare alternately the
 * non-digit and the digit parts; '~' sorts before everything, even the end of the string,
 * letters before other characters.
 */

export interface DebVersion {
  epoch: number;
  upstream: string;
  revision: string;
}

export function parseDebVersion(v: string): DebVersion {
  let rest = v.trim();
  let epoch = 0;
  const colon = rest.indexOf(':');
  if (colon > 0 && /^\d+$/.test(rest.slice(0, colon))) {
    epoch = Number(rest.slice(0, colon));
    rest = rest.slice(colon + 1);
  }
  const dash = rest.lastIndexOf('-');
  if (dash > 0) return { epoch, upstream: rest.slice(0, dash), revision: rest.slice(dash + 1) };
  return { epoch, upstream: rest, revision: '' };
}

function order(c: string | undefined): number {
  if (c === undefined) return 0;
  if (c >= '0' && c <= '9') return 0;
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return c.charCodeAt(0);
  if (c === '~') return -1;
  return c.charCodeAt(0) + 256;
}

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';

function verrevcmp(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    let firstDiff = 0;
    while ((i < a.length && !isDigit(a[i])) || (j < b.length && !isDigit(b[j]))) {
      const ac = order(a[i]);
      const bc = order(b[j]);
      if (ac !== bc) return ac - bc;
      i++;
      j++;
    }
    while (a[i] === '0') i++;
    while (b[j] === '0') j++;
    while (isDigit(a[i]) && isDigit(b[j])) {
      if (firstDiff === 0) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (isDigit(a[i])) return 1;
    if (isDigit(b[j])) return -1;
    if (firstDiff !== 0) return firstDiff;
  }
  return 0;
}

/** Negative, zero or positive like dpkg --compare-versions. */
export function compareDebVersions(a: string, b: string): number {
  const va = parseDebVersion(a);
  const vb = parseDebVersion(b);
  if (va.epoch !== vb.epoch) return va.epoch - vb.epoch;
  const u = verrevcmp(va.upstream, vb.upstream);
  if (u !== 0) return u;
  return verrevcmp(va.revision, vb.revision);
}

/** Whether `have` satisfies a Depends relation `op want` (op one of << <= = >= >>). */
export function satisfies(have: string, op: string, want: string): boolean {
  const c = compareDebVersions(have, want);
  switch (op) {
    case '<<':
    case '<':
      return c < 0;
    case '<=':
      return c <= 0;
    case '=':
      return c === 0;
    case '>=':
      return c >= 0;
    case '>>':
    case '>':
      return c > 0;
    default:
      return false;
  }
}

/**
 * The upstream kernel version of a Debian kernel package version, as "X.Y.Z":
 * "6.12.117-1~deb12u1" -> "6.12.117", "6.1.192-2" -> "6.1.192". A first release "7.2-1" is
 * "7.2.0" (so that "X.Y" always means a series). Undefined for release candidates
 * ("7.3~rc4-1~exp1") and anything else that is not a plain release.
 */
export function upstreamKernelVersion(debVersion: string): string | undefined {
  const { upstream } = parseDebVersion(debVersion);
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?$/.exec(upstream);
  if (!m) return undefined;
  return `${m[1]}.${m[2]}.${m[3] ?? '0'}`;
}

/** The series ("6.12") of an upstream version ("6.12.117"). */
export function seriesOf(version: string): string {
  const [major, minor] = version.split('.');
  return `${major}.${minor}`;
}

/** Compare upstream kernel versions or series numerically ("6.12.9" < "6.12.10", "6.1" < "6.12" < "7.2"). */
export function compareKernelVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
