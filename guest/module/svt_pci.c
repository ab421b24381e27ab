// SPDX-License-Identifier: GPL-2.0
/*
 * svadiff test uacce device, PCI backend (sva=1): the svadiff-sva PCIe endpoints of the SVA
 * machine (guest/include/svt_endpoint.h), each registered with UACCE_DEV_SVA, so that
 * every open binds the opener's mm (iommu_sva_bind_device) and the queue gets the bond's
 * PASID. The endpoint executes the queue's work items itself: it polls DOORBELL in the
 * register page and reads the ring by DMA, and reaches user memory only through ATS
 * translation requests and page requests tagged with that PASID.
 *
 * The driver programs a queue slot of the endpoint at get_queue (PASID, DMA addresses of
 * the register page and the ring), sets RUN at start_queue and clears it at stop_queue
 * (the endpoint completes nothing after that write), and releases the slot at put_queue.
 * The endpoint keeps the queue's consumed and fault counts while it runs; the driver
 * takes them over at stop. Its interrupt (MSI) wakes pollers and prints the fault log.
 */
#include "svt.h"

#include <linux/pci.h>
#include <linux/interrupt.h>
#include <linux/dma-mapping.h>
#include <linux/io.h>
#include <linux/slab.h>

#include "svt_endpoint.h"

struct svt_pci_dev {
	struct pci_dev *pdev;
	void __iomem *bar;
	int irq;
	struct svt_dev *dev;
	struct svt_queue *slots[SVT_EP_MAX_QUEUES];	/* under svt_lock */
	unsigned int nslots;
};

static int svt_pci_bound;	/* endpoints bound at load, under svt_lock */

static void __iomem *svt_qreg(struct svt_pci_dev *pd, int slot, unsigned int reg)
{
	return pd->bar + SVT_EP_Q(slot) + reg;
}

static const char *const svt_fault_reason[] = {
	[SVT_EP_FAULT_TRANSLATION] = "no translation, page requests off",
	[SVT_EP_FAULT_PR_DENIED] = "page request denied",
	[SVT_EP_FAULT_PR_TIMEOUT] = "page request timed out",
	[SVT_EP_FAULT_NO_ACCESS] = "no access after page response",
	[SVT_EP_FAULT_MEMORY] = "translated access failed",
	[SVT_EP_FAULT_PR_REFUSED] = "page request refused",
};

/* svt_lock held: add the faults the endpoint counted since the last look to the totals. */
static void svt_pci_sync_faults(struct svt_dev *dev)
{
	struct svt_pci_dev *pd = dev->pci;
	unsigned int slot;

	if (!pd)
		return;
	for (slot = 0; slot < pd->nslots; slot++) {
		struct svt_queue *svq = pd->slots[slot];
		u32 now;

		if (!svq || svq->state != SVT_QSTATE_STARTED)
			continue;
		now = readl(svt_qreg(pd, slot, SVT_EP_Q_FAULTS));
		dev->total_faults += (u32)(now - svq->faults);
		svq->faults = now;
	}
}

