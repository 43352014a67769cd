/*
 * inilines.c — inih with line numbers (see inilines.h).
 *
 * inih is the only INI grammar here.  Its reader callback (next_line) hands
 * it one line at a time and counts them; its handler (on_pair) is called
 * while that line is the last one read, so the count is the line of what it
 * reports.  Nothing is passed on while inih parses: Debian's inih keeps going
 * after a bad line and only says, at the end, which line was the first one.
 * So what inih reports is kept as a list of items, and once it is done the
 * items before the first bad line are handed to the callbacks in file order,
 * then that line's error is logged.
 *
 * inih tells its handler neither about [section] headers nor whether a call
 * is a new key or the continuation of the previous one:
 *   - a continuation comes with inih's own copy of the previous key's name,
 *     a new key with a name that points into the line just read;
 *   - a line whose first non-blank character is "[" is noted as a section
 *     (its text between "[" and the first "]"), and forgotten when inih
 *     reports it as a continuation.  inih takes every other such line for a
 *     header or, when it has no "]", for a bad line.
 */
#include "inilines.h"

#include <ctype.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "log.h"
#include "util.h"

enum item_kind {
	ITEM_SECTION, /* a line starting with "[" */
	ITEM_KEY,     /* key = value */
	ITEM_CONT     /* an indented line continuing the key before it */
};

struct item {
	enum item_kind kind;
	int line;
	char *text;    /* section: between the brackets, trimmed; key: name; cont: value */
	char *value;   /* key: its first line's value */
	bool bad_tail; /* section: text after "]" that is not a comment */
};

struct reader {
	const char *text; /* what is left to read */
	const char *end;  /* the end of the text */
	int lineno;
	const char *buf; /* inih's line buffer, as last handed to next_line */
	size_t buf_size;
	int refused_line; /* a line next_line refused (NUL byte, too long), or 0 */
	char refused_msg[96];
	struct item *items;
	int n_items;
	int cap_items;
};

