/**
 * A private apt state in the svadiff cache: its own configuration, sources, package lists and
 * caches, so that svadiff can look up and download bookworm, trixie, forky and sid kernel
 * packages without touching the host's apt configuration or lists. A second state of the same
 * kind, `apt/source`, has deb-src lines only: the source packages svadiff builds (QEMU, see
 * qemu/recipe.ts). It is separate so that kernel fetches never download the Sources lists.
 * apt is pointed at it with APT_CONFIG; Dir::Etc::Parts and friends point at empty
 * directories inside the state so that nothing from /etc/apt leaks in (hooks, GzipIndexes,
 * Dir::Cache::pkgcache "" ...). Only the
 * host's network settings are carried over (proxies, and the Release date checks a frozen or
 * snapshot mirror needs switched off), because they describe how this host reaches its mirror.
 */
import { execa } from 'execa';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../harness/util/errors.js';
import { exists, sha256, atomicWrite, atomicWriteJson, readJsonIfExists } from '../harness/util/fsx.js';
import { isRoot } from '../harness/util/host.js';
import { StatusLine, fmtBytes, fmtDuration, info, warn } from '../harness/util/log.js';
import { cacheDir } from '../harness/util/paths.js';
import { execaTiedToParent } from '../harness/util/proc.js';
import { safeLine } from '../harness/util/sanitize.js';
import { parseAptShow, type PackageRef } from './catalog.js';
import { compareDebVersions } from './debversion.js';
import { withLock } from './lock.js';
import { APT_LISTS_MAX_AGE_MS, APT_SUITES, ARCH_PROFILES, DEBIAN_ARCHIVE_KEYRING } from './profiles.js';
import { resolveDebianMirrors, type DebianMirrors } from './sources.js';
import type { Arch } from './types.js';

/** Host apt settings that say how to reach the mirror; nothing else is inherited. */
const INHERITED_KEYS = /^Acquire::(Check-Valid-Until|Check-Date|Max-ValidTime|Retries|(https?|ftp)::Proxy(::[A-Za-z0-9.-]+)?)$/;

/** Pick the inherited settings out of `apt-config dump` output (host configuration). */
export function inheritedAptSettings(dump: string): string[] {
  const out: string[] = [];
  for (const line of dump.split('\n')) {
    const m = /^([A-Za-z0-9:._-]+) "([^"\\]*)";$/.exec(line.trim());
    if (m && m[1] !== undefined && INHERITED_KEYS.test(m[1])) out.push(`${m[1]} "${m[2]}";`);
  }
  return out;
}

/** Binary packages of the kernel suites, or source packages of the given suites. */
export type AptKind = { kind: 'binary' } | { kind: 'source'; suites: readonly string[] };

/** The sources.list of the private state (one-line format). */
export function privateSourcesList(mirrors: DebianMirrors, kind: AptKind = { kind: 'binary' }): { text: string; skipped: string[] } {
  const lines: string[] = [];
  const skipped: string[] = [];
  const entries = kind.kind === 'binary' ? APT_SUITES : kind.suites.map((suite) => ({ suite, mirror: 'archive' as const }));
  const type = kind.kind === 'binary' ? 'deb' : 'deb-src';
  for (const { suite, mirror } of entries) {
    const uri = mirror === 'security' ? mirrors.security : mirrors.archive;
    if (uri === undefined) {
      skipped.push(suite);
      continue;
    }
    lines.push(`${type} [signed-by=${DEBIAN_ARCHIVE_KEYRING}] ${uri} ${suite} main`);
  }
  return { text: lines.join('\n') + '\n', skipped };
}

interface UpdateStamp {
  /** ms since the epoch of the last successful apt-get update */
  time: number;
  /** sha256 of the apt.conf and sources.list it was made with */
  configHash: string;
}

export class PrivateApt {
  readonly dir: string;
  readonly debArch: string;
  private prepared?: { configHash: string; mirrors: DebianMirrors };

  constructor(
    readonly arch: Arch,
    readonly kind: AptKind = { kind: 'binary' },
  ) {
    this.debArch = ARCH_PROFILES[arch].debArch;
    this.dir = join(cacheDir(), 'apt', kind.kind === 'binary' ? this.debArch : 'source');
  }

  private get confPath(): string {
    return join(this.dir, 'etc', 'apt.conf');
  }
  private get listsDir(): string {
    return join(this.dir, 'state', 'lists');
  }
  private get stampPath(): string {
    return join(this.dir, 'state', 'svadiff-update.json');
  }
  private get lockPath(): string {
    return join(this.dir, 'svadiff.lock');
  }

