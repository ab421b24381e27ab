/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * svadiff-sva: the PCIe test accelerator of svadiff's SVA machine (not upstream QEMU).
 *
 * An endpoint with ATS, PASID (20 bits) and PRI that executes the work items of svadiff's
 * test device (svt_abi.h: WRITE64/READ64 at a user virtual address) in the address space
 * its driver bound to a queue, the way an SVA accelerator does it:
 *  - the queue's register page and submission ring are ordinary driver memory that the
 *    endpoint reads and writes by DMA (requests without PASID, translated by the IOMMU's
 *    DMA domain); it polls DOORBELL there while the queue runs;
 *  - every access to user memory is an ATS translation request tagged with the queue's
 *    PASID, then an access to the translated address; a translation without the access
 *    needed becomes a page request (PRI), and the access is retried after a successful
 *    page response. A work item that still cannot be done (no translation, the page
 *    request refused, denied or unanswered) completes with STATUS = FAULT, RESULT = the
 *    address, and an entry in the device's fault log (the driver prints it); only a full
 *    page request queue makes it wait.
 *
 * The register layout is guest/include/svt_endpoint.h (copied next to this file by the
 * build), the work item format guest/include/svt_abi.h. The device keeps no translation
 * cache (every access translates), so it needs no device-IOTLB invalidations.
 */
#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/timer.h"
#include "qemu/bswap.h"
#include "qemu/bitops.h"
#include "qemu/module.h"
#include "qapi/error.h"
#include "hw/pci/pci_device.h"
#include "hw/pci/pcie.h"
#include "hw/pci/msi.h"
#include "hw/qdev-properties.h"
#include "migration/vmstate.h"
#include "system/memory.h"
#include "qom/object.h"

#include "svt_abi.h"
#include "svt_endpoint.h"

#define TYPE_SVADIFF_SVA "svadiff-sva"
OBJECT_DECLARE_SIMPLE_TYPE(SvtEpState, SVADIFF_SVA)

/* extended capabilities: ATS, PASID, PRI */
#define SVT_EP_ATS_OFFSET	0x100
#define SVT_EP_PASID_OFFSET	(SVT_EP_ATS_OFFSET + PCI_EXT_CAP_ATS_SIZEOF)
#define SVT_EP_PRI_OFFSET	(SVT_EP_PASID_OFFSET + PCI_EXT_CAP_PASID_SIZEOF)
#define SVT_EP_PRI_MAX_REQ	SVT_EP_MAX_QUEUES

#define SVT_EP_BATCH		64	/* work items per queue per poll */
#define SVT_EP_PR_TIMEOUT_NS	NANOSECONDS_PER_SECOND
#define SVT_EP_PR_MAX		4	/* page requests per work item */
#define SVT_EP_PAGE		4096u

enum SvtPrState { PR_NONE, PR_WAITING, PR_ANSWERED };

typedef struct SvtEpQueue {
    bool run;               /* CTRL.RUN */
    bool dma_error;
    uint32_t pasid;
    uint32_t consumed;
    uint32_t faults;
    uint64_t regs;          /* DMA address of the register page */
    uint64_t ring;          /* DMA address of the ring page */
    /* the page request of the work item at `consumed` */
    enum SvtPrState pr;
    uint8_t pr_gen;         /* PRGI = slot | gen << 6: stale responses are ignored */
    uint8_t pr_count;
    IOMMUPRIResponseCode pr_code;
    int64_t pr_deadline;
} SvtEpQueue;

typedef struct SvtEpFault {
    uint32_t info;
    uint32_t pasid;
    uint64_t addr;
} SvtEpFault;

struct SvtEpState {
    PCIDevice pdev;
    MemoryRegion bar;
    QEMUTimer poll;
    IOMMUPRINotifier pri_notifier;

    uint32_t index;         /* property */
    uint32_t nqueues;       /* property */
    uint32_t irq_status;
    uint32_t poll_us;
    SvtEpQueue q[SVT_EP_MAX_QUEUES];
    SvtEpFault flog[SVT_EP_FLOG_DEPTH];
    unsigned flog_head, flog_count;
    bool flog_lost;
    uint32_t stat_ats, stat_pri, stat_items;
};

/* ---- interrupts and the fault log ------------------------------------------------------ */

static void svt_ep_update_irq(SvtEpState *s, uint32_t raise)
{
    PCIDevice *pdev = &s->pdev;

    s->irq_status |= raise;
    if (msi_enabled(pdev)) {
        if (raise) {
            msi_notify(pdev, 0);
        }
    } else {
        pci_set_irq(pdev, s->irq_status != 0);
    }
}

