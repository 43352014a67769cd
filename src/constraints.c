/*
 * constraints.c — declarative constraint files (see constraints.h).
 *
 * Deciding is kept apart from doing: parsing and SQL text building are pure
 * (unit-tested); the rest inspects the catalog, runs the pre-flights, and
 * only then changes anything.  Every identifier from a file goes to the
 * server quoted (constraints_quote), or as a query parameter.
 */
#include "constraints.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "db.h"
#include "ddl.h"
#include "init.h"
#include "inilines.h"
#include "log.h"
#include "report.h"
#include "util.h"

#define NAME_MAX_BYTES 63 /* NAMEDATALEN - 1: longer names are truncated by the server */
#define SHOW_KEYS 5	  /* offending keys shown by a failed pre-flight */

/* ---- small helpers ------------------------------------------------------ */

static bool strv_add(struct strv *sv, char *s)
{
	char **v;

	if (!s)
		return false;
	v = realloc(sv->v, (size_t)(sv->n + 2) * sizeof(*v));
	if (!v) {
		free(s);
		return false;
	}
	sv->v = v;
	v[sv->n++] = s;
	v[sv->n] = NULL;
	return true;
}

/* A growable string; oom sticks once an allocation failed. */
struct buf {
	char *p;
	size_t len;
	bool oom;
};

static void bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;
	char *p;

	if (b->oom)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	p = n < 0 ? NULL : realloc(b->p, b->len + (size_t)n + 1);
	if (!p) {
		b->oom = true;
		return;
	}
	b->p = p;
	va_start(ap, fmt);
	vsnprintf(p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* The finished string (NULL when out of memory); b is reset. */
static char *btake(struct buf *b)
{
	char *p = b->oom ? NULL : b->p;

	if (b->oom)
		free(b->p);
	else if (!p)
		p = strdup("");
	memset(b, 0, sizeof(*b));
	return p;
}

char *constraints_quote(const char *name)
{
	struct buf b = { 0 };

	bprintf(&b, "\"");
	for (const char *c = name; *c; c++)
		bprintf(&b, *c == '"' ? "\"\"" : "%c", *c);
	bprintf(&b, "\"");
	return btake(&b);
}

/* "a", "b" from a list of names. */
static void put_quoted_list(struct buf *b, const struct strv *names)
{
	for (int i = 0; i < names->n; i++) {
		char *q = constraints_quote(names->v[i]);
		if (!q) {
			b->oom = true;
			return;
		}
		bprintf(b, "%s%s", i ? ", " : "", q);
		free(q);
	}
}

/* ---- parsing ------------------------------------------------------------ */

static bool is_ident_start(unsigned char c)
{
	return isalpha(c) || c == '_' || c >= 0x80;
}

static bool is_ident_char(unsigned char c)
{
	return is_ident_start(c) || isdigit(c) || c == '$';
}

bool constraints_parse_ident(const char **s, char **out, const char **err)
{
	const char *p = *s;
	struct buf b = { 0 };

	*out = NULL;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '"') {
		for (p++;; p++) {
			if (*p == '\0') {
				free(btake(&b));
				*err = "unterminated quoted identifier";
				return false;
			}
			if (*p == '"') {
				if (p[1] != '"')
					break;
				p++;
			}
			bprintf(&b, "%c", *p);
		}
		p++;
		if (b.len == 0) {
			free(btake(&b));
			*err = "zero-length quoted identifier";
			return false;
		}
	} else {
		if (!is_ident_start((unsigned char)*p)) {
			*err = *p ? "expected a name (a letter or \"_\", or a \"quoted\" name)"
				  : "missing name";
			return false;
		}
		for (; is_ident_char((unsigned char)*p); p++)
			bprintf(&b, "%c", (char)tolower((unsigned char)*p));
	}
	if (!b.oom && b.len > NAME_MAX_BYTES) {
		free(btake(&b));
		*err = "name longer than 63 bytes (the server would truncate it)";
		return false;
	}
	*out = btake(&b);
	if (!*out) {
		*err = "out of memory";
		return false;
	}
	*s = p;
	return true;
}

bool constraints_parse_ident_list(const char *s, struct strv *out, const char **err)
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
		if (!constraints_parse_ident(&p, &name, err))
			goto fail;
		for (int i = 0; i < out->n; i++) {
			if (strcmp(out->v[i], name) == 0) {
				free(name);
				*err = "a column is named twice";
				goto fail;
			}
		}
		if (!strv_add(out, name)) {
			*err = "out of memory";
			goto fail;
		}
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

bool constraints_parse_bool(const char *s, bool *out)
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
static const char *const unique_keys[] = {
	"table",    "columns",	    "where",	    "nulls_not_distinct",
	"replaces", "concurrently", "lock_timeout", "statement_timeout",
	NULL
};
static const char *const not_null_keys[] = { "table", "column", "lock_timeout", "statement_timeout",
					     NULL };
static const char *const kinds[] = { "unique", "not_null", NULL };

