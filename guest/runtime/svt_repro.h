/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The part of the runtime only reproducers have: checking the device set-up, running the steps
 * and checking each outcome against what svadiff's model expects, in svadiff's terms (titles,
 * outcomes as harness/program/outcome.ts writes them). Sections as in svt_types.h; the agent
 * never includes this file (its host side does this work).
 */

/* errno and signal names as svadiff writes them (harness/program/errno.ts), else errno<N>, SIG<N> */
#define NAME(x)	[x] = #x
static const char *const errno_names[] = {
	NAME(EPERM), NAME(ENOENT), NAME(ESRCH), NAME(EINTR), NAME(EIO), NAME(ENXIO), NAME(E2BIG),
	NAME(ENOEXEC), NAME(EBADF), NAME(ECHILD), NAME(EAGAIN), NAME(ENOMEM), NAME(EACCES),
	NAME(EFAULT), NAME(ENOTBLK), NAME(EBUSY), NAME(EEXIST), NAME(EXDEV), NAME(ENODEV),
	NAME(ENOTDIR), NAME(EISDIR), NAME(EINVAL), NAME(ENFILE), NAME(EMFILE), NAME(ENOTTY),
	NAME(ETXTBSY), NAME(EFBIG), NAME(ENOSPC), NAME(ESPIPE), NAME(EROFS), NAME(EMLINK), NAME(EPIPE),
	NAME(EDOM), NAME(ERANGE), NAME(EDEADLK), NAME(ENAMETOOLONG), NAME(ENOSYS), NAME(EOVERFLOW), NAME(EBADFD),
	NAME(EOPNOTSUPP), NAME(ETIMEDOUT),
};
#define ERRNO_NAME(v)	name_of(errno_names, sizeof(errno_names) / sizeof(*errno_names), v, "errno%d")
#if SVT_GENERAL || SVT_FAULTS || SVT_WATCH
static const char *const signal_names[] = {
	NAME(SIGILL), NAME(SIGTRAP), NAME(SIGABRT), NAME(SIGBUS), NAME(SIGFPE), NAME(SIGKILL),
	NAME(SIGSEGV), NAME(SIGPIPE), NAME(SIGTERM),
};
#define SIGNAL_NAME(v)	name_of(signal_names, sizeof(signal_names) / sizeof(*signal_names), v, "SIG%d")
#endif

static const char *name_of(const char *const *names, size_t n, int v, const char *fmt)
{
	static char buf[32];

	if (v > 0 && (size_t)v < n && names[v])
		return names[v];
	snprintf(buf, sizeof(buf), fmt, v);
	return buf;
}

/* The test device must be there, loaded with the parameters of INSMOD_LINE; we must be root. */
static int check_setup(void)
{
	char want[] = INSMOD_LINE, *kv, p[300], got[160], msg[512] = "";
	FILE *f;
	int dev, n;

	if (geteuid() != 0) {
		printf("SETUP PROBLEM: run as root (device nodes, sysfs and the driver's bind files are root's)\n");
		return -1;
	}
	for (dev = 0; dev < DEVICES && !msg[0]; dev++) {
		if (!scan_node(dev))
			snprintf(msg, sizeof(msg), "no uacce device " UACCE_CLASS "/" SVT_UACCE_NAME_FMT "-*", dev);
		else if (snprintf(p, sizeof(p), "/dev/%s", node[dev]) > 0 && access(p, F_OK) != 0)
			snprintf(msg, sizeof(msg), "no device node %s", p);
	}
	for (kv = strtok(want, " "); kv && !msg[0]; kv = strtok(NULL, " ")) {	/* name=value */
		n = (int)strcspn(kv, "=");
		snprintf(p, sizeof(p), MODULE_PARAMS "/%.*s", n, kv);
		if (!kv[n] || !(f = fopen(p, "re")))
			continue;	/* not a parameter ("insmod"), or not shown: cannot check */
		got[fgets(got, sizeof(got), f) ? strcspn(got, "\n") : 0] = '\0';
		fclose(f);
		if (strcmp(got, kv + n + 1) != 0)
			snprintf(msg, sizeof(msg), "the test module was loaded with %.*s=%s, this reproducer needs %s", n, kv, got, kv);
	}
	if (msg[0])
		printf("SETUP PROBLEM: %s\nload the test device first, with these parameters (uacce.ko before it):\n"
		       "  rmmod svadiff_test; " INSMOD_LINE "\n", msg);
	return msg[0] ? -1 : 0;
}

#if SVT_GENERAL
/* ---- several tasks: a controller hands each step to its task, as the agent does ---- */