static void svt_ep_log_fault(SvtEpState *s, unsigned slot, unsigned reason,
                             uint64_t addr)
{
    SvtEpFault *f;

    if (s->flog_count == SVT_EP_FLOG_DEPTH) {
        s->flog_lost = true;
        return;
    }
    f = &s->flog[(s->flog_head + s->flog_count++) % SVT_EP_FLOG_DEPTH];
    f->info = slot | reason << 8;
    f->pasid = s->q[slot].pasid;
    f->addr = addr;
}

/* ---- PASID-tagged access to user memory ------------------------------------------------- */

/* ATS translation request for one page; true if it grants the access. */
static bool svt_ep_translate(SvtEpState *s, SvtEpQueue *q, uint64_t page, bool write,
                             hwaddr *pa, AddressSpace **as)
{
    IOMMUTLBEntry e;
    uint32_t errs = 0;
    IOMMUAccessFlags need = write ? IOMMU_RW : IOMMU_RO;
    ssize_t n;

    s->stat_ats++;
    n = pci_ats_request_translation(&s->pdev, q->pasid, false, false, page,
                                    SVT_EP_PAGE, !write, &e, 1, &errs);
    if (n != 1 || (e.perm & need) != need || !e.target_as) {
        return false;
    }
    *pa = e.translated_addr | (page & e.addr_mask);
    *as = e.target_as;
    return true;
}

typedef enum { ACC_DONE, ACC_FAULT, ACC_WAIT } SvtAccess;

/*
 * Read or write the u64 at addr in the queue's PASID address space, all or nothing: every
 * page it touches is translated before anything is accessed. On ACC_FAULT, *reason and
 * *fault_addr say why and where; ACC_WAIT: a page request is outstanding (or cannot be
 * sent yet), try again later.
 */
static SvtAccess svt_ep_access(SvtEpState *s, unsigned slot, uint64_t addr, uint64_t *val,
                               bool write, unsigned *reason, uint64_t *fault_addr)
{
    SvtEpQueue *q = &s->q[slot];
    unsigned off = addr & (SVT_EP_PAGE - 1);
    unsigned n0 = MIN(8u, SVT_EP_PAGE - off);
    unsigned npages = n0 < 8 ? 2 : 1;
    uint64_t first = addr - off;
    hwaddr pa[2];
    AddressSpace *as[2];
    uint8_t buf[8];
    unsigned i;
    int rc;

    if (addr > UINT64_MAX - 8) {
        *reason = SVT_EP_FAULT_TRANSLATION;
        *fault_addr = addr;
        return ACC_FAULT;
    }
    for (i = 0; i < npages; i++) {
        uint64_t page = first + i * SVT_EP_PAGE;
        uint16_t prgi;

        if (svt_ep_translate(s, q, page, write, &pa[i], &as[i])) {
            continue;
        }
        *fault_addr = i ? page : addr;
        if (q->pr == PR_ANSWERED) {
            /* the page request for this item was answered, and still no access */
            *reason = q->pr_code == IOMMU_PRI_RESP_SUCCESS ?
                      SVT_EP_FAULT_NO_ACCESS : SVT_EP_FAULT_PR_DENIED;
            if (q->pr_code == IOMMU_PRI_RESP_SUCCESS &&
                q->pr_count < SVT_EP_PR_MAX) {
                goto request; /* another page of the item, or evicted again */
            }
            return ACC_FAULT;
        }
        if (!pcie_pri_enabled(&s->pdev)) {
            *reason = SVT_EP_FAULT_TRANSLATION;
            return ACC_FAULT;
        }
request:
        prgi = slot | (q->pr_gen & 7) << 6;
        rc = pci_pri_request_page(&s->pdev, q->pasid, false, false, page, true, prgi,
                                  true, write);
        if (rc == -ENOSPC) {
            /* the page request queue is full (or overflowed): retry on a later poll */
            q->pr = PR_NONE;
            return ACC_WAIT;
        }
        if (rc != 0) {
            /*
             * Refused for good: the PASID has no table entry (torn down when the bound
             * address space went, intel_mm_release), page requests are off in the context
             * entry, or the page request queue cannot be written. Waiting would leave the
             * item pending for ever: it faults.
             */
            *reason = SVT_EP_FAULT_PR_REFUSED;
            return ACC_FAULT;
        }
        s->stat_pri++;
        q->pr = PR_WAITING;
        q->pr_count++;
        q->pr_deadline = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) + SVT_EP_PR_TIMEOUT_NS;
        return ACC_WAIT;
    }
    if (write) {
        stq_le_p(buf, *val);
    }
    for (i = 0; i < npages; i++) {
        unsigned at = i ? n0 : 0;
        unsigned len = i ? 8 - n0 : n0;
        hwaddr where = i ? pa[1] : pa[0] + off;

        if (address_space_rw(as[i], where, MEMTXATTRS_UNSPECIFIED, buf + at, len,
                             write) != MEMTX_OK) {
            *reason = SVT_EP_FAULT_MEMORY;
            *fault_addr = i ? first + SVT_EP_PAGE : addr;
            return ACC_FAULT;
        }
    }
    if (!write) {
        *val = ldq_le_p(buf);
    }
    return ACC_DONE;
}

