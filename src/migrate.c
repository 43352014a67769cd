/*
 * migrate.c — a dir phase: its folder read into a plan (which files, in
 * which order, their statements, directives and checksums), matched against
 * the history, and applied file by file (apply.h).
 */
#include "migrate.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "apply.h"
#include "db.h"
#include "lock.h"
#include "log.h"
#include "util.h"

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

/* dir/name, malloc'd. */
static char *join_path(const char *dir, const char *name)
{
	return xasprintf("%s/%s", dir, name);
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

/* Read a whole regular file into *text (malloc'd).  Logs and returns ST_USAGE on failure. */
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
	buf = xmalloc((size_t)sb.st_size + 1);
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

/*
 * List the *.sql and *.ini names of dir in byte order into *names (the
 * caller frees it).  Logs and returns false when dir cannot be read.
 */
static bool list_sql(const char *dir, const char *phase, struct strv *names)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	*names = (struct strv){ 0 };
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
		strv_push(names, xstrdup(e->d_name));
	}
	closedir(d);
	if (names->n > 1)
		qsort(names->v, (size_t)names->n, sizeof(*names->v), migrate_name_cmp);
	return true;
}

/* A name against a file of a plan (for bsearch over the files read, in name order). */
static int file_cmp(const void *name, const void *f)
{
	return strcmp(name, ((const struct mfile *)f)->name);
}

enum status migrate_list(const struct config *cfg, const struct phase *ph, struct mplan *plan)
{
	struct strv names;

	memset(plan, 0, sizeof(*plan));
	plan->phase = ph;
	plan->cfg_path = cfg->path;
	if (!list_sql(ph->dir, ph->name, &names))
		return ST_USAGE;
	plan->files = xcalloc((size_t)names.n + 1, sizeof(*plan->files));
	for (int i = 0; i < names.n; i++) {
		struct mfile *f = &plan->files[plan->n++];
		f->name = names.v[i];
		f->path = display_path(cfg->path, ph->dir, f->name);
	}
	free(names.v); /* its strings are the files' names now */
	return ST_OK;
}

enum status migrate_read_next(struct mplan *plan)
{
	struct mfile *f = &plan->files[plan->nread++];
	char *full;
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
	full = join_path(plan->phase->dir, f->name);
	st = read_file(full, f->path, &f->text, &f->len);
	free(full);
	if (st != ST_OK)
		return st;
	sha256_hex(f->text, f->len, f->checksum);
	if (has_suffix(f->name, ".ini")) {
		f->state = FILE_DECLARED;
		f->cons = xcalloc(1, sizeof(*f->cons));
		return constraints_parse(f->text, f->len, f->path, f->cons);
	}
	f->nstmts = sqlsplit(f->text, f->len, &f->stmts, &serr);
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
		struct mfile *v = xrealloc(plan->files, (size_t)(count + extra + 1) * sizeof(*v));
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
		f->name = xstrdup(r->file);
		f->path = display_path(plan->cfg_path, plan->phase->dir, r->file);
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

/* After f stopped with st: what a lost connection or a stop signal left of it. */
static void log_interrupted(const struct mfile *f, enum status st)
{
	if (st == ST_CONNLOST && f->no_transaction)
		log_error("lost the connection while applying %s (no transaction): what ran "
			  "before the statement it was running stays committed",
			  f->path);
	else if (st == ST_CONNLOST)
		log_error("lost the connection while applying %s; it was rolled back", f->path);
	else if (st == ST_SIGNAL && f->no_transaction)
		log_error("stopped while applying %s (no transaction): what ran before the "
			  "cancelled statement stays committed; the next run reports the file "
			  "and runs it again",
			  f->path);
	else if (st == ST_SIGNAL)
		log_error("stopped while applying %s; its transaction was rolled back", f->path);
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
		if (st == ST_OK)
			st = apply_file(plan, f, h, *work, watch);
		log_interrupted(f, st);
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
