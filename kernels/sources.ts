/**
 * Which Debian mirrors to use: read from the host's apt sources (the deb822 *.sources files and
 * the one-line sources.list format), overridable with SVADIFF_DEBIAN_MIRROR and
 * SVADIFF_DEBIAN_SECURITY_MIRROR. svadiff never names a mirror host itself.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../harness/util/errors.js';

export interface AptSourceEntry {
  types: string[];
  uris: string[];
  suites: string[];
  components: string[];
  enabled: boolean;
  /** file it came from, for messages */
  file: string;
}

export interface DebianMirrors {
  /** the Debian archive (bookworm, trixie, sid, ... and their -updates/-backports) */
  archive: string;
  /** the security archive (bookworm-security), if the host has one */
  security?: string;
  /** where each came from, for messages */
  origin: { archive: string; security?: string };
}

/** Parse a deb822 .sources file (sources.list(5), "DEB822-STYLE FORMAT"). */
export function parseDeb822Sources(text: string, file: string): AptSourceEntry[] {
  const entries: AptSourceEntry[] = [];
  const paragraphs: string[][] = [[]];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.startsWith('#')) continue; // comments may sit inside a paragraph
    if (line.trim() === '') {
      if ((paragraphs[paragraphs.length - 1] ?? []).length > 0) paragraphs.push([]);
      continue;
    }
    paragraphs[paragraphs.length - 1]?.push(line);
  }
  for (const para of paragraphs) {
    const fields = new Map<string, string>();
    let current: string | undefined;
    for (const line of para) {
      if (/^[ \t]/.test(line)) {
        // continuation line (e.g. an inline Signed-By key)
        if (current !== undefined) fields.set(current, `${fields.get(current) ?? ''}\n${line.trim()}`);
        continue;
      }
      const m = /^([A-Za-z0-9-]+):(.*)$/.exec(line);
      if (!m || m[1] === undefined) continue;
      current = m[1].toLowerCase();
      fields.set(current, (m[2] ?? '').trim());
    }
    if (!fields.has('uris')) continue;
    const words = (k: string) => (fields.get(k) ?? '').split(/\s+/).filter((w) => w.length > 0);
    entries.push({
      types: words('types'),
      uris: words('uris'),
      suites: words('suites'),
      components: words('components'),
      enabled: !/^(no|false|0)$/i.test(fields.get('enabled') ?? 'yes'),
      file,
    });
  }
  return entries;
}

/** Parse the one-line format: `deb [ options ] uri suite [component...]`. */
export function parseOneLineSources(text: string, file: string): AptSourceEntry[] {
  const entries: AptSourceEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') continue;
    const m = /^(deb|deb-src)\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)(.*)$/.exec(line);
    if (!m || m[1] === undefined || m[2] === undefined || m[3] === undefined) continue;
    entries.push({
      types: [m[1]],
      uris: [m[2]],
      suites: [m[3]],
      components: (m[4] ?? '').split(/\s+/).filter((w) => w.length > 0),
      enabled: true,
      file,
    });
  }
  return entries;
}

// Debian release code names (facts about Debian, not about any mirror). A host's own code name
// from /etc/os-release is added at run time so that a future release is recognised too.
const DEBIAN_CODENAMES = ['buster', 'bullseye', 'bookworm', 'trixie', 'forky', 'duke', 'sid', 'experimental'];
const DEBIAN_ALIASES = ['oldoldstable', 'oldstable', 'stable', 'testing', 'unstable'];

function suiteBase(suite: string): { base: string; pocket: string } {
  const m = /^([a-z]+)(?:-(security|updates|backports|backports-sloppy|proposed-updates))?$/.exec(suite);
  if (!m || m[1] === undefined) return { base: '', pocket: '' };
  return { base: m[1], pocket: m[2] ?? '' };
}

function usableUri(uri: string): boolean {
  return /^(https?|file):\/\//.test(uri);
}

/**
 * The Debian archive and security mirrors among apt source entries: the first enabled binary
 * ("deb") entry whose suite is a Debian release (optionally -updates/-backports), and the first
 * with a "<release>-security" suite (or "<release>/updates", the pre-bullseye name).
 */
