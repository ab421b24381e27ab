/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The runtime shared by the svadiff guest agent and its C reproducers, part 2 of 2: the
 * functions (sections and how they are selected: svt_types.h).
 */

#if SVT_AGENT || SVT_MAPPED
/* mmap, mremap: 0 or -1, and where the mapping went (it must be its slot) */
static long long mapped(struct res *r, void *got, uint64_t want)
{
	r->want = want;
	if (got == MAP_FAILED)
		return -1;
	r->addr = (uintptr_t)got;
	return 0;
}
#endif

#if SVT_AGENT || SVT_WRITE_FILE || SVT_READ_FILE || SVT_PCI_BIND || SVT_PCI_UNBIND
/* one write(2) of out, or read(2) into in, on a file opened for it (sysfs, bind/unbind) */
static long long file_io(const char *path, const char *out, char *in, size_t len)
{
	int fd = open(path, (out ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
	ssize_t n;
	int e;

	if (fd < 0)
		return -1;
	n = out ? write(fd, out, len) : read(fd, in, len);
	e = errno;
	close(fd);
	errno = e;
	return n;
}
#endif

#if SVT_AGENT || SVT_WRITE_FILE || SVT_PCI_BIND || SVT_PCI_UNBIND
static long long write_file(const char *path, const char *s)
{
	return file_io(path, s, NULL, strlen(s));
}
#endif

#if SVT_AGENT || SVT_READ_FILE
/* one read(2) of at most DATA_MAX bytes, as the agent reads sysfs files */
static long long read_file(struct res *r, const char *path)
{
	long long n = file_io(path, NULL, r->data, DATA_MAX);

	if (n > 0)
		r->len = (unsigned int)n;
	return n;
}
#endif

#if SVT_AGENT || SVT_SUBMIT
#include <time.h>
/*
 * One work item through a queue's mappings, as the agent does it: read the tail from the
 * doorbell, write the descriptor at ring slot tail % SVT_RING_SLOTS (its status PENDING: a
 * status left from the ring's last lap must not read as this item's), ring the doorbell with
 * tail + 1, wait until the completion count passes it, then with ack write the count to ACK.
 * 0 if it completed, else -1 with ETIMEDOUT; data: how it ended. The wait is counted in looks
 * (SUBMIT_WAIT_US / SUBMIT_POLL_US of them, each after a SUBMIT_POLL_US sleep that lets the
 * engine thread run), not in time alone: on an overloaded TCG host the guest may not run for
 * most of 200 ms, and a work item then "timed out" that the engine never had a turn to do (seen
 * 1 in 5 replays at host load 20). SUBMIT_WAIT_MAX_US bounds it within the host's deadline.
 */
static long long submit(struct res *r, uint64_t mmio_at, uint64_t dus_at, uint32_t opcode, uint64_t addr,
			uint64_t value, int ack)
{
	volatile uint32_t *mmio = (volatile uint32_t *)(uintptr_t)mmio_at;
	volatile uint8_t *desc;
	struct timespec t0, t1;
	uint32_t tail, status;
	int done = 0;
	long polls = 0;

	tail = mmio[SVT_REG_DOORBELL / 4];
	desc = (volatile uint8_t *)(uintptr_t)dus_at + (tail % SVT_RING_SLOTS) * SVT_DESC_SIZE;
	*(volatile uint32_t *)(desc + SVT_DESC_OPCODE) = opcode;
	*(volatile uint32_t *)(desc + SVT_DESC_STATUS) = SVT_STATUS_PENDING;
	*(volatile uint64_t *)(desc + SVT_DESC_ADDR) = addr;
	*(volatile uint64_t *)(desc + SVT_DESC_VALUE) = value;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);	/* descriptor before doorbell */
	mmio[SVT_REG_DOORBELL / 4] = tail + 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if ((int32_t)(mmio[SVT_REG_CQ_HEAD / 4] - (tail + 1)) >= 0) {
			done = 1;
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (polls >= SUBMIT_WAIT_US / SUBMIT_POLL_US ||
		    (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000 >= SUBMIT_WAIT_MAX_US)
			break;
		usleep(SUBMIT_POLL_US);
		polls++;
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);	/* completion before the descriptor's status */
	if (done && ack)
		mmio[SVT_REG_ACK / 4] = mmio[SVT_REG_CQ_HEAD / 4];
	status = *(volatile uint32_t *)(desc + SVT_DESC_STATUS);
	if (status == SVT_STATUS_OK && opcode == SVT_OP_READ64)
		DATAF(r, "done 0x%llx", (unsigned long long)*(volatile uint64_t *)(desc + SVT_DESC_RESULT));
	else if (status == SVT_STATUS_OK)
		DATAF(r, "done");
	else if (status == SVT_STATUS_FAULT)
		DATAF(r, "fault");
	else if (status == SVT_STATUS_BADOP)
		DATAF(r, "badop");
	else
		DATAF(r, "status %u", status);
	if (done)
		return 0;
	errno = ETIMEDOUT;
	return -1;
}
#endif

#if SVT_AGENT || SVT_FORK_TASK
#include <sched.h>
#include <sys/syscall.h>
/*
 * fork(2), except that the new task's parent is the controller (CLONE_PARENT), which can then
 * wait for it like for every task; the svadiff agent creates its tasks the same way.
 */
static pid_t fork_task(void)
{
	return (pid_t)syscall(SYS_clone, (unsigned long)(CLONE_PARENT | SIGCHLD), 0UL, 0UL, 0UL, 0UL);
}
#endif

#if SVT_AGENT || SVT_PASID_SEEN
/*
 * A PASID as a program can check it (which number the IOMMU picks is its business; that the
 * queues of one address space share one is uacce's): "none" for 0, "p<k>" for the k-th distinct
 * PASID this process has seen ("p0", "p1", ...) (a fork child inherits the list: fork copies
 * it), "bad 0x..." above the 20 bits PCIe allows.
 */
static uint32_t pasids[64];
static int n_pasids;

static void pasid_seen(struct res *r, uint32_t pasid)
{
	int k;

	if (pasid == 0) {
		DATAF(r, "none");
		return;
	}
	if (pasid > 0xfffff) {
		DATAF(r, "bad 0x%x", pasid);
		return;
	}
	for (k = 0; k < n_pasids && pasids[k] != pasid; k++)
		;
	if (k == n_pasids && n_pasids < (int)(sizeof(pasids) / sizeof(pasids[0])))
		pasids[n_pasids++] = pasid;
	DATAF(r, "p%d", k);
}
#endif

#if SVT_AGENT || SVT_DEV_NAME
/*
 * The parent of test device dev, as its driver's bind and unbind files want it: the platform
 * device svadiff_test.N, or with SVA_DEVICE (device.sva: the PCI backend) the svadiff-sva
 * endpoint N, behind root port N + 1 (svt_abi.h SVT_PCI_ADDR_FMT).
 */
static const char *dev_name(int dev)
{
	static char name[32];

	if (SVA_DEVICE)
		snprintf(name, sizeof(name), SVT_PCI_ADDR_FMT, dev + 1);
	else
		snprintf(name, sizeof(name), SVT_DRIVER_NAME ".%d", dev);
	return name;
}

/* a file of the test driver's sysfs directory (bind, unbind), on the bus of its devices */
static const char *driver_file(const char *file)
{
	static char path[PATH_LEN];

	snprintf(path, sizeof(path), "%s/%s", SVA_DEVICE ? PCI_DRIVER_DIR : DRIVER_DIR, file);
	return path;
}
#endif

#if SVT_AGENT || SVT_NODE_PATH || SVT_MKNOD_PATH || SVT_SYSFS_PATH || SVT_GENERAL || SVT_COMPACT
#include <dirent.h>
static char node[DEVICES][128];	/* each device's uacce class entry: the current or last seen */
#if SVT_AGENT || SVT_MKNOD_PATH
#include <sys/stat.h>
#include <sys/sysmacros.h>
static dev_t devt[DEVICES];		/* and its major:minor */
static int have_devt[DEVICES];
static int mknod_done[DEVICES];	/* /tmp/svt<dev>.node was made */
#endif

/*
 * Device dev's class entry, svt<dev>-<id> (the first by name if ever two: only a broken kernel
 * has two): 1 if it is there now. A removed device keeps the last name seen, a device never
 * seen is svt<dev>-none (ENOENT).
 */
static int scan_node(int dev)
{
	char prefix[32], best[128] = "";
	struct dirent *ent;
	size_t pl;
	DIR *d;

	snprintf(prefix, sizeof(prefix), SVT_UACCE_NAME_FMT "-", dev);
	pl = strlen(prefix);
	d = opendir(UACCE_CLASS);
	while (d && (ent = readdir(d)) != NULL) {
		if (strncmp(ent->d_name, prefix, pl) == 0 && strlen(ent->d_name) < sizeof(best) &&
		    (!best[0] || strcmp(ent->d_name, best) < 0))
			strcpy(best, ent->d_name);
	}
	if (d)
		closedir(d);
	if (!best[0]) {
		if (!node[dev][0])
			snprintf(node[dev], sizeof(node[dev]), SVT_UACCE_NAME_FMT "-none", dev);
		return 0;
	}
	strcpy(node[dev], best);
#if SVT_AGENT || SVT_MKNOD_PATH
	{
		char p[300], v[64];
		unsigned int ma, mi;
		int fd;
		ssize_t n;

		snprintf(p, sizeof(p), UACCE_CLASS "/%s/dev", best);
		fd = open(p, O_RDONLY | O_CLOEXEC);
		n = fd >= 0 ? read(fd, v, sizeof(v) - 1) : -1;
		if (fd >= 0)
			close(fd);
		if (n > 0) {
			v[n] = '\0';
			if (sscanf(v, "%u:%u", &ma, &mi) == 2) {
				devt[dev] = makedev(ma, mi);
				have_devt[dev] = 1;
			}
		}
	}
#endif
	return 1;
}
#endif

#if SVT_AGENT || SVT_NODE_PATH
static void node_path(int dev, char *path)
{
	scan_node(dev);
	snprintf(path, PATH_LEN, "/dev/%s", node[dev]);
}
#endif

#if SVT_AGENT || SVT_MKNOD_PATH
/* a second node of the device, made once (from the current or last seen major:minor) */
static void mknod_path(int dev, char *path)
{
	scan_node(dev);
	snprintf(path, PATH_LEN, "/tmp/" SVT_UACCE_NAME_FMT ".node", dev);
	if (!mknod_done[dev] && have_devt[dev]) {
		unlink(path);
		if (mknod(path, S_IFCHR | 0600, devt[dev]) == 0)
			mknod_done[dev] = 1;
	}
}

/* the second nodes go at the end */
static void unlink_mknods(void)
{
	char p[64];
	int dev;

	for (dev = 0; dev < DEVICES; dev++) {
		if (mknod_done[dev]) {
			snprintf(p, sizeof(p), "/tmp/" SVT_UACCE_NAME_FMT ".node", dev);
			unlink(p);
			mknod_done[dev] = 0;
		}
	}
}
#endif

#if SVT_AGENT || SVT_SYSFS_PATH
static void sysfs_path(int dev, const char *attr, char *path)
{
	scan_node(dev);
	snprintf(path, PATH_LEN, UACCE_CLASS "/%s/%s", node[dev], attr);
}
#endif

#if SVT_AGENT || SVT_GENERAL || SVT_WATCH
#include <time.h>
static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
#endif

#if SVT_AGENT || SVT_GENERAL
/* CLOCK_MONOTONIC in ns: one clock for every process, so steps of different tasks compare */
static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
#endif

#if SVT_AGENT || SVT_GENERAL
/* ---- tasks: processes that run steps for a controller ---- */

/* A step's result from what its body leaves: ret, and e (errno) when it failed (EIO if unset). */
static int step_result(struct res *r, long long ret, int e)
{
	r->ret = ret;
	r->err = ret < 0 ? (e ? e : EIO) : 0;
	return 0;
}

/* SIGSEGV or SIGBUS during a step is its outcome; the task goes on */
static void on_fault(int sig)
{
	if (in_step) {
		in_step = 0;
		fault_sig = sig;
		siglongjmp(fault_env, 1);
	}
	signal(sig, SIG_DFL);	/* a fault outside a step: die of it (the controller sees the task end) */
}

/* Step c in this task, SIGSEGV and SIGBUS caught: 1 if this process is a new task now (fork). */
static int run_guarded(struct cmd *c, struct res *r)
{
	int child;

	if (sigsetjmp(fault_env, 1) != 0) {
		r->t1 = now_ns();
		r->ret = -1;
		r->err = 0;
		r->sig = fault_sig;
		return 0;
	}
	r->t0 = now_ns();
	in_step = 1;
	child = do_step(c, r);
	in_step = 0;
	r->t1 = now_ns();
	return child;
}

/* A task: run each step the controller hands over, send back its result. */
static void task_loop(void)
{
	static struct cmd c;
	static struct res r;

	for (;;) {
		ssize_t n = read(cmd_pipe[me][0], &c, sizeof(c));
		const char *p = (const char *)&r;
		size_t left = sizeof(r);

		if (n == 0)
			_exit(0);	/* the controller closed the pipes: the program is over */
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			_exit(3);
		if (n != (ssize_t)sizeof(c))
			continue;
		memset(&r, 0, sizeof(r));
		r.step = c.step;
		if (run_guarded(&c, &r))
			continue;	/* a new task: wait for its first step */
		while (left > 0) {
			ssize_t w = write(res_pipe[1], p, left);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				_exit(4);
			p += w;
			left -= (size_t)w;
		}
	}
}

/* The pipes between the controller and its tasks (every task inherits them all). */
static int open_task_pipes(void)
{
	int t;

	for (t = 0; t < N_TASKS; t++)
		if (pipe2(cmd_pipe[t], O_CLOEXEC) != 0)
			return -1;
	return pipe2(res_pipe, O_CLOEXEC);
}

/* In the controller once task 0 runs: it keeps the write ends of the commands, the read end of results. */
static void close_task_ends(void)
{
	int t;

	for (t = 0; t < N_TASKS; t++) {
		close(cmd_pipe[t][0]);
		cmd_pipe[t][0] = -1;
	}
	close(res_pipe[1]);
	res_pipe[1] = -1;
	fcntl(res_pipe[0], F_SETFL, O_NONBLOCK);
}

/* In a fresh child of the controller: become task 0 and run its steps. */
static void task_start(void)
{
	struct sigaction sa;
	int t;

	for (t = 0; t < N_TASKS; t++)
		close(cmd_pipe[t][1]);
	close(res_pipe[0]);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fault;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
#if SVT_AGENT || SVT_FDS
	for (t = 0; t < N_FDS; t++)
		fds[t] = -1;
#endif
#if SVT_AGENT || SVT_OBJS
	for (t = 0; t < N_OBJS; t++)
		objs[t] = 0;
#endif
	me = 0;
	task_loop();
	_exit(0);
}
#endif

#if SVT_AGENT || SVT_PCI_BIND || SVT_PCI_UNBIND || SVT_VFIO_GROUP_OPEN || SVT_VFIO_GET_DEVICE || SVT_VFIO_CDEV_OPEN
#include <dirent.h>
static int ep_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* a PCI device's sysfs file, its first line, or "" */
static void pci_attr(const char *dev, const char *attr, char *out, size_t len)
{
	char p[PATH_LEN];
	FILE *f;

	snprintf(p, sizeof(p), PCI_DEVICES "/%s/%s", dev, attr);
	out[0] = '\0';
	f = fopen(p, "re");
	if (f) {
		if (!fgets(out, (int)len, f))
			out[0] = '\0';
		fclose(f);
	}
	out[strcspn(out, "\n")] = '\0';
}

/*
 * The PCI address of svadiff-sva endpoint dev: the dev-th one in PCI address order (every
 * machine gives its endpoints their indexes in that order: harness/vm/machine.ts), "" if none.
 */
static const char *ep_addr(int dev)
{
	static char addr[64];
	struct dirent **ents;
	int n, i, k = 0;

	addr[0] = '\0';
	n = scandir(PCI_DEVICES, &ents, NULL, ep_cmp);
	for (i = 0; i < n; i++) {
		char v[16], d[16];

		pci_attr(ents[i]->d_name, "vendor", v, sizeof(v));
		pci_attr(ents[i]->d_name, "device", d, sizeof(d));
		if (strcmp(v, EP_PCI_VENDOR) == 0 && strcmp(d, EP_PCI_DEVICE) == 0 && k++ == dev &&
		    strlen(ents[i]->d_name) < sizeof(addr))
			strcpy(addr, ents[i]->d_name);
		free(ents[i]);
	}
	if (n >= 0)
		free(ents);
	return addr;
}
#endif

#if SVT_AGENT || SVT_PCI_BIND
/*
 * Bind endpoint dev to driver drv: driver_override names it (the only driver that may then
 * match), then the driver's bind file takes the address; the errno is the bind's.
 */
static long long pci_bind(int dev, const char *drv)
{
	char p[PATH_LEN], a[64];

	snprintf(a, sizeof(a), "%s", ep_addr(dev));
	snprintf(p, sizeof(p), PCI_DEVICES "/%s/driver_override", a);
	if (write_file(p, drv) < 0)
		return -1;
	snprintf(p, sizeof(p), PCI_DRIVERS "/%s/bind", drv);
	return write_file(p, a) < 0 ? -1 : 0;
}
#endif

#if SVT_AGENT || SVT_PCI_UNBIND
/* Unbind endpoint dev from its driver (ENOENT: it has none) */
static long long pci_unbind(int dev)
{
	char p[PATH_LEN], a[64];

	snprintf(a, sizeof(a), "%s", ep_addr(dev));
	snprintf(p, sizeof(p), PCI_DEVICES "/%s/driver/unbind", a);
	return write_file(p, a) < 0 ? -1 : 0;
}
#endif

#if SVT_AGENT || SVT_VFIO_GROUP_OPEN
/* Open the vfio group of endpoint dev's IOMMU group, /dev/vfio/<n> (ENOENT: there is none) */
static long long vfio_group_open(int dev)
{
	char p[PATH_LEN], link[128];
	const char *n;
	ssize_t l;

	snprintf(p, sizeof(p), PCI_DEVICES "/%s/iommu_group", ep_addr(dev));
	l = readlink(p, link, sizeof(link) - 1);
	if (l < 0)
		return -1;
	link[l] = '\0';
	n = strrchr(link, '/');
	snprintf(p, sizeof(p), VFIO_DIR "/%s", n ? n + 1 : link);
	return open(p, O_RDWR | O_CLOEXEC);
}
#endif

#if SVT_AGENT || SVT_VFIO_SET_CONTAINER
#include <sys/ioctl.h>
#include <linux/vfio.h>
static long long vfio_set_container(int group, int container)
{
	return ioctl(group, VFIO_GROUP_SET_CONTAINER, &container);
}
#endif

#if SVT_AGENT || SVT_VFIO_UNSET_CONTAINER
#include <sys/ioctl.h>
#include <linux/vfio.h>
static long long vfio_unset_container(int group)
{
	return ioctl(group, VFIO_GROUP_UNSET_CONTAINER);
}
#endif

#if SVT_AGENT || SVT_VFIO_SET_IOMMU
#include <sys/ioctl.h>
#include <linux/vfio.h>
static long long vfio_set_iommu(int container)
{
	return ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU);
}
#endif

#if SVT_AGENT || SVT_VFIO_GET_DEVICE
#include <sys/ioctl.h>
#include <linux/vfio.h>
/* VFIO_GROUP_GET_DEVICE_FD of endpoint dev (by its PCI address): a new descriptor */
static long long vfio_get_device(int group, int dev)
{
	char a[64];

	snprintf(a, sizeof(a), "%s", ep_addr(dev));
	return ioctl(group, VFIO_GROUP_GET_DEVICE_FD, a);
}
#endif

#if SVT_AGENT || SVT_VFIO_GROUP_STATUS
#include <sys/ioctl.h>
#include <linux/vfio.h>
/* VFIO_GROUP_GET_STATUS; r->data: its flags (0x1 VIABLE, 0x2 CONTAINER_SET) */
static long long vfio_group_status(struct res *r, int group)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	long long ret = ioctl(group, VFIO_GROUP_GET_STATUS, &st);

	if (ret == 0)
		DATAF(r, "0x%x", st.flags);
	return ret;
}
#endif

