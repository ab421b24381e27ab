// SPDX-License-Identifier: GPL-2.0
/*
 * svadiff guest agent: runs test programs for the host and streams the kernel log.
 *
 * Protocol: docs/agent-protocol.md (host side: harness/agent/wire.ts, harness/agent/session.ts).
 * One line-based channel (/dev/ttyS1, raw mode) carries everything. The agent is a single-threaded
 * event loop (poll over the channel, /dev/kmsg, a signalfd for SIGCHLD and the task result pipe);
 * everything that could block in the kernel (module load/unload, every op of a program) runs in a
 * child process, so that the agent stays responsive and can report a hang instead of hanging.
 *
 * Processes of one program:
 *   agent (PID 1 or a child of it)
 *     task 0 ... task 7   every task is a child of the agent: task 0 is forked by the agent, later
 *                         tasks by clone(CLONE_PARENT | SIGCHLD) in their parent task, so the agent
 *                         reaps them all and can report how each one ended
 *     helper              a short-lived child for finit_module/delete_module
 *     executable          the program of a U line (a reproducer) in a process group of its own;
 *                         its children become the agent's when it exits (PID 1, or a
 *                         subreaper when run on a development host) and die with the group
 * Ops go to task i over command pipe i (all pipes exist before task 0 starts, so every task
 * inherits them); results come back on one result pipe as fixed-size records (< PIPE_BUF, so
 * writes are atomic). The agent sends op n+1 only after op n's result: runs are deterministic.
 *
 * Bad input from the host never makes the agent exit: it answers with an E line.
 *
 * Options (for running on a development host, see test/unit/agent-*.test.ts):
 *   --tty PATH   the channel device (default /dev/ttyS1)
 *   --stdio      use stdin/stdout as the channel (no terminal setup)
 *   --no-module  do not load or unload kernel modules and do not wait for device nodes
 *   --no-kmsg    do not read /dev/kmsg
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "svt_abi.h"

#define PROTO_VERSION	1
#define MAX_LINE	4096		/* bytes of one line, without the newline */
#define MAX_OPS		4096
#define MAX_TASKS	8
#define MAX_SLOTS	1024		/* descriptor and mapping names of a program (harness LIMITS) */
#define MAX_DEVS	8
#define MAX_STR		256		/* decoded string argument of an op */
#define DATA_MAX	1024		/* data field of a result (hex doubles it) */
#define AUX_MAX		64
#define KMSG_TEXT_MAX	2000		/* K lines stay below MAX_LINE: 2000 bytes -> 4000 hex */
#define FILE_MAX	2000		/* content of an N line, for the same reason */
#define MSG_MAX		1000		/* E and F messages */
#define EXEC_CHUNK	1024		/* bytes of executable output per w line (2048 hex) */
#define EXEC_OUTPUT_MAX	(256 * 1024)	/* output of one executable relayed; the rest is counted */
#define EXEC_PATH_MAX	255
#define EXEC_TIMEOUT_MAX 600000		/* ms */
#define INQ_LINES	32

#define MAP_BASE	0x200000000000ULL
#define MAP_STRIDE	0x1000000ULL

#define MOD_DIR		"/lib/modules/svadiff"
#define TEST_MODULE	"svadiff_test"
#define UACCE_CLASS	"/sys/class/uacce"
#define DRIVER_DIR	"/sys/bus/platform/drivers/" SVT_DRIVER_NAME

/* deadlines (ms) */
#define OP_DEADLINE		10000
#define SUBMIT_DEADLINE		5000
#define POLL_EXTRA		5000
#define INSMOD_DEADLINE		30000
#define RMMOD_DEADLINE		10000
#define RMMOD_RETRY_MS		3000
#define NODES_DEADLINE		5000
#define KILL_DEADLINE		5000
#define SUBMIT_WAIT_US		200000
#define SUBMIT_POLL_US		200

enum {
	OP_OPEN = 1, OP_CLOSE, OP_DUP, OP_MMAP, OP_ALLOC, OP_MUNMAP, OP_MREMAP, OP_MADVISE,
	OP_TOUCH, OP_SUBMIT, OP_IOCTL, OP_POLL, OP_FORK, OP_EXIT, OP_REMOVE, OP_ADD,
	OP_SYSFS_READ, OP_SYSFS_WRITE, OP_LAST = OP_SYSFS_WRITE
};

static const char *const sysfs_attrs[] = {
	"api", "flags", "available_instances", "algorithms",
	"region_mmio_size", "region_dus_size", "isolate", "isolate_strategy",
};
#define N_SYSFS_ATTRS ((int)(sizeof(sysfs_attrs) / sizeof(sysfs_attrs[0])))

/* One op as received in an O line. */
struct op {
	int32_t idx;
	int32_t task;
	int32_t opcode;
	int64_t a[8];
	uint32_t slen;
	char str[MAX_STR + 1];
};

/* Agent -> task: an op plus what the agent resolved for it (paths). */
struct cmd {
	struct op op;
	char path[200];
};

/* Task -> agent. */
struct res {
	int32_t task;
	int32_t idx;
	int64_t ret;
	int32_t err;
	int32_t sig;
	int32_t child_pid;
	uint32_t dlen;
	uint32_t alen;
	char data[DATA_MAX];
	char aux[AUX_MAX];
};

_Static_assert(sizeof(struct cmd) <= PIPE_BUF, "command records must be written atomically");
_Static_assert(sizeof(struct res) <= PIPE_BUF, "result records must be written atomically");

/* ------------------------------------------------------------------------------------------ */
/* options and global agent state */

static const char *opt_tty = "/dev/ttyS1";
static int opt_stdio, opt_no_module, opt_no_kmsg;

static int in_fd = -1, out_fd = -1;	/* the channel (the same fd on a tty) */
static int kmsg_fd = -1;
static int sig_fd = -1;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void logmsg(const char *fmt, ...)
{
	char b[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b, sizeof(b) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(b) - 2)
		n = sizeof(b) - 2;
	b[n++] = '\n';
	/* stderr is the console; nothing depends on this succeeding */
	if (write(2, "svadiff-agent: ", 15) < 0 || write(2, b, n) < 0)
		return;
}

/* ------------------------------------------------------------------------------------------ */
/* output lines */

static char ob[MAX_LINE + 256];
static size_t ol;

static void ob_reset(void) { ol = 0; }

static void ob_raw(const char *s, size_t n)
{
	if (ol + n > MAX_LINE)
		n = ol < MAX_LINE ? MAX_LINE - ol : 0;
	memcpy(ob + ol, s, n);
	ol += n;
}

static void ob_str(const char *s) { ob_raw(s, strlen(s)); }

static void ob_sp(void) { ob_raw(" ", 1); }

static void ob_i64(long long v)
{
	char b[32];
	int n = snprintf(b, sizeof(b), "%lld", v);

	ob_raw(b, (size_t)n);
}

static void ob_u64(unsigned long long v)
{
	char b[32];
	int n = snprintf(b, sizeof(b), "%llu", v);

	ob_raw(b, (size_t)n);
}

/* hex of len bytes, "-" when empty; cut so that the line stays within MAX_LINE */
static void ob_hex(const void *p, size_t len)
{
	static const char hx[] = "0123456789abcdef";
	const unsigned char *s = p;
	size_t room = ol < MAX_LINE ? (MAX_LINE - ol) / 2 : 0;
	size_t i;

	if (len == 0) {
		ob_raw("-", 1);
		return;
	}
	if (len > room)
		len = room;
	for (i = 0; i < len; i++) {
		ob[ol++] = hx[s[i] >> 4];
		ob[ol++] = hx[s[i] & 15];
	}
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else if (w < 0 && errno == EAGAIN) {
			struct pollfd pf = { .fd = fd, .events = POLLOUT };

			poll(&pf, 1, 1000);
		} else {
			/* the channel is gone: nothing useful left to do with this line */
			return;
		}
	}
}

static void ob_send(void)
{
	ob[ol++] = '\n';
	write_all(out_fd, ob, ol);
	ol = 0;
}

static void send_error(const char *fmt, ...)
{
	char m[MSG_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n >= (int)sizeof(m))
		n = sizeof(m) - 1;
	ob_reset();
	ob_str("E ");
	ob_hex(m, (size_t)n);
	ob_send();
}

static void send_hello(void)
{
	struct utsname u;

	if (uname(&u) != 0)
		strcpy(u.release, "unknown");
	ob_reset();
	ob_str("H svadiff-agent ");
	ob_i64(PROTO_VERSION);
	ob_sp();
	ob_hex(u.release, strlen(u.release));
	ob_send();
}

/* ------------------------------------------------------------------------------------------ */
/* /dev/kmsg */

static unsigned long long kmsg_last_seq;
static int kmsg_sent_any;

/*
 * One read() of /dev/kmsg returns one record: "prio,seq,usec,flags[,...];text\n" followed by
 * continuation lines " KEY=value\n" (Documentation/ABI/testing/dev-kmsg). The text is already
 * escaped by the kernel (\xNN), so a real newline only separates continuation lines.
 */
static void forward_kmsg_record(char *rec, size_t n)
{
	unsigned long long prio, seq, usec;
	char *semi, *p, *end, *text;
	char body[KMSG_TEXT_MAX];
	size_t bl = 0;

	rec[n] = '\0';
	semi = memchr(rec, ';', n);
	if (!semi)
		return;
	*semi = '\0';
	p = rec;
	prio = strtoull(p, &end, 10);
	if (end == p || *end != ',')
		return;
	p = end + 1;
	seq = strtoull(p, &end, 10);
	if (end == p || *end != ',')
		return;
	p = end + 1;
	usec = strtoull(p, &end, 10);
	if (end == p)
		return;
	if (kmsg_sent_any && seq <= kmsg_last_seq)
		return;	/* each record once */
	kmsg_sent_any = 1;
	kmsg_last_seq = seq;

	text = semi + 1;
	end = rec + n;
	for (p = text; p < end;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
		const char *src = p;

		if (p != text) {
			if (*src == ' ') {	/* continuation line: drop the marker space */
				src++;
				ll--;
			}
			if (ll == 0)
				goto next;
			if (bl < sizeof(body))
				body[bl++] = '\n';
		}
		if (ll > sizeof(body) - bl)
			ll = sizeof(body) - bl;
		memcpy(body + bl, src, ll);
		bl += ll;
next:
		if (!nl)
			break;
		p = nl + 1;
	}

	ob_reset();
	ob_str("K ");
	ob_u64(seq);
	ob_sp();
	ob_u64(prio & 7);
	ob_sp();
	ob_u64(usec);
	ob_sp();
	ob_hex(body, bl);
	ob_send();
}

