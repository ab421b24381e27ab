/**
 * How svadiff builds the QEMU of its SVA machine, as data: which Debian source package, which
 * patches, which configure options, and what the host needs. qemu/build.ts does the work.
 *
 * Measured choices (2026-12, this project's 2-core Debian 12 machines):
 *  - Debian's QEMU 10.2.x source: it has the VT-d side of ATS translation requests, page
 *    requests and page group responses (hw/i386/intel_iommu.c vtd_ats_request_translation,
 *    vtd_pri_request_page) and the PCIe ATS/PASID/PRI capability helpers, with no user; the
 *    patches add an intel-iommu `svm` option and the svadiff-sva endpoint. The 11.x source
 *    packages sid lists could not be downloaded from the registry (404), and 11.x's own `svm`
 *    property does not set SMPWC, without which Debian's 7.2 kernel refuses every SVA bind.
 *  - One target, the machine's devices only (qemu/files/configs/.../svadiff.mak), no optional
 *    features: a cold build is about 1000 compile steps.
 */
import type { HostPackage, HostTool } from '../harness/util/host.js';

/** The Debian source package and the upstream series the patch series is made for. */
export const QEMU_SOURCE = {
  name: 'qemu',
  /** the newest Debian version of this upstream series that can be downloaded is built */
  upstreamSeries: '10.2',
  /** deb-src suites of the private source apt state (kernels/apt.ts, apt/source) */
  suites: ['trixie', 'forky', 'sid'],
} as const;

export const QEMU_TARGET = 'x86_64-softmmu';
export const QEMU_BINARY = 'qemu-system-x86_64';

/**
 * Firmware the machine boots with: the +ds source has no blobs, so the host's Debian
 * packages provide them (SeaBIOS's bios-256k.bin; linuxboot_dma.bin and kvmvapic.bin).
 */
export const FIRMWARE_DIRS = ['/usr/share/seabios', '/usr/share/qemu'] as const;
export const FIRMWARE_PACKAGES: HostPackage[] = [
  { pkg: 'seabios', why: 'the BIOS of the SVA machine' },
  { pkg: 'qemu-system-data', why: 'the option ROMs of the SVA machine (linuxboot_dma.bin)' },
];

/** Programs the build runs (itself, or configure and ninja on PATH), and their packages. */
export const BUILD_TOOLS: HostTool[] = [
  { cmd: 'dpkg-source', pkg: 'dpkg-dev', why: 'unpacking the QEMU source package' },
  { cmd: 'xz', pkg: 'xz-utils', why: 'unpacking the QEMU source package' },
  { cmd: 'patch', pkg: 'patch', why: "applying svadiff's QEMU patches" },
  { cmd: 'ninja', pkg: 'ninja-build', why: 'building QEMU' },
  { cmd: 'gcc', pkg: 'gcc', why: 'compiling QEMU' },
  { cmd: 'pkg-config', pkg: 'pkg-config', why: 'configuring QEMU' },
];

/** Debian packages the build needs for their files (bookworm names). */
export const BUILD_PACKAGES: HostPackage[] = [
  // configure runs BUILD_PYTHON, whatever python3 is first on PATH
  { pkg: 'python3', why: "QEMU's configure" },
  { pkg: 'python3-venv', why: "QEMU's configure (its build venv)" },
  { pkg: 'python3-distlib', why: "QEMU's configure (entry points in its venv)" },
  { pkg: 'libglib2.0-dev', why: 'building QEMU' },
  { pkg: 'zlib1g-dev', why: 'building QEMU' },
];

/**
 * QEMU 10.2 wants meson >= 1.5 (pythondeps.toml) and the +ds source has no bundled wheel;
 * bookworm has 1.0. The meson of bookworm-backports (pure Python, built for bookworm) is
 * downloaded through the private apt state and run from the cache, never installed.
 */
export const MESON = { name: 'meson', minVersion: '1.5.0', preferVersionTag: '~bpo12' } as const;

/** The Python the build runs with: Debian's, whatever else is first on PATH. */
export const BUILD_PYTHON = '/usr/bin/python3';

/** configure options; the paths are added by the builder. */
export const CONFIGURE_ARGS: readonly string[] = [
  `--target-list=${QEMU_TARGET}`,
  '--without-default-features',
  '--without-default-devices',
  '--with-devices-x86_64=svadiff',
  '--enable-tcg',
  '--enable-kvm',
  '--disable-docs',
  '--disable-tools',
  '--disable-download',
  '--disable-install-blobs',
  '--disable-fdt',
  '--disable-debug-info',
  '--disable-relocatable',
  `--firmwarepath=${FIRMWARE_DIRS.join(':')}`,
];

/** Bump when the build procedure changes in a way the inputs do not show. */
export const QEMU_RECIPE = 1;
