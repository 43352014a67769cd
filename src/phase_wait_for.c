/*
 * phase_wait_for.c — the "wait_for" kind of phase: wait until relations
 * exist and a query returns true, for a step that happens elsewhere.
 */
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "phases.h"
#include "util.h"
#include "wait.h"

/*
 * What the phase's query returns: true, false or NULL.  *st carries a query
 * failure, or ST_USAGE after logging for a result that is not one boolean.
 */
static enum answer query_answer(PGconn *conn, const struct phase *ph, enum status *st)
{
	char got[160];
	enum answer a = phases_ask(conn, ph->query, st, got, sizeof(got));

	if (a != ANSWER_NOT_BOOL)
		return a;
	log_error("phase \"%s\": wait_for_query must return one boolean (one row, one "
		  "column); it returned %s",
		  ph->name, got);
	log_hint("Write it as SELECT <condition>, e.g. SELECT EXISTS (SELECT 1 FROM ...) or "
		 "SELECT count(*) > 0 FROM ....");
	*st = ST_USAGE;
	return ANSWER_FALSE;
}

static enum status wait_for_run(struct phases *p, int i)
{
	const struct phase *ph = &p->cfg->phases[i];
	struct waiter w = { .timeout_ms = ph->timeout_ms,
			    .backoff_ms = 100,
			    .backoff_max_ms = 1000,
			    .first_report_ms = 2000,
			    .report_ms = 5000 };
	enum status st;

	waiter_start(&w);
	for (;;) {
		char *missing = phases_missing_relations(p->conn, &ph->relations, &st);
		bool ok = false;
		enum answer a = ANSWER_FALSE;
		double secs;

		if (st != ST_OK) {
			log_error("phase \"%s\": could not check the relations to wait for",
				  ph->name);
			return st;
		}
		if (!missing && ph->query) {
			a = query_answer(p->conn, ph, &st);
			ok = a == ANSWER_TRUE;
			if (st == ST_USAGE)
				return st;
			if (st != ST_OK) {
				log_error("phase \"%s\": wait_for_query failed", ph->name);
				return st == ST_SQL ? ST_EXTERNAL : st;
			}
		} else {
			ok = !missing;
		}
		secs = (double)waiter_elapsed(&w) / 1000.0;
		if (ok) {
			free(missing);
			log_info("phase \"%s\": condition met after %ld ms", ph->name,
				 waiter_elapsed(&w));
			return ST_OK;
		}
		if (waiter_expired(&w)) {
			if (missing)
				log_error(
					"phase \"%s\": timed out after %ld s waiting for %s to exist",
					ph->name, waiter_elapsed(&w) / 1000, missing);
			else
				log_error(
					"phase \"%s\": timed out after %ld s waiting for wait_for_query to "
					"return true%s",
					ph->name, waiter_elapsed(&w) / 1000,
					a == ANSWER_NULL ? " (it returned NULL)" : "");
			free(missing);
			return ST_EXTERNAL;
		}
		if (waiter_report_due(&w)) {
			if (missing)
				log_info("phase \"%s\": waiting for %s (%.0f s)", ph->name, missing,
					 secs);
			else
				log_info("phase \"%s\": waiting for wait_for_query to return true "
					 "(%s%.0f s)",
					 ph->name, a == ANSWER_NULL ? "it returned NULL, " : "",
					 secs);
		}
		free(missing);
		st = waiter_sleep(&w);
		if (st != ST_OK)
			return st;
	}
}

static char *wait_for_plan_line(const struct phases *p, int i)
{
	(void)p;
	(void)i;
	return xstrdup("wait_for");
}

/* Its condition holds now: there is nothing to wait for. */
static bool wait_for_settled(struct phases *p, int i, enum status *st)
{
	const struct phase *ph = &p->cfg->phases[i];
	char *missing = phases_missing_relations(p->conn, &ph->relations, st);

	if (missing || *st != ST_OK) {
		free(missing);
		return false;
	}
	return !ph->query || query_answer(p->conn, ph, st) == ANSWER_TRUE;
}

static void wait_for_skip(struct phases *p, int i)
{
	log_info("phase \"%s\": condition met after 0 ms", p->cfg->phases[i].name);
}

const struct phase_ops phase_wait_for_ops = {
	.name = "wait_for",
	.run = wait_for_run,
	.plan_line = wait_for_plan_line,
	.settled = wait_for_settled,
	.skip = wait_for_skip,
};
