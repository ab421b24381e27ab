// SPDX-License-Identifier: GPL-2.0
/*
 * svadiff test uacce device: a uacce parent driver without hardware.
 *
 * The contract is docs/test-device.md and guest/include/svt_abi.h; the reference model
 * (harness/device/) encodes exactly that, so behaviour changes here are contract changes.
 *
 * Design notes (why, briefly):
 *  - Queue pages are physically contiguous (alloc_pages_exact) so that one remap_pfn_range
 *    covers the whole vma: a MAP_PRIVATE (COW) mapping requires that (mm/memory.c,
 *    remap_pfn_range_notrack: "addr != vma->vm_start || end != vma->vm_end" -> -EINVAL).
 *  - Queue pages and bookkeeping are kept until module unload, so that a mapping a kernel bug
 *    leaves alive shows STATE = RELEASED instead of reading freed memory.
 *  - The engine never holds svt_lock while it takes the opener's mmap_lock, and it only
 *    try-locks mmap_lock while stop_queue may be waiting for it: uacce_remove() calls
 *    stop_queue with q->mutex held, and munmap/mmap take q->mutex under mmap_lock
 *    (uacce_vma_close / uacce_fops_mmap), so blocking on mmap_lock there could deadlock.
 */
#define pr_fmt(fmt) "svadiff_test: " fmt

#include <linux/version.h>
#include <linux/ioctl.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/platform_device.h>
#include <linux/uacce.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/highmem.h>
#include <linux/kthread.h>
#include <linux/delay.h>
#include <linux/wait.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "svt_abi.h"

/* ---- kernel version differences, all in one place ---------------------------------- */

/* struct uacce_ops gained get_isolate_state / isolate_err_threshold_{read,write} in 6.2
 * (include/linux/uacce.h; 6.1 has neither the ops nor the sysfs files). */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
#define SVT_HAVE_ISOLATE_OPS 1
#else
#define SVT_HAVE_ISOLATE_OPS 0
#endif

/* platform_driver.remove returns void from 6.11 (include/linux/platform_device.h). */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0)
#define SVT_REMOVE_RET void
#define SVT_REMOVE_OK
#else
#define SVT_REMOVE_RET int
#define SVT_REMOVE_OK 0
#endif

/* get_user_pages_remote lost its vmas argument in 6.5 (include/linux/mm.h). */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
#define svt_gup_remote(mm, addr, flags, page) \
	get_user_pages_remote(mm, addr, 1, flags, page, NULL)
#else
#define svt_gup_remote(mm, addr, flags, page) \
	get_user_pages_remote(mm, addr, 1, flags, page, NULL, NULL)
#endif

/* ---- parameters ----------------------------------------------------------------------- */

#if PAGE_SIZE != SVT_PAGE_SIZE
#error "svt_abi.h assumes 4 KiB pages"
#endif

#define SVT_MAX_DEVICES		8
#define SVT_MAX_REGION_PAGES	64	/* alloc_pages_exact of up to 256 KiB per region */
#define SVT_MAX_QUEUE_LIMIT	64
#define SVT_MAX_STARTED		(SVT_MAX_DEVICES * SVT_MAX_QUEUE_LIMIT)
#define SVT_BATCH		64	/* descriptors per queue per engine wake-up */
#define SVT_MAX_STR		128

static int param_devices = 1;
static int param_mmio_pages = 2;
static int param_dus_pages = 2;
static int param_queue_limit = 4;
static int param_sva;
static int param_isolate_ops;
static int param_isolate_state;
static int param_ioctl;
static char *param_api = "svadiff-test-v1";
static char *param_algs = "copy,fill";
static int param_engine_interval_us = 1000;