/*
 * iommufd and vfio's device cdev (include/uapi/linux/iommufd.h, vfio.h of 6.12). The structs
 * and commands are spelled out here (svt_ names): the uapi headers of a build host may predate
 * them (IOMMU_HWPT_ALLOC is from 6.7, VFIO_DEVICE_BIND_IOMMUFD from 6.6).
 */
#if SVT_AGENT || SVT_IOMMUFD_IOAS_ALLOC
#include <sys/ioctl.h>
struct svt_iommu_ioas_alloc { uint32_t size, flags, out_ioas_id; };
/* IOMMU_IOAS_ALLOC; *id: the new IOAS's id (0 on failure); r->data: the id */
static long long iommufd_ioas_alloc(struct res *r, int iommufd, uint32_t *id)
{
	struct svt_iommu_ioas_alloc c = { .size = sizeof(c) };
	long long ret = ioctl(iommufd, _IO(';', 0x81) /* IOMMU_IOAS_ALLOC */, &c);

	*id = ret == 0 ? c.out_ioas_id : 0;
	if (ret == 0)
		DATAF(r, "%u", c.out_ioas_id);
	return ret;
}
#endif

#if SVT_AGENT || SVT_IOMMUFD_IOAS_MAP
#include <sys/ioctl.h>
struct svt_iommu_ioas_map {
	uint32_t size, flags, ioas_id, reserved;
	uint64_t user_va, length, iova;
};
/* IOMMU_IOAS_MAP of pages at va to IOVA page iova: FIXED_IOVA, READABLE, WRITEABLE if write */
static long long iommufd_ioas_map(int iommufd, uint32_t ioas, uint64_t va, int iova, int pages, int write)
{
	struct svt_iommu_ioas_map c = {
		.size = sizeof(c),
		.flags = 1 /* FIXED_IOVA */ | 4 /* READABLE */ | (write ? 2 /* WRITEABLE */ : 0),
		.ioas_id = ioas,
		.user_va = va,
		.length = (uint64_t)pages * SVT_PAGE_SIZE,
		.iova = SVT_IOVA_BASE + (uint64_t)iova * SVT_PAGE_SIZE,
	};

	return ioctl(iommufd, _IO(';', 0x85) /* IOMMU_IOAS_MAP */, &c);
}
#endif

