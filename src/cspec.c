/*
 * cspec.c — constraint specs, the pure part (see cspec.h): the file reader,
 * identifiers, SQL text and the decision for a unique.  Every identifier
 * from a file goes into SQL quoted (cspec_quote).
 */
#include "cspec.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "inilines.h"
#include "log.h"

#define NAME_MAX_BYTES 63 /* NAMEDATALEN - 1: longer names are truncated by the server */

/* ---- identifiers and values --------------------------------------------- */

char *cspec_quote(const char *name)
{
	struct sbuf b = { 0 };

	sbuf_putc(&b, '"');
	for (const char *c = name; *c; c++) {
		if (*c == '"')
			sbuf_putc(&b, '"');
		sbuf_putc(&b, *c);
	}
	sbuf_putc(&b, '"');
	return sbuf_take(&b);
}

char *cspec_plain_list(const struct strv *names)
{
	struct sbuf b = { 0 };

	for (int i = 0; i < names->n; i++)
		sbuf_printf(&b, "%s%s", i ? ", " : "", names->v[i]);
	return sbuf_take(&b);
}

static bool is_ident_start(unsigned char c)
{
	return isalpha(c) || c == '_' || c >= 0x80;
}

static bool is_ident_char(unsigned char c)
{
	return is_ident_start(c) || isdigit(c) || c == '$';
}

/* A "quoted" identifier at p (on the quote) into b.  Returns past it, or NULL with *err. */
static const char *parse_quoted(const char *p, struct sbuf *b, const char **err)
{
	for (p++;; p++) {
		if (*p == '\0') {
			*err = "unterminated quoted identifier";
			return NULL;
		}
		if (*p == '"') {
			if (p[1] != '"')
				break;
			p++;
		}
		sbuf_putc(b, *p);
	}
	if (b->len == 0) {
		*err = "zero-length quoted identifier";
		return NULL;
	}
	return p + 1;
}

bool cspec_parse_ident(const char **s, char **out, const char **err)
{
	const char *p = *s;
	struct sbuf b = { 0 };

	*out = NULL;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '"') {
		p = parse_quoted(p, &b, err);
	} else if (!is_ident_start((unsigned char)*p)) {
		*err = *p ? "expected a name (a letter or \"_\", or a \"quoted\" name)"
			  : "missing name";
		p = NULL;
	} else {
		for (; is_ident_char((unsigned char)*p); p++)
			sbuf_putc(&b, (char)tolower((unsigned char)*p));
	}
	if (p && b.len > NAME_MAX_BYTES) {
		*err = "name longer than 63 bytes (the server would truncate it)";
		p = NULL;
	}
	if (!p) {
		sbuf_reset(&b);
		return false;
	}
	*out = sbuf_take(&b);
	*s = p;
	return true;
}

bool cspec_parse_ident_list(const char *s, struct strv *out, const char **err)
{
	const char *p = s;

	memset(out, 0, sizeof(*out));
	for (;;) {
		char *name = NULL;
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0' && out->n == 0) {
			*err = "empty column list";
			return false;
		}
		if (*p == ',' || *p == '\0') {
			*err = "empty name in the list (two commas, or a trailing comma)";
			goto fail;
		}
		if (!cspec_parse_ident(&p, &name, err))
			goto fail;
		for (int i = 0; i < out->n; i++) {
			if (strcmp(out->v[i], name) == 0) {
				free(name);
				*err = "a column is named twice";
				goto fail;
			}
		}
		strv_push(out, name);
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			return true;
		if (*p != ',') {
			*err = "expected \",\" between names";
			goto fail;
		}
		p++;
	}
fail:
	strv_free(out);
	return false;
}

/* The end of the $tag$ at p (on its first "$"), or NULL when p starts none. */
static const char *dollar_tag_end(const char *p)
{
	const char *q = p + 1;

	if (*q != '$' && !(isalpha((unsigned char)*q) || *q == '_' || (unsigned char)*q >= 0x80))
		return NULL;
	while (*q != '$') {
		if (!is_ident_char((unsigned char)*q) || *q == '$')
			return NULL;
		q++;
	}
	return q + 1;
}

