// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel log: /dev/kmsg records forwarded as K lines, in order, each once. Part of the
 * agent (agent.c includes it).
 */

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

