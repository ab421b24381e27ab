/**
 * The test device's part of the reference model: what the parent driver svadiff_test does
 * (docs/test-device.md is the contract; guest/include/svt_abi.h the layout;
 * guest/module/svt_main.c and svt_platform.c the implementation whose reading of the contract this follows
 * where the text leaves room). uacce and mm behaviour is in harness/model/.
 *
 * Registers are plain memory that user space can also write (RAM pages remapped with
 * remap_pfn_range). The driver keeps its own counters and assigns them to the registers at
 * the events the contract names; it never reads a read-only register back. Every queue has at
 * least one page of each region internally (max(pages, 1)), so registers and ring exist even
 * when a region cannot be mapped.
 */
import type { DeviceParams } from '../program/types.js';
import {
  REG_WORD,
  SVT_ABI_VERSION,
  SVT_DESC_ADDR,
  SVT_DESC_OPCODE,
  SVT_DESC_RESULT,
  SVT_DESC_SIZE,
  SVT_DESC_STATUS,
  SVT_DESC_VALUE,
  SVT_IOCTL_PING,
  SVT_MAGIC,
  SVT_QSTATE_INIT,
  SVT_QSTATE_RELEASED,
  SVT_QSTATE_STARTED,
  SVT_QSTATE_STOPPED,
  SVT_RING_SLOTS,
} from './abi.js';
import { u32, type Word } from './memory.js';

/**
 * What the uacce parent is (docs/test-device.md "Devices"): with sva=false the platform device
 * svadiff_test.N, which has no IOMMU group, so iommu_dev_enable_feature() and
 * iommu_sva_bind_device() fail with ENODEV (drivers/iommu/iommu-sva.c 7.2: `if (!group)
 * return ERR_PTR(-ENODEV)`); with sva=true the svadiff-sva PCIe endpoint N of the SVA machine,
 * alone in its IOMMU group behind its root port, with ATS, PASID and PRI: feature enabling and
 * binds reach the IOMMU driver (measured on Debian 6.12 and 7.2).
 */
export function parentFacts(p: Pick<DeviceParams, 'sva'>): { hasIommuGroup: boolean } {
  return { hasIommuGroup: p.sva };
}

/** Pages of uacce region 0 (MMIO) or 1 (DUS); 0: the region does not exist. */
export function regionPages(p: DeviceParams, region: number): number {
  if (region === 0) return p.mmio_pages;
  if (region === 1) return p.dus_pages;
  return 0;
}

/** uacce device name: interface name "svt<N>" + "-" + uacce id (uacce_alloc(): "%s-%d"). */
export function nodeName(devIndex: number, id: number): string {
  return `svt${devIndex}-${id}`;
}

/** Driver register writes at get_queue: the initial register block. null = the model cannot know. */
export function initialRegisters(queueId: number, pasid: Word, devIndex: number): Array<[number, Word]> {
  return [
    [REG_WORD.MAGIC, SVT_MAGIC],
    [REG_WORD.VERSION, SVT_ABI_VERSION],
    [REG_WORD.QUEUE_ID, queueId],
    [REG_WORD.STATE, SVT_QSTATE_INIT],
    [REG_WORD.START_COUNT, 0],
    [REG_WORD.STOP_COUNT, 0],
    // the tgid of the opener is a pid the model does not know
    [REG_WORD.OPENER_TGID, null],
    [REG_WORD.PASID, pasid],
    [REG_WORD.DOORBELL, 0],
    [REG_WORD.CQ_HEAD, 0],
    [REG_WORD.FAULTS, 0],
    [REG_WORD.ACK, 0],
    [REG_WORD.DROPPED, 0],
    [REG_WORD.DEV_INDEX, devIndex],
  ];
}

export interface RegisterFile {
  read(idx: number): Word;
  write(idx: number, v: Word): void;
}

/**
 * The driver's own per-queue counters (guest/module/svt.h struct svt_queue). The
 * registers show them: every update assigns the counter to its register, so a user store to a
 * read-only register stays visible until the driver next updates that register. null: unknown.
 */
export interface DriverCounters {
  /** submissions consumed (executed or dropped); CQ_HEAD shows it */
  consumed: Word;
  dropped: Word;
  starts: Word;
  stops: Word;
  faults: Word;
}

export function initialCounters(): DriverCounters {
  return { consumed: 0, dropped: 0, starts: 0, stops: 0, faults: 0 };
}

const add = (a: Word, b: Word): Word => (a === null || b === null ? null : u32(a + b));

/**
 * start_queue: submissions rung while the queue was not started are dropped:
 * DROPPED += DOORBELL - consumed; consumed = DOORBELL; CQ_HEAD = consumed; START_COUNT++;
 * STATE = STARTED.
 */
