#include "operate.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ddl.h"
#include "history.h"
#include "lock.h"
#include "log.h"
#include "phases.h"
#include "util.h"

/* Connect, take the migration lock, read the history and the folders (drift is not refused). */
static enum status open_locked(struct phases *p, const struct config *cfg, PGconn **conn)
{
	enum status st;

	phases_init(p, cfg);
	st = phases_wait(p, conn);
	if (st == ST_OK)
		st = lock_acquire(*conn, cfg);
	if (st == ST_OK)
		st = phases_prepare(p, *conn);
	if (st == ST_OK)
		history_set_lock(&p->hist, lock_holder_pid());
	return st;
}

static void close_locked(struct phases *p, PGconn *conn)
{
	const struct config *cfg = p->cfg;

	phases_free(p);
	lock_release(conn, cfg);
	PQfinish(conn);
}

/* Whether arg names file f of phase ph: its name, "phase/name", the path shown, or the same file. */
static bool names_file(const char *arg, const struct phase *ph, const struct mfile *f)
{
	struct stat a, b;
	char *full;
	bool same;

	if (strcmp(arg, f->path) == 0 || strcmp(arg, f->name) == 0)
		return true;
	if (strncmp(arg, ph->name, strlen(ph->name)) == 0 && arg[strlen(ph->name)] == '/' &&
	    strcmp(arg + strlen(ph->name) + 1, f->name) == 0)
		return true;
	full = xasprintf("%s/%s", ph->dir, f->name);
	same = stat(arg, &a) == 0 && stat(full, &b) == 0 && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
	free(full);
	return same;
}

/* Why file f cannot be baselined, or NULL when it can (or needs nothing). */
static const char *baseline_refusal(const struct mfile *f)
{
	switch (f->state) {
	case FILE_CHANGED:
	case FILE_RERUN:
		return "it is recorded with another checksum";
	case FILE_FAILED:
		return "its last run failed part-way: look at what it left, then run it";
	default:
		return NULL;
	}
}

/* The baseline's files in run order: checked all first (nothing written on a refusal), then recorded. */
static enum status baseline_files(struct phases *p, PGconn *conn, const char *phase,
				  const char *upto, bool write, int *count)
{
	const struct config *cfg = p->cfg;
	enum status st = ST_OK;

	*count = 0;
	for (int i = 0; i < cfg->n_phases; i++) {
		const struct phase *ph = &cfg->phases[i];
		if (ph->kind != PHASE_DIR || (phase && strcmp(phase, ph->name) != 0))
			continue;
		for (int j = 0; j < p->plans[i].n; j++) {
			const struct mfile *f = &p->plans[i].files[j];
			const char *why = baseline_refusal(f);
			if (why && !write) {
				log_at(LOG_ERROR, f->path, 0, 0, "cannot be baselined: %s", why);
				st = ST_USAGE;
			}
			if (f->state == FILE_PENDING && write) {
				st = history_record(conn, &p->hist, ph->name, f->name, f->checksum,
						    0, "baselined", NULL);
				if (st != ST_OK)
					return st;
				log_info("baselined %s (recorded as applied, not run)", f->path);
			}
			if (f->state == FILE_PENDING)
				(*count)++;
			if (upto && names_file(upto, ph, f))
				return st;
		}
	}
	if (upto) {
		log_error("baseline --to \"%s\": no such file in %s", upto,
			  phase ? "that phase" : "any dir phase");
		return ST_USAGE;
	}
	return st;
}

enum status operate_baseline(const struct config *cfg, const char *phase, const char *upto)
{
	struct phases p;
	PGconn *conn = NULL;
	int count = 0;
	enum status st;