/* Past the quoted text that starts at p (on its quote), or NULL when it is not closed. */
static const char *skip_quoted(const char *p, bool backslash)
{
	char quote = *p;

	for (p++; *p; p++) {
		if (backslash && *p == '\\' && p[1]) {
			p++;
		} else if (*p == quote) {
			if (p[1] != quote)
				return p + 1;
			p++;
		}
	}
	return NULL;
}

/* Past the block comment at p (on its slash; comments nest), or NULL when it is not closed. */
static const char *skip_block_comment(const char *p)
{
	int depth = 0;

	while (*p) {
		if (p[0] == '/' && p[1] == '*') {
			depth++;
			p += 2;
		} else if (p[0] == '*' && p[1] == '/') {
			p += 2;
			if (--depth == 0)
				return p;
		} else {
			p++;
		}
	}
	return NULL;
}

bool cspec_check_where(const char *s, const char **err)
{
	int depth = 0;
	const char *p = s;

	while (*p) {
		const char *next = p + 1;
		bool after_ident = p > s && is_ident_char((unsigned char)p[-1]);

		if (*p == '\'' || *p == '"') {
			bool e = *p == '\'' && after_ident && (p[-1] == 'e' || p[-1] == 'E') &&
				 (p - 1 == s || !is_ident_char((unsigned char)p[-2]));
			next = skip_quoted(p, e);
			if (!next) {
				*err = *p == '"' ? "unterminated quoted name"
						 : "unterminated string";
				return false;
			}
		} else if (*p == '$' && !after_ident && dollar_tag_end(p)) {
			const char *tag = p, *body = dollar_tag_end(p);
			size_t tlen = (size_t)(body - tag);
			next = NULL;
			for (const char *q = body; *q; q++) {
				if (strncmp(q, tag, tlen) == 0) {
					next = q + tlen;
					break;
				}
			}
			if (!next) {
				*err = "unterminated dollar-quoted string";
				return false;
			}
		} else if (p[0] == '-' && p[1] == '-') {
			next = p + strcspn(p, "\n");
		} else if (p[0] == '/' && p[1] == '*') {
			next = skip_block_comment(p);
			if (!next) {
				*err = "unterminated /* comment";
				return false;
			}
		} else if (*p == '(') {
			depth++;
		} else if (*p == ')' && --depth < 0) {
			*err = "unbalanced parentheses: a \")\" closes nothing";
			return false;
		}
		p = next;
	}
	if (depth > 0) {
		*err = "unbalanced parentheses: a \"(\" is not closed";
		return false;
	}
	return true;
}

bool cspec_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return true;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return true;
		}
	}
	return false;
}

/* ---- the kinds and their keys ------------------------------------------- */

enum ckey {
	K_TABLE,
	K_COLUMNS,
	K_COLUMN,
	K_WHERE,
	K_NULLS_NOT_DISTINCT,
	K_REPLACES,
	K_CONCURRENTLY,
	K_LOCK_TIMEOUT,
	K_STATEMENT_TIMEOUT,
	K__COUNT
};

static const char *const key_names[] = { "table",
					 "columns",
					 "column",
					 "where",
					 "nulls_not_distinct",
					 "replaces",
					 "concurrently",
					 "lock_timeout",
					 "statement_timeout",
					 NULL };

/* What a kind of section is called and which keys it takes. */
struct kind_syntax {
	enum cspec_kind kind;
	const char *word;
	const char *columns_key; /* the key that names its column(s) */
	const char *const *keys; /* every key it takes, NULL-terminated */
};

static const char *const unique_keys[] = {
	"table",    "columns",	    "where",	    "nulls_not_distinct",
	"replaces", "concurrently", "lock_timeout", "statement_timeout",
	NULL
};
static const char *const not_null_keys[] = { "table", "column", "lock_timeout", "statement_timeout",
					     NULL };