module_param_named(devices, param_devices, int, 0444);
MODULE_PARM_DESC(devices, "number of platform devices svadiff_test.N (1-8)");
module_param_named(mmio_pages, param_mmio_pages, int, 0444);
MODULE_PARM_DESC(mmio_pages, "pages of uacce region 0 (0-64, 0: no region)");
module_param_named(dus_pages, param_dus_pages, int, 0444);
MODULE_PARM_DESC(dus_pages, "pages of uacce region 1 (0-64, 0: no region)");
module_param_named(queue_limit, param_queue_limit, int, 0444);
MODULE_PARM_DESC(queue_limit, "live queues per device (0-64); more opens get EBUSY");
module_param_named(sva, param_sva, int, 0444);
MODULE_PARM_DESC(sva, "1: register with UACCE_DEV_SVA");
module_param_named(isolate_ops, param_isolate_ops, int, 0444);
MODULE_PARM_DESC(isolate_ops, "bit 0: isolate_err_threshold_read, bit 1: _write (6.2+)");
module_param_named(isolate_state, param_isolate_state, int, 0444);
MODULE_PARM_DESC(isolate_state, "1: get_isolate_state op (6.2+)");
module_param_named(ioctl, param_ioctl, int, 0444);
MODULE_PARM_DESC(ioctl, "1: driver ioctl op (SVT_IOCTL_PING)");
module_param_named(api, param_api, charp, 0444);
MODULE_PARM_DESC(api, "sysfs api string ([A-Za-z0-9._,-])");
module_param_named(algs, param_algs, charp, 0444);
MODULE_PARM_DESC(algs, "comma separated algorithm names ([A-Za-z0-9._,-])");
module_param_named(engine_interval_us, param_engine_interval_us, int, 0444);
MODULE_PARM_DESC(engine_interval_us, "engine doorbell scan period (10-100000 us)");

/* ---- state ---------------------------------------------------------------------------- */

/* One per probe; kept until module unload (queues point at it after removal). */
struct svt_dev {
	struct list_head node;		/* svt_devs */
	int index;
	struct uacce_device *uacce;	/* NULL after uacce_remove */
	unsigned int live_queues;	/* get_queue done, put_queue not yet */
	u32 isolate_threshold;
	u64 total_faults;
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
	bool busy;			/* the engine is executing a descriptor of this queue */
	void *mmio, *dus;		/* at least one page each, even for a 0-page region */
	size_t mmio_bytes, dus_bytes;
};

/* Protects every field above, the lists, and the svt_dev counters. */
static DEFINE_MUTEX(svt_lock);
static LIST_HEAD(svt_devs);
static LIST_HEAD(svt_queues);
static LIST_HEAD(svt_started);
static unsigned int svt_started_count;
static u32 svt_next_queue_id = 1;
static unsigned long svt_executed, svt_deferred;	/* reported at unload */

static DECLARE_WAIT_QUEUE_HEAD(svt_engine_wq);	/* engine sleeps here while idle */
static DECLARE_WAIT_QUEUE_HEAD(svt_busy_wq);	/* stop_queue waits for !busy here */
static struct task_struct *svt_engine;
static struct svt_queue *svt_snapshot[SVT_MAX_STARTED];	/* engine-private */

static struct platform_device *svt_pdevs[SVT_MAX_DEVICES];
static char *svt_algs_lines;	/* param_algs with ',' -> '\n' for sysfs "algorithms" */
static struct uacce_ops svt_ops;

/* ---- registers ------------------------------------------------------------------------ */

static void svt_reg_write(struct svt_queue *svq, unsigned int off, u32 val)
{
	WRITE_ONCE(*(u32 *)(svq->mmio + off), val);
}

static u32 svt_reg_read(struct svt_queue *svq, unsigned int off)
{
	return READ_ONCE(*(u32 *)(svq->mmio + off));
}

static void svt_fill(void *base, size_t bytes, unsigned int region, size_t from)
{
	size_t off;

	for (off = from; off < bytes; off += 8)
		*(u64 *)(base + off) = SVT_FILL(region, off / SVT_PAGE_SIZE, off % SVT_PAGE_SIZE);
}

