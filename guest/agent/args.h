// SPDX-License-Identifier: GPL-2.0
/*
 * Decoding host lines: fields, numbers as wire.ts writes them, hex strings, and the checks of an
 * op's arguments the generated ops use (svt_ops.gen.h: the program format's ranges, from the op
 * descriptions). Part of the agent (agent.c includes it).
 */

#define MAX_TOK 16

static int split(char *line, char **tok)
{
	int n = 0;
	char *p = line;

	for (;;) {
		char *sp;

		if (n == MAX_TOK)
			return -1;
		if (*p == '\0' || *p == ' ')
			return -1;	/* empty field: two spaces, or a space at either end */
		tok[n++] = p;
		sp = strchr(p, ' ');
		if (!sp)
			return n;
		*sp = '\0';
		p = sp + 1;
	}
}

/* decimal integer as wire.ts writes it: -?[0-9]{1,20}, within int64 and [lo, hi] */
static int num(const char *s, long long lo, long long hi, long long *v)
{
	const char *p = s;
	char *end;
	size_t nd;

	if (*p == '-')
		p++;
	nd = strspn(p, "0123456789");
	if (nd < 1 || nd > 20 || p[nd] != '\0')
		return -1;
	errno = 0;
	*v = strtoll(s, &end, 10);
	if (errno || *end)
		return -1;
	return *v < lo || *v > hi ? -1 : 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* hex (or "-") to a NUL-free C string of at most max bytes; returns length or -1 */
static int unhex(const char *s, char *dst, size_t max)
{
	size_t n = strlen(s), i;

	if (strcmp(s, "-") == 0) {
		dst[0] = '\0';
		return 0;
	}
	if (n == 0 || n % 2 || n / 2 > max)
		return -1;
	for (i = 0; i < n / 2; i++) {
		int h = hexval(s[2 * i]), l = hexval(s[2 * i + 1]);

		if (h < 0 || l < 0 || (h == 0 && l == 0))
			return -1;
		dst[i] = (char)(h << 4 | l);
	}
	dst[n / 2] = '\0';
	return (int)(n / 2);
}

static int only_chars(const char *s, const char *allowed)
{
	return s[strspn(s, allowed)] == '\0';
}

#define NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

/* "0x..." -> value; 0 if the string is empty */
static int parse_value(const char *s, uint64_t *v)
{
	char *end;

	if (s[0] == '\0') {
		*v = 0;
		return 0;
	}
	if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X') || s[2] == '\0')
		return -1;
	errno = 0;
	*v = strtoull(s + 2, &end, 16);
	return errno || *end ? -1 : 0;
}

/* the u64 of an op's string argument (checked by STR_HEX when the O line arrived) */
static uint64_t str_u64(const char *s)
{
	uint64_t v = 0;

	parse_value(s, &v);
	return v;
}

/*
 * Checks of one op's arguments (a, o->str) in check_args(), which svt_ops.gen.h generates from
 * the op descriptions: a value outside them is a host bug, not a test; err says which.
 */
#define ARG_BAD(...)	do { snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)
#define ARG_RANGE(i, lo, hi, what)								\
	do {											\
		if (a[i] < (lo) || a[i] > (hi))							\
			ARG_BAD("O %d: a%d (%s) = %lld not in %lld..%lld", o->idx, i, what,		\
				(long long)a[i], (long long)(lo), (long long)(hi));			\
	} while (0)
#define ARG_ONE_OF(i, what, values, ok)								\
	do {											\
		if (!(ok))									\
			ARG_BAD("O %d: a%d (%s) = %lld is not %s", o->idx, i, what, (long long)a[i], values); \
	} while (0)
#define ARG_MULTIPLE(i, what, m)								\
	do {											\
		if (a[i] % (m))									\
			ARG_BAD("O %d: a%d (%s) = %lld is not a multiple of %d", o->idx, i, what,	\
				(long long)a[i], m);							\
	} while (0)
/* an optional argument: given (a slot) exactly when its condition holds, else -1 */
#define ARG_NEEDED(ok, what, when)								\
	do {											\
		if (!(ok))									\
			ARG_BAD("O %d: %s is given with %s, and only then", o->idx, what, when);	\
	} while (0)
/* the string argument: a u64 "0x..." when present is true, else empty */
#define STR_HEX(present, what)									\
	do {											\
		uint64_t x_;									\
		if ((present) ? o->slen == 0 || parse_value(o->str, &x_) != 0 : o->slen != 0)	\
			ARG_BAD("O %d: the string argument (%s) must be %s", o->idx, what,		\
				(present) ? "0x... of at most 16 digits" : "empty");			\
	} while (0)
#define STR_TEXT(max, what)									\
	do {											\
		if (o->slen > (max))								\
			ARG_BAD("O %d: the string argument (%s) is longer than %d", o->idx, what, max); \
	} while (0)
#define STR_NONE()										\
	do {											\
		if (o->slen != 0)								\
			ARG_BAD("O %d: this op has no string argument", o->idx);			\
	} while (0)
