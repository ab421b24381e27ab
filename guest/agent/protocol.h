// SPDX-License-Identifier: GPL-2.0
/*
 * The host's commands (docs/agent-protocol.md "Host -> agent"): D, O, B, G, I, U, Z, C. Part of
 * the agent (agent.c includes it).
 */

/* Parse an O line into *o; on error, fill err. */
static int parse_op(char **tok, int ntok, struct op *o, char *err, size_t errlen)
{
	long long v[4];
	int i, sl;

	if (ntok != 13)
		ARG_BAD("O: want 13 fields, got %d", ntok);
	if (num(tok[1], 0, MAX_OPS - 1, &v[0]))
		ARG_BAD("O: op index %s not in 0..%d", tok[1], MAX_OPS - 1);
	if (num(tok[2], 0, MAX_TASKS - 1, &v[1]))
		ARG_BAD("O %s: task %s not in 0..%d", tok[1], tok[2], MAX_TASKS - 1);
	if (num(tok[3], 1, OP_LAST, &v[2]))
		ARG_BAD("O %s: opcode %s not in 1..%d", tok[1], tok[3], OP_LAST);
	o->idx = (int32_t)v[0];
	o->task = (int32_t)v[1];
	o->opcode = (int32_t)v[2];
	for (i = 0; i < 8; i++) {
		if (num(tok[4 + i], -(1LL << 62), 1LL << 62, &v[3]))
			ARG_BAD("O %s: argument a%d (%s) is not a number", tok[1], i, tok[4 + i]);
		o->a[i] = v[3];
	}
	sl = unhex(tok[12], o->str, MAX_STR);
	if (sl < 0)
		ARG_BAD("O %s: string argument is not hex of at most %d bytes without NUL", tok[1], MAX_STR);
	o->slen = (uint32_t)sl;
	return check_args(o, err, errlen);	/* each op's own ranges (svt_ops.gen.h) */
}

static int is_dir(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * A directory reads as its entry names (without . and ..), sorted, one a line, as much as fits
 * in len: how the host reads /sys/kernel/iommu_groups and a group's devices. Closes fd.
 */
static size_t list_dir(int fd, char *buf, size_t len)
{
	static char names[256][64];
	char *sorted[256];
	DIR *d = fdopendir(fd);
	struct dirent *ent;
	size_t n = 0, got = 0, i;

	if (!d) {
		close(fd);
		return 0;
	}
	while (n < 256 && (ent = readdir(d)) != NULL) {
		if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0 || strlen(ent->d_name) >= sizeof(names[0]))
			continue;
		strcpy(names[n], ent->d_name);
		sorted[n] = names[n];
		n++;
	}
	closedir(d);
	qsort(sorted, n, sizeof(sorted[0]), cmp_names);
	for (i = 0; i < n; i++) {
		size_t l = strlen(sorted[i]);

		if (got + l + 1 > len)
			break;
		memcpy(buf + got, sorted[i], l);
		got += l;
		buf[got++] = '\n';
	}
	return got;
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
	} else if (is_dir(fd)) {
		got = list_dir(fd, buf, sizeof(buf));	/* closes fd */
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
	long long reset = 0;
	int i;

	if (P.state == P_BATCH || P.state == P_INTER) {
		send_error("D while program %lld runs: end it with Z first", P.id);
		return;
	}
	if (ntok != 12 && ntok != 13) {
		send_error("bad D line: want 12 or 13 fields, got %d", ntok);
		return;
	}
	if (ntok == 13 && num(tok[12], 0, 1, &reset) != 0) {
		send_error("bad D line: reset = %s not in 0..1", tok[12]);
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
	sva_device = P.sva;
	P.isolate_ops = (int)v[6];
	P.isolate_state = (int)v[7];
	P.ioctl = (int)v[8];
	P.reset = (int)reset;
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
	/* interactive: run it now (a task index beyond ntasks gets ESRCH or EEXIST from run_ops) */
	if (run_ops(&o, 1) != 0) {
		char m[96];

		snprintf(m, sizeof(m), "op %d did not finish within its deadline", o.idx);
		teardown(m);
	}
}

/* B <first> <count>: ops first..first+count-1 (already sent) run at the same time, each in its task */
static void cmd_B(char **tok, int ntok)
{
	char err[MSG_MAX] = "";
	long long first, count;
	int i, j;

	if (P.state != P_COLLECT) {
		send_error("B without a program being collected (send D and its O lines first)");
		return;
	}
	if (P.poison[0])
		return;
	if (ntok != 3 || num(tok[1], 0, MAX_OPS - 1, &first) || num(tok[2], 2, MAX_TASKS, &count))
		snprintf(err, sizeof(err), "bad B line: want B <first-op> <count 2..%d>", MAX_TASKS);
	else if (first + count > P.nops)
		snprintf(err, sizeof(err), "B %lld %lld: ops %lld..%lld were not sent", first, count, first, first + count - 1);
	for (i = (int)first; !err[0] && i < first + count; i++) {
		if (in_group[i])
			snprintf(err, sizeof(err), "B %lld %lld: op %d is in another group", first, count, i);
		else if (ops[i].opcode == OP_FORK)
			snprintf(err, sizeof(err), "B %lld %lld: op %d forks; a group creates no task", first, count, i);
		for (j = (int)first; !err[0] && j < i; j++)
			if (ops[j].task == ops[i].task)
				snprintf(err, sizeof(err), "B %lld %lld: ops %d and %d are of one task", first, count, j, i);
	}
	if (err[0]) {
		send_error("%s", err);
		snprintf(P.poison, sizeof(P.poison), "%s", err);
		return;
	}
	for (i = (int)first; i < first + count; i++)
		in_group[i] = 1;
	group_n[first] = (int)count;
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
	else if (strcmp(tok[0], "B") == 0)
		cmd_B(tok, ntok);
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