static irqreturn_t svt_pci_irq(int irq, void *data)
{
	struct svt_pci_dev *pd = data;
	struct svt_dev *dev = pd->dev;
	u32 status = readl(pd->bar + SVT_EP_IRQ_STATUS);
	unsigned int slot;

	if (!status)
		return IRQ_NONE;
	writel(status, pd->bar + SVT_EP_IRQ_STATUS);

	mutex_lock(&svt_lock);
	/* the fault log: one line per fault, like the platform engine's */
	while (readl(pd->bar + SVT_EP_FLOG_COUNT) & ~SVT_EP_FLOG_LOST) {
		u32 info = readl(pd->bar + SVT_EP_FLOG_INFO);
		u64 addr = readl(pd->bar + SVT_EP_FLOG_ADDR_LO) |
			   (u64)readl(pd->bar + SVT_EP_FLOG_ADDR_HI) << 32;
		u32 pasid = readl(pd->bar + SVT_EP_FLOG_PASID);
		unsigned int reason = (info >> 8) & 0xff;
		struct svt_queue *svq = pd->slots[info & 0xff & (SVT_EP_MAX_QUEUES - 1)];

		writel(1, pd->bar + SVT_EP_FLOG_POP);
		dev_warn(&pd->pdev->dev, "fault: queue %u pasid %u addr 0x%llx (%s)\n",
			 svq ? svq->id : 0, pasid, (unsigned long long)addr,
			 reason < ARRAY_SIZE(svt_fault_reason) && svt_fault_reason[reason] ?
			 svt_fault_reason[reason] : "unknown reason");
	}
	if (readl(pd->bar + SVT_EP_FLOG_COUNT) & SVT_EP_FLOG_LOST) {
		writel(1, pd->bar + SVT_EP_FLOG_POP);
		dev_warn(&pd->pdev->dev, "fault: log overflowed, some faults not shown\n");
	}
	svt_pci_sync_faults(dev);
	for (slot = 0; slot < pd->nslots; slot++) {
		struct svt_queue *svq = pd->slots[slot];

		if (svq && svq->state == SVT_QSTATE_STARTED && svq->uq)
			wake_up_interruptible(&svq->uq->wait);
	}
	mutex_unlock(&svt_lock);
	return IRQ_HANDLED;
}

/* ---- queues --------------------------------------------------------------------------- */

static int svt_pci_queue_init(struct svt_queue *svq)
{
	struct svt_pci_dev *pd = svq->dev->pci;
	struct device *d;
	int slot = -1, i;

	if (!pd)
		return -ENODEV;
	d = &pd->pdev->dev;
	mutex_lock(&svt_lock);
	for (i = 0; i < pd->nslots; i++) {
		if (!pd->slots[i]) {
			pd->slots[i] = svq;
			slot = i;
			break;
		}
	}
	mutex_unlock(&svt_lock);
	if (slot < 0)
		return -EBUSY;	/* queue_limit <= 64 slots: cannot happen */

	/* the endpoint touches page 0 of each region only: registers and ring */
	svq->mmio_dma = dma_map_single(d, svq->mmio, SVT_PAGE_SIZE, DMA_BIDIRECTIONAL);
	if (dma_mapping_error(d, svq->mmio_dma))
		goto err_slot;
	svq->dus_dma = dma_map_single(d, svq->dus, SVT_PAGE_SIZE, DMA_BIDIRECTIONAL);
	if (dma_mapping_error(d, svq->dus_dma))
		goto err_mmio;
	svq->slot = slot;
	writel(0, svt_qreg(pd, slot, SVT_EP_Q_CTRL));
	writel(svq->pasid, svt_qreg(pd, slot, SVT_EP_Q_PASID));
	writel(0, svt_qreg(pd, slot, SVT_EP_Q_CONSUMED));
	writel(0, svt_qreg(pd, slot, SVT_EP_Q_FAULTS));
	writel(lower_32_bits(svq->mmio_dma), svt_qreg(pd, slot, SVT_EP_Q_REGS_LO));
	writel(upper_32_bits(svq->mmio_dma), svt_qreg(pd, slot, SVT_EP_Q_REGS_HI));
	writel(lower_32_bits(svq->dus_dma), svt_qreg(pd, slot, SVT_EP_Q_RING_LO));
	writel(upper_32_bits(svq->dus_dma), svt_qreg(pd, slot, SVT_EP_Q_RING_HI));
	return 0;

err_mmio:
	dma_unmap_single(d, svq->mmio_dma, SVT_PAGE_SIZE, DMA_BIDIRECTIONAL);
err_slot:
	mutex_lock(&svt_lock);
	pd->slots[slot] = NULL;
	mutex_unlock(&svt_lock);
	return -ENOMEM;
}

static void svt_pci_queue_start(struct svt_queue *svq)
{
	struct svt_pci_dev *pd = svq->dev->pci;

	if (!pd || svq->slot < 0)
		return;
	writel(svq->consumed, svt_qreg(pd, svq->slot, SVT_EP_Q_CONSUMED));
	writel(svq->faults, svt_qreg(pd, svq->slot, SVT_EP_Q_FAULTS));
	writel(SVT_EP_QC_RUN, svt_qreg(pd, svq->slot, SVT_EP_Q_CTRL));
}