static void wipe_free(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

static void drop_last_item(struct reader *r)
{
	struct item *it = &r->items[--r->n_items];

	wipe_free(it->text);
	wipe_free(it->value);
}

static struct item *add_item(struct reader *r, enum item_kind kind)
{
	struct item *it;

	if (r->n_items == r->cap_items) {
		r->cap_items = r->cap_items ? r->cap_items * 2 : 32;
		r->items = xrealloc(r->items, (size_t)r->cap_items * sizeof(*r->items));
	}
	it = &r->items[r->n_items++];
	*it = (struct item){ .kind = kind, .line = r->lineno };
	return it;
}

/* A line whose first non-blank character is "[": note it as a section. */
static void note_section(struct reader *r, const char *s)
{
	const char *close = strchr(s, ']');
	const char *rest = close ? close + 1 : "";
	size_t len = close ? (size_t)(close - s) : strlen(s);
	struct item *it = add_item(r, ITEM_SECTION);

	while (len > 0 && isspace((unsigned char)*s)) {
		s++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	it->text = xstrndup(s, len);
	while (*rest && isspace((unsigned char)*rest))
		rest++;
	it->bad_tail = *rest && *rest != ';' && *rest != '#';
}

/* line without a UTF-8 byte order mark on the first line, and without leading blanks. */
static const char *skip_lead(const char *line, int lineno)
{
	if (lineno == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0)
		line += 3; /* inih skips it too */
	while (*line && isspace((unsigned char)*line))
		line++;
	return line;
}

/* inih's reader: one line per call (fgets-like), NULL at the end or on a line it must not see. */
static char *next_line(char *buf, int num, void *stream)
{
	struct reader *r = stream;
	const char *eol, *lead;
	size_t n;

	if (r->refused_line || r->text >= r->end)
		return NULL;
	eol = memchr(r->text, '\n', (size_t)(r->end - r->text));
	n = eol ? (size_t)(eol - r->text) : (size_t)(r->end - r->text);
	r->lineno++;
	if (memchr(r->text, '\0', n)) {
		r->refused_line = r->lineno;
		snprintf(r->refused_msg, sizeof(r->refused_msg), "line contains a NUL byte");
		return NULL;
	}
	if (n > 0 && r->text[n - 1] == '\r')
		n--;
	if (n > (size_t)num - 1) {
		r->refused_line = r->lineno;
		snprintf(r->refused_msg, sizeof(r->refused_msg),
			 "line too long (at most %d bytes); continue the value on indented lines",
			 num - 1);
		return NULL;
	}
	memcpy(buf, r->text, n);
	buf[n] = '\0';
	r->text = eol ? eol + 1 : r->end;
	r->buf = buf;
	r->buf_size = (size_t)num;
	lead = skip_lead(buf, r->lineno);
	if (*lead == '[')
		note_section(r, lead + 1);
	return buf;
}

/* inih's handler: a key = value line, or an indented line continuing the previous key. */
static int on_pair(void *user, const char *section, const char *name, const char *value)
{
	struct reader *r = user;
	bool from_line = (uintptr_t)name - (uintptr_t)r->buf < r->buf_size;
	struct item *it;

	(void)section; /* noted by next_line: inih truncates long section names */
	if (from_line) {
		it = add_item(r, ITEM_KEY);
		it->text = xstrdup(name);
		it->value = xstrdup(value);
		return 1;
	}
	if (r->n_items > 0 && r->items[r->n_items - 1].kind == ITEM_SECTION &&
	    r->items[r->n_items - 1].line == r->lineno)
		drop_last_item(r); /* an indented "[" line is a continuation */
	it = add_item(r, ITEM_CONT);
	it->text = xstrdup(value);
	return 1;
}

/*
 * The value of the key at items[i]: its first line and the continuation
 * lines after it that come before line stop, joined with "\n"; the number of
 * items used in *used and the first continuation's line in *cont_line.
 */
static char *join_value(const struct reader *r, int i, int stop, int *used, int *cont_line)
{
	size_t len = strlen(r->items[i].value);
	int j;
	char *v, *p;

	*cont_line = 0;
	for (j = i + 1; j < r->n_items && r->items[j].kind == ITEM_CONT && r->items[j].line < stop;
	     j++) {
		if (!*cont_line)
			*cont_line = r->items[j].line;
		len += 1 + strlen(r->items[j].text);
	}
	*used = j - i;
	v = xmalloc(len + 1); /* sized once: no copy of a secret is left behind by a realloc */
	p = stpcpy(v, r->items[i].value);
	for (j = i + 1; j < i + *used; j++) {
		*p++ = '\n';
		p = stpcpy(p, r->items[j].text);
	}
	return v;
}

/* Hand the items before line stop to the callbacks; false when one failed (it logged). */
static bool pass_items(const struct reader *r, int stop, const char *shown,
		       const struct inil_ops *ops, void *user)
{
	int i = 0;

	while (i < r->n_items && r->items[i].line < stop) {
		const struct item *it = &r->items[i];
		int used = 1, cont_line = 0;
		char *value;
		bool ok;

		if (it->kind == ITEM_SECTION && it->bad_tail) {
			log_at(LOG_ERROR, shown, it->line, 0,
			       "unexpected text after \"]\" in section header");
			return false;
		}
		if (it->kind == ITEM_SECTION) {
			if (!ops->section(user, it->text, it->line))
				return false;
		} else if (it->kind == ITEM_KEY) {
			if (*it->text == '\0') {
				log_at(LOG_ERROR, shown, it->line, 0,
				       "missing key name before \"=\"");
				return false;
			}
			value = join_value(r, i, stop, &used, &cont_line);
			ok = ops->key(user, it->text, value, it->line, cont_line);
			wipe_free(value);
			if (!ok)
				return false;
		}
		i += used;
	}
	return true;
}

/* The start of line n (from 1) of text. */
static const char *find_line(const char *text, const char *end, int n)
{
	while (--n > 0 && text < end) {
		const char *eol = memchr(text, '\n', (size_t)(end - text));
		text = eol ? eol + 1 : end;
	}
	return text;
}

/* Log why inih refused line n: its first character says which rule it broke. */
static void log_bad_line(const char *text, const char *end, int n, const char *shown)
{
	const char *line = find_line(text, end, n);
	const char *eol = memchr(line, '\n', (size_t)(end - line));
	char *copy = xstrndup(line, eol ? (size_t)(eol - line) : (size_t)(end - line));

	if (*skip_lead(copy, n) == '[') {
		log_at(LOG_ERROR, shown, n, 0, "missing \"]\" in section header");
	} else {
		log_at(LOG_ERROR, shown, n, 0,
		       "expected \"key = value\", \"[section]\" or a comment");
		log_hint("to continue the previous value, indent the line");
	}
	free(copy);
}

enum status inil_parse_text(const char *text, size_t len, const char *shown,
			    const struct inil_ops *ops, void *user)
{
	struct reader r = { .text = text, .end = text + len };
	enum status st = ST_OK;
	int rc;

	rc = ini_parse_stream(next_line, &r, on_pair, &r);
	if (rc == -2)
		xoom();
	if (rc <= 0 && r.refused_line) {
		/*
		 * The last key's value is not complete: the refused line might
		 * have continued it.  (A key without a name is an error as it is.)
		 */
		while (r.n_items > 0 && r.items[r.n_items - 1].kind == ITEM_CONT)
			drop_last_item(&r);
		if (r.n_items > 0 && r.items[r.n_items - 1].kind == ITEM_KEY &&
		    *r.items[r.n_items - 1].text)
			drop_last_item(&r);
	}
	if (!pass_items(&r,
			rc > 0		 ? rc
			: r.refused_line ? r.refused_line
					 : INT_MAX,
			shown, ops, user)) {
		st = ST_USAGE;
	} else if (rc > 0) {
		log_bad_line(text, r.end, rc, shown);
		st = ST_USAGE;
	} else if (r.refused_line) {
		log_at(LOG_ERROR, shown, r.refused_line, 0, "%s", r.refused_msg);
		st = ST_USAGE;
	}
	while (r.n_items > 0)
		drop_last_item(&r);
	free(r.items);
	return st;
}
