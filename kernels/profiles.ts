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
  | {
      kind: 'host';
      hostPackage: string;
      /** the compiler command when it is not the package name (cross compilers) */
      cmd?: string;
    }
  | {
      kind: 'chroot';
      /** the Debian suite debootstrap installs; also the directory name under buildroots/ */
      suite: string;
      /** packages for `debootstrap --include=` */
      packages: string[];
      /** directory name under buildroots/ when it is not the suite (a root with other packages) */
      root?: string;
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

/**
 * How modules for another architecture's kernel are built on this x86_64 host: Debian's
 * cross compilers and its headers packages, which are made for cross builds (the
 * linux-kbuild-* package is Multi-Arch: foreign, so the host architecture's kbuild tools serve
 * the other architecture's headers).
 */
export interface CrossBuild {
  /** ARCH= for kbuild */
  kernelArch: string;
  /** CROSS_COMPILE= for kbuild (Debian's headers Makefile prefixes its gcc-N with it) */
  prefix: string;
  /** kernel compiler (gcc-<major>) to the environment that has its cross version */
  compilers: Readonly<Record<string, BuildEnv>>;
}

export interface ArchProfile {
  /** Debian architecture name (dpkg --print-architecture) */
  debArch: string;
  /** Debian kernel flavour in package names (linux-image-<abi>-<flavour>) */
  flavour: string;
  /** undefined: modules are built natively (COMPILER_PROFILES) */
  cross?: CrossBuild;
}

// The sid build root for arm64 7.2 is its own (buildroots/sid-arm64): adding the cross compiler
// to the shared sid root would make every x86 build wait for a new debootstrap.
const SID_CROSS_ARM64: BuildEnv = {
  kind: 'chroot',
  suite: 'sid',
  root: 'sid-arm64',
  packages: ['gcc-16', 'gcc-16-aarch64-linux-gnu', 'make', 'libelf-dev', 'libssl-dev', 'bc', 'pahole'],
};

export const ARCH_PROFILES: Readonly<Record<Arch, ArchProfile>> = {
  x86_64: { debArch: 'amd64', flavour: 'amd64' },
  arm64: {
    debArch: 'arm64',
    flavour: 'arm64',
    cross: {
      kernelArch: 'arm64',
      prefix: 'aarch64-linux-gnu-',
      compilers: {
        // bookworm's cross gcc-12 (12.2.0-14cross1) is the compiler of Debian's arm64 6.1 and 6.12+deb12
        'gcc-12': { kind: 'host', hostPackage: 'gcc-12-aarch64-linux-gnu', cmd: 'aarch64-linux-gnu-gcc-12' },
        'gcc-16': SID_CROSS_ARM64,
      },
    },
  },
};

/**
 * Modules of a kernel package the guest loads in /init, before its agent starts, because the
 * agent's channel needs them (harness/vm/machine.ts agentTty): paths under
 * /lib/modules/<release>/ in the image package, in load order (the `depends` of their
 * .modinfo). Only Debian's arm64 6.1 needs any: VIRTIO_PCI and VIRTIO_CONSOLE are =m there
 * (config-6.1.0-57-arm64) and =y in 6.12 and 7.2; virtio_pci depends on
 * virtio_pci_modern_dev and virtio_pci_legacy_dev (VIRTIO_PCI_LIB, VIRTIO_PCI_LIB_LEGACY =m).
 */
export const CHANNEL_MODULES: readonly { arch: Arch; series: string; modules: readonly string[] }[] = [
  {
    arch: 'arm64',
    series: '6.1',
    modules: [
      'kernel/drivers/virtio/virtio_pci_modern_dev.ko',
      'kernel/drivers/virtio/virtio_pci_legacy_dev.ko',
      'kernel/drivers/virtio/virtio_pci.ko',
      'kernel/drivers/char/virtio_console.ko',
    ],
  },
];

/** The channel modules of a kernel of this architecture and series (none for most). */
export function channelModules(arch: Arch, series: string): readonly string[] {
  return CHANNEL_MODULES.find((c) => c.arch === arch && c.series === series)?.modules ?? [];
}

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

/** The build environment for a compiler (of a kernel of arch), or undefined when svadiff has none for it. */
export function buildEnvFor(compiler: string, arch: Arch = 'x86_64'): BuildEnv | undefined {
  const cross = ARCH_PROFILES[arch].cross;
  return cross ? cross.compilers[compiler] : COMPILER_PROFILES[compiler];
}

/** make variables a module build for a kernel of arch needs (none for native builds). */
export function crossMakeVars(arch: Arch): Record<string, string> {
  const cross = ARCH_PROFILES[arch].cross;
  return cross ? { ARCH: cross.kernelArch, CROSS_COMPILE: cross.prefix } : {};
}
