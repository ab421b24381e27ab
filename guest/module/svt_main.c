// SPDX-License-Identifier: GPL-2.0
/*
 * svadiff test uacce device: a uacce parent driver for test devices (svadiff_test.ko).
 *
 * The contract is docs/test-device.md and guest/include/svt_abi.h; the reference model
 * (harness/device/) encodes exactly that, so behaviour changes here are contract changes.
 * This file is what both backends share (svt.h): parameters, queues, registers, uacce ops.
 *
 * Design notes (why, briefly):
 *  - Queue pages are physically contiguous (alloc_pages_exact) so that one remap_pfn_range
 *    covers the whole vma: a MAP_PRIVATE (COW) mapping requires that (mm/memory.c,
 *    remap_pfn_range_notrack: "addr != vma->vm_start || end != vma->vm_end" -> -EINVAL).
 *  - Queue pages and bookkeeping are kept until module unload, so that a mapping a kernel bug
 *    leaves alive shows STATE = RELEASED instead of reading freed memory.
 *  - Both backends see the same register page and ring: the platform engine in kernel
 *    memory, the PCI endpoint by DMA. Counters the user can overwrite in the register page
 *    are kept by the driver (or the endpoint) and only ever assigned to the registers.
 */
#include "svt.h"

#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/string.h>

/* ---- parameters ----------------------------------------------------------------------- */

#define SVT_MAX_STR		128

int svt_param_devices = 1;
static int param_mmio_pages = 2;
static int param_dus_pages = 2;
int svt_param_queue_limit = 4;
static int param_sva;
static int param_isolate_ops;
static int param_isolate_state;
static int param_ioctl;
static char *param_api = "svadiff-test-v1";
static char *param_algs = "copy,fill";
int svt_param_engine_interval_us = 1000;

module_param_named(devices, svt_param_devices, int, 0444);
MODULE_PARM_DESC(devices, "number of test devices svt0..svt<N-1> (1-8)");
module_param_named(mmio_pages, param_mmio_pages, int, 0444);
MODULE_PARM_DESC(mmio_pages, "pages of uacce region 0 (0-64, 0: no region)");
module_param_named(dus_pages, param_dus_pages, int, 0444);
MODULE_PARM_DESC(dus_pages, "pages of uacce region 1 (0-64, 0: no region)");
module_param_named(queue_limit, svt_param_queue_limit, int, 0444);
MODULE_PARM_DESC(queue_limit, "live queues per device (0-64); more opens get EBUSY");
module_param_named(sva, param_sva, int, 0444);
MODULE_PARM_DESC(sva, "0: platform devices; 1: svadiff-sva PCIe endpoints, registered with UACCE_DEV_SVA");
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
module_param_named(engine_interval_us, svt_param_engine_interval_us, int, 0444);
MODULE_PARM_DESC(engine_interval_us, "engine doorbell scan period (10-100000 us)");

/* ---- state ---------------------------------------------------------------------------- */

DEFINE_MUTEX(svt_lock);
static LIST_HEAD(svt_devs);
LIST_HEAD(svt_queues);
LIST_HEAD(svt_started);
unsigned int svt_started_count;
static u32 svt_next_queue_id = 1;
DECLARE_WAIT_QUEUE_HEAD(svt_busy_wq);	/* stop_queue waits for !busy here */

static const struct svt_backend *svt_backend;
/* api and algs in use: the load's parameters, or what a control "up"/"reset" gave (the charp
 * parameters themselves are left alone: the kernel owns their memory) */
static char svt_api[SVT_MAX_STR];
static char svt_algs[SVT_MAX_STR];
static char *svt_algs_lines;	/* svt_algs with ',' -> '\n' for sysfs "algorithms" */
static struct uacce_ops svt_ops;

/* ---- registers ------------------------------------------------------------------------ */

void svt_reg_write(struct svt_queue *svq, unsigned int off, u32 val)
{
	WRITE_ONCE(*(u32 *)(svq->mmio + off), val);
}

