// SPDX-License-Identifier: GPL-2.0
/*
 * Running an executable (U): a reproducer, with the program's test device set up around it
 * (docs/agent-protocol.md "Executables"). Part of the agent (agent.c includes it).
 */

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
			kill_deadline = now + KILL_DEADLINE_MS;
		}
		if (killed && now >= kill_deadline)
			break;	/* stuck in the kernel: give up on it */
		pump(killed ? 50 : (deadline - now > 1000 ? 1000 : (int)(deadline - now) + 1));
	}
	/* what it left behind (its children are the agent's now) dies with the group */
	if (ex.done) {
		long long end = now_ms() + KILL_DEADLINE_MS;

		kill(-pid, SIGKILL);
		while (group_alive(pid) && now_ms() < end)
			pump(20);
		if (group_alive(pid))
			snprintf(msg, sizeof(msg), "processes of the executable did not die within %d ms",
				 KILL_DEADLINE_MS);
	} else {
		snprintf(msg, sizeof(msg), "the executable did not die within %d ms of SIGKILL",
			 KILL_DEADLINE_MS);
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

