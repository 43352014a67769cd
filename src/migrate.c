#include "migrate.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "db.h"
#include "ddl.h"
#include "lock.h"
#include "init.h"
#include "log.h"

const char *migrate_state_name(enum file_state st)
{
	switch (st) {
	case FILE_PENDING:
		return "pending";
	case FILE_APPLIED:
		return "applied";
	case FILE_CHANGED:
		return "changed";
	case FILE_RERUN:
		return "rerun";
	case FILE_MOVED:
		return "moved";
	case FILE_MISSING:
		return "missing";
	case FILE_DECLARED:
		return "declared";
	case FILE_FAILED:
		return "failed";
	}
	return "?";
}

int migrate_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

bool migrate_directives(const char *text, bool *repeatable, bool *no_transaction, int *bad_line)
{
	const char *p = text;
	int line = 1;

	*repeatable = false;
	*no_transaction = false;
	/* Only the leading block of comment and blank lines can hold directives. */
	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		const char *q = p;

		while (q < p + len && isspace((unsigned char)*q))
			q++;
		if (q < p + len) {
			if (strncmp(q, "--", 2) != 0)
				break;
			q += 2;
			while (q < p + len && (*q == ' ' || *q == '\t'))
				q++;
			if ((size_t)(p + len - q) >= 10 && strncmp(q, "pgprelude:", 10) == 0) {
				q += 10;
				/* a comma- or blank-separated list of words */
				while (q < p + len) {
					const char *w;
					while (q < p + len &&
					       (isspace((unsigned char)*q) || *q == ','))
						q++;
					w = q;
					while (q < p + len && !isspace((unsigned char)*q) &&
					       *q != ',')
						q++;
					if (q == w)
						break;
					if ((size_t)(q - w) == 10 &&
					    strncmp(w, "repeatable", 10) == 0)
						*repeatable = true;
					else if ((size_t)(q - w) == 14 &&
						 strncmp(w, "no-transaction", 14) == 0)
						*no_transaction = true;
					else {
						*bad_line = line;
						return false;
					}
				}
			}
		}
		if (!eol)
			break;
		p = eol + 1;
		line++;
	}
	return true;
}

/* dir/name, malloc'd; NULL when out of memory. */
static char *join_path(const char *dir, const char *name)
{
	size_t d = strlen(dir), n = strlen(name);
	char *out = malloc(d + n + 2);

	if (out) {
		memcpy(out, dir, d);
		out[d] = '/';
		memcpy(out + d + 1, name, n + 1);
	}
	return out;
}

/*
 * The path to show for a file: as the config wrote its folder, that is
 * relative to the config file's folder when it lies below it.
 */
static char *display_path(const char *cfg_path, const char *dir, const char *name)
{
	const char *slash = strrchr(cfg_path, '/');
	size_t n = slash ? (size_t)(slash - cfg_path) : 0;

	if (n > 0 && strncmp(dir, cfg_path, n) == 0 && dir[n] == '/')
		dir += n + 1;
	return join_path(dir, name);
}

static void sha256_hex(const char *data, size_t len, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	static EVP_MD
		*sha256; /* fetched once: an implicit fetch per file costs more than the hash */
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!sha256)
		sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	EVP_Digest(data, len, md, &mdlen, sha256 ? sha256 : EVP_sha256(), NULL);
	for (unsigned int i = 0; i < mdlen && i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

/* Read a whole regular file.  Logs and returns ST_USAGE, or ST_INTERNAL when out of memory. */
static enum status read_file(const char *path, const char *shown, char **text, size_t *len)
{
	struct stat sb;
	char *buf = NULL;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT && lstat(path, &sb) == 0)
			log_error("could not open file \"%s\": it is a dangling symbolic link",
				  shown);
		else
			log_error("could not open file \"%s\": %s", shown, strerror(errno));
		return ST_USAGE;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		log_error("could not read file \"%s\": %s", shown,
			  S_ISDIR(sb.st_mode) ? "it is a directory" : "not a regular file");
		close(fd);
		return ST_USAGE;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		log_error("out of memory reading \"%s\"", shown);
		close(fd);
		return ST_INTERNAL;
	}
	while (got < (size_t)sb.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_error("could not read file \"%s\": %s", shown, strerror(errno));
			free(buf);
			close(fd);
			return ST_USAGE;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	*text = buf;
	*len = got;
	return ST_OK;
}

static bool has_suffix(const char *name, const char *suffix)
{
	size_t len = strlen(name), n = strlen(suffix);
	return len > n && strcmp(name + len - n, suffix) == 0;
}

