/**
 * The one program format of svadiff (version 1): corpus seeds, generated programs, findings,
 * minimized reproducers and replays all use it. See docs/program-format.md.
 *
 * A program is a test device configuration plus a list of operations executed in order. Each
 * operation names the task (process) that performs it. File descriptors and mappings have
 * symbolic names; a name is created once (by open/dup, mmap/alloc/mremap) and keeps meaning the
 * same object in every task that inherits it through fork.
 */

export const PROGRAM_FORMAT = 'svadiff-program';
export const PROGRAM_VERSION = 1;

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

export type Prot = 'r' | 'rw' | 'none';
export type OpenVia = 'path' | 'mknod' | 'procfd';
export type IoctlCmd = 'START_Q' | 'PUT_Q' | 'PING' | number;
export type WorkKind = 'write' | 'read' | 'invalid';

/** sysfs attributes of a uacce device that programs may read or write. */
export const SYSFS_ATTRS = [
  'api',
  'flags',
  'available_instances',
  'algorithms',
  'region_mmio_size',
  'region_dus_size',
  'isolate',
  'isolate_strategy',
] as const;
export type SysfsAttr = (typeof SYSFS_ATTRS)[number];

interface OpBase {
  /** the task (process) that performs the operation; "t0" is the first task */
  task: string;
}

/** open the test device: a new queue */
export interface OpOpen extends OpBase {
  op: 'open';
  /** name of the new file descriptor */
  fd: string;
  /** device index */
  dev: number;
  /**
   * path: /dev/svt<dev>-<id> (resolved when the op runs; a removed device's old path);
   * mknod: a second node /tmp/svt<dev>.node made with mknod for the device's major:minor;
   * procfd: /proc/self/fd/<N> of the existing descriptor `of`
   */
  via: OpenVia;
  /** with via=procfd: the descriptor to reopen */
  of?: string;
}

export interface OpClose extends OpBase {
  op: 'close';
  fd: string;
}

export interface OpDup extends OpBase {
  op: 'dup';
  fd: string;
  /** name of the new descriptor */
  as: string;
}

/** mmap of a queue region: offset = region * page size */
export interface OpMmap extends OpBase {
  op: 'mmap';
  map: string;
  fd: string;
  /** the page offset of the mmap call, i.e. the uacce region (0 MMIO, 1 DUS, 2+ invalid) */
  region: number;
  pages: number;
  prot: Prot;
  /** MAP_SHARED (true) or MAP_PRIVATE (false) */
  shared: boolean;
}

/** anonymous private read-write memory, zero filled: a target for device work items */
export interface OpAlloc extends OpBase {
  op: 'alloc';
  map: string;
  pages: number;
}

/** munmap of pages [page, page+pages) of a mapping (relative to where it was created) */
export interface OpMunmap extends OpBase {
  op: 'munmap';
  map: string;
  page: number;
  pages: number;
}

/**
 * mremap(addr + page*4K, old_pages, new_pages, flags[, new address]).
 * move: MREMAP_MAYMOVE|MREMAP_FIXED to the fresh place of map `to`;
 * dontunmap: MREMAP_MAYMOVE|MREMAP_DONTUNMAP (implies a move to `to`).
 */
export interface OpMremap extends OpBase {
  op: 'mremap';
  map: string;
  page: number;
  old_pages: number;
  new_pages: number;
  move: boolean;
  dontunmap: boolean;
  /** name for the moved mapping (required with move or dontunmap) */
  to?: string;
}

export interface OpMadvise extends OpBase {
  op: 'madvise';
  map: string;
  page: number;
  pages: number;
  advice: 'dofork';
}

/** a 64-bit load or store at (page, offset) of a mapping; a fault is reported as a signal */
export interface OpTouch extends OpBase {
  op: 'touch';
  map: string;
  page: number;
  /** byte offset within the page, a multiple of 8 */
  offset: number;
  access: 'read' | 'write';
  /** value to store, as a hex string "0x…" (access=write) */
  value?: string;
}

/**
 * Submit one work item to a queue through its mappings: write a descriptor into the ring of
 * the `dus` mapping, ring the doorbell in the `mmio` mapping and wait for the completion.
 * The target address is (page, offset) of mapping `target` as this task sees it.
 */
export interface OpSubmit extends OpBase {
  op: 'submit';
  mmio: string;
  dus: string;
  work: WorkKind;
  target: string;
  page: number;
  offset: number;
  /** for work=write, hex "0x…" */
  value?: string;
  /** write CQ_HEAD to ACK after the completion (consume the news) */
  ack: boolean;
}

export interface OpIoctl extends OpBase {
  op: 'ioctl';
  fd: string;
  /** START_Q, PUT_Q, PING (the test driver's command), or a raw command number */
  cmd: IoctlCmd;
}

export interface OpPoll extends OpBase {
  op: 'poll';
  fd: string;
  timeout_ms: number;
}

export interface OpFork extends OpBase {
  op: 'fork';
  /** name of the new task */
  child: string;
}

export interface OpExit extends OpBase {
  op: 'exit';
}

/** unbind the parent driver from device `dev` (device removal) */
export interface OpRemove extends OpBase {
  op: 'remove';
  dev: number;
}

/** bind the parent driver to device `dev` again (a fresh uacce device) */
export interface OpAdd extends OpBase {
  op: 'add';
  dev: number;
}

export interface OpSysfsRead extends OpBase {
  op: 'sysfs_read';
  dev: number;
  attr: SysfsAttr;
}

export interface OpSysfsWrite extends OpBase {
  op: 'sysfs_write';
  dev: number;
  attr: SysfsAttr;
  value: string;
}

export type Op =
  | OpOpen
  | OpClose
  | OpDup
  | OpMmap
  | OpAlloc
  | OpMunmap
  | OpMremap
  | OpMadvise
  | OpTouch
  | OpSubmit
  | OpIoctl
  | OpPoll
  | OpFork
  | OpExit
  | OpRemove
  | OpAdd
  | OpSysfsRead
  | OpSysfsWrite;

export type OpKind = Op['op'];

export const OP_KINDS: readonly OpKind[] = [
  'open',
  'close',
  'dup',
  'mmap',
  'alloc',
  'munmap',
  'mremap',
  'madvise',
  'touch',
  'submit',
  'ioctl',
  'poll',
  'fork',
  'exit',
  'remove',
  'add',
  'sysfs_read',
  'sysfs_write',
];

export interface Program {
  format: typeof PROGRAM_FORMAT;
  version: typeof PROGRAM_VERSION;
  /** free text: where the program came from */
  comment?: string;
  device: DeviceParams;
  ops: Op[];
}

/** Limits that keep programs within what the agent's fixed tables hold. */
export const LIMITS = {
  maxOps: 4096,
  maxTasks: 8,
  maxFds: 1024,
  maxMaps: 1024,
  maxPages: 64,
  maxRegionPages: 16,
  maxDevices: 8,
  maxQueueLimit: 64,
  maxPollMs: 2000,
  maxString: 64,
} as const;

/** Name of the first task, which exists when a program starts. */
export const ROOT_TASK = 't0';