  /** Write the configuration (idempotent) and return the mirrors in use. */
  async prepare(): Promise<DebianMirrors> {
    if (this.prepared) return this.prepared.mirrors;
    if (this.dir.includes('"') || /\s/.test(this.dir)) {
      throw new UserError(`the svadiff cache path ${JSON.stringify(this.dir)} contains quotes or spaces, which apt.conf cannot hold; set SVADIFF_CACHE to another directory`);
    }
    const mirrors = await resolveDebianMirrors();
    const { text: sources, skipped } = privateSourcesList(mirrors, this.kind);
    if (skipped.length > 0) {
      warn(`no Debian security mirror in the host's apt sources; skipping ${skipped.join(', ')} (set SVADIFF_DEBIAN_SECURITY_MIRROR to add it)`);
    }
    const etc = join(this.dir, 'etc');
    for (const d of ['apt.conf.d', 'sources.list.d', 'trusted.gpg.d', 'preferences.d']) await fs.mkdir(join(etc, d), { recursive: true });
    for (const d of ['state/lists/partial', 'cache/archives/partial', 'log']) await fs.mkdir(join(this.dir, d), { recursive: true });
    const status = join(this.dir, 'state', 'status');
    if (!(await exists(status))) await atomicWrite(status, '');

    const hostDump = await execa('apt-config', ['dump'], { reject: false, env: { APT_CONFIG: '' }, extendEnv: true });
    const inherited = hostDump.exitCode === 0 ? inheritedAptSettings(String(hostDump.stdout)) : [];
    const d = this.dir;
    const conf = [
      '// Written by svadiff (kernels/apt.ts): a private apt state; the host configuration is not read.',
      `Dir::State "${d}/state";`,
      `Dir::State::status "${d}/state/status";`,
      `Dir::Cache "${d}/cache";`,
      // no source package cache (another ~90 MB): the kernel state has no deb-src lines, and
      // the source state is read by apt-cache showsrc a few times per build
      'Dir::Cache::srcpkgcache "";',
      `Dir::Log "${d}/log";`,
      `Dir::Etc "${etc}";`,
      'Dir::Etc::main "/dev/null";',
      `Dir::Etc::Parts "${etc}/apt.conf.d";`,
      `Dir::Etc::SourceList "${etc}/sources.list";`,
      `Dir::Etc::SourceParts "${etc}/sources.list.d";`,
      `Dir::Etc::Trusted "${etc}/trusted.gpg";`,
      `Dir::Etc::TrustedParts "${etc}/trusted.gpg.d";`,
      `Dir::Etc::Preferences "${etc}/preferences";`,
      `Dir::Etc::PreferencesParts "${etc}/preferences.d";`,
      `APT::Architecture "${this.debArch}";`,
      `APT::Architectures { "${this.debArch}"; };`,
      'Acquire::Languages "none";',
      // keep the lists compressed: six suites of Packages are ~250 MB uncompressed
      'Acquire::GzipIndexes "true";',
      '// inherited from the host apt configuration (network access to its mirror):',
      ...inherited,
      '',
    ].join('\n');
    const configHash = sha256(conf + sources);
    // rewrite only on change: apt rebuilds its 90 MB package cache when sources.list is newer
    await writeIfChanged(this.confPath, conf);
    await writeIfChanged(join(etc, 'sources.list'), sources);
    this.prepared = { configHash, mirrors };
    return mirrors;
  }

  private env(): Record<string, string> {
    return { APT_CONFIG: this.confPath, LC_ALL: 'C.UTF-8', DEBIAN_FRONTEND: 'noninteractive' };
  }

  private async listFiles(): Promise<string[]> {
    try {
      const want = this.kind.kind === 'binary' ? '_Packages' : '_Sources';
      return (await fs.readdir(this.listsDir)).filter((n) => n.includes(want));
    } catch {
      return [];
    }
  }