u32 svt_reg_read(struct svt_queue *svq, unsigned int off)
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
	}
	WRITE_ONCE(svq->state, state);
	svt_reg_write(svq, SVT_REG_STATE, state);
}

/* Caller holds svt_lock; waits (dropping it) until the platform engine is done with svq. */
void svt_wait_idle(struct svt_queue *svq)
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
	n = svt_param_queue_limit - (int)dev->live_queues;
	mutex_unlock(&svt_lock);
	return n;
}

static void svt_free_pages(struct svt_queue *svq)
{
	if (svq->mmio)
		free_pages_exact(svq->mmio, svq->mmio_bytes);
	if (svq->dus)
		free_pages_exact(svq->dus, svq->dus_bytes);
	kfree(svq);
}

static int svt_get_queue(struct uacce_device *uacce, unsigned long arg, struct uacce_queue *q)
{
	struct svt_dev *dev = uacce->priv;
	size_t mmio_bytes = max(param_mmio_pages, 1) * SVT_PAGE_SIZE;
	size_t dus_bytes = max(param_dus_pages, 1) * SVT_PAGE_SIZE;
	struct svt_queue *svq;
	int ret = -ENOMEM;

	mutex_lock(&svt_lock);
	if (dev->live_queues >= svt_param_queue_limit) {
		mutex_unlock(&svt_lock);
		return -EBUSY;
	}
	dev->live_queues++;	/* reserve, so that concurrent opens cannot overshoot */
	mutex_unlock(&svt_lock);

	svq = kzalloc(sizeof(*svq), GFP_KERNEL);
	if (svq) {
		svq->mmio_bytes = mmio_bytes;
		svq->dus_bytes = dus_bytes;
		svq->mmio = alloc_pages_exact(mmio_bytes, GFP_KERNEL | __GFP_ZERO);
		svq->dus = alloc_pages_exact(dus_bytes, GFP_KERNEL | __GFP_ZERO);
	}
	if (!svq || !svq->mmio || !svq->dus)
		goto err;
	svt_fill(svq->mmio, mmio_bytes, 0, SVT_MMIO_SCRATCH);
	svt_fill(svq->dus, dus_bytes, 1, SVT_DUS_SCRATCH);

	INIT_LIST_HEAD(&svq->started_node);
	svq->dev = dev;
	svq->uq = q;
	svq->pasid = (u32)arg;	/* uacce passes q->pasid (0 without SVA) */
	svq->tgid = task_tgid_nr(current);
	svq->slot = -1;
	svt_reg_write(svq, SVT_REG_MAGIC, SVT_MAGIC);
	svt_reg_write(svq, SVT_REG_VERSION, SVT_ABI_VERSION);
	svt_reg_write(svq, SVT_REG_OPENER_TGID, svq->tgid);
	svt_reg_write(svq, SVT_REG_PASID, svq->pasid);
	svt_reg_write(svq, SVT_REG_DEV_INDEX, dev->index);
	if (svt_backend->queue_init) {
		ret = svt_backend->queue_init(svq);
		if (ret)
			goto err;
	}
	/* mmgrab, not mmget: the queue must not keep the opener's address space alive. */
	mmgrab(current->mm);
	svq->mm = current->mm;
	q->priv = svq;

	mutex_lock(&svt_lock);
	svq->id = svt_next_queue_id++;
	svt_reg_write(svq, SVT_REG_QUEUE_ID, svq->id);
	svt_set_state(svq, SVT_QSTATE_INIT);
	list_add_tail(&svq->node, &svt_queues);
	mutex_unlock(&svt_lock);
	return 0;

err:
	if (svq)
		svt_free_pages(svq);
	mutex_lock(&svt_lock);
	dev->live_queues--;
	mutex_unlock(&svt_lock);
	return ret;
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
	if (svq->state == SVT_QSTATE_STARTED && svt_backend->queue_stop)
		svt_backend->queue_stop(svq);
	svt_set_state(svq, SVT_QSTATE_RELEASED);
	if (svt_backend->queue_put)
		svt_backend->queue_put(svq);
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
	if (svt_backend->queue_start)
		svt_backend->queue_start(svq);
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
	if (svt_backend->queue_stop)
		svt_backend->queue_stop(svq);
	svq->stop_count++;
	svt_reg_write(svq, SVT_REG_STOP_COUNT, svq->stop_count);
	mutex_unlock(&svt_lock);
}