#include <poll.h>
#include <sys/wait.h>
static pid_t pid_of[N_TASKS];	/* 0: not created (yet), -1: gone */

/* has task t ended? (it is the controller's child: reap it) */
static int task_gone(int t, int *status)
{
	if (pid_of[t] > 0 && waitpid(pid_of[t], status, WNOHANG) == pid_of[t])
		pid_of[t] = -1;
	return pid_of[t] <= 0;
}

static int deadline_of(int s)
{
	return steps[s].deadline_ms ? steps[s].deadline_ms : STEP_DEADLINE_MS;
}

/* Hand step s to its task and wait for its result, the task's end, or the deadline (hang). */
static enum outcome_kind run_step(int s, struct res *r, int *status)
{
	const struct step *st = &steps[s];
	struct cmd c;
	long long deadline;

	memset(r, 0, sizeof(*r));
	memset(&c, 0, sizeof(c));
	*status = 0;
	if (task_gone(st->task, status)) {
		r->ret = -1;	/* a step of a task that is gone: ESRCH, as the agent answers */
		r->err = ESRCH;
		return NONE;
	}
	c.step = s;
	resolve(s, c.path);
	if (write(cmd_pipe[st->task][1], &c, sizeof(c)) != (ssize_t)sizeof(c)) {
		/* the task is gone: the loop below sees it */
	}
	deadline = now_ms() + deadline_of(s);
	for (;;) {
		struct pollfd rp = { .fd = res_pipe[0], .events = POLLIN };

		if (poll(&rp, 1, 10) > 0 && read(res_pipe[0], r, sizeof(*r)) == (ssize_t)sizeof(*r) && r->step == s)
			return NONE;
		if (task_gone(st->task, status)) {
			/* a result written just before the task ended still counts */
			if (read(res_pipe[0], r, sizeof(*r)) == (ssize_t)sizeof(*r) && r->step == s)
				return NONE;
			return DIED;	/* the exit step ends here too */
		}
		if (now_ms() >= deadline)
			return HANG;
	}
}

/* The outcome of step s in svadiff's terms (harness/agent/observe.ts). */
static struct outcome observe(int s, enum outcome_kind end, int status, const struct res *r, char *buf, size_t n)
{
	struct outcome o = { OK, "", 0 };

	if (end == HANG) {
		o.kind = HANG;
	} else if (end == DIED && steps[s].exit && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		o.kind = OK;	/* the exit step: the task is gone */
	} else if (end == DIED) {
		o.kind = DIED;
		o.text = SIGNAL_NAME(WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	} else if (r->sig != 0) {
		o.kind = SIGNAL;
		o.text = SIGNAL_NAME(r->sig);
	} else if (r->ret < 0) {
		o.kind = ERRNO;
		o.text = ERRNO_NAME(r->err);
	} else if (steps[s].value == VALUE_DATA) {
		o.kind = OK_VALUE;
		memcpy(buf, r->data, r->len < n ? r->len : n);
		o.text = buf;
		o.len = r->len < n ? r->len : n;
		return o;
	} else if (steps[s].value == VALUE_RETURN) {
		o.kind = OK_VALUE;
		snprintf(buf, n, "%lld", r->ret);
		o.text = buf;
	}
	o.len = strlen(o.text);
	return o;
}

static int matches(const struct outcome *want, const struct outcome *got)
{
	if (want->kind == OK)	/* the model says nothing about the value */
		return got->kind == OK || got->kind == OK_VALUE;
	return want->kind == got->kind && want->len == got->len && memcmp(want->text, got->text, got->len) == 0;
}

/* A value as svadiff prints it: plain, or quoted like JSON when it has other characters. */
static void print_value(FILE *f, const char *s, size_t n)
{
	size_t i;
	int plain = 1;

	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c && strchr("_.: -", c))))
			plain = 0;
		if (c == ' ' && i + 1 < n && s[i + 1] == ' ')
			plain = 0;
	}
	if (plain) {
		fwrite(s, 1, n, f);
		return;
	}
	fputc('"', f);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c == '\r')
			fputs("\\r", f);
		else if (c == '\b')
			fputs("\\b", f);
		else if (c == '\f')
			fputs("\\f", f);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void print_outcome(FILE *f, const struct outcome *o)
{
	switch (o->kind) {
	case OK_VALUE:
		fputs("ok(", f);
		print_value(f, o->text, o->len);
		fputc(')', f);
		break;
	case ERRNO:
	case SIGNAL:
		fwrite(o->text, 1, o->len, f);
		break;
	case DIED:
		fprintf(f, "died(%.*s)", (int)o->len, o->text);
		break;
	case HANG:
		fputs("hang", f);
		break;
	default:
		fputs("ok", f);
		break;
	}
}