  /**
   * Make sure the package lists exist and are fresh (younger than 6 hours, or refresh asked).
   * Offline with old lists: warn and use them; offline without lists: UserError.
   */
  async ensureFresh(opts: { refresh?: boolean } = {}): Promise<void> {
    const mirrors = await this.prepare();
    const configHash = this.prepared?.configHash ?? '';
    await withLock(this.lockPath, { what: `updating the package lists in ${this.dir}` }, async () => {
      const stamp = await readJsonIfExists<UpdateStamp>(this.stampPath).catch(() => undefined);
      const lists = await this.listFiles();
      const fresh = stamp !== undefined && stamp.configHash === configHash && Date.now() - stamp.time < APT_LISTS_MAX_AGE_MS && lists.length > 0;
      if (fresh && !opts.refresh) return;
      const why = opts.refresh ? 'refresh asked' : lists.length === 0 ? 'no package lists yet' : stamp?.configHash !== configHash ? 'mirror configuration changed' : 'package lists are older than 6 h';
      const suites = this.kind.kind === 'binary' ? APT_SUITES.map((s) => s.suite) : this.kind.suites.map((s) => `${s} (sources)`);
      info(`updating the private apt package lists (${why}): ${suites.join(', ')} from ${mirrors.archive}${mirrors.security && this.kind.kind === 'binary' ? ` and ${mirrors.security}` : ''}`);
      const t0 = Date.now();
      const status = new StatusLine(5000);
      // --error-on=any: without it apt-get update exits 0 even when every download failed
      const proc = execaTiedToParent('apt-get', ['-q', 'update', '--error-on=any'], { env: this.env(), reject: false, all: true, buffer: { all: true } });
      let fetched = '';
      const errors: string[] = [];
      proc.all?.setEncoding('utf8');
      let partial = '';
      proc.all?.on('data', (chunk: string) => {
        const parts = (partial + chunk).split('\n');
        partial = parts.pop() ?? '';
        for (const raw of parts) {
          const line = safeLine(raw, 300);
          if (/^(Get|Hit|Ign):/.test(line)) status.update(`apt-get update: ${line}`);
          else if (/^Fetched /.test(line)) fetched = line;
          else if (/^(E|W|Err):/.test(line)) errors.push(line);
        }
      });
      const r = await proc;
      status.done();
      const nowLists = await this.listFiles();
      if (r.exitCode === 0) {
        await atomicWriteJson(this.stampPath, { time: Date.now(), configHash } satisfies UpdateStamp);
        info(`package lists updated in ${fmtDuration(Date.now() - t0)}${fetched ? ` (${fetched.replace(/\.$/, '')})` : ''}`);
        return;
      }
      const firstError = errors.find((l) => l.startsWith('E:')) ?? errors[0] ?? `apt-get exit ${r.exitCode}`;
      if (nowLists.length > 0) {
        const age = stamp ? `from ${fmtDuration(Date.now() - stamp.time)} ago` : 'of unknown age';
        warn(`apt-get update failed (${firstError}); using the package lists ${age}`);
        return;
      }
      throw new UserError(`apt-get update of the private apt state ${this.dir} failed: ${firstError}; check access to ${mirrors.archive} or set SVADIFF_DEBIAN_MIRROR`);
    });
  }

  /** Run apt-cache with the private state, under the state's lock (an update may be running). */
  private async aptCache(args: string[]): Promise<string> {
    return withLock(this.lockPath, { what: `reading the package lists in ${this.dir}` }, async () => {
      const r = await execa('apt-cache', args, { env: this.env(), reject: false, maxBuffer: 256 * 1024 * 1024 });
      if (r.exitCode !== 0 && String(r.stdout).length === 0) {
        throw new Error(`apt-cache ${args.slice(0, 2).join(' ')} failed (exit ${r.exitCode}): ${safeLine(String(r.stderr), 300)}`);
      }
      return String(r.stdout);
    });
  }

  async packageNames(prefix: string): Promise<string[]> {
    return (await this.aptCache(['pkgnames', prefix])).split('\n').filter((l) => l.length > 0).sort();
  }

  /** `apt-cache show` of these packages (all versions), raw text. */
  async show(names: string[]): Promise<string> {
    if (names.length === 0) return '';
    return this.aptCache(['show', ...names]);
  }

  /**
   * The newest version of a binary package in one of the given suites (`apt-cache madison`),
   * with its download size; undefined when none of them has it.
   */
  async newestIn(name: string, suites: readonly string[]): Promise<PackageRef | undefined> {
    const versions = parseMadison(await this.aptCache(['madison', name]))
      .filter((r) => r.name === name && suites.includes(r.suite))
      .map((r) => r.version);
    if (versions.length === 0) return undefined;
    const records = parseAptShow(await this.show([name])).filter((r) => versions.includes(r.version));
    const best = records.sort((x, y) => compareDebVersions(y.version, x.version))[0];
    if (!best) return undefined;
    const ref: PackageRef = { name, version: best.version, size: best.size };
    if (best.sha256) ref.sha256 = best.sha256;
    return ref;
  }

  /** `apt-cache showsrc` of a source package (every version the deb-src lines have), raw text. */
  async showSource(name: string): Promise<string> {
    return this.aptCache(['showsrc', name]);
  }

