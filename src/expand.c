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

/* What a substituted value must be quoted for: see expand_conninfo. */
struct quoting {
	bool conninfo;	   /* quote values for libpq's connection string syntax */
	const char *whole; /* the whole template: a reference that is all of it is kept as is */
	size_t whole_len;
};

static bool is_unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit((char)c) || c == '-' ||
	       c == '.' || c == '_' || c == '~';
}

/* Whether a URI's text so far (out) ends inside its authority (after "://", before any "/" or "?"). */
static bool in_authority(const char *out, size_t len)
{
	const char *p = strstr(out, "://");
	return p && !memchr(p + 3, '/', len - (size_t)(p + 3 - out)) &&
	       !memchr(p + 3, '?', len - (size_t)(p + 3 - out));
}

/*
 * Append val to out quoted for where it lands in a connection string (out
 * holds the text so far, rest the template after the reference): in a URI,
 * percent-encoded unless it lands in the host list; in key=value syntax,
 * backslash-escaped (a value of its own is single-quoted, so that an empty
 * or blank one stays a value).
 */
static void put_quoted(struct sbuf *out, const char *val, const char *rest, size_t rest_len)
{
	const char *so_far = out->p ? out->p : "";
	size_t len = out->len;
	bool uri = strncmp(so_far, "postgresql://", 13) == 0 ||
		   strncmp(so_far, "postgres://", 11) == 0;

	if (uri) {
		/* the host list (h1:5432,h2) stays as written; userinfo, dbname and parameters are encoded */
		const char *at = memchr(rest, '@', rest_len);
		size_t upto = strcspn(rest, "/?");
		bool host = in_authority(so_far, len) && !(at && (size_t)(at - rest) < upto);
		for (const unsigned char *c = (const unsigned char *)val; *c; c++) {
			if (host || is_unreserved(*c))
				sbuf_putc(out, (char)*c);
			else
				sbuf_printf(out, "%%%02X", *c);
		}
		return;
	}
	/* key=value: inside '...' when an odd number of unescaped quotes came before */
	bool quoted = false, own = false;
	for (size_t i = 0; i < len; i++) {
		if (so_far[i] == '\\')
			i++;
		else if (so_far[i] == '\'')
			quoted = !quoted;
	}
	if (!quoted) {
		size_t i = len;
		while (i > 0 && (so_far[i - 1] == ' ' || so_far[i - 1] == '\t'))
			i--;
		own = i > 0 && so_far[i - 1] == '=' &&
		      (rest_len == 0 || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\n');
	}
	if (own)
		sbuf_putc(out, '\'');
	for (const char *c = val; *c; c++) {
		if (*c == '\\' || *c == '\'' ||
		    (!quoted && !own && (*c == ' ' || *c == '\t' || *c == '\n' || *c == '\r')))
			sbuf_putc(out, '\\');
		sbuf_putc(out, *c);
	}
	if (own)
		sbuf_putc(out, '\'');
}

/* Expand s[0..len) into out; see expand_value.  level: how deep in defaults s is. */
static enum expand_result expand_into(struct sbuf *out, const char *s, size_t len, int level,
				      const struct quoting *q, char *errbuf, int errlen)
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
			/* a reference that is the whole value is kept as is: it holds a whole conninfo */
			if (q->conninfo && !(s + i == q->whole && end + 1 == q->whole_len))
				put_quoted(out, val, s + end + 1, len - end - 1);
			else
				sbuf_puts(out, val);
			explicit_bzero(val, strlen(val));
		} else if (def_at) {
			r = expand_into(out, s + def_at, end - def_at, level + 1, q, errbuf,
					errlen);
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

static enum expand_result expand(const char *s, bool conninfo, char **out, char *errbuf, int errlen)
{
	struct quoting q = { .conninfo = conninfo, .whole = s, .whole_len = strlen(s) };
	struct sbuf b = { 0 };
	enum expand_result r = expand_into(&b, s, strlen(s), 0, &q, errbuf, errlen);

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

enum expand_result expand_value(const char *s, char **out, char *errbuf, int errlen)
{
	return expand(s, false, out, errbuf, errlen);
}

enum expand_result expand_conninfo(const char *s, char **out, char *errbuf, int errlen)
{
	return expand(s, true, out, errbuf, errlen);
}