/* ---- queues ------------------------------------------------------------------------------ */

static void svt_ep_end_page_request(SvtEpQueue *q)
{
    q->pr = PR_NONE;
    q->pr_count = 0;
    q->pr_gen++;
}

static bool svt_ep_pasid_in_use(SvtEpState *s, uint32_t pasid)
{
    unsigned i;

    for (i = 0; i < s->nqueues; i++) {
        if (s->q[i].run && s->q[i].pasid == pasid) {
            return true;
        }
    }
    return false;
}

static void svt_ep_stop_queue(SvtEpState *s, unsigned slot)
{
    SvtEpQueue *q = &s->q[slot];

    if (!q->run) {
        return;
    }
    /* an item waiting for a page response is left unexecuted; the response is ignored */
    svt_ep_end_page_request(q);
    q->run = false;
    if (!svt_ep_pasid_in_use(s, q->pasid)) {
        pci_pri_unregister_notifier(&s->pdev, q->pasid);
    }
}

static bool svt_ep_dma(SvtEpState *s, SvtEpQueue *q, uint64_t addr, void *buf,
                       unsigned len, bool write)
{
    if (pci_dma_rw(&s->pdev, addr, buf, len,
                   write ? DMA_DIRECTION_FROM_DEVICE : DMA_DIRECTION_TO_DEVICE,
                   MEMTXATTRS_UNSPECIFIED) != MEMTX_OK) {
        q->dma_error = true;
        return false;
    }
    return true;
}

/*
 * Execute the work item at `consumed` if the doorbell is ahead of it.
 * Returns true if it completed (the caller may go on with the next one).
 */
static bool svt_ep_run_one(SvtEpState *s, unsigned slot, uint32_t *irq)
{
    SvtEpQueue *q = &s->q[slot];
    uint8_t desc[SVT_DESC_SIZE];
    uint64_t ring_slot = q->ring + (q->consumed % SVT_RING_SLOTS) * SVT_DESC_SIZE;
    uint32_t doorbell, opcode, status, le32;
    uint64_t addr, value, result = 0, fault_addr = 0, le64;
    unsigned reason = 0;

    if (!svt_ep_dma(s, q, q->regs + SVT_REG_DOORBELL, &le32, 4, false)) {
        return false;
    }
    doorbell = le32_to_cpu(le32);
    if (doorbell == q->consumed) {
        return false;
    }
    if (q->pr == PR_WAITING) {
        if (qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) < q->pr_deadline) {
            return false;
        }
        q->pr = PR_ANSWERED;
        q->pr_code = IOMMU_PRI_RESP_FAILURE;
        q->pr_count = SVT_EP_PR_MAX;
        reason = SVT_EP_FAULT_PR_TIMEOUT;
    }
    if (!svt_ep_dma(s, q, ring_slot, desc, sizeof(desc), false)) {
        return false;
    }
    opcode = ldl_le_p(desc + SVT_DESC_OPCODE);
    addr = ldq_le_p(desc + SVT_DESC_ADDR);
    value = ldq_le_p(desc + SVT_DESC_VALUE);

    if (opcode == SVT_OP_WRITE64 || opcode == SVT_OP_READ64) {
        bool write = opcode == SVT_OP_WRITE64;
        uint64_t v = value;
        SvtAccess a;

        if (reason == SVT_EP_FAULT_PR_TIMEOUT) {
            a = ACC_FAULT;
            fault_addr = addr;
        } else {
            a = svt_ep_access(s, slot, addr, &v, write, &reason, &fault_addr);
        }
        if (a == ACC_WAIT) {
            return false;
        }
        if (a == ACC_FAULT) {
            status = SVT_STATUS_FAULT;
            result = fault_addr;
        } else {
            status = SVT_STATUS_OK;
            result = write ? 0 : v;
        }
    } else {
        status = SVT_STATUS_BADOP;
    }
    svt_ep_end_page_request(q);

    /* RESULT (a read's value, a fault's address) before STATUS, STATUS before CQ_HEAD */
    if (status == SVT_STATUS_FAULT || (status == SVT_STATUS_OK && opcode == SVT_OP_READ64)) {
        le64 = cpu_to_le64(result);
        if (!svt_ep_dma(s, q, ring_slot + SVT_DESC_RESULT, &le64, 8, true)) {
            return false;
        }
    }
    le32 = cpu_to_le32(status);
    if (!svt_ep_dma(s, q, ring_slot + SVT_DESC_STATUS, &le32, 4, true)) {
        return false;
    }
    if (status == SVT_STATUS_FAULT) {
        q->faults++;
        le32 = cpu_to_le32(q->faults);
        svt_ep_dma(s, q, q->regs + SVT_REG_FAULTS, &le32, 4, true);
        svt_ep_log_fault(s, slot, reason, fault_addr);
        *irq |= SVT_EP_IRQ_FAULT;
    }
    q->consumed++;
    s->stat_items++;
    smp_wmb();
    le32 = cpu_to_le32(q->consumed);
    svt_ep_dma(s, q, q->regs + SVT_REG_CQ_HEAD, &le32, 4, true);
    *irq |= SVT_EP_IRQ_COMPLETION;
    return !q->dma_error;
}