/* Caller holds svt_lock. */
static void svt_set_state(struct svt_queue *svq, u32 state)
{
	if (svq->state == SVT_QSTATE_STARTED && state != SVT_QSTATE_STARTED) {
		list_del_init(&svq->started_node);
		svt_started_count--;
	} else if (svq->state != SVT_QSTATE_STARTED && state == SVT_QSTATE_STARTED) {
		list_add_tail(&svq->started_node, &svt_started);
		svt_started_count++;
		wake_up(&svt_engine_wq);
	}
	svq->state = state;
	svt_reg_write(svq, SVT_REG_STATE, state);
}

/* Caller holds svt_lock; waits (dropping it) until the engine is done with svq. */
static void svt_wait_idle(struct svt_queue *svq)
{
	while (svq->busy) {
		mutex_unlock(&svt_lock);
		wait_event(svt_busy_wq, !READ_ONCE(svq->busy));
		mutex_lock(&svt_lock);
	}
}

/* ---- uacce ops ------------------------------------------------------------------------ */

static int svt_get_available_instances(struct uacce_device *uacce)
{
	struct svt_dev *dev = uacce->priv;
	int n;

	mutex_lock(&svt_lock);
	n = param_queue_limit - (int)dev->live_queues;
	mutex_unlock(&svt_lock);
	return n;
}

static int svt_get_queue(struct uacce_device *uacce, unsigned long arg, struct uacce_queue *q)
{
	struct svt_dev *dev = uacce->priv;
	size_t mmio_bytes = max(param_mmio_pages, 1) * SVT_PAGE_SIZE;
	size_t dus_bytes = max(param_dus_pages, 1) * SVT_PAGE_SIZE;
	struct svt_queue *svq;

	mutex_lock(&svt_lock);
	if (dev->live_queues >= param_queue_limit) {
		mutex_unlock(&svt_lock);
		return -EBUSY;
	}
	dev->live_queues++;	/* reserve, so that concurrent opens cannot overshoot */
	mutex_unlock(&svt_lock);

	svq = kzalloc(sizeof(*svq), GFP_KERNEL);
	if (svq) {
		svq->mmio = alloc_pages_exact(mmio_bytes, GFP_KERNEL | __GFP_ZERO);
		svq->dus = alloc_pages_exact(dus_bytes, GFP_KERNEL | __GFP_ZERO);
	}
	if (!svq || !svq->mmio || !svq->dus) {
		if (svq && svq->mmio)
			free_pages_exact(svq->mmio, mmio_bytes);
		if (svq && svq->dus)
			free_pages_exact(svq->dus, dus_bytes);
		kfree(svq);
		mutex_lock(&svt_lock);
		dev->live_queues--;
		mutex_unlock(&svt_lock);
		return -ENOMEM;
	}
	svq->mmio_bytes = mmio_bytes;
	svq->dus_bytes = dus_bytes;
	svt_fill(svq->mmio, mmio_bytes, 0, SVT_MMIO_SCRATCH);
	svt_fill(svq->dus, dus_bytes, 1, SVT_DUS_SCRATCH);

	INIT_LIST_HEAD(&svq->started_node);
	svq->dev = dev;
	svq->uq = q;
	svq->pasid = (u32)arg;	/* uacce passes q->pasid (0 without SVA) */
	svq->tgid = task_tgid_nr(current);
	/* mmgrab, not mmget: the queue must not keep the opener's address space alive. */
	mmgrab(current->mm);
	svq->mm = current->mm;
	q->priv = svq;

	svt_reg_write(svq, SVT_REG_MAGIC, SVT_MAGIC);
	svt_reg_write(svq, SVT_REG_VERSION, SVT_ABI_VERSION);
	svt_reg_write(svq, SVT_REG_OPENER_TGID, svq->tgid);
	svt_reg_write(svq, SVT_REG_PASID, svq->pasid);
	svt_reg_write(svq, SVT_REG_DEV_INDEX, dev->index);

	mutex_lock(&svt_lock);
	svq->id = svt_next_queue_id++;
	svt_reg_write(svq, SVT_REG_QUEUE_ID, svq->id);
	svt_set_state(svq, SVT_QSTATE_INIT);
	list_add_tail(&svq->node, &svt_queues);
	mutex_unlock(&svt_lock);
	return 0;
}

