/* expand.c — ${VAR} expansion and *_FILE secrets (see expand.h). */
#include "expand.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define SECRET_MAX (1024L * 1024) /* largest *_FILE secret we read */
#define EXPAND_MAX_DEPTH 32	  /* how deep ${A:-${B:-…}} defaults may nest */

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_';
}

const char *expand_read_secret(const char *path, char **out)
{
	struct sbuf b = { 0 };
	char chunk[4096];
	const char *why = NULL;
	int fd;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return strerror(errno ? errno : EIO);
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			why = strerror(errno ? errno : EIO);
			break;
		}
		if (n == 0)
			break;
		if (memchr(chunk, '\0', (size_t)n)) {
			why = "file contains a NUL byte";
			break;
		}
		if (b.len + (size_t)n > (size_t)SECRET_MAX) {
			why = "file is larger than 1 MiB";
			break;
		}
		sbuf_putn(&b, chunk, (size_t)n);
	}
	close(fd);
	explicit_bzero(chunk, sizeof(chunk));
	if (why) {
		if (b.p)
			explicit_bzero(b.p, b.cap);
		sbuf_reset(&b);
		return why;
	}
	if (b.len > 0 && b.p[b.len - 1] == '\n') {
		b.p[--b.len] = '\0';
		if (b.len > 0 && b.p[b.len - 1] == '\r')
			b.p[--b.len] = '\0';
	}
	*out = sbuf_take(&b);
	return NULL;
}

static void errf(char *errbuf, int errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void errf(char *errbuf, int errlen, const char *fmt, ...)
{
	va_list ap;
	if (!errbuf || errlen <= 0)
		return;
	va_start(ap, fmt);
	vsnprintf(errbuf, (size_t)errlen, fmt, ap);
	va_end(ap);
}

/*
 * The value of variable name (namelen bytes): getenv(name), else the
 * content of the file named by name_FILE, else NULL.  *val is malloc'd.
 */
static enum expand_result lookup_var(const char *name, size_t namelen, char **val, char *errbuf,
				     int errlen)
{
	char *var = xmalloc(namelen + sizeof("_FILE"));
	const char *v;
	enum expand_result r = EXPAND_OK;

	*val = NULL;
	memcpy(var, name, namelen);
	var[namelen] = '\0';
	v = getenv(var);
	if (v) {
		*val = xstrdup(v);
	} else {
		memcpy(var + namelen, "_FILE", sizeof("_FILE"));
		v = getenv(var);
		const char *why = v && *v ? expand_read_secret(v, val) : NULL;
		if (why) {
			errf(errbuf, errlen, "could not read %s \"%s\": %s", var, v, why);
			r = EXPAND_FILE;
		}
	}
	free(var);
	return r;
}

/*
 * The end of the default of a ${NAME:-default} whose default starts at
 * s[at]: the index of its closing "}", or 0 after writing the error.
 */
static size_t default_end(const char *s, size_t len, size_t at, int level, char *errbuf, int errlen)
{
	size_t end = at;
	int depth = 0;

	for (;;) {
		if (end >= len) {
			errf(errbuf, errlen, "unterminated ${");
			return 0;
		}
		if (s[end] == '$' && end + 1 < len && s[end + 1] == '$') {
			end += 2;
		} else if (s[end] == '$' && end + 1 < len && s[end + 1] == '{') {
			if (++depth + level >= EXPAND_MAX_DEPTH) {
				errf(errbuf, errlen,
				     "defaults nested more than %d deep in ${NAME:-default}",
				     EXPAND_MAX_DEPTH);
				return 0;
			}
			end += 2;
		} else if (s[end] == '}' && depth-- == 0) {
			return end;
		} else {
			end++;
		}
	}
}

/* Expand s[0..len) into out; see expand_value.  level: how deep in defaults s is. */
static enum expand_result expand_into(struct sbuf *out, const char *s, size_t len, int level,
				      char *errbuf, int errlen)
{
	size_t i = 0;

	while (i < len) {
		size_t name_at, j, def_at = 0, end;
		char *val = NULL;
		enum expand_result r;

		if (s[i] != '$') {
			sbuf_putc(out, s[i++]);
			continue;
		}
		if (i + 1 < len && s[i + 1] == '$') {
			sbuf_putc(out, '$');
			i += 2;
			continue;
		}
		if (i + 1 >= len || s[i + 1] != '{') {
			sbuf_putc(out, s[i++]);
			continue;
		}
		name_at = j = i + 2;
		while (j < len && is_name_char(s[j]))
			j++;
		if (j >= len) {
			errf(errbuf, errlen, "unterminated ${");
			return EXPAND_SYNTAX;
		}
		if (j == name_at || is_digit(s[name_at]) ||
		    (s[j] != '}' && !(s[j] == ':' && j + 1 < len && s[j + 1] == '-'))) {
			errf(errbuf, errlen,
			     "bad variable reference: use ${NAME} or ${NAME:-default}");
			return EXPAND_SYNTAX;
		}
		end = j;
		if (s[j] != '}') {
			def_at = j + 2;
			end = default_end(s, len, def_at, level, errbuf, errlen);
			if (!end)
				return EXPAND_SYNTAX;
		}
		r = lookup_var(s + name_at, j - name_at, &val, errbuf, errlen);
		if (r != EXPAND_OK)
			return r;
		if (val && (*val || !def_at)) {
			sbuf_puts(out, val);
			explicit_bzero(val, strlen(val));
		} else if (def_at) {
			r = expand_into(out, s + def_at, end - def_at, level + 1, errbuf, errlen);
		} else {
			errf(errbuf, errlen, "variable %.*s is not set", (int)(j - name_at),
			     s + name_at);
			r = EXPAND_UNSET;
		}
		free(val);
		if (r != EXPAND_OK)
			return r;
		i = end + 1;
	}
	return EXPAND_OK;
}

enum expand_result expand_value(const char *s, char **out, char *errbuf, int errlen)
{
	struct sbuf b = { 0 };
	enum expand_result r = expand_into(&b, s, strlen(s), 0, errbuf, errlen);

	*out = NULL;
	if (r == EXPAND_OK) {
		*out = sbuf_take(&b);
		return r;
	}
	if (b.p)
		explicit_bzero(b.p, b.len);
	sbuf_reset(&b);
	return r;
}
