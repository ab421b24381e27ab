/**
 * Mirror of guest/include/svt_abi.h (the test device's register and memory layout), ABI
 * version 2. Every #define of the header has a constant of the same name here;
 * test/unit/model-abi.test.ts parses the header and fails on any difference.
 */

export const SVT_ABI_VERSION = 2; /* 2: RESULT of a FAULT is the faulting address; the PCI backend */
export const SVT_MAGIC = 0x53565444; /* "SVTD" */
export const SVT_PAGE_SIZE = 4096;

/** uacce interface name of device index N is "svt<N>": /dev/svt<N>-<uacce id> */
export const SVT_UACCE_NAME_FMT = 'svt%d';
/** platform devices "svadiff_test.<N>" bound to platform driver "svadiff_test" (sva=0) */
export const SVT_DRIVER_NAME = 'svadiff_test';
/** sva=1: PCI endpoint N at this address with N + 1, bound to PCI driver "svadiff_test" */
export const SVT_PCI_ADDR_FMT = '0000:%02x:00.0';

/* ---- MMIO region (uacce region 0), page 0: registers (byte offsets) ---- */
export const SVT_REG_MAGIC = 0x000;
export const SVT_REG_VERSION = 0x004;
export const SVT_REG_QUEUE_ID = 0x008;
export const SVT_REG_STATE = 0x00c;
export const SVT_REG_START_COUNT = 0x010;
export const SVT_REG_STOP_COUNT = 0x014;
export const SVT_REG_OPENER_TGID = 0x018;
export const SVT_REG_PASID = 0x01c;
export const SVT_REG_DOORBELL = 0x020;
export const SVT_REG_CQ_HEAD = 0x024;
export const SVT_REG_FAULTS = 0x028;
export const SVT_REG_ACK = 0x02c;
export const SVT_REG_DROPPED = 0x030;
export const SVT_REG_DEV_INDEX = 0x034;
export const SVT_REG_END = 0x038;
export const SVT_MMIO_SCRATCH = 0x100;

/* SVT_REG_STATE values */
export const SVT_QSTATE_INIT = 1;
export const SVT_QSTATE_STARTED = 2;
export const SVT_QSTATE_STOPPED = 3;
export const SVT_QSTATE_RELEASED = 4;

/* ---- DUS region (uacce region 1), page 0: submission ring ---- */
export const SVT_RING_SLOTS = 64;
export const SVT_DESC_SIZE = 32;
export const SVT_DUS_SCRATCH = SVT_RING_SLOTS * SVT_DESC_SIZE; /* 0x800 */

/* descriptor layout (byte offsets within a descriptor) */
export const SVT_DESC_OPCODE = 0x00;
export const SVT_DESC_STATUS = 0x04;
export const SVT_DESC_ADDR = 0x08;
export const SVT_DESC_VALUE = 0x10;
export const SVT_DESC_RESULT = 0x18;

export const SVT_OP_WRITE64 = 1;
export const SVT_OP_READ64 = 2;

export const SVT_STATUS_PENDING = 0;
export const SVT_STATUS_OK = 1;
export const SVT_STATUS_FAULT = 2;
export const SVT_STATUS_BADOP = 3;

/** SVT_FILL(region, page, offset): what an unwritten u64 of a scratch area holds. */
export function SVT_FILL(region: number, page: number, offset: number): bigint {
  return 0x5356000000000000n | (BigInt(region) << 40n) | (BigInt(page) << 24n) | BigInt(offset);
}

/** _IO(type, nr) of asm-generic/ioctl.h (x86_64 and arm64 agree): no direction, no size. */
export function IO(type: string, nr: number): number {
  return ((type.charCodeAt(0) & 0xff) << 8) | (nr & 0xff);
}

/** driver ioctl (present only with module parameter ioctl=1): returns the queue id */
export const SVT_IOCTL_PING = IO('W', 0x20);

/* uacce uapi, repeated (include/uapi/misc/uacce/uacce.h) */
export const SVT_UACCE_CMD_START_Q = IO('W', 0);
export const SVT_UACCE_CMD_PUT_Q = IO('W', 1);
export const SVT_UACCE_DEV_SVA = 0x1;

/** u32 word index (byte offset / 4) of a register in MMIO page 0. */
export const REG_WORD = {
  MAGIC: SVT_REG_MAGIC / 4,
  VERSION: SVT_REG_VERSION / 4,
  QUEUE_ID: SVT_REG_QUEUE_ID / 4,
  STATE: SVT_REG_STATE / 4,
  START_COUNT: SVT_REG_START_COUNT / 4,
  STOP_COUNT: SVT_REG_STOP_COUNT / 4,
  OPENER_TGID: SVT_REG_OPENER_TGID / 4,
  PASID: SVT_REG_PASID / 4,
  DOORBELL: SVT_REG_DOORBELL / 4,
  CQ_HEAD: SVT_REG_CQ_HEAD / 4,
  FAULTS: SVT_REG_FAULTS / 4,
  ACK: SVT_REG_ACK / 4,
  DROPPED: SVT_REG_DROPPED / 4,
  DEV_INDEX: SVT_REG_DEV_INDEX / 4,
} as const;

/** Words per 4 KiB page at u32 granularity. */
export const WORDS_PER_PAGE = SVT_PAGE_SIZE / 4;
