// SPDX-License-Identifier: GPL-2.0
/*
 * svadiff reproducer
 * svadiff-title: general protection fault in __mutex_lock
 * svadiff regression entry uacce-stale-node-open-use-after-free (corpus/regress/uacce-stale-node-open-use-after-free.json)
 * Expectations: svadiff's reference model for 7.2.13+deb14-amd64 (debian, x86_64).
 *
 * Needs uacce.ko and the svadiff test device (guest/module/svadiff_test.c of svadiff), loaded
 * fresh with these parameters (node names and queue ids assume it); then, as root:
 *   rmmod svadiff_test; insmod svadiff_test.ko devices=1 mmio_pages=2 dus_pages=2 queue_limit=4 sva=0 isolate_ops=0 isolate_state=0 ioctl=0 api=svadiff-test-v1 algs=copy,fill
 *   gcc -static -O2 -Wall -o repro repro.c && ./repro; rmmod svadiff_test
 * Some reports only appear at rmmod. Exit status: 1 a step did not do what the model expects
 * (the finding reproduced), 0 every checked step did, 2 a setup problem. The steps run in
 * a child process, task t0, as in the svadiff agent; the parent watches it (hangs, deaths).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>

/* guest/include/svt_abi.h of svadiff (the test device's ABI) and its agent's conventions */
#define SVT_UACCE_NAME_FMT	"svt%d"
#define SVT_DRIVER_NAME		"svadiff_test"
#define UACCE_CLASS		"/sys/class/uacce"
#define DRIVER_DIR		"/sys/bus/platform/drivers/" SVT_DRIVER_NAME
#define MODULE_PARAMS		"/sys/module/" SVT_DRIVER_NAME "/parameters"
#define STEP_DEADLINE_MS	10000	/* a step that takes longer is a hang */
#define KILL_DEADLINE_MS	5000
#define PATH_LEN		200
#define DATA_MAX		1024	/* bytes of a result (what was read, the path opened) */
#define PLAIN_CHARS		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.: -"	/* a value of these is shown unquoted */
#define DEVICES			1
#define N_STEPS			5
#define EXPECT_LEN		64	/* the longest expected set as printed */
#define INSMOD_LINE		"insmod svadiff_test.ko devices=1 mmio_pages=2 dus_pages=2 queue_limit=4 sva=0 isolate_ops=0 isolate_state=0 ioctl=0 api=svadiff-test-v1 algs=copy,fill"
static int fd_q0 = -1, fd_q6 = -1;	/* descriptors */

/* ---- the steps: STEP() says what each is, check() prints its outcome and checks it ---- */

/* What a step did (a task sends it to its controller: less than PIPE_BUF, written at once). */
struct res {
	int sig;		/* SIGSEGV or SIGBUS raised during the step, 0 if none */
	uint64_t addr, want;	/* mmap, mremap: where the mapping went, where it should be */
	unsigned int len;
	char data[DATA_MAX];	/* what the step read, or the path it opened */
};

#define DATAF(r, ...)	((r)->len = (unsigned int)snprintf((r)->data, DATA_MAX, __VA_ARGS__))

static char path[PATH_LEN];		/* the path a step opens */

static long long file_io(const char *path, const char *out, char *in, size_t len);
static long long write_file(const char *path, const char *s);
static void mknod_path(int dev, char *path);

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

/* The run so far (with a watcher: shared with the parent, which watches t0). */
static struct run {
	const struct step *step;	/* the step running or last run (static: the same in both processes) */
	int checked, diverged;
	int running, ms, done;		/* ms: the running step's deadline */
	long long started;
} run0, *run = &run0;

static void begin_run(int argc, char **argv);
static void begin(const struct step *s);
static void check(enum value_kind value);
static int end_run(void);

int main(int argc, char **argv)
{
	begin_run(argc, argv);

	/* open a second device node of svt0 (mknod of its major:minor): uacce_fops_open() gets a
	 * new queue */
	STEP(0, "q0 = open(/tmp/svt0.node)", "open", "open.ok", "ok(\"/tmp/svt0.node\")");
	mknod_path(0, path);
	ret = fd_q0 = open(path, O_RDWR | O_CLOEXEC);
	e = errno;
	DATAF(r, "%s", path);
	check(VALUE_DATA);

	/* remove device 0: unbind the parent driver, whose remove calls uacce_remove() */
	STEP(1, "unbind svadiff_test.0", "remove", "remove.ok", "ok");
	ret = write_file(DRIVER_DIR "/unbind", SVT_DRIVER_NAME ".0");
	e = errno;
	if (ret >= 0)
		ret = 0;
	check(VALUE_NONE);

	/* re-add device 0: bind the parent driver again, a fresh uacce device */
	STEP(2, "bind svadiff_test.0", "add", "add.ok", "ok");
	ret = write_file(DRIVER_DIR "/bind", SVT_DRIVER_NAME ".0");
	e = errno;
	if (ret >= 0)
		ret = 0;
	check(VALUE_NONE);

	/* open a second device node of svt0 (mknod of its major:minor): uacce_fops_open() gets a
	 * new queue */
	STEP(3, "q6 = open(/tmp/svt0.node)", "open", "open.ok", "ok(\"/tmp/svt0.node\")");
	mknod_path(0, path);
	ret = fd_q6 = open(path, O_RDWR | O_CLOEXEC);
	e = errno;
	DATAF(r, "%s", path);
	check(VALUE_DATA);

	/* remove device 0: unbind the parent driver, whose remove calls uacce_remove() */
	STEP(4, "unbind svadiff_test.0", "remove", "remove.ok", "ok");
	ret = write_file(DRIVER_DIR "/unbind", SVT_DRIVER_NAME ".0");
	e = errno;
	if (ret >= 0)
		ret = 0;
	check(VALUE_NONE);

	return end_run();
}