/*
 * The finding's title as svadiff writes it: "touch: expected SIGBUS, got ok [touch.zombie]".
 * Kinds only (ok, errno, signal): the values an ok carries vary between runs.
 */
static void print_title(int s, const struct outcome *got)
{
	int k, ok_expected = 0;

	for (k = 0; k < MAX_EXPECT && steps[s].expect[k].kind != NONE; k++)
		ok_expected |= steps[s].expect[k].kind == OK || steps[s].expect[k].kind == OK_VALUE;
	printf("FINDING: %s: expected %s, got ", steps[s].what, steps[s].expect_title);
	if (got->kind == OK || got->kind == OK_VALUE)
		fputs(ok_expected ? "ok (another value)" : "ok", stdout);
	else
		print_outcome(stdout, got);
	printf(" [%s]\n", steps[s].rules);
}

/* Task 0: a fresh process with every command pipe and the result pipe (as the agent's). */
static int start_tasks(void)
{
	pid_t pid;

	if (open_task_pipes() != 0)
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0)
		task_start();
	pid_of[0] = pid;
	close_task_ends();
	return 0;
}

/* The end, as the agent's: SIGKILL every task left and wait until they are gone. */
static void end_tasks(void)
{
	long long end = now_ms() + KILL_DEADLINE_MS;
	int t, status, left;

	for (t = 0; t < N_TASKS; t++)
		if (pid_of[t] > 0)
			kill(pid_of[t], SIGKILL);
	do {
		left = 0;
		for (t = 0; t < N_TASKS; t++)
			left += !task_gone(t, &status);
		if (left)
			usleep(10000);
	} while (left && now_ms() < end);
	if (left)
		printf("note: %d task(s) did not die within %d ms of SIGKILL (stuck in the kernel)\n", left, KILL_DEADLINE_MS);
#if SVT_MKNOD_PATH
	unlink_mknods();
#endif
}

int main(int argc, char **argv)
{
	static struct res r;
	char buf[2 * DATA_MAX];
	int s, k, status, checked = 0, diverged = -1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);	/* as in the agent, whose tasks inherit it */
	/* --no-setup-check: run without the test device (svadiff's tests compare with its agent) */
	if (!(argc > 1 && strcmp(argv[1], "--no-setup-check") == 0) && check_setup() != 0)
		return 2;
	if (start_tasks() != 0) {
		printf("SETUP PROBLEM: cannot start task 0: %s\n", strerror(errno));
		return 2;
	}
	for (s = 0; s < N_STEPS; s++) {
		const struct step *st = &steps[s];
		enum outcome_kind end = run_step(s, &r, &status);
		struct outcome got = observe(s, end, status, &r, buf, sizeof(buf));
		int ok = 0;

		if (end == NONE && st->placed && r.ret == 0 && r.addr != r.want) {
			printf("step %d (%s): %s landed at 0x%llx, not at its slot 0x%llx\n", s, task_name[st->task], st->call,
			       (unsigned long long)r.addr, (unsigned long long)r.want);
			printf("SETUP PROBLEM: the address plan of the program does not hold here (not a kernel finding)\n");
			end_tasks();
			return 2;
		}
#if SVT_FORK_TASK
		if (end == NONE && st->forks && r.ret == 0)
			pid_of[st->forks] = r.child;	/* the controller's child (CLONE_PARENT) */
#endif
		printf("step %d (%s): %s = ", s, task_name[st->task], st->call);
		print_outcome(stdout, &got);
		if (diverged >= 0 || !st->expect_text) {
			printf(" (%s)\n", diverged >= 0 ? "not checked: an earlier step diverged" : "not checked");
		} else {
			for (k = 0; k < MAX_EXPECT && st->expect[k].kind != NONE; k++)
				ok |= matches(&st->expect[k], &got);
			printf(" (expected %s)%s\n", st->expect_text, ok ? "" : "  <-- DIVERGES");
			checked++;
			if (!ok) {
				diverged = s;
				printf("RESULT: step %d did not do what the model expects: the kernel diverged\n", s);
				if (got.kind == HANG)
					printf("FINDING: hang: %s did not return\n", st->what);
				else
					print_title(s, &got);
			}
		}
		if (end == HANG) {
			printf("step %d did not finish within %d ms: stopping here\n", s, deadline_of(s));
			break;
		}
	}
	end_tasks();
	if (diverged >= 0)
		return 1;
	printf("RESULT: every checked step (%d of %d) did what the model expects\n", checked, N_STEPS);
	return 0;
}
#endif

