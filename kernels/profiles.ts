/**
 * Version facts about Debian kernels, in one place. Everything that differs between kernel
 * series, architectures or compilers lives in these tables; the rest of kernels/ is generic.
 * Facts were measured on the Debian packages (see /work/shared/notes/platform.md) and by
 * `dpkg-deb -c` of the packages named in the comments.
 */
import type { Arch } from './types.js';
import { compareKernelVersions } from './debversion.js';

/** How a series packages its kernel image, config and System.map. */
export type ImageLayout =
  /**
   * `linux-image-<release>[-unsigned]` holds ./boot/vmlinuz-<release>, ./boot/config-<release>
   * and ./boot/System.map-<release> (6.1: linux-image-6.1.0-56-amd64-unsigned 6.1.192-2;
   * 6.12: linux-image-6.12.117+deb12-amd64-unsigned 6.12.117-1~deb12u1).
   */
  | 'boot'
  /**
   * `linux-image-<release>` is only a metapackage; the image is
   * ./usr/lib/modules/<release>/vmlinuz.unsigned in `linux-binary-unsigned-<release>`, config and
   * System.map are ./usr/lib/modules/<release>/{config,System.map} in `linux-base-<release>`
   * (7.2: linux-binary-unsigned-7.2.13+deb14-amd64 7.2.13-1).
   */
  | 'split';

export interface SeriesProfile {
  /** first series this profile applies to; it covers every later series up to the next profile */
  fromSeries: string;
  layout: ImageLayout;
  /**
   * ABI tags (the `+debNN` part of the release) in order of preference when one upstream version
   * was built more than once. 6.12.N+deb12 (bookworm-backports/-security) was built with
   * bookworm's gcc-12 and builds on the host; +deb13 (trixie) needs trixie's gcc-14.
   * An empty list: the series has one naming only (6.1 uses `6.1.0-<abi>`).
   */
  preferredAbiTags: string[];
  /** compiler assumed when the config has no CONFIG_CC_VERSION_TEXT (never seen so far) */
  fallbackCompiler: string;
  /**
   * Modules from the kernel package the guest must load before uacce.ko (paths relative to
   * /lib/modules/<release>/). None is needed today: everything the guest uses is built in
   * (SERIAL_8250=y, DEVTMPFS=y, IOMMU_SVA=y). fetchKernel refuses a non-empty list until the
   * extraction of kernel modules is implemented.
   */
  extraModules: string[];
}

/**
 * Ordered by series. A series uses the last profile whose fromSeries is not newer than it, so a
 * new 7.x series in sid is handled like 7.2 until it differs.
 */
export const SERIES_PROFILES: readonly SeriesProfile[] = [
  { fromSeries: '6.1', layout: 'boot', preferredAbiTags: [], fallbackCompiler: 'gcc-12', extraModules: [] },
  {
    fromSeries: '6.12',
    layout: 'boot',
    preferredAbiTags: ['+deb12', '+deb13'],
    fallbackCompiler: 'gcc-12',
    extraModules: [],
  },
  { fromSeries: '7.2', layout: 'split', preferredAbiTags: ['+deb14'], fallbackCompiler: 'gcc-16', extraModules: [] },
];

/** Where a compiler version is available: on the host, or in a Debian build root made once. */
export type BuildEnv =
  | { kind: 'host'; hostPackage: string }
  | {
      kind: 'chroot';
      /** the Debian suite debootstrap installs; also the directory name under buildroots/ */
      suite: string;
      /** packages for `debootstrap --include=` */
      packages: string[];
    };

/**
 * Compiler (as `gcc-<major>`, taken from CONFIG_CC_VERSION_TEXT) to build environment.
 * Modules must be built with the kernel's compiler (plugins, flags and the kbuild binaries of
 * the headers package are made for it). The kbuild binaries of 7.2 need glibc >= 2.38, so a
 * bookworm host cannot run them: they get a sid build root.
 */
