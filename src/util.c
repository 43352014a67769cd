#include "util.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "status.h"

void xoom(void)
{
	log_release(true); /* what was held back for later must not be lost */
	log_error("out of memory");
	exit(EXIT_INTERNAL);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		xoom();
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		xoom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		xoom();
	return q;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		xoom();
	return p;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);
	if (!p)
		xoom();
	return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
	char *p = NULL;

	if (vasprintf(&p, fmt, ap) < 0)
		xoom();
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = xvasprintf(fmt, ap);
	va_end(ap);
	return p;
}

void strv_push(struct strv *sv, char *s)
{
	sv->v = xrealloc(sv->v, ((size_t)sv->n + 2) * sizeof(*sv->v));
	sv->v[sv->n++] = s;
	sv->v[sv->n] = NULL;
}

void strv_terminate(struct strv *sv)
{
	if (!sv->v)
		sv->v = xcalloc(1, sizeof(*sv->v));
}

void strv_free(struct strv *sv)
{
	if (!sv)
		return;
	for (int i = 0; sv->v && i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = 0;
}

/* Room for n more bytes and the NUL. */
static void sbuf_reserve(struct sbuf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 64;

	if (b->len + n + 1 <= b->cap)
		return;
	while (b->len + n + 1 > cap)
		cap *= 2;
	b->p = xrealloc(b->p, cap);
	b->cap = cap;
}

void sbuf_putn(struct sbuf *b, const char *s, size_t n)
{
	sbuf_reserve(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void sbuf_puts(struct sbuf *b, const char *s)
{
	sbuf_putn(b, s, strlen(s));
}

void sbuf_putc(struct sbuf *b, char c)
{
	sbuf_putn(b, &c, 1);
}

void sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	sbuf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void sbuf_put_json(struct sbuf *b, const char *s)
{
	size_t len;

	if (!s) {
		sbuf_puts(b, "null");
		return;
	}
	len = strlen(s);
	sbuf_reserve(b, 6 * len + 2); /* at most 6 bytes out per byte in */
	b->p[b->len++] = '"';
	b->len += json_escape(b->p + b->len, 6 * len, s, len);
	b->p[b->len++] = '"';
	b->p[b->len] = '\0';
}

char *sbuf_take(struct sbuf *b)
{
	char *p = b->p ? b->p : xstrdup("");
	*b = (struct sbuf){ 0 };
	return p;
}

void sbuf_reset(struct sbuf *b)
{
	free(b->p);
	*b = (struct sbuf){ 0 };
}

size_t utf8_seq(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t len;
	unsigned cp;

	if (n == 0)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF) {
		len = 2;
		cp = s[0] & 0x1F;
	} else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
		len = 3;
		cp = s[0] & 0x0F;
	} else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

bool utf8_valid(const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq(s + i, n - i);
		if (k == 0)
			return false;
		i += k;
	}
	return true;
}

size_t json_escape(char *out, size_t cap, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t pos = 0;

	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		char esc[8];
		size_t n, k = 1;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			n = 2;
		} else if (c == '\n' || c == '\t') {
			esc[0] = '\\';
			esc[1] = c == '\n' ? 'n' : 't';
			n = 2;
		} else if (c < 0x20) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		} else if ((k = utf8_seq(s + i, len - i)) == 0) {
			memcpy(esc, "\\ufffd", 6);
			n = 6;
			k = 1;
		} else {
			if (pos + k > cap)
				break;
			memcpy(out + pos, s + i, k);
			pos += k;
			i += k;
			continue;
		}
		if (pos + n > cap)
			break;
		memcpy(out + pos, esc, n);
		pos += n;
		i += k;
	}
	return pos;
}

void json_print(FILE *out, const char *s)
{
	struct sbuf b = { 0 };

	sbuf_put_json(&b, s);
	fputs(b.p, out);
	sbuf_reset(&b);
}

long clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void one_line(char *out, size_t cap, const char *msg)
{
	size_t j = 0;

	if (!cap)
		return;
	for (size_t i = 0; msg && msg[i] && j + 1 < cap; i++) {
		char c = msg[i];
		if (c == '\n') {
			if (!msg[i + 1])
				break;
			c = ' ';
		}
		out[j++] = c;
	}
	out[j] = '\0';
}