/* List the *.sql and *.ini names of dir in byte order.  Logs and returns false on failure. */
static bool list_sql(const char *dir, const char *phase, char ***names, int *count)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **v = NULL;
	int n = 0, cap = 0;

	*names = NULL;
	*count = 0;
	if (!d) {
		log_error("could not open folder \"%s\" of phase \"%s\": %s", dir, phase,
			  strerror(errno));
		return false;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.') {
			if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
				log_debug("phase \"%s\": skipping hidden file \"%s\"", phase,
					  e->d_name);
			continue;
		}
		if (!has_suffix(e->d_name, ".sql") && !has_suffix(e->d_name, ".ini")) {
			log_debug(
				"phase \"%s\": skipping \"%s\" (not a .sql file); constraint files end in .ini",
				phase, e->d_name);
			continue;
		}
		if (n == cap) {
			char **nv = realloc(v, (size_t)(cap = cap ? cap * 2 : 32) * sizeof(*v));
			if (!nv)
				goto oom;
			v = nv;
		}
		if (!(v[n] = strdup(e->d_name)))
			goto oom;
		n++;
	}
	closedir(d);
	if (n > 1)
		qsort(v, (size_t)n, sizeof(*v), migrate_name_cmp);
	*names = v;
	*count = n;
	return true;
oom:
	log_error("out of memory");
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
	closedir(d);
	return false;
}

/* A name against a file of a plan (for bsearch over the files read, in name order). */
static int file_cmp(const void *name, const void *f)
{
	return strcmp(name, ((const struct mfile *)f)->name);
}

enum status migrate_list(const struct config *cfg, const struct phase *ph, struct mplan *plan)
{
	char **names = NULL;
	int count = 0;
	enum status st = ST_INTERNAL;

	memset(plan, 0, sizeof(*plan));
	plan->phase = ph;
	plan->cfg_path = cfg->path;
	if (!list_sql(ph->dir, ph->name, &names, &count))
		return ST_USAGE;
	plan->files = calloc((size_t)count + 1, sizeof(*plan->files));
	if (!plan->files)
		goto out;
	for (int i = 0; i < count; i++) {
		struct mfile *f = &plan->files[plan->n++];
		f->name = names[i];
		names[i] = NULL;
		if (!(f->path = display_path(cfg->path, ph->dir, f->name)))
			goto out;
	}
	st = ST_OK;
out:
	if (st == ST_INTERNAL)
		log_error("out of memory");
	for (int i = 0; i < count; i++)
		free(names[i]);
	free(names);
	return st;
}

enum status migrate_read_next(struct mplan *plan)
{
	struct mfile *f = &plan->files[plan->nread++];
	char *full = NULL;
	int bad_line = 0;
	struct sqlsplit_error serr;
	enum status st;

	/* The name is the history key, stored as text: it must be UTF-8. */
	if (!utf8_valid(f->name, strlen(f->name))) {
		char shown[1024];
		log_escape_bytes(f->path, shown, sizeof(shown));
		log_at(LOG_ERROR, shown, 0, 0, "the file name is not valid UTF-8");
		log_hint("Rename the file; names are recorded in the history table as text.");
		return ST_USAGE;
	}
	if (!(full = join_path(plan->phase->dir, f->name))) {
		log_error("out of memory");
		return ST_INTERNAL;
	}
	st = read_file(full, f->path, &f->text, &f->len);
	free(full);
	if (st != ST_OK)
		return st;
	sha256_hex(f->text, f->len, f->checksum);
	if (has_suffix(f->name, ".ini")) {
		f->state = FILE_DECLARED;
		if (!(f->cons = calloc(1, sizeof(*f->cons)))) {
			log_error("out of memory");
			return ST_INTERNAL;
		}
		return constraints_parse(f->text, f->len, f->path, f->cons);
	}
	f->nstmts = sqlsplit(f->text, f->len, &f->stmts, &serr);
	if (f->nstmts == -2) {
		log_error("out of memory");
		return ST_INTERNAL;
	}
	if (f->nstmts < 0) {
		log_at(LOG_ERROR, f->path, serr.line, serr.col, "%s", serr.message);
		return ST_SQL;
	}
	if (f->nstmts == 0) {
		log_at(LOG_ERROR, f->path, 0, 0, "the file holds no SQL statement");
		log_hint("Remove it, or put the SQL it is meant to run in it.");
		return ST_USAGE;
	}
	if (!migrate_directives(f->text, &f->repeatable, &f->no_transaction, &bad_line)) {
		log_at(LOG_ERROR, f->path, bad_line, 0, "unknown pgprelude directive");
		log_hint("Known directives: \"-- pgprelude: repeatable\", \"-- pgprelude: "
			 "no-transaction\".");
		return ST_USAGE;
	}
	return ST_OK;
}

enum status migrate_match(struct mplan *plan, const struct history *h)
{
	const char *phase = plan->phase->name;
	int count = plan->n, extra = 0;