#if SVT_AGENT || SVT_IOMMUFD_IOAS_UNMAP
#include <sys/ioctl.h>
struct svt_iommu_ioas_unmap { uint32_t size, ioas_id; uint64_t iova, length; };
/* IOMMU_IOAS_UNMAP of IOVA pages iova.. */
static long long iommufd_ioas_unmap(int iommufd, uint32_t ioas, int iova, int pages)
{
	struct svt_iommu_ioas_unmap c = {
		.size = sizeof(c),
		.ioas_id = ioas,
		.iova = SVT_IOVA_BASE + (uint64_t)iova * SVT_PAGE_SIZE,
		.length = (uint64_t)pages * SVT_PAGE_SIZE,
	};

	return ioctl(iommufd, _IO(';', 0x86) /* IOMMU_IOAS_UNMAP */, &c);
}
#endif

#if SVT_AGENT || SVT_VFIO_CDEV_OPEN
#include <dirent.h>
/*
 * Open the vfio device cdev of endpoint dev: the vfio<N> its PCI device's vfio-dev directory
 * names, /dev/vfio/devices/vfio<N> (ENOENT: not bound to vfio-pci, or no cdevs)
 */
static long long vfio_cdev_open(int dev)
{
	char p[PATH_LEN], name[64] = "";
	struct dirent *ent;
	DIR *d;

	snprintf(p, sizeof(p), PCI_DEVICES "/%s/vfio-dev", ep_addr(dev));
	d = opendir(p);
	while (d && (ent = readdir(d)) != NULL)
		if (strncmp(ent->d_name, "vfio", 4) == 0 && strlen(ent->d_name) < sizeof(name))
			strcpy(name, ent->d_name);
	if (d)
		closedir(d);
	if (!name[0]) {
		errno = ENOENT;
		return -1;
	}
	snprintf(p, sizeof(p), VFIO_CDEV_DIR "/%s", name);
	return open(p, O_RDWR | O_CLOEXEC);
}
#endif