/* Called by uacce_fops_poll with q->mutex held: no locks here. */
static int svt_is_q_updated(struct uacce_queue *q)
{
	struct svt_queue *svq = q->priv;

	return svt_backend->consumed(svq) != svt_reg_read(svq, SVT_REG_ACK);
}

/* Called with mmap_lock held for writing: must not take svt_lock (see svt_platform.c). */
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
	if (svt_backend->sync_faults)
		svt_backend->sync_faults(dev);
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

/* ---- devices -------------------------------------------------------------------------- */

struct svt_dev *svt_dev_register(struct device *parent, int index, unsigned int flags)
{
	struct uacce_interface iface = {
		.flags = flags,
		.ops = &svt_ops,
	};
	struct uacce_device *uacce;
	struct svt_dev *dev;
	int ret;

	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev)
		return ERR_PTR(-ENOMEM);
	dev->index = index;
	snprintf(iface.name, sizeof(iface.name), SVT_UACCE_NAME_FMT, index);

	uacce = uacce_alloc(parent, &iface);
	if (IS_ERR(uacce)) {
		kfree(dev);
		return ERR_CAST(uacce);
	}
	uacce->qf_pg_num[UACCE_QFRT_MMIO] = param_mmio_pages;
	uacce->qf_pg_num[UACCE_QFRT_DUS] = param_dus_pages;
	uacce->algs = svt_algs_lines;
	uacce->api_ver = svt_api;
	uacce->is_vf = false;
	uacce->priv = dev;
	dev->uacce = uacce;

	mutex_lock(&svt_lock);
	list_add_tail(&dev->node, &svt_devs);
	mutex_unlock(&svt_lock);

	ret = uacce_register(uacce);
	if (ret) {
		/* uacce has no uacce_free: uacce_remove undoes uacce_alloc in every version. */
		uacce_remove(uacce);
		dev->uacce = NULL;
		return ERR_PTR(ret);
	}
	dev_info(parent, "registered %s (flags %u)\n", dev_name(&uacce->dev), uacce->flags);
	return dev;
}

void svt_dev_remove(struct device *parent, struct svt_dev *dev)
{
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
	dev_info(parent, "removed\n");
}

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
	if (svt_param_devices < 1 || svt_param_devices > SVT_MAX_DEVICES ||
	    param_mmio_pages < 0 || param_mmio_pages > SVT_MAX_REGION_PAGES ||
	    param_dus_pages < 0 || param_dus_pages > SVT_MAX_REGION_PAGES ||
	    svt_param_queue_limit < 0 || svt_param_queue_limit > SVT_MAX_QUEUE_LIMIT ||
	    param_sva < 0 || param_sva > 1 ||
	    param_isolate_ops < 0 || param_isolate_ops > 3 ||
	    param_isolate_state < 0 || param_isolate_state > 1 ||
	    param_ioctl < 0 || param_ioctl > 1 ||
	    svt_param_engine_interval_us < 10 || svt_param_engine_interval_us > 100000) {
		pr_err("parameter out of range: devices 1-8, mmio_pages/dus_pages 0-64, queue_limit 0-64, sva/isolate_state/ioctl 0-1, isolate_ops 0-3, engine_interval_us 10-100000\n");
		return -EINVAL;
	}
	if (!svt_valid_string(svt_api) || !svt_valid_string(svt_algs)) {
		pr_err("api and algs must be 1-127 characters of [A-Za-z0-9._,-]\n");
		return -EINVAL;
	}
	return 0;
}