#if SVT_COMPACT
/* ---- one task: main() is the program, each step checked right after it ---- */

#if SVT_FAULTS
/* SIGSEGV or SIGBUS during a touch or submit is its outcome; t0 goes on */
static void on_fault(int sig)
{
	if (catching) {
		catching = 0;
		r->sig = sig;
		siglongjmp(fault, 1);
	}
	signal(sig, SIG_DFL);	/* a fault anywhere else: die of it */
}
#endif

#if SVT_OK_VALUE
/* ok(value): plain, or quoted like JSON when it has other characters (harness/program/outcome.ts) */
static void ok_value(char *out, const char *s, unsigned int n)
{
	static const char esc[] = "\"\\\n\t\r\b\f", letter[] = "\"\\ntrbf";
	unsigned int i;
	int plain = !memmem(s, n, "  ", 2);

	for (i = 0; i < n; i++)
		plain = plain && s[i] && strchr(PLAIN_CHARS, s[i]);
	out += sprintf(out, plain ? "ok(" : "ok(\"");
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *x = c ? strchr(esc, c) : NULL;

		if (x)
			out += sprintf(out, "\\%c", letter[x - esc]);
		else if (c < 0x20 && !plain)
			out += sprintf(out, "\\u%04x", c);
		else
			*out++ = (char)c;
	}
	strcpy(out, plain ? ")" : "\")");
}
#endif

#define KIND(o)	(strncmp(o, "ok", 2) == 0 ? "ok" : (o))	/* as titles name it: no values (they vary) */

/* The step's line; the first step whose outcome the model does not allow is the finding. */
static void report(char *got)
{
	const struct step *s = run->step;
	char want[EXPECT_LEN] = "", kinds[EXPECT_LEN] = "";	/* the expected set as printed; its kinds */
	int k, j, ok = 0, n = 0, ok_expected = 0;

	for (k = 0; s->expect[k]; k++) {
		sprintf(want + strlen(want), "%s%s", k ? ", " : s->expect[1] ? "one of {" : "", s->expect[k]);
		ok |= strcmp(s->expect[k], got) == 0 ||
		      (strcmp(s->expect[k], "ok") == 0 && strncmp(got, "ok(", 3) == 0);	/* ok: any value */
		for (j = 0; j < k && strcmp(KIND(s->expect[j]), KIND(s->expect[k])) != 0; j++)
			;
		if (j == k)	/* a kind not named yet */
			sprintf(kinds + strlen(kinds), "%s%s", n++ ? ", " : "", KIND(s->expect[k]));
		ok_expected |= strcmp(KIND(s->expect[k]), "ok") == 0;
	}
	if (k > 1)
		strcat(want, "}");
	printf("step %d (t0): %s = %s", s->n, s->call, got);
	if (run->diverged || k == 0) {
		printf(" (%s)\n", run->diverged ? "not checked: an earlier step diverged" : "not checked");
		return;
	}
	printf(" (expected %s)%s\n", want, ok ? "" : "  <-- DIVERGES");
	run->checked++;
	if (ok)
		return;
	run->diverged = 1;
	printf("RESULT: step %d did not do what the model expects: the kernel diverged\n", s->n);
	if (strcmp(got, "hang") == 0)
		printf("FINDING: hang: %s did not return\n", s->what);
	else
		printf("FINDING: %s: expected %s%s%s, got %s [%s]\n", s->what, n > 1 ? "one of {" : "", kinds, n > 1 ? "}" : "",
		       strcmp(KIND(got), "ok") != 0 ? got : ok_expected ? "ok (another value)" : "ok", s->rules);
}

/* Step s begins: nothing done yet (as the agent's task starts an op). */
static void begin(const struct step *s)
{
	run->step = s;
#if SVT_WATCH
	run->ms = STEP_DEADLINE_MS;
	run->started = now_ms();
#endif
	memset(r, 0, sizeof(*r));
	ret = 0;
	e = errno = 0;
#if SVT_WATCH
	run->running = 1;
#endif
}