static void svt_pci_queue_stop(struct svt_queue *svq)
{
	struct svt_pci_dev *pd = svq->dev->pci;
	u32 faults;

	if (!pd || svq->slot < 0)
		return;
	/* the endpoint finishes nothing after RUN is clear; the read flushes the write */
	writel(0, svt_qreg(pd, svq->slot, SVT_EP_Q_CTRL));
	if (readl(svt_qreg(pd, svq->slot, SVT_EP_Q_STATUS)) & SVT_EP_QS_RUNNING)
		dev_warn(&pd->pdev->dev, "queue %u: endpoint slot %d still running after stop\n",
			 svq->id, svq->slot);
	svq->consumed = readl(svt_qreg(pd, svq->slot, SVT_EP_Q_CONSUMED));
	faults = readl(svt_qreg(pd, svq->slot, SVT_EP_Q_FAULTS));
	svq->dev->total_faults += (u32)(faults - svq->faults);
	svq->faults = faults;
}

static void svt_pci_queue_put(struct svt_queue *svq)
{
	struct svt_pci_dev *pd = svq->dev->pci;
	struct device *d;

	if (!pd || svq->slot < 0)
		return;
	d = &pd->pdev->dev;
	writel(0, svt_qreg(pd, svq->slot, SVT_EP_Q_CTRL));
	writel(0, svt_qreg(pd, svq->slot, SVT_EP_Q_PASID));
	dma_unmap_single(d, svq->mmio_dma, SVT_PAGE_SIZE, DMA_BIDIRECTIONAL);
	dma_unmap_single(d, svq->dus_dma, SVT_PAGE_SIZE, DMA_BIDIRECTIONAL);
	pd->slots[svq->slot] = NULL;
	svq->slot = -1;
}

static u32 svt_pci_consumed(struct svt_queue *svq)
{
	struct svt_pci_dev *pd = svq->dev->pci;

	/* a STARTED queue has its endpoint (removal stops every queue first) */
	if (READ_ONCE(svq->state) == SVT_QSTATE_STARTED && pd && svq->slot >= 0)
		return readl(svt_qreg(pd, svq->slot, SVT_EP_Q_CONSUMED));
	return READ_ONCE(svq->consumed);
}

/* ---- PCI driver ----------------------------------------------------------------------- */

static void svt_pci_release(struct pci_dev *pdev, struct svt_pci_dev *pd)
{
	if (pd->irq >= 0)
		free_irq(pd->irq, pd);
	pci_free_irq_vectors(pdev);
	pci_iounmap(pdev, pd->bar);
	pci_release_region(pdev, 0);
	pci_clear_master(pdev);
	pci_disable_device(pdev);
	kfree(pd);
}