	for (int i = 0; i < count; i++) {
		struct mfile *f = &plan->files[i];
		if (f->state == FILE_DECLARED)
			continue;
		f->row = history_find(h, phase, f->name);
		if (history_row_failed(f->row)) {
			f->state = FILE_FAILED; /* changed or not: it runs again */
		} else if (!f->row) {
			f->moved = history_find_moved(h, phase, f->checksum);
			f->state = f->moved ? FILE_MOVED : FILE_PENDING;
		} else if (strcmp(f->row->checksum, f->checksum) == 0) {
			f->state = FILE_APPLIED;
		} else {
			f->state = f->repeatable ? FILE_RERUN : FILE_CHANGED;
		}
	}
	/* History rows of this phase whose file is gone. */
	for (int i = 0; i < h->n; i++)
		if (strcmp(h->rows[i].phase, phase) == 0)
			extra++;
	if (extra > 0) {
		struct mfile *v = realloc(plan->files, (size_t)(count + extra + 1) * sizeof(*v));
		if (!v) {
			log_error("out of memory");
			return ST_INTERNAL;
		}
		memset(v + count, 0, (size_t)(extra + 1) * sizeof(*v));
		plan->files = v;
	}
	for (int i = 0; i < h->n; i++) {
		const struct history_row *r = &h->rows[i];
		struct mfile *f;
		if (strcmp(r->phase, phase) != 0 ||
		    bsearch(r->file, plan->files, (size_t)count, sizeof(*plan->files), file_cmp))
			continue;
		f = &plan->files[plan->n++];
		f->name = strdup(r->file);
		f->path = display_path(plan->cfg_path, plan->phase->dir, r->file);
		if (!f->name || !f->path) {
			log_error("out of memory");
			return ST_INTERNAL;
		}
		snprintf(f->checksum, sizeof(f->checksum), "%s", r->checksum);
		f->state = FILE_MISSING;
		f->row = r;
	}
	return ST_OK;
}

enum status migrate_check(const struct mplan *plan, const struct history *h)
{
	enum status st = ST_OK;

	for (int i = 0; i < plan->n; i++) {
		const struct mfile *f = &plan->files[i];
		if (f->state == FILE_CHANGED) {
			log_at(LOG_ERROR, f->path, 0, 0,
			       "the file changed after it was applied on %s (checksum %.12s…, now %.12s…)",
			       f->row->applied_at, f->row->checksum, f->checksum);
			log_detail("Applied checksum %s; the file's checksum is now %s.",
				   f->row->checksum, f->checksum);
			log_hint(
				"Restore the file as it was applied and put the change in a new file. If "
				"the edit is cosmetic, accept it with: UPDATE %s SET checksum = '%s' WHERE "
				"phase = '%s' AND file = '%s'; or mark the file \"-- pgprelude: "
				"repeatable\" if it is meant to re-run.",
				h->qualified, f->checksum, plan->phase->name, f->name);
			st = ST_DRIFT;
		} else if (f->state == FILE_MOVED) {
			log_at(LOG_WARNING, f->path, 0, 0,
			       "already applied as \"%s\" in phase \"%s\" on %s (same checksum): not running "
			       "it again",
			       f->moved->file, f->moved->phase, f->moved->applied_at);
		} else if (f->state == FILE_MISSING) {
			log_debug("%s: applied on %s, no longer in the folder", f->path,
				  f->row->applied_at);
		}
	}
	return st;
}

/* Open the work connection if it is not open yet. */
static enum status ensure_work(const struct config *cfg, PGconn **work)
{
	char err[512];
	const char *reason = NULL;
	enum status st;

	if (*work)
		return ST_OK;
	st = db_connect_once(cfg, 10000, work, &reason, err, sizeof(err));
	if (st != ST_OK) {
		log_error("could not open a second connection to %s: %s", db_describe(NULL),
			  reason);
		log_detail("%s", err);
		return st == ST_UNREACHABLE ? ST_CONNLOST : st;
	}
	return ST_OK;
}

/* ---- applying files ------------------------------------------------------ */

/* After the last retry of a lock_timeout: who held the lock and what to do. */
static void gave_up(const struct phase *ph, const struct db_run *run)
{
	if (run->blocker[0])
		log_detail("The lock was held by %s.", run->blocker);
	ddl_gave_up(ph->lock_retries, "", ph->name);
}

/* Run one file and its history row in one transaction, again from its start after a lock_timeout. */
static enum status apply_file(const struct mplan *plan, const struct mfile *f, struct history *h,
			      PGconn *conn, PGconn *watch)
{
	const struct phase *ph = plan->phase;
	long start = clock_ms();
	enum status st;

	for (int attempt = 0;; attempt++) {
		struct db_run run = { .file = f->path,
				      .stmts = f->stmts,
				      .nstmts = f->nstmts,
				      .watch = watch,
				      .lock_poll_ms = ddl_lock_poll_ms(ph->lock_timeout_ms),
				      .quiet_lock_timeout = attempt < ph->lock_retries };
		st = ddl_set_timeouts(conn, true, ph->lock_timeout_ms, ph->statement_timeout_ms);
		if (st != ST_OK)
			return st;
		db_set_notice_file(conn, f->path);
		st = db_run(conn, f->text, &run);
		db_set_notice_file(conn, NULL);
		if (st == ST_OK && PQtransactionStatus(conn) != PQTRANS_INTRANS) {
			log_at(LOG_ERROR, f->path, 0, 0,
			       "the file ended pgprelude's transaction itself (COMMIT or ROLLBACK in it)");
			log_detail(
				"What ran before its COMMIT is committed; the file is not recorded as applied.");
			log_hint(
				"Remove BEGIN/COMMIT from the file: pgprelude runs each file in a transaction "
				"(or mark it \"-- pgprelude: no-transaction\").");
			st = ST_SQL;
		}
		if (st == ST_OK)
			st = history_record(conn, h, ph->name, f->name, f->checksum,
					    clock_ms() - start,
					    f->state == FILE_RERUN ? "reapplied" : "applied");
		if (st == ST_OK)
			st = db_exec(conn, "COMMIT", f->path);
		if (st == ST_OK)
			break;
		ddl_rollback(conn);
		if (st == ST_SQL && ddl_is_lock_timeout(&run) && attempt < ph->lock_retries) {
			if (!ddl_retry_wait(f->path, run.err_line, run.err_col, ph->lock_timeout_ms,
					    &run, attempt + 1, ph->lock_retries, "the whole file",
					    NULL))
				return ST_SIGNAL;
			continue;
		}
		if (st == ST_SQL && ddl_is_lock_timeout(&run))
			gave_up(ph, &run);
		if (st == ST_SQL && strcmp(run.sqlstate, "25001") == 0)
			log_hint(
				"A statement such as CREATE INDEX CONCURRENTLY cannot run in a transaction: "
				"put \"-- pgprelude: no-transaction\" at the top of the file to run its "
				"statements one by one.");
		return st;
	}
	log_info("applied %s%s (%ld ms)", f->path,
		 f->state == FILE_RERUN ? " again (repeatable, changed)" : "", clock_ms() - start);
	return ST_OK;
}