static void drain_kmsg(void)
{
	static char rec[8192 + 1];

	if (kmsg_fd < 0)
		return;
	for (;;) {
		ssize_t n = read(kmsg_fd, rec, sizeof(rec) - 1);

		if (n > 0) {
			forward_kmsg_record(rec, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EPIPE)
			continue;	/* records were overwritten before we read them: go on */
		break;			/* EAGAIN: nothing more now */
	}
}

/* ------------------------------------------------------------------------------------------ */
/* input lines */

/*
 * Bytes read from the channel wait in raw[] and are cut into lines only while the line queue
 * has room; while it is full the agent stops reading, so nothing is ever dropped here (the tty
 * layer and QEMU hold the rest).
 */
static char raw[4 * MAX_LINE];
static size_t rawlen;
static int in_discard;		/* inside a line longer than MAX_LINE */
static int in_eof;

static char inq[INQ_LINES][MAX_LINE + 1];
static int inq_head, inq_count;

static int valid_nonce(const char *s)
{
	size_t n = strlen(s), i;

	if (n < 1 || n > 32)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
			return 0;
	}
	return 1;
}

/* V and Q are answered at once, whatever the agent is doing; everything else is queued. */
static void got_line(char *line, size_t n)
{
	if (n > 0 && line[n - 1] == '\r')
		line[--n] = '\0';
	if (n == 0)
		return;
	if (strcmp(line, "V") == 0) {
		send_hello();
		return;
	}
	if (line[0] == 'Q' && (line[1] == ' ' || line[1] == '\0')) {
		const char *nonce = line + 2;

		if (line[1] == ' ' && valid_nonce(nonce)) {
			drain_kmsg();
			ob_reset();
			ob_str("P ");
			ob_str(nonce);
			ob_send();
		} else {
			send_error("bad Q line: want Q <nonce of 1-32 letters or digits>");
		}
		return;
	}
	memcpy(inq[(inq_head + inq_count) % INQ_LINES], line, n + 1);
	inq_count++;
}

static void split_lines(void)
{
	size_t start = 0;

	while (inq_count < INQ_LINES && start < rawlen) {
		char *line = raw + start;
		char *nl = memchr(line, '\n', rawlen - start);
		size_t n;

		if (!nl) {
			if (in_discard || rawlen - start > MAX_LINE) {
				in_discard = 1;		/* drop what we have of it */
				start = rawlen;
			}
			break;
		}
		n = (size_t)(nl - line);
		if (in_discard || n > MAX_LINE) {
			send_error("line longer than %d bytes ignored", MAX_LINE);
			in_discard = 0;
		} else {
			*nl = '\0';
			got_line(line, n);
		}
		start += n + 1;
	}
	memmove(raw, raw + start, rawlen - start);
	rawlen -= start;
}

static void read_channel(void)
{
	ssize_t n;

	if (rawlen == sizeof(raw))
		return;
	n = read(in_fd, raw + rawlen, sizeof(raw) - rawlen);
	if (n == 0) {
		in_eof = 1;
		return;
	}
	if (n < 0)
		return;
	rawlen += (size_t)n;
	split_lines();
}

