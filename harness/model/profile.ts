/**
 * Per-kernel facts: the small, explicit differences between kernel versions (and Debian's
 * builds) that are legitimate, i.e. not bugs. Everything else in the model is the same for
 * every kernel. The table below is the only place where versions are compared.
 */
import { UserError } from '../util/errors.js';

export type Arch = 'x86_64' | 'arm64';
export type Distro = 'debian' | 'upstream';

export interface KernelProfile {
  /** the release string it was made for, e.g. "6.12.117+deb12-amd64" */
  release: string;
  /** major.minor, e.g. [6, 12] */
  series: readonly [number, number];
  arch: Arch;
  distro: Distro;
  /**
   * sysfs `isolate` and `isolate_strategy` exist (drivers/misc/uacce/uacce.c, added in 6.2:
   * isolate_show/isolate_strategy_show/_store and their uacce_dev_is_visible rules; 6.1 has neither).
   */
  sysfsIsolate: boolean;
  /**
   * How uacce handles UACCE_DEV_SVA:
   * - 'negotiate-at-alloc' (up to 6.15): uacce_alloc() -> uacce_enable_sva() clears the flag when
   *   iommu_dev_enable_feature(IOPF/SVA) fails, so sysfs `flags` reads 0 and open never binds;
   * - 'bind-every-open' (6.16 on): uacce_enable_sva() is gone, the flag is kept and every
   *   uacce_fops_open() -> uacce_bind_queue() calls iommu_sva_bind_device().
   */
  sva: 'negotiate-at-alloc' | 'bind-every-open';
  /**
   * Debian's stable-only patch on x86 6.1 and 6.12 makes every SVA bind fail with EOPNOTSUPP.
   * It only matters when the parent device has an IOMMU group (the test device's does not).
   */
  svaBindKillSwitch: boolean;
  /**
   * The kernel can give a device behind its IOMMU SVA: CONFIG_IOMMU_SVA and the IOMMU driver's
   * SVA part are built (Debian x86_64: IOMMU_SVA=y, INTEL_IOMMU_SVM=y). Debian's arm64 6.1, 6.12
   * and 7.2 configs have ARM_SMMU_V3=y but IOMMU_SVA and ARM_SMMU_V3_SVA off, so:
   * - up to 6.15, uacce_enable_sva() -> iommu_dev_enable_feature(parent, IOMMU_DEV_FEAT_IOPF) ->
   *   arm_smmu_dev_enable_feature() fails with -EINVAL: arm_smmu_master_iopf_supported() is the
   *   !CONFIG_ARM_SMMU_V3_SVA stub that returns false (drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c
   *   :2820 and arm-smmu-v3.h:796 in 6.1.192; :3465 and :932 in 6.12.118). The flag is cleared
   *   even for a parent with an IOMMU group (a group-less parent fails earlier with -ENODEV);
   * - from 6.16 every open binds (sva above): iommu_sva_bind_device() is the !CONFIG_IOMMU_SVA
   *   stub of include/linux/iommu.h, ERR_PTR(-ENODEV) (7.2.13 line 1671; 6.12.118 line 1534),
   *   and uacce_bind_queue() returns PTR_ERR(handle): the open fails with ENODEV, group or not.
   */
  iommuSva: boolean;
  /**
   * Base page size. Every profile has 4096, which the model and the test device's ABI assume
   * (device/abi.ts SVT_PAGE_SIZE): x86_64 has no other; Debian's arm64 configs choose
   * CONFIG_ARM64_4K_PAGES=y (config-6.1.0-*-arm64, config-6.12.118+deb12-arm64; the image header
   * says "4K pages"), so PAGE_SHIFT = CONFIG_PAGE_SHIFT = 12 (arch/arm64/include/asm/page-def.h).
   */
  pageSize: number;
  /**
   * mm/mremap.c from 6.17 ("mm/mremap: permit mremap() move of multiple VMAs" and the rework
   * before it): a MREMAP_FIXED move that keeps the size may span several VMAs (remap_move()),
   * and the VMA checks (check_prep_vma()) run before a shrinking move unmaps the tail. Up to
   * 6.16, mremap_to() unmaps the tail first and vma_to_resize() refuses to cross a VMA end.
   */
  mremapMultiVmaMove: boolean;
  /**
   * fs/ioctl.c do_vfs_ioctl() handles FS_IOC_GETFSUUID and FS_IOC_GETFSSYSFSPATH itself
   * (absent in 6.1, present in 6.12 and 7.2; added in 6.10 — Debian ships no series between).
   */
  vfsFsInfoIoctls: boolean;
  /**
   * mm/mprotect.c mprotect_fixup() from 6.7 ("mm/mprotect: allow unfaulted VMAs to be
   * unaccounted on mprotect()", MM updates for 6.7-rc1): an anonymous vma made read-only or
   * inaccessible before its first write fault (no anon_vma) loses VM_ACCOUNT, so it no longer
   * merges with accounted neighbours. 6.1 keeps VM_ACCOUNT; 6.12 and 7.2 drop it.
   */
  mprotectUnaccountsUnfaulted: boolean;
  /**
   * mm/vma.c is_mergeable_anon_vma() from 6.16 (commit 879bca0a2c4f "mm/vma: fix incorrectly
   * disallowed anonymous VMA merges"; 7.2 read): a range with an anon_vma merges into a
   * neighbour without one (the anon_vma is duplicated into it) unless it is a fork child. Up to
   * 6.15 (6.1, 6.12 read) that merge is refused: the neighbour's anon_vma chain must be singular,
   * and a neighbour without an anon_vma has an empty chain.
   */
  anonMergeIntoUnfaulted: boolean;
  /**
   * Which of vfio's user-space paths the kernel's config builds (read from the config by
   * kernels/vfio-modules.ts vfioPaths(); profileFor() assumes Debian's configs, which have
   * VFIO_GROUP=y and VFIO_CONTAINER=y and no IOMMUFD in 6.1, 6.12.118 and 7.2.13):
   * - group: VFIO_GROUP (/dev/vfio/<n>, /dev/vfio/vfio: the group path ops of harness/ops/vfio.ts);
   * - iommufd: IOMMUFD and VFIO_DEVICE_CDEV (/dev/iommu, /dev/vfio/devices/vfioN: harness/ops/iommufd.ts).
   */
  vfioPaths: VfioPaths;
}

