/**
 * The one program format of svadiff (version 1): corpus seeds, generated programs, findings,
 * minimized reproducers and replays all use it. See docs/program-format.md.
 *
 * A program is a test device configuration plus a list of operations executed in order. Each
 * operation names the task (process) that performs it. File descriptors and mappings have
 * symbolic names; a name is created once (by open/dup, mmap/alloc/mremap) and keeps meaning the
 * same object in every task that inherits it through fork. Consecutive ops with the same
 * `group` run at the same time, each in its task (version 2).
 */

export const PROGRAM_FORMAT = 'svadiff-program';
/** The version svadiff writes: 2 added concurrent groups (`group`); version 1 programs still parse. */
export const PROGRAM_VERSION = 2;
/** The versions svadiff reads. */
export const PROGRAM_VERSIONS = [1, 2] as const;
export type ProgramVersion = (typeof PROGRAM_VERSIONS)[number];

export type IsolateOps = 'none' | 'read' | 'write' | 'both';

/** Parameters of the test uacce device (module parameters of svadiff_test.ko). */
export interface DeviceParams {
  /** number of test devices, 1..8 */
  devices: number;
  /** pages of region 0 (MMIO), 0..16; 0: no such region */
  mmio_pages: number;
  /** pages of region 1 (DUS), 0..16; 0: no such region */
  dus_pages: number;
  /** queues one device hands out at once, 1..64 */
  queue_limit: number;
  /** register with UACCE_DEV_SVA */
  sva: boolean;
  /** which isolate strategy ops exist (isolate_err_threshold_read/write), 6.2+ */
  isolate_ops: IsolateOps;
  /** whether get_isolate_state exists, 6.2+ */
  isolate_state: boolean;
  /** whether the driver has an ioctl op */
  ioctl: boolean;
  /** sysfs api string */
  api: string;
  /** algorithm names */
  algorithms: string[];
  /**
   * The IOMMU groups the program needs (sva only): each list is a set of endpoint indexes that
   * must form one IOMMU group of the guest, with no other listed endpoint in it. Absent: any
   * layout. The machine is chosen by it (harness/vm/machine.ts machineForDevice) and the
   * harness checks it against the guest's sysfs before the program runs (harness/vm/groups.ts).
   */
  groups?: number[][];
}

export const DEFAULT_DEVICE: DeviceParams = {
  devices: 1,
  mmio_pages: 2,
  dus_pages: 2,
  queue_limit: 4,
  sva: false,
  isolate_ops: 'none',
  isolate_state: false,
  ioctl: false,
  api: 'svadiff-test-v1',
  algorithms: ['copy', 'fill'],
};

/**
 * The ops and their fields are described once each in harness/ops (one description per op: the
 * parser, the wire, the agent's and the reproducers' C, reports and the docs read it); these are
 * their types.
 */
export { OP_KINDS, SYSFS_ATTRS, type IoctlCmd, type Op, type OpKind, type OpOf, type SysfsAttr } from '../ops/index.js';
import type { Op, OpOf } from '../ops/index.js';

export type Prot = OpOf<'mmap'>['prot'];
export type OpenVia = OpOf<'open'>['via'];
export type WorkKind = OpOf<'submit'>['work'];

export type OpOpen = OpOf<'open'>;
export type OpClose = OpOf<'close'>;
export type OpDup = OpOf<'dup'>;
export type OpMmap = OpOf<'mmap'>;
export type OpAlloc = OpOf<'alloc'>;
export type OpMunmap = OpOf<'munmap'>;
export type OpMremap = OpOf<'mremap'>;
export type OpMadvise = OpOf<'madvise'>;
export type OpMprotect = OpOf<'mprotect'>;
export type OpTouch = OpOf<'touch'>;
export type OpSubmit = OpOf<'submit'>;
export type OpIoctl = OpOf<'ioctl'>;
export type OpPoll = OpOf<'poll'>;
export type OpFork = OpOf<'fork'>;
export type OpExit = OpOf<'exit'>;
export type OpRemove = OpOf<'remove'>;
export type OpAdd = OpOf<'add'>;
export type OpSysfsRead = OpOf<'sysfs_read'>;
export type OpSysfsWrite = OpOf<'sysfs_write'>;
export type OpPasid = OpOf<'pasid'>;

export interface Program {
  format: typeof PROGRAM_FORMAT;
  version: ProgramVersion;
  /** free text: where the program came from */
  comment?: string;
  device: DeviceParams;
  ops: Op[];
}

export { LIMITS, ROOT_TASK } from './limits.js';
