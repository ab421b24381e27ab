/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * svadiff-sva, the PCIe test accelerator of the SVA machine: the contract between the
 * QEMU device model (qemu/files/hw/misc/svadiff-sva.c, built into the project's QEMU) and
 * the PCI backend of the test module (guest/module/svt_pci.c). docs/test-device.md says
 * what the endpoint does; this says where.
 *
 * User space never sees these registers: it keeps the interface of svt_abi.h (register
 * page, submission ring), which the endpoint reads and writes by DMA.
 */
#ifndef SVT_ENDPOINT_H
#define SVT_ENDPOINT_H

/* PCI identity: 0x1234 is the vendor id QEMU's own test and example devices use */
#define SVT_EP_VENDOR_ID	0x1234
#define SVT_EP_DEVICE_ID	0x5356
#define SVT_EP_CLASS		0x1200	/* class 0x12 (processing accelerator), subclass 0 */
#define SVT_EP_PASID_BITS	20
#define SVT_EP_MAX_QUEUES	64

/* BAR 0: 64 KiB of registers, little-endian, 32-bit accesses */
#define SVT_EP_BAR_SIZE		0x10000

/* device registers */
#define SVT_EP_ID		0x000	/* RO  SVT_EP_MAGIC */
#define SVT_EP_VERSION		0x004	/* RO  SVT_EP_IFACE_VERSION */
#define SVT_EP_INDEX		0x008	/* RO  device index N (QEMU property "index") */
#define SVT_EP_NQUEUES		0x00c	/* RO  queue slots */
#define SVT_EP_IRQ_STATUS	0x010	/* RW1C SVT_EP_IRQ_* */
#define SVT_EP_POLL_US		0x014	/* RW  doorbell poll period while a queue runs (10-100000) */
#define SVT_EP_FLOG_COUNT	0x020	/* RO  fault log entries waiting; bit 31: entries were lost */
#define SVT_EP_FLOG_INFO	0x024	/* RO  head entry: queue slot (bits 0-7), SVT_EP_FAULT_* (8-15) */
#define SVT_EP_FLOG_ADDR_LO	0x028	/* RO  head entry: the address the device could not access */
#define SVT_EP_FLOG_ADDR_HI	0x02c
#define SVT_EP_FLOG_PASID	0x030	/* RO  head entry: the PASID of the access */
#define SVT_EP_FLOG_POP		0x034	/* WO  drop the head entry (and the lost bit once empty) */
#define SVT_EP_STAT_ATS		0x040	/* RO  translation requests sent */
#define SVT_EP_STAT_PRI		0x044	/* RO  page requests sent */
#define SVT_EP_STAT_ITEMS	0x048	/* RO  work items completed */

#define SVT_EP_MAGIC		0x53564145u	/* "SVAE" */
#define SVT_EP_IFACE_VERSION	1
#define SVT_EP_FLOG_DEPTH	16
#define SVT_EP_FLOG_LOST	0x80000000u

#define SVT_EP_IRQ_COMPLETION	0x1	/* a work item completed */
#define SVT_EP_IRQ_FAULT	0x2	/* a fault was logged */

/* queue slot registers at SVT_EP_Q(slot) + offset */
#define SVT_EP_Q(slot)		(0x1000 + (slot) * 0x40)
#define SVT_EP_Q_CTRL		0x00	/* RW  bit 0: RUN */
#define SVT_EP_Q_STATUS		0x04	/* RO  SVT_EP_QS_* */
#define SVT_EP_Q_PASID		0x08	/* RW  PASID of every access to user memory (while stopped) */
#define SVT_EP_Q_CONSUMED	0x0c	/* RW  submissions consumed (while stopped; counts on while running) */
#define SVT_EP_Q_FAULTS		0x10	/* RW  work items that faulted (while stopped) */
#define SVT_EP_Q_REGS_LO	0x18	/* RW  DMA address of the queue's register page (while stopped) */
#define SVT_EP_Q_REGS_HI	0x1c
#define SVT_EP_Q_RING_LO	0x20	/* RW  DMA address of the queue's ring page (while stopped) */
#define SVT_EP_Q_RING_HI	0x24

#define SVT_EP_QC_RUN		0x1

#define SVT_EP_QS_RUNNING	0x1	/* RUN is set and the queue has not stopped on an error */
#define SVT_EP_QS_PAGE_REQUEST	0x2	/* a work item waits for a page response */
#define SVT_EP_QS_DMA_ERROR	0x4	/* the register page or ring was not accessible: stopped */

/* fault reasons (SVT_EP_FLOG_INFO bits 8-15) */
#define SVT_EP_FAULT_TRANSLATION	1	/* no translation and page requests are not enabled */
#define SVT_EP_FAULT_PR_DENIED		2	/* the page response was Invalid Request or Failure */
#define SVT_EP_FAULT_PR_TIMEOUT		3	/* no page response within a second */
#define SVT_EP_FAULT_NO_ACCESS		4	/* still no access after a successful page response */
#define SVT_EP_FAULT_MEMORY		5	/* the translated access itself failed */
#define SVT_EP_FAULT_PR_REFUSED		6	/* the IOMMU refused the page request (no PASID table entry, ...) */

#endif /* SVT_ENDPOINT_H */
