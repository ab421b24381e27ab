/**
 * Kernel configurations for kernels svadiff builds from source: a small base made for the
 * guest (kernels/config/base.config) and named fragments on top (kernels/config/<name>.config),
 * merged with the tree's own scripts/kconfig/merge_config.sh and completed with allnoconfig,
 * so that everything not asked for is off and a build takes minutes, not hours.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../harness/util/errors.js';
import { atomicWrite, exists, sha256 } from '../harness/util/fsx.js';
import { projectRoot } from '../harness/util/paths.js';
import { execaTiedToParent } from '../harness/util/proc.js';
import { safeLine } from '../harness/util/sanitize.js';

/** The fragments, by name: what each turns on (the file says how). */
export const FRAGMENTS: Readonly<Record<string, string>> = {
  kasan: 'KASAN (generic, inline): use-after-free and out-of-bounds reports',
  lockdep: 'lockdep with PROVE_LOCKING, and sleeping-in-atomic checks',
  kfence: 'KFENCE sampled guarded allocations',
  iommufd: 'IOMMUFD, VFIO with the device cdev, vfio-pci',
  'uacce-builtin': 'uacce built in (CONFIG_UACCE=y) instead of uacce.ko',
  kcov: 'KCOV coverage with comparison operands (and debugfs)',
  'fault-injection': 'failslab and fail_page_alloc fault injection (and debugfs)',
};

export const FRAGMENT_NAMES: readonly string[] = Object.keys(FRAGMENTS).sort();

/** Bump when the way a configuration is made changes (base/fragment files are hashed anyway). */
const CONFIG_RECIPE = 1;

export function configDir(): string {
  return join(projectRoot(), 'kernels', 'config');
}

export interface ConfigInputs {
  /** absolute paths, base first, in merge order */
  files: string[];
  fragments: string[];
  /** sha256 over the recipe and the files' names and settings: the configuration's identity */
  key: string;
}

/** The files to merge for these fragments (names already checked) and their hash. */
export async function configInputs(fragments: readonly string[], dir = configDir()): Promise<ConfigInputs> {
  const names = ['base', ...fragments];
  const files = names.map((n) => join(dir, `${n}.config`));
  const parts: string[] = [`recipe ${CONFIG_RECIPE}`];
  for (const [i, f] of files.entries()) {
    let text: string;
    try {
      text = await fs.readFile(f, 'utf8');
    } catch {
      throw new UserError(`the config fragment file ${f} is missing; restore kernels/config/ from the repository`);
    }
    // the settings only: a comment edited in a fragment does not rebuild every kernel
    const settings = [...parseConfigRequests(text)].map(([k, v]) => `${k}=${v}`);
    parts.push(`${names[i]}\n${settings.join('\n')}`);
  }
  return { files, fragments: [...fragments], key: sha256(parts.join('\0')) };
}

export interface ConfigRequest {
  symbol: string;
  /** "y", "m", a number or a quoted string; "n" for "# CONFIG_X is not set" */
  value: string;
}

/** The settings a config file asks for (CONFIG_X=v and "# CONFIG_X is not set" lines), last one wins. */
export function parseConfigRequests(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const set = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line);
    if (set) {
      out.set(set[1]!, set[2]!);
      continue;
    }
    const unset = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/.exec(line);
    if (unset) out.set(unset[1]!, 'n');
  }
  return out;
}

/**
 * What was asked for and did not take in the final .config (a dependency the tree lacks, a
 * symbol it does not have, a choice it resolves otherwise), with the file that asked.
 */
export function unmetRequests(requests: { file: string; text: string }[], finalConfig: string): { symbol: string; want: string; got: string; file: string }[] {
  const final = parseConfigRequests(finalConfig);
  const asked = new Map<string, { want: string; file: string }>();
  for (const r of requests) for (const [symbol, want] of parseConfigRequests(r.text)) asked.set(symbol, { want, file: r.file });
  const out: { symbol: string; want: string; got: string; file: string }[] = [];
  for (const [symbol, { want, file }] of asked) {
    const got = final.get(symbol) ?? 'n';
    if (got !== want) out.push({ symbol, want, got: final.has(symbol) ? got : 'absent', file });
  }
  return out;
}

export interface MakeConfigOptions {
  /** the source tree (merge_config.sh runs in it) */
  src: string;
  /** the build directory (O=) */
  build: string;
  inputs: ConfigInputs;
  /** make variables every make call of the build uses (CC=..., HOSTCC=...) */
  makeVars: string[];
  env: Record<string, string>;
}

/**
 * Write build/.config: merge base and fragments with the tree's merge_config.sh (-m: merge
 * only), then `make allnoconfig` with the merged file as KCONFIG_ALLCONFIG (what merge_config.sh
 * -n does, but with our make variables), then check that every request took.
 */
export async function makeConfig(o: MakeConfigOptions): Promise<void> {
  const merge = join(o.src, 'scripts', 'kconfig', 'merge_config.sh');
  if (!(await exists(merge))) throw new UserError(`${o.src} has no scripts/kconfig/merge_config.sh: not a kernel tree`);
  await fs.mkdir(o.build, { recursive: true });
  const r = await execaTiedToParent('sh', [merge, '-m', '-O', o.build, ...o.inputs.files], { cwd: o.src, env: o.env, extendEnv: false, reject: false, all: true });
  if (r.exitCode !== 0) throw new UserError(`merge_config.sh failed (exit ${r.exitCode}): ${safeLine(String(r.all ?? '').split('\n').filter(Boolean).pop() ?? '', 300)}`, 1);
  const requested = join(o.build, 'svadiff-requested.config');
  await atomicWrite(requested, await fs.readFile(join(o.build, '.config')));
  const mk = await execaTiedToParent('make', ['-s', '-C', o.src, `O=${o.build}`, ...o.makeVars, `KCONFIG_ALLCONFIG=${requested}`, 'allnoconfig'], {
    env: o.env,
    extendEnv: false,
    reject: false,
    all: true,
  });
  if (mk.exitCode !== 0) {
    const line = String(mk.all ?? '').split('\n').find((l) => /error|\*\*\*/i.test(l)) ?? `make exit ${mk.exitCode}`;
    throw new UserError(`configuring the kernel failed: ${safeLine(line, 300)}`, 1);
  }
  const requests = await Promise.all(o.inputs.files.map(async (f) => ({ file: f.split('/').pop()!, text: await fs.readFile(f, 'utf8') })));
  const unmet = unmetRequests(requests, await fs.readFile(join(o.build, '.config'), 'utf8'));
  if (unmet.length > 0) {
    const shown = unmet.slice(0, 6).map((u) => `${u.symbol}=${u.want} (${u.file}) is ${u.got}`);
    throw new UserError(`this tree cannot give the asked configuration: ${shown.join('; ')}${unmet.length > 6 ? `; and ${unmet.length - 6} more` : ''} (a missing dependency, or the tree has no such option)`, 1);
  }
}
