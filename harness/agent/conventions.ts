/**
 * Mirror of guest/runtime/svt_defs.h, the conventions the agent and the reproducers share (the
 * numbers the host needs); test/unit/runtime.test.ts parses the header and fails on any
 * difference.
 */

/** Mapping slot s is at SLOT_BASE + s * SLOT_STRIDE (docs/agent-protocol.md "Names and addresses"). */
export const SLOT_BASE = 0x2000_0000_0000n;
export const SLOT_STRIDE = 0x100_0000n;

/** mmap offsets (in pages) of a queue's regions */
export const UACCE_REGION_MMIO = 0;
export const UACCE_REGION_DUS = 1;

/** A work item opcode the test device does not know (it answers BADOP). */
export const SVT_OP_INVALID = 7;

/**
 * How long the agent waits for a work item (µs): SUBMIT_WAIT_US / SUBMIT_POLL_US looks, one every
 * SUBMIT_POLL_US, or SUBMIT_WAIT_MAX_US of guest time, whichever comes first.
 */
export const SUBMIT_WAIT_US = 200_000;
export const SUBMIT_POLL_US = 200;
export const SUBMIT_WAIT_MAX_US = 2_000_000;

/** Deadlines of one op (ms); past it the agent gives up on the program (a hang). */
export const STEP_DEADLINE_MS = 10_000;
export const SUBMIT_DEADLINE_MS = 5000;
export const POLL_EXTRA_MS = 5000;
export const KILL_DEADLINE_MS = 5000;

/** ep_dma (docs/ownership-semantics.md "The endpoint's engine"): its queue slot, the ring's offset in the IOVA page, the CONSUMED it starts from. */
export const EP_DMA_SLOT = 0;
export const EP_DMA_RING = 0x800;
export const EP_DMA_CONSUMED = 0xffffffff;

export const PATH_LEN = 200;
/** IOVA of IOVA page 0 of the iommufd and DMA ops (harness/ops/iommufd.ts IOVA_BASE). */
export const SVT_IOVA_BASE = 0x100000;
/** Bytes of an op's data (what it read, the path it opened). */
export const DATA_MAX = 1024;

/** The address of mapping slot s. */
export function slotAddress(slot: number): bigint {
  return SLOT_BASE + BigInt(slot) * SLOT_STRIDE;
}
