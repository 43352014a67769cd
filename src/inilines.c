/* inilines.c — inih with line numbers (see inilines.h). */
#include "inilines.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "log.h"

enum line_kind {
	LINE_SKIP,	  /* blank or comment */
	LINE_CONT,	  /* indented: continues the previous key's value */
	LINE_SECTION,	  /* [section] */
	LINE_KEY,	  /* key = value */
	LINE_BAD_SECTION, /* "[" without "]" */
	LINE_BAD	  /* none of the above */
};

struct reader {
	const char *text; /* what is left to read */
	const char *end;  /* the end of the text */
	const char *shown;
	const struct inil_ops *ops;
	void *user;
	int lineno;
	enum line_kind kind; /* of the current line */
	bool have_prev_key;  /* inih's prev_name is set: indented lines continue it */
	enum status st;

	char *pend_name; /* the key whose value is being collected, or NULL */
	char *pend_value;
	size_t pend_len;
	int pend_line;
	int pend_cont_line; /* its first continuation line, or 0 */
};

/* inih's find_chars_or_comment: the first of chars, or an inline ";" after a blank. */
static const char *find_chars_or_comment(const char *s, const char *chars)
{
	bool was_space = false;
	while (*s && (!chars || !strchr(chars, *s)) && !(was_space && *s == ';')) {
		was_space = isspace((unsigned char)*s);
		s++;
	}
	return s;
}

/* How inih (v55, default options) reads line: the same tests in the same order. */
static enum line_kind classify_line(const char *line, bool have_prev_key, const char **name,
				    size_t *name_len, const char **rest)
{
	const char *s = line;
	const char *e;

	while (*s && isspace((unsigned char)*s))
		s++;
	if (*s == '\0' || *s == ';' || *s == '#')
		return LINE_SKIP;
	if (have_prev_key && s > line)
		return LINE_CONT;
	if (*s == '[') {
		e = find_chars_or_comment(s + 1, "]");
		if (*e != ']')
			return LINE_BAD_SECTION;
		*name = s + 1;
		*name_len = (size_t)(e - s - 1);
		*rest = e + 1;
		return LINE_SECTION;
	}
	e = find_chars_or_comment(s, "=:");
	return (*e == '=' || *e == ':') ? LINE_KEY : LINE_BAD;
}

static void fail(struct reader *r, const char *msg)
{
	if (r->st != ST_OK)
		return;
	log_at(LOG_ERROR, r->shown, r->lineno, 0, "%s", msg);
	r->st = ST_USAGE;
}

static void fail_oom(struct reader *r)
{
	if (r->st != ST_OK)
		return;
	log_error("out of memory");
	r->st = ST_INTERNAL;
}

/* Forget the pending key, wiping its value. */
static void drop_pending(struct reader *r)
{
	if (r->pend_value)
		explicit_bzero(r->pend_value, r->pend_len);
	free(r->pend_name);
	free(r->pend_value);
	r->pend_name = NULL;
	r->pend_value = NULL;
	r->pend_len = 0;
	r->pend_cont_line = 0;
}

/* Hand the pending key over, now that its value is complete. */
static void commit_pending(struct reader *r)
{
	if (!r->pend_name)
		return;
	if (r->st == ST_OK &&
	    !r->ops->key(r->user, r->pend_name, r->pend_value ? r->pend_value : "", r->pend_line,
			 r->pend_cont_line))
		r->st = ST_USAGE;
	drop_pending(r);
}

static void append_value(struct reader *r, const char *value, bool newline)
{
	size_t add = strlen(value) + (newline ? 1 : 0);
	char *v = malloc(r->pend_len + add + 1);

	if (!v) {
		fail_oom(r);
		return;
	}
	if (r->pend_value) { /* copied rather than realloc'd, so that no stray copy is left unwiped */
		memcpy(v, r->pend_value, r->pend_len);
		explicit_bzero(r->pend_value, r->pend_len);
		free(r->pend_value);
	}
	r->pend_value = v;
	if (newline)
		v[r->pend_len++] = '\n';
	memcpy(v + r->pend_len, value, strlen(value) + 1);
	r->pend_len += strlen(value);
}