static const struct kind_syntax syntaxes[] = {
	{ CSPEC_UNIQUE, "unique", "columns", unique_keys },
	{ CSPEC_NOT_NULL, "not_null", "column", not_null_keys },
};
#define N_KINDS (sizeof(syntaxes) / sizeof(syntaxes[0]))

static const struct kind_syntax *syntax_of(enum cspec_kind kind)
{
	for (size_t i = 0; i < N_KINDS; i++)
		if (syntaxes[i].kind == kind)
			return &syntaxes[i];
	return NULL;
}

const char *cspec_kind_word(enum cspec_kind kind)
{
	const struct kind_syntax *k = syntax_of(kind);
	return k ? k->word : "?";
}

/* ---- reading a file ----------------------------------------------------- */

struct parser {
	struct cfile *cf;
	const char *path;
	struct cspec *cur;
	int key_line[K__COUNT];
};

static void perr(struct parser *ps, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void perr(struct parser *ps, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_at(LOG_ERROR, ps->path, line, 0, "%s", msg);
}

/* Check the section just ended: required keys, consistent options. */
static bool close_spec(struct parser *ps)
{
	struct cspec *s = ps->cur;

	if (!s)
		return true;
	ps->cur = NULL;
	if (!s->table) {
		perr(ps, s->line, "[%s %s] has no \"table\" key", cspec_kind_word(s->kind),
		     s->name);
		return false;
	}
	if (s->columns.n == 0) {
		perr(ps, s->line, "[%s %s] has no \"%s\" key", cspec_kind_word(s->kind), s->name,
		     syntax_of(s->kind)->columns_key);
		return false;
	}
	if (s->replaces && strcmp(s->replaces, s->name) == 0) {
		perr(ps, s->replaces_line, "\"replaces\" names the constraint itself");
		return false;
	}
	return true;
}

/* The kind named by the first word of text (wlen bytes), or NULL after logging. */
static const struct kind_syntax *section_kind(struct parser *ps, const char *text, size_t wlen,
					      int line)
{
	const char *words[N_KINDS + 1];
	char word[64];
	const char *near;

	for (size_t i = 0; i < N_KINDS; i++) {
		words[i] = syntaxes[i].word;
		if (strlen(words[i]) == wlen && strncmp(text, words[i], wlen) == 0)
			return &syntaxes[i];
	}
	words[N_KINDS] = NULL;
	snprintf(word, sizeof(word), "%.*s", (int)(wlen < 60 ? wlen : 60), text);
	near = config_suggest(word, words);
	perr(ps, line, "unknown constraint kind \"%s\" in [%s]", word, text);
	if (near)
		log_hint("did you mean \"%s\"?", near);
	else
		log_hint("A section is [unique NAME] or [not_null NAME].");
	return NULL;
}

/* The name of section text, from p (after the kind).  NULL after logging. */
static char *section_name(struct parser *ps, const char *text, const char *p, int line)
{
	const char *err = NULL;
	char *name = NULL;

	while (isspace((unsigned char)*p))
		p++;
	if (!*p) {
		perr(ps, line, "[%s] needs a name: [%s NAME]", text, text);
		return NULL;
	}
	if (!cspec_parse_ident(&p, &name, &err)) {
		perr(ps, line, "bad name in [%s]: %s", text, err);
		return NULL;
	}
	while (isspace((unsigned char)*p))
		p++;
	if (*p) {
		perr(ps, line, "unexpected text after the name in [%s]", text);
		free(name);
		return NULL;
	}
	for (int i = 0; i < ps->cf->n; i++) {
		if (strcmp(ps->cf->specs[i].name, name) == 0) {
			perr(ps, line, "duplicate name \"%s\" (first on line %d)", name,
			     ps->cf->specs[i].line);
			free(name);
			return NULL;
		}
	}
	return name;
}

static bool on_section(void *user, const char *text, int line)
{
	struct parser *ps = user;
	struct cfile *cf = ps->cf;
	const char *p = text;
	const struct kind_syntax *kind;
	struct cspec *s;
	char *name;

	if (!close_spec(ps))
		return false;
	while (*p && !isspace((unsigned char)*p))
		p++;
	kind = section_kind(ps, text, (size_t)(p - text), line);
	if (!kind)
		return false;
	name = section_name(ps, text, p, line);
	if (!name)
		return false;
	cf->specs = xrealloc(cf->specs, (size_t)(cf->n + 1) * sizeof(*cf->specs));
	s = &cf->specs[cf->n++];
	memset(s, 0, sizeof(*s));
	s->kind = kind->kind;
	s->name = name;
	s->line = line;
	s->lock_timeout_ms = -1;
	s->statement_timeout_ms = -1;
	ps->cur = s;
	memset(ps->key_line, 0, sizeof(ps->key_line));
	return true;
}

static bool parse_table(struct parser *ps, struct cspec *s, const char *value, int line)
{
	const char *p = value, *err = NULL;
	char *first = NULL, *second = NULL;

	if (!cspec_parse_ident(&p, &first, &err))
		goto bad;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '.') {
		p++;
		if (!cspec_parse_ident(&p, &second, &err))
			goto bad;
		while (isspace((unsigned char)*p))
			p++;
	}
	if (*p) {
		err = "expected [schema.]table";
		goto bad;
	}
	if (second) {
		s->schema = first;
		s->table = second;
	} else {
		s->table = first;
	}
	s->table_line = line;
	return true;
bad:
	perr(ps, line, "bad table \"%s\": %s", value, err);
	free(first);
	free(second);
	return false;
}