/* Step over blanks and comments. */
static const char *skip_blanks(const char *p)
{
	for (;;) {
		while (isspace((unsigned char)*p))
			p++;
		if (p[0] == '-' && p[1] == '-') {
			while (*p && *p != '\n')
				p++;
		} else if (p[0] == '/' && p[1] == '*') {
			int depth = 0;
			while (*p) {
				if (p[0] == '/' && p[1] == '*') {
					depth++;
					p += 2;
				} else if (p[0] == '*' && p[1] == '/') {
					p += 2;
					if (--depth == 0)
						break;
				} else {
					p++;
				}
			}
		} else {
			return p;
		}
	}
}

/*
 * The next token of sql at *p as written: a word, a "quoted identifier", or
 * one other character.  Returns its length (0 at the end) and moves *p past it.
 */
static size_t next_token(const char **p, const char **tok)
{
	const char *s = skip_blanks(*p);
	const char *e = s;

	if (*s == '"') {
		for (e = s + 1; *e; e++) {
			if (*e == '"' && e[1] == '"')
				e++;
			else if (*e == '"')
				break;
		}
		if (*e)
			e++;
	} else if (isalnum((unsigned char)*s) || *s == '_' || (unsigned char)*s >= 0x80) {
		while (isalnum((unsigned char)*e) || *e == '_' || *e == '$' ||
		       (unsigned char)*e >= 0x80)
			e++;
	} else if (*s) {
		e = s + 1;
	}
	*tok = s;
	*p = e;
	return (size_t)(e - s);
}

static bool token_is(const char *tok, size_t len, const char *word)
{
	return len == strlen(word) && strncasecmp(tok, word, len) == 0;
}

/* Whether token t (n bytes) can start a name: a word, or a "quoted identifier". */
static bool is_name_token(const char *t, size_t n)
{
	if (n == 0)
		return false;
	if (*t == '"')
		return n > 2 && t[n - 1] == '"';
	return isalpha((unsigned char)*t) || *t == '_' || (unsigned char)*t >= 0x80;
}

/*
 * The [schema.]name at *p as written (malloc'd), moving *p past it; NULL
 * when there is none (or more dots than to_regclass() takes), or out of
 * memory.
 */
static char *next_relation(const char **p)
{
	const char *t, *start;
	size_t n = next_token(p, &t);
	int parts = 1;

	if (!is_name_token(t, n))
		return NULL;
	start = t;
	for (;;) {
		const char *save = *p, *dot;
		size_t dn = next_token(p, &dot);
		if (dn != 1 || *dot != '.') {
			*p = save;
			break;
		}
		n = next_token(p, &t);
		if (!is_name_token(t, n) || ++parts > 2)
			return NULL;
	}
	return strndup(start, (size_t)(t + n - start));
}

/* Step over the next token of *p when it is word. */
static void skip_word(const char **p, const char *word)
{
	const char *save = *p, *t;
	size_t n = next_token(p, &t);

	if (!token_is(t, n, word))
		*p = save;
}

/*
 * When sql is CREATE [UNIQUE] INDEX [CONCURRENTLY] [[IF NOT EXISTS] name] ON
 * [ONLY] table, store the table and the name (NULL for an unnamed index) as
 * written (malloc'd, the caller frees them) and whether it is CONCURRENTLY,
 * and return true.
 */
static bool parse_create_index(const char *sql, bool *concurrently, char **name, char **table)
{
	const char *p = sql, *t;
	size_t n;

	*concurrently = false;
	*name = *table = NULL;
	n = next_token(&p, &t);
	if (!token_is(t, n, "create"))
		return false;
	n = next_token(&p, &t);
	if (token_is(t, n, "unique"))
		n = next_token(&p, &t);
	if (!token_is(t, n, "index"))
		return false;
	n = next_token(&p, &t);
	if (token_is(t, n, "concurrently")) {
		*concurrently = true;
		n = next_token(&p, &t);
	}
	if (token_is(t, n, "if")) {
		next_token(&p, &t); /* not */
		next_token(&p, &t); /* exists */
		n = next_token(&p, &t);
	}
	if (!token_is(t, n, "on")) {
		if (!is_name_token(t, n) || !(*name = strndup(t, n)))
			return false;
		n = next_token(&p, &t);
		if (!token_is(t, n, "on"))
			goto no;
	}
	skip_word(&p, "only");
	*table = next_relation(&p);
	if (*table)
		return true;
no:
	free(*name);
	*name = NULL;
	return false;
}