struct parser {
	struct cfile *cf;
	const char *path;
	struct cspec *cur;
	int key_line[K__COUNT];
	bool oom;
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

static const char *kind_word(enum cspec_kind k)
{
	return k == CSPEC_UNIQUE ? "unique" : "not_null";
}

/* Check the section just ended: required keys, consistent options. */
static bool close_spec(struct parser *ps)
{
	struct cspec *s = ps->cur;

	if (!s)
		return true;
	ps->cur = NULL;
	if (!s->table) {
		perr(ps, s->line, "[%s %s] has no \"table\" key", kind_word(s->kind), s->name);
		return false;
	}
	if (s->columns.n == 0) {
		perr(ps, s->line, "[%s %s] has no \"%s\" key", kind_word(s->kind), s->name,
		     s->kind == CSPEC_UNIQUE ? "columns" : "column");
		return false;
	}
	if (s->replaces && strcmp(s->replaces, s->name) == 0) {
		perr(ps, s->replaces_line, "\"replaces\" names the constraint itself");
		return false;
	}
	return true;
}

static bool on_section(void *user, const char *text, int line)
{
	struct parser *ps = user;
	struct cfile *cf = ps->cf;
	const char *p = text, *err = NULL;
	size_t wlen;
	enum cspec_kind kind;
	struct cspec *s, *v;
	char *name = NULL;

	if (!close_spec(ps))
		return false;
	while (*p && !isspace((unsigned char)*p))
		p++;
	wlen = (size_t)(p - text);
	if (wlen == 6 && strncmp(text, "unique", 6) == 0)
		kind = CSPEC_UNIQUE;
	else if (wlen == 8 && strncmp(text, "not_null", 8) == 0)
		kind = CSPEC_NOT_NULL;
	else {
		char word[64];
		const char *near;
		snprintf(word, sizeof(word), "%.*s", (int)(wlen < 60 ? wlen : 60), text);
		near = config_suggest(word, kinds);
		perr(ps, line, "unknown constraint kind \"%s\" in [%s]", word, text);
		if (near)
			log_hint("did you mean \"%s\"?", near);
		else
			log_hint("A section is [unique NAME] or [not_null NAME].");
		return false;
	}
	while (isspace((unsigned char)*p))
		p++;
	if (!*p) {
		perr(ps, line, "[%s] needs a name: [%s NAME]", text, text);
		return false;
	}
	if (!constraints_parse_ident(&p, &name, &err)) {
		perr(ps, line, "bad name in [%s]: %s", text, err);
		return false;
	}
	while (isspace((unsigned char)*p))
		p++;
	if (*p) {
		perr(ps, line, "unexpected text after the name in [%s]", text);
		free(name);
		return false;
	}
	for (int i = 0; i < cf->n; i++) {
		if (strcmp(cf->specs[i].name, name) == 0) {
			perr(ps, line, "duplicate name \"%s\" (first on line %d)", name,
			     cf->specs[i].line);
			free(name);
			return false;
		}
	}
	v = realloc(cf->specs, (size_t)(cf->n + 1) * sizeof(*v));
	if (!v) {
		free(name);
		ps->oom = true;
		return false;
	}
	cf->specs = v;
	s = &cf->specs[cf->n++];
	memset(s, 0, sizeof(*s));
	s->kind = kind;
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

	if (!constraints_parse_ident(&p, &first, &err))
		goto bad;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == '.') {
		p++;
		if (!constraints_parse_ident(&p, &second, &err))
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

static bool on_key(void *user, const char *name, const char *value, int line, int cont_line)
{
	struct parser *ps = user;
	struct cspec *s = ps->cur;
	const char *const *allowed;
	const char *err = NULL;
	int k;

	(void)cont_line; /* any value may go on over indented lines */
	if (!s) {
		perr(ps, line, "key \"%s\" before any [unique NAME] or [not_null NAME] section",
		     name);
		return false;
	}
	allowed = s->kind == CSPEC_UNIQUE ? unique_keys : not_null_keys;
	for (k = 0; k < K__COUNT; k++)
		if (strcmp(key_names[k], name) == 0)
			break;
	bool ok = false;
	for (int i = 0; k < K__COUNT && allowed[i]; i++)
		ok = ok || strcmp(allowed[i], name) == 0;
	if (!ok) {
		const char *near = config_suggest(name, allowed);
		perr(ps, line, "unknown key \"%s\" in [%s %s]", name, kind_word(s->kind), s->name);
		if (near)
			log_hint("did you mean \"%s\"?", near);
		return false;
	}
	if (ps->key_line[k]) {
		perr(ps, line, "duplicate key \"%s\" in [%s %s] (first on line %d)", name,
		     kind_word(s->kind), s->name, ps->key_line[k]);
		return false;
	}
	ps->key_line[k] = line;
	switch ((enum ckey)k) {
	case K_TABLE:
		return parse_table(ps, s, value, line);
	case K_COLUMNS:
	case K_COLUMN:
		if (!constraints_parse_ident_list(value, &s->columns, &err)) {
			perr(ps, line, "bad %s \"%s\": %s", name, value, err);
			return false;
		}
		if (k == K_COLUMN && s->columns.n != 1) {
			perr(ps, line,
			     "\"column\" takes one column (a not_null is declared per column)");
			return false;
		}
		s->columns_line = line;
		return true;
	case K_WHERE:
		if (!*value) {
			perr(ps, line,
			     "empty \"where\" (leave the key out for a unique on the whole table)");
			return false;
		}
		s->where = strdup(value);
		s->where_line = line;
		ps->oom = !s->where;
		return !ps->oom;
	case K_NULLS_NOT_DISTINCT:
	case K_CONCURRENTLY:
		if (!constraints_parse_bool(value, k == K_CONCURRENTLY ? &s->concurrently
								       : &s->nulls_not_distinct)) {
			perr(ps, line, "bad boolean \"%s\" for %s: give true or false", value,
			     name);
			return false;
		}
		return true;
	case K_REPLACES: {
		const char *p = value;
		if (!constraints_parse_ident(&p, &s->replaces, &err) ||
		    (p += strspn(p, " \t\n"), *p)) {
			perr(ps, line, "bad replaces \"%s\": %s", value,
			     err ? err : "expected one name");
			return false;
		}
		s->replaces_line = line;
		return true;
	}
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
	cf->path = strdup(path);
	if (!cf->path) {
		log_error("out of memory");
		return ST_INTERNAL;
	}
	st = inil_parse_text(text, len, path, &ops, &ps);
	if (st == ST_OK && !close_spec(&ps))
		st = ST_USAGE;
	if (ps.oom) {
		log_error("out of memory");
		st = ST_INTERNAL;
	}
	if (st == ST_OK && cf->n == 0) {
		log_at(LOG_ERROR, path, 0, 0, "the file declares no constraint");
		log_hint("Declare [unique NAME] or [not_null NAME] sections, or remove the file.");
		st = ST_USAGE;
	}
	if (st != ST_OK)
		cfile_free(cf);
	return st;
}

/* ---- SQL text (pure) ---------------------------------------------------- */

char *constraints_sql_create(const struct cspec *spec, const char *qtable, bool index_only)
{
	struct buf b = { 0 };
	char *qname = constraints_quote(spec->name);

	if (!qname)
		return NULL;
	if (index_only || spec->where) {
		bprintf(&b, "CREATE UNIQUE INDEX %s%s ON %s (",
			spec->concurrently ? "CONCURRENTLY " : "", qname, qtable);
		put_quoted_list(&b, &spec->columns);
		bprintf(&b, ")%s", spec->nulls_not_distinct ? " NULLS NOT DISTINCT" : "");
		if (spec->where)
			bprintf(&b, " WHERE (%s)", spec->where);
	} else {
		bprintf(&b, "ALTER TABLE %s ADD CONSTRAINT %s UNIQUE%s (", qtable, qname,
			spec->nulls_not_distinct ? " NULLS NOT DISTINCT" : "");
		put_quoted_list(&b, &spec->columns);
		bprintf(&b, ")");
	}
	free(qname);
	return btake(&b);
}

char *constraints_sql_duplicates(const struct cspec *spec, const char *qtable, bool count,
				 int limit)
{
	struct buf b = { 0 };
	struct buf cols = { 0 };
	const char *glue = " WHERE ";
	char *c;

	put_quoted_list(&cols, &spec->columns);
	c = btake(&cols);
	if (!c)
		return NULL;
	if (count)
		bprintf(&b,
			"SELECT count(*), coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM %s",
			qtable);
	else
		bprintf(&b, "SELECT %s, count(*) FROM %s", c, qtable);
	/* NULLs are distinct: a key with a NULL in it never conflicts. */
	if (!spec->nulls_not_distinct) {
		for (int i = 0; i < spec->columns.n; i++) {
			char *q = constraints_quote(spec->columns.v[i]);
			if (!q) {
				b.oom = true;
				break;
			}
			bprintf(&b, "%s%s IS NOT NULL", glue, q);
			glue = " AND ";
			free(q);
		}
	}
	if (spec->where)
		bprintf(&b, "%s(%s)", glue, spec->where);
	bprintf(&b, " GROUP BY %s HAVING count(*) > 1", c);
	if (count)
		bprintf(&b, ") AS duplicates");
	else {
		bprintf(&b, " ORDER BY %s", c);
		if (limit > 0)
			bprintf(&b, " LIMIT %d", limit);
	}
	free(c);
	return btake(&b);
}

char *constraints_describe(const struct cspec *spec)
{
	struct buf b = { 0 };

	if (spec->kind == CSPEC_NOT_NULL) {
		bprintf(&b, "NOT NULL (");
		put_quoted_list(&b, &spec->columns);
		bprintf(&b, ")");
		return btake(&b);
	}
	bprintf(&b, "UNIQUE%s (", spec->nulls_not_distinct ? " NULLS NOT DISTINCT" : "");
	put_quoted_list(&b, &spec->columns);
	bprintf(&b, ")");
	if (spec->where)
		bprintf(&b, " WHERE (%s)", spec->where);
	return btake(&b);
}

/* ---- the catalog -------------------------------------------------------- */

/* A spec resolved against the catalog. */
struct resolved {
	bool absent; /* CONS_PLAN/VERIFY: the table does not exist (yet) */
	char relid[16];
	char *qtable;  /* "schema"."table" */
	char *qschema; /* "schema" */
	char *shown;   /* schema.table, for messages */
	char *attnums; /* "2 3", as pg_index.indkey prints */
	char *pred;    /* the server's form of where, or NULL */
};

struct run {
	const struct cfile *cf;
	const struct phase *ph;
	PGconn *conn;
	PGconn *watch;	      /* the idle lock connection: progress, lock holders; or NULL */
	bool quiet;	      /* a lock_timeout will be tried again: run_steps does not log it */
	struct db_run failed; /* the last statement run_steps saw fail */
	char *failed_sql;     /* its text, or NULL */
	enum cons_mode mode;
	bool later_ok;
	int changes;
	struct resolved *res;
};

/* One index of the table, and how it compares with the spec. */
struct idx {
	char *name;
	char *conname; /* "" when no constraint uses it */
	char contype;  /* 'p', 'u', 'x' or 0 */
	bool valid;
	bool matches; /* same definition as the spec */
	char *def;    /* pg_get_indexdef */
};

struct idxlist {
	struct idx *v;
	int n;
	char *taken; /* the spec's name is used by something else: what, or NULL */
};

static void resolved_free(struct resolved *rv)
{
	free(rv->qtable);
	free(rv->qschema);
	free(rv->shown);
	free(rv->attnums);
	free(rv->pred);
	memset(rv, 0, sizeof(*rv));
}

static void idxlist_free(struct idxlist *l)
{
	for (int i = 0; l->v && i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].conname);
		free(l->v[i].def);
	}
	free(l->v);
	free(l->taken);
	memset(l, 0, sizeof(*l));
}

static long lock_timeout_of(const struct run *r, const struct cspec *s)
{
	return s->lock_timeout_ms >= 0 ? s->lock_timeout_ms : r->ph->lock_timeout_ms;
}

static long statement_timeout_of(const struct run *r, const struct cspec *s)
{
	return s->statement_timeout_ms >= 0 ? s->statement_timeout_ms : r->ph->statement_timeout_ms;
}

static enum status oom(void)
{
	log_error("out of memory");
	return ST_INTERNAL;
}

/* The table as the file wrote it, for messages. */
static void table_as_written(const struct cspec *s, char *buf, size_t size)
{
	if (s->schema)
		snprintf(buf, size, "%s.%s", s->schema, s->table);
	else
		snprintf(buf, size, "%s", s->table);
}

/* Find the table and the columns of s.  Logs; ST_USAGE for an unknown table or column. */
static enum status resolve(struct run *r, const struct cspec *s, struct resolved *rv)
{
	const char *path = r->cf->path;
	char *qs = NULL, *qt = NULL, *name = NULL;
	char written[160];
	PGresult *res = NULL;
	enum status st = ST_INTERNAL;
	struct buf attnums = { 0 };