static int next_queued(char *dst)
{
	if (inq_count == 0)
		return 0;
	strcpy(dst, inq[inq_head]);
	inq_head = (inq_head + 1) % INQ_LINES;
	inq_count--;
	split_lines();	/* room again: lines waiting in raw[] */
	return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* processes: tasks and the helper */

enum { T_NONE, T_ALIVE, T_DEAD };

struct task {
	pid_t pid;
	int state;
	int exiting;		/* an exit op is in flight */
	int killing;		/* killed by teardown: no X line */
	int status;		/* wait status once dead */
};

/* the program being collected or run */
enum { P_IDLE, P_COLLECT, P_BATCH, P_INTER, P_EXEC };
static struct {
	int state;
	long long id;
	int devices, mmio_pages, dus_pages, queue_limit, sva, isolate_ops, isolate_state, ioctl;
	char api[80];
	char algs[264];
	int nops;
	int ntasks;
	char poison[MSG_MAX];	/* first error while collecting */
	int abort;		/* Z arrived during a batch run */
	int cmd_w[MAX_TASKS], cmd_r[MAX_TASKS];
	int res_r, res_w;
	char node[MAX_DEVS][128];	/* last seen node name of each device ("" never seen) */
	dev_t devt[MAX_DEVS];
	int have_devt[MAX_DEVS];
	int mknod_done[MAX_DEVS];
} P;

static struct op ops[MAX_OPS];
static struct task tasks[MAX_TASKS];

/* children that died before the agent learned their pid (a fork result not read yet) */
static struct { pid_t pid; int status; } early[16];
static int n_early;

static struct {
	pid_t pid;
	int done;
	int status;
} helper;

/* the executable of a U line */
static struct {
	pid_t pid;		/* its pid and process group; 0 when none runs */
	int done;
	int status;
	int out_fd;		/* read end of its stdout/stderr pipe; -1 once at EOF */
	unsigned long long relayed, dropped;
} ex = { .out_fd = -1 };

/* the op the agent is waiting for */
static struct {
	int active;
	int task;
	int idx;
	int got;
	int died;
	struct res r;
} cur;

static void send_task_end(int t, int status)
{
	drain_kmsg();
	ob_reset();
	ob_str("X ");
	ob_i64(P.id);
	ob_sp();
	ob_i64(t);
	if (WIFSIGNALED(status)) {
		ob_str(" signal ");
		ob_i64(WTERMSIG(status));
	} else {
		ob_str(" status ");
		ob_i64(WIFEXITED(status) ? WEXITSTATUS(status) : 0);
	}
	ob_send();
}

static void drain_results(void);

static void task_died(int t, int status)
{
	struct task *tk = &tasks[t];

	tk->state = T_DEAD;
	tk->status = status;
	if (cur.active && cur.task == t && !tk->exiting) {
		/* a result written just before dying still counts */
		drain_results();
		if (!cur.got)
			cur.died = 1;
	}
	if (tk->killing)
		return;
	if (tk->exiting && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return;	/* the exit op itself: its R line says so */
	send_task_end(t, status);
}

static void on_reaped(pid_t pid, int status)
{
	int t;

	if (helper.pid > 0 && pid == helper.pid) {
		helper.done = 1;
		helper.status = status;
		helper.pid = 0;
		return;
	}
	if (ex.pid > 0 && pid == ex.pid && !ex.done) {
		ex.done = 1;
		ex.status = status;
		return;
	}
	for (t = 0; t < MAX_TASKS; t++) {
		if (tasks[t].state == T_ALIVE && tasks[t].pid == pid) {
			task_died(t, status);
			return;
		}
	}
	/* an orphan (the agent may be PID 1) or a fork child whose pid is not known yet */
	if (P.state == P_BATCH || P.state == P_INTER) {
		if (n_early < (int)(sizeof(early) / sizeof(early[0]))) {
			early[n_early].pid = pid;
			early[n_early].status = status;
			n_early++;
		}
	}
}

static void reap_all(void)
{
	for (;;) {
		int st;
		pid_t p = waitpid(-1, &st, WNOHANG);

		if (p <= 0)
			break;
		on_reaped(p, st);
	}
}

static void drain_results(void)
{
	struct res r;

	if (P.res_r < 0)
		return;
	for (;;) {
		ssize_t n = read(P.res_r, &r, sizeof(r));

		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(r))
			break;
		if (cur.active && !cur.got && r.task == cur.task && r.idx == cur.idx) {
			cur.r = r;
			cur.got = 1;
		}
		/* anything else is a stale result of an op the agent gave up on */
	}
}

/* Relay what the executable wrote: w lines of at most EXEC_CHUNK bytes, EXEC_OUTPUT_MAX in all
 * (the rest is only counted). Closes the pipe at EOF. */
static void relay_exec_output(void)
{
	char b[EXEC_CHUNK];

	while (ex.out_fd >= 0) {
		ssize_t n = read(ex.out_fd, b, sizeof(b));
		size_t keep;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return;		/* EAGAIN: nothing more now */
		if (n == 0) {
			close(ex.out_fd);
			ex.out_fd = -1;
			return;
		}
		keep = ex.relayed >= EXEC_OUTPUT_MAX ? 0 : EXEC_OUTPUT_MAX - ex.relayed;
		if (keep > (size_t)n)
			keep = (size_t)n;
		ex.dropped += (size_t)n - keep;
		if (keep == 0)
			continue;
		ex.relayed += keep;
		drain_kmsg();	/* kernel log and output stay in the order they happened */
		ob_reset();
		ob_str("w ");
		ob_i64(P.id);
		ob_sp();
		ob_hex(b, keep);
		ob_send();
	}
}

/* one round of the event loop: wait at most timeout_ms (-1: until something happens) */
static void pump(int timeout_ms)
{
	struct pollfd pf[5];
	int n = 0, i_in = -1, i_kmsg = -1, i_sig = -1, i_res = -1, i_ex = -1;
	int r;

	if (rawlen < sizeof(raw) && !in_eof) {
		i_in = n;
		pf[n++] = (struct pollfd){ .fd = in_fd, .events = POLLIN };
	}
	if (kmsg_fd >= 0) {
		i_kmsg = n;
		pf[n++] = (struct pollfd){ .fd = kmsg_fd, .events = POLLIN };
	}
	i_sig = n;
	pf[n++] = (struct pollfd){ .fd = sig_fd, .events = POLLIN };
	if (P.res_r >= 0) {
		i_res = n;
		pf[n++] = (struct pollfd){ .fd = P.res_r, .events = POLLIN };
	}
	if (ex.out_fd >= 0) {
		i_ex = n;
		pf[n++] = (struct pollfd){ .fd = ex.out_fd, .events = POLLIN };
	}
	r = poll(pf, (nfds_t)n, timeout_ms);
	if (sig_fd < 0)
		reap_all();	/* no signalfd: reap on every round instead */
	if (r <= 0)
		return;
	if (i_res >= 0 && pf[i_res].revents)
		drain_results();
	if (i_ex >= 0 && pf[i_ex].revents)
		relay_exec_output();
	if (pf[i_sig].revents) {
		struct signalfd_siginfo si[8];

		while (read(sig_fd, si, sizeof(si)) > 0)
			;
		reap_all();
	}
	if (i_kmsg >= 0 && pf[i_kmsg].revents)
		drain_kmsg();
	if (i_in >= 0 && pf[i_in].revents & (POLLIN | POLLHUP | POLLERR))
		read_channel();
	if (in_eof && opt_stdio && inq_count == 0 && timeout_ms < 0) {
		/* the host closed the channel: nothing will come */
		_exit(0);
	}
	if (in_eof && !opt_stdio) {
		/* a hangup of the serial line; it cannot really happen with CLOCAL, do not spin */
		in_eof = 0;
		usleep(100000);
	}
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Run fn in a child process and wait at most deadline_ms. Returns the child's wait status, or
 * -1 if it did not finish (it is left behind; the host will reboot the VM). */
static int run_helper(int (*fn)(void *), void *arg, int deadline_ms)
{
	long long end = now_ms() + deadline_ms;
	pid_t pid;

	helper.done = 0;
	helper.status = 0;
	pid = fork();
	if (pid < 0)
		return -2;
	if (pid == 0) {
		sigset_t all;

		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		_exit(fn(arg) & 0xff);
	}
	helper.pid = pid;
	while (!helper.done) {
		long long rem = end - now_ms();

		if (rem <= 0) {
			helper.pid = 0;	/* forget it: its exit will be an unknown pid */
			return -1;
		}
		pump(rem > 1000 ? 1000 : (int)rem);
	}
	return helper.status;
}

/* ------------------------------------------------------------------------------------------ */
/* modules (run in the helper process; the return value is an errno, 0 on success) */

struct load_arg {
	const char *path;
	const char *params;
};

static int do_finit_module(void *p)
{
	const struct load_arg *a = p;
	int fd = open(a->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno;
	if (syscall(SYS_finit_module, fd, a->params, 0) != 0)
		return errno == EEXIST ? 0 : errno;
	return 0;
}

static int do_delete_module(void *p)
{
	const char *name = p;
	long long end = now_ms() + RMMOD_RETRY_MS;

	for (;;) {
		if (syscall(SYS_delete_module, name, O_NONBLOCK) == 0)
			return 0;
		if (errno == ENOENT)
			return 0;
		/* EBUSY while the module is still coming or going, EAGAIN while it is in use */
		if ((errno != EBUSY && errno != EAGAIN) || now_ms() >= end)
			return errno;
		usleep(20000);
	}
}

/*
 * The outcome of a module helper (run_helper status): 0, or -1 with a reason in msg naming the
 * action ("insmod", "rmmod") and its object.
 */
static int helper_outcome(int st, const char *action, const char *object, int deadline_ms, char *msg, size_t msglen)
{
	if (st == -1) {
		snprintf(msg, msglen, "%s %s: no answer within %d ms", action, object, deadline_ms);
		return -1;
	}
	if (st < 0 || !WIFEXITED(st)) {
		snprintf(msg, msglen, "%s %s: helper failed (status %d)", action, object, st);
		return -1;
	}
	if (WEXITSTATUS(st) != 0) {
		snprintf(msg, msglen, "%s %s: %s", action, object, strerror(WEXITSTATUS(st)));
		return -1;
	}
	return 0;
}

/* msg gets a reason on failure */
static int load_module(const char *path, const char *params, char *msg, size_t msglen)
{
	struct load_arg a = { path, params };

	return helper_outcome(run_helper(do_finit_module, &a, INSMOD_DEADLINE), "insmod", path, INSMOD_DEADLINE, msg, msglen);
}

static int module_loaded(const char *name)
{
	char p[128];

	snprintf(p, sizeof(p), "/sys/module/%s", name);
	return access(p, F_OK) == 0;
}

static int unload_module(const char *name, char *msg, size_t msglen)
{
	if (!module_loaded(name))
		return 0;
	return helper_outcome(run_helper(do_delete_module, (void *)name, RMMOD_DEADLINE), "rmmod", name, RMMOD_DEADLINE, msg, msglen);
}

/* uacce.ko and the modules it needs, once at startup, in the order of MOD_DIR/load-order */
static void load_boot_modules(void)
{
	char list[4096];
	char msg[MSG_MAX];
	int fd = open(MOD_DIR "/load-order", O_RDONLY | O_CLOEXEC);
	ssize_t n = -1;
	char *line, *save = NULL;

	if (fd >= 0) {
		n = read(fd, list, sizeof(list) - 1);
		close(fd);
	}
	if (n < 0) {
		strcpy(list, "uacce.ko\n");
		n = (ssize_t)strlen(list);
	}
	list[n] = '\0';
	for (line = strtok_r(list, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char path[512];

		if (line[0] == '\0' || line[0] == '#')
			continue;
		if (strchr(line, '/')) {
			send_error("load-order: %s: only file names in " MOD_DIR " are allowed", line);
			continue;
		}
		snprintf(path, sizeof(path), MOD_DIR "/%s", line);
		if (load_module(path, "", msg, sizeof(msg)) != 0)
			send_error("boot module: %s", msg);
	}
}

/* ------------------------------------------------------------------------------------------ */
/* device nodes */

/* Find the current uacce class entry of device dev: the one whose name starts with svt<dev>-.
 * Updates the last seen name and major:minor. Returns 1 if present now. */
static int scan_node(int dev)
{
	char prefix[32], best[128] = "";
	DIR *d;
	struct dirent *e;
	size_t pl;

	snprintf(prefix, sizeof(prefix), SVT_UACCE_NAME_FMT "-", dev);
	pl = strlen(prefix);
	d = opendir(UACCE_CLASS);
	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, prefix, pl) != 0 || strlen(e->d_name) >= sizeof(best))
			continue;
		/* two entries can only coexist in a broken kernel; pick one deterministically */
		if (best[0] == '\0' || strcmp(e->d_name, best) < 0)
			strcpy(best, e->d_name);
	}
	closedir(d);
	if (best[0] == '\0')
		return 0;
	strcpy(P.node[dev], best);
	{
		char p[256], v[64];
		unsigned int ma, mi;
		int fd;
		ssize_t n;

		snprintf(p, sizeof(p), UACCE_CLASS "/%s/dev", best);
		fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			n = read(fd, v, sizeof(v) - 1);
			close(fd);
			if (n > 0) {
				v[n] = '\0';
				if (sscanf(v, "%u:%u", &ma, &mi) == 2) {
					P.devt[dev] = makedev(ma, mi);
					P.have_devt[dev] = 1;
				}
			}
		}
	}
	return 1;
}

static void node_name(int dev, char *dst, size_t n)
{
	if (P.node[dev][0])
		snprintf(dst, n, "%s", P.node[dev]);
	else
		snprintf(dst, n, SVT_UACCE_NAME_FMT "-none", dev);	/* never seen: ENOENT */
}

/* wait until every device has a class entry and a /dev node (devtmpfs makes it; if /dev is not
 * devtmpfs, make it ourselves) */
static int wait_nodes(char *msg, size_t msglen)
{
	long long end = now_ms() + NODES_DEADLINE;
	int dev;

	for (;;) {
		int missing = -1;

		for (dev = 0; dev < P.devices; dev++) {
			char p[200];

			if (!scan_node(dev)) {
				missing = dev;
				break;
			}
			snprintf(p, sizeof(p), "/dev/%s", P.node[dev]);
			if (access(p, F_OK) != 0) {
				if (P.have_devt[dev] && now_ms() + NODES_DEADLINE / 2 > end)
					mknod(p, S_IFCHR | 0600, P.devt[dev]);
				missing = dev;
				break;
			}
		}
		if (missing < 0)
			return 0;
		if (now_ms() >= end) {
			snprintf(msg, msglen, "device %d: no node " UACCE_CLASS "/" SVT_UACCE_NAME_FMT
				 "-* with /dev entry after %d ms", missing, missing, NODES_DEADLINE);
			return -1;
		}
		pump(10);
	}
}

/* ------------------------------------------------------------------------------------------ */
/* tasks (everything below up to the agent's program handling runs in task processes) */

static int t_me;
static int t_fds[MAX_SLOTS];
static sigjmp_buf t_fault_env;
static volatile sig_atomic_t t_in_op;
static volatile sig_atomic_t t_fault_sig;
static struct cmd t_cmd;
static struct res t_res;

static void t_on_fault(int sig)
{
	if (t_in_op) {
		t_in_op = 0;
		t_fault_sig = sig;
		siglongjmp(t_fault_env, 1);
	}
	/* a fault outside an op is a bug of the agent: die of it so that the host sees X */
	signal(sig, SIG_DFL);
}

static uint64_t slot_addr(int64_t slot)
{
	return MAP_BASE + (uint64_t)slot * MAP_STRIDE;
}