static void svt_put_queue(struct uacce_queue *q)
{
	struct svt_queue *svq = q->priv;
	struct mm_struct *mm;

	mutex_lock(&svt_lock);
	svt_wait_idle(svq);
	if (svq->state == SVT_QSTATE_RELEASED) {
		/* uacce must not put a queue twice; say so instead of underflowing counts. */
		mutex_unlock(&svt_lock);
		pr_warn("queue %u: put_queue called again\n", svq->id);
		return;
	}
	svt_set_state(svq, SVT_QSTATE_RELEASED);
	svq->dev->live_queues--;
	svq->uq = NULL;
	mm = svq->mm;
	svq->mm = NULL;
	mutex_unlock(&svt_lock);
	mmdrop(mm);
}

static int svt_start_queue(struct uacce_queue *q)
{
	struct svt_queue *svq = q->priv;
	u32 doorbell, old_head;

	mutex_lock(&svt_lock);
	svt_wait_idle(svq);
	/* Submissions rung while the queue was not started are dropped, not executed. */
	doorbell = svt_reg_read(svq, SVT_REG_DOORBELL);
	old_head = svq->consumed;
	svq->dropped += doorbell - svq->consumed;
	svq->consumed = doorbell;
	svt_reg_write(svq, SVT_REG_DROPPED, svq->dropped);
	svt_reg_write(svq, SVT_REG_CQ_HEAD, svq->consumed);
	svq->start_count++;
	svt_reg_write(svq, SVT_REG_START_COUNT, svq->start_count);
	svt_set_state(svq, SVT_QSTATE_STARTED);
	/* CQ_HEAD moved: pollers waiting for news must re-check is_q_updated. */
	if (old_head != doorbell)
		wake_up_interruptible(&q->wait);
	mutex_unlock(&svt_lock);
	return 0;
}

static void svt_stop_queue(struct uacce_queue *q)
{
	struct svt_queue *svq = q->priv;

	mutex_lock(&svt_lock);
	svt_set_state(svq, SVT_QSTATE_STOPPED);	/* no new descriptors from here on */
	svt_wait_idle(svq);			/* and the one in flight is finished */
	svq->stop_count++;
	svt_reg_write(svq, SVT_REG_STOP_COUNT, svq->stop_count);
	mutex_unlock(&svt_lock);
}

/* Called by uacce_fops_poll with q->mutex held: no locks here. */
static int svt_is_q_updated(struct uacce_queue *q)
{
	struct svt_queue *svq = q->priv;

	return READ_ONCE(svq->consumed) != svt_reg_read(svq, SVT_REG_ACK);
}

/* Called with mmap_lock held for writing: must not take svt_lock (see top comment). */
static int svt_mmap(struct uacce_queue *q, struct vm_area_struct *vma,
		    struct uacce_qfile_region *qfr)
{
	struct svt_queue *svq = q->priv;
	unsigned long len = vma->vm_end - vma->vm_start;
	unsigned long pages;
	void *base;

	switch (qfr->type) {
	case UACCE_QFRT_MMIO:
		pages = param_mmio_pages;
		base = svq->mmio;
		break;
	case UACCE_QFRT_DUS:
		pages = param_dus_pages;
		base = svq->dus;
		break;
	default:
		return -EINVAL;
	}
	if (!pages || len > pages * SVT_PAGE_SIZE)
		return -EINVAL;
	return remap_pfn_range(vma, vma->vm_start, page_to_pfn(virt_to_page(base)), len,
			       vma->vm_page_prot);
}

static long svt_ioctl(struct uacce_queue *q, unsigned int cmd, unsigned long arg)
{
	struct svt_queue *svq = q->priv;

	if (cmd == SVT_IOCTL_PING)
		return svq->id;
	/* -ENOTTY, not uacce's own -EINVAL, so that the model can tell who answered. */
	return -ENOTTY;
}

#if SVT_HAVE_ISOLATE_OPS
static enum uacce_dev_state svt_get_isolate_state(struct uacce_device *uacce)
{
	struct svt_dev *dev = uacce->priv;
	enum uacce_dev_state st;