/*
 * When sql is CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] name ON
 * [ONLY] table, store name and table as written (malloc'd, the caller frees
 * them) and return true.  An unnamed index gives false.
 */
static bool parse_cic(const char *sql, char **name, char **table)
{
	bool concurrently;

	if (!parse_create_index(sql, &concurrently, name, table))
		return false;
	if (concurrently && *name)
		return true;
	free(*name);
	free(*table);
	*name = *table = NULL;
	return false;
}

/* Append name to the text[] literal *arr ({"a","b"}, malloc'd); false when out of memory. */
static bool array_add(char **arr, const char *name)
{
	size_t len = *arr ? strlen(*arr) - 1 : 0; /* without its closing brace */
	char *p = realloc(*arr, len + 2 * strlen(name) + 5);

	if (!p)
		return false;
	*arr = p;
	p += len;
	*p++ = len ? ',' : '{';
	*p++ = '"';
	for (const char *c = name; *c; c++) {
		if (*c == '"' || *c == '\\')
			*p++ = '\\';
		*p++ = *c;
	}
	strcpy(p, "\"}");
	return true;
}

/*
 * Add the relations statement sql names whose indexes a failure of it can
 * leave INVALID to the text[] literals *tables (CREATE INDEX … ON table,
 * REINDEX TABLE name) and *indexes (REINDEX INDEX name, DROP INDEX name, …).
 * Returns false when out of memory.
 */
static bool add_index_targets(const char *sql, char **tables, char **indexes)
{
	const char *p = sql, *t;
	size_t n = next_token(&p, &t);
	char *name = NULL, *table = NULL;
	bool ok = true, concurrently;

	if (token_is(t, n, "reindex")) {
		bool index;
		n = next_token(&p, &t);
		if (n == 1 && *t == '(') {
			while ((n = next_token(&p, &t)) > 0 && !(n == 1 && *t == ')'))
				;
			n = next_token(&p, &t);
		}
		index = token_is(t, n, "index");
		if (!index && !token_is(t, n, "table"))
			return true;
		skip_word(&p, "concurrently");
		if ((name = next_relation(&p)))
			ok = array_add(index ? indexes : tables, name);
	} else if (token_is(t, n, "drop")) {
		n = next_token(&p, &t);
		if (!token_is(t, n, "index"))
			return true;
		skip_word(&p, "concurrently");
		skip_word(&p, "if");
		skip_word(&p, "exists");
		/* a, b, … */
		while (ok && (name = next_relation(&p))) {
			const char *comma;
			ok = array_add(indexes, name);
			free(name);
			name = NULL;
			if (next_token(&p, &comma) != 1 || *comma != ',')
				break;
		}
	} else if (parse_create_index(sql, &concurrently, &name, &table)) {
		ok = array_add(tables, table);
	}
	free(name);
	free(table);
	return ok;
}

/* INVALID indexes, not being built right now: qualified name, table, definition. */
#define INVALID_INDEXES_SQL                                                         \
	"SELECT format('%I.%I', n.nspname, c.relname), i.indrelid::regclass::text," \
	"       pg_get_indexdef(i.indexrelid)"                                      \
	"  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"                 \
	"  JOIN pg_namespace n ON n.oid = c.relnamespace"                           \
	" WHERE NOT i.indisvalid"                                                   \
	"   AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p"          \
	"                    WHERE p.index_relid = i.indexrelid)"

/*
 * The INVALID index (qualified, malloc'd) that the CREATE INDEX CONCURRENTLY
 * sql would build, left by an earlier failed build of it; NULL when there is
 * none, or sql is no such statement, or on failure (*st says which).
 */
static char *find_twin(PGconn *conn, const char *sql, enum status *st)
{
	char *name, *table, *twin = NULL;
	const char *params[2];
	PGresult *res;

	*st = ST_OK;
	if (!parse_cic(sql, &name, &table))
		return NULL;
	params[0] = name;
	params[1] = table;
	res = db_query(conn,
		       INVALID_INDEXES_SQL " AND i.indrelid = to_regclass($2)"
					   " AND c.relname = (parse_ident($1))[1]",
		       2, params, st);
	if (res && PQntuples(res) > 0 && !(twin = strdup(PQgetvalue(res, 0, 0))))
		*st = ST_INTERNAL;
	PQclear(res);
	free(name);
	free(table);
	return twin;
}

/*
 * Before statement s of f: if it is a CREATE INDEX CONCURRENTLY whose index
 * an earlier failed build left INVALID, drop that index (concurrently), so
 * that the statement builds it again rather than failing on the name or,
 * with IF NOT EXISTS, skipping it.
 */