static void svt_ep_poll(void *opaque)
{
    SvtEpState *s = opaque;
    uint32_t irq = 0;
    bool any = false;
    unsigned slot, k;

    for (slot = 0; slot < s->nqueues; slot++) {
        SvtEpQueue *q = &s->q[slot];

        if (!q->run || q->dma_error) {
            continue;
        }
        any = true;
        for (k = 0; k < SVT_EP_BATCH && svt_ep_run_one(s, slot, &irq); k++) {
        }
        if (q->dma_error) {
            qemu_log_mask(LOG_GUEST_ERROR, "svadiff-sva: queue %u: register page or ring "
                          "not accessible, queue stopped\n", slot);
        }
    }
    if (irq) {
        svt_ep_update_irq(s, irq);
    }
    if (any) {
        timer_mod(&s->poll, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) +
                  (int64_t)s->poll_us * SCALE_US);
    }
}

/* Page group response from the IOMMU (called while it processes its invalidation queue). */
static void svt_ep_page_response(IOMMUPRINotifier *n, IOMMUPRIResponse *r)
{
    SvtEpState *s = container_of(n, SvtEpState, pri_notifier);
    unsigned slot = r->prgi & 63;
    SvtEpQueue *q;

    if (slot >= s->nqueues) {
        return;
    }
    q = &s->q[slot];
    if (!q->run || q->pr != PR_WAITING || (q->pr_gen & 7) != (r->prgi >> 6)) {
        return; /* stale: the item was abandoned by a stop */
    }
    q->pr = PR_ANSWERED;
    q->pr_code = r->response_code;
    timer_mod(&s->poll, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL));
}

/* ---- registers ---------------------------------------------------------------------------- */

static uint64_t svt_ep_queue_read(SvtEpState *s, unsigned slot, unsigned reg)
{
    SvtEpQueue *q = &s->q[slot];

    switch (reg) {
    case SVT_EP_Q_CTRL:
        return q->run ? SVT_EP_QC_RUN : 0;
    case SVT_EP_Q_STATUS:
        return (q->run && !q->dma_error ? SVT_EP_QS_RUNNING : 0) |
               (q->pr == PR_WAITING ? SVT_EP_QS_PAGE_REQUEST : 0) |
               (q->dma_error ? SVT_EP_QS_DMA_ERROR : 0);
    case SVT_EP_Q_PASID:
        return q->pasid;
    case SVT_EP_Q_CONSUMED:
        return q->consumed;
    case SVT_EP_Q_FAULTS:
        return q->faults;
    case SVT_EP_Q_REGS_LO:
        return (uint32_t)q->regs;
    case SVT_EP_Q_REGS_HI:
        return q->regs >> 32;
    case SVT_EP_Q_RING_LO:
        return (uint32_t)q->ring;
    case SVT_EP_Q_RING_HI:
        return q->ring >> 32;
    }
    return 0;
}