export const COMPILER_PROFILES: Readonly<Record<string, BuildEnv>> = {
  'gcc-12': { kind: 'host', hostPackage: 'gcc-12' },
  // 6.12.N+deb13 (trixie) kernels; only chosen when no +deb12 build of that version exists.
  'gcc-14': { kind: 'chroot', suite: 'trixie', packages: ['gcc-14', 'make', 'libelf-dev', 'libssl-dev', 'bc', 'pahole'] },
  'gcc-16': { kind: 'chroot', suite: 'sid', packages: ['gcc-16', 'make', 'libelf-dev', 'libssl-dev', 'bc', 'pahole'] },
};

export interface ArchProfile {
  /** Debian architecture name (dpkg --print-architecture) */
  debArch: string;
  /** Debian kernel flavour in package names (linux-image-<abi>-<flavour>) */
  flavour: string;
  /** whether fetchKernel can build modules for it on this (x86_64) host yet */
  moduleBuild: boolean;
}

export const ARCH_PROFILES: Readonly<Record<Arch, ArchProfile>> = {
  x86_64: { debArch: 'amd64', flavour: 'amd64', moduleBuild: true },
  // Listing works; building needs a cross compiler (gcc-aarch64-linux-gnu) and is not done yet.
  arm64: { debArch: 'arm64', flavour: 'arm64', moduleBuild: false },
};

/** The suites of the private apt state, and which mirror serves each. */
export const APT_SUITES: readonly { suite: string; mirror: 'archive' | 'security' }[] = [
  { suite: 'bookworm', mirror: 'archive' },
  { suite: 'bookworm-security', mirror: 'security' },
  { suite: 'bookworm-backports', mirror: 'archive' },
  { suite: 'trixie', mirror: 'archive' },
  { suite: 'forky', mirror: 'archive' },
  { suite: 'sid', mirror: 'archive' },
];

export const DEBIAN_ARCHIVE_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

/** Package lists older than this are refreshed before a lookup. */
export const APT_LISTS_MAX_AGE_MS = 6 * 3600 * 1000;

/** The profile for a series, or undefined for series older than any profile. */
export function seriesProfile(series: string): SeriesProfile | undefined {
  let found: SeriesProfile | undefined;
  for (const p of SERIES_PROFILES) {
    if (compareKernelVersions(p.fromSeries, series) <= 0) found = p;
  }
  return found;
}

/**
 * Compiler of a kernel from its CONFIG_CC_VERSION_TEXT, as `gcc-<major>`: e.g.
 * "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0" or "x86_64-linux-gnu-gcc-16 (Debian 16.1.0-3) 16.1.0".
 * Undefined when the text names no gcc version.
 */
export function compilerFromVersionText(text: string): string | undefined {
  const m = /\bgcc(?:-\d+)? \([^)]*\) (\d+)\.\d+/.exec(text) ?? /\bgcc-(\d+)\b/.exec(text);
  return m ? `gcc-${m[1]}` : undefined;
}

/** The value of CONFIG_CC_VERSION_TEXT in a kernel config, without quotes. */
export function ccVersionTextOfConfig(config: string): string | undefined {
  const m = /^CONFIG_CC_VERSION_TEXT="((?:[^"\\]|\\.)*)"\s*$/m.exec(config);
  return m?.[1];
}

/** The compiler of a kernel config, falling back to the series profile; never undefined. */
export function selectCompiler(config: string, profile: SeriesProfile): { compiler: string; versionText: string | undefined } {
  const text = ccVersionTextOfConfig(config);
  const fromText = text === undefined ? undefined : compilerFromVersionText(text);
  return { compiler: fromText ?? profile.fallbackCompiler, versionText: text };
}

/** The build environment for a compiler, or undefined when svadiff has none for it. */
export function buildEnvFor(compiler: string): BuildEnv | undefined {
  return COMPILER_PROFILES[compiler];
}