#if SVT_AGENT || SVT_VFIO_BIND_IOMMUFD
#include <sys/ioctl.h>
struct svt_vfio_device_bind_iommufd { uint32_t argsz, flags; int32_t iommufd; uint32_t out_devid; };
/* VFIO_DEVICE_BIND_IOMMUFD; *id: the device's object id (0 on failure); r->data: the id */
static long long vfio_bind_iommufd(struct res *r, int device, int iommufd, uint32_t *id)
{
	struct svt_vfio_device_bind_iommufd c = { .argsz = sizeof(c), .iommufd = iommufd };
	long long ret = ioctl(device, _IO(';', 100 + 18) /* VFIO_DEVICE_BIND_IOMMUFD */, &c);

	*id = ret == 0 ? c.out_devid : 0;
	if (ret == 0)
		DATAF(r, "%u", c.out_devid);
	return ret;
}
#endif

#if SVT_AGENT || SVT_IOMMUFD_HWPT_ALLOC
#include <sys/ioctl.h>
struct svt_iommu_hwpt_alloc {
	uint32_t size, flags, dev_id, pt_id, out_hwpt_id, reserved, data_type, data_len;
	uint64_t data_uptr;
	uint32_t fault_id, reserved2;
};
/* IOMMU_HWPT_ALLOC of a paging HWPT for device dev_id on pt_id; *id: its id (0 on failure) */
static long long iommufd_hwpt_alloc(struct res *r, int iommufd, uint32_t dev_id, uint32_t pt_id, uint32_t *id)
{
	struct svt_iommu_hwpt_alloc c = { .size = sizeof(c), .dev_id = dev_id, .pt_id = pt_id };
	long long ret = ioctl(iommufd, _IO(';', 0x89) /* IOMMU_HWPT_ALLOC */, &c);

	*id = ret == 0 ? c.out_hwpt_id : 0;
	if (ret == 0)
		DATAF(r, "%u", c.out_hwpt_id);
	return ret;
}
#endif