	mutex_lock(&svt_lock);
	st = dev->isolate_threshold && dev->total_faults >= dev->isolate_threshold ?
		UACCE_DEV_ISOLATE : UACCE_DEV_NORMAL;
	mutex_unlock(&svt_lock);
	return st;
}

static int svt_isolate_threshold_write(struct uacce_device *uacce, u32 num)
{
	struct svt_dev *dev = uacce->priv;

	mutex_lock(&svt_lock);
	dev->isolate_threshold = num;
	mutex_unlock(&svt_lock);
	return 0;
}

static u32 svt_isolate_threshold_read(struct uacce_device *uacce)
{
	struct svt_dev *dev = uacce->priv;
	u32 v;

	mutex_lock(&svt_lock);
	v = dev->isolate_threshold;
	mutex_unlock(&svt_lock);
	return v;
}
#endif

/* ---- engine --------------------------------------------------------------------------- */

/*
 * Access 8 bytes at addr in mm, like access_remote_vm() (not exported to modules): GUP
 * without FOLL_FORCE, so read-only memory is not writable and VM_IO/VM_PFNMAP mappings
 * (such as queue regions) fail (mm/gup.c, check_vma_flags). All or nothing: both pages of a
 * straddling u64 are looked up before anything is copied. Caller holds mmap_lock for read.
 */
static int svt_access(struct mm_struct *mm, u64 addr, u64 *val, bool write)
{
	unsigned int gup_flags = write ? FOLL_WRITE : 0;
	unsigned long first = addr & PAGE_MASK;
	unsigned int off = addr & ~PAGE_MASK;
	unsigned int n0 = min_t(unsigned int, 8, PAGE_SIZE - off);
	struct page *pages[2] = { NULL, NULL };
	int npages = n0 < 8 ? 2 : 1;
	u8 *buf = (u8 *)val;
	long got;
	int i, ret = 0;
	u8 *k;

	if (addr > ULONG_MAX - 8)
		return -EFAULT;
	for (i = 0; i < npages; i++) {
		got = svt_gup_remote(mm, first + i * PAGE_SIZE, gup_flags, &pages[i]);
		if (got != 1) {
			ret = got < 0 ? (int)got : -EFAULT;
			pages[i] = NULL;
			goto out;
		}
	}
	for (i = 0; i < npages; i++) {
		unsigned int o = i ? 0 : off;
		unsigned int n = i ? 8 - n0 : n0;

		k = kmap_local_page(pages[i]);
		if (write)
			memcpy(k + o, buf + (i ? n0 : 0), n);
		else
			memcpy(buf + (i ? n0 : 0), k + o, n);
		kunmap_local(k);
		if (write)
			set_page_dirty_lock(pages[i]);
	}
out:
	for (i = 0; i < npages; i++)
		if (pages[i])
			put_page(pages[i]);
	return ret;
}

/*
 * Execute one descriptor of svq if it is STARTED and has one pending.
 * Returns true if the caller should continue with this queue.
 */
