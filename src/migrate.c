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

#include "db.h"
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
	}
	return "?";
}

int migrate_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

bool migrate_directives(const char *text, bool *repeatable, int *bad_line)
{
	const char *p = text;
	int line = 1;

	*repeatable = false;
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
					while (q < p + len && (isspace((unsigned char)*q) || *q == ','))
						q++;
					w = q;
					while (q < p + len && !isspace((unsigned char)*q) && *q != ',')
						q++;
					if (q == w)
						break;
					if ((size_t)(q - w) == 10 && strncmp(w, "repeatable", 10) == 0)
						*repeatable = true;
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

/*
 * The path to show for a file: as the config wrote its folder, that is
 * relative to the config file's folder when it lies below it.
 */
static char *display_path(const char *cfg_path, const char *dir, const char *name)
{
	const char *slash = strrchr(cfg_path, '/');
	size_t n = slash ? (size_t)(slash - cfg_path) : 0;
	char *out = NULL;

	if (n > 0 && strncmp(dir, cfg_path, n) == 0 && dir[n] == '/')
		dir += n + 1;
	if (asprintf(&out, "%s/%s", dir, name) < 0)
		return NULL;
	return out;
}

static void sha256_hex(const char *data, size_t len, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
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
			log_error("could not open file \"%s\": it is a dangling symbolic link", shown);
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

/* List the *.sql names of dir in byte order.  Logs and returns false on failure. */
static bool list_sql(const char *dir, const char *phase, char ***names, int *count)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **v = NULL;
	int n = 0, cap = 0;

	*names = NULL;
	*count = 0;
	if (!d) {
		log_error("could not open folder \"%s\" of phase \"%s\": %s", dir, phase, strerror(errno));
		return false;
	}
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (e->d_name[0] == '.') {
			if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
				log_debug("phase \"%s\": skipping hidden file \"%s\"", phase, e->d_name);
			continue;
		}
		if (len < 5 || strcmp(e->d_name + len - 4, ".sql") != 0) {
			log_debug("phase \"%s\": skipping \"%s\" (not a .sql file)", phase, e->d_name);
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

enum status migrate_scan(const struct config *cfg, const struct phase *ph, const struct history *h,
			 struct mplan *plan)
{
	char **names = NULL;
	int count = 0;
	int extra = 0;
	enum status st = ST_USAGE;

	memset(plan, 0, sizeof(*plan));
	plan->phase = ph;
	if (!list_sql(ph->dir, ph->name, &names, &count))
		goto out;
	for (int i = 0; i < h->n; i++)
		if (strcmp(h->rows[i].phase, ph->name) == 0)
			extra++;
	plan->files = calloc((size_t)(count + extra) + 1, sizeof(*plan->files));
	if (!plan->files) {
		st = ST_INTERNAL;
		goto out;
	}
	for (int i = 0; i < count; i++) {
		struct mfile *f = &plan->files[plan->n++];
		char *full = NULL;
		int bad_line = 0;
		struct sqlsplit_error serr;

		f->name = names[i];
		names[i] = NULL;
		f->path = display_path(cfg->path, ph->dir, f->name);
		if (!f->path || asprintf(&full, "%s/%s", ph->dir, f->name) < 0) {
			st = ST_INTERNAL;
			goto out;
		}
		st = read_file(full, f->path, &f->text, &f->len);
		if (st != ST_OK) {
			free(full);
			goto out;
		}
		st = ST_USAGE;
		free(full);
		f->nstmts = sqlsplit(f->text, f->len, &f->stmts, &serr);
		if (f->nstmts == -2) {
			st = ST_INTERNAL;
			goto out;
		}
		if (f->nstmts < 0) {
			log_at(LOG_ERROR, f->path, serr.line, serr.col, "%s", serr.message);
			st = ST_SQL;
			goto out;
		}
		if (f->nstmts == 0) {
			log_at(LOG_ERROR, f->path, 0, 0, "the file holds no SQL statement");
			log_hint("Remove it, or put the SQL it is meant to run in it.");
			goto out;
		}
		if (!migrate_directives(f->text, &f->repeatable, &bad_line)) {
			log_at(LOG_ERROR, f->path, bad_line, 0, "unknown pgprelude directive");
			log_hint("Known directives: \"-- pgprelude: repeatable\".");
			goto out;
		}
		sha256_hex(f->text, f->len, f->checksum);
		f->row = history_find(h, ph->name, f->name);
		if (!f->row) {
			f->moved = history_find_moved(h, ph->name, f->checksum);
			f->state = f->moved ? FILE_MOVED : FILE_PENDING;
		} else if (strcmp(f->row->checksum, f->checksum) == 0) {
			f->state = FILE_APPLIED;
		} else {
			f->state = f->repeatable ? FILE_RERUN : FILE_CHANGED;
		}
	}
	/* History rows of this phase whose file is gone. */
	for (int i = 0; i < h->n; i++) {
		const struct history_row *r = &h->rows[i];
		bool found = false;
		if (strcmp(r->phase, ph->name) != 0)
			continue;
		for (int j = 0; j < count && !found; j++)
			found = strcmp(plan->files[j].name, r->file) == 0;
		if (!found) {
			struct mfile *f = &plan->files[plan->n++];
			f->name = strdup(r->file);
			f->path = display_path(cfg->path, ph->dir, r->file);
			if (!f->name || !f->path) {
				st = ST_INTERNAL;
				goto out;
			}
			snprintf(f->checksum, sizeof(f->checksum), "%s", r->checksum);
			f->state = FILE_MISSING;
			f->row = r;
		}
	}
	st = ST_OK;
out:
	if (st == ST_INTERNAL)
		log_error("out of memory");
	for (int i = 0; i < count; i++)
		free(names[i]);
	free(names);
	if (st != ST_OK)
		mplan_free(plan);
	return st;
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
			log_detail("Applied checksum %s; the file's checksum is now %s.", f->row->checksum,
				   f->checksum);
			log_hint("Restore the file as it was applied and put the change in a new file. If "
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
			log_debug("%s: applied on %s, no longer in the folder", f->path, f->row->applied_at);
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
		log_error("could not open a second connection to %s: %s", db_describe(NULL), reason);
		log_detail("%s", err);
		return st == ST_UNREACHABLE ? ST_CONNLOST : st;
	}
	return ST_OK;
}

/* Run one file and its history row in one transaction. */
static enum status apply_file(const struct mplan *plan, const struct mfile *f, struct history *h,
			      PGconn *conn)
{
	const struct phase *ph = plan->phase;
	char setup[160];
	long start = db_now_ms();
	enum status st;

	snprintf(setup, sizeof(setup),
		 "BEGIN; SET LOCAL lock_timeout = %ld; SET LOCAL statement_timeout = %ld",
		 ph->lock_timeout_ms, ph->statement_timeout_ms);
	st = db_exec(conn, setup, NULL);
	if (st != ST_OK)
		return st;
	db_set_notice_file(conn, f->path);
	st = db_exec_script(conn, f->text, f->path, f->stmts, f->nstmts);
	db_set_notice_file(conn, NULL);
	if (st == ST_OK && PQtransactionStatus(conn) != PQTRANS_INTRANS) {
		log_at(LOG_ERROR, f->path, 0, 0,
		       "the file ended pgprelude's transaction itself (COMMIT or ROLLBACK in it)");
		log_detail("What ran before its COMMIT is committed; the file is not recorded as applied.");
		log_hint("Remove BEGIN/COMMIT from the file: pgprelude runs each file in a transaction.");
		st = ST_SQL;
	}
	if (st == ST_OK)
		st = history_record(conn, h, ph->name, f->name, f->checksum, db_now_ms() - start,
				    f->state == FILE_RERUN ? "reapplied" : "applied");
	if (st == ST_OK)
		st = db_exec(conn, "COMMIT", f->path);
	if (st != ST_OK) {
		if (PQstatus(conn) == CONNECTION_OK) {
			PGresult *res = PQexec(conn, "ROLLBACK");
			PQclear(res);
		}
		return st;
	}
	log_info("applied %s%s (%ld ms)", f->path, f->state == FILE_RERUN ? " again (repeatable, changed)" : "",
		 db_now_ms() - start);
	return ST_OK;
}

enum status migrate_apply(const struct mplan *plan, struct history *h, const struct config *cfg,
			  PGconn **work, int *applied)
{
	enum status st;

	*applied = 0;
	for (int i = 0; i < plan->n; i++) {
		const struct mfile *f = &plan->files[i];
		if (f->state != FILE_PENDING && f->state != FILE_RERUN)
			continue;
		st = ensure_work(cfg, work);
		if (st == ST_OK)
			st = history_ensure(*work, h);
		if (st == ST_OK)
			st = apply_file(plan, f, h, *work);
		if (st != ST_OK) {
			if (st == ST_CONNLOST)
				log_error("lost the connection while applying %s; it was rolled back", f->path);
			return st;
		}
		(*applied)++;
	}
	return ST_OK;
}

void mplan_free(struct mplan *plan)
{
	for (int i = 0; plan->files && i < plan->n; i++) {
		free(plan->files[i].name);
		free(plan->files[i].path);
		free(plan->files[i].text);
		free(plan->files[i].stmts);
	}
	free(plan->files);
	memset(plan, 0, sizeof(*plan));
}
