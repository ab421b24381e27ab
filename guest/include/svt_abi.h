/* SPDX-License-Identifier: GPL-2.0 */
/*
 * svadiff test uacce device: the contract between the test kernel module
 * (guest/module/), the SVA machine's endpoint (qemu/files/hw/misc/svadiff-sva.c, which
 * executes the work items of the PCI backend), the guest agent (guest/agent/agent.c), the
 * standalone C reproducers, and the reference model (harness/device/abi.ts
 * mirrors every number here; keep them in sync).
 *
 * Shared with user space, so only fixed-width types and plain #defines.
 * Everything is little-endian (x86_64 and arm64 guests).
 */
#ifndef SVT_ABI_H
#define SVT_ABI_H

#define SVT_ABI_VERSION		2	/* 2: RESULT of a FAULT is the faulting address; the PCI backend */
#define SVT_MAGIC		0x53565444u	/* "SVTD" */
#define SVT_PAGE_SIZE		4096u

/* uacce interface name of device index N is "svt<N>": /dev/svt<N>-<uacce id> */
#define SVT_UACCE_NAME_FMT	"svt%d"
/* platform devices "svadiff_test.<N>" bound to platform driver "svadiff_test" (sva=0) */
#define SVT_DRIVER_NAME		"svadiff_test"
/* sva=1: PCI endpoint N at SVT_PCI_ADDR_FMT with N + 1 (the SVA machine's topology,
 * harness/vm/machine.ts), bound to PCI driver "svadiff_test" */
#define SVT_PCI_ADDR_FMT	"0000:%02x:00.0"

/* ---- MMIO region (uacce region 0), page 0: registers ---- */
#define SVT_REG_MAGIC		0x000	/* RO  SVT_MAGIC */
#define SVT_REG_VERSION		0x004	/* RO  SVT_ABI_VERSION */
#define SVT_REG_QUEUE_ID	0x008	/* RO  module-wide queue id, from 1 */
#define SVT_REG_STATE		0x00c	/* RO  SVT_QSTATE_* as the driver sees it */
#define SVT_REG_START_COUNT	0x010	/* RO  number of start_queue calls */
#define SVT_REG_STOP_COUNT	0x014	/* RO  number of stop_queue calls */
#define SVT_REG_OPENER_TGID	0x018	/* RO  tgid of the task that opened the queue */
#define SVT_REG_PASID		0x01c	/* RO  uacce q->pasid given to get_queue (0 without SVA) */
#define SVT_REG_DOORBELL	0x020	/* RW  submission tail, written by user space */
#define SVT_REG_CQ_HEAD		0x024	/* RO  number of completed submissions */
#define SVT_REG_FAULTS		0x028	/* RO  work items of this queue that faulted */
#define SVT_REG_ACK		0x02c	/* RW  user space writes CQ_HEAD here to consume news */
#define SVT_REG_DROPPED		0x030	/* RO  submissions dropped because the queue was not started */
#define SVT_REG_DEV_INDEX	0x034	/* RO  device index N */
#define SVT_REG_END		0x038
/* 0x038..0x0ff reserved (read as 0), 0x100..0xfff of page 0 and all further pages: scratch */
#define SVT_MMIO_SCRATCH	0x100

/* SVT_REG_STATE values */
#define SVT_QSTATE_INIT		1	/* get_queue done */
#define SVT_QSTATE_STARTED	2	/* start_queue done */
#define SVT_QSTATE_STOPPED	3	/* stop_queue done (can be started again) */
#define SVT_QSTATE_RELEASED	4	/* put_queue done: only a stale mapping can show this */

/* ---- DUS region (uacce region 1), page 0: submission ring ---- */
#define SVT_RING_SLOTS		64
#define SVT_DESC_SIZE		32
#define SVT_DUS_SCRATCH		(SVT_RING_SLOTS * SVT_DESC_SIZE)	/* 0x800 */

/* descriptor layout, at DUS offset (slot * SVT_DESC_SIZE), slot = index % SVT_RING_SLOTS */
#define SVT_DESC_OPCODE		0x00	/* u32, written by user */
#define SVT_DESC_STATUS		0x04	/* u32, written by the device */
#define SVT_DESC_ADDR		0x08	/* u64, user virtual address in the queue's bound mm */
#define SVT_DESC_VALUE		0x10	/* u64, value to write */
#define SVT_DESC_RESULT		0x18	/* u64, value read; with STATUS FAULT: the faulting address */

#define SVT_OP_WRITE64		1	/* *(u64 *)addr = value, in the bound address space */
#define SVT_OP_READ64		2	/* result = *(u64 *)addr, in the bound address space */

#define SVT_STATUS_PENDING	0
#define SVT_STATUS_OK		1
/* FAULT: not accessible in the bound mm (or it is gone); RESULT = the first byte not accessible */
#define SVT_STATUS_FAULT	2
#define SVT_STATUS_BADOP	3

/*
 * Every u64 of a scratch area that nobody wrote holds its fill pattern, so that a read shows
 * which region, page and offset it came from (and stale or foreign pages are recognisable):
 *   SVT_FILL(region, page, offset) = 0x5356000000000000 | region << 40 | page << 24 | offset
 * The register block of MMIO page 0 (below SVT_MMIO_SCRATCH) and the ring of DUS page 0
 * (below SVT_DUS_SCRATCH) start as 0 apart from the registers listed above.
 */
#define SVT_FILL(region, page, offset) \
	(0x5356000000000000ull | ((unsigned long long)(region) << 40) | \
	 ((unsigned long long)(page) << 24) | (unsigned long long)(offset))

/* driver ioctl (present only with module parameter ioctl=1): returns the queue id */
#define SVT_IOCTL_PING		_IO('W', 0x20)

/* uacce uapi, repeated so that user space needs no kernel headers */
#define SVT_UACCE_CMD_START_Q	_IO('W', 0)
#define SVT_UACCE_CMD_PUT_Q	_IO('W', 1)
#define SVT_UACCE_DEV_SVA	0x1

#endif /* SVT_ABI_H */