static bool svt_execute_one(struct svt_queue *svq)
{
	unsigned int slot_off;
	u32 opcode, status, id, pasid;
	u64 addr, value, result = 0;
	struct mm_struct *mm;
	const char *reason = NULL;
	bool have_mm = false, done = true;
	int err = 0;
	void *desc;

	mutex_lock(&svt_lock);
	if (svq->state != SVT_QSTATE_STARTED ||
	    svt_reg_read(svq, SVT_REG_DOORBELL) == svq->consumed) {
		mutex_unlock(&svt_lock);
		return false;
	}
	slot_off = (svq->consumed % SVT_RING_SLOTS) * SVT_DESC_SIZE;
	desc = svq->dus + slot_off;
	opcode = READ_ONCE(*(u32 *)(desc + SVT_DESC_OPCODE));
	addr = READ_ONCE(*(u64 *)(desc + SVT_DESC_ADDR));
	value = READ_ONCE(*(u64 *)(desc + SVT_DESC_VALUE));
	id = svq->id;
	pasid = svq->pasid;
	mm = svq->mm;	/* valid: mmgrab'd until put_queue, which cannot run under svt_lock */
	if (opcode == SVT_OP_WRITE64 || opcode == SVT_OP_READ64)
		have_mm = mmget_not_zero(mm);
	svq->busy = true;	/* stop/put wait for this before they proceed */
	mutex_unlock(&svt_lock);

	if (opcode != SVT_OP_WRITE64 && opcode != SVT_OP_READ64) {
		status = SVT_STATUS_BADOP;
	} else if (!have_mm) {
		status = SVT_STATUS_FAULT;
		reason = "address space gone";
	} else if (!mmap_read_trylock(mm)) {
		/* Busy address space: retry on the next wake-up (see top comment). */
		done = false;
	} else {
		if (opcode == SVT_OP_WRITE64)
			err = svt_access(mm, addr, &value, true);
		else
			err = svt_access(mm, addr, &result, false);
		mmap_read_unlock(mm);
		status = err ? SVT_STATUS_FAULT : SVT_STATUS_OK;
		if (err)
			reason = "address not accessible";
	}

	mutex_lock(&svt_lock);
	if (!done)
		svt_deferred++;
	if (done) {
		svt_executed++;
		if (opcode == SVT_OP_READ64 && status == SVT_STATUS_OK)
			WRITE_ONCE(*(u64 *)(desc + SVT_DESC_RESULT), result);
		WRITE_ONCE(*(u32 *)(desc + SVT_DESC_STATUS), status);
		if (status == SVT_STATUS_FAULT) {
			svq->faults++;
			svt_reg_write(svq, SVT_REG_FAULTS, svq->faults);
			svq->dev->total_faults++;
		}
		svq->consumed++;
		svt_reg_write(svq, SVT_REG_CQ_HEAD, svq->consumed);
		if (svq->uq)
			wake_up_interruptible(&svq->uq->wait);
	}
	svq->busy = false;
	mutex_unlock(&svt_lock);
	wake_up(&svt_busy_wq);

	/* No locks held: the last mmput may run exit_mmap, whose vma close takes q->mutex. */
	if (have_mm)
		mmput(mm);
	if (reason && err)
		pr_warn("fault: queue %u pasid %u addr 0x%llx (%s, error %d)\n", id, pasid,
			(unsigned long long)addr, reason, err);
	else if (reason)
		pr_warn("fault: queue %u pasid %u addr 0x%llx (%s)\n", id, pasid,
			(unsigned long long)addr, reason);
	return done;
}

static int svt_engine_fn(void *unused)
{
	while (!kthread_should_stop()) {
		unsigned int n = 0, i, k;
		struct svt_queue *svq;

		wait_event_interruptible(svt_engine_wq,
					 READ_ONCE(svt_started_count) || kthread_should_stop());
		if (kthread_should_stop())
			break;
		usleep_range(param_engine_interval_us,
			     param_engine_interval_us + param_engine_interval_us / 8 + 10);

		/* Queues are never freed before the engine stops: the pointers stay valid. */
		mutex_lock(&svt_lock);
		list_for_each_entry(svq, &svt_started, started_node) {
			if (n == ARRAY_SIZE(svt_snapshot))
				break;
			svt_snapshot[n++] = svq;
		}
		mutex_unlock(&svt_lock);

		for (i = 0; i < n; i++)
			for (k = 0; k < SVT_BATCH && svt_execute_one(svt_snapshot[i]); k++)
				;
	}
	return 0;
}

/* ---- platform driver ------------------------------------------------------------------ */

