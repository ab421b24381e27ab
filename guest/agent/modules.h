// SPDX-License-Identifier: GPL-2.0
/*
 * Kernel modules: uacce.ko and what it needs at boot, the test module per program. Loading and
 * unloading run in the helper process (the return value is an errno, 0 on success), so that a
 * module stuck in its init or exit cannot stop the agent. Part of the agent (agent.c includes it).
 */

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

/*
 * The test module's own control file (guest/module/svt_main.c): "down" does what unloading
 * does, "up <params>" what loading with them does, "reset <params>" both, without the module
 * loader. The in-place reset between programs (D line field 13; docs/agent-protocol.md).
 */
#define TEST_MODULE_CONTROL	"/sys/module/" TEST_MODULE "/parameters/control"

static int test_module_down;	/* loaded, and its devices are down (a "down" succeeded) */

static int do_control(void *p)
{
	const char *text = p;
	size_t len = strlen(text);
	int fd = open(TEST_MODULE_CONTROL, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return errno;
	n = write(fd, text, len);
	if (n < 0)
		n = -errno;
	close(fd);
	if (n < 0)
		return (int)-n;
	return (size_t)n == len ? 0 : EIO;
}

/* msg gets a reason on failure ("control up: Invalid argument") */
static int control_module(const char *text, char *msg, size_t msglen)
{
	char what[16];

	snprintf(what, sizeof(what), "%.*s", (int)strcspn(text, " "), text);
	return helper_outcome(run_helper(do_control, (void *)text, INSMOD_DEADLINE), "control", what, INSMOD_DEADLINE, msg, msglen);
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