#if SVT_AGENT || SVT_VFIO_ATTACH_PT
#include <sys/ioctl.h>
struct svt_vfio_device_attach_iommufd_pt { uint32_t argsz, flags, pt_id; };
/* VFIO_DEVICE_ATTACH_IOMMUFD_PT (a replace when attached); r->data: the HWPT id it gives back */
static long long vfio_attach_pt(struct res *r, int device, uint32_t pt_id)
{
	struct svt_vfio_device_attach_iommufd_pt c = { .argsz = sizeof(c), .pt_id = pt_id };
	long long ret = ioctl(device, _IO(';', 100 + 19) /* VFIO_DEVICE_ATTACH_IOMMUFD_PT */, &c);

	if (ret == 0)
		DATAF(r, "%u", c.pt_id);
	return ret;
}
#endif

#if SVT_AGENT || SVT_VFIO_DETACH_PT
#include <sys/ioctl.h>
struct svt_vfio_device_detach_iommufd_pt { uint32_t argsz, flags; };
static long long vfio_detach_pt(int device)
{
	struct svt_vfio_device_detach_iommufd_pt c = { .argsz = sizeof(c) };

	return ioctl(device, _IO(';', 100 + 20) /* VFIO_DEVICE_DETACH_IOMMUFD_PT */, &c);
}
#endif

