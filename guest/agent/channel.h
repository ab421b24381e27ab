// SPDX-License-Identifier: GPL-2.0
/*
 * The host channel (docs/agent-protocol.md): lines out (built in one buffer, cut to MAX_LINE,
 * strings hex encoded) and lines in (queued, V and Q answered at once). Part of the agent (agent.c includes it).
 */

static void drain_kmsg(void);

/* ---- output lines ---- */

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


/* ---- input lines ---- */

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