static int svt_probe(struct platform_device *pdev)
{
	struct uacce_interface iface = {
		.flags = param_sva ? UACCE_DEV_SVA : 0,
		.ops = &svt_ops,
	};
	struct uacce_device *uacce;
	struct svt_dev *dev;
	int ret;

	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev)
		return -ENOMEM;
	dev->index = pdev->id;
	snprintf(iface.name, sizeof(iface.name), SVT_UACCE_NAME_FMT, pdev->id);

	uacce = uacce_alloc(&pdev->dev, &iface);
	if (IS_ERR(uacce)) {
		kfree(dev);
		return PTR_ERR(uacce);
	}
	uacce->qf_pg_num[UACCE_QFRT_MMIO] = param_mmio_pages;
	uacce->qf_pg_num[UACCE_QFRT_DUS] = param_dus_pages;
	uacce->algs = svt_algs_lines;
	uacce->api_ver = param_api;
	uacce->is_vf = false;
	uacce->priv = dev;
	dev->uacce = uacce;

	mutex_lock(&svt_lock);
	list_add_tail(&dev->node, &svt_devs);
	mutex_unlock(&svt_lock);
	platform_set_drvdata(pdev, dev);

	ret = uacce_register(uacce);
	if (ret) {
		/* uacce has no uacce_free: uacce_remove undoes uacce_alloc in every version. */
		uacce_remove(uacce);
		dev->uacce = NULL;
		platform_set_drvdata(pdev, NULL);
		return ret;
	}
	dev_info(&pdev->dev, "registered %s (flags %u)\n", dev_name(&uacce->dev), uacce->flags);
	return 0;
}

static void svt_remove(struct platform_device *pdev)
{
	struct svt_dev *dev = platform_get_drvdata(pdev);
	struct svt_queue *svq;

	if (!dev || !dev->uacce)
		return;
	/* Stops and puts every queue (ZOMBIE for uacce) and zaps their mappings. */
	uacce_remove(dev->uacce);
	dev->uacce = NULL;

	mutex_lock(&svt_lock);
	list_for_each_entry(svq, &svt_queues, node)
		if (svq->dev == dev && svq->state != SVT_QSTATE_RELEASED)
			pr_warn("queue %u: still live after uacce_remove of svt%d\n",
				svq->id, dev->index);
	mutex_unlock(&svt_lock);
	dev_info(&pdev->dev, "removed\n");
}

static SVT_REMOVE_RET svt_remove_entry(struct platform_device *pdev)
{
	svt_remove(pdev);
	return SVT_REMOVE_OK;
}

static struct platform_driver svt_driver = {
	.probe = svt_probe,
	.remove = svt_remove_entry,
	.driver = {
		.name = SVT_DRIVER_NAME,
	},
};

/* ---- module init / exit --------------------------------------------------------------- */

static bool svt_valid_string(const char *s)
{
	size_t len = s ? strnlen(s, SVT_MAX_STR) : 0;

	if (!len || len >= SVT_MAX_STR)
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._,-") == len;
}

static int svt_check_params(void)
{
	if (param_devices < 1 || param_devices > SVT_MAX_DEVICES ||
	    param_mmio_pages < 0 || param_mmio_pages > SVT_MAX_REGION_PAGES ||
	    param_dus_pages < 0 || param_dus_pages > SVT_MAX_REGION_PAGES ||
	    param_queue_limit < 0 || param_queue_limit > SVT_MAX_QUEUE_LIMIT ||
	    param_sva < 0 || param_sva > 1 ||
	    param_isolate_ops < 0 || param_isolate_ops > 3 ||
	    param_isolate_state < 0 || param_isolate_state > 1 ||
	    param_ioctl < 0 || param_ioctl > 1 ||
	    param_engine_interval_us < 10 || param_engine_interval_us > 100000) {
		pr_err("parameter out of range: devices 1-8, mmio_pages/dus_pages 0-64, queue_limit 0-64, sva/isolate_state/ioctl 0-1, isolate_ops 0-3, engine_interval_us 10-100000\n");
		return -EINVAL;
	}
	if (!svt_valid_string(param_api) || !svt_valid_string(param_algs)) {
		pr_err("api and algs must be 1-127 characters of [A-Za-z0-9._,-]\n");
		return -EINVAL;
	}
	return 0;
}