#if SVT_AGENT || SVT_IOMMUFD_DESTROY
#include <sys/ioctl.h>
struct svt_iommu_destroy { uint32_t size, id; };
static long long iommufd_destroy(int iommufd, uint32_t id)
{
	struct svt_iommu_destroy c = { .size = sizeof(c), .id = id };

	return ioctl(iommufd, _IO(';', 0x80) /* IOMMU_DESTROY */, &c);
}
#endif

#if SVT_AGENT || SVT_VFIO_MAP_DMA
#include <sys/ioctl.h>
#include <linux/vfio.h>
/* VFIO_IOMMU_MAP_DMA of pages at vaddr to IOVA page iova: the device may read them, and write if write */
static long long vfio_map_dma(int container, uint64_t vaddr, int iova, int pages, int write)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof(m),
		.flags = VFIO_DMA_MAP_FLAG_READ | (write ? VFIO_DMA_MAP_FLAG_WRITE : 0),
		.vaddr = vaddr,
		.iova = SVT_IOVA_BASE + (uint64_t)iova * SVT_PAGE_SIZE,
		.size = (uint64_t)pages * SVT_PAGE_SIZE,
	};

	return ioctl(container, VFIO_IOMMU_MAP_DMA, &m);
}
#endif

#if SVT_AGENT || SVT_VFIO_UNMAP_DMA
#include <sys/ioctl.h>
#include <linux/vfio.h>
/* VFIO_IOMMU_UNMAP_DMA of IOVA pages iova..; r->data: how many pages it unmapped */
static long long vfio_unmap_dma(struct res *r, int container, int iova, int pages)
{
	struct vfio_iommu_type1_dma_unmap u = {
		.argsz = sizeof(u),
		.iova = SVT_IOVA_BASE + (uint64_t)iova * SVT_PAGE_SIZE,
		.size = (uint64_t)pages * SVT_PAGE_SIZE,
	};
	long long ret = ioctl(container, VFIO_IOMMU_UNMAP_DMA, &u);

	if (ret == 0)
		DATAF(r, "%llu", (unsigned long long)(u.size / SVT_PAGE_SIZE));
	return ret;
}
#endif

