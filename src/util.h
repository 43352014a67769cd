/*
 * util.h — what every module needs and no module owns: allocation that
 * cannot fail, string vectors, growable strings, JSON string escaping, and
 * the monotonic clock.
 *
 * Allocation failure is not an error a caller can handle usefully in a
 * start-up tool: as PostgreSQL's frontends do (pg_malloc), the x* functions
 * log "out of memory" and exit with the internal-error code (11).  They never
 * return NULL.  This is the one place below main() that exits.
 */
#ifndef PGPRELUDE_UTIL_H
#define PGPRELUDE_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

void *xmalloc(size_t n) __attribute__((malloc, returns_nonnull));
void *xcalloc(size_t n, size_t size) __attribute__((malloc, returns_nonnull));
void *xrealloc(void *p, size_t n) __attribute__((returns_nonnull));
char *xstrdup(const char *s) __attribute__((malloc, returns_nonnull));
char *xstrndup(const char *s, size_t n) __attribute__((malloc, returns_nonnull));
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2), returns_nonnull));
char *xvasprintf(const char *fmt, va_list ap)
	__attribute__((format(printf, 1, 0), returns_nonnull));

/* Log "out of memory" and exit 11.  For the rare allocation made by a library. */
void xoom(void) __attribute__((noreturn));

/* A NULL-terminated array of malloc'd strings, owned by whoever holds it. */
struct strv {
	char **v;
	int n;
};

/* Append s (taking ownership); v stays NULL-terminated. */
void strv_push(struct strv *sv, char *s);

/* Make v an empty, NULL-terminated array when nothing was pushed yet. */
void strv_terminate(struct strv *sv);

/* Free every string and the array, and zero sv.  NULL or a zeroed strv: no-op. */
void strv_free(struct strv *sv);

/* A growable NUL-terminated string.  Zero-initialise it. */
struct sbuf {
	char *p;
	size_t len;
	size_t cap;
};

void sbuf_putn(struct sbuf *b, const char *s, size_t n);
void sbuf_puts(struct sbuf *b, const char *s);
void sbuf_putc(struct sbuf *b, char c);
void sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* s as a JSON string, quotes included; NULL as null. */
void sbuf_put_json(struct sbuf *b, const char *s);

/* Hand over the string ("" when nothing was put) and reset b. */
char *sbuf_take(struct sbuf *b) __attribute__((returns_nonnull));

/* Free the string and zero b. */
void sbuf_reset(struct sbuf *b);

/*
 * JSON-escape s (len bytes) into out (cap bytes, not NUL-terminated), without
 * the quotes.  A byte that does not start a valid UTF-8 sequence becomes
 * \ufffd, so the result is always valid JSON; a character that would not fit
 * whole is left out, and so is everything after it.  Returns the bytes
 * written.  Needs no allocation (log.c uses it on its stack buffer).
 */
size_t json_escape(char *out, size_t cap, const char *s, size_t len);

/* Print s as a JSON string to out; NULL as null. */
void json_print(FILE *out, const char *s);

/*
 * The length of the valid UTF-8 sequence at the start of s (n bytes), or 0
 * when s does not start with one.
 */
size_t utf8_seq(const char *s, size_t n);

/* Whether s (n bytes) is valid UTF-8. */
bool utf8_valid(const char *s, size_t n);

/*
 * Copy msg (a library's message, maybe several lines) into out (cap bytes)
 * as one line: inner newlines become blanks, a trailing one is dropped.
 */
void one_line(char *out, size_t cap, const char *msg);

/* Milliseconds on the monotonic clock. */
long clock_ms(void);

#endif