export function driverStart(regs: RegisterFile, c: DriverCounters): void {
  const doorbell = regs.read(REG_WORD.DOORBELL);
  c.dropped = doorbell === null || c.consumed === null ? null : add(c.dropped, u32(doorbell - c.consumed));
  c.consumed = doorbell;
  regs.write(REG_WORD.DROPPED, c.dropped);
  regs.write(REG_WORD.CQ_HEAD, c.consumed);
  c.starts = add(c.starts, 1);
  regs.write(REG_WORD.START_COUNT, c.starts);
  regs.write(REG_WORD.STATE, SVT_QSTATE_STARTED);
}

/** stop_queue: STATE = STOPPED, STOP_COUNT++. */
export function driverStop(regs: RegisterFile, c: DriverCounters): void {
  regs.write(REG_WORD.STATE, SVT_QSTATE_STOPPED);
  c.stops = add(c.stops, 1);
  regs.write(REG_WORD.STOP_COUNT, c.stops);
}

/** put_queue: STATE = RELEASED (the pages stay until module unload). */
export function driverPut(regs: RegisterFile): void {
  regs.write(REG_WORD.STATE, SVT_QSTATE_RELEASED);
}

/** The engine finished one descriptor: FAULTS++ if it faulted, consumed++, CQ_HEAD = consumed. */
export function driverCompleted(regs: RegisterFile, c: DriverCounters, faulted: boolean | null): void {
  if (faulted !== false) {
    c.faults = faulted === null ? null : add(c.faults, 1);
    regs.write(REG_WORD.FAULTS, c.faults);
  }
  c.consumed = add(c.consumed, 1);
  regs.write(REG_WORD.CQ_HEAD, c.consumed);
}

/** is_q_updated: true while the consumed count differs from ACK (null: unknown). */
export function isQueueUpdated(regs: RegisterFile, consumed: Word): boolean | null {
  const ack = regs.read(REG_WORD.ACK);
  if (consumed === null || ack === null) return null;
  return consumed !== ack;
}

/** get_available_instances: queue_limit - live queues. */
export function availableInstances(p: DeviceParams, liveQueues: number): number {
  return p.queue_limit - liveQueues;
}

/** get_isolate_state: UACCE_DEV_ISOLATE (1) if threshold != 0 and total faults >= threshold, else NORMAL (0). */
export function isolateState(threshold: number, faultTotal: number | null): 0 | 1 | null {
  if (threshold === 0) return 0;
  if (faultTotal === null) return null;
  return faultTotal >= threshold ? 1 : 0;
}

/** The driver's ioctl op (only with ioctl=1): PING returns the queue id, anything else -ENOTTY. */
export function driverIoctl(cmd: number, queueId: number): { ret: number } | { errno: string } {
  if (cmd === SVT_IOCTL_PING) return { ret: queueId };
  return { errno: 'ENOTTY' };
}

/** u32 word indexes of the fields of descriptor `index` (slot = index % SVT_RING_SLOTS) in DUS page 0. */
export function descriptorWords(index: number): {
  opcode: number;
  status: number;
  addrLo: number;
  addrHi: number;
  valueLo: number;
  valueHi: number;
  resultLo: number;
  resultHi: number;
} {
  const base = ((index % SVT_RING_SLOTS) * SVT_DESC_SIZE) / 4;
  return {
    opcode: base + SVT_DESC_OPCODE / 4,
    status: base + SVT_DESC_STATUS / 4,
    addrLo: base + SVT_DESC_ADDR / 4,
    addrHi: base + SVT_DESC_ADDR / 4 + 1,
    valueLo: base + SVT_DESC_VALUE / 4,
    valueHi: base + SVT_DESC_VALUE / 4 + 1,
    resultLo: base + SVT_DESC_RESULT / 4,
    resultHi: base + SVT_DESC_RESULT / 4 + 1,
  };
}

/** Ring words the engine writes (STATUS and RESULT of every slot): unknown while it runs unobserved. */
export function isEngineRingWord(idx: number): boolean {
  if (idx >= (SVT_RING_SLOTS * SVT_DESC_SIZE) / 4) return false;
  const field = (idx * 4) % SVT_DESC_SIZE;
  return field === SVT_DESC_STATUS || field === SVT_DESC_RESULT || field === SVT_DESC_RESULT + 4;
}

/** Register words the engine writes while a queue is started: CQ_HEAD and FAULTS. */
export function isEngineRegisterWord(idx: number): boolean {
  return idx === REG_WORD.CQ_HEAD || idx === REG_WORD.FAULTS;
}

/** Descriptors the engine executes per wake-up. */
export const ENGINE_BATCH = 64;
