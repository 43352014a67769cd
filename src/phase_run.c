/*
 * phase_run.c — the "run" kind of phase: an external command (proc.h), run
 * as argv without a shell, its exit status honoured.
 */
#include <stdlib.h>

#include "history.h"
#include "init.h"
#include "phases.h"
#include "proc.h"
#include "util.h"

static enum status run_run(struct phases *p, int i)
{
	const struct phase *ph = &p->cfg->phases[i];
	enum status st = proc_run(ph->name, &ph->argv, ph->timeout_ms);

	init_reap(); /* what it left behind, when we are PID 1 or a subreaper */
	if (st == ST_OK) {
		/* a schema tool may drop what it does not know, the history among it */
		char *step = xasprintf("run step \"%s\"", ph->name);
		st = history_check_present(p->conn, &p->hist, step);
		free(step);
	}
	return st;
}

static char *run_plan_line(const struct phase *ph)
{
	return xasprintf("run %s", ph->argv.n ? ph->argv.v[0] : "");
}

const struct phase_ops phase_run_ops = {
	.name = "run",
	.creates = true,
	.run = run_run,
	.plan_line = run_plan_line,
	.expect_hint = "The command exited 0 without creating them; look at its output above "
		       "(a schema tool may skip its work on a database it has not initialised).",
};
