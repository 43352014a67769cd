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
#include "cdigest.h"
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

/*
 * Whether the line comment q (after "--" and its blanks; end: its line's
 * end), not a directive, looks meant as one: "pgprelude" in any case with a
 * colon in that word ("-- PgPrelude:", "-- pgpreludes:"), or followed by a
 * directive's word ("-- pgprelude no-transaction", "-- pgprelude-repeatable");
 * not a comment that merely mentions pgprelude.
 */
static bool looks_like_directive(const char *q, const char *end)
{
	static const char *const words[] = { "repeat", "no-", "no_", "no ", "notrans", "notx" };
	const char *p = q + 9;

	if (end - q < 9 || strncasecmp(q, "pgprelude", 9) != 0)
		return false;
	for (const char *c = p; c < end && !isspace((unsigned char)*c); c++)
		if (*c == ':')
			return true;
	while (p < end && strchr(" \t-_;=,.", *p))
		p++;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if ((size_t)(end - p) >= strlen(words[i]) &&
		    strncasecmp(p, words[i], strlen(words[i])) == 0)
			return true;
	return false;
}

/* A "name=duration" word w (n bytes) into *ms when it names key; false when not this key or no duration. */
static bool duration_word(const char *w, size_t n, const char *key, long *ms)
{
	size_t k = strlen(key);
	char value[32];

	if (n <= k + 1 || strncmp(w, key, k) != 0 || w[k] != '=' || n - k - 1 >= sizeof(value))
		return false;
	memcpy(value, w + k + 1, n - k - 1);
	value[n - k - 1] = '\0';
	return config_parse_duration(value, ms);
}

/* Read the words of a "-- pgprelude:" line (q past the colon); false at an unknown one. */
static bool directive_words(const char *q, const char *end, struct directives *d)
{
	while (q < end) {
		const char *w;
		size_t n;
		while (q < end && (isspace((unsigned char)*q) || *q == ','))
			q++;
		w = q;
		while (q < end && !isspace((unsigned char)*q) && *q != ',')
			q++;
		if (q == w)
			break;
		n = (size_t)(q - w);
		if (n == 10 && strncmp(w, "repeatable", 10) == 0)
			d->repeatable = true;
		else if (n == 14 && strncmp(w, "no-transaction", 14) == 0)
			d->no_transaction = true;
		else if (!duration_word(w, n, "lock_timeout", &d->lock_timeout_ms) &&
			 !duration_word(w, n, "statement_timeout", &d->statement_timeout_ms))
			return false;
	}
	return true;
}