static void res_data(struct res *r, const char *s, size_t n)
{
	if (n > DATA_MAX)
		n = DATA_MAX;
	memcpy(r->data, s, n);
	r->dlen = (uint32_t)n;
}

static void res_dataf(struct res *r, const char *fmt, ...)
{
	char b[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	if (n > 0)
		res_data(r, b, n >= (int)sizeof(b) ? sizeof(b) - 1 : (size_t)n);
}

static void res_auxf(struct res *r, const char *fmt, ...)
{
	char b[AUX_MAX + 1];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > AUX_MAX)
		n = AUX_MAX;
	memcpy(r->aux, b, (size_t)n);
	r->alen = (uint32_t)n;
}

/* mmap/mremap: -1 with errno in *e, or 0 with the address as the result's aux */
static int map_result(struct res *r, void *got, int *e)
{
	*e = errno;
	if (got == MAP_FAILED)
		return -1;
	res_auxf(r, "0x%llx", (unsigned long long)(uintptr_t)got);
	*e = 0;
	return 0;
}

static int fd_of(int64_t slot)
{
	return slot >= 0 && slot < MAX_SLOTS ? t_fds[slot] : -1;
}

/* "0x..." -> value; 0 if the string is empty */
static int parse_value(const char *s, uint64_t *v)
{
	char *end;

	if (s[0] == '\0') {
		*v = 0;
		return 0;
	}
	if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X') || s[2] == '\0')
		return -1;
	errno = 0;
	*v = strtoull(s + 2, &end, 16);
	return errno || *end ? -1 : 0;
}

static void t_submit(const struct op *o, struct res *r)
{
	volatile uint32_t *mmio = (volatile uint32_t *)(uintptr_t)slot_addr(o->a[0]);
	volatile uint8_t *dus = (volatile uint8_t *)(uintptr_t)slot_addr(o->a[1]);
	uint64_t target = slot_addr(o->a[3]) + (uint64_t)o->a[4] * SVT_PAGE_SIZE + (uint64_t)o->a[5];
	uint64_t value;
	uint32_t tail, head, status;
	volatile uint8_t *desc;
	struct timespec t0, t1;
	long waited_us = 0;
	int done = 0;

	if (parse_value(o->str, &value) != 0) {
		r->ret = -1;
		r->err = EINVAL;
		return;
	}
	tail = mmio[SVT_REG_DOORBELL / 4];
	desc = dus + (tail % SVT_RING_SLOTS) * SVT_DESC_SIZE;
	*(volatile uint32_t *)(desc + SVT_DESC_OPCODE) = (uint32_t)o->a[2];
	*(volatile uint32_t *)(desc + SVT_DESC_STATUS) = 0;
	*(volatile uint64_t *)(desc + SVT_DESC_ADDR) = target;
	*(volatile uint64_t *)(desc + SVT_DESC_VALUE) = value;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);	/* descriptor before doorbell */
	mmio[SVT_REG_DOORBELL / 4] = tail + 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		head = mmio[SVT_REG_CQ_HEAD / 4];
		if ((int32_t)(head - (tail + 1)) >= 0) {
			done = 1;
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		waited_us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
		if (waited_us >= SUBMIT_WAIT_US)
			break;
		usleep(SUBMIT_POLL_US);
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);	/* completion before the descriptor's status */
	if (done && o->a[6])
		mmio[SVT_REG_ACK / 4] = mmio[SVT_REG_CQ_HEAD / 4];
	status = *(volatile uint32_t *)(desc + SVT_DESC_STATUS);
	switch (status) {
	case SVT_STATUS_OK:
		if (o->a[2] == SVT_OP_READ64)
			res_dataf(r, "done 0x%llx",
				  (unsigned long long)*(volatile uint64_t *)(desc + SVT_DESC_RESULT));
		else
			res_dataf(r, "done");
		break;
	case SVT_STATUS_FAULT:
		res_dataf(r, "fault");
		break;
	case SVT_STATUS_BADOP:
		res_dataf(r, "badop");
		break;
	default:
		res_dataf(r, "status %u", status);
		break;
	}
	if (done) {
		r->ret = 0;
	} else {
		r->ret = -1;
		r->err = ETIMEDOUT;
	}
}

static int write_file(const char *path, const char *s, size_t n)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t w;

	if (fd < 0)
		return -1;
	w = write(fd, s, n);
	if (w < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	close(fd);
	return (int)w;
}

/* Perform one op in this task. Returns 1 in a child created by fork: it is a new task now. */
static int t_exec(const struct cmd *c, struct res *r)
{
	const struct op *o = &c->op;
	const int64_t *a = o->a;
	long long ret = 0;
	int e = 0;

	errno = 0;
	switch (o->opcode) {
	case OP_OPEN: {
		char path[64];
		const char *p = c->path;
		int fd;

		if (a[2] == 2) {
			snprintf(path, sizeof(path), "/proc/self/fd/%d", fd_of(a[3]));
			p = path;
		}
		fd = open(p, O_RDWR | O_CLOEXEC);
		e = errno;
		ret = fd;
		t_fds[a[0]] = fd;
		res_data(r, p, strlen(p));
		break;
	}
	case OP_CLOSE:
		ret = close(fd_of(a[0]));
		e = errno;
		t_fds[a[0]] = -1;
		break;
	case OP_DUP: {
		int fd = dup(fd_of(a[0]));

		e = errno;
		ret = fd;
		t_fds[a[1]] = fd;
		break;
	}
	case OP_MMAP:
	case OP_ALLOC: {
		void *want = (void *)(uintptr_t)slot_addr(a[0]);
		void *got;

		if (o->opcode == OP_MMAP)
			got = mmap(want, (size_t)a[3] * SVT_PAGE_SIZE, (int)a[4],
				   a[5] ? MAP_SHARED : MAP_PRIVATE, fd_of(a[1]),
				   (off_t)a[2] * SVT_PAGE_SIZE);
		else
			got = mmap(want, (size_t)a[1] * SVT_PAGE_SIZE, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		ret = map_result(r, got, &e);
		break;
	}
	case OP_MUNMAP:
		ret = munmap((void *)(uintptr_t)(slot_addr(a[0]) + (uint64_t)a[1] * SVT_PAGE_SIZE),
			     (size_t)a[2] * SVT_PAGE_SIZE);
		e = errno;
		break;
	case OP_MREMAP: {
		void *old = (void *)(uintptr_t)(slot_addr(a[0]) + (uint64_t)a[1] * SVT_PAGE_SIZE);
		int flags = 0;
		void *got;

		if (a[4] != 0)
			flags |= MREMAP_MAYMOVE;
		if (a[4] & 2)
			flags |= MREMAP_DONTUNMAP;
		if (a[4] != 0 && a[5] >= 0)
			flags |= MREMAP_FIXED;
		got = mremap(old, (size_t)a[2] * SVT_PAGE_SIZE, (size_t)a[3] * SVT_PAGE_SIZE, flags,
			     (void *)(uintptr_t)(a[5] >= 0 ? slot_addr(a[5]) : 0));
		ret = map_result(r, got, &e);
		break;
	}
	case OP_MADVISE:
		ret = madvise((void *)(uintptr_t)(slot_addr(a[0]) + (uint64_t)a[1] * SVT_PAGE_SIZE),
			      (size_t)a[2] * SVT_PAGE_SIZE, MADV_DOFORK);
		e = errno;
		break;
	case OP_TOUCH: {
		volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)
			(slot_addr(a[0]) + (uint64_t)a[1] * SVT_PAGE_SIZE + (uint64_t)a[2]);
		uint64_t v;

		if (a[3] == 1) {
			if (parse_value(o->str, &v) != 0) {
				ret = -1;
				e = EINVAL;
				break;
			}
			*p = v;
		} else {
			v = *p;
			res_dataf(r, "0x%llx", (unsigned long long)v);
		}
		break;
	}
	case OP_SUBMIT:
		t_submit(o, r);
		return 0;
	case OP_IOCTL:
		ret = ioctl(fd_of(a[0]), (unsigned long)(uint32_t)a[1], 0UL);
		e = errno;
		break;
	case OP_POLL: {
		struct pollfd pf = { .fd = fd_of(a[0]), .events = POLLIN };

		ret = poll(&pf, 1, (int)a[1]);
		e = errno;
		res_dataf(r, "0x%x", (unsigned int)(uint16_t)pf.revents);
		break;
	}
	case OP_FORK: {
		/* the new task's parent is the agent (CLONE_PARENT), which reaps it */
		long pid = syscall(SYS_clone, (unsigned long)(CLONE_PARENT | SIGCHLD), 0UL, 0UL, 0UL, 0UL);

		if (pid == 0) {
			t_me = (int)a[0];
			return 1;
		}
		e = errno;
		if (pid < 0) {
			ret = -1;
		} else {
			e = 0;
			r->child_pid = (int32_t)pid;
			res_auxf(r, "%ld", pid);
		}
		break;
	}
	case OP_EXIT:
		_exit(0);
	case OP_REMOVE:
	case OP_ADD:
		ret = write_file(c->path, o->str, o->slen);
		e = errno;
		if (ret >= 0)
			ret = 0;
		break;
	case OP_SYSFS_READ: {
		char b[DATA_MAX];
		int fd = open(c->path, O_RDONLY | O_CLOEXEC);
		ssize_t n;

		if (fd < 0) {
			ret = -1;
			e = errno;
			break;
		}
		n = read(fd, b, sizeof(b));
		e = errno;
		close(fd);
		ret = n;
		if (n > 0)
			res_data(r, b, (size_t)n);
		break;
	}
	case OP_SYSFS_WRITE:
		ret = write_file(c->path, o->str, o->slen);
		e = errno;
		break;
	default:
		ret = -1;
		e = ENOSYS;
		break;
	}
	r->ret = ret;
	r->err = ret < 0 ? (e ? e : EIO) : 0;
	return 0;
}