static void svt_setup_ops(void)
{
	memset(&svt_ops, 0, sizeof(svt_ops));	/* a control "up" may drop ops the last one had */
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
		svt_free_pages(svq);
	}
	list_for_each_entry_safe(dev, nd, &svt_devs, node) {
		list_del(&dev->node);
		kfree(dev);
	}
}

/*
 * Up: what loading the module does with the current parameters (devices registered and
 * probed, queue ids from 1). Down: what unloading does (devices removed, every queue and its
 * pages freed). The control file (below) runs them without the module loader, so that a
 * harness can return the device to the state of a fresh load between programs.
 */
static bool svt_up_state;

static int svt_up(void)
{
	int ret;

	ret = svt_check_params();
	if (ret)
		return ret;
	svt_algs_lines = kstrdup(svt_algs, GFP_KERNEL);
	if (!svt_algs_lines)
		return -ENOMEM;
	strreplace(svt_algs_lines, ',', '\n');
	svt_setup_ops();
	svt_backend = param_sva ? &svt_pci_backend : &svt_platform_backend;
	svt_next_queue_id = 1;
	svt_started_count = 0;

	ret = svt_backend->init();
	if (ret) {
		svt_free_all();
		kfree(svt_algs_lines);
		svt_algs_lines = NULL;
		return ret;
	}
	svt_up_state = true;
	pr_info("loaded: abi %u, %s backend, %d device(s), mmio %d dus %d pages, queue_limit %d, sva %d\n",
		SVT_ABI_VERSION, svt_backend->name, svt_param_devices, param_mmio_pages,
		param_dus_pages, svt_param_queue_limit, param_sva);
	return 0;
}

static void svt_down(void)
{
	if (!svt_up_state)
		return;
	/* Removing the devices calls uacce_remove, which stops and puts every queue. */
	svt_backend->exit();
	svt_free_all();
	kfree(svt_algs_lines);
	svt_algs_lines = NULL;
	svt_up_state = false;
}

/* ---- control file: /sys/module/svadiff_test/parameters/control ------------------------ */

/*
 * Writing "down", "up [name=value …]" or "reset [name=value …]" (down, then up) does what
 * unloading and loading the module with those parameters would do; a parameter not named
 * keeps its value. The harness's in-place reset between programs (docs/test-device.md
 * "Reset"). A bad parameter (unknown, out of range) fails the write: "up" then stays down,
 * "reset" comes up with the old parameters. Like rmmod, nothing happens while something holds
 * a reference to the module; like insmod, "up" of a device that is up is EEXIST.
 */
static DEFINE_MUTEX(svt_ctl_lock);
static bool svt_ctl_ready;	/* module init done: control writes at insmod are refused */

struct svt_int_param {
	const char *name;
	int *v;
};

static const struct svt_int_param svt_int_params[] = {
	{ "devices", &svt_param_devices },
	{ "mmio_pages", &param_mmio_pages },
	{ "dus_pages", &param_dus_pages },
	{ "queue_limit", &svt_param_queue_limit },
	{ "sva", &param_sva },
	{ "isolate_ops", &param_isolate_ops },
	{ "isolate_state", &param_isolate_state },
	{ "ioctl", &param_ioctl },
	{ "engine_interval_us", &svt_param_engine_interval_us },
};

#define SVT_N_INT ARRAY_SIZE(svt_int_params)

