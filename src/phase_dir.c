/*
 * phase_dir.c — the "dir" kind of phase: a folder of migrations and
 * constraint files (migrate.h), read ahead while the server gets ready,
 * matched with the history, checked for drift, then applied.
 */
#include <stdbool.h>

#include "cdigest.h"
#include "log.h"
#include "migrate.h"
#include "phases.h"
#include "util.h"

/* One step: list the folder, or read its next file; false when all is read. */
static bool dir_read(struct phases *p, int i, enum status *st)
{
	struct mplan *plan = &p->plans[i];

	if (!plan->phase)
		*st = migrate_list(p->cfg, &p->cfg->phases[i], plan);
	else if (plan->nread < plan->n)
		*st = migrate_read_next(plan);
	else
		return false;
	return true;
}

static enum status dir_match(struct phases *p, int i)
{
	return migrate_match(&p->plans[i], &p->hist, p->plans, p->cfg->n_phases);
}

static enum status dir_check(const struct phases *p, int i)
{
	enum status st = migrate_check(&p->plans[i]);
	return st == ST_OK ? constraints_check_plans(p->plans, p->cfg->n_phases, i) : st;
}

static enum status dir_run(struct phases *p, int i)
{
	const struct phase *ph = &p->cfg->phases[i];
	long start = clock_ms();
	int applied = 0;
	enum status st;

	st = migrate_apply(&p->plans[i], &p->hist, p->cfg, p->conn, &p->work, &applied);
	if (st == ST_OK)
		log_info("phase \"%s\": %d file%s applied, %d up to date (%ld ms)", ph->name,
			 applied, applied == 1 ? "" : "s", p->plans[i].n - applied,
			 clock_ms() - start);
	return st;
}

/*
 * Whether constraint file f of plan has nothing to do: its digest is the one
 * recorded when it was last found converged, or else every spec is present
 * and valid (read as converging reads, logged only when nothing is to do),
 * and then its digest is recorded for the next start, if the catalog did
 * not change meanwhile.  *st carries a stop or a lost connection.
 */
static bool declared_settled(struct phases *p, const struct mplan *plan, const struct mfile *f,
			     enum status *st)
{
	char before[65];
	enum status cst = ST_OK;

	if (cdigest_unchanged(f, plan->phase->name, &p->hist, p->conn, before, &cst))
		return true;
	if (cst == ST_OK) {
		log_hold(true);
		cst = constraints_converge(f->cons, plan->phase, p->conn, NULL, CONS_CHECK, false,
					   NULL);
		log_release(cst == ST_OK || cst == ST_SIGNAL || cst == ST_CONNLOST);
	}
	if (cst == ST_OK && before[0]) {
		/* a digest that cannot be recorded costs the next start time, nothing more */
		log_hold(true);
		cst = cdigest_record(f, plan->phase->name, &p->hist, p->conn, before);
		log_release(cst == ST_SIGNAL || cst == ST_CONNLOST);
		if (cst != ST_SIGNAL && cst != ST_CONNLOST)
			cst = ST_OK;
	}
	if (cst == ST_SIGNAL || cst == ST_CONNLOST)
		*st = cst;
	return cst == ST_OK;
}

/*
 * Nothing to apply: every file is applied (or moved here, or gone from the
 * folder), and every constraint it declares is present and valid
 * (declared_settled; under the lock it is read again).
 */
static bool dir_settled(struct phases *p, int i, enum status *st)
{
	const struct mplan *plan = &p->plans[i];

	for (int j = 0; j < plan->n; j++) {
		const struct mfile *f = &plan->files[j];
		if (f->state == FILE_DECLARED) {
			if (!declared_settled(p, plan, f, st))
				return false;
		} else if (!migrate_file_settled(f)) {
			return false;
		}
	}
	return true;
}

static void dir_skip(struct phases *p, int i)
{
	/* settled: no file changed, so this only says which files moved here */
	if (migrate_check(&p->plans[i]) != ST_OK)
		log_debug("phase \"%s\": a changed file in a settled phase",
			  p->cfg->phases[i].name);
	log_info("phase \"%s\": 0 files applied, %d up to date (0 ms)", p->cfg->phases[i].name,
		 p->plans[i].n);
}

const struct phase_ops phase_dir_ops = {
	.name = "dir",
	.has_files = true,
	.read = dir_read,
	.match = dir_match,
	.check = dir_check,
	.run = dir_run,
	.settled = dir_settled,
	.skip = dir_skip,
};
