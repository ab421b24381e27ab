// SPDX-License-Identifier: GPL-2.0
/*
 * svadiff test uacce device, platform backend (sva=0): platform devices svadiff_test.N
 * without an IOMMU group, and one kernel thread, the engine, that executes work items in the
 * opener's address space with get_user_pages_remote (docs/test-device.md "The engine").
 *
 * The engine never holds svt_lock while it takes the opener's mmap_lock, and it only
 * try-locks mmap_lock while stop_queue may be waiting for it: uacce_remove() calls
 * stop_queue with q->mutex held, and munmap/mmap take q->mutex under mmap_lock
 * (uacce_vma_close / uacce_fops_mmap), so blocking on mmap_lock there could deadlock.
 */
#include "svt.h"

#include <linux/platform_device.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/highmem.h>
#include <linux/kthread.h>
#include <linux/delay.h>

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

static DECLARE_WAIT_QUEUE_HEAD(svt_engine_wq);	/* engine sleeps here while idle */
static struct task_struct *svt_engine;
static struct svt_queue *svt_snapshot[SVT_MAX_STARTED];	/* engine-private */
static unsigned long svt_executed, svt_deferred;	/* reported at unload */
static struct platform_device *svt_pdevs[SVT_MAX_DEVICES];

/*
 * Access 8 bytes at addr in mm, like access_remote_vm() (not exported to modules): GUP
 * without FOLL_FORCE, so read-only memory is not writable and VM_IO/VM_PFNMAP mappings
 * (such as queue regions) fail (mm/gup.c, check_vma_flags). All or nothing: both pages of a
 * straddling u64 are looked up before anything is copied. Caller holds mmap_lock for read.
 * On failure *fault_addr is the first byte that could not be accessed.
 */
static int svt_access(struct mm_struct *mm, u64 addr, u64 *val, bool write, u64 *fault_addr)
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

	*fault_addr = addr;
	if (addr > ULONG_MAX - 8)
		return -EFAULT;
	for (i = 0; i < npages; i++) {
		got = svt_gup_remote(mm, first + i * PAGE_SIZE, gup_flags, &pages[i]);
		if (got != 1) {
			ret = got < 0 ? (int)got : -EFAULT;
			pages[i] = NULL;
			if (i)
				*fault_addr = first + PAGE_SIZE;
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
	u64 addr, value, result = 0, fault_addr = 0;
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
		fault_addr = addr;
	} else if (!mmap_read_trylock(mm)) {
		/* Busy address space: retry on the next wake-up (see top comment). */
		done = false;
	} else {
		if (opcode == SVT_OP_WRITE64)
			err = svt_access(mm, addr, &value, true, &fault_addr);
		else
			err = svt_access(mm, addr, &result, false, &fault_addr);
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
		/* RESULT: the value of a successful READ64, the faulting address of a FAULT */
		if (status == SVT_STATUS_FAULT)
			WRITE_ONCE(*(u64 *)(desc + SVT_DESC_RESULT), fault_addr);
		else if (opcode == SVT_OP_READ64 && status == SVT_STATUS_OK)
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
			(unsigned long long)fault_addr, reason, err);
	else if (reason)
		pr_warn("fault: queue %u pasid %u addr 0x%llx (%s)\n", id, pasid,
			(unsigned long long)fault_addr, reason);
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
		usleep_range(svt_param_engine_interval_us,
			     svt_param_engine_interval_us + svt_param_engine_interval_us / 8 + 10);

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

static void svt_platform_queue_start(struct svt_queue *svq)
{
	wake_up(&svt_engine_wq);
}

static u32 svt_platform_consumed(struct svt_queue *svq)
{
	return READ_ONCE(svq->consumed);
}

/* ---- platform driver ------------------------------------------------------------------ */

static int svt_probe(struct platform_device *pdev)
{
	struct svt_dev *dev = svt_dev_register(&pdev->dev, pdev->id, 0);

	if (IS_ERR(dev))
		return PTR_ERR(dev);
	platform_set_drvdata(pdev, dev);
	return 0;
}

static SVT_REMOVE_RET svt_remove_entry(struct platform_device *pdev)
{
	svt_dev_remove(&pdev->dev, platform_get_drvdata(pdev));
	return SVT_REMOVE_OK;
}

static struct platform_driver svt_driver = {
	.probe = svt_probe,
	.remove = svt_remove_entry,
	.driver = {
		.name = SVT_DRIVER_NAME,
	},
};

static void svt_unregister_devices(void)
{
	int i;

	for (i = SVT_MAX_DEVICES - 1; i >= 0; i--) {
		if (svt_pdevs[i])
			platform_device_unregister(svt_pdevs[i]);
		svt_pdevs[i] = NULL;
	}
}

static int svt_platform_init(void)
{
	int ret, i;

	svt_executed = 0;
	svt_deferred = 0;
	svt_engine = kthread_run(svt_engine_fn, NULL, "svadiff_engine");
	if (IS_ERR(svt_engine))
		return PTR_ERR(svt_engine);
	ret = platform_driver_register(&svt_driver);
	if (ret)
		goto err_engine;
	for (i = 0; i < svt_param_devices; i++) {
		svt_pdevs[i] = platform_device_register_simple(SVT_DRIVER_NAME, i, NULL, 0);
		if (IS_ERR(svt_pdevs[i])) {
			ret = PTR_ERR(svt_pdevs[i]);
			svt_pdevs[i] = NULL;
			goto err_devices;
		}
	}
	return 0;

err_devices:
	svt_unregister_devices();
	platform_driver_unregister(&svt_driver);
err_engine:
	kthread_stop(svt_engine);
	return ret;
}

static void svt_platform_exit(void)
{
	platform_driver_unregister(&svt_driver);
	svt_unregister_devices();
	kthread_stop(svt_engine);
	pr_info("unloaded: %lu descriptors executed, %lu deferred (mmap_lock busy)\n",
		svt_executed, svt_deferred);
}

const struct svt_backend svt_platform_backend = {
	.name = "platform",
	.init = svt_platform_init,
	.exit = svt_platform_exit,
	.queue_start = svt_platform_queue_start,
	.consumed = svt_platform_consumed,
};
