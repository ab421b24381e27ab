/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The runtime shared by the svadiff guest agent and its C reproducers, part 1 of 2: types,
 * globals and prototypes (part 2, svt_runtime.h, has the functions). The agent includes both
 * whole; a reproducer is svt_abi.h's and svt_defs.h's constants, its program's constants, this
 * file, the program's steps, then svt_runtime.h, with only the sections the program needs
 * (harness/repro/cruntime.ts selects them: the syzkaller executor/common_linux.h model).
 *
 * Sections are plain "#if <condition>" blocks over these names (0 or 1; not defined is 0):
 *   SVT_AGENT     the agent (guest/agent/agent.c)
 *   SVT_GENERAL   a reproducer of several tasks: a controller hands steps to task processes
 *   SVT_COMPACT   a reproducer of one task: main() is the program
 *   SVT_WATCH     (compact) the steps run in a child process, the parent watches it
 *   SVT_FAULTS    (compact) some step takes SIGSEGV or SIGBUS as its outcome
 *   SVT_OK_VALUE  (compact) some step's value is text that may need escaping (sysfs)
 *   SVT_<NAME>    the program's steps use the identifier <name> (lower case): SVT_SUBMIT for
 *                 submit(), SVT_POLL for poll(), SVT_FDS for fds[] ...
 * Conditions use only these names with ||, && and ! (cruntime.ts evaluates them itself, so that
 * the text stays as written here, and hoists #include lines to the top); a reproducer compiles
 * with -Wall -Wextra -Werror, so a section must be enabled exactly when something uses it.
 * No include guards: the agent includes each file once. Kernel coding style.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/types.h>

/* What a step did (a task sends it to its controller: less than PIPE_BUF, written at once). */
struct res {
#if SVT_AGENT || SVT_GENERAL
	int step;
	long long ret;		/* the call's return value (mmap, mremap: 0 or -1) */
	int err;		/* its errno, 0 on success */
	int child;		/* fork: the new task's pid */
	long long t0, t1;	/* CLOCK_MONOTONIC ns before and after the step (the task's own clock reading) */
#endif
	int sig;		/* SIGSEGV or SIGBUS raised during the step, 0 if none */
	uint64_t addr, want;	/* mmap, mremap: where the mapping went, where it should be */
	unsigned int len;
	char data[DATA_MAX];	/* what the step read, or the path it opened */
};

#define DATAF(r, ...)	((r)->len = (unsigned int)snprintf((r)->data, DATA_MAX, __VA_ARGS__))

#if SVT_AGENT || SVT_GENERAL
#include <limits.h>
/* controller -> task: which step, and the path the controller resolved for it */
struct cmd {
	int step;
#if SVT_AGENT
	struct op op;		/* the op itself: a task has no copy of the program */
#endif
	char path[PATH_LEN];
};

_Static_assert(sizeof(struct cmd) <= PIPE_BUF, "commands are written atomically");
_Static_assert(sizeof(struct res) <= PIPE_BUF, "results are written atomically");
#endif

#if SVT_AGENT || SVT_FDS
static int fds[N_FDS];			/* this task's descriptor of each name, -1: none */
#endif
#if SVT_AGENT || SVT_OBJS
static uint32_t objs[N_OBJS];		/* this task's iommufd object id of each name, 0: none */
#endif
#if SVT_AGENT || SVT_IOCTL
#include <sys/ioctl.h>
#endif
#if SVT_AGENT || SVT_POLL
#include <poll.h>
static struct pollfd pf;		/* the poll of a step */
#endif
#if SVT_COMPACT && SVT_PATH
static char path[PATH_LEN];		/* the path a step opens */
#endif

#if SVT_AGENT || SVT_GENERAL
/* tasks: processes that run steps for a controller */
#include <setjmp.h>
static int me;				/* the task this process is */
static int cmd_pipe[N_TASKS][2];	/* controller -> task */
static int res_pipe[2];			/* tasks -> controller */
static sigjmp_buf fault_env;
static volatile sig_atomic_t in_step, fault_sig;

/* the program's steps, as the task that performs each does them; 1: this is a new task */
static int do_step(struct cmd *c, struct res *r);
static int step_result(struct res *r, long long ret, int e);
static void task_start(void) __attribute__((noreturn));
#endif
#if SVT_AGENT || SVT_FORK_TASK
static pid_t fork_task(void);
#endif

#if SVT_AGENT || SVT_MAPPED
static long long mapped(struct res *r, void *got, uint64_t want);
#endif
#if SVT_AGENT || SVT_WRITE_FILE || SVT_READ_FILE || SVT_PCI_BIND || SVT_PCI_UNBIND
static long long file_io(const char *path, const char *out, char *in, size_t len);
#endif
#if SVT_AGENT || SVT_WRITE_FILE || SVT_PCI_BIND || SVT_PCI_UNBIND
static long long write_file(const char *path, const char *s);
#endif
#if SVT_AGENT || SVT_READ_FILE
static long long read_file(struct res *r, const char *path);
#endif
#if SVT_AGENT || SVT_PCI_BIND || SVT_PCI_UNBIND || SVT_VFIO_GROUP_OPEN || SVT_VFIO_GET_DEVICE || SVT_VFIO_CDEV_OPEN
static const char *ep_addr(int dev);
#endif
#if SVT_AGENT || SVT_PCI_BIND
static long long pci_bind(int dev, const char *drv);
#endif
#if SVT_AGENT || SVT_PCI_UNBIND
static long long pci_unbind(int dev);
#endif
#if SVT_AGENT || SVT_VFIO_GROUP_OPEN
static long long vfio_group_open(int dev);
#endif
#if SVT_AGENT || SVT_VFIO_SET_CONTAINER
static long long vfio_set_container(int group, int container);
#endif
#if SVT_AGENT || SVT_VFIO_UNSET_CONTAINER
static long long vfio_unset_container(int group);
#endif
#if SVT_AGENT || SVT_VFIO_SET_IOMMU
static long long vfio_set_iommu(int container);
#endif
#if SVT_AGENT || SVT_VFIO_GET_DEVICE
static long long vfio_get_device(int group, int dev);
#endif
#if SVT_AGENT || SVT_VFIO_GROUP_STATUS
static long long vfio_group_status(struct res *r, int group);
#endif
#if SVT_AGENT || SVT_IOMMUFD_IOAS_ALLOC
static long long iommufd_ioas_alloc(struct res *r, int iommufd, uint32_t *id);
#endif
#if SVT_AGENT || SVT_IOMMUFD_IOAS_MAP
static long long iommufd_ioas_map(int iommufd, uint32_t ioas, uint64_t va, int iova, int pages, int write);
#endif
#if SVT_AGENT || SVT_IOMMUFD_IOAS_UNMAP
static long long iommufd_ioas_unmap(int iommufd, uint32_t ioas, int iova, int pages);
#endif
#if SVT_AGENT || SVT_VFIO_CDEV_OPEN
static long long vfio_cdev_open(int dev);
#endif
#if SVT_AGENT || SVT_VFIO_BIND_IOMMUFD
static long long vfio_bind_iommufd(struct res *r, int device, int iommufd, uint32_t *id);
#endif
#if SVT_AGENT || SVT_IOMMUFD_HWPT_ALLOC
static long long iommufd_hwpt_alloc(struct res *r, int iommufd, uint32_t dev_id, uint32_t pt_id, uint32_t *id);
#endif
#if SVT_AGENT || SVT_VFIO_ATTACH_PT
static long long vfio_attach_pt(struct res *r, int device, uint32_t pt_id);
#endif
#if SVT_AGENT || SVT_VFIO_DETACH_PT
static long long vfio_detach_pt(int device);
#endif
#if SVT_AGENT || SVT_IOMMUFD_DESTROY
static long long iommufd_destroy(int iommufd, uint32_t id);
#endif
#if SVT_AGENT || SVT_VFIO_MAP_DMA
static long long vfio_map_dma(int container, uint64_t vaddr, int iova, int pages, int write);
#endif
#if SVT_AGENT || SVT_VFIO_UNMAP_DMA
static long long vfio_unmap_dma(struct res *r, int container, int iova, int pages);
#endif
#if SVT_AGENT || SVT_EP_DMA
static long long ep_dma(struct res *r, int device, int iova);
#endif
#if SVT_AGENT || SVT_SUBMIT
static long long submit(struct res *r, uint64_t mmio_at, uint64_t dus_at, uint32_t opcode, uint64_t addr,
			uint64_t value, int ack);
#endif
#if SVT_AGENT || SVT_NODE_PATH
static void node_path(int dev, char *path);
#endif
#if SVT_AGENT || SVT_MKNOD_PATH
static void mknod_path(int dev, char *path);
#endif
#if SVT_AGENT || SVT_SYSFS_PATH
static void sysfs_path(int dev, const char *attr, char *path);
#endif
#if SVT_AGENT || SVT_PASID_SEEN
static void pasid_seen(struct res *r, uint32_t pasid);
#endif
#if SVT_AGENT || SVT_DEV_NAME
static const char *dev_name(int dev);
static const char *driver_file(const char *file);
#endif

#if SVT_GENERAL
/* what a step is and what the model expects of it */
enum value_kind { VALUE_NONE, VALUE_DATA, VALUE_RETURN };
enum outcome_kind { NONE, OK, OK_VALUE, ERRNO, SIGNAL, DIED, HANG };

/* ok, ok(value), an errno name, SIGSEGV/SIGBUS, died(SIG...), hang */
struct outcome {
	enum outcome_kind kind;
	const char *text;
	size_t len;
};

#define V(s)		s, sizeof(s) - 1

struct step {
	int task;
	const char *call;		/* what it does, for the output */
	enum value_kind value;		/* what an ok result carries */
	int deadline_ms;		/* 0: STEP_DEADLINE_MS */
	int forks;			/* fork: the new task (never task 0) */
	int exit;			/* the task ends: done when it is gone */
	int placed;			/* mmap, mremap: the mapping must land at its slot */
	const char *what;		/* the call in the title */
	const char *expect_text;	/* the expectation as svadiff prints it, NULL: not checked */
	const char *expect_title;	/* the same as the title names it: kinds, no values */
	const char *rules;		/* the model rules behind it */
	struct outcome expect[MAX_EXPECT];
};

/* the resolution of step s's path by the controller (the agent does the same) */
static void resolve(int s, char *path);
#endif

#if SVT_COMPACT
enum value_kind { VALUE_NONE, VALUE_DATA, VALUE_RETURN };	/* what an ok outcome shows */
/* a step: the call, its name and the model's rules (for the title), the outcomes the model allows */
struct step { int n; const char *call, *what, *rules, *const *expect; };
#define STEP(n, call, what, rules, ...) do {						\
	static const char *const expect_[] = { __VA_ARGS__, NULL };			\
	static const struct step step_ = { n, call, what, rules, expect_ };		\
	begin(&step_);									\
} while (0)

/* What the step did besides its return value (ret) and errno (e). */
static struct res res, *const r = &res;
static long long ret;
static int e;
#if SVT_FAULTS
#include <setjmp.h>
static sigjmp_buf fault;	/* where a fault during a touch or submit goes */
static volatile sig_atomic_t catching;
#endif

/* The run so far (with a watcher: shared with the parent, which watches t0). */
static struct run {
	const struct step *step;	/* the step running or last run (static: the same in both processes) */
	int checked, diverged;
#if SVT_WATCH
	int running, ms, done;		/* ms: the running step's deadline */
	long long started;
#endif
} run0, *run = &run0;

static void begin_run(int argc, char **argv);
static void begin(const struct step *s);
static void check(enum value_kind value);
static int end_run(void);
#endif