	table_as_written(s, written, sizeof(written));
	qt = constraints_quote(s->table);
	qs = s->schema ? constraints_quote(s->schema) : NULL;
	if (!qt || (s->schema && !qs) ||
	    asprintf(&name, "%s%s%s", qs ? qs : "", qs ? "." : "", qt) < 0) {
		name = NULL;
		goto out;
	}
	{
		const char *params[1] = { name };
		res = db_query(
			r->conn,
			"SELECT c.oid, n.nspname, c.relname, c.relkind,"
			" pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname)"
			" FROM pg_catalog.pg_class c"
			" JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
			" WHERE c.oid = pg_catalog.to_regclass($1)",
			1, params, &st);
	}
	if (!res)
		goto out;
	if (PQntuples(res) == 0) {
		if (r->mode != CONS_APPLY && (r->later_ok || r->mode == CONS_VERIFY)) {
			rv->absent = true;
			st = ST_OK;
			goto out;
		}
		log_at(LOG_ERROR, path, s->table_line, 0, "table \"%s\" does not exist", written);
		if (!s->schema)
			log_hint(
				"Without a schema the search_path decides; write schema.table to be explicit.");
		st = ST_USAGE;
		goto out;
	}
	if (strcmp(PQgetvalue(res, 0, 3), "r") != 0 && strcmp(PQgetvalue(res, 0, 3), "p") != 0) {
		log_at(LOG_ERROR, path, s->table_line, 0, "\"%s\" is not a table", written);
		st = ST_USAGE;
		goto out;
	}
	snprintf(rv->relid, sizeof(rv->relid), "%s", PQgetvalue(res, 0, 0));
	rv->qschema = constraints_quote(PQgetvalue(res, 0, 1));
	free(qt);
	qt = constraints_quote(PQgetvalue(res, 0, 2));
	if (!rv->qschema || !qt || !(rv->shown = strdup(PQgetvalue(res, 0, 4))) ||
	    asprintf(&rv->qtable, "%s.%s", rv->qschema, qt) < 0) {
		rv->qtable = NULL;
		st = ST_INTERNAL;
		goto out;
	}
	PQclear(res);
	res = NULL;
	for (int i = 0; i < s->columns.n; i++) {
		const char *params[2] = { rv->relid, s->columns.v[i] };
		res = db_query(
			r->conn,
			"SELECT a.attnum, (SELECT b.attname FROM pg_catalog.pg_attribute b"
			"   WHERE b.attrelid = $1::oid AND lower(b.attname) = lower($2) AND b.attnum > 0"
			"   AND NOT b.attisdropped ORDER BY b.attnum LIMIT 1)"
			" FROM (SELECT) AS one LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = $1::oid"
			" AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
			2, params, &st);
		if (!res)
			goto out;
		if (PQgetisnull(res, 0, 0)) {
			log_at(LOG_ERROR, path, s->columns_line, 0,
			       "column \"%s\" of table %s does not exist", s->columns.v[i],
			       rv->shown);
			if (!PQgetisnull(res, 0, 1))
				log_hint(
					"Did you mean \"%s\"? A name with capitals must be written in double "
					"quotes: columns = \"%s\".",
					PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 1));
			st = ST_USAGE;
			goto out;
		}
		bprintf(&attnums, "%s%s", i ? " " : "", PQgetvalue(res, 0, 0));
		PQclear(res);
		res = NULL;
	}
	rv->attnums = btake(&attnums);
	st = rv->attnums ? ST_OK : ST_INTERNAL;
out:
	if (st == ST_INTERNAL)
		log_error("out of memory");
	free(btake(&attnums));
	PQclear(res);
	free(qs);
	free(qt);
	free(name);
	return st;
}

/*
 * Let the server parse s->where against an empty copy of the table, in a
 * transaction that is rolled back, and keep its normalised form: the text
 * pg_get_expr() gives for an index predicate, so comparing it with the
 * indpred of existing indexes is exact.  A bad expression is a bad file.
 */
static enum status normalise_where(struct run *r, const struct cspec *s, struct resolved *rv)
{
	struct buf b = { 0 };
	char *sql = NULL;
	PGresult *res = NULL;
	enum status st;

	st = db_exec(r->conn, "BEGIN READ WRITE", NULL);
	if (st != ST_OK)
		return st;
	bprintf(&b, "CREATE TEMPORARY TABLE pgprelude_where (LIKE %s)", rv->qtable);
	sql = btake(&b);
	if (!sql) {
		st = oom();
		goto out;
	}
	st = db_exec(r->conn, sql, NULL);
	free(sql);
	if (st != ST_OK)
		goto out;
	bprintf(&b, "CREATE INDEX pgprelude_where_idx ON pg_temp.pgprelude_where (");
	put_quoted_list(&b, &s->columns);
	bprintf(&b, ") WHERE (%s)", s->where);
	sql = btake(&b);
	if (!sql) {
		st = oom();
		goto out;
	}
	res = PQexec(r->conn, sql);
	free(sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		struct db_where where = { .file = r->cf->path, .stmt_line = s->where_line };
		db_report_error(res, &where);
		log_detail("The \"where\" of [unique %s] must be a valid index predicate on %s.",
			   s->name, rv->shown);
		st = db_failure_status(r->conn) == ST_CONNLOST ? ST_CONNLOST : ST_USAGE;
		goto out;
	}
	PQclear(res);
	res = db_query(r->conn,
		       "SELECT pg_catalog.pg_get_expr(indpred, indrelid) FROM pg_catalog.pg_index"
		       " WHERE indexrelid = 'pg_temp.pgprelude_where_idx'::regclass",
		       0, NULL, &st);
	if (!res)
		goto out;
	if (PQntuples(res) != 1 || !(rv->pred = strdup(PQgetvalue(res, 0, 0))))
		st = oom();
out:
	PQclear(res);
	ddl_rollback(r->conn);
	return st;
}