bool migrate_directives(const char *text, const char *path, struct directives *d, int *bad_line)
{
	const char *p = text;
	int line = 1;

	*d = (struct directives){ .lock_timeout_ms = -1, .statement_timeout_ms = -1 };
	/* Only the leading blanks and comments (line or block) can hold directives. */
	for (;;) {
		const char *eol, *end, *q;

		while (isspace((unsigned char)*p)) {
			if (*p == '\n')
				line++;
			p++;
		}
		if (p[0] == '/' && p[1] == '*') {
			int depth = 0;
			do {
				if (p[0] == '/' && p[1] == '*') {
					depth++;
					p += 2;
				} else if (p[0] == '*' && p[1] == '/') {
					depth--;
					p += 2;
				} else {
					if (*p == '\n')
						line++;
					p++;
				}
			} while (depth > 0 && *p);
			continue;
		}
		if (p[0] != '-' || p[1] != '-')
			return true;
		eol = strchr(p, '\n');
		end = eol ? eol : p + strlen(p);
		q = p + 2;
		while (q < end && (*q == ' ' || *q == '\t'))
			q++;
		if (end - q >= 10 && strncmp(q, "pgprelude:", 10) == 0) {
			if (!directive_words(q + 10, end, d)) {
				*bad_line = line;
				return false;
			}
		} else if (path && looks_like_directive(q, end)) {
			const char *shown_end = end;
			while (shown_end > p && isspace((unsigned char)shown_end[-1]))
				shown_end--;
			log_at(LOG_WARNING, path, line, 0,
			       "\"%.*s\" looks like a pgprelude directive, but is none: it is ignored",
			       (int)(shown_end - p > 80 ? 80 : shown_end - p), p);
			log_hint(
				"Directives are written exactly \"-- pgprelude: repeatable\" or "
				"\"-- pgprelude: no-transaction\": in lower case, with the colon.");
		}
		p = end;
	}
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

/* Log that shown (described by sb) is not a regular file. */
static void not_regular(const char *shown, const struct stat *sb)
{
	log_error("could not read file \"%s\": %s", shown,
		  S_ISDIR(sb->st_mode) ? "it is a directory" : "not a regular file");
	if (!S_ISDIR(sb->st_mode))
		log_hint("Only regular files (or symbolic links to them) are read in a phase's "
			 "folder: a pipe or a device is never opened.");
}

/*
 * Read a whole regular file into *text (malloc'd).  Anything else (a FIFO
 * would block its open) is refused before it is opened.  Logs and returns
 * ST_USAGE on failure.
 */
static enum status read_file(const char *path, const char *shown, char **text, size_t *len)
{
	struct stat sb;
	char *buf = NULL;
	size_t got = 0;
	int fd;

	if (stat(path, &sb) != 0) {
		if (errno == ENOENT && lstat(path, &sb) == 0)
			log_error("could not open file \"%s\": it is a dangling symbolic link",
				  shown);
		else
			log_error("could not open file \"%s\": %s", shown, strerror(errno));
		return ST_USAGE;
	}
	if (!S_ISREG(sb.st_mode)) {
		not_regular(shown, &sb);
		return ST_USAGE;
	}
	/* O_NONBLOCK: should it have become a FIFO since, open does not wait for a writer */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		log_error("could not open file \"%s\": %s", shown, strerror(errno));
		return ST_USAGE;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		not_regular(shown, &sb);
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
			/* x.SQL, x.sql.bak, x.sql~: meant as one, or a leftover; say so */
			if (strcasestr(e->d_name, ".sql") || strcasestr(e->d_name, ".ini"))
				log_info(
					"phase \"%s\": skipping \"%s\": only names ending in "
					"\".sql\" (migrations) and \".ini\" (constraint files) are "
					"read",
					phase, e->d_name);
			else
				log_debug("phase \"%s\": skipping \"%s\" (not a .sql file); "
					  "constraint files end in .ini",
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
	plan->nlisted = plan->n;
	free(names.v); /* its strings are the files' names now */
	return ST_OK;
}

/* Line and column of byte offset off of text, counted as sqlsplit counts them. */
static void text_position(const char *text, size_t off, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c == '\n') {
			++*line;
			*col = 1;
		} else if ((c & 0xC0) != 0x80) {
			++*col;
		}
	}
}

static bool has_bom(const char *text, size_t len)
{
	return len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0;
}

/*
 * The checksums of f's text: f->checksum over it with a leading UTF-8 BOM
 * removed and CRLF line ends read as LF (a checkout with other line ends is
 * the same file), and f->checksum_raw over its bytes when that differs
 * (earlier versions recorded that one).
 */
static void file_checksums(struct mfile *f)
{
	size_t from = has_bom(f->text, f->len) ? 3 : 0;
	char *norm = xmalloc(f->len + 1);
	size_t n = 0;

	for (size_t i = from; i < f->len; i++)
		if (!(f->text[i] == '\r' && i + 1 < f->len && f->text[i + 1] == '\n'))
			norm[n++] = f->text[i];
	sha256_hex(norm, n, f->checksum);
	f->checksum_raw[0] = '\0';
	if (n != f->len)
		sha256_hex(f->text, f->len, f->checksum_raw);
	free(norm);
}

/* Refuse a file holding a NUL byte: libpq would end the query there.  ST_OK or ST_USAGE, logged. */
static enum status check_nul(const struct mfile *f)
{
	const char *nul = memchr(f->text, '\0', f->len);
	int line, col;

	if (!nul)
		return ST_OK;
	text_position(f->text, (size_t)(nul - f->text), &line, &col);
	log_at(LOG_ERROR, f->path, line, col, "the file holds a NUL byte");
	log_detail("The server would never see what follows it.");
	log_hint("Remove the NUL byte (a file saved as UTF-16 is full of them: save it as UTF-8).");
	return ST_USAGE;
}

/* Blank text[from, to) with spaces, keeping its line ends (positions stay). */
static void blank(char *text, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if (text[i] != '\n' && text[i] != '\r')
			text[i] = ' ';
}