static bool parse_columns(struct parser *ps, struct cspec *s, enum ckey k, const char *name,
			  const char *value, int line)
{
	const char *err = NULL;

	if (!cspec_parse_ident_list(value, &s->columns, &err)) {
		perr(ps, line, "bad %s \"%s\": %s", name, value, err);
		return false;
	}
	if (k == K_COLUMN && s->columns.n != 1) {
		perr(ps, line, "\"column\" takes one column (a not_null is declared per column)");
		return false;
	}
	s->columns_line = line;
	return true;
}

static bool parse_replaces(struct parser *ps, struct cspec *s, const char *value, int line)
{
	const char *p = value, *err = NULL;

	if (!cspec_parse_ident(&p, &s->replaces, &err) || (p += strspn(p, " \t\n"), *p)) {
		perr(ps, line, "bad replaces \"%s\": %s", value, err ? err : "expected one name");
		return false;
	}
	s->replaces_line = line;
	return true;
}

/* Store the value of key k (already checked to be allowed and not repeated). */
static bool parse_value(struct parser *ps, struct cspec *s, enum ckey k, const char *name,
			const char *value, int line)
{
	switch (k) {
	case K_TABLE:
		return parse_table(ps, s, value, line);
	case K_COLUMNS:
	case K_COLUMN:
		return parse_columns(ps, s, k, name, value, line);
	case K_WHERE:
		if (!*value) {
			perr(ps, line,
			     "empty \"where\" (leave the key out for a unique on the whole table)");
			return false;
		}
		s->where = xstrdup(value);
		s->where_line = line;
		return true;
	case K_NULLS_NOT_DISTINCT:
	case K_CONCURRENTLY:
		if (!cspec_parse_bool(value, k == K_CONCURRENTLY ? &s->concurrently
								 : &s->nulls_not_distinct)) {
			perr(ps, line, "bad boolean \"%s\" for %s: give true or false", value,
			     name);
			return false;
		}
		return true;
	case K_REPLACES:
		return parse_replaces(ps, s, value, line);
	case K_LOCK_TIMEOUT:
	case K_STATEMENT_TIMEOUT:
		if (!config_parse_duration(value, k == K_LOCK_TIMEOUT ? &s->lock_timeout_ms
								      : &s->statement_timeout_ms)) {
			perr(ps, line, "bad duration \"%s\" for %s (examples: 250ms, 5s, 2m)",
			     value, name);
			return false;
		}
		return true;
	case K__COUNT:
		break;
	}
	return false;
}