static void svt_ep_queue_write(SvtEpState *s, unsigned slot, unsigned reg, uint32_t v)
{
    SvtEpQueue *q = &s->q[slot];

    if (reg == SVT_EP_Q_CTRL) {
        if ((v & SVT_EP_QC_RUN) && !q->run) {
            q->run = true;
            q->dma_error = false;
            svt_ep_end_page_request(q);
            /* fails (and page requests then fault) while PASID is not enabled */
            pci_pri_register_notifier(&s->pdev, q->pasid, &s->pri_notifier);
            timer_mod(&s->poll, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL));
        } else if (!(v & SVT_EP_QC_RUN)) {
            svt_ep_stop_queue(s, slot);
        }
        return;
    }
    if (q->run) {
        qemu_log_mask(LOG_GUEST_ERROR, "svadiff-sva: queue %u: register 0x%x written "
                      "while running\n", slot, reg);
        return;
    }
    switch (reg) {
    case SVT_EP_Q_PASID:
        q->pasid = v & ((1u << SVT_EP_PASID_BITS) - 1);
        break;
    case SVT_EP_Q_CONSUMED:
        q->consumed = v;
        break;
    case SVT_EP_Q_FAULTS:
        q->faults = v;
        break;
    case SVT_EP_Q_REGS_LO:
        q->regs = deposit64(q->regs, 0, 32, v);
        break;
    case SVT_EP_Q_REGS_HI:
        q->regs = deposit64(q->regs, 32, 32, v);
        break;
    case SVT_EP_Q_RING_LO:
        q->ring = deposit64(q->ring, 0, 32, v);
        break;
    case SVT_EP_Q_RING_HI:
        q->ring = deposit64(q->ring, 32, 32, v);
        break;
    }
}

static uint64_t svt_ep_read(void *opaque, hwaddr addr, unsigned size)
{
    SvtEpState *s = opaque;
    SvtEpFault *f = &s->flog[s->flog_head];

    if (addr >= SVT_EP_Q(0)) {
        unsigned slot = (addr - SVT_EP_Q(0)) / 0x40;

        return slot < s->nqueues ? svt_ep_queue_read(s, slot, (addr - SVT_EP_Q(0)) % 0x40) : 0;
    }
    switch (addr) {
    case SVT_EP_ID:
        return SVT_EP_MAGIC;
    case SVT_EP_VERSION:
        return SVT_EP_IFACE_VERSION;
    case SVT_EP_INDEX:
        return s->index;
    case SVT_EP_NQUEUES:
        return s->nqueues;
    case SVT_EP_IRQ_STATUS:
        return s->irq_status;
    case SVT_EP_POLL_US:
        return s->poll_us;
    case SVT_EP_FLOG_COUNT:
        return s->flog_count | (s->flog_lost ? SVT_EP_FLOG_LOST : 0);
    case SVT_EP_FLOG_INFO:
        return s->flog_count ? f->info : 0;
    case SVT_EP_FLOG_ADDR_LO:
        return s->flog_count ? (uint32_t)f->addr : 0;
    case SVT_EP_FLOG_ADDR_HI:
        return s->flog_count ? f->addr >> 32 : 0;
    case SVT_EP_FLOG_PASID:
        return s->flog_count ? f->pasid : 0;
    case SVT_EP_STAT_ATS:
        return s->stat_ats;
    case SVT_EP_STAT_PRI:
        return s->stat_pri;
    case SVT_EP_STAT_ITEMS:
        return s->stat_items;
    }
    return 0;
}

static void svt_ep_write(void *opaque, hwaddr addr, uint64_t val, unsigned size)
{
    SvtEpState *s = opaque;

    if (addr >= SVT_EP_Q(0)) {
        unsigned slot = (addr - SVT_EP_Q(0)) / 0x40;

        if (slot < s->nqueues) {
            svt_ep_queue_write(s, slot, (addr - SVT_EP_Q(0)) % 0x40, val);
        }
        return;
    }
    switch (addr) {
    case SVT_EP_IRQ_STATUS:
        s->irq_status &= ~(uint32_t)val;
        svt_ep_update_irq(s, 0);
        break;
    case SVT_EP_POLL_US:
        s->poll_us = MIN(MAX((uint32_t)val, 10u), 100000u);
        break;
    case SVT_EP_FLOG_POP:
        if (s->flog_count) {
            s->flog_head = (s->flog_head + 1) % SVT_EP_FLOG_DEPTH;
            s->flog_count--;
        }
        if (!s->flog_count) {
            s->flog_lost = false;
        }
        break;
    }
}