static enum status drop_twin(const struct mfile *f, const struct sql_stmt *s, const char *sql,
			     PGconn *conn)
{
	enum status st;
	char *twin = find_twin(conn, sql, &st);
	char *drop = NULL;

	if (!twin)
		return st;
	log_at(LOG_WARNING, f->path, s->line, s->col,
	       "dropping the INVALID index %s that an earlier failed CREATE INDEX CONCURRENTLY of this "
	       "statement left, to build it again",
	       twin);
	if (asprintf(&drop, "DROP INDEX CONCURRENTLY IF EXISTS %s", twin) < 0) {
		free(twin);
		log_error("out of memory");
		return ST_INTERNAL;
	}
	st = db_exec(conn, drop, NULL);
	if (st != ST_OK)
		log_at(LOG_ERROR, f->path, s->line, s->col, "could not drop the INVALID index %s",
		       twin);
	free(drop);
	free(twin);
	return st;
}

/*
 * Say which INVALID indexes there are on the tables that f's statements
 * build, rebuild or drop indexes of (add_index_targets): those a statement
 * of f builds with CREATE INDEX CONCURRENTLY are dropped and built again by
 * the next run; for the others, how to remove them.  INVALID indexes of
 * other tables are none of f's doing, and not reported against it.
 */
static void report_invalid_indexes(const struct mfile *f, PGconn *conn, bool this_run)
{
	char *tables = NULL, *indexes = NULL;
	const char *params[2];
	PGresult *res = NULL;
	enum status st;
	bool ok = true;

	for (int k = 0; k < f->nstmts && ok; k++) {
		char *sql =
			strndup(f->text + f->stmts[k].start, f->stmts[k].end - f->stmts[k].start);
		ok = sql && add_index_targets(sql, &tables, &indexes);
		free(sql);
	}
	if (!ok) {
		log_error("out of memory");
		goto out;
	}
	if (!tables && !indexes)
		goto out;
	params[0] = tables ? tables : "{}";
	params[1] = indexes ? indexes : "{}";
	res = db_query(
		conn,
		INVALID_INDEXES_SQL
		"   AND i.indrelid IN (SELECT to_regclass(x)::oid FROM unnest($1::text[]) AS x"
		"     UNION SELECT j.indrelid FROM pg_index j, unnest($2::text[]) AS x"
		"      WHERE j.indexrelid = to_regclass(x))"
		" ORDER BY 1",
		2, params, &st);
	for (int r = 0; res && r < PQntuples(res); r++) {
		const char *index = PQgetvalue(res, r, 0);
		bool mine = false;
		for (int k = 0; k < f->nstmts && !mine; k++) {
			char *sql = strndup(f->text + f->stmts[k].start,
					    f->stmts[k].end - f->stmts[k].start);
			char *twin = sql ? find_twin(conn, sql, &st) : NULL;
			mine = twin && strcmp(twin, index) == 0;
			free(twin);
			free(sql);
		}
		log_at(LOG_WARNING, f->path, 0, 0, "INVALID index %s on %s is left behind: %s",
		       index, PQgetvalue(res, r, 1), PQgetvalue(res, r, 2));
		if (mine)
			log_detail(
				"A failed CREATE INDEX CONCURRENTLY of this file left it; %s drops it (DROP "
				"INDEX CONCURRENTLY) before the statement builds it again.",
				this_run ? "this run" : "the file's next run");
		else
			log_hint(
				"It is no index this file builds by name: remove it with DROP INDEX "
				"CONCURRENTLY %s; or build it again with REINDEX INDEX CONCURRENTLY %s;",
				index, index);
	}
out:
	PQclear(res);
	free(tables);
	free(indexes);
}

/*
 * Statement k of no-transaction file f, alone, in autocommit; only it again
 * after a lock_timeout.  run receives the outcome of the last attempt.
 */
static enum status run_statement(const struct phase *ph, const struct mfile *f, int k, PGconn *conn,
				 PGconn *watch, struct db_run *run)
{
	const struct sql_stmt *s = &f->stmts[k];
	char *sql = strndup(f->text + s->start, s->end - s->start);
	enum status st;

	if (!sql) {
		log_error("out of memory");
		return ST_INTERNAL;
	}
	for (int attempt = 0;; attempt++) {
		/* Within the file's own BEGIN … COMMIT a statement cannot be tried again alone. */
		bool may_retry =
			attempt < ph->lock_retries && PQtransactionStatus(conn) == PQTRANS_IDLE;
		st = drop_twin(f, s, sql, conn);
		if (st != ST_OK)
			break;
		*run = (struct db_run){ .file = f->path,
					.stmts = s,
					.nstmts = 1,
					.sent_line = s->line,
					.sent_col = s->col,
					.watch = watch,
					.lock_poll_ms = ddl_lock_poll_ms(ph->lock_timeout_ms),
					.quiet_lock_timeout = may_retry };
		log_debug("%s:%d:%d: statement %d of %d", f->path, s->line, s->col, k + 1,
			  f->nstmts);
		st = db_run(conn, sql, run);
		if (st == ST_SQL && ddl_is_lock_timeout(run) && may_retry) {
			if (!ddl_retry_wait(f->path, run->err_line, run->err_col,
					    ph->lock_timeout_ms, run, attempt + 1, ph->lock_retries,
					    "the statement", NULL)) {
				st = ST_SIGNAL;
				break;
			}
			continue;
		}
		if (st == ST_SQL && ddl_is_lock_timeout(run))
			gave_up(ph, run);
		break;
	}
	free(sql);
	return st;
}