/*
 * A query for spec s that may wait for a lock on its table (reading the
 * table's index predicates, a pre-flight reading the whole table): progress
 * lines at s's line, naming whoever holds the lock; a stop signal cancels it.
 */
static PGresult *spec_query(struct run *r, const struct cspec *s, const char *sql, int nparams,
			    const char *const *params, enum status *st)
{
	struct db_run run = { .file = r->cf->path, .sent_line = s->line, .watch = r->watch };
	return db_query_run(r->conn, sql, nparams, params, &run, st);
}

/* Every index of the table, compared with s; and whether s's name is taken by something else. */
static enum status load_indexes(struct run *r, const struct cspec *s, const struct resolved *rv,
				struct idxlist *l)
{
	char *sql = NULL;
	PGresult *res = NULL;
	enum status st;
	const char *params[4] = { rv->relid, rv->attnums, rv->pred,
				  s->nulls_not_distinct ? "t" : "f" };
	bool has_nnd = PQserverVersion(r->conn) >= 150000;

	memset(l, 0, sizeof(*l));
	if (asprintf(
		    &sql,
		    "SELECT ic.relname, coalesce(con.conname, ''), coalesce(con.contype::text, ''),"
		    " i.indisvalid AND i.indisready,"
		    " i.indisunique AND i.indkey::text = $2 AND i.indnkeyatts = i.indnatts"
		    " AND i.indexprs IS NULL AND am.amname = 'btree'"
		    " AND pg_catalog.pg_get_expr(i.indpred, i.indrelid) IS NOT DISTINCT FROM $3"
		    " AND %s = $4::boolean"
		    " AND 0 = ALL (i.indoption::int2[])" /* ASC NULLS LAST, as a constraint's */
		    /*
		     * Every key as a plain column would index it: the column's own
		     * collation, and the operator class the server picks by default
		     * for its type (for its base type, under a domain): the default
		     * one of that exact type if there is one, else a default one the
		     * type is binary-coercible to (text_ops for varchar).
		     */
		    " AND NOT EXISTS (SELECT FROM unnest(i.indkey::int2[], i.indclass::oid[],"
		    "     i.indcollation::oid[]) AS k(attnum, opc, coll)"
		    "   JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
		    "   JOIN pg_catalog.pg_type t ON t.oid = a.atttypid"
		    "   JOIN pg_catalog.pg_opclass o ON o.oid = k.opc"
		    "   WHERE k.coll <> a.attcollation OR NOT o.opcdefault"
		    "   OR EXISTS (SELECT FROM pg_catalog.pg_opclass d WHERE d.opcmethod = o.opcmethod"
		    "     AND d.opcdefault AND d.oid <> o.oid AND d.opcintype ="
		    "     CASE t.typtype WHEN 'd' THEN t.typbasetype ELSE t.oid END)),"
		    " pg_catalog.pg_get_indexdef(i.indexrelid)"
		    " FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid"
		    " JOIN pg_catalog.pg_am am ON am.oid = ic.relam"
		    " LEFT JOIN pg_catalog.pg_constraint con ON con.conindid = i.indexrelid"
		    "   AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')"
		    " WHERE i.indrelid = $1::oid ORDER BY ic.relname",
		    has_nnd ? "i.indnullsnotdistinct" : "false") < 0)
		return oom();
	res = spec_query(r, s, sql, 4, params, &st);
	free(sql);
	if (!res)
		return st;
	l->v = calloc((size_t)PQntuples(res) + 1, sizeof(*l->v));
	if (!l->v)
		goto nomem;
	for (int i = 0; i < PQntuples(res); i++) {
		struct idx *x = &l->v[l->n++];
		x->name = strdup(PQgetvalue(res, i, 0));
		x->conname = strdup(PQgetvalue(res, i, 1));
		x->contype = PQgetvalue(res, i, 2)[0];
		x->valid = strcmp(PQgetvalue(res, i, 3), "t") == 0;
		x->matches = strcmp(PQgetvalue(res, i, 4), "t") == 0;
		x->def = strdup(PQgetvalue(res, i, 5));
		if (!x->name || !x->conname || !x->def)
			goto nomem;
	}
	PQclear(res);
	/* The name in the table's schema: another relation, or a constraint of another kind. */
	{
		const char *p2[2] = { rv->relid, s->name };
		res = db_query(
			r->conn,
			"SELECT (SELECT CASE c.relkind WHEN 'i' THEN 'an index of table ' ||"
			"   (SELECT i.indrelid::regclass::text FROM pg_catalog.pg_index i WHERE i.indexrelid = c.oid)"
			"   ELSE 'the relation ' || c.oid::regclass::text END"
			"   FROM pg_catalog.pg_class c WHERE c.relnamespace = t.relnamespace AND c.relname = $2"
			"   AND NOT EXISTS (SELECT FROM pg_catalog.pg_index i WHERE i.indexrelid = c.oid"
			"     AND i.indrelid = t.oid)),"
			" (SELECT 'a constraint of this table: ' || pg_catalog.pg_get_constraintdef(con.oid)"
			"   FROM pg_catalog.pg_constraint con WHERE con.conrelid = t.oid AND con.conname = $2"
			"   AND con.contype NOT IN ('p', 'u', 'x'))"
			" FROM pg_catalog.pg_class t WHERE t.oid = $1::oid",
			2, p2, &st);
	}
	if (!res) {
		idxlist_free(l);
		return st;
	}
	if (PQntuples(res) == 1) {
		int col = !PQgetisnull(res, 0, 0) ? 0 : !PQgetisnull(res, 0, 1) ? 1 : -1;
		if (col >= 0 && !(l->taken = strdup(PQgetvalue(res, 0, col))))
			goto nomem;
	}
	PQclear(res);
	return ST_OK;
nomem:
	PQclear(res);
	idxlist_free(l);
	return oom();
}

static int find_index(const struct idxlist *l, const char *name)
{
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0 || strcmp(l->v[i].conname, name) == 0)
			return i;
	return -1;
}

enum uact {
	U_NOTHING, /* present under the spec's name */
	U_ADOPT,   /* present under another name */
	U_ATTACH, /* the spec's index is there, its constraint is not (an interrupted concurrent build) */
	U_CREATE, /* absent (or only INVALID): create, after the pre-flight */
	U_DRIFT	  /* the name is used with another definition */
};

struct udecision {
	enum uact act;
	int keep;	/* the index that is (or becomes) the constraint, or -1 */
	int drift;	/* U_DRIFT: the index with the name, or -1 (then l->taken says why) */
	int replaced;	/* the index to drop afterwards, or -1 */
	int invalid[8]; /* INVALID indexes to drop first */
	int n_invalid;
};

/* What to do for unique s given the table's indexes.  Pure. */
static void decide_unique(const struct cspec *s, const struct idxlist *l, struct udecision *d)
{
	int byname = find_index(l, s->name);

	memset(d, 0, sizeof(*d));
	d->keep = d->drift = d->replaced = -1;
	d->act = U_CREATE;
	if (l->taken) {
		d->act = U_DRIFT;
		return;
	}
	if (byname >= 0) {
		const struct idx *x = &l->v[byname];
		if (!x->valid) {
			d->invalid[d->n_invalid++] = byname;
		} else if (x->matches) {
			d->keep = byname;
			d->act = (!s->where && !x->contype) ? U_ATTACH : U_NOTHING;
		} else {
			d->act = U_DRIFT;
			d->drift = byname;
			return;
		}
	}
	if (d->act == U_CREATE) {
		/* another name, same definition: prefer a constraint over a bare index */
		for (int i = 0; i < l->n; i++) {
			if (i == byname || !l->v[i].valid || !l->v[i].matches)
				continue;
			if (d->keep < 0 || (!l->v[d->keep].contype && l->v[i].contype))
				d->keep = i;
		}
		if (d->keep >= 0)
			d->act = U_ADOPT;
	}
	if (d->act == U_CREATE) {
		for (int i = 0; i < l->n && d->n_invalid < 8; i++)
			if (i != byname && !l->v[i].valid && l->v[i].matches)
				d->invalid[d->n_invalid++] = i;
	}
	if (s->replaces) {
		int rep = find_index(l, s->replaces);
		bool dropping = false;
		for (int i = 0; i < d->n_invalid; i++)
			dropping = dropping || d->invalid[i] == rep;
		if (rep >= 0 && rep != d->keep && !dropping)
			d->replaced = rep;
	}
}