static int svt_pci_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct svt_pci_dev *pd;
	struct svt_dev *dev;
	u32 magic, version, index;
	int ret;

	pd = kzalloc(sizeof(*pd), GFP_KERNEL);
	if (!pd)
		return -ENOMEM;
	pd->pdev = pdev;
	pd->irq = -1;
	ret = pci_enable_device(pdev);
	if (ret)
		goto err_free;
	ret = pci_request_region(pdev, 0, SVT_DRIVER_NAME);
	if (ret)
		goto err_disable;
	pd->bar = pci_iomap(pdev, 0, 0);
	if (!pd->bar) {
		ret = -ENOMEM;
		goto err_region;
	}
	magic = readl(pd->bar + SVT_EP_ID);
	version = readl(pd->bar + SVT_EP_VERSION);
	index = readl(pd->bar + SVT_EP_INDEX);
	if (magic != SVT_EP_MAGIC || version != SVT_EP_IFACE_VERSION) {
		dev_err(&pdev->dev, "not an svadiff-sva endpoint of interface %d (id 0x%x, version %u)\n",
			SVT_EP_IFACE_VERSION, magic, version);
		ret = -ENODEV;
		goto err_unmap;
	}
	/* the machine has a fixed number of endpoints; the program uses the first `devices` */
	if (index >= svt_param_devices) {
		ret = -ENODEV;
		goto err_unmap;
	}
	pd->nslots = min_t(u32, readl(pd->bar + SVT_EP_NQUEUES), SVT_EP_MAX_QUEUES);
	if (pd->nslots < svt_param_queue_limit) {
		dev_err(&pdev->dev, "endpoint has %u queue slots, queue_limit is %d\n",
			pd->nslots, svt_param_queue_limit);
		ret = -ENODEV;
		goto err_unmap;
	}
	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
	if (ret)
		goto err_unmap;
	pci_set_master(pdev);
	ret = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI);
	if (ret < 0)
		goto err_unmap;
	ret = request_threaded_irq(pci_irq_vector(pdev, 0), NULL, svt_pci_irq, IRQF_ONESHOT,
				   SVT_DRIVER_NAME, pd);
	if (ret)
		goto err_vectors;
	pd->irq = pci_irq_vector(pdev, 0);
	writel(svt_param_engine_interval_us, pd->bar + SVT_EP_POLL_US);

	dev = svt_dev_register(&pdev->dev, index, UACCE_DEV_SVA);
	if (IS_ERR(dev)) {
		ret = PTR_ERR(dev);
		svt_pci_release(pdev, pd);
		return ret;
	}
	mutex_lock(&svt_lock);
	pd->dev = dev;
	dev->pci = pd;
	svt_pci_bound++;
	mutex_unlock(&svt_lock);
	pci_set_drvdata(pdev, pd);
	return 0;

err_vectors:
	pci_free_irq_vectors(pdev);
err_unmap:
	pci_iounmap(pdev, pd->bar);
err_region:
	pci_release_region(pdev, 0);
err_disable:
	pci_disable_device(pdev);
err_free:
	kfree(pd);
	return ret;
}

static void svt_pci_remove(struct pci_dev *pdev)
{
	struct svt_pci_dev *pd = pci_get_drvdata(pdev);
	struct svt_dev *dev = pd->dev;
	unsigned int slot;

	/* stops and puts every queue: each releases its slot */
	svt_dev_remove(&pdev->dev, dev);
	mutex_lock(&svt_lock);
	for (slot = 0; slot < pd->nslots; slot++) {
		struct svt_queue *svq = pd->slots[slot];

		if (svq)	/* a queue uacce failed to put (logged above): quiesce it anyway */
			svt_pci_queue_put(svq);
	}
	dev->pci = NULL;
	mutex_unlock(&svt_lock);
	svt_pci_release(pdev, pd);
}

static const struct pci_device_id svt_pci_ids[] = {
	{ PCI_DEVICE(SVT_EP_VENDOR_ID, SVT_EP_DEVICE_ID) },
	{ }
};
MODULE_DEVICE_TABLE(pci, svt_pci_ids);

static struct pci_driver svt_pci_driver = {
	.name = SVT_DRIVER_NAME,
	.id_table = svt_pci_ids,
	.probe = svt_pci_probe,
	.remove = svt_pci_remove,
};

static int svt_pci_init(void)
{
	int ret, bound;

	svt_pci_bound = 0;
	ret = pci_register_driver(&svt_pci_driver);
	if (ret)
		return ret;
	/* probing is synchronous: every endpoint present is bound (or refused) by now */
	mutex_lock(&svt_lock);
	bound = svt_pci_bound;
	mutex_unlock(&svt_lock);
	if (bound < svt_param_devices) {
		pr_err("sva=1 needs %d svadiff-sva endpoint(s) (the SVA machine); %d bound\n",
		       svt_param_devices, bound);
		pci_unregister_driver(&svt_pci_driver);
		return -ENODEV;
	}
	return 0;
}

static void svt_pci_exit(void)
{
	pci_unregister_driver(&svt_pci_driver);
}

const struct svt_backend svt_pci_backend = {
	.name = "pci",
	.init = svt_pci_init,
	.exit = svt_pci_exit,
	.queue_init = svt_pci_queue_init,
	.queue_start = svt_pci_queue_start,
	.queue_stop = svt_pci_queue_stop,
	.queue_put = svt_pci_queue_put,
	.consumed = svt_pci_consumed,
	.sync_faults = svt_pci_sync_faults,
};
