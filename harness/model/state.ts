/**
 * The model's state and the copy-on-write Draft used to compute a successor state.
 *
 * A ModelState is never changed once returned: predict() builds the next state in a Draft that
 * copies only the objects an operation touches (a few maps and records), so predicting an op
 * costs about the same whatever the program length.
 */
import type { DeviceParams, Prot } from '../program/types.js';
import { clonePage, emptyPage, type Page, type Word } from '../device/memory.js';
import type { DriverCounters } from '../device/testdev.js';
import type { KernelProfile } from './profile.js';
import type { VfioState } from './vfio.js';

/** uacce's view of a queue (enum uacce_q_state), plus RELEASED while uacce_fops_release frees it
 * (a released queue is then dropped from the state). */
export type UacceState = 'INIT' | 'STARTED' | 'ZOMBIE' | 'RELEASED';
/** The test driver's view (SVT_QSTATE_*). */
export type DriverState = 'INIT' | 'STARTED' | 'STOPPED' | 'RELEASED';

/** One struct uacce_device: one probe of the parent driver. */
export interface Instance {
  key: number;
  devIndex: number;
  /** uacce dev_id from xa_alloc; also the minor */
  id: number;
  /** registered (until uacce_remove) */
  present: boolean;
  /** negotiated uacce->flags (UACCE_DEV_SVA or 0) */
  flags: number;
  /** queues between the driver's get_queue and put_queue */
  liveQueues: number;
  /** faults of all queues of this device since probe (null: unknown) */
  faultTotal: number | null;
  /** isolate_err_threshold (0 at probe) */
  threshold: number;
  cdev: number;
  /** the devtmpfs node /dev/svt<N>-<id> made for this instance */
  pathInode: number;
}

/** A struct cdev: `mapped` while registered in cdev_map; alive while mapped or a file holds it. */
export interface Cdev {
  key: number;
  minor: number;
  mapped: boolean;
  /** open files holding a cdev_get reference */
  refs: number;
}

/** A device-node inode: i_rdev's minor, and i_cdev (fs/char_dev.c chrdev_open caches it). */
export interface Inode {
  key: number;
  kind: 'devtmpfs' | 'mknod';
  devIndex: number;
  minor: number;
  iCdev: number | null;
}

/** Test device index N (platform device svadiff_test.N). */
export interface DevSlot {
  index: number;
  /** key of the bound uacce instance, null while unbound */
  instance: number | null;
  /** the uacce id of the last node seen (the agent keeps the last name of a removed device) */
  lastId: number;
  /** the agent's /tmp/svt<N>.node, made at its first use */
  mknodInode: number | null;
}

/** A queue = one open file description of a uacce device. */
export interface Queue {
  /** the driver's module-wide queue id (SVT_REG_QUEUE_ID), from 1 */
  id: number;
  instance: number;
  devIndex: number;
  state: UacceState;
  drv: DriverState;
  openerTask: string;
  openerMm: number;
  pasid: Word;
  /** the driver's own counters (consumed, dropped, starts, stops, faults) */
  ctr: DriverCounters;
  /** the engine works on this queue asynchronously (a doorbell rung outside a submit): its
   * completion words, the device's fault total and the opener's anonymous memory are unknown
   * until it stops */
  racy: boolean;
  /** region table (q->qfrs): the mapping id holding region 0 / 1, or null */
  regions: [number | null, number | null];
  /** file references: descriptors in all tasks + live VMA pieces */
  refs: number;
  inode: number;
  cdev: number;
  /** device memory: key region << 8 | page */
  mem: Map<number, Page>;
}

export interface AnonVma {
  kind: 'anon';
  start: number;
  pages: number;
  prot: Prot;
  /** vm_pgoff (for anonymous memory: the page number it was created at) */
  pgoff: number;
  /** anon_vma identity: null until the first write fault; pieces of one mapping share it */
  anonVma: number | null;
  /** the anon_vma came from anon_vma_fork() (its chain is not singular) */
  forked: boolean;
  /**
   * VM_ACCOUNT: its pages are charged as committed memory. mmap of private writable memory
   * sets it (mm/mmap.c accountable_mapping()); mprotect may set or clear it (mprotect.ts
   * protectPiece). Vmas merge only with equal flags, this one included.
   */
  account: boolean;
}