/*
 * Refuse a psql meta-command (\i, \set, ...); blank the \restrict and
 * \unrestrict lines of a pg_dump, no-ops here (pgprelude runs no
 * meta-command for them to restrict).  ST_OK or ST_USAGE, logged.
 */
static enum status check_psql(struct mfile *f)
{
	struct sql_stmt at, *noops = NULL;
	int n;

	if (sqlsplit_find_backslash(f->text, f->len, &at)) {
		log_at(LOG_ERROR, f->path, at.line, at.col,
		       "\"%.*s\" is a psql meta-command: psql-only, the server does not know it",
		       (int)(at.end - at.start > 40 ? 40 : at.end - at.start), f->text + at.start);
		log_hint(
			"pgprelude sends each file to the server as it is: write it in plain SQL (an "
			"included file becomes a migration of its own; a variable, its value).");
		return ST_USAGE;
	}
	n = sqlsplit_noops(f->text, f->len, &noops);
	for (int i = 0; i < n; i++)
		blank(f->text, noops[i].start, noops[i].end);
	free(noops);
	return ST_OK;
}

/* What statement k of f does to its transaction. */
static enum sql_txctl stmt_tx(const struct mfile *f, int k)
{
	return sqlsplit_tx_control(f->text + f->stmts[k].start,
				   f->stmts[k].end - f->stmts[k].start);
}