/* ---- pre-flight --------------------------------------------------------- */

/* "a, b" as the file names them (unquoted), for messages. */
static char *plain_list(const struct strv *names)
{
	struct buf b = { 0 };
	for (int i = 0; i < names->n; i++)
		bprintf(&b, "%s%s", i ? ", " : "", names->v[i]);
	return btake(&b);
}

/* One offending key for a message: "a = 1" or "(a, b) = (1, NULL)". */
static char *key_text(const char *names, int ncols, const PGresult *res, int row)
{
	struct buf b = { 0 };

	bprintf(&b, ncols > 1 ? "(%s) = (" : "%s = ", names);
	for (int c = 0; c < ncols; c++)
		bprintf(&b, "%s%s", c ? ", " : "",
			PQgetisnull(res, row, c) ? "NULL" : PQgetvalue(res, row, c));
	if (ncols > 1)
		bprintf(&b, ")");
	return btake(&b);
}

/*
 * Count the duplicate groups under exactly the constraint's semantics.
 * Returns ST_OK (*failed set when there are any, after logging them).
 */
static enum status preflight_unique(struct run *r, const struct cspec *s, const struct resolved *rv,
				    bool *failed)
{
	char *sql = constraints_sql_duplicates(s, rv->qtable, true, 0);
	char *list = NULL, *names = NULL, *all = NULL;
	PGresult *res = NULL;
	enum status st;

	*failed = false;
	if (!sql)
		return oom();
	res = spec_query(r, s, sql, 0, NULL, &st);
	free(sql);
	if (!res)
		return st;
	if (strcmp(PQgetvalue(res, 0, 0), "0") == 0) {
		PQclear(res);
		return ST_OK;
	}
	*failed = true;
	names = plain_list(&s->columns);
	all = constraints_sql_duplicates(s, rv->qtable, false, 0);
	list = constraints_sql_duplicates(s, rv->qtable, false, SHOW_KEYS);
	if (!names || !all || !list) {
		st = oom();
		goto out;
	}
	log_at(LOG_ERROR, r->cf->path, s->line, 0,
	       "pre-flight failed for unique \"%s\" on %s (%s): %s duplicate group%s, %s rows",
	       s->name, rv->shown, names, PQgetvalue(res, 0, 0),
	       strcmp(PQgetvalue(res, 0, 0), "1") ? "s" : "", PQgetvalue(res, 0, 1));
	PQclear(res);
	res = spec_query(r, s, list, 0, NULL, &st);
	if (!res)
		goto out;
	for (int i = 0; i < PQntuples(res); i++) {
		char *k = key_text(names, s->columns.n, res, i);
		log_detail("%s: %s rows", k ? k : "?", PQgetvalue(res, i, s->columns.n));
		free(k);
	}
	log_hint(
		"See them all with: %s; pgprelude never deletes or changes data: resolve the duplicates, "
		"then start again.",
		all);
out:
	PQclear(res);
	free(names);
	free(all);
	free(list);
	return st;
}

/* Count the NULLs of a not_null's column.  Returns ST_OK (*failed set when there are any, logged). */
static enum status preflight_not_null(struct run *r, const struct cspec *s,
				      const struct resolved *rv, bool *failed)
{
	char *qcol = constraints_quote(s->columns.v[0]);
	char *sql = NULL;
	PGresult *res = NULL;
	const char *params[1] = { rv->relid };
	enum status st = ST_OK;

	*failed = false;
	if (!qcol ||
	    asprintf(&sql, "SELECT count(*) FROM %s WHERE %s IS NULL", rv->qtable, qcol) < 0) {
		free(qcol);
		return oom();
	}
	res = spec_query(r, s, sql, 0, NULL, &st);
	free(sql);
	sql = NULL;
	if (!res)
		goto out;
	if (strcmp(PQgetvalue(res, 0, 0), "0") == 0)
		goto out;
	*failed = true;
	log_at(LOG_ERROR, r->cf->path, s->line, 0,
	       "pre-flight failed for not_null \"%s\" on %s: %s row%s %s NULL in \"%s\"", s->name,
	       rv->shown, PQgetvalue(res, 0, 0), strcmp(PQgetvalue(res, 0, 0), "1") ? "s" : "",
	       strcmp(PQgetvalue(res, 0, 0), "1") ? "have" : "has", s->columns.v[0]);
	PQclear(res);
	/* The first rows, by primary key when there is one. */
	res = db_query(
		r->conn,
		"SELECT string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.ord), count(*)"
		" FROM pg_catalog.pg_index i CROSS JOIN unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)"
		" JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
		" WHERE i.indrelid = $1::oid AND i.indisprimary",
		1, params, &st);
	if (!res)
		goto out;
	{
		char *pk = strdup(PQgetisnull(res, 0, 0) ? "ctid" : PQgetvalue(res, 0, 0));
		int npk = PQgetisnull(res, 0, 0) ? 1 : atoi(PQgetvalue(res, 0, 1));
		PQclear(res);
		res = NULL;
		if (!pk || asprintf(&sql, "SELECT %s FROM %s WHERE %s IS NULL ORDER BY %s LIMIT %d",
				    pk, rv->qtable, qcol, pk, SHOW_KEYS) < 0) {
			free(pk);
			sql = NULL;
			st = oom();
			goto out;
		}
		res = spec_query(r, s, sql, 0, NULL, &st);
		for (int i = 0; res && i < PQntuples(res); i++) {
			char *k = key_text(pk, npk, res, i);
			log_detail("%s", k ? k : "?");
			free(k);
		}
		free(pk);
	}
	log_hint(
		"See them all with: SELECT * FROM %s WHERE %s IS NULL; pgprelude never changes data: fill "
		"them in (a backfill), then start again.",
		rv->qtable, qcol);
out:
	PQclear(res);
	free(sql);
	free(qcol);
	return st;
}

/* ---- doing -------------------------------------------------------------- */

/*
 * Run steps on r->conn with s's lock_timeout and statement_timeout: in one
 * transaction (in_tx), or one by one in autocommit (for CONCURRENTLY).  Each
 * goes through db_run, watched from r->watch: progress lines, who holds a
 * lock it waits for; a stop signal cancels it.  A failure is logged against
 * s's section, except a lock_timeout while r->quiet (converge_spec tries
 * again and says so); r->failed and r->failed_sql keep it.
 */
static enum status run_steps(struct run *r, const struct cspec *s, char *const *steps, int n,
			     bool in_tx)
{
	long lock_timeout = lock_timeout_of(r, s);
	const struct sql_stmt at = { .line = s->line };
	enum status st;

	st = ddl_set_timeouts(r->conn, in_tx, lock_timeout, statement_timeout_of(r, s));
	for (int i = 0; st == ST_OK && i < n; i++) {
		struct db_run run = { .file = r->cf->path,
				      .stmts = &at,
				      .nstmts = 1,
				      .sent_line = s->line,
				      .watch = r->watch,
				      .lock_poll_ms = ddl_lock_poll_ms(lock_timeout),
				      .quiet_lock_timeout = r->quiet };
		log_debug("%s:%d: %s", r->cf->path, s->line, steps[i]);
		st = db_run(r->conn, steps[i], &run);
		if (st == ST_OK)
			continue;
		r->failed = run;
		r->failed.stmts = NULL; /* at is gone when this returns */
		free(r->failed_sql);
		r->failed_sql = strdup(steps[i]);
		if (st == ST_SIGNAL)
			log_at(LOG_ERROR, r->cf->path, s->line, 0,
			       "cancelled by signal %d while running: %s", init_stop_signal(),
			       steps[i]);
		else if (st == ST_SQL && !(r->quiet && ddl_is_lock_timeout(&run))) {
			if (ddl_is_lock_timeout(&run))
				ddl_log_lock_holder(&run);
			log_msg(LOG_CONTEXT, "while running: %s", steps[i]);
		}
	}
	if (st == ST_OK && in_tx)
		st = db_exec(r->conn, "COMMIT", r->cf->path);
	if (st != ST_OK)
		ddl_rollback(r->conn);
	if (!in_tx)
		ddl_reset_timeouts(r->conn);
	return st;
}