static bool on_key(void *user, const char *name, const char *value, int line, int cont_line)
{
	struct parser *ps = user;
	struct cspec *s = ps->cur;
	const char *const *allowed;
	bool ok = false;
	int k;

	(void)cont_line; /* any value may go on over indented lines */
	if (!s) {
		perr(ps, line, "key \"%s\" before any [unique NAME] or [not_null NAME] section",
		     name);
		return false;
	}
	allowed = syntax_of(s->kind)->keys;
	for (k = 0; k < K__COUNT; k++)
		if (strcmp(key_names[k], name) == 0)
			break;
	for (int i = 0; k < K__COUNT && allowed[i]; i++)
		ok = ok || strcmp(allowed[i], name) == 0;
	if (!ok) {
		const char *near = config_suggest(name, allowed);
		perr(ps, line, "unknown key \"%s\" in [%s %s]", name, cspec_kind_word(s->kind),
		     s->name);
		if (near)
			log_hint("did you mean \"%s\"?", near);
		return false;
	}
	if (ps->key_line[k]) {
		perr(ps, line, "duplicate key \"%s\" in [%s %s] (first on line %d)", name,
		     cspec_kind_word(s->kind), s->name, ps->key_line[k]);
		return false;
	}
	ps->key_line[k] = line;
	return parse_value(ps, s, (enum ckey)k, name, value, line);
}

static void cspec_free(struct cspec *s)
{
	free(s->name);
	free(s->schema);
	free(s->table);
	strv_free(&s->columns);
	free(s->where);
	free(s->replaces);
}

void cfile_free(struct cfile *cf)
{
	for (int i = 0; cf->specs && i < cf->n; i++)
		cspec_free(&cf->specs[i]);
	free(cf->specs);
	free(cf->path);
	memset(cf, 0, sizeof(*cf));
}

enum status constraints_parse(const char *text, size_t len, const char *path, struct cfile *cf)
{
	static const struct inil_ops ops = { .section = on_section, .key = on_key };
	struct parser ps = { .cf = cf, .path = path };
	enum status st;

	memset(cf, 0, sizeof(*cf));
	cf->path = xstrdup(path);
	st = inil_parse_text(text, len, path, &ops, &ps);
	if (st == ST_OK && !close_spec(&ps))
		st = ST_USAGE;
	if (st == ST_OK && cf->n == 0) {
		log_at(LOG_ERROR, path, 0, 0, "the file declares no constraint");
		log_hint("Declare [unique NAME] or [not_null NAME] sections, or remove the file.");
		st = ST_USAGE;
	}
	if (st != ST_OK)
		cfile_free(cf);
	return st;
}

enum status constraints_check_replaces(const struct cfile *const *files, int n, int nmine)
{
	enum status st = ST_OK;

	for (int f = 0; f < nmine && f < n; f++) {
		for (int i = 0; files[f] && i < files[f]->n; i++) {
			const struct cspec *s = &files[f]->specs[i];
			for (int g = 0; s->replaces && g < n; g++) {
				for (int j = 0; files[g] && j < files[g]->n; j++) {
					const struct cspec *d = &files[g]->specs[j];
					if (strcmp(d->name, s->replaces) != 0)
						continue;
					log_at(LOG_ERROR, files[f]->path, s->replaces_line, 0,
					       "[%s %s] replaces \"%s\", which is declared in %s:%d",
					       cspec_kind_word(s->kind), s->name, s->replaces,
					       files[g]->path, d->line);
					log_hint(
						"One would drop what the other creates, on every run: remove "
						"the \"replaces\" or the other declaration.");
					st = ST_USAGE;
				}
			}
		}
	}
	return st;
}