/* Parse "name=value …" into the parameters; on error everything is as it was. */
static int svt_apply_params(char *args)
{
	int old[SVT_N_INT];
	char old_api[SVT_MAX_STR], old_algs[SVT_MAX_STR];
	char *tok;
	int i, ret = 0;

	for (i = 0; i < SVT_N_INT; i++)
		old[i] = *svt_int_params[i].v;
	strscpy(old_api, svt_api, sizeof(old_api));
	strscpy(old_algs, svt_algs, sizeof(old_algs));

	while ((tok = strsep(&args, " \t\n")) != NULL) {
		char *val;

		if (!*tok)
			continue;
		val = strchr(tok, '=');
		if (!val) {
			ret = -EINVAL;
			break;
		}
		*val++ = '\0';
		if (!strcmp(tok, "api") || !strcmp(tok, "algs")) {
			char *dst = tok[1] == 'p' ? svt_api : svt_algs;

			if (strscpy(dst, val, SVT_MAX_STR) < 0) {
				ret = -EINVAL;
				break;
			}
			continue;
		}
		for (i = 0; i < SVT_N_INT; i++)
			if (!strcmp(tok, svt_int_params[i].name))
				break;
		if (i == SVT_N_INT || kstrtoint(val, 10, svt_int_params[i].v)) {
			ret = -EINVAL;
			break;
		}
	}
	if (!ret)
		ret = svt_check_params();
	if (ret) {
		for (i = 0; i < SVT_N_INT; i++)
			*svt_int_params[i].v = old[i];
		strscpy(svt_api, old_api, sizeof(svt_api));
		strscpy(svt_algs, old_algs, sizeof(svt_algs));
		pr_err("control: bad parameters (names: devices mmio_pages dus_pages queue_limit sva isolate_ops isolate_state ioctl engine_interval_us api algs)\n");
	}
	return ret;
}

static int svt_control_set(const char *val, const struct kernel_param *kp)
{
	char *buf, *args, *cmd;
	int ret = 0;

	if (!READ_ONCE(svt_ctl_ready))
		return -EPERM;
	buf = kstrndup(val, PAGE_SIZE, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	args = strim(buf);
	cmd = strsep(&args, " \t\n");

	mutex_lock(&svt_ctl_lock);
	if (strcmp(cmd, "down") && strcmp(cmd, "up") && strcmp(cmd, "reset")) {
		pr_err("control: unknown command '%.32s' (down, up, reset)\n", cmd);
		ret = -EINVAL;
	} else if (module_refcount(THIS_MODULE) != 0) {
		ret = -EBUSY;	/* what delete_module says */
	} else if (!strcmp(cmd, "up") && svt_up_state) {
		ret = -EEXIST;	/* what loading a loaded module says */
	} else {
		if (strcmp(cmd, "up"))
			svt_down();
		/* parameters change only while down; a bad one keeps the old ones */
		if (strcmp(cmd, "down") && args)
			ret = svt_apply_params(args);
		if (strcmp(cmd, "down") && (!ret || !strcmp(cmd, "reset"))) {
			int up = svt_up();

			ret = ret ? ret : up;
		}
	}
	mutex_unlock(&svt_ctl_lock);
	kfree(buf);
	return ret;
}

static const struct kernel_param_ops svt_control_ops = {
	.set = svt_control_set,
};
module_param_cb(control, &svt_control_ops, NULL, 0200);
MODULE_PARM_DESC(control, "write: down | up [name=value ...] | reset [name=value ...] (unload / load without the module loader)");

static int __init svt_init(void)
{
	int ret;

	if (!param_api || strscpy(svt_api, param_api, sizeof(svt_api)) < 0 ||
	    !param_algs || strscpy(svt_algs, param_algs, sizeof(svt_algs)) < 0) {
		pr_err("api and algs must be 1-127 characters of [A-Za-z0-9._,-]\n");
		return -EINVAL;
	}
	ret = svt_up();
	if (!ret)
		WRITE_ONCE(svt_ctl_ready, true);
	return ret;
}

static void __exit svt_exit(void)
{
	mutex_lock(&svt_ctl_lock);
	svt_down();
	mutex_unlock(&svt_ctl_lock);
}

module_init(svt_init);
module_exit(svt_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("svadiff test uacce device (platform devices, or svadiff-sva PCIe endpoints with SVA)");