#if SVT_AGENT || SVT_EP_DMA
#include <sys/ioctl.h>
#include <linux/pci_regs.h>
#include <linux/vfio.h>
/* a 32-bit register of BAR 0 through the vfio device fd (bar: the region's offset) */
static int ep_reg(int device, uint64_t bar, unsigned int reg, uint32_t *v, int write)
{
	ssize_t n = write ? pwrite(device, v, 4, (off_t)(bar + reg)) : pread(device, v, 4, (off_t)(bar + reg));

	if (n == 4)
		return 0;
	if (n >= 0)
		errno = EIO;
	return -1;
}

/*
 * Run the endpoint's engine once against IOVA page iova, through a vfio device fd
 * (docs/ownership-semantics.md "The endpoint's engine"): bus master on, queue slot EP_DMA_SLOT
 * stopped, its register page and ring at the IOVA page, CONSUMED = EP_DMA_CONSUMED, RUN; wait
 * until CONSUMED moves or the queue stops on a DMA error (as long as a work item may take),
 * stop it and clear its interrupt status, put the command register back. r->data: "done N" or "dma-error N", N the
 * descriptors it completed.
 */
static long long ep_dma(struct res *r, int device, int iova)
{
	struct vfio_region_info cfg = { .argsz = sizeof(cfg), .index = VFIO_PCI_CONFIG_REGION_INDEX };
	struct vfio_region_info bar = { .argsz = sizeof(bar), .index = VFIO_PCI_BAR0_REGION_INDEX };
	uint64_t at = SVT_IOVA_BASE + (uint64_t)iova * SVT_PAGE_SIZE;
	unsigned int q = SVT_EP_Q(EP_DMA_SLOT);
	uint32_t zero = 0, run = SVT_EP_QC_RUN, from = EP_DMA_CONSUMED, st = 0, done = from;
	uint32_t irqs = SVT_EP_IRQ_COMPLETION | SVT_EP_IRQ_FAULT;
	uint32_t regs_lo = (uint32_t)at, regs_hi = (uint32_t)(at >> 32);
	uint32_t ring_lo = (uint32_t)(at + EP_DMA_RING), ring_hi = (uint32_t)((at + EP_DMA_RING) >> 32);
	uint16_t cmd, on;
	long long ret = -1;
	int i, e;

	if (ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &cfg) < 0 || ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &bar) < 0)
		return -1;
	if (pread(device, &cmd, 2, (off_t)(cfg.offset + PCI_COMMAND)) != 2)
		return -1;
	on = cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	if (pwrite(device, &on, 2, (off_t)(cfg.offset + PCI_COMMAND)) != 2)
		return -1;
	if (ep_reg(device, bar.offset, q + SVT_EP_Q_CTRL, &zero, 1) < 0 ||
	    ep_reg(device, bar.offset, q + SVT_EP_Q_PASID, &zero, 1) < 0 ||
	    ep_reg(device, bar.offset, q + SVT_EP_Q_FAULTS, &zero, 1) < 0 ||
	    ep_reg(device, bar.offset, q + SVT_EP_Q_CONSUMED, &from, 1) < 0 ||
	    ep_reg(device, bar.offset, q + SVT_EP_Q_REGS_LO, &regs_lo, 1) < 0 ||
	    ep_reg(device, bar.offset, q + SVT_EP_Q_REGS_HI, &regs_hi, 1) < 0 ||
	    ep_reg(device, bar.offset, q + SVT_EP_Q_RING_LO, &ring_lo, 1) < 0 ||
	    ep_reg(device, bar.offset, q + SVT_EP_Q_RING_HI, &ring_hi, 1) < 0 ||
	    ep_reg(device, bar.offset, q + SVT_EP_Q_CTRL, &run, 1) < 0)
		goto out;
	for (i = 0; i < SUBMIT_WAIT_US / SUBMIT_POLL_US; i++) {
		if (ep_reg(device, bar.offset, q + SVT_EP_Q_STATUS, &st, 0) < 0 ||
		    ep_reg(device, bar.offset, q + SVT_EP_Q_CONSUMED, &done, 0) < 0)
			goto out;
		if ((st & SVT_EP_QS_DMA_ERROR) || done != from)
			break;
		usleep(SUBMIT_POLL_US);
	}
	/* stopped, and its interrupt cleared: nobody on this side handles INTx of a vfio device */
	if (ep_reg(device, bar.offset, q + SVT_EP_Q_CTRL, &zero, 1) < 0 ||
	    ep_reg(device, bar.offset, SVT_EP_IRQ_STATUS, &irqs, 1) < 0 ||
	    ep_reg(device, bar.offset, q + SVT_EP_Q_STATUS, &st, 0) < 0 ||
	    ep_reg(device, bar.offset, q + SVT_EP_Q_CONSUMED, &done, 0) < 0)
		goto out;
	DATAF(r, "%s %u", st & SVT_EP_QS_DMA_ERROR ? "dma-error" : "done", done - from);
	ret = 0;
out:
	e = errno;
	if (pwrite(device, &cmd, 2, (off_t)(cfg.offset + PCI_COMMAND)) != 2 && ret == 0) {
		ret = -1;
		e = EIO;
	}
	errno = e;
	return ret;
}
#endif
