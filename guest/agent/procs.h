// SPDX-License-Identifier: GPL-2.0
/*
 * The agent's child processes and its event loop: the tasks of the program that runs (their
 * pipes are the runtime's cmd_pipe and res_pipe), the helper that loads and unloads modules,
 * the executable of a U line, and pump(), one round of waiting for whatever happens next. Part
 * of the agent (agent.c includes it).
 */

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
	int reset;		/* 1: set the device up and tear it down through the module's control
				 * file; 0: rmmod and insmod (D line field 13) */
	char api[80];
	char algs[264];
	int nops;
	int ntasks;
	char poison[MSG_MAX];	/* first error while collecting */
	int abort;		/* Z arrived during a batch run */
	int vfio_ops;		/* an op of the vfio family ran (release_endpoints) */
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

/* the ops the agent is waiting for: one, or the ops of a concurrent group (each of its own task) */
static struct wait {
	int task;
	int idx;
	int got;
	int died;
	struct res r;
	long long sent_ns;	/* its command written to the task */
	long long dead_ns;	/* its task seen gone (an exit, a death) */
} cur[MAX_TASKS];
static int n_cur;		/* entries of cur in use, 0: none */

/* group sizes by first op index (B lines): 0 or 1 for an op alone */
static int group_n[MAX_OPS];
static unsigned char in_group[MAX_OPS];

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
	int i;

	tk->state = T_DEAD;
	tk->status = status;
	for (i = 0; i < n_cur; i++) {
		if (cur[i].task != t)
			continue;
		cur[i].dead_ns = now_ns();
		if (!tk->exiting) {
			/* a result written just before dying still counts */
			drain_results();
			if (!cur[i].got)
				cur[i].died = 1;
		}
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
	int i;

	if (res_pipe[0] < 0)
		return;
	for (;;) {
		ssize_t n = read(res_pipe[0], &r, sizeof(r));

		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(r))
			break;
		for (i = 0; i < n_cur; i++) {
			if (!cur[i].got && r.step == cur[i].idx) {
				cur[i].r = r;
				cur[i].got = 1;
			}
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
	struct pollfd pfd[5];
	int n = 0, i_in = -1, i_kmsg = -1, i_sig = -1, i_res = -1, i_ex = -1;
	int r;

	if (rawlen < sizeof(raw) && !in_eof) {
		i_in = n;
		pfd[n++] = (struct pollfd){ .fd = in_fd, .events = POLLIN };
	}
	if (kmsg_fd >= 0) {
		i_kmsg = n;
		pfd[n++] = (struct pollfd){ .fd = kmsg_fd, .events = POLLIN };
	}
	i_sig = n;
	pfd[n++] = (struct pollfd){ .fd = sig_fd, .events = POLLIN };
	if (res_pipe[0] >= 0) {
		i_res = n;
		pfd[n++] = (struct pollfd){ .fd = res_pipe[0], .events = POLLIN };
	}
	if (ex.out_fd >= 0) {
		i_ex = n;
		pfd[n++] = (struct pollfd){ .fd = ex.out_fd, .events = POLLIN };
	}
	r = poll(pfd, (nfds_t)n, timeout_ms);
	if (sig_fd < 0)
		reap_all();	/* no signalfd: reap on every round instead */
	if (r <= 0)
		return;
	if (i_res >= 0 && pfd[i_res].revents)
		drain_results();
	if (i_ex >= 0 && pfd[i_ex].revents)
		relay_exec_output();
	if (pfd[i_sig].revents) {
		struct signalfd_siginfo si[8];

		while (read(sig_fd, si, sizeof(si)) > 0)
			;
		reap_all();
	}
	if (i_kmsg >= 0 && pfd[i_kmsg].revents)
		drain_kmsg();
	if (i_in >= 0 && pfd[i_in].revents & (POLLIN | POLLHUP | POLLERR))
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