export interface UacceVma {
  kind: 'uacce';
  start: number;
  pages: number;
  prot: Prot;
  shared: boolean;
  queue: number;
  region: 0 | 1;
  /** the region page mapped at `start` */
  regionPage: number;
  /** which successful mmap made this piece */
  mapId: number;
}

export type Vma = AnonVma | UacceVma;

/** An address space. Addresses are page numbers (address >> 12). */
export interface Mm {
  id: number;
  /** mm_users > 0 (its task has not exited) */
  alive: boolean;
  /** sorted by start, not overlapping */
  vmas: Vma[];
  /** contents of anonymous pages and of private COW copies of device pages, by page number */
  pages: Map<number, Page>;
  /** its PASID once a bind allocated one (the model's symbol: harness/model/sva.ts), else null */
  pasid: Word | null;
}

export interface Task {
  name: string;
  alive: boolean;
  mm: number;
  /** descriptor name -> queue id */
  fds: Map<string, number>;
  /** the PASIDs the pasid op has read in this task and its forebears, in order (null: unknown) */
  pasidsSeen: readonly (Word | null)[];
}

export interface ModelState {
  profile: KernelProfile;
  device: DeviceParams;
  devs: DevSlot[];
  instances: Map<number, Instance>;
  cdevs: Map<number, Cdev>;
  inodes: Map<number, Inode>;
  /** queues not yet released (uacce_fops_release drops them) */
  queues: Map<number, Queue>;
  tasks: Map<string, Task>;
  mms: Map<number, Mm>;
  /** mapping name -> slot (the host numbers names in order of first creation) */
  mapSlots: Map<string, number>;
  nextQueueId: number;
  /** next key for instances, cdevs, inodes, mms, mapping ids and anon_vmas */
  nextKey: number;
  /** operations predicted so far */
  ops: number;
  /** endpoints, IOMMU groups and vfio files (harness/model/vfio.ts); only with device.groups */
  vfio?: VfioState;
  /** endpoints whose DMA the model says the IOMMU refused so far (harness/model/dma.ts): their DMA remapping faults are expected */
  dmaFaults?: readonly number[];
}

/** Copy-on-write successor of a state. */
export class Draft {
  readonly s: ModelState;
  private readonly owned = new Set<object>();

  constructor(base: ModelState) {
    this.s = { ...base };
  }

  private own<T extends object>(o: T, copy: (o: T) => T): T {
    if (this.owned.has(o)) return o;
    const c = copy(o);
    this.owned.add(c);
    return c;
  }

  private ownMap<K, V>(field: 'instances' | 'cdevs' | 'inodes' | 'queues' | 'tasks' | 'mms' | 'mapSlots'): Map<K, V> {
    const m = this.own(this.s[field] as unknown as Map<K, V>, (x) => new Map(x));
    (this.s as unknown as Record<string, unknown>)[field] = m;
    return m;
  }

  private ownEntry<K, V extends object>(
    field: 'instances' | 'cdevs' | 'inodes' | 'queues' | 'tasks' | 'mms',
    key: K,
  ): V {
    const cur = (this.s[field] as unknown as Map<K, V>).get(key);
    if (cur === undefined) throw new Error(`model: no ${field} entry ${String(key)}`);
    if (this.owned.has(cur)) return cur;
    const m = this.ownMap<K, V>(field);
    const c = this.own(cur, (x) => ({ ...x }));
    m.set(key, c);
    return c;
  }

  newKey(): number {
    return this.s.nextKey++;
  }