export function findDebianMirrors(
  entries: AptSourceEntry[],
  hostCodename?: string,
): { archive?: { uri: string; file: string }; security?: { uri: string; file: string } } {
  const known = new Set([...DEBIAN_CODENAMES, ...DEBIAN_ALIASES]);
  if (hostCodename) known.add(hostCodename);
  let archive: { uri: string; file: string } | undefined;
  let security: { uri: string; file: string } | undefined;
  for (const e of entries) {
    if (!e.enabled || !e.types.includes('deb')) continue;
    const uri = e.uris.find(usableUri);
    if (uri === undefined) continue;
    for (const suite of e.suites) {
      const legacySecurity = /^([a-z]+)\/updates$/.exec(suite);
      const { base, pocket } = suiteBase(suite);
      if (pocket === 'security' || (legacySecurity?.[1] !== undefined && known.has(legacySecurity[1]))) {
        if (!security && (known.has(base) || legacySecurity)) security = { uri, file: e.file };
      } else if (known.has(base)) {
        if (!archive) archive = { uri, file: e.file };
      }
    }
  }
  return { archive, security };
}

/** All entries of the host's apt sources, in the order apt reads them. */
export async function readHostSourceEntries(etcApt = '/etc/apt'): Promise<AptSourceEntry[]> {
  const entries: AptSourceEntry[] = [];
  const main = join(etcApt, 'sources.list');
  try {
    entries.push(...parseOneLineSources(await fs.readFile(main, 'utf8'), main));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const dir = join(etcApt, 'sources.list.d');
  let names: string[] = [];
  try {
    names = (await fs.readdir(dir)).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  for (const name of names) {
    const path = join(dir, name);
    // apt itself only reads these two extensions (other files, e.g. *.disabled, are ignored)
    if (name.endsWith('.list')) entries.push(...parseOneLineSources(await fs.readFile(path, 'utf8'), path));
    else if (name.endsWith('.sources')) entries.push(...parseDeb822Sources(await fs.readFile(path, 'utf8'), path));
  }
  return entries;
}

async function hostCodename(): Promise<string | undefined> {
  try {
    const text = await fs.readFile('/etc/os-release', 'utf8');
    return /^VERSION_CODENAME=["']?([a-z]+)["']?$/m.exec(text)?.[1];
  } catch {
    return undefined;
  }
}

function normaliseUri(uri: string): string {
  return uri.replace(/\/+$/, '');
}

/**
 * The mirrors to use: environment overrides first, then the host's apt sources. Throws a
 * UserError naming the override when no Debian archive can be found.
 */
export async function resolveDebianMirrors(env: NodeJS.ProcessEnv = process.env, etcApt = '/etc/apt'): Promise<DebianMirrors> {
  const envArchive = env.SVADIFF_DEBIAN_MIRROR?.trim();
  const envSecurity = env.SVADIFF_DEBIAN_SECURITY_MIRROR?.trim();
  for (const [name, v] of [
    ['SVADIFF_DEBIAN_MIRROR', envArchive],
    ['SVADIFF_DEBIAN_SECURITY_MIRROR', envSecurity],
  ] as const) {
    if (v && !usableUri(v)) throw new UserError(`${name}=${JSON.stringify(v.slice(0, 80))} is not an http(s):// or file:// URI; fix or unset it`);
  }
  let found: ReturnType<typeof findDebianMirrors> = {};
  if (!envArchive || !envSecurity) found = findDebianMirrors(await readHostSourceEntries(etcApt), await hostCodename());
  const archive = envArchive ? { uri: envArchive, file: 'SVADIFF_DEBIAN_MIRROR' } : found.archive;
  const security = envSecurity ? { uri: envSecurity, file: 'SVADIFF_DEBIAN_SECURITY_MIRROR' } : found.security;
  if (!archive) {
    throw new UserError(
      `no Debian archive found in ${etcApt}/sources.list or ${etcApt}/sources.list.d/*.sources; set SVADIFF_DEBIAN_MIRROR=<URI of a Debian mirror>`,
    );
  }
  const mirrors: DebianMirrors = { archive: normaliseUri(archive.uri), origin: { archive: archive.file } };
  if (security) {
    mirrors.security = normaliseUri(security.uri);
    mirrors.origin.security = security.file;
  }
  return mirrors;
}