static void svt_setup_ops(void)
{
	svt_ops.get_available_instances = svt_get_available_instances;
	svt_ops.get_queue = svt_get_queue;
	svt_ops.put_queue = svt_put_queue;
	svt_ops.start_queue = svt_start_queue;
	svt_ops.stop_queue = svt_stop_queue;
	svt_ops.is_q_updated = svt_is_q_updated;
	svt_ops.mmap = svt_mmap;
	if (param_ioctl)
		svt_ops.ioctl = svt_ioctl;
#if SVT_HAVE_ISOLATE_OPS
	if (param_isolate_ops & 1)
		svt_ops.isolate_err_threshold_read = svt_isolate_threshold_read;
	if (param_isolate_ops & 2)
		svt_ops.isolate_err_threshold_write = svt_isolate_threshold_write;
	if (param_isolate_state)
		svt_ops.get_isolate_state = svt_get_isolate_state;
#else
	if (param_isolate_ops || param_isolate_state)
		pr_notice("isolate_ops/isolate_state ignored: this kernel's uacce has no isolate ops (6.2+)\n");
#endif
}

static void svt_free_all(void)
{
	struct svt_queue *svq, *nq;
	struct svt_dev *dev, *nd;

	list_for_each_entry_safe(svq, nq, &svt_queues, node) {
		if (svq->state != SVT_QSTATE_RELEASED) {
			pr_warn("queue %u: never put by uacce, freeing at unload\n", svq->id);
			if (svq->mm)
				mmdrop(svq->mm);
		}
		list_del(&svq->node);
		free_pages_exact(svq->mmio, svq->mmio_bytes);
		free_pages_exact(svq->dus, svq->dus_bytes);
		kfree(svq);
	}
	list_for_each_entry_safe(dev, nd, &svt_devs, node) {
		list_del(&dev->node);
		kfree(dev);
	}
}

static void svt_unregister_devices(void)
{
	int i;

	for (i = SVT_MAX_DEVICES - 1; i >= 0; i--) {
		if (svt_pdevs[i])
			platform_device_unregister(svt_pdevs[i]);
		svt_pdevs[i] = NULL;
	}
}

static int __init svt_init(void)
{
	int ret, i;

	ret = svt_check_params();
	if (ret)
		return ret;
	svt_algs_lines = kstrdup(param_algs, GFP_KERNEL);
	if (!svt_algs_lines)
		return -ENOMEM;
	strreplace(svt_algs_lines, ',', '\n');
	svt_setup_ops();

	svt_engine = kthread_run(svt_engine_fn, NULL, "svadiff_engine");
	if (IS_ERR(svt_engine)) {
		ret = PTR_ERR(svt_engine);
		goto err_algs;
	}
	ret = platform_driver_register(&svt_driver);
	if (ret)
		goto err_engine;
	for (i = 0; i < param_devices; i++) {
		svt_pdevs[i] = platform_device_register_simple(SVT_DRIVER_NAME, i, NULL, 0);
		if (IS_ERR(svt_pdevs[i])) {
			ret = PTR_ERR(svt_pdevs[i]);
			svt_pdevs[i] = NULL;
			goto err_devices;
		}
	}
	pr_info("loaded: abi %u, %d device(s), mmio %d dus %d pages, queue_limit %d, sva %d\n",
		SVT_ABI_VERSION, param_devices, param_mmio_pages, param_dus_pages,
		param_queue_limit, param_sva);
	return 0;

err_devices:
	svt_unregister_devices();
	platform_driver_unregister(&svt_driver);
err_engine:
	kthread_stop(svt_engine);
err_algs:
	svt_free_all();
	kfree(svt_algs_lines);
	return ret;
}

static void __exit svt_exit(void)
{
	/* Removing the devices calls uacce_remove, which stops and puts every queue. */
	platform_driver_unregister(&svt_driver);
	svt_unregister_devices();
	kthread_stop(svt_engine);
	svt_free_all();
	kfree(svt_algs_lines);
	pr_info("unloaded: %lu descriptors executed, %lu deferred (mmap_lock busy)\n",
		svt_executed, svt_deferred);
}

module_init(svt_init);
module_exit(svt_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("svadiff test uacce device (parent driver without hardware)");
