// SPDX-License-Identifier: GPL-2.0
/*
 * Running a program: its test device set up (the module loaded with the program's parameters,
 * the nodes there), task 0 started, each op handed to its task with what the agent resolved
 * for it (svt_ops.gen.h) and its result sent as an R line, in order; at the end every task
 * killed and the module unloaded. Part of the agent (agent.c includes it).
 */

/* R: the result of op idx; aux is where a mapping went, or a new task's pid; with times (an op of a
 * concurrent group): when it began and ended, CLOCK_MONOTONIC ns */
static void send_result(int idx, const struct res *r, int times)
{
	char aux[AUX_MAX];
	int alen = 0;

	if (r->ret >= 0 && r->addr)
		alen = snprintf(aux, sizeof(aux), "0x%llx", (unsigned long long)r->addr);
	else if (r->ret >= 0 && r->child > 0)
		alen = snprintf(aux, sizeof(aux), "%d", r->child);
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
	/* aux and the times are short: write them first into the budget so that a long data field
	 * is what gets cut */
	{
		size_t dlen = r->len > DATA_MAX ? DATA_MAX : r->len;
		size_t room = MAX_LINE - ol - 2 - 2 * (alen ? alen : 1) - (times ? 42 : 0);

		if (2 * dlen > room)
			dlen = room / 2;
		ob_hex(r->data, dlen);
		ob_sp();
		ob_hex(aux, (size_t)alen);
	}
	if (times) {
		ob_sp();
		ob_i64(r->t0);
		ob_sp();
		ob_i64(r->t1);
	}
	ob_send();
}

static void send_simple_result(int idx, long long ret, int err, int times)
{
	struct res r;

	memset(&r, 0, sizeof(r));
	r.ret = ret;
	r.err = err;
	r.t0 = r.t1 = now_ns();
	send_result(idx, &r, times);
}

/* the op's task died while doing it: errno -1 and the signal that killed it (0: it exited) */
static void send_died_result(const struct wait *w, int status, int times)
{
	struct res r;

	memset(&r, 0, sizeof(r));
	r.ret = -1;
	r.err = -1;
	r.sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	r.t0 = w->sent_ns;
	r.t1 = w->dead_ns;
	send_result(w->idx, &r, times);
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

/* hand one op to its task (all of a group's go before any result is awaited) */
static void send_command(const struct op *o)
{
	static struct cmd c;
	const char *p = (const char *)&c;
	size_t left = sizeof(c);

	memset(&c, 0, sizeof(c));
	c.step = o->idx;
	c.op = *o;
	resolve(&c);
	while (left > 0) {
		ssize_t w = write(cmd_pipe[o->task][1], p, left);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;	/* EPIPE: no task is left to read it; the reap says why */
		p += w;
		left -= (size_t)w;
	}
}

/* is the op of wait entry w over (a result, its task's death, or the exit it was)? */
static int wait_done(const struct wait *w, const struct op *o)
{
	return w->got || w->died || (o->opcode == OP_EXIT && tasks[o->task].state == T_DEAD);
}

/*
 * Run ops o[0..n-1]: one op, or the ops of a concurrent group (n > 1, each of a different task),
 * whose commands all go out before any result is awaited, so that their tasks run them at the
 * same time. R lines follow in op order once every op is over; a group's carry each op's times.
 * Returns 0, or -1 if an op missed its deadline (T sent; the program must stop).
 */
static int run_ops(const struct op *o, int n)
{
	enum { RUN, ANSWERED } how[MAX_TASKS];
	int answer[MAX_TASKS], times = n > 1;
	long long deadline = 0;
	int i, k;

	memset(cur, 0, sizeof(cur));
	n_cur = n;
	for (i = 0; i < n; i++) {
		struct task *tk = &tasks[o[i].task];

		/* the vfio family's opcodes are pci_bind's and above (harness/ops/vfio.ts) */
		if (o[i].opcode >= OP_PCI_BIND)
			P.vfio_ops = 1;

		cur[i].task = o[i].task;
		cur[i].idx = o[i].idx;
		how[i] = ANSWERED;
		if (o[i].task >= P.ntasks || tk->state != T_ALIVE) {
			answer[i] = ESRCH;
			continue;
		}
		if (o[i].opcode == OP_FORK && (o[i].a[0] >= P.ntasks || tasks[o[i].a[0]].state != T_NONE)) {
			/* the host gave a task index that is out of range or already used */
			answer[i] = EEXIST;
			continue;
		}
		how[i] = RUN;
		if (o[i].opcode == OP_EXIT)
			tk->exiting = 1;
		if (deadline < now_ms() + op_deadline_ms(&o[i]))
			deadline = now_ms() + op_deadline_ms(&o[i]);
	}
	for (i = 0; i < n; i++) {
		if (how[i] != RUN)
			continue;
		cur[i].sent_ns = now_ns();
		send_command(&o[i]);
	}
	for (;;) {
		long long rem;
		int left = 0;

		for (i = 0; i < n; i++)
			left += how[i] == RUN && !wait_done(&cur[i], &o[i]);
		if (!left)
			break;
		rem = deadline - now_ms();
		if (rem <= 0) {
			for (i = 0; i < n; i++)
				if (how[i] == RUN && !wait_done(&cur[i], &o[i]))
					break;
			for (k = 0; k < n; k++)
				tasks[o[k].task].exiting = 0;
			n_cur = 0;
			drain_kmsg();
			ob_reset();
			ob_str("T ");
			ob_i64(P.id);
			ob_sp();
			ob_i64(o[i].idx);
			ob_sp();
			ob_i64(op_deadline_ms(&o[i]));
			ob_send();
			return -1;
		}
		pump(rem > 1000 ? 1000 : (int)rem);
	}
	for (i = 0; i < n; i++) {
		struct task *tk = &tasks[o[i].task];
		struct wait *w = &cur[i];

		if (how[i] == ANSWERED) {
			send_simple_result(o[i].idx, -1, answer[i], times);
		} else if (o[i].opcode == OP_EXIT) {
			int st = tk->status;

			tk->exiting = 0;
			if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
				struct res r;

				memset(&r, 0, sizeof(r));
				r.t0 = w->sent_ns;
				r.t1 = w->dead_ns;
				send_result(w->idx, &r, times);
			} else {
				send_died_result(w, st, times);	/* after the X line task_died sent */
			}
		} else if (w->died) {
			send_died_result(w, tk->status, times);	/* after the X line task_died sent */
		} else {
			send_result(w->idx, &w->r, times);
			if (o[i].opcode == OP_FORK && w->r.ret == 0 && w->r.child > 0)
				adopt_child((int)o[i].a[0], w->r.child);
		}
	}
	n_cur = 0;
	return 0;
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
			snprintf(p, sizeof(p), "/dev/%.127s", node[dev]);
			if (access(p, F_OK) != 0) {
				if (have_devt[dev] && now_ms() + NODES_DEADLINE / 2 > end)
					mknod(p, S_IFCHR | 0600, devt[dev]);
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


/* In the child after fork(): drop what is the agent's, become task 0 (the runtime's task_start). */
static void agent_task0(void)
{
	sigset_t none;
	int fd;

	close_fd(&kmsg_fd);
	close_fd(&sig_fd);
	if (out_fd != in_fd)
		close_fd(&out_fd);
	close_fd(&in_fd);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGCHLD, SIG_DFL);
	/* the agent is exempt from the OOM killer; its tasks are ordinary processes */
	fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "0", 1) < 0)
			logmsg("cannot reset oom_score_adj of a task");
		close(fd);
	}
	task_start();
}