/*
 * No-transaction file f stopped at statement k with st: say what stays
 * committed and what it left, and record the failure (outcome "failed at
 * line L:C: ...") so that the next run reports it and runs the file again.
 */
static void record_failure(const struct mplan *plan, const struct mfile *f, struct history *h,
			   PGconn *conn, int k, const struct db_run *run, enum status st,
			   long start)
{
	const struct sql_stmt *s = &f->stmts[k < f->nstmts ? k : f->nstmts - 1];
	char outcome[400];

	if (st == ST_SIGNAL) {
		snprintf(outcome, sizeof(outcome), "failed at line %d:%d: stopped by signal %d",
			 s->line, s->col, init_stop_signal());
		log_at(LOG_ERROR, f->path, s->line, s->col,
		       "cancelled by signal %d while running this statement", init_stop_signal());
	} else
		snprintf(outcome, sizeof(outcome), "failed at line %d:%d: %s%s%s%s",
			 run->err_line ? run->err_line : s->line,
			 run->err_line ? run->err_col : s->col, run->message,
			 run->sqlstate[0] ? " (" : "", run->sqlstate, run->sqlstate[0] ? ")" : "");
	if (k == 1)
		log_detail(
			"The file runs without a transaction: its first statement was committed and "
			"stays. The file is not recorded as applied.");
	else if (k > 1)
		log_detail(
			"The file runs without a transaction: its first %d statements (before line %d) "
			"were committed and stay. The file is not recorded as applied.",
			k, s->line);
	else
		log_detail(
			"The file runs without a transaction; it stopped at its first statement. It is "
			"not recorded as applied.");
	if (PQstatus(conn) != CONNECTION_OK)
		return;
	if (history_record(conn, h, plan->phase->name, f->name, f->checksum, clock_ms() - start,
			   outcome) != ST_OK)
		return;
	report_invalid_indexes(f, conn, false);
	log_hint(
		"The next run reports this and runs the file again from its first statement, so every "
		"statement in it must be re-runnable (IF NOT EXISTS, CREATE OR REPLACE, ...). Fix the "
		"cause above, then start again.");
}

/*
 * After no-transaction file f ran: the index that its statement k builds
 * with CREATE INDEX CONCURRENTLY must be valid (IF NOT EXISTS skips a name
 * already taken, even by an INVALID index or one another session is still
 * building).  Logs and returns ST_SQL, with run filled, when it is not.
 */
static enum status check_built(const struct mfile *f, int k, PGconn *conn, struct db_run *run)
{
	const struct sql_stmt *s = &f->stmts[k];
	char *sql = strndup(f->text + s->start, s->end - s->start);
	char *name = NULL, *table = NULL;
	const char *params[2];
	enum status st = ST_OK;
	PGresult *res = NULL;

	if (!sql) {
		log_error("out of memory");
		return ST_INTERNAL;
	}
	if (!parse_cic(sql, &name, &table))
		goto out;
	params[0] = name;
	params[1] = table;
	res = db_query(
		conn,
		"SELECT format('%I.%I', n.nspname, c.relname) FROM pg_index i"
		"  JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
		" WHERE i.indrelid = to_regclass($2) AND c.relname = (parse_ident($1))[1]"
		"   AND NOT i.indisvalid",
		2, params, &st);
	if (res && PQntuples(res) > 0) {
		log_at(LOG_ERROR, f->path, s->line, s->col,
		       "the index %s that this statement builds is not valid after the file ran",
		       PQgetvalue(res, 0, 0));
		log_detail(
			"Another session is still building it, or a build of it failed; IF NOT EXISTS "
			"took the name for done.");
		*run = (struct db_run){ .err_line = s->line, .err_col = s->col };
		snprintf(run->message, sizeof(run->message), "index %s is not valid",
			 PQgetvalue(res, 0, 0));
		st = ST_SQL;
	}
out:
	PQclear(res);
	free(name);
	free(table);
	free(sql);
	return st;
}

/*
 * Run no-transaction file f statement by statement in autocommit (so that
 * CREATE INDEX CONCURRENTLY works), then record it.  lock_timeout and
 * statement_timeout are set in the session for the file (each statement
 * gets its own statement_timeout; a SET in the file itself holds for the
 * statements after it) and reset after it.
 */