/* The step is over: its outcome as svadiff writes it (harness/agent/observe.ts), checked. */
static void check(enum value_kind value)
{
#if SVT_OK_VALUE
	static char got[6 * DATA_MAX + 16];
#else
	static char got[DATA_MAX + 16];
#endif

#if SVT_WATCH
	run->running = 0;
#endif
	if (r->want && ret == 0 && r->addr != r->want) {
		printf("step %d (t0): %s landed at 0x%llx, not at its slot 0x%llx\n", run->step->n, run->step->call,
		       (unsigned long long)r->addr, (unsigned long long)r->want);
		printf("SETUP PROBLEM: the address plan of the program does not hold here (not a kernel finding)\n");
		exit(2);
	}
	if (ret < 0 && !r->sig)
		strcpy(got, ERRNO_NAME(e ? e : EIO));
#if SVT_FAULTS
	else if (r->sig)
		strcpy(got, SIGNAL_NAME(r->sig));
#endif
#if SVT_OK_VALUE
	else if (value == VALUE_DATA)
		ok_value(got, r->data, r->len);
#else
	else if (value == VALUE_DATA)	/* plain, or quoted when it has other characters (outcome.ts) */
		sprintf(got, strspn(r->data, PLAIN_CHARS) == r->len && !strstr(r->data, "  ") ? "ok(%.*s)" : "ok(\"%.*s\")",
			(int)r->len, r->data);
#endif
	else if (value == VALUE_RETURN)
		sprintf(got, "ok(%lld)", ret);
	else
		strcpy(got, "ok");
	report(got);
}

/* After the last step, t0 gone: 1 a step diverged, else 0 */
static int verdict(void)
{
#if SVT_MKNOD_PATH
	unlink_mknods();
#endif
	if (run->diverged)
		return 1;
	printf("RESULT: every checked step (%d of %d) did what the model expects\n", run->checked, N_STEPS);
	return 0;
}

#if SVT_WATCH
#include <sys/wait.h>
/*
 * The parent watches t0 as the agent watches its tasks: a step past its deadline is a hang,
 * t0 gone during a step died. At the end or at a hang it kills t0 and waits for it, at most
 * KILL_DEADLINE_MS (a task stuck in the kernel does not hold the verdict up).
 */
static int watch(pid_t t0)
{
	static char died[48];
	long long end = 0;
	int status = 0;

	while (waitpid(t0, &status, WNOHANG) != t0) {
		if (run->running && now_ms() >= run->started + run->ms) {
			run->running = 0;
			report("hang");
			printf("step %d did not finish within %d ms: stopping here\n", run->step->n, run->ms);
			run->done = 1;
		}
		if (run->done && !end) {
			kill(t0, SIGKILL);
			end = now_ms() + KILL_DEADLINE_MS;
		}
		if (end && now_ms() >= end) {
			printf("note: 1 task(s) did not die within %d ms of SIGKILL (stuck in the kernel)\n", KILL_DEADLINE_MS);
			break;
		}
		usleep(10000);
	}
	if (!end && WIFEXITED(status) && WEXITSTATUS(status) == 2)
		return 2;	/* a setup problem, said */
	if (!end && !run->done && run->step) {	/* gone during a step */
		snprintf(died, sizeof(died), "died(%s)", SIGNAL_NAME(WIFSIGNALED(status) ? WTERMSIG(status) : 0));
		report(died);
		printf("t0 is gone: the steps after it do not run\n");
	}
	return verdict();
}
#endif

#if SVT_WATCH
/* Fork t0, the task that runs the steps (main goes on in it); this process watches it. */
static void start_task(void)
{
	pid_t t0;

	run = mmap(NULL, sizeof(*run), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	fflush(stdout);
	if (run == MAP_FAILED || (t0 = fork()) < 0) {
		printf("SETUP PROBLEM: cannot start task 0: %s\n", strerror(errno));
		exit(2);
	}
	if (t0 > 0)
		exit(watch(t0));
}
#endif

/* Before the first step (--no-setup-check: without the test device, for svadiff's own tests). */
static void begin_run(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);	/* as in the agent, whose tasks inherit it */
	if (!(argc > 1 && strcmp(argv[1], "--no-setup-check") == 0) && check_setup() != 0)
		exit(2);
#if SVT_WATCH
	start_task();	/* from here on this is t0, a child process; the parent watches it */
#endif
#if SVT_FAULTS
	sigaction(SIGSEGV, &(struct sigaction){ .sa_handler = on_fault }, NULL);
	sigaction(SIGBUS, &(struct sigaction){ .sa_handler = on_fault }, NULL);
#endif
}

/* After the last step: the verdict (with a watcher, the parent ends t0 and gives it) */
static int end_run(void)
{
#if SVT_WATCH
	run->done = 1;	/* the parent ends t0 (SIGKILL, as the agent ends its tasks) */
	for (;;)
		pause();
#endif
	return verdict();
}
#endif