/*
 * One statement, built from fmt, run as its own step in a transaction, and
 * counted as a change when it succeeds.  Returns run_steps' status.
 */
static enum status run_one_step(struct run *r, const struct cspec *s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum status run_one_step(struct run *r, const struct cspec *s, const char *fmt, ...)
{
	char *sql = NULL;
	enum status st;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&sql, fmt, ap);
	va_end(ap);
	if (n < 0)
		return oom();
	st = run_steps(r, s, &sql, 1, true);
	free(sql);
	if (st == ST_OK)
		r->changes++;
	return st;
}

static void free_steps(char **steps, int n)
{
	for (int i = 0; i < n; i++)
		free(steps[i]);
}

/* The statement that drops index x (its constraint, when one uses it). */
static char *sql_drop(const struct resolved *rv, const struct idx *x, bool concurrently)
{
	char *q = constraints_quote(x->contype ? x->conname : x->name);
	char *sql = NULL;

	if (!q)
		return NULL;
	if (x->contype) {
		if (asprintf(&sql, "ALTER TABLE %s DROP CONSTRAINT %s", rv->qtable, q) < 0)
			sql = NULL;
	} else if (asprintf(&sql, "DROP INDEX %s%s.%s", concurrently ? "CONCURRENTLY " : "",
			    rv->qschema, q) < 0) {
		sql = NULL;
	}
	free(q);
	return sql;
}