static const MemoryRegionOps svt_ep_ops = {
    .read = svt_ep_read,
    .write = svt_ep_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 4, .max_access_size = 4 },
    .impl = { .min_access_size = 4, .max_access_size = 4 },
};

/* ---- device ------------------------------------------------------------------------------- */

static void svt_ep_reset(DeviceState *dev)
{
    SvtEpState *s = SVADIFF_SVA(dev);
    unsigned i;

    for (i = 0; i < s->nqueues; i++) {
        svt_ep_stop_queue(s, i);
        memset(&s->q[i], 0, sizeof(s->q[i]));
    }
    timer_del(&s->poll);
    s->irq_status = 0;
    s->poll_us = 1000;
    s->flog_head = s->flog_count = 0;
    s->flog_lost = false;
}

static void svt_ep_realize(PCIDevice *pdev, Error **errp)
{
    SvtEpState *s = SVADIFF_SVA(pdev);

    if (!pci_bus_is_express(pci_get_bus(pdev))) {
        error_setg(errp, "svadiff-sva must sit on a PCI Express bus (behind a pcie-root-port)");
        return;
    }
    if (s->nqueues < 1 || s->nqueues > SVT_EP_MAX_QUEUES) {
        error_setg(errp, "svadiff-sva: queues must be 1 to %d", SVT_EP_MAX_QUEUES);
        return;
    }
    pci_config_set_interrupt_pin(pdev->config, 1);
    if (pcie_endpoint_cap_init(pdev, 0) < 0) {
        error_setg(errp, "svadiff-sva: no room for the PCIe capability");
        return;
    }
    if (msi_init(pdev, 0, 1, true, false, errp)) {
        return;
    }
    pcie_ats_init(pdev, SVT_EP_ATS_OFFSET, true);
    pcie_pasid_init(pdev, SVT_EP_PASID_OFFSET, SVT_EP_PASID_BITS, false, false);
    pcie_pri_init(pdev, SVT_EP_PRI_OFFSET, SVT_EP_PRI_MAX_REQ, true);

    s->pri_notifier.notify = svt_ep_page_response;
    timer_init_ns(&s->poll, QEMU_CLOCK_VIRTUAL, svt_ep_poll, s);
    memory_region_init_io(&s->bar, OBJECT(s), &svt_ep_ops, s, "svadiff-sva-regs",
                          SVT_EP_BAR_SIZE);
    pci_register_bar(pdev, 0, PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_TYPE_64, &s->bar);
    s->poll_us = 1000;
}

static void svt_ep_exit(PCIDevice *pdev)
{
    SvtEpState *s = SVADIFF_SVA(pdev);
    unsigned i;

    for (i = 0; i < s->nqueues; i++) {
        svt_ep_stop_queue(s, i);
    }
    timer_del(&s->poll);
    msi_uninit(pdev);
}

static const Property svt_ep_properties[] = {
    DEFINE_PROP_UINT32("index", SvtEpState, index, 0),
    DEFINE_PROP_UINT32("queues", SvtEpState, nqueues, SVT_EP_MAX_QUEUES),
};

static const VMStateDescription svt_ep_vmstate = {
    .name = TYPE_SVADIFF_SVA,
    .unmigratable = 1,
};

static void svt_ep_class_init(ObjectClass *klass, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = svt_ep_realize;
    k->exit = svt_ep_exit;
    k->vendor_id = SVT_EP_VENDOR_ID;
    k->device_id = SVT_EP_DEVICE_ID;
    k->revision = SVT_EP_IFACE_VERSION;
    k->class_id = SVT_EP_CLASS;
    dc->desc = "svadiff test accelerator (ATS, PASID, PRI)";
    dc->vmsd = &svt_ep_vmstate;
    device_class_set_legacy_reset(dc, svt_ep_reset);
    device_class_set_props(dc, svt_ep_properties);
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo svt_ep_info = {
    .name = TYPE_SVADIFF_SVA,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(SvtEpState),
    .class_init = svt_ep_class_init,
    .interfaces = (const InterfaceInfo[]) {
        { INTERFACE_PCIE_DEVICE },
        { }
    },
};

static void svt_ep_register_types(void)
{
    type_register_static(&svt_ep_info);
}

type_init(svt_ep_register_types)
