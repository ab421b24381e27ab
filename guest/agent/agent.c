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
 * writes are atomic). The agent sends op n+1 only after op n's result: runs are deterministic;
 * only the ops of a concurrent group (a B line) go to their tasks at once, each with its times.
 *
 * Bad input from the host never makes the agent exit: it answers with an E line.
 *
 * Files: this one (constants, options, start-up) includes the parts in the order they build on
 * each other (channel.h, kmsg.h, procs.h, modules.h, args.h, program.h, exec.h, protocol.h), the
 * runtime it shares with the C reproducers (guest/runtime: results of steps, task processes,
 * submit, device nodes; every section) and svt_ops.gen.h, which guest/build.ts generates from
 * the op descriptions (harness/ops): opcodes, argument checks, deadlines and each op's C.
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
#include "svt_endpoint.h"
#include "svt_defs.h"

#define PROTO_VERSION	1
#define MAX_LINE	4096		/* bytes of one line, without the newline */
#define MAX_OPS		4096
#define MAX_TASKS	8
#define MAX_SLOTS	1024		/* descriptor and mapping names of a program (harness LIMITS) */
#define MAX_DEVS	8
#define MAX_STR		256		/* decoded string argument of an op */
#define AUX_MAX		64
#define KMSG_TEXT_MAX	2000		/* K lines stay below MAX_LINE: 2000 bytes -> 4000 hex */
#define FILE_MAX	2000		/* content of an N line, for the same reason */
#define MSG_MAX		1000		/* E and F messages */
#define EXEC_CHUNK	1024		/* bytes of executable output per w line (2048 hex) */
#define EXEC_OUTPUT_MAX	(256 * 1024)	/* output of one executable relayed; the rest is counted */
#define EXEC_PATH_MAX	255
#define EXEC_TIMEOUT_MAX 600000		/* ms */
#define INQ_LINES	32

#define MOD_DIR		"/lib/modules/svadiff"
#define TEST_MODULE	"svadiff_test"

/* deadlines (ms) of the agent's own work; an op's are the runtime's (svt_defs.h) */
#define INSMOD_DEADLINE		30000
#define RMMOD_DEADLINE		10000
#define RMMOD_RETRY_MS		3000
#define NODES_DEADLINE		5000
#define ENDPOINT_DEADLINE	3000		/* an endpoint's unbind or bind at a program's end */

/* One op as received in an O line. */
struct op {
	int32_t idx;
	int32_t task;
	int32_t opcode;
	int64_t a[8];
	uint32_t slen;
	char str[MAX_STR + 1];
};

/*
 * The runtime the agent shares with the C reproducers (guest/runtime): results of steps,
 * task processes, what steps call (submit, device nodes, files). The agent has every section.
 */
#define SVT_AGENT	1
#define N_FDS		MAX_SLOTS
#define N_OBJS		MAX_SLOTS
#define N_TASKS		MAX_TASKS
#define DEVICES		MAX_DEVS
#define SVA_DEVICE	sva_device	/* the program's device.sva (set with its P line) */
static int sva_device;
#include "svt_types.h"
#include "svt_runtime.h"

/* ------------------------------------------------------------------------------------------ */
/* options and global agent state */

static const char *opt_tty = "/dev/ttyS1";
static int opt_stdio, opt_no_module, opt_no_kmsg;

static int in_fd = -1, out_fd = -1;	/* the channel (the same fd on a tty) */
static int kmsg_fd = -1;
static int sig_fd = -1;

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


/* the parts of the agent, each after what it uses */
#include "channel.h"	/* the host channel: lines out, lines in */
#include "kmsg.h"	/* /dev/kmsg records as K lines */
#include "procs.h"	/* child processes: tasks, the module helper, an executable; the event loop */
#include "modules.h"	/* loading and unloading kernel modules */
#include "args.h"	/* decoding host lines and op arguments */
#include "svt_ops.gen.h"	/* the ops, generated from their descriptions (harness/ops) */
#include "program.h"	/* running a program's ops in its tasks */
#include "exec.h"	/* running an executable (U) */
#include "protocol.h"	/* the host's commands */

/* the channel: stdin/stdout, or the serial line in raw mode */
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

	res_pipe[0] = res_pipe[1] = -1;
	for (i = 0; i < MAX_TASKS; i++)
		cmd_pipe[i][0] = cmd_pipe[i][1] = -1;

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
