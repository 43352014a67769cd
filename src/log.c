#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define LOG_LINE_MAX 8192
#define LOG_SUMMARY_MAX 4096

static enum log_format log_format = LOG_FORMAT_TEXT;
static enum log_level log_min = LOG_INFO;
static bool log_last_shown = true; /* whether the last main message was shown */

static const char *const level_names[] = {
	[LOG_DEBUG] = "debug",	   [LOG_INFO] = "info",	    [LOG_WARNING] = "warning",
	[LOG_ERROR] = "error",	   [LOG_DETAIL] = "detail", [LOG_HINT] = "hint",
	[LOG_CONTEXT] = "context",
};

void log_setup(enum log_format format, enum log_level min_level)
{
	log_format = format;
	log_min = min_level;
}

int log_level_parse(const char *s)
{
	for (int i = LOG_DEBUG; i <= LOG_ERROR; i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

/* Lines kept while held (log_hold), for log_release. */
static struct {
	bool on;
	char *buf;
	size_t len, cap;
} held;

void log_hold(bool on)
{
	held.on = on;
}

/* Keep a line; false when out of memory. */
static bool keep(const char *buf, size_t len)
{
	if (held.len + len > held.cap) {
		size_t cap = held.cap ? held.cap : 4096;
		char *nb;
		while (cap < held.len + len)
			cap *= 2;
		if (!(nb = realloc(held.buf, cap)))
			return false;
		held.buf = nb;
		held.cap = cap;
	}
	memcpy(held.buf + held.len, buf, len);
	held.len += len;
	return true;
}

static void (*out_fn)(const char *line, size_t len, void *arg);
static void *out_arg;

void log_set_output(void (*fn)(const char *line, size_t len, void *arg), void *arg)
{
	out_fn = fn;
	out_arg = arg;
}

/* Write all of buf with one write() where the kernel allows it. */
static void log_write(const char *buf, size_t len)
{
	int saved = errno;

	if (held.on && keep(buf, len))
		return;
	if (out_fn) {
		out_fn(buf, len, out_arg);
		return;
	}
	while (len > 0) {
		ssize_t n = write(STDERR_FILENO, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		buf += n;
		len -= (size_t)n;
	}
	errno = saved;
}

void log_release(bool show)
{
	char *buf = held.buf;
	size_t len = held.len;

	held.buf = NULL;
	held.len = held.cap = 0;
	held.on = false;
	if (show)
		for (size_t i = 0, n; i < len; i += n) {
			const char *nl = memchr(buf + i, '\n', len - i);
			n = nl ? (size_t)(nl + 1 - (buf + i)) : len - i;
			log_write(buf + i, n); /* one write per line, as they came */
		}
	free(buf);
}

size_t log_escape_bytes(const char *s, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	size_t pos = 0, n = strlen(s);

	for (size_t i = 0; i < n && pos + 5 < cap;) {
		size_t k = utf8_seq(s + i, n - i);
		if (k == 0) {
			out[pos++] = '\\';
			out[pos++] = 'x';
			out[pos++] = hex[(unsigned char)s[i] >> 4];
			out[pos++] = hex[(unsigned char)s[i] & 15];
			i++;
		} else if (pos + k + 1 < cap) {
			memcpy(out + pos, s + i, k);
			pos += k;
			i += k;
		} else {
			break;
		}
	}
	out[pos] = '\0';
	return pos;
}

/* The length of text (len bytes) without a multi-byte character cut off at its end. */
static size_t whole_chars(const char *text, size_t len)
{
	size_t back = 0;
	/* step back over at most 3 continuation bytes to the start of the last character */
	while (back < 3 && back < len && ((unsigned char)text[len - 1 - back] & 0xC0) == 0x80)
		back++;
	if (back < len && (unsigned char)text[len - 1 - back] >= 0xC0 &&
	    utf8_seq(text + len - 1 - back, back + 1) == 0)
		return len - 1 - back;
	return len;
}

/* The first error, with its detail, hint and context lines (log_first_error). */
static struct {
	char text[LOG_SUMMARY_MAX];
	size_t len;
	enum {
		FIRST_NONE,
		FIRST_OPEN,
		FIRST_DONE
	} state;
} first;

static void remember(enum log_level level, const char *file, int line, int col, const char *text)
{
	char head[512] = "";
	int n;

	if (level < LOG_DETAIL && first.state == FIRST_OPEN)
		first.state = FIRST_DONE;
	if (level == LOG_ERROR && first.state == FIRST_NONE)
		first.state = FIRST_OPEN;
	if (first.state != FIRST_OPEN)
		return;
	if (file && line > 0 && col > 0)
		snprintf(head, sizeof(head), "%s:%d:%d: ", file, line, col);
	else if (file && line > 0)
		snprintf(head, sizeof(head), "%s:%d: ", file, line);
	else if (file)
		snprintf(head, sizeof(head), "%s: ", file);
	n = snprintf(first.text + first.len, sizeof(first.text) - first.len, "%s%s: %s\n", head,
		     level_names[level], text);
	if (n > 0)
		first.len += (size_t)n < sizeof(first.text) - first.len
				     ? (size_t)n
				     : whole_chars(first.text + first.len,
						   sizeof(first.text) - first.len - 1);
}

const char *log_first_error(void)
{
	return first.text;
}

static bool log_wanted(enum log_level level)
{
	if (level >= LOG_DETAIL)
		return log_last_shown;
	log_last_shown = level >= log_min;
	return log_last_shown;
}

static void log_emit(enum log_level level, const char *file, int line, int col, const char *text)
{
	char buf[LOG_LINE_MAX];
	size_t pos = 0;
	size_t len = strlen(text);

	while (len > 0 && text[len - 1] == '\n')
		len--;

	if (log_format == LOG_FORMAT_JSON) {
		struct timeval tv;
		struct tm tm;
		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		pos = (size_t)snprintf(
			buf, sizeof(buf),
			"{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"msg\":\"",
			tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			tm.tm_sec, (long)tv.tv_usec / 1000, level_names[level]);
		pos += json_escape(buf + pos, sizeof(buf) - 64 - pos, text, len);
		buf[pos++] = '"';
		if (file) {
			pos += (size_t)snprintf(buf + pos, sizeof(buf) - pos, ",\"file\":\"");
			pos += json_escape(buf + pos, sizeof(buf) - 48 - pos, file, strlen(file));
			pos += (size_t)snprintf(buf + pos, sizeof(buf) - pos, "\"");
			if (line > 0)
				pos += (size_t)snprintf(buf + pos, sizeof(buf) - pos,
							",\"line\":%d", line);
			if (col > 0)
				pos += (size_t)snprintf(buf + pos, sizeof(buf) - pos, ",\"col\":%d",
							col);
		}
		pos += (size_t)snprintf(buf + pos, sizeof(buf) - pos, "}\n");
	} else {
		if (file && line > 0 && col > 0)
			pos = (size_t)snprintf(buf, sizeof(buf), "%s:%d:%d: %s: ", file, line, col,
					       level_names[level]);
		else if (file && line > 0)
			pos = (size_t)snprintf(buf, sizeof(buf), "%s:%d: %s: ", file, line,
					       level_names[level]);
		else if (file)
			pos = (size_t)snprintf(buf, sizeof(buf), "%s: %s: ", file,
					       level_names[level]);
		else
			pos = (size_t)snprintf(buf, sizeof(buf),
					       "pgprelude: %s: ", level_names[level]);
		if (pos >= sizeof(buf) - 2)
			pos = sizeof(buf) - 2;
		/* Keep it one line: fold embedded newlines into " | ". */
		for (size_t i = 0; i < len && pos + 4 < sizeof(buf); i++) {
			if (text[i] == '\n') {
				memcpy(buf + pos, " | ", 3);
				pos += 3;
			} else {
				buf[pos++] = text[i];
			}
		}
		buf[pos++] = '\n';
	}
	log_write(buf, pos);
}

static void log_vemit(enum log_level level, const char *file, int line, int col, const char *fmt,
		      va_list ap) __attribute__((format(printf, 5, 0)));

static void log_vemit(enum log_level level, const char *file, int line, int col, const char *fmt,
		      va_list ap)
{
	char text[LOG_LINE_MAX];
	int n;
	if (!log_wanted(level))
		return;
	n = vsnprintf(text, sizeof(text), fmt, ap);
	/* cut short: never end in the middle of a character */
	if (n >= (int)sizeof(text))
		text[whole_chars(text, sizeof(text) - 1)] = '\0';
	remember(level, file, line, col, text);
	log_emit(level, file, line, col, text);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vemit(level, NULL, 0, 0, fmt, ap);
	va_end(ap);
}

void log_at(enum log_level level, const char *file, int line, int col, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vemit(level, file, line, col, fmt, ap);
	va_end(ap);
}

void log_output(const char *prefix, const char *line, int len)
{
	char buf[LOG_LINE_MAX];
	int n = snprintf(buf, sizeof(buf) - 1, "[%s] %.*s", prefix, len, line);

	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf) - 1)
		n = (int)whole_chars(buf, sizeof(buf) - 2);
	buf[n] = '\0';
	if (log_format == LOG_FORMAT_JSON) {
		log_emit(LOG_INFO, NULL, 0, 0, buf);
		return;
	}
	buf[n++] = '\n';
	log_write(buf, (size_t)n);
}