/* ---- svadiff's helpers: finding the device, checking outcomes (the reproducer is main) ---- */

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

static long long write_file(const char *path, const char *s)
{
	return file_io(path, s, NULL, strlen(s));
}

static char node[DEVICES][128];	/* each device's uacce class entry: the current or last seen */
static dev_t devt[DEVICES];		/* and its major:minor */
static int have_devt[DEVICES];
static int mknod_done[DEVICES];	/* /tmp/svt<dev>.node was made */

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
	return 1;
}

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

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* errno and signal names as svadiff writes them (harness/program/errno.ts), else errno<N>, SIG<N> */
#define NAME(x)	[x] = #x
static const char *const errno_names[] = {
	NAME(EPERM), NAME(ENOENT), NAME(ESRCH), NAME(EINTR), NAME(EIO), NAME(ENXIO), NAME(E2BIG),
	NAME(ENOEXEC), NAME(EBADF), NAME(ECHILD), NAME(EAGAIN), NAME(ENOMEM), NAME(EACCES),
	NAME(EFAULT), NAME(ENOTBLK), NAME(EBUSY), NAME(EEXIST), NAME(EXDEV), NAME(ENODEV),
	NAME(ENOTDIR), NAME(EISDIR), NAME(EINVAL), NAME(ENFILE), NAME(EMFILE), NAME(ENOTTY),
	NAME(ETXTBSY), NAME(EFBIG), NAME(ENOSPC), NAME(ESPIPE), NAME(EROFS), NAME(EMLINK), NAME(EPIPE),
	NAME(EDOM), NAME(ERANGE), NAME(EDEADLK), NAME(ENAMETOOLONG), NAME(ENOSYS), NAME(EOVERFLOW),
	NAME(EOPNOTSUPP), NAME(ETIMEDOUT),
};
#define ERRNO_NAME(v)	name_of(errno_names, sizeof(errno_names) / sizeof(*errno_names), v, "errno%d")
static const char *const signal_names[] = {
	NAME(SIGILL), NAME(SIGTRAP), NAME(SIGABRT), NAME(SIGBUS), NAME(SIGFPE), NAME(SIGKILL),
	NAME(SIGSEGV), NAME(SIGPIPE), NAME(SIGTERM),
};
#define SIGNAL_NAME(v)	name_of(signal_names, sizeof(signal_names) / sizeof(*signal_names), v, "SIG%d")

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

/* ---- one task: main() is the program, each step checked right after it ---- */

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
	run->ms = STEP_DEADLINE_MS;
	run->started = now_ms();
	memset(r, 0, sizeof(*r));
	ret = 0;
	e = errno = 0;
	run->running = 1;
}

/* The step is over: its outcome as svadiff writes it (harness/agent/observe.ts), checked. */
static void check(enum value_kind value)
{
	static char got[DATA_MAX + 16];

	run->running = 0;
	if (r->want && ret == 0 && r->addr != r->want) {
		printf("step %d (t0): %s landed at 0x%llx, not at its slot 0x%llx\n", run->step->n, run->step->call,
		       (unsigned long long)r->addr, (unsigned long long)r->want);
		printf("SETUP PROBLEM: the address plan of the program does not hold here (not a kernel finding)\n");
		exit(2);
	}
	if (ret < 0 && !r->sig)
		strcpy(got, ERRNO_NAME(e ? e : EIO));
	else if (value == VALUE_DATA)	/* plain, or quoted when it has other characters (outcome.ts) */
		sprintf(got, strspn(r->data, PLAIN_CHARS) == r->len && !strstr(r->data, "  ") ? "ok(%.*s)" : "ok(\"%.*s\")",
			(int)r->len, r->data);
	else if (value == VALUE_RETURN)
		sprintf(got, "ok(%lld)", ret);
	else
		strcpy(got, "ok");
	report(got);
}

/* After the last step, t0 gone: 1 a step diverged, else 0 */
static int verdict(void)
{
	unlink_mknods();
	if (run->diverged)
		return 1;
	printf("RESULT: every checked step (%d of %d) did what the model expects\n", run->checked, N_STEPS);
	return 0;
}

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

/* Before the first step (--no-setup-check: without the test device, for svadiff's own tests). */
static void begin_run(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);	/* as in the agent, whose tasks inherit it */
	if (!(argc > 1 && strcmp(argv[1], "--no-setup-check") == 0) && check_setup() != 0)
		exit(2);
	start_task();	/* from here on this is t0, a child process; the parent watches it */
}

/* After the last step: the verdict (with a watcher, the parent ends t0 and gives it) */
static int end_run(void)
{
	run->done = 1;	/* the parent ends t0 (SIGKILL, as the agent ends its tasks) */
	for (;;)
		pause();
	return verdict();
}

/* svadiff-program:
{"format":"svadiff-program","version":1,
"device": {"devices":1,"mmio_pages":2,"dus_pages":2,"queue_limit":4,"sva":false,"isolate_ops":"none","isolate_state":false,"ioctl":false,"api":"svadiff-test-v1","algorithms":["copy","fill"]},
"ops": [
{"op":"open","task":"t0","fd":"q0","dev":0,"via":"mknod"},
{"op":"remove","task":"t0","dev":0},
{"op":"add","task":"t0","dev":0},
{"op":"open","task":"t0","fd":"q6","dev":0,"via":"mknod"},
{"op":"remove","task":"t0","dev":0}
]}
*/