  /**
   * Download a source package (.dsc and its tarballs, checked against the signed Sources
   * lists) into dir; returns the path of the .dsc.
   */
  async downloadSource(name: string, version: string, dir: string): Promise<string> {
    await this.prepare();
    await fs.mkdir(dir, { recursive: true });
    const args = ['-q', 'source', '--download-only', `${name}=${version}`];
    // as root, apt would drop to _apt, which cannot write into the cache directory
    if (isRoot()) args.unshift('-o', 'APT::Sandbox::User=root');
    const r = await execaTiedToParent('apt-get', args, { env: this.env(), cwd: dir, reject: false, all: true });
    if (r.exitCode !== 0) {
      const err = String(r.all ?? '').split('\n').find((l) => /^(E|Err):/.test(l)) ?? `apt-get exit ${r.exitCode}`;
      throw new UserError(`downloading the source of ${name} ${version} failed: ${safeLine(err, 300)}; retry, or run with --refresh if the package lists are old`);
    }
    const upstream = version.replace(/^\d+:/, '');
    const dsc = (await fs.readdir(dir)).find((n) => n === `${name}_${upstream}.dsc`);
    if (!dsc) throw new Error(`apt-get source reported success but ${name}_${upstream}.dsc is not in ${dir}`);
    return join(dir, dsc);
  }

  /**
   * Download exact package versions into dir (apt checks them against the signed lists).
   * Returns the .deb path of each package name.
   */
  async download(pkgs: PackageRef[], dir: string): Promise<Map<string, string>> {
    await this.prepare();
    await fs.mkdir(dir, { recursive: true });
    const total = pkgs.reduce((s, p) => s + p.size, 0);
    info(`downloading ${pkgs.length} package${pkgs.length === 1 ? '' : 's'} (${fmtBytes(total)}): ${pkgs.map((p) => `${p.name} ${p.version} (${fmtBytes(p.size)})`).join(', ')}`);
    const t0 = Date.now();
    const args = ['-q', 'download', ...pkgs.map((p) => `${p.name}=${p.version}`)];
    // as root, apt would drop to _apt, which cannot write into the cache directory
    if (isRoot()) args.unshift('-o', 'APT::Sandbox::User=root');
    const status = new StatusLine(5000);
    const timer = setInterval(() => {
      void dirBytes(dir).then((n) => status.update(`downloading: ${fmtBytes(n)} of ${fmtBytes(total)} (${fmtDuration(Date.now() - t0)})`));
    }, 1000);
    let r;
    try {
      r = await execaTiedToParent('apt-get', args, { env: this.env(), cwd: dir, reject: false, all: true });
    } finally {
      clearInterval(timer);
      status.done();
    }
    if (r.exitCode !== 0) {
      const err = String(r.all ?? '').split('\n').find((l) => /^(E|Err):/.test(l)) ?? `apt-get exit ${r.exitCode}`;
      throw new UserError(`downloading ${pkgs.map((p) => p.name).join(', ')} failed: ${safeLine(err, 300)}; retry, or run with --refresh if the package lists are old`);
    }
    const files = await fs.readdir(dir);
    const out = new Map<string, string>();
    for (const p of pkgs) {
      const f = files.find((n) => n.startsWith(`${p.name}_`) && n.endsWith('.deb'));
      if (!f) throw new Error(`apt-get download reported success but ${p.name} is not in ${dir}`);
      out.set(p.name, join(dir, f));
    }
    const secs = (Date.now() - t0) / 1000;
    info(`downloaded ${fmtBytes(total)} in ${fmtDuration(Date.now() - t0)}${secs > 0.5 ? ` (${fmtBytes(total / secs)}/s)` : ''}`);
    return out;
  }
}

async function writeIfChanged(path: string, text: string): Promise<void> {
  const old = await fs.readFile(path, 'utf8').catch(() => undefined);
  if (old !== text) await atomicWrite(path, text);
}

async function dirBytes(dir: string): Promise<number> {
  let n = 0;
  for (const sub of [dir, join(dir, 'partial')]) {
    let names: string[] = [];
    try {
      names = await fs.readdir(sub);
    } catch {
      continue;
    }
    for (const name of names) {
      try {
        const st = await fs.stat(join(sub, name));
        if (st.isFile()) n += st.size;
      } catch {
        /* renamed meanwhile */
      }
    }
  }
  return n;
}

/** `apt-cache madison` lines ("pkg | version | URI suite/component arch Packages") as records. */
export function parseMadison(text: string): { name: string; version: string; suite: string }[] {
  const out: { name: string; version: string; suite: string }[] = [];
  for (const line of text.split('\n')) {
    const f = line.split('|').map((x) => x.trim());
    const suite = /\s([a-z0-9-]+)\/[a-z-]+\s+\S+\s+Packages$/.exec(f[2] ?? '')?.[1];
    if (f.length === 3 && f[0] && f[1] && suite) out.push({ name: f[0], version: f[1], suite });
  }
  return out;
}