	if (phase) {
		bool found = false;
		for (int i = 0; i < cfg->n_phases; i++)
			found |= cfg->phases[i].kind == PHASE_DIR &&
				 strcmp(cfg->phases[i].name, phase) == 0;
		if (!found) {
			log_error("baseline --phase \"%s\": no dir phase of that name", phase);
			return ST_USAGE;
		}
	}
	st = open_locked(&p, cfg, &conn);
	if (st == ST_OK)
		st = baseline_files(&p, conn, phase, upto, false, &count);
	if (st == ST_OK && count == 0)
		log_info("baseline: nothing to record, no file is pending");
	else if (st == ST_OK) {
		st = db_exec(conn, "BEGIN", NULL);
		if (st == ST_OK)
			st = history_ensure(conn, &p.hist);
		if (st == ST_OK)
			st = baseline_files(&p, conn, phase, upto, true, &count);
		if (st == ST_OK)
			st = db_exec(conn, "COMMIT", NULL);
		if (st != ST_OK)
			ddl_rollback(conn);
		else
			log_info("baseline: %d file%s recorded as applied without running them",
				 count, count == 1 ? "" : "s");
	} else if (st == ST_USAGE) {
		log_hint("Nothing was recorded. Resolve these files first (pgprelude status shows "
			 "them), or baseline up to the file before them with --to.");
	}
	close_locked(&p, conn);
	return st;
}

/* The file an argument of accept names, or NULL after logging why it cannot be accepted. */
static const struct mfile *accept_target(const struct phases *p, const char *arg, int *phase)
{
	const struct config *cfg = p->cfg;

	for (int i = 0; i < cfg->n_phases; i++) {
		const struct phase *ph = &cfg->phases[i];
		for (int j = 0; ph->kind == PHASE_DIR && j < p->plans[i].n; j++) {
			const struct mfile *f = &p->plans[i].files[j];
			if (!names_file(arg, ph, f))
				continue;
			*phase = i;
			if (f->state == FILE_CHANGED)
				return f;
			log_at(LOG_ERROR, f->path, 0, 0, "cannot be accepted: %s",
			       f->state == FILE_APPLIED ? "it has not changed since it was applied"
			       : f->state == FILE_RERUN ? "it is repeatable: it runs again as it is"
			       : f->state == FILE_DECLARED ? "constraint files are not recorded"
			       : f->state == FILE_MISSING  ? "it is no longer in the folder"
			       : f->state == FILE_FAILED   ? "its last run failed: it runs again"
							   : "it is not applied");
			return NULL;
		}
	}
	log_error("accept \"%s\": no migration file of any dir phase has that name or path", arg);
	return NULL;
}

enum status operate_accept(const struct config *cfg, const struct strv *files)
{
	const struct mfile **targets = xcalloc((size_t)files->n + 1, sizeof(*targets));
	int *phase = xcalloc((size_t)files->n + 1, sizeof(*phase));
	struct phases p;
	PGconn *conn = NULL;
	enum status st = open_locked(&p, cfg, &conn);

	for (int i = 0; st == ST_OK && i < files->n; i++)
		if (!(targets[i] = accept_target(&p, files->v[i], &phase[i])))
			st = ST_USAGE;
	if (st == ST_USAGE)
		log_hint("Nothing was accepted.");
	if (st == ST_OK)
		st = db_exec(conn, "BEGIN", NULL);
	for (int i = 0; st == ST_OK && i < files->n; i++) {
		const struct mfile *f = targets[i];
		st = history_accept(conn, &p.hist, cfg->phases[phase[i]].name, f->name, f->checksum,
				    f->row->checksum);
	}
	if (st == ST_OK)
		st = db_exec(conn, "COMMIT", NULL);
	if (st != ST_OK)
		ddl_rollback(conn);
	for (int i = 0; st == ST_OK && i < files->n; i++)
		log_info("accepted %s: checksum %.12s… recorded (was %.12s…), not run",
			 targets[i]->path, targets[i]->checksum, targets[i]->row->checksum);
	free(targets);
	free(phase);
	close_locked(&p, conn);
	return st;
}