static void open_section(struct reader *r, const char *name, size_t len, const char *rest)
{
	char *copy;

	while (*rest && isspace((unsigned char)*rest))
		rest++;
	if (*rest && *rest != ';' && *rest != '#') {
		fail(r, "unexpected text after \"]\" in section header");
		return;
	}
	while (len > 0 && isspace((unsigned char)*name)) {
		name++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)name[len - 1]))
		len--;
	copy = strndup(name, len);
	if (!copy) {
		fail_oom(r);
		return;
	}
	if (!r->ops->section(r->user, copy, r->lineno))
		r->st = ST_USAGE;
	free(copy);
}

/* inih's reader callback: one line per call (fgets-like), NULL at the end or after an error. */
static char *inil_reader(char *buf, int num, void *stream)
{
	struct reader *r = stream;
	const char *eol, *line, *name = "", *rest = "";
	size_t n, name_len = 0;

	if (r->st != ST_OK || r->text >= r->end)
		return NULL;
	eol = memchr(r->text, '\n', (size_t)(r->end - r->text));
	n = eol ? (size_t)(eol - r->text) : (size_t)(r->end - r->text);
	r->lineno++;
	if (memchr(r->text, '\0', n)) {
		fail(r, "line contains a NUL byte");
		return NULL;
	}
	if (n > 0 && r->text[n - 1] == '\r')
		n--;
	if (n > (size_t)num - 1) {
		char msg[96];
		snprintf(msg, sizeof(msg),
			 "line too long (at most %d bytes); continue the value on indented lines",
			 num - 1);
		fail(r, msg);
		return NULL;
	}
	memcpy(buf, r->text, n);
	buf[n] = '\0';
	r->text = eol ? eol + 1 : r->end;
	line = buf;
	if (r->lineno == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0)
		line += 3; /* inih skips a UTF-8 BOM */

	r->kind = classify_line(line, r->have_prev_key, &name, &name_len, &rest);
	if (r->kind != LINE_SKIP && r->kind != LINE_CONT)
		commit_pending(r);
	switch (r->kind) {
	case LINE_SKIP:
	case LINE_CONT:
		break;
	case LINE_SECTION:
		open_section(r, name, name_len, rest);
		r->have_prev_key = false;
		break;
	case LINE_KEY:
		r->have_prev_key = true;
		break;
	case LINE_BAD_SECTION:
		fail(r, "missing \"]\" in section header");
		break;
	case LINE_BAD:
		fail(r, "expected \"key = value\", \"[section]\" or a comment");
		log_hint("to continue the previous value, indent the line");
		break;
	}
	if (r->st != ST_OK)
		return NULL;
	return buf;
}

/* inih's handler: a key = value line, or a continuation line of the previous key. */
static int inil_handler(void *user, const char *section, const char *name, const char *value)
{
	struct reader *r = user;

	(void)section; /* ours: inih truncates long section names */
	if (r->st != ST_OK)
		return 0;
	if (r->kind == LINE_CONT) {
		if (r->pend_name) {
			if (!r->pend_cont_line)
				r->pend_cont_line = r->lineno;
			append_value(r, value, true);
		}
		return r->st == ST_OK;
	}
	if (*name == '\0') {
		fail(r, "missing key name before \"=\"");
		return 0;
	}
	r->pend_name = strdup(name);
	r->pend_line = r->lineno;
	if (!r->pend_name) {
		fail_oom(r);
		return 0;
	}
	append_value(r, value, false);
	return r->st == ST_OK;
}

enum status inil_parse_text(const char *text, size_t len, const char *shown,
			    const struct inil_ops *ops, void *user)
{
	struct reader r = { .text = text,
			    .end = text + len,
			    .shown = shown,
			    .ops = ops,
			    .user = user,
			    .st = ST_OK };
	int rc;

	rc = ini_parse_stream(inil_reader, &r, inil_handler, &r);
	commit_pending(&r);
	if (r.st == ST_OK && rc == -2)
		fail_oom(&r);
	else if (r.st == ST_OK && rc != 0) {
		r.lineno = rc > 0 ? rc : 0;
		fail(&r, "syntax error");
	}
	drop_pending(&r);
	return r.st;
}