static void program_reset(void)
{
	int i;

	for (i = 0; i < MAX_TASKS; i++) {
		close_fd(&cmd_pipe[i][1]);
		close_fd(&cmd_pipe[i][0]);
	}
	close_fd(&res_pipe[0]);
	close_fd(&res_pipe[1]);
	memset(tasks, 0, sizeof(tasks));
	memset(group_n, 0, sizeof(group_n));
	memset(in_group, 0, sizeof(in_group));
	n_early = 0;
	n_cur = 0;
	P.state = P_IDLE;
	P.nops = 0;
	P.poison[0] = '\0';
	P.abort = 0;
	P.vfio_ops = 0;
}


/* one sysfs write of release_endpoints, in the helper process */
struct ep_write {
	const char *path;
	const char *text;
};

static int do_ep_write(void *p)
{
	const struct ep_write *w = p;

	return write_file(w->path, w->text) < 0 ? errno : 0;
}

/*
 * The errno of an endpoint's unbind or bind at a program's end, ETIMEDOUT when it did not
 * return within ENDPOINT_DEADLINE: vfio-pci's unbind waits until the last vfio file of the
 * device is closed (vfio_unregister_group_dev), so a leaked device open would stop the agent;
 * the helper is left behind, stuck in the kernel, and the host reboots the guest.
 */
static int endpoint_write(const char *path, const char *text)
{
	struct ep_write w = { path, text };
	int st = run_helper(do_ep_write, &w, ENDPOINT_DEADLINE);

	if (st == -1)
		return ETIMEDOUT;
	if (st < 0 || !WIFEXITED(st))
		return EIO;
	return WEXITSTATUS(st);
}

/* L: endpoint addr was not given back ("unbind" from vfio-pci, "bind" to the test driver) */
static void send_endpoint_left(const char *addr, const char *what, int err)
{
	ob_reset();
	ob_str("L ");
	ob_i64(P.id);
	ob_sp();
	ob_hex(addr, strlen(addr));
	ob_sp();
	ob_str(what);
	ob_sp();
	ob_i64(err);
	ob_send();
}

/*
 * After a program on the PCI endpoints (every task gone, so no vfio file is open): each
 * endpoint's driver_override cleared, one left on vfio-pci unbound and bound to the test driver
 * again (the vfio ops, harness/ops/vfio.ts, move them), as is one they left without a driver.
 * What fails is a leak (L line, harness/leaks): an unbind that does not return (a vfio device
 * still open), a bind refused with EBUSY (the IOMMU group still has a user DMA owner). The
 * module's unload or "down" unbinds them again before the next program.
 */
