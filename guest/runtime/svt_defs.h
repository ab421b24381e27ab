/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Conventions of the svadiff agent that reproducers share (docs/agent-protocol.md): where
 * things are, where mappings go, how long a step may take. Plain #defines only: a reproducer
 * holds the ones it uses (harness/repro/cruntime.ts picks them, as it picks svt_abi.h's), and
 * harness/agent/conventions.ts mirrors the numbers the host needs (test/unit/runtime.test.ts
 * compares them).
 */
#ifndef SVT_DEFS_H
#define SVT_DEFS_H

#define UACCE_CLASS		"/sys/class/uacce"
#define DRIVER_DIR		"/sys/bus/platform/drivers/" SVT_DRIVER_NAME	/* device.sva=false: platform devices */
#define PCI_DRIVER_DIR		"/sys/bus/pci/drivers/" SVT_DRIVER_NAME		/* device.sva=true: svadiff-sva endpoints */
#define MODULE_PARAMS		"/sys/module/" SVT_DRIVER_NAME "/parameters"
#define SLOT_BASE		0x200000000000ULL	/* where mapping slot 0 goes */
#define SLOT_STRIDE		0x1000000ULL		/* 16 MiB per mapping slot */
#define SLOT(s)			(SLOT_BASE + (uint64_t)(s) * SLOT_STRIDE)	/* mapping slot s, mapped there without MAP_FIXED */
#define AT(s, page, off)	(SLOT(s) + (uint64_t)(page) * SVT_PAGE_SIZE + (uint64_t)(off))
#define UACCE_REGION_MMIO	0	/* mmap offset (in pages) of a queue's MMIO region */
#define UACCE_REGION_DUS	1	/* mmap offset (in pages) of a queue's DUS region */
#define SVT_OP_INVALID		7	/* a work item opcode the device does not know */
#define SUBMIT_WAIT_US		200000	/* how long a work item may take to complete: SUBMIT_WAIT_US / SUBMIT_POLL_US polls */
#define SUBMIT_POLL_US		200
#define SUBMIT_WAIT_MAX_US	2000000	/* ... or this long, however few polls the guest got through */
#define STEP_DEADLINE_MS	10000	/* a step that takes longer is a hang */
#define SUBMIT_DEADLINE_MS	5000
#define POLL_EXTRA_MS		5000	/* poll: its timeout plus this */
#define KILL_DEADLINE_MS	5000
#define PATH_LEN		200
#define DATA_MAX		1024	/* bytes of a result (what was read, the path opened) */
#define PCI_DEVICES		"/sys/bus/pci/devices"
#define PCI_DRIVERS		"/sys/bus/pci/drivers"
#define EP_PCI_VENDOR		"0x1234"	/* svadiff-sva's PCI ids as sysfs shows them (svt_endpoint.h) */
#define EP_PCI_DEVICE		"0x5356"
#define VFIO_PCI_DRIVER		"vfio-pci"
#define VFIO_DIR		"/dev/vfio"
#define VFIO_CDEV_DIR		"/dev/vfio/devices"	/* vfio device cdevs, vfio<N> (VFIO_DEVICE_CDEV) */
#define IOMMUFD_DEV		"/dev/iommu"
#define SVT_IOVA_BASE		0x100000ULL	/* IOVA of page 0 of the IOVA pages ops name (1 MiB; pages 0..15) */
#define EP_DMA_SLOT		0		/* ep_dma: the endpoint queue slot it drives (svt_endpoint.h) */
#define EP_DMA_RING		0x800		/* ep_dma: the ring's offset in the IOVA page; the register page is at 0 */
#define EP_DMA_CONSUMED		0xffffffffu	/* ep_dma: CONSUMED it starts from (a doorbell of 0: one descriptor, 63) */
#define PLAIN_CHARS		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.: -"	/* a value of these is shown unquoted */

#endif /* SVT_DEFS_H */