static enum status apply_no_tx(const struct mplan *plan, const struct mfile *f, struct history *h,
			       PGconn *conn, PGconn *watch)
{
	const struct phase *ph = plan->phase;
	long start = clock_ms();
	struct db_run run = { 0 };
	enum status st;
	int k;

	st = ddl_set_timeouts(conn, false, ph->lock_timeout_ms, ph->statement_timeout_ms);
	if (st != ST_OK)
		return st;
	db_set_notice_file(conn, f->path);
	for (k = 0; k < f->nstmts; k++) {
		st = run_statement(ph, f, k, conn, watch, &run);
		if (st != ST_OK)
			break;
	}
	db_set_notice_file(conn, NULL);
	if (st == ST_OK && PQtransactionStatus(conn) != PQTRANS_IDLE) {
		k = f->nstmts - 1;
		log_at(LOG_ERROR, f->path, f->stmts[k].line, f->stmts[k].col,
		       "the file ends inside a transaction it opened (BEGIN without COMMIT)");
		snprintf(run.message, sizeof(run.message),
			 "the file ends inside a transaction it opened");
		run.sqlstate[0] = '\0';
		run.err_line = f->stmts[k].line;
		run.err_col = f->stmts[k].col;
		st = ST_SQL;
	}
	ddl_rollback(conn);
	ddl_reset_timeouts(conn);
	for (int j = 0; st == ST_OK && j < f->nstmts; j++) {
		st = check_built(f, j, conn, &run);
		if (st != ST_OK)
			k = j;
	}
	if (st == ST_OK) {
		st = history_record(conn, h, ph->name, f->name, f->checksum, clock_ms() - start,
				    f->state == FILE_RERUN ? "reapplied" : "applied");
		if (st != ST_OK) {
			log_at(LOG_ERROR, f->path, 0, 0,
			       "ran to its end, but could not be recorded as applied");
			log_hint("The next run runs it again from its first statement.");
			return st;
		}
		log_info("applied %s%s (no transaction, %d statement%s, %ld ms)", f->path,
			 f->state == FILE_RERUN ? " again (repeatable, changed)" : "", f->nstmts,
			 f->nstmts == 1 ? "" : "s", clock_ms() - start);
		return ST_OK;
	}
	if (st != ST_INTERNAL)
		record_failure(plan, f, h, conn, k, &run, st, start);
	return st;
}

/* Before running f again: what its failed last run left. */
static void report_last_failure(const struct mfile *f, PGconn *conn)
{
	log_at(LOG_WARNING, f->path, 0, 0, "its last run (%s) %s", f->row->applied_at,
	       f->row->outcome);
	log_detail(
		"Its statements before that one were committed then. It is not recorded as applied: "
		"running it again from its first statement%s.",
		strcmp(f->row->checksum, f->checksum) != 0 ? " (the file has changed since)" : "");
	report_invalid_indexes(f, conn, true);
}

/* The work connection, open and holding the work lock. */
static enum status begin_work(const struct config *cfg, PGconn **work, bool *locked)
{
	enum status st = ensure_work(cfg, work);
	if (st == ST_OK && !*locked) {
		st = lock_acquire_work(*work, cfg);
		*locked = st == ST_OK;
	}
	return st;
}

enum status migrate_apply(const struct mplan *plan, struct history *h, const struct config *cfg,
			  PGconn *watch, PGconn **work, int *applied)
{
	enum status st = ST_OK;
	bool locked = false;

	*applied = 0;
	for (int i = 0; i < plan->n && st == ST_OK; i++) {
		const struct mfile *f = &plan->files[i];
		if (f->state == FILE_DECLARED) {
			st = begin_work(cfg, work, &locked);
			if (st == ST_OK)
				st = constraints_converge(f->cons, plan->phase, *work, watch,
							  CONS_APPLY, false, NULL);
			continue;
		}
		if (f->state != FILE_PENDING && f->state != FILE_RERUN && f->state != FILE_FAILED)
			continue;
		st = begin_work(cfg, work, &locked);
		if (st == ST_OK)
			st = history_ensure(*work, h);
		if (st == ST_OK && f->state == FILE_FAILED)
			report_last_failure(f, *work);
		if (st == ST_OK)
			st = f->no_transaction ? apply_no_tx(plan, f, h, *work, watch)
					       : apply_file(plan, f, h, *work, watch);
		if (st == ST_CONNLOST && f->no_transaction)
			log_error(
				"lost the connection while applying %s (no transaction): what ran "
				"before the statement it was running stays committed",
				f->path);
		else if (st == ST_CONNLOST)
			log_error("lost the connection while applying %s; it was rolled back",
				  f->path);
		else if (st == ST_SIGNAL && f->no_transaction)
			log_error(
				"stopped while applying %s (no transaction): what ran before the "
				"cancelled statement stays committed; the next run reports the file "
				"and runs it again",
				f->path);
		else if (st == ST_SIGNAL)
			log_error("stopped while applying %s; its transaction was rolled back",
				  f->path);
		if (st == ST_OK)
			(*applied)++;
	}
	if (locked)
		lock_release_work(*work, cfg);
	return st;
}

void mplan_free(struct mplan *plan)
{
	for (int i = 0; plan->files && i < plan->n; i++) {
		free(plan->files[i].name);
		free(plan->files[i].path);
		free(plan->files[i].text);
		free(plan->files[i].stmts);
		if (plan->files[i].cons)
			cfile_free(plan->files[i].cons);
		free(plan->files[i].cons);
	}
	free(plan->files);
	memset(plan, 0, sizeof(*plan));
}