/* t_exec with SIGSEGV/SIGBUS caught; uses the globals t_cmd/t_res so nothing is clobbered */
static int t_exec_guarded(void)
{
	int child;

	if (sigsetjmp(t_fault_env, 1) != 0) {
		t_res.ret = -1;
		t_res.err = 0;
		t_res.sig = t_fault_sig;
		return 0;
	}
	t_in_op = 1;
	child = t_exec(&t_cmd, &t_res);
	t_in_op = 0;
	return child;
}

static void t_loop(void)
{
	for (;;) {
		ssize_t n = read(P.cmd_r[t_me], &t_cmd, sizeof(t_cmd));

		if (n == 0)
			_exit(0);	/* the agent closed the pipes: the program is over */
		if (n < 0) {
			if (errno == EINTR)
				continue;
			_exit(3);
		}
		if (n != (ssize_t)sizeof(t_cmd))
			continue;
		memset(&t_res, 0, sizeof(t_res));
		t_res.task = t_me;
		t_res.idx = t_cmd.op.idx;
		if (t_exec_guarded())
			continue;	/* the new task waits for its first op */
		{
			const char *p = (const char *)&t_res;
			size_t left = sizeof(t_res);

			while (left > 0) {
				ssize_t w = write(P.res_w, p, left);

				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0)
					_exit(4);
				p += w;
				left -= (size_t)w;
			}
		}
	}
}

/* in the child after fork(): become task 0 */
static void t_start(void)
{
	struct sigaction sa;
	sigset_t none;
	int i, fd;

	close_fd(&kmsg_fd);
	close_fd(&sig_fd);
	if (out_fd != in_fd)
		close_fd(&out_fd);
	close_fd(&in_fd);
	close_fd(&P.res_r);
	for (i = 0; i < MAX_TASKS; i++)
		close_fd(&P.cmd_w[i]);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGCHLD, SIG_DFL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = t_on_fault;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	/* the agent is exempt from the OOM killer; its tasks are ordinary processes */
	fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "0", 1) < 0)
			logmsg("cannot reset oom_score_adj of a task");
		close(fd);
	}
	for (i = 0; i < MAX_SLOTS; i++)
		t_fds[i] = -1;
	t_me = 0;
	t_loop();
	_exit(0);
}

/* ------------------------------------------------------------------------------------------ */
/* host line parsing */

#define MAX_TOK 16

static int split(char *line, char **tok)
{
	int n = 0;
	char *p = line;

	for (;;) {
		char *sp;

		if (n == MAX_TOK)
			return -1;
		if (*p == '\0' || *p == ' ')
			return -1;	/* empty field: two spaces, or a space at either end */
		tok[n++] = p;
		sp = strchr(p, ' ');
		if (!sp)
			return n;
		*sp = '\0';
		p = sp + 1;
	}
}

