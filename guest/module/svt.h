/* SPDX-License-Identifier: GPL-2.0 */
/*
 * svadiff test uacce device: what the common part (svt_main.c) and the two backends share.
 *
 *  - svt_main.c: module parameters, queues and their pages, the uacce ops, the register
 *    contract of svt_abi.h (docs/test-device.md);
 *  - svt_platform.c (sva=0): platform devices svadiff_test.N and a kernel thread that
 *    executes work items with get_user_pages_remote in the opener's mm;
 *  - svt_pci.c (sva=1): the svadiff-sva PCIe endpoints of the SVA machine, registered with
 *    UACCE_DEV_SVA; the endpoint executes work items by PASID-tagged DMA through the IOMMU.
 */
#ifndef SVT_H
#define SVT_H

#define pr_fmt(fmt) "svadiff_test: " fmt

#include <linux/version.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/types.h>
#include <linux/uacce.h>
#include <linux/wait.h>

#include "svt_abi.h"

/* struct uacce_ops gained get_isolate_state / isolate_err_threshold_{read,write} in 6.2
 * (include/linux/uacce.h; 6.1 has neither the ops nor the sysfs files). */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
#define SVT_HAVE_ISOLATE_OPS 1
#else
#define SVT_HAVE_ISOLATE_OPS 0
#endif

#if PAGE_SIZE != SVT_PAGE_SIZE
#error "svt_abi.h assumes 4 KiB pages"
#endif

#define SVT_MAX_DEVICES		8
#define SVT_MAX_REGION_PAGES	64	/* alloc_pages_exact of up to 256 KiB per region */
#define SVT_MAX_QUEUE_LIMIT	64
#define SVT_MAX_STARTED		(SVT_MAX_DEVICES * SVT_MAX_QUEUE_LIMIT)
#define SVT_BATCH		64	/* descriptors per queue per engine wake-up */

extern int svt_param_devices;
extern int svt_param_queue_limit;
extern int svt_param_engine_interval_us;

struct svt_pci_dev;

/* One per probe; kept until module unload (queues point at it after removal). */
struct svt_dev {
	struct list_head node;		/* svt_devs */
	int index;
	struct uacce_device *uacce;	/* NULL after uacce_remove */
	unsigned int live_queues;	/* get_queue done, put_queue not yet */
	u32 isolate_threshold;
	u64 total_faults;
	struct svt_pci_dev *pci;	/* PCI backend; NULL once the endpoint is unbound */
};

/* One per get_queue; kept until module unload. */
struct svt_queue {
	struct list_head node;		/* svt_queues */
	struct list_head started_node;	/* svt_started, while STATE == STARTED */
	struct svt_dev *dev;
	struct uacce_queue *uq;		/* NULL after put_queue (uacce frees it) */
	struct mm_struct *mm;		/* mmgrab'd at get_queue, dropped at put_queue */
	u32 id, pasid, tgid, state;
	u32 start_count, stop_count, consumed, faults, dropped;
	bool busy;			/* the platform engine is executing a descriptor of it */
	void *mmio, *dus;		/* at least one page each, even for a 0-page region */
	size_t mmio_bytes, dus_bytes;
	/* PCI backend: the endpoint's queue slot and the DMA addresses of page 0 of each region */
	int slot;
	dma_addr_t mmio_dma, dus_dma;
};

/*
 * What differs between the backends. Hooks marked "svt_lock held" run under it; the rest
 * of the queue life (pages, registers, counters, uacce) is common.
 */
struct svt_backend {
	const char *name;
	/* register the devices of the backend (at module load) and remove them (at unload) */
	int (*init)(void);
	void (*exit)(void);
	/* get_queue: the pages are allocated and filled; the queue is not yet visible */
	int (*queue_init)(struct svt_queue *svq);
	/* svt_lock held: the queue just became STARTED with consumed/faults as given */
	void (*queue_start)(struct svt_queue *svq);
	/* svt_lock held: no work item may complete after this returns; consumed and faults
	 * are then the backend's final counts */
	void (*queue_stop)(struct svt_queue *svq);
	/* svt_lock held: put_queue, after queue_stop if the queue was started */
	void (*queue_put)(struct svt_queue *svq);
	/* no locks (is_q_updated): submissions consumed so far */
	u32 (*consumed)(struct svt_queue *svq);
	/* svt_lock held: bring dev->total_faults up to date (NULL: always current) */
	void (*sync_faults)(struct svt_dev *dev);
};

extern const struct svt_backend svt_platform_backend;
extern const struct svt_backend svt_pci_backend;

/* Protects every field above, the lists, and the svt_dev counters. */
extern struct mutex svt_lock;
extern struct list_head svt_queues;
extern struct list_head svt_started;
extern unsigned int svt_started_count;
extern wait_queue_head_t svt_busy_wq;

void svt_reg_write(struct svt_queue *svq, unsigned int off, u32 val);
u32 svt_reg_read(struct svt_queue *svq, unsigned int off);
void svt_wait_idle(struct svt_queue *svq);

/*
 * Register a uacce device "svt<index>" for parent (flags: 0 or UACCE_DEV_SVA); the returned
 * svt_dev lives until unload. svt_dev_remove undoes it (uacce_remove stops and puts every
 * queue of the device).
 */
struct svt_dev *svt_dev_register(struct device *parent, int index, unsigned int flags);
void svt_dev_remove(struct device *parent, struct svt_dev *dev);

#endif /* SVT_H */