static void out_line(const struct run *r, const struct cspec *s, const struct resolved *rv,
		     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* One line of the plan or of verify, on stdout. */
static void out_line(const struct run *r, const struct cspec *s, const struct resolved *rv,
		     const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		xoom();
	va_end(ap);
	report_line(r->cf->path, s->line, "%s \"%s\" on %s: %s", kind_word(s->kind), s->name,
		    rv->shown ? rv->shown : s->table, msg);
	free(msg);
}

static void log_drift_unique(const struct run *r, const struct cspec *s, const struct resolved *rv,
			     const struct idxlist *l, const struct udecision *d)
{
	char *want = constraints_describe(s);

	if (d->drift >= 0) {
		log_at(LOG_ERROR, r->cf->path, s->line, 0,
		       "unique \"%s\" on %s exists with another definition", s->name, rv->shown);
		log_detail("The database has: %s%s", l->v[d->drift].def,
			   l->v[d->drift].contype ? " (a constraint)" : "");
	} else {
		log_at(LOG_ERROR, r->cf->path, s->line, 0, "the name \"%s\" is already taken by %s",
		       s->name, l->taken);
	}
	log_detail("The file declares: %s on %s", want ? want : "?", rv->shown);
	log_hint(
		"pgprelude does not change an existing constraint: drop or rename the one in the database, "
		"or change the file to match it.");
	free(want);
}

/* ALTER TABLE … ADD CONSTRAINT s UNIQUE USING INDEX s (the index of that name); NULL when out of memory. */
static char *sql_attach(const struct cspec *s, const struct resolved *rv)
{
	char *q = constraints_quote(s->name);
	char *sql = NULL;

	if (q && asprintf(&sql, "ALTER TABLE %s ADD CONSTRAINT %s UNIQUE USING INDEX %s",
			  rv->qtable, q, q) < 0)
		sql = NULL;
	free(q);
	return sql;
}

/* Converge (or plan) one unique.  Pre-flight already ran when mode is APPLY. */
static enum status do_unique(struct run *r, const struct cspec *s, const struct resolved *rv)
{
	struct idxlist l;
	struct udecision d;
	char *steps[12];
	int n = 0;
	bool conc = s->concurrently;
	long start = clock_ms();
	enum status st = load_indexes(r, s, rv, &l);

	if (st != ST_OK)
		return st;
	decide_unique(s, &l, &d);
	if (d.act == U_DRIFT) {
		log_drift_unique(r, s, rv, &l, &d);
		idxlist_free(&l);
		return ST_DRIFT;
	}
	for (int i = 0; i < d.n_invalid; i++) {
		const struct idx *x = &l.v[d.invalid[i]];
		log_at(LOG_WARNING, r->cf->path, s->line, 0,
		       "dropping the INVALID index \"%s\" on %s (left by a failed concurrent build) to rebuild it",
		       x->name, rv->shown);
		steps[n++] = sql_drop(rv, x, conc);
	}
	switch (d.act) {
	case U_NOTHING:
		log_at(LOG_DEBUG, r->cf->path, s->line, 0, "unique \"%s\" on %s: up to date",
		       s->name, rv->shown);
		break;
	case U_ADOPT:
		log_at(LOG_INFO, r->cf->path, s->line, 0,
		       "unique \"%s\" on %s: adopted the existing %s \"%s\" (same definition); nothing created",
		       s->name, rv->shown, l.v[d.keep].contype ? "constraint" : "unique index",
		       l.v[d.keep].contype ? l.v[d.keep].conname : l.v[d.keep].name);
		break;
	case U_ATTACH:
		steps[n++] = sql_attach(s, rv);
		break;
	case U_CREATE:
		steps[n++] = constraints_sql_create(s, rv->qtable, conc);
		if (conc && !s->where)
			steps[n++] = sql_attach(s, rv);
		break;
	case U_DRIFT:
		break;
	}
	if (d.replaced >= 0)
		steps[n++] = sql_drop(rv, &l.v[d.replaced], conc);
	for (int i = 0; i < n; i++)
		if (!steps[i])
			st = oom();
	if (st == ST_OK && n > 0)
		st = run_steps(r, s, steps, n, !conc);
	if (st == ST_OK && n > 0) {
		r->changes++;
		if (d.act == U_CREATE)
			log_at(LOG_INFO, r->cf->path, s->line, 0,
			       "unique \"%s\" on %s: %s%s (%ld ms)", s->name, rv->shown,
			       d.n_invalid ? "rebuilt" : "created", conc ? " concurrently" : "",
			       clock_ms() - start);
		else if (d.act == U_ATTACH)
			log_at(LOG_INFO, r->cf->path, s->line, 0,
			       "unique \"%s\" on %s: added the constraint using its existing index",
			       s->name, rv->shown);
		if (d.replaced >= 0)
			log_at(LOG_INFO, r->cf->path, s->line, 0,
			       "unique \"%s\" on %s: dropped \"%s\" (replaced)", s->name, rv->shown,
			       l.v[d.replaced].name);
	}
	free_steps(steps, n);
	idxlist_free(&l);
	return st;
}

/* The state of a not_null: the column's attnotnull and the helper CHECK named like the spec. */
struct nstate {
	bool notnull;
	bool check; /* a constraint with the spec's name exists */
	bool ours;  /* it is CHECK (col IS NOT NULL) */
	bool validated;
	char *def; /* its definition */
};

static enum status load_not_null(struct run *r, const struct cspec *s, const struct resolved *rv,
				 struct nstate *ns)
{
	const char *params[3] = { rv->relid, s->name, s->columns.v[0] };
	PGresult *res;
	enum status st;

	memset(ns, 0, sizeof(*ns));
	res = db_query(
		r->conn,
		"SELECT a.attnotnull, con.oid IS NOT NULL, coalesce(con.contype = 'c' AND"
		"   pg_catalog.regexp_replace(pg_catalog.pg_get_constraintdef(con.oid), ' NOT VALID$', '') ="
		"   pg_catalog.format('CHECK ((%s IS NOT NULL))', pg_catalog.quote_ident($3)), false),"
		" coalesce(con.convalidated, false), coalesce(pg_catalog.pg_get_constraintdef(con.oid), '')"
		" FROM pg_catalog.pg_attribute a LEFT JOIN pg_catalog.pg_constraint con"
		"   ON con.conrelid = a.attrelid AND con.conname = $2"
		" WHERE a.attrelid = $1::oid AND a.attname = $3",
		3, params, &st);
	if (!res)
		return st;
	if (PQntuples(res) != 1) {
		PQclear(res);
		log_at(LOG_ERROR, r->cf->path, s->columns_line, 0,
		       "column \"%s\" of table %s does not exist", s->columns.v[0], rv->shown);
		return ST_USAGE;
	}
	ns->notnull = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	ns->check = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	ns->ours = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
	ns->validated = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
	ns->def = strdup(PQgetvalue(res, 0, 4));
	PQclear(res);
	return ns->def ? ST_OK : oom();
}

/* Converge one not_null: CHECK NOT VALID → VALIDATE → SET NOT NULL → drop the CHECK, each step guarded. */
static enum status do_not_null(struct run *r, const struct cspec *s, const struct resolved *rv)
{
	struct nstate ns = { 0 };
	char *qname = constraints_quote(s->name);
	char *qcol = constraints_quote(s->columns.v[0]);
	char *sql[2] = { NULL, NULL };
	long start = clock_ms();
	enum status st;

	if (!qname || !qcol) {
		st = oom();
		goto out;
	}
	st = load_not_null(r, s, rv, &ns);
	if (st != ST_OK)
		goto out;
	if (ns.check && !ns.ours) {
		log_at(LOG_ERROR, r->cf->path, s->line, 0,
		       "not_null \"%s\" on %s: a constraint with that name exists with another definition",
		       s->name, rv->shown);
		log_detail(
			"The database has: %s; pgprelude uses that name for CHECK (%s IS NOT NULL).",
			ns.def, qcol);
		log_hint(
			"Rename the constraint in the database, or give the not_null another name.");
		st = ST_DRIFT;
		goto out;
	}
	if (ns.notnull && !ns.check) {
		log_at(LOG_DEBUG, r->cf->path, s->line, 0, "not_null \"%s\" on %s: up to date",
		       s->name, rv->shown);
		goto out;
	}
	if (!ns.notnull && !ns.check) {
		st = run_one_step(
			r, s, "ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s IS NOT NULL) NOT VALID",
			rv->qtable, qname, qcol);
		if (st != ST_OK)
			goto out;
	}
	if (!ns.notnull && !ns.validated) {
		st = run_one_step(r, s, "ALTER TABLE %s VALIDATE CONSTRAINT %s", rv->qtable, qname);
		if (st != ST_OK)
			goto out;
	}
	/* With the CHECK validated, SET NOT NULL needs no scan of the table. */
	if (asprintf(&sql[0], "ALTER TABLE %s ALTER COLUMN %s SET NOT NULL", rv->qtable, qcol) <
		    0 ||
	    asprintf(&sql[1], "ALTER TABLE %s DROP CONSTRAINT %s", rv->qtable, qname) < 0) {
		st = oom();
		goto out;
	}
	st = run_steps(r, s, ns.notnull ? sql + 1 : sql, ns.notnull ? 1 : 2, true);
	if (st != ST_OK)
		goto out;
	r->changes++;
	if (ns.notnull)
		log_at(LOG_INFO, r->cf->path, s->line, 0,
		       "not_null \"%s\" on %s: dropped the helper CHECK left by an interrupted run",
		       s->name, rv->shown);
	else
		log_at(LOG_INFO, r->cf->path, s->line, 0,
		       "not_null \"%s\" on %s: %s set NOT NULL (%ld ms)", s->name, rv->shown, qcol,
		       clock_ms() - start);
out:
	free(ns.def);
	free(sql[0]);
	free(sql[1]);
	free(qname);
	free(qcol);
	return st;
}

/*
 * After concurrent unique s failed for good: whether its build left an
 * INVALID index, which the next run drops and builds again.
 */
static void report_leftover(struct run *r, const struct cspec *s, const struct resolved *rv)
{
	const char *params[2] = { rv->relid, s->name };
	PGresult *res;
	enum status st;

	if (PQstatus(r->conn) != CONNECTION_OK)
		return;
	res = db_query(r->conn,
		       "SELECT pg_catalog.pg_get_indexdef(i.indexrelid) FROM pg_catalog.pg_index i"
		       " JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid"
		       " WHERE i.indrelid = $1::oid AND c.relname = $2 AND NOT i.indisvalid",
		       2, params, &st);
	if (res && PQntuples(res) > 0) {
		log_at(LOG_WARNING, r->cf->path, s->line, 0,
		       "the failed concurrent build left the INVALID index \"%s\" on %s: %s",
		       s->name, rv->shown, PQgetvalue(res, 0, 0));
		log_hint("The next run drops it and builds it again.");
	}
	PQclear(res);
}

/*
 * Converge s.  When a statement hits lock_timeout, converge it again from
 * what the catalog then says (an INVALID index that a timed-out concurrent
 * build left is dropped and built again; a not_null goes on from the step it
 * reached) after 1 s, 2 s, 4 s ... up to the phase's lock_retries times,
 * saying each time who held the lock.
 */
static enum status converge_spec(struct run *r, const struct cspec *s, const struct resolved *rv)
{
	int retries = r->ph->lock_retries;
	enum status st;

	for (int attempt = 0;; attempt++) {
		memset(&r->failed, 0, sizeof(r->failed));
		r->quiet = attempt < retries;
		st = s->kind == CSPEC_UNIQUE ? do_unique(r, s, rv) : do_not_null(r, s, rv);
		if (st == ST_SQL && ddl_is_lock_timeout(&r->failed) && r->quiet) {
			char what[160];
			snprintf(what, sizeof(what), "%s \"%s\"", kind_word(s->kind), s->name);
			if (ddl_retry_wait(r->cf->path, s->line, 0, lock_timeout_of(r, s),
					   &r->failed, attempt + 1, retries, what,
					   r->failed_sql ? r->failed_sql : "?"))
				continue;
			st = ST_SIGNAL;
		}
		break;
	}
	r->quiet = false;
	if (st == ST_SQL && ddl_is_lock_timeout(&r->failed)) {
		char of_what[200];
		snprintf(of_what, sizeof(of_what), " (of [%s %s] or of the phase)",
			 kind_word(s->kind), s->name);
		ddl_gave_up(retries, of_what, r->ph->name);
	}
	if (st != ST_OK && st != ST_CONNLOST && s->kind == CSPEC_UNIQUE && s->concurrently)
		report_leftover(r, s, rv);
	return st;
}

/* ---- checking before any DDL, plan and verify ----------------------------- */

/*
 * Decide what s needs, and run its pre-flight when it needs DDL that a
 * pre-flight guards.  With CONS_PLAN, print the actions.  Returns ST_OK
 * (*pf_failed set when the pre-flight failed), ST_DRIFT, or a failure.
 */
static enum status check_spec(struct run *r, const struct cspec *s, const struct resolved *rv,
			      bool *pf_failed)
{
	bool plan = r->mode == CONS_PLAN;
	enum status st;

	*pf_failed = false;
	if (rv->absent) {
		out_line(
			r, s, rv,
			"the table does not exist yet: decided when the earlier pending steps have run");
		return ST_OK;
	}
	if (s->kind == CSPEC_UNIQUE) {
		struct idxlist l;
		struct udecision d;
		char *want;

		st = load_indexes(r, s, rv, &l);
		if (st != ST_OK)
			return st;
		decide_unique(s, &l, &d);
		want = constraints_describe(s);
		switch (d.act) {
		case U_DRIFT:
			log_drift_unique(r, s, rv, &l, &d);
			if (plan)
				out_line(r, s, rv, "drift: exists with another definition");
			st = ST_DRIFT;
			break;
		case U_NOTHING:
			if (plan)
				out_line(r, s, rv, "nothing to do");
			break;
		case U_ADOPT:
			if (plan)
				out_line(r, s, rv, "adopt the existing %s \"%s\" (same definition)",
					 l.v[d.keep].contype ? "constraint" : "unique index",
					 l.v[d.keep].name);
			break;
		case U_ATTACH:
			if (plan)
				out_line(r, s, rv,
					 "add the constraint using its existing unique index");
			break;
		case U_CREATE:
			for (int i = 0; plan && i < d.n_invalid; i++)
				out_line(r, s, rv, "drop the INVALID index \"%s\" to rebuild it",
					 l.v[d.invalid[i]].name);
			st = preflight_unique(r, s, rv, pf_failed);
			if (plan && st == ST_OK)
				out_line(r, s, rv, "%s %s%s; pre-flight: %s",
					 d.n_invalid ? "rebuild" : "create", want ? want : "?",
					 s->concurrently ? " concurrently" : "",
					 *pf_failed ? "FAILED (duplicates, see above)"
						    : "no duplicates");
			break;
		}
		if (plan && st == ST_OK && d.replaced >= 0)
			out_line(r, s, rv, "then drop \"%s\" (replaced)", l.v[d.replaced].name);
		free(want);
		idxlist_free(&l);
		return st;
	}
	{
		struct nstate ns;
		st = load_not_null(r, s, rv, &ns);
		if (st != ST_OK)
			return st;
		if (ns.check && !ns.ours) {
			log_at(LOG_ERROR, r->cf->path, s->line, 0,
			       "not_null \"%s\" on %s: a constraint with that name exists with another definition",
			       s->name, rv->shown);
			log_detail("The database has: %s.", ns.def);
			if (plan)
				out_line(r, s, rv, "drift: the name is used by another constraint");
			st = ST_DRIFT;
		} else if (ns.notnull) {
			if (plan)
				out_line(
					r, s, rv,
					ns.check
						? "drop the helper CHECK left by an interrupted run"
						: "nothing to do");
		} else {
			if (!ns.validated)
				st = preflight_not_null(r, s, rv, pf_failed);
			if (plan && st == ST_OK)
				out_line(r, s, rv,
					 "%s%sSET NOT NULL, drop the CHECK; pre-flight: %s",
					 ns.check ? "" : "add CHECK NOT VALID, ",
					 ns.validated ? "" : "validate it, ",
					 *pf_failed	? "FAILED (NULLs, see above)"
					 : ns.validated ? "not needed"
							: "no NULLs");
		}
		free(ns.def);
		return st;
	}
}

/*
 * Whether s is present and valid.  Returns ST_OK, ST_DRIFT after logging the
 * difference, or a failure.  With report, an ok line goes to stdout.
 */
static enum status verify_spec(struct run *r, const struct cspec *s, const struct resolved *rv,
			       bool report)
{
	const char *path = r->cf->path;
	enum status st;

	if (rv->absent) {
		log_at(LOG_ERROR, path, s->table_line, 0, "%s \"%s\": table \"%s\" does not exist",
		       kind_word(s->kind), s->name, s->table);
		return ST_DRIFT;
	}
	if (s->kind == CSPEC_UNIQUE) {
		struct idxlist l;
		struct udecision d;

		st = load_indexes(r, s, rv, &l);
		if (st != ST_OK)
			return st;
		decide_unique(s, &l, &d);
		switch (d.act) {
		case U_DRIFT:
			log_drift_unique(r, s, rv, &l, &d);
			st = ST_DRIFT;
			break;
		case U_CREATE:
			log_at(LOG_ERROR, path, s->line, 0, "unique \"%s\" on %s is missing%s",
			       s->name, rv->shown,
			       d.n_invalid ? " (only an INVALID index is there)" : "");
			st = ST_DRIFT;
			break;
		case U_ATTACH:
			log_at(LOG_ERROR, path, s->line, 0,
			       "unique \"%s\" on %s: the index is there but not the constraint",
			       s->name, rv->shown);
			st = ST_DRIFT;
			break;
		case U_NOTHING:
		case U_ADOPT:
			break;
		}
		if (st == ST_OK && d.replaced >= 0) {
			log_at(LOG_ERROR, path, s->replaces_line, 0,
			       "unique \"%s\" on %s: \"%s\" (replaced) still exists", s->name,
			       rv->shown, l.v[d.replaced].name);
			st = ST_DRIFT;
		}
		if (st == ST_OK && report)
			out_line(r, s, rv, d.act == U_ADOPT ? "ok (as \"%s\")" : "ok",
				 l.v[d.keep].name);
		idxlist_free(&l);
		return st;
	}
	{
		struct nstate ns;
		st = load_not_null(r, s, rv, &ns);
		if (st != ST_OK)
			return st;
		if (!ns.notnull) {
			log_at(LOG_ERROR, path, s->line, 0,
			       "not_null \"%s\" on %s: column \"%s\" is nullable", s->name,
			       rv->shown, s->columns.v[0]);
			st = ST_DRIFT;
		} else if (report) {
			out_line(r, s, rv, "ok");
		}
		free(ns.def);
		return st;
	}
}

enum status constraints_converge(const struct cfile *cf, const struct phase *ph, PGconn *conn,
				 PGconn *watch, enum cons_mode mode, bool later_ok, int *changes)
{
	struct run r = {
		.cf = cf, .ph = ph, .conn = conn, .watch = watch, .mode = mode, .later_ok = later_ok
	};
	enum status st = ST_OK, worst = ST_OK;

	if (changes)
		*changes = 0;
	r.res = calloc((size_t)cf->n + 1, sizeof(*r.res));
	if (!r.res)
		return oom();
	/* 1. Every table, column and where of the file, before anything else. */
	for (int i = 0; i < cf->n && st == ST_OK; i++) {
		st = resolve(&r, &cf->specs[i], &r.res[i]);
		if (st == ST_OK && cf->specs[i].where && !r.res[i].absent)
			st = normalise_where(&r, &cf->specs[i], &r.res[i]);
	}
	if (st != ST_OK)
		goto out;
	if (mode == CONS_VERIFY) {
		for (int i = 0; i < cf->n; i++) {
			st = verify_spec(&r, &cf->specs[i], &r.res[i], true);
			if (st == ST_DRIFT)
				r.changes++;
			else if (st != ST_OK)
				goto out;
			if (worst == ST_OK)
				worst = st;
		}
		st = worst;
		goto out;
	}
	/* 2. Drift and pre-flight for every spec, before any DDL. */
	for (int i = 0; i < cf->n; i++) {
		bool pf = false;
		st = check_spec(&r, &cf->specs[i], &r.res[i], &pf);
		if (st != ST_OK && st != ST_DRIFT)
			goto out;
		if (worst == ST_OK)
			worst = st != ST_OK ? st : pf ? ST_PREFLIGHT : ST_OK;
		if (st == ST_DRIFT && mode == CONS_APPLY)
			break;
	}
	st = worst;
	if (st != ST_OK) {
		if (mode == CONS_APPLY)
			log_at(LOG_INFO, cf->path, 0, 0, "nothing changed: %s",
			       st == ST_DRIFT
				       ? "resolve the drift first"
				       : "every pre-flight of the file must pass before any DDL runs");
		goto out;
	}
	if (mode == CONS_PLAN)
		goto out;
	/* 3. Converge, in order. */
	for (int i = 0; i < cf->n && st == ST_OK; i++)
		st = converge_spec(&r, &cf->specs[i], &r.res[i]);
	/* 4. Every declared constraint must now be present and valid. */
	for (int i = 0; i < cf->n && st == ST_OK; i++) {
		st = verify_spec(&r, &cf->specs[i], &r.res[i], false);
		if (st == ST_DRIFT)
			log_hint(
				"It was converged just now; something else changed it concurrently.");
	}
out:
	if (changes)
		*changes = r.changes;
	for (int i = 0; i < cf->n; i++)
		resolved_free(&r.res[i]);
	free(r.res);
	free(r.failed_sql);
	return st;
}