/* Log that statement s of f, transaction control, is refused. */
static void refused_tx(const struct mfile *f, const struct sql_stmt *s)
{
	char shown[64];
	/* its first line, whole characters */
	size_t n = strcspn(f->text + s->start, "\r\n");

	if (n > s->end - s->start)
		n = s->end - s->start;
	if (n >= sizeof(shown)) {
		n = sizeof(shown) - 1;
		while (n > 0 && ((unsigned char)f->text[s->start + n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(shown, f->text + s->start, n);
	shown[n] = '\0';
	log_at(LOG_ERROR, f->path, s->line, s->col,
	       "transaction control in a file that runs in a transaction: \"%s\"", shown);
	log_detail("pgprelude runs the file and its history row in one transaction: this would "
		   "end or split it, committing part of the file without recording it.");
	log_hint("Remove it (a single BEGIN at the top and COMMIT at the end are fine), split the "
		 "file in two, or mark it \"-- pgprelude: no-transaction\" to run its statements "
		 "one by one.");
}

/*
 * Take the leading BEGIN and the trailing COMMIT out of f (at least two
 * statements): blanked in its text, dropped from its statements.  A BEGIN
 * with transaction modes becomes SET TRANSACTION with them, so that they
 * hold for the transaction pgprelude runs the file in: the text grows by
 * that much on the BEGIN's line, and the statement stays first.
 */
static void unwrap(struct mfile *f)
{
	static const char set[] = "SET TRANSACTION ";
	const size_t add = sizeof(set) - 1;
	struct sql_stmt *b = &f->stmts[0];
	size_t modes = sqlsplit_begin_modes(f->text + b->start, b->end - b->start);
	char *t;

	blank(f->text, f->stmts[f->nstmts - 1].start, f->stmts[f->nstmts - 1].end);
	f->nstmts--;
	if (modes == 0) {
		blank(f->text, b->start, b->end);
		memmove(f->stmts, f->stmts + 1, (size_t)(f->nstmts - 1) * sizeof(*f->stmts));
		f->nstmts--;
		return;
	}
	t = xmalloc(f->len + add + 1);
	memcpy(t, f->text, b->start);
	memcpy(t + b->start, set, add);
	memcpy(t + b->start + add, f->text + b->start, f->len - b->start + 1);
	blank(t, b->start + add, b->start + add + modes);
	free(f->text);
	f->text = t;
	f->len += add;
	b->end += add;
	for (int k = 1; k < f->nstmts; k++) {
		f->stmts[k].start += add;
		f->stmts[k].end += add;
		if (f->stmts[k].has_data) {
			f->stmts[k].data_start += add;
			f->stmts[k].data_after += add;
		}
	}
}

/*
 * The top-level transaction control of transactional file f: a leading
 * BEGIN and trailing COMMIT around the whole file are blanked out and
 * dropped from its statements (the file runs in pgprelude's transaction
 * anyway, with its history row); any other is refused.  ST_OK, or ST_USAGE
 * after logging.
 */
static enum status check_tx_control(struct mfile *f)
{
	int n = f->nstmts, refused = -1;
	bool lead = n >= 1 && stmt_tx(f, 0) == TXCTL_BEGIN;
	bool trail = n >= 2 && stmt_tx(f, n - 1) == TXCTL_COMMIT;

	for (int k = lead ? 1 : 0; k < (trail ? n - 1 : n) && refused < 0; k++)
		if (stmt_tx(f, k) != TXCTL_NONE)
			refused = k;
	if (refused < 0 && lead != trail)
		refused = lead ? 0 : n - 1; /* a BEGIN without its COMMIT, or the other way */
	if (refused >= 0) {
		refused_tx(f, &f->stmts[refused]);
		return ST_USAGE;
	}
	if (lead)
		unwrap(f);
	return ST_OK;
}

/* Read a SQL file's statements and directives (f->text read, checksummed).  ST_OK, or logged. */
static enum status read_sql(struct mfile *f)
{
	struct sqlsplit_error serr;
	int bad_line = 0;
	enum status st;

	/* a UTF-8 BOM is no part of the SQL (psql skips it too) */
	if (has_bom(f->text, f->len)) {
		memmove(f->text, f->text + 3, f->len - 3 + 1);
		f->len -= 3;
	}
	f->nstmts = sqlsplit(f->text, f->len, &f->stmts, &serr);
	if (f->nstmts < 0) {
		log_at(LOG_ERROR, f->path, serr.line, serr.col, "%s", serr.message);
		return ST_SQL;
	}
	st = check_psql(f);
	if (st != ST_OK)
		return st;
	if (!migrate_directives(f->text, f->path, &f->directives, &bad_line)) {
		log_at(LOG_ERROR, f->path, bad_line, 0, "unknown pgprelude directive");
		log_hint(
			"Known directives: \"-- pgprelude: repeatable\", \"-- pgprelude: "
			"no-transaction\", \"-- pgprelude: lock_timeout=10s, statement_timeout=1h\".");
		return ST_USAGE;
	}
	if (!f->directives.no_transaction) {
		st = check_tx_control(f);
		if (st != ST_OK)
			return st;
	}
	if (f->nstmts == 0)
		log_at(LOG_WARNING, f->path, 0, 0,
		       "the file holds no SQL statement: it is recorded as applied, nothing runs");
	return ST_OK;
}

enum status migrate_read_next(struct mplan *plan)
{
	struct mfile *f = &plan->files[plan->nread++];
	char *full;
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
	if (st == ST_OK)
		st = check_nul(f);
	if (st != ST_OK)
		return st;
	file_checksums(f);
	if (has_suffix(f->name, ".ini")) {
		f->state = FILE_DECLARED;
		f->cons = xcalloc(1, sizeof(*f->cons));
		return constraints_parse(f->text, f->len, f->path, f->cons);
	}
	return read_sql(f);
}

/* Whether history row r records f's content (either checksum). */
static bool row_matches(const struct history_row *r, const struct mfile *f)
{
	return strcmp(r->checksum, f->checksum) == 0 ||
	       (f->checksum_raw[0] && strcmp(r->checksum, f->checksum_raw) == 0);
}

/* Whether file name of phase is in a folder listed in plans (nplans of them). */
static bool on_disk(const struct mplan *plans, int nplans, const char *phase, const char *name)
{
	for (int j = 0; j < nplans; j++)
		if (plans[j].phase && strcmp(plans[j].phase->name, phase) == 0)
			return bsearch(name, plans[j].files, (size_t)plans[j].nlisted,
				       sizeof(*plans[j].files), file_cmp) != NULL;
	return false;
}

/*
 * The row under another phase that f was applied as before it moved: same
 * content, applied, and its file gone from its folder (else f is a new file
 * that happens to hold the same SQL, and runs).
 */
static const struct history_row *find_moved(const struct mplan *plan, const struct mfile *f,
					    const struct history *h, const struct mplan *plans,
					    int nplans)
{
	for (int i = 0; i < h->n; i++) {
		const struct history_row *r = &h->rows[i];
		if (strcmp(r->phase, plan->phase->name) != 0 && row_matches(r, f) &&
		    !history_row_failed(r) && !on_disk(plans, nplans, r->phase, r->file))
			return r;
	}
	return NULL;
}

/* The applied file of phase that sorts last (its run did not fail), or NULL. */
static const char *last_applied(const struct history *h, const char *phase)
{
	const char *last = NULL;

	for (int i = 0; i < h->n; i++)
		if (strcmp(h->rows[i].phase, phase) == 0 && !history_row_failed(&h->rows[i]) &&
		    (!last || strcmp(h->rows[i].file, last) > 0))
			last = h->rows[i].file;
	return last;
}

enum status migrate_match(struct mplan *plan, const struct history *h, const struct mplan *plans,
			  int nplans)
{
	const char *phase = plan->phase->name;
	const char *last = last_applied(h, phase);
	int count = plan->n, extra = 0;

	for (int i = 0; i < count; i++) {
		struct mfile *f = &plan->files[i];
		if (f->state == FILE_DECLARED)
			continue;
		f->row = history_find(h, phase, f->name);
		if (history_row_failed(f->row)) {
			f->state = FILE_FAILED; /* changed or not: it runs again */
		} else if (!f->row) {
			f->moved = find_moved(plan, f, h, plans, nplans);
			f->state = f->moved ? FILE_MOVED : FILE_PENDING;
			/* pending, yet before what is applied: a late-merged branch, usually */
			if (f->state == FILE_PENDING && last && strcmp(f->name, last) < 0)
				f->late = last;
		} else if (row_matches(f->row, f)) {
			f->state = FILE_APPLIED;
		} else {
			f->state = f->directives.repeatable ? FILE_RERUN : FILE_CHANGED;
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

/* s as one shell word ('…', a quote written '\''), malloc'd: for commands in hints. */
static char *shell_word(const char *s)
{
	struct sbuf b = { 0 };

	sbuf_putc(&b, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			sbuf_puts(&b, "'\\''");
		else
			sbuf_putc(&b, *s);
	}
	sbuf_putc(&b, '\'');
	return sbuf_take(&b);
}

enum status migrate_check(const struct mplan *plan)
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
			char *path = shell_word(f->path);
			log_hint(
				"Restore the file as it was applied and put the change in a new file. If "
				"the edit is on purpose (cosmetic), accept it: pgprelude accept %s; or mark "
				"the file \"-- pgprelude: repeatable\" if it is meant to re-run.",
				path);
			free(path);
			st = ST_DRIFT;
		} else if (f->late && plan->phase->out_of_order_refuse) {
			log_at(LOG_ERROR, f->path, 0, 0,
			       "pending, but it sorts before \"%s\", which is applied: out of order",
			       f->late);
			log_hint(
				"This phase has out_of_order = refuse: rename the file to sort after "
				"the applied ones, or set out_of_order = warn to apply it.");
			if (st == ST_OK)
				st = ST_USAGE;
		} else if (f->late) {
			log_at(LOG_WARNING, f->path, 0, 0,
			       "pending, but it sorts before \"%s\", which is applied: applying it out of "
			       "order (a late-merged branch?)",
			       f->late);
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

enum status migrate_begin_work(const struct config *cfg, PGconn **work)
{
	bool locked = false;

	return begin_work(cfg, work, &locked);
}

/* After f stopped with st: what a lost connection or a stop signal left of it. */
static void log_interrupted(const struct mfile *f, enum status st)
{
	if (st == ST_CONNLOST && f->directives.no_transaction)
		log_error("lost the connection while applying %s (no transaction): what ran "
			  "before the statement it was running stays committed",
			  f->path);
	else if (st == ST_CONNLOST)
		log_error("lost the connection while applying %s; it was rolled back", f->path);
	else if (st == ST_SIGNAL && f->directives.no_transaction)
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
			if (st == ST_OK)
				st = cdigest_record(f, plan->phase->name, h, *work, NULL);
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

void migrate_unmatch(struct mplan *plan)
{
	for (int i = plan->nlisted; i < plan->n; i++) { /* the MISSING entries match added */
		free(plan->files[i].name);
		free(plan->files[i].path);
		memset(&plan->files[i], 0, sizeof(plan->files[i]));
	}
	plan->n = plan->nlisted;
	for (int i = 0; i < plan->n; i++) {
		struct mfile *f = &plan->files[i];
		if (f->state != FILE_DECLARED)
			f->state = FILE_PENDING;
		f->row = f->moved = NULL;
		f->late = NULL;
	}
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