/* decimal integer as wire.ts writes it: -?[0-9]{1,20}, within int64 and [lo, hi] */
static int num(const char *s, long long lo, long long hi, long long *v)
{
	const char *p = s;
	char *end;
	size_t nd;

	if (*p == '-')
		p++;
	nd = strspn(p, "0123456789");
	if (nd < 1 || nd > 20 || p[nd] != '\0')
		return -1;
	errno = 0;
	*v = strtoll(s, &end, 10);
	if (errno || *end)
		return -1;
	return *v < lo || *v > hi ? -1 : 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* hex (or "-") to a NUL-free C string of at most max bytes; returns length or -1 */
static int unhex(const char *s, char *dst, size_t max)
{
	size_t n = strlen(s), i;

	if (strcmp(s, "-") == 0) {
		dst[0] = '\0';
		return 0;
	}
	if (n == 0 || n % 2 || n / 2 > max)
		return -1;
	for (i = 0; i < n / 2; i++) {
		int h = hexval(s[2 * i]), l = hexval(s[2 * i + 1]);

		if (h < 0 || l < 0 || (h == 0 && l == 0))
			return -1;
		dst[i] = (char)(h << 4 | l);
	}
	dst[n / 2] = '\0';
	return (int)(n / 2);
}

static int only_chars(const char *s, const char *allowed)
{
	return s[strspn(s, allowed)] == '\0';
}

#define NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

/* Parse an O line into *o; on error, fill err. */
static int parse_op(char **tok, int ntok, struct op *o, char *err, size_t errlen)
{
	long long v[11];
	int i, sl;
	const int64_t *a = o->a;

#define BAD(...) do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)
	if (ntok != 13)
		BAD("O: want 13 fields, got %d", ntok);
	if (num(tok[1], 0, MAX_OPS - 1, &v[0]))
		BAD("O: op index %s not in 0..%d", tok[1], MAX_OPS - 1);
	if (num(tok[2], 0, MAX_TASKS - 1, &v[1]))
		BAD("O %s: task %s not in 0..%d", tok[1], tok[2], MAX_TASKS - 1);
	if (num(tok[3], 1, OP_LAST, &v[2]))
		BAD("O %s: opcode %s not in 1..%d", tok[1], tok[3], OP_LAST);
	o->idx = (int32_t)v[0];
	o->task = (int32_t)v[1];
	o->opcode = (int32_t)v[2];
	for (i = 0; i < 8; i++) {
		if (num(tok[4 + i], -(1LL << 62), 1LL << 62, &v[3]))
			BAD("O %s: argument a%d (%s) is not a number", tok[1], i, tok[4 + i]);
		o->a[i] = v[3];
	}
	sl = unhex(tok[12], o->str, MAX_STR);
	if (sl < 0)
		BAD("O %s: string argument is not hex of at most %d bytes without NUL", tok[1], MAX_STR);
	o->slen = (uint32_t)sl;

	/* per opcode ranges; a value outside them is a host bug, not a test */
#define R(i, lo, hi, what) \
	do { if (a[i] < (lo) || a[i] > (hi)) BAD("O %d: a%d (%s) = %lld not in %lld..%lld", \
		o->idx, i, what, (long long)a[i], (long long)(lo), (long long)(hi)); } while (0)
#define FD(i)	R(i, 0, MAX_SLOTS - 1, "descriptor slot")
#define MAP(i)	R(i, 0, MAX_SLOTS - 1, "mapping slot")
#define PAGES(i) R(i, 0, 64, "pages")
#define PAGE(i)	R(i, 0, 63, "page")
#define DEV(i)	R(i, 0, MAX_DEVS - 1, "device")
	switch (o->opcode) {
	case OP_OPEN:
		FD(0); DEV(1); R(2, 0, 2, "via"); R(3, -1, MAX_SLOTS - 1, "of");
		if (a[2] == 2 && a[3] < 0)
			BAD("O %d: open via procfd needs a descriptor slot in a3", o->idx);
		break;
	case OP_CLOSE:
		FD(0);
		break;
	case OP_DUP:
		FD(0); FD(1);
		break;
	case OP_MMAP:
		MAP(0); FD(1); R(2, 0, 1024, "region"); PAGES(3);
		if (a[4] != 0 && a[4] != 1 && a[4] != 3)
			BAD("O %d: prot %lld is not 0, 1 or 3", o->idx, (long long)a[4]);
		R(5, 0, 1, "shared");
		break;
	case OP_ALLOC:
		MAP(0); PAGES(1);
		break;
	case OP_MUNMAP:
	case OP_MADVISE:
		MAP(0); PAGE(1); PAGES(2);
		if (o->opcode == OP_MADVISE)
			R(3, 0, 0, "advice");
		break;
	case OP_MREMAP:
		MAP(0); PAGE(1); PAGES(2); PAGES(3); R(4, 0, 3, "flags"); R(5, -1, MAX_SLOTS - 1, "to");
		break;
	case OP_TOUCH:
		MAP(0); PAGE(1); R(2, 0, 4088, "offset"); R(3, 0, 1, "access");
		if (a[2] % 8)
			BAD("O %d: offset %lld is not a multiple of 8", o->idx, (long long)a[2]);
		if (a[3] == 1) {
			uint64_t x;

			if (parse_value(o->str, &x) != 0 || o->slen == 0)
				BAD("O %d: touch write needs a value 0x...", o->idx);
		}
		break;
	case OP_SUBMIT:
		MAP(0); MAP(1); R(2, 0, 0xffffffffLL, "opcode"); MAP(3); PAGE(4);
		R(5, 0, 4088, "offset"); R(6, 0, 1, "ack");
		if (a[5] % 8)
			BAD("O %d: offset %lld is not a multiple of 8", o->idx, (long long)a[5]);
		{
			uint64_t x;

			if (parse_value(o->str, &x) != 0)
				BAD("O %d: submit value must be 0x... or empty", o->idx);
		}
		break;
	case OP_IOCTL:
		FD(0); R(1, 0, 0xffffffffLL, "cmd");
		break;
	case OP_POLL:
		FD(0); R(1, 0, 10000, "timeout ms");
		break;
	case OP_FORK:
		R(0, 1, MAX_TASKS - 1, "child task");
		break;
	case OP_EXIT:
		break;
	case OP_REMOVE:
	case OP_ADD:
		DEV(0);
		break;
	case OP_SYSFS_READ:
	case OP_SYSFS_WRITE:
		DEV(0); R(1, 0, N_SYSFS_ATTRS - 1, "attribute");
		break;
	}
	return 0;
#undef R
#undef FD
#undef MAP
#undef PAGES
#undef PAGE
#undef DEV
#undef BAD
}

/* ------------------------------------------------------------------------------------------ */
/* running programs */

static void send_result(int idx, const struct res *r)
{
	drain_kmsg();
	ob_reset();
	ob_str("R ");
	ob_i64(P.id);
	ob_sp();
	ob_i64(idx);
	ob_sp();
	ob_i64(r->ret);
	ob_sp();
	ob_i64(r->err);
	ob_sp();
	ob_i64(r->sig);
	ob_sp();
	/* aux is short: write it first into the budget so that a long data field is what gets cut */
	{
		size_t alen = r->alen > AUX_MAX ? AUX_MAX : r->alen;
		size_t dlen = r->dlen > DATA_MAX ? DATA_MAX : r->dlen;
		size_t room = MAX_LINE - ol - 2 - 2 * (alen ? alen : 1);

		if (2 * dlen > room)
			dlen = room / 2;
		ob_hex(r->data, dlen);
		ob_sp();
		ob_hex(r->aux, alen);
	}
	ob_send();
}

static void send_simple_result(int idx, long long ret, int err)
{
	struct res r;

	memset(&r, 0, sizeof(r));
	r.ret = ret;
	r.err = err;
	send_result(idx, &r);
}

/* the op's task died while doing it: errno -1 and the signal that killed it (0: it exited) */
static void send_died_result(int idx, int status)
{
	struct res r;

	memset(&r, 0, sizeof(r));
	r.ret = -1;
	r.err = -1;
	r.sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	send_result(idx, &r);
}

static void send_finished(int status, const char *msg)
{
	drain_kmsg();
	ob_reset();
	ob_str("F ");
	ob_i64(P.id);
	ob_sp();
	ob_i64(status);
	ob_sp();
	ob_hex(msg, strlen(msg));
	ob_send();
}

static int op_deadline_ms(const struct op *o)
{
	if (o->opcode == OP_POLL)
		return (int)o->a[1] + POLL_EXTRA;
	if (o->opcode == OP_SUBMIT)
		return SUBMIT_DEADLINE;
	return OP_DEADLINE;
}

/* What the agent resolves for a task before sending it an op. */
static void resolve(struct cmd *c)
{
	const struct op *o = &c->op;
	char name[128];
	int dev;

	c->path[0] = '\0';
	switch (o->opcode) {
	case OP_OPEN:
		dev = (int)o->a[1];
		if (o->a[2] == 2)
			break;
		scan_node(dev);
		if (o->a[2] == 0) {
			node_name(dev, name, sizeof(name));
			snprintf(c->path, sizeof(c->path), "/dev/%s", name);
		} else {
			snprintf(c->path, sizeof(c->path), "/tmp/" SVT_UACCE_NAME_FMT ".node", dev);
			if (!P.mknod_done[dev] && P.have_devt[dev]) {
				unlink(c->path);
				if (mknod(c->path, S_IFCHR | 0600, P.devt[dev]) == 0)
					P.mknod_done[dev] = 1;
			}
		}
		break;
	case OP_REMOVE:
	case OP_ADD:
		snprintf(c->path, sizeof(c->path), DRIVER_DIR "/%s",
			 o->opcode == OP_REMOVE ? "unbind" : "bind");
		snprintf(c->op.str, sizeof(c->op.str), SVT_DRIVER_NAME ".%d", (int)o->a[0]);
		c->op.slen = (uint32_t)strlen(c->op.str);
		break;
	case OP_SYSFS_READ:
	case OP_SYSFS_WRITE:
		dev = (int)o->a[0];
		scan_node(dev);
		node_name(dev, name, sizeof(name));
		snprintf(c->path, sizeof(c->path), UACCE_CLASS "/%s/%s", name, sysfs_attrs[o->a[1]]);
		break;
	default:
		break;
	}
}

static void adopt_child(int t, pid_t pid)
{
	int i;

	tasks[t].pid = pid;
	tasks[t].state = T_ALIVE;
	tasks[t].exiting = 0;
	tasks[t].killing = 0;
	for (i = 0; i < n_early; i++) {
		if (early[i].pid == pid) {
			int st = early[i].status;

			early[i] = early[--n_early];
			task_died(t, st);
			return;
		}
	}
}

/* Run one op. Returns 0, or -1 if it missed its deadline (T sent; the program must stop). */
static int run_op(const struct op *o)
{
	struct task *tk = &tasks[o->task];
	static struct cmd c;
	long long deadline;
	int is_exit = o->opcode == OP_EXIT;

	if (o->task >= P.ntasks || tk->state != T_ALIVE) {
		send_simple_result(o->idx, -1, ESRCH);
		return 0;
	}
	if (o->opcode == OP_FORK && (o->a[0] >= P.ntasks || tasks[o->a[0]].state != T_NONE)) {
		/* the host gave a task index that is out of range or already used */
		send_simple_result(o->idx, -1, EEXIST);
		return 0;
	}
	memset(&c, 0, sizeof(c));
	c.op = *o;
	resolve(&c);
	if (is_exit)
		tk->exiting = 1;

	memset(&cur, 0, sizeof(cur));
	cur.active = 1;
	cur.task = o->task;
	cur.idx = o->idx;
	{
		const char *p = (const char *)&c;
		size_t left = sizeof(c);

		while (left > 0) {
			ssize_t w = write(P.cmd_w[o->task], p, left);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break;	/* EPIPE: no task is left to read it; the reap says why */
			p += w;
			left -= (size_t)w;
		}
	}
	deadline = now_ms() + op_deadline_ms(o);
	for (;;) {
		long long rem;

		if (cur.got || cur.died)
			break;
		if (is_exit && tk->state == T_DEAD)
			break;
		rem = deadline - now_ms();
		if (rem <= 0) {
			cur.active = 0;
			tk->exiting = 0;
			drain_kmsg();
			ob_reset();
			ob_str("T ");
			ob_i64(P.id);
			ob_sp();
			ob_i64(o->idx);
			ob_sp();
			ob_i64(op_deadline_ms(o));
			ob_send();
			return -1;
		}
		pump(rem > 1000 ? 1000 : (int)rem);
	}
	cur.active = 0;
	if (is_exit) {
		int st = tk->status;

		tk->exiting = 0;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			send_simple_result(o->idx, 0, 0);
		else
			send_died_result(o->idx, st);	/* after the X line task_died sent */
		return 0;
	}
	if (cur.died) {
		send_died_result(o->idx, tk->status);	/* after the X line task_died sent */
		return 0;
	}
	send_result(o->idx, &cur.r);
	if (o->opcode == OP_FORK && cur.r.ret == 0 && cur.r.child_pid > 0)
		adopt_child((int)o->a[0], cur.r.child_pid);
	return 0;
}

static void program_reset(void)
{
	int i;

	for (i = 0; i < MAX_TASKS; i++) {
		close_fd(&P.cmd_w[i]);
		close_fd(&P.cmd_r[i]);
	}
	close_fd(&P.res_r);
	close_fd(&P.res_w);
	memset(tasks, 0, sizeof(tasks));
	n_early = 0;
	P.state = P_IDLE;
	P.nops = 0;
	P.poison[0] = '\0';
	P.abort = 0;
}

/* Kill every task, wait for them, unload the module, send F. extra: why the program ended early. */
static void teardown(const char *extra)
{
	char msg[MSG_MAX] = "";
	long long end;
	int i, status = 0, stuck = 0;

	if (extra && extra[0]) {
		snprintf(msg, sizeof(msg), "%s", extra);
		status = 1;
	}
	for (i = 0; i < MAX_TASKS; i++) {
		if (tasks[i].state == T_ALIVE) {
			tasks[i].killing = 1;
			kill(tasks[i].pid, SIGKILL);
		}
	}
	end = now_ms() + KILL_DEADLINE;
	for (;;) {
		int alive = 0;

		for (i = 0; i < MAX_TASKS; i++)
			alive += tasks[i].state == T_ALIVE;
		if (!alive)
			break;
		if (now_ms() >= end) {
			stuck = alive;
			break;
		}
		pump(50);
	}
	if (stuck) {
		size_t l = strlen(msg);

		snprintf(msg + l, sizeof(msg) - l, "%s%d task(s) did not die within %d ms",
			 l ? "; " : "", stuck, KILL_DEADLINE);
		status = 1;
	}
	for (i = 0; i < MAX_DEVS; i++) {
		char p[64];

		if (P.mknod_done[i]) {
			snprintf(p, sizeof(p), "/tmp/" SVT_UACCE_NAME_FMT ".node", i);
			unlink(p);
		}
	}
	program_reset();
	if (!opt_no_module) {
		char why[MSG_MAX / 2];

		if (unload_module(TEST_MODULE, why, sizeof(why)) != 0) {
			size_t l = strlen(msg);

			snprintf(msg + l, sizeof(msg) - l, "%s%s", l ? "; " : "", why);
			status = 1;
		}
	}
	send_finished(status, msg);
}

/* Fresh test device: (re)load the module with the program's parameters and wait for its nodes.
 * On failure msg says why and the module is not loaded. */
static int setup_device(char *msg, size_t msglen)
{
	memset(P.node, 0, sizeof(P.node));
	memset(P.have_devt, 0, sizeof(P.have_devt));
	memset(P.mknod_done, 0, sizeof(P.mknod_done));
	memset(tasks, 0, sizeof(tasks));
	n_early = 0;
	if (!opt_no_module) {
		char params[512];

		if (unload_module(TEST_MODULE, msg, msglen) != 0)
			return -1;
		snprintf(params, sizeof(params),
			 "devices=%d mmio_pages=%d dus_pages=%d queue_limit=%d sva=%d isolate_ops=%d "
			 "isolate_state=%d ioctl=%d api=%s algs=%s",
			 P.devices, P.mmio_pages, P.dus_pages, P.queue_limit, P.sva, P.isolate_ops,
			 P.isolate_state, P.ioctl, P.api, P.algs);
		if (load_module(MOD_DIR "/" TEST_MODULE ".ko", params, msg, msglen) != 0)
			return -1;
		if (wait_nodes(msg, msglen) != 0) {
			char why[MSG_MAX / 2];

			if (unload_module(TEST_MODULE, why, sizeof(why)) != 0) {
				size_t l = strlen(msg);

				snprintf(msg + l, msglen - l, "; %s", why);
			}
			return -1;
		}
	}
	return 0;
}

/* Load the module, wait for the nodes, send S, start task 0. Sends F itself on failure. */
static int setup_program(void)
{
	char msg[MSG_MAX];
	int i, p[2];
	pid_t pid;

	if (setup_device(msg, sizeof(msg)) != 0)
		goto fail;
	for (i = 0; i < MAX_TASKS; i++) {
		if (pipe2(p, O_CLOEXEC) != 0)
			goto pipes;
		P.cmd_r[i] = p[0];
		P.cmd_w[i] = p[1];
	}
	if (pipe2(p, O_CLOEXEC) != 0)
		goto pipes;
	P.res_r = p[0];
	P.res_w = p[1];
	fcntl(P.res_r, F_SETFL, O_NONBLOCK);

	ob_reset();
	ob_str("S ");
	ob_i64(P.id);
	ob_send();

	pid = fork();
	if (pid < 0) {
		snprintf(msg, sizeof(msg), "fork of task 0: %s", strerror(errno));
		teardown(msg);
		return -1;
	}
	if (pid == 0)
		t_start();
	tasks[0].pid = pid;
	tasks[0].state = T_ALIVE;
	/* the agent keeps only the write ends of the command pipes and the read end of results */
	for (i = 0; i < MAX_TASKS; i++)
		close_fd(&P.cmd_r[i]);
	close_fd(&P.res_w);
	return 0;

pipes:
	snprintf(msg, sizeof(msg), "pipe: %s", strerror(errno));
	program_reset();
	if (!opt_no_module) {
		char why[MSG_MAX / 2];

		unload_module(TEST_MODULE, why, sizeof(why));
	}
fail:
	program_reset();
	send_finished(1, msg);
	return -1;
}

/* lines that arrive while a batch program runs */
static void batch_take_lines(void)
{
	char line[MAX_LINE + 1];

	while (next_queued(line)) {
		long long id;

		if (line[0] == 'Z' && line[1] == ' ' && num(line + 2, 0, LLONG_MAX, &id) == 0 && id == P.id)
			P.abort = 1;
		else
			send_error("busy running program %lld: only Q, V and Z %lld are accepted", P.id, P.id);
	}
}

static void run_batch(void)
{
	int i;

	if (setup_program() != 0)
		return;
	P.state = P_BATCH;
	for (i = 0; i < P.nops; i++) {
		batch_take_lines();
		if (P.abort)
			break;
		if (run_op(&ops[i]) != 0) {
			char m[96];

			snprintf(m, sizeof(m), "op %d did not finish within its deadline", ops[i].idx);
			teardown(m);
			return;
		}
	}
	batch_take_lines();
	teardown(NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* running an executable (U): a reproducer, with the program's test device set up around it */

/* in the child: become the executable, in a process group of its own, with default signals */
static void exec_child(const char *path, int out)
{
	char *const argv[] = { (char *)path, NULL };
	char *const envp[] = { "PATH=/bin", "HOME=/", NULL };
	sigset_t none;
	int fd;

	setpgid(0, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);	/* the agent ignores it; exec would keep that */
	fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "0", 1) < 0)
			logmsg("cannot reset oom_score_adj of the executable");
		close(fd);
	}
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || dup2(fd, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		_exit(126);
	execve(path, argv, envp);
	dprintf(1, "svadiff-agent: cannot execute %s: %s\n", path, strerror(errno));
	_exit(127);
}

/* is any process of group pgid left (zombies count until they are reaped)? */
static int group_alive(pid_t pgid)
{
	return kill(-pgid, 0) == 0 || errno != ESRCH;
}

/* lines that arrive while an executable runs: Z aborts it, Q and V were answered already */
static void exec_take_lines(int *aborted)
{
	char line[MAX_LINE + 1];

	while (next_queued(line)) {
		long long id;

		if (line[0] == 'Z' && line[1] == ' ' && num(line + 2, 0, LLONG_MAX, &id) == 0 && id == P.id)
			*aborted = 1;
		else
			send_error("busy running program %lld: only Q, V and Z %lld are accepted", P.id, P.id);
	}
}

/*
 * Set the device up (S), run the executable with its output relayed (w), kill it at its
 * deadline, then kill whatever it left in its process group, report how it ended (W), unload
 * the module and send F.
 */
static void run_exec(const char *path, int timeout_ms)
{
	char msg[MSG_MAX] = "";
	long long deadline, kill_deadline = 0;
	int p[2], timed_out = 0, aborted = 0, killed = 0;
	pid_t pid;

	if (setup_device(msg, sizeof(msg)) != 0) {
		program_reset();
		send_finished(1, msg);
		return;
	}
	P.state = P_EXEC;
	ob_reset();
	ob_str("S ");
	ob_i64(P.id);
	ob_send();

	memset(&ex, 0, sizeof(ex));
	ex.out_fd = -1;
	if (pipe2(p, O_CLOEXEC) != 0) {
		snprintf(msg, sizeof(msg), "pipe: %s", strerror(errno));
		teardown(msg);
		return;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(msg, sizeof(msg), "fork of the executable: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		teardown(msg);
		return;
	}
	if (pid == 0)
		exec_child(path, p[1]);
	setpgid(pid, pid);	/* also here: no race with a kill of the group below */
	ex.pid = pid;
	close(p[1]);
	ex.out_fd = p[0];
	fcntl(ex.out_fd, F_SETFL, O_NONBLOCK);

	deadline = now_ms() + timeout_ms;
	while (!ex.done) {
		long long now = now_ms();

		exec_take_lines(&aborted);
		if (!killed && (aborted || now >= deadline)) {
			timed_out = !aborted;
			kill(-pid, SIGKILL);
			killed = 1;
			kill_deadline = now + KILL_DEADLINE;
		}
		if (killed && now >= kill_deadline)
			break;	/* stuck in the kernel: give up on it */
		pump(killed ? 50 : (deadline - now > 1000 ? 1000 : (int)(deadline - now) + 1));
	}
	/* what it left behind (its children are the agent's now) dies with the group */
	if (ex.done) {
		long long end = now_ms() + KILL_DEADLINE;

		kill(-pid, SIGKILL);
		while (group_alive(pid) && now_ms() < end)
			pump(20);
		if (group_alive(pid))
			snprintf(msg, sizeof(msg), "processes of the executable did not die within %d ms",
				 KILL_DEADLINE);
	} else {
		snprintf(msg, sizeof(msg), "the executable did not die within %d ms of SIGKILL",
			 KILL_DEADLINE);
	}
	/* the rest of its output: the pipe is at EOF once every writer is gone */
	{
		long long end = now_ms() + 500;

		while (ex.out_fd >= 0 && now_ms() < end) {
			relay_exec_output();
			if (ex.out_fd >= 0)
				pump(20);
		}
		if (ex.out_fd >= 0) {
			close(ex.out_fd);
			ex.out_fd = -1;
		}
	}
	drain_kmsg();
	ob_reset();
	ob_str("W ");
	ob_i64(P.id);
	ob_sp();
	ob_i64(ex.done && WIFEXITED(ex.status) ? WEXITSTATUS(ex.status) : -1);
	ob_sp();
	ob_i64(ex.done && WIFSIGNALED(ex.status) ? WTERMSIG(ex.status) : 0);
	ob_sp();
	ob_i64(timed_out);
	ob_sp();
	ob_u64(ex.dropped);
	ob_send();
	ex.pid = 0;
	teardown(msg);
}

static void cmd_C(char **tok, int ntok)
{
	char path[MAX_LINE];
	char buf[FILE_MAX];
	size_t got = 0;
	int fd, err = 0;

	if (ntok != 3 || !valid_nonce(tok[1]) || unhex(tok[2], path, sizeof(path) - 1) <= 0) {
		send_error("bad C line: want C <nonce> <path-hex>");
		return;
	}
	if (P.state == P_BATCH || P.state == P_INTER || P.state == P_EXEC) {
		send_error("C is only accepted between programs");
		return;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		err = errno;
	} else {
		while (got < sizeof(buf)) {
			ssize_t n = read(fd, buf + got, sizeof(buf) - got);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				err = errno;
				break;
			}
			if (n == 0)
				break;
			got += (size_t)n;
		}
		close(fd);
	}
	ob_reset();
	ob_str("N ");
	ob_str(tok[1]);
	ob_sp();
	ob_i64(err);
	ob_sp();
	ob_hex(buf, err ? 0 : got);
	ob_send();
}

static void cmd_D(char **tok, int ntok)
{
	long long v[9];
	static const long long lo[9] = { 0, 1, 0, 0, 1, 0, 0, 0, 0 };
	static const long long hi[9] = { LLONG_MAX, MAX_DEVS, 16, 16, 64, 1, 3, 1, 1 };
	static const char *const what[9] = { "prog-id", "devices", "mmio_pages", "dus_pages",
		"queue_limit", "sva", "isolate_ops", "isolate_state", "ioctl" };
	char api[80], algs[264];
	int i;

	if (P.state == P_BATCH || P.state == P_INTER) {
		send_error("D while program %lld runs: end it with Z first", P.id);
		return;
	}
	if (ntok != 12) {
		send_error("bad D line: want 12 fields, got %d", ntok);
		return;
	}
	for (i = 0; i < 9; i++) {
		if (num(tok[1 + i], lo[i], hi[i], &v[i]) != 0) {
			send_error("bad D line: %s = %s not in %lld..%lld", what[i], tok[1 + i], lo[i], hi[i]);
			return;
		}
	}
	if (unhex(tok[10], api, 64) <= 0 || !only_chars(api, NAME_CHARS)) {
		send_error("bad D line: api must be 1..64 of [A-Za-z0-9._-]");
		return;
	}
	if (unhex(tok[11], algs, 255) < 0 || !only_chars(algs, NAME_CHARS ",")) {
		send_error("bad D line: algorithms must be at most 255 of [A-Za-z0-9._,-]");
		return;
	}
	if (P.state == P_COLLECT)
		send_error("program %lld was never started (no G or I): discarded", P.id);
	program_reset();
	P.state = P_COLLECT;
	P.id = v[0];
	P.devices = (int)v[1];
	P.mmio_pages = (int)v[2];
	P.dus_pages = (int)v[3];
	P.queue_limit = (int)v[4];
	P.sva = (int)v[5];
	P.isolate_ops = (int)v[6];
	P.isolate_state = (int)v[7];
	P.ioctl = (int)v[8];
	strcpy(P.api, api);
	strcpy(P.algs, algs);
}

static void cmd_O(char **tok, int ntok)
{
	char err[MSG_MAX];
	struct op o;

	if (P.state != P_COLLECT && P.state != P_INTER) {
		send_error("O without a program (send D first)");
		return;
	}
	if (P.state == P_COLLECT && P.poison[0])
		return;	/* already rejected: G or I will say so once */
	memset(&o, 0, sizeof(o));
	if (parse_op(tok, ntok, &o, err, sizeof(err)) != 0) {
		send_error("%s", err);
		if (P.state == P_COLLECT && !P.poison[0])
			snprintf(P.poison, sizeof(P.poison), "%s", err);
		return;
	}
	if (P.state == P_COLLECT) {
		if (o.idx != P.nops) {
			snprintf(err, sizeof(err), "O: op index %d out of order (want %d)", o.idx, P.nops);
			send_error("%s", err);
			if (!P.poison[0])
				snprintf(P.poison, sizeof(P.poison), "%s", err);
			return;
		}
		ops[P.nops++] = o;
		return;
	}
	/* interactive: run it now (a task index beyond ntasks gets ESRCH or EEXIST from run_op) */
	if (run_op(&o) != 0) {
		char m[96];

		snprintf(m, sizeof(m), "op %d did not finish within its deadline", o.idx);
		teardown(m);
	}
}

/* A G or I the agent cannot run: E says why, and F status 2 ends the program for the host. */
static void reject_program(long long id, const char *fmt, ...)
{
	char m[MSG_MAX];
	va_list ap;
	long long keep = P.id;

	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	send_error("%s", m);
	P.id = id;
	send_finished(2, m);
	P.id = keep;
}

static int start_args(char **tok, int ntok, const char *name)
{
	long long id, nt;
	int i;

	if (ntok != 3 || num(tok[1], 0, LLONG_MAX, &id)) {
		send_error("bad %s line: want %s <prog-id> <ntasks 1..%d>", name, name, MAX_TASKS);
		return -1;
	}
	if (num(tok[2], 1, MAX_TASKS, &nt)) {
		reject_program(id, "%s %lld: ntasks %s not in 1..%d", name, id, tok[2], MAX_TASKS);
		if (P.state == P_COLLECT && id == P.id)
			program_reset();
		return -1;
	}
	if (P.state != P_COLLECT || id != P.id) {
		reject_program(id, "%s %lld: no such program collected (send D %lld first)", name, id, id);
		return -1;
	}
	if (P.poison[0]) {
		char why[MSG_MAX / 2];

		snprintf(why, sizeof(why), "%.400s", P.poison);
		program_reset();
		reject_program(id, "program %lld rejected: %s", id, why);
		return -1;
	}
	for (i = 0; i < P.nops; i++) {
		if (ops[i].task >= nt || (ops[i].opcode == OP_FORK && ops[i].a[0] >= nt)) {
			program_reset();
			reject_program(id, "program %lld rejected: op %d names a task >= ntasks %lld", id, i, nt);
			return -1;
		}
	}
	P.ntasks = (int)nt;
	return 0;
}

static void cmd_U(char **tok, int ntok)
{
	char path[EXEC_PATH_MAX + 1];
	long long id, ms;

	if (ntok != 4 || num(tok[1], 0, LLONG_MAX, &id)) {
		send_error("bad U line: want U <prog-id> <path-hex> <timeout-ms>");
		return;
	}
	if (P.state != P_COLLECT || id != P.id) {
		reject_program(id, "U %lld: no such program collected (send D %lld first)", id, id);
		return;
	}
	if (P.poison[0] || P.nops > 0) {
		int n = P.nops;

		program_reset();
		reject_program(id, "U %lld: %d ops were sent after D; an executable program has none", id, n);
		return;
	}
	if (unhex(tok[2], path, EXEC_PATH_MAX) <= 0 || path[0] != '/') {
		program_reset();
		reject_program(id, "U %lld: the path must be absolute, at most %d bytes", id, EXEC_PATH_MAX);
		return;
	}
	if (num(tok[3], 1, EXEC_TIMEOUT_MAX, &ms)) {
		program_reset();
		reject_program(id, "U %lld: timeout %s not in 1..%d ms", id, tok[3], EXEC_TIMEOUT_MAX);
		return;
	}
	run_exec(path, (int)ms);
}

static void cmd_Z(char **tok, int ntok)
{
	long long id;

	if (ntok != 2 || num(tok[1], 0, LLONG_MAX, &id)) {
		send_error("bad Z line: want Z <prog-id>");
		return;
	}
	if (P.state == P_INTER && id == P.id) {
		teardown("");
		return;
	}
	if (P.state == P_COLLECT && id == P.id) {
		program_reset();
		send_finished(0, "");
		return;
	}
	/* nothing runs: say so in the form the host waits for */
	{
		long long keep = P.id;
		char m[80];

		snprintf(m, sizeof(m), "program %lld is not running", id);
		P.id = id;
		send_finished(0, m);
		P.id = keep;
	}
}

static void handle_line(char *line)
{
	char *tok[MAX_TOK];
	int ntok = split(line, tok);

	if (ntok < 0) {
		send_error("malformed line (empty field or more than %d fields)", MAX_TOK);
		return;
	}
	if (strcmp(tok[0], "D") == 0)
		cmd_D(tok, ntok);
	else if (strcmp(tok[0], "O") == 0)
		cmd_O(tok, ntok);
	else if (strcmp(tok[0], "G") == 0) {
		if (start_args(tok, ntok, "G") == 0)
			run_batch();
	} else if (strcmp(tok[0], "I") == 0) {
		if (start_args(tok, ntok, "I") == 0) {
			if (P.nops > 0) {
				int n = P.nops;

				program_reset();
				reject_program(P.id, "I %lld: %d ops were sent before I; interactive ops come after it",
					       P.id, n);
				return;
			}
			if (setup_program() == 0)
				P.state = P_INTER;
		}
	} else if (strcmp(tok[0], "U") == 0)
		cmd_U(tok, ntok);
	else if (strcmp(tok[0], "Z") == 0)
		cmd_Z(tok, ntok);
	else if (strcmp(tok[0], "C") == 0)
		cmd_C(tok, ntok);
	else {
		char shown[40];

		snprintf(shown, sizeof(shown), "%.32s", tok[0]);
		send_error("unknown command %s", shown);
	}
}

/* ------------------------------------------------------------------------------------------ */
/* startup */

static void setup_channel(void)
{
	if (opt_stdio) {
		in_fd = 0;
		out_fd = 1;
	} else {
		struct termios t;
		int fd = -1, i;

		for (i = 0; fd < 0; i++) {
			fd = open(opt_tty, O_RDWR | O_NOCTTY | O_CLOEXEC);
			if (fd >= 0)
				break;
			/* nothing can reach the host; say why on the console and keep trying */
			if (i % 100 == 0)
				logmsg("cannot open %s: %s", opt_tty, strerror(errno));
			reap_all();
			usleep(50000);
		}
		if (tcgetattr(fd, &t) == 0) {
			cfmakeraw(&t);
			t.c_cflag |= CLOCAL | CREAD;
			/* 115200: the emulated UART's receive timeout counts character times, so a slow
			 * setting delays every short host line */
			cfsetispeed(&t, B115200);
			cfsetospeed(&t, B115200);
			t.c_cc[VMIN] = 1;
			t.c_cc[VTIME] = 0;
			tcsetattr(fd, TCSANOW, &t);
			tcflush(fd, TCIFLUSH);
		}
		in_fd = out_fd = fd;
	}
	fcntl(in_fd, F_SETFL, fcntl(in_fd, F_GETFL) | O_NONBLOCK);
	if (out_fd != in_fd)
		fcntl(out_fd, F_SETFL, fcntl(out_fd, F_GETFL) | O_NONBLOCK);
}

int main(int argc, char **argv)
{
	char line[MAX_LINE + 1];
	sigset_t chld;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--tty") == 0 && i + 1 < argc)
			opt_tty = argv[++i];
		else if (strcmp(argv[i], "--stdio") == 0)
			opt_stdio = 1;
		else if (strcmp(argv[i], "--no-module") == 0)
			opt_no_module = 1;
		else if (strcmp(argv[i], "--no-kmsg") == 0)
			opt_no_kmsg = 1;
		else
			logmsg("ignoring unknown argument %s", argv[i]);
	}

	P.res_r = P.res_w = -1;
	for (i = 0; i < MAX_TASKS; i++)
		P.cmd_r[i] = P.cmd_w[i] = -1;

	signal(SIGPIPE, SIG_IGN);
	/* orphans of an executable (U) become the agent's to reap, also when it is not PID 1 */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	sig_fd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sig_fd < 0)
		logmsg("signalfd: %s", strerror(errno));

	if (!opt_stdio) {
		/* the agent must survive memory pressure caused by its tasks */
		int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);

		if (fd < 0 || write(fd, "-1000", 5) != 5)
			logmsg("cannot set oom_score_adj: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	if (!opt_no_kmsg) {
		kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (kmsg_fd < 0)
			logmsg("cannot open /dev/kmsg: %s", strerror(errno));
	}
	setup_channel();
	send_hello();
	if (!opt_no_module)
		load_boot_modules();
	logmsg("ready on %s", opt_stdio ? "stdio" : opt_tty);

	for (;;) {
		while (next_queued(line))
			handle_line(line);
		pump(-1);
	}
}