  dev(index: number): DevSlot {
    this.s.devs = this.own(this.s.devs, (a) => [...a]);
    const cur = this.s.devs[index];
    if (cur === undefined) throw new Error(`model: no device ${index}`);
    const c = this.own(cur, (x) => ({ ...x }));
    this.s.devs[index] = c;
    return c;
  }

  instance(key: number): Instance {
    return this.ownEntry('instances', key);
  }
  cdev(key: number): Cdev {
    return this.ownEntry('cdevs', key);
  }
  inode(key: number): Inode {
    return this.ownEntry('inodes', key);
  }
  queue(id: number): Queue {
    return this.ownEntry('queues', id);
  }
  task(name: string): Task {
    return this.ownEntry('tasks', name);
  }
  mm(id: number): Mm {
    return this.ownEntry('mms', id);
  }

  put(field: 'instances', key: number, v: Instance): void;
  put(field: 'cdevs', key: number, v: Cdev): void;
  put(field: 'inodes', key: number, v: Inode): void;
  put(field: 'queues', key: number, v: Queue): void;
  put(field: 'tasks', key: string, v: Task): void;
  put(field: 'mms', key: number, v: Mm): void;
  put(field: 'instances' | 'cdevs' | 'inodes' | 'queues' | 'tasks' | 'mms', key: number | string, v: object): void {
    this.ownMap<number | string, object>(field).set(key, v);
    this.owned.add(v);
  }

  deleteQueue(id: number): void {
    this.ownMap<number, Queue>('queues').delete(id);
  }

  deleteCdev(key: number): void {
    this.ownMap<number, Cdev>('cdevs').delete(key);
  }

  setMapSlot(name: string, slot: number): void {
    this.ownMap<string, number>('mapSlots').set(name, slot);
  }

  taskFds(name: string): Map<string, number> {
    const t = this.task(name);
    t.fds = this.own(t.fds, (m) => new Map(m));
    return t.fds;
  }

  /** The queue's driver counters, writable. */
  queueCounters(id: number): DriverCounters {
    const q = this.queue(id);
    q.ctr = this.own(q.ctr, (c) => ({ ...c }));
    return q.ctr;
  }

  queueMem(id: number): Map<number, Page> {
    const q = this.queue(id);
    q.mem = this.own(q.mem, (m) => new Map(m));
    return q.mem;
  }

  /** A writable page of queue memory (created from its base if never written). */
  queuePage(id: number, key: number): Page {
    const mem = this.queueMem(id);
    const cur = mem.get(key);
    const p = cur === undefined ? emptyPage(key) : this.own(cur, clonePage);
    if (cur === undefined) this.owned.add(p);
    mem.set(key, p);
    return p;
  }

  mmPages(id: number): Map<number, Page> {
    const mm = this.mm(id);
    mm.pages = this.own(mm.pages, (m) => new Map(m));
    return mm.pages;
  }

  /** A writable page of an address space; `base` gives a new page its contents. */
  mmPage(id: number, pageNo: number, make: () => Page): Page {
    const pages = this.mmPages(id);
    const cur = pages.get(pageNo);
    let p: Page;
    if (cur === undefined) {
      p = make();
      this.owned.add(p);
    } else {
      p = this.own(cur, clonePage);
    }
    pages.set(pageNo, p);
    return p;
  }

  /** Mark a freshly built object as owned by this draft (safe to mutate in place). */
  adopt<T extends object>(o: T): T {
    this.owned.add(o);
    return o;
  }
}

/**
 * Nondeterminism by re-execution: an operation handler asks `choose(n)` where the kernel may
 * legitimately do one of n things; predict() runs the handler once per combination of choices.
 */
export class Chooser {
  private readonly taken: number[] = [];
  readonly pending: number[][] = [];

  constructor(private readonly prefix: readonly number[]) {}

  choose(n: number): number {
    const at = this.taken.length;
    let c: number;
    if (at < this.prefix.length) {
      c = this.prefix[at]!;
    } else {
      c = 0;
      for (let k = 1; k < n; k++) this.pending.push([...this.taken, k]);
    }
    this.taken.push(c);
    return c;
  }
}