export interface VfioPaths {
  readonly group: boolean;
  readonly iommufd: boolean;
}

/** Debian's kernels: the group path, no iommufd. */
export const DEBIAN_VFIO_PATHS: VfioPaths = { group: true, iommufd: false };

/** Version-dependent facts, each with the first series that has it. */
const SINCE_TABLE = [
  { fact: 'sysfsIsolate', since: [6, 2] },
  { fact: 'svaBindEveryOpen', since: [6, 16] },
  { fact: 'mremapMultiVmaMove', since: [6, 17] },
  { fact: 'vfsFsInfoIoctls', since: [6, 10] },
  { fact: 'mprotectUnaccountsUnfaulted', since: [6, 7] },
  { fact: 'anonMergeIntoUnfaulted', since: [6, 16] },
] as const;

/** Debian's SVA kill switch: (distro, arch, series) where it is applied. */
const SVA_KILL_SWITCH = [
  { distro: 'debian', arch: 'x86_64', series: [6, 1] },
  { distro: 'debian', arch: 'x86_64', series: [6, 12] },
] as const;

/**
 * Where SVA is not built: (distro, arch) -> the configs that say so. Debian arm64: IOMMU_SVA
 * and ARM_SMMU_V3_SVA off in 6.1, 6.12 and 7.2 (shared/notes/platform.md; re-read in the
 * config-* files of debian:6.1.192/arm64 and debian:6.12.118/arm64).
 */
const NO_IOMMU_SVA = [{ distro: 'debian', arch: 'arm64' }] as const;

/** The oldest series the model describes (uacce as in the spec; older kernels are not tested). */
const OLDEST: readonly [number, number] = [6, 1];

function atLeast(v: readonly [number, number], since: readonly [number, number]): boolean {
  return v[0] > since[0] || (v[0] === since[0] && v[1] >= since[1]);
}

const ARCH_ALIASES: Record<string, Arch> = { x86_64: 'x86_64', amd64: 'x86_64', arm64: 'arm64', aarch64: 'arm64' };

/**
 * The profile of a kernel: `version` is a release string ("6.12.117+deb12-amd64",
 * "6.1.0-41-amd64", "7.2.13") or a series ("6.12").
 */
export function profileFor(version: string, opts: { arch: string; distro: Distro; vfioPaths?: VfioPaths }): KernelProfile {
  const m = /^(\d+)\.(\d+)(?:[.\-+~_].*)?$/.exec(version.trim());
  if (!m) {
    throw new UserError(`kernel version "${version}" is not of the form MAJOR.MINOR[...], e.g. 6.12.117+deb12-amd64`);
  }
  const series: readonly [number, number] = [Number(m[1]), Number(m[2])];
  if (!atLeast(series, OLDEST)) {
    throw new UserError(`kernel ${version}: the reference model describes kernels from ${OLDEST.join('.')} on; use a newer kernel`);
  }
  const arch = ARCH_ALIASES[opts.arch];
  if (arch === undefined) throw new UserError(`architecture "${opts.arch}" is not supported; use x86_64 or arm64`);
  if (opts.distro !== 'debian' && opts.distro !== 'upstream') {
    throw new UserError(`distribution "${String(opts.distro)}" is not known; use debian or upstream`);
  }
  const has = (fact: (typeof SINCE_TABLE)[number]['fact']): boolean =>
    SINCE_TABLE.some((r) => r.fact === fact && atLeast(series, r.since));
  return {
    release: version.trim(),
    series,
    arch,
    distro: opts.distro,
    sysfsIsolate: has('sysfsIsolate'),
    sva: has('svaBindEveryOpen') ? 'bind-every-open' : 'negotiate-at-alloc',
    svaBindKillSwitch: SVA_KILL_SWITCH.some(
      (k) => k.distro === opts.distro && k.arch === arch && k.series[0] === series[0] && k.series[1] === series[1],
    ),
    iommuSva: !NO_IOMMU_SVA.some((k) => k.distro === opts.distro && k.arch === arch),
    pageSize: 4096,
    mremapMultiVmaMove: has('mremapMultiVmaMove'),
    vfsFsInfoIoctls: has('vfsFsInfoIoctls'),
    mprotectUnaccountsUnfaulted: has('mprotectUnaccountsUnfaulted'),
    anonMergeIntoUnfaulted: has('anonMergeIntoUnfaulted'),
    vfioPaths: opts.vfioPaths ?? DEBIAN_VFIO_PATHS,
  };
}

/**
 * Whether an open of an SVA device binds on this kernel (the svadiff-sva endpoint has an IOMMU
 * group, so only Debian's kill switch stops it): the generator then makes SVA programs and
 * `svadiff fuzz` runs on the SVA machine, which exists for x86_64 only (harness/vm/machine.ts).
 */
export function svaBinds(p: KernelProfile): boolean {
  return p.arch === 'x86_64' && !p.svaBindKillSwitch;
}