static void release_endpoints(void)
{
	int dev;

	for (dev = 0; dev < MAX_DEVS * 8; dev++) {
		char a[64], p[PATH_LEN], link[PATH_LEN];
		const char *drv = "";
		ssize_t l;
		int err, was_vfio;

		snprintf(a, sizeof(a), "%s", ep_addr(dev));
		if (!a[0])
			break;
		snprintf(p, sizeof(p), PCI_DEVICES "/%s/driver_override", a);
		write_file(p, "\n");
		snprintf(p, sizeof(p), PCI_DEVICES "/%s/driver", a);
		l = readlink(p, link, sizeof(link) - 1);
		if (l >= 0) {
			link[l] = '\0';
			drv = strrchr(link, '/') ? strrchr(link, '/') + 1 : link;
		}
		was_vfio = strcmp(drv, VFIO_PCI_DRIVER) == 0;
		if (was_vfio) {
			snprintf(p, sizeof(p), PCI_DEVICES "/%s/driver/unbind", a);
			err = endpoint_write(p, a);
			if (err) {
				send_endpoint_left(a, "unbind", err);
				continue;
			}
			drv = "";
		}
		/*
		 * Bound again: what vfio-pci had, and after vfio ops what has no driver among the
		 * program's first P.devices endpoints (the test driver takes no other: svt_pci_probe).
		 * A device a uacce program removed stays removed until the module goes, as before: a
		 * bind here would be an op its reproducer does not have.
		 */
		if (drv[0] || opt_no_module || dev >= P.devices || (!was_vfio && !P.vfio_ops))
			continue;
		err = endpoint_write(PCI_DRIVER_DIR "/bind", a);
		if (err)
			send_endpoint_left(a, "bind", err);
	}
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
	end = now_ms() + KILL_DEADLINE_MS;
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
			 l ? "; " : "", stuck, KILL_DEADLINE_MS);
		status = 1;
	}
	unlink_mknods();
	if (P.sva)
		release_endpoints();
	program_reset();
	if (!opt_no_module) {
		char why[MSG_MAX / 2];
		int done = 0;

		if (P.reset && module_loaded(TEST_MODULE)) {
			done = control_module("down", why, sizeof(why)) == 0;
			if (!done)
				logmsg("%s; unloading instead", why);
		}
		test_module_down = done;
		if (!done && unload_module(TEST_MODULE, why, sizeof(why)) != 0) {
			size_t l = strlen(msg);

			snprintf(msg + l, sizeof(msg) - l, "%s%s", l ? "; " : "", why);
			status = 1;
		}
	}
	send_finished(status, msg);
}

/* Fresh test device: (re)load the module with the program's parameters (or, with P.reset, set
 * it up through its control file) and wait for its nodes. On failure msg says why and the
 * module is not loaded. */
static int setup_device(char *msg, size_t msglen)
{
	memset(node, 0, sizeof(node));
	memset(have_devt, 0, sizeof(have_devt));
	memset(mknod_done, 0, sizeof(mknod_done));
	memset(tasks, 0, sizeof(tasks));
	n_early = 0;
	if (!opt_no_module) {
		char params[512], cmd[520];
		int up = 0;

		snprintf(params, sizeof(params),
			 "devices=%d mmio_pages=%d dus_pages=%d queue_limit=%d sva=%d isolate_ops=%d "
			 "isolate_state=%d ioctl=%d api=%s algs=%s",
			 P.devices, P.mmio_pages, P.dus_pages, P.queue_limit, P.sva, P.isolate_ops,
			 P.isolate_state, P.ioctl, P.api, P.algs);
		if (P.reset && module_loaded(TEST_MODULE)) {
			/* "up" after the last program's "down"; "reset" if something left it up */
			snprintf(cmd, sizeof(cmd), "%s %s", test_module_down ? "up" : "reset", params);
			up = control_module(cmd, msg, msglen) == 0;
			if (!up)
				logmsg("%s; reloading instead", msg);
		}
		test_module_down = 0;
		if (!up) {
			if (unload_module(TEST_MODULE, msg, msglen) != 0)
				return -1;
			if (load_module(MOD_DIR "/" TEST_MODULE ".ko", params, msg, msglen) != 0)
				return -1;
		}
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
	pid_t pid;

	if (setup_device(msg, sizeof(msg)) != 0)
		goto fail;
	if (open_task_pipes() != 0)
		goto pipes;

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
		agent_task0();
	tasks[0].pid = pid;
	tasks[0].state = T_ALIVE;
	close_task_ends();	/* the agent keeps the write ends of the commands, the read end of results */
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
	for (i = 0; i < P.nops;) {
		int n = group_n[i] > 1 ? group_n[i] : 1;

		batch_take_lines();
		if (P.abort)
			break;
		if (run_ops(&ops[i], n) != 0) {
			char m[96];

			snprintf(m, sizeof(m), "op %d did not finish within its deadline", ops[i].idx);
			teardown(m);
			return;
		}
		i += n;
	}
	batch_take_lines();
	teardown(NULL);
}
