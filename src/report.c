#include "report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "constraints.h"
#include "log.h"
#include "migrate.h"
#include "util.h"

void report_line(const char *file, int line, const char *fmt, ...)
{
	char *text;
	va_list ap;

	va_start(ap, fmt);
	text = xvasprintf(fmt, ap);
	va_end(ap);
	if (file && line > 0)
		printf("%s:%d: %s\n", file, line, text);
	else if (file)
		printf("%s: %s\n", file, text);
	else
		printf("%s\n", text);
	fflush(stdout);
	free(text);
}

/* ---- status ---- */

#define STATUS_ROW "%-12s %-9s %-40s %-8s %-25s %s\n"

/* When f was applied (here or under another phase), or "". */
static const char *applied_at(const struct mfile *f)
{
	return f->row ? f->row->applied_at : f->moved ? f->moved->applied_at : "";
}

/* A file's state as status shows it: an applied file recorded by baseline says so. */
static const char *state_name(const struct mfile *f)
{
	if (f->state == FILE_APPLIED && f->row && strcmp(f->row->outcome, "baselined") == 0)
		return "baselined";
	return migrate_state_name(f->state);
}

static void status_text(const struct phases *p)
{
	const struct config *cfg = p->cfg;

	printf(STATUS_ROW, "PHASE", "KIND", "FILE", "STATE", "APPLIED AT", "CHECKSUM");
	for (int i = 0; i < cfg->n_phases; i++) {
		const struct phase *ph = &cfg->phases[i];
		const struct phase_ops *k = phases_ops(ph->kind);
		const struct mplan *plan = &p->plans[i];

		if (!k->has_files)
			printf(STATUS_ROW, ph->name, k->name, "-", k->state ? k->state(p, i) : "-",
			       "-", "-");
		for (int j = 0; j < plan->n; j++) {
			const struct mfile *f = &plan->files[j];
			const char *at = applied_at(f);
			printf("%-12s %-9s %-40s %-8s %-25s %.12s\n", ph->name, k->name, f->name,
			       state_name(f), *at ? at : "-", f->checksum);
		}
	}
}

/* One file of the status as a JSON object. */
static void status_json_file(struct sbuf *b, const struct mfile *f)
{
	const char *at = applied_at(f);

	sbuf_puts(b, "{\"file\":");
	sbuf_put_json(b, f->name);
	sbuf_puts(b, ",\"path\":");
	sbuf_put_json(b, f->path);
	sbuf_printf(b, ",\"state\":\"%s\",\"checksum\":\"%s\",\"repeatable\":%s,\"applied_at\":",
		    state_name(f), f->checksum, f->directives.repeatable ? "true" : "false");
	sbuf_put_json(b, *at ? at : NULL);
	if (f->row && strcmp(f->row->checksum, f->checksum) != 0) {
		sbuf_puts(b, ",\"applied_checksum\":");
		sbuf_put_json(b, f->row->checksum);
	}
	if (f->state == FILE_FAILED) {
		sbuf_puts(b, ",\"last_outcome\":");
		sbuf_put_json(b, f->row->outcome);
	}
	if (f->moved) {
		sbuf_puts(b, ",\"moved_from\":{\"phase\":");
		sbuf_put_json(b, f->moved->phase);
		sbuf_puts(b, ",\"file\":");
		sbuf_put_json(b, f->moved->file);
		sbuf_putc(b, '}');
	}
	sbuf_putc(b, '}');
}

static void status_json(const struct phases *p)
{
	const struct config *cfg = p->cfg;
	struct sbuf b = { 0 };

	sbuf_puts(&b, "{\"history\":");
	sbuf_put_json(&b, p->hist.qualified);
	sbuf_puts(&b, ",\"phases\":[");
	for (int i = 0; i < cfg->n_phases; i++) {
		const struct phase *ph = &cfg->phases[i];
		const struct mplan *plan = &p->plans[i];

		sbuf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
		sbuf_put_json(&b, ph->name);
		sbuf_printf(&b, ",\"kind\":\"%s\",", phases_ops(ph->kind)->name);
		if (phases_ops(ph->kind)->state)
			sbuf_printf(&b, "\"state\":\"%s\",", phases_ops(ph->kind)->state(p, i));
		sbuf_puts(&b, "\"files\":[");
		for (int j = 0; j < plan->n; j++) {
			if (j)
				sbuf_putc(&b, ',');
			status_json_file(&b, &plan->files[j]);
		}
		sbuf_puts(&b, "]}");
	}
	sbuf_puts(&b, "]}\n");
	fputs(b.p, stdout);
	sbuf_reset(&b);
}

void report_status(const struct phases *p, bool json)
{
	if (json)
		status_json(p);
	else
		status_text(p);
	fflush(stdout);
}

/* ---- plan and verify ---- */

/* The more serious of two outcomes of plan/verify: drift over pre-flight over ok. */
static enum status worse(enum status a, enum status b)
{
	if (a == ST_DRIFT || b == ST_DRIFT)
		return ST_DRIFT;
	if (a == ST_PREFLIGHT || b == ST_PREFLIGHT)
		return ST_PREFLIGHT;
	return a != ST_OK ? a : b;
}

/* The drift check of phase i, for the kinds that have one. */
static enum status check_phase(const struct phases *p, int i)
{
	const struct phase_ops *k = phases_ops(p->cfg->phases[i].kind);

	return k->check ? k->check(p, i) : ST_OK;
}

struct plan_sum {
	enum status result;
	bool earlier; /* an earlier step will run: it may create what is missing now */
	int pending;  /* files to apply */
};

/*
 * Print what will happen to file f of phase ph, adding it to sum.  Returns
 * ST_OK, or a failure other than drift or pre-flight (plan stops there).
 */
static enum status plan_file(struct phases *p, const struct phase *ph, const struct mfile *f,
			     struct plan_sum *sum)
{
	enum status st;
	int actions = 0;

	switch (f->state) {
	case FILE_PENDING:
	case FILE_RERUN:
		report_line(f->path, 0, "%s",
			    f->state == FILE_PENDING ? "pending: will run"
						     : "changed (repeatable): will run again");
		sum->pending++;
		sum->earlier = true;
		break;
	case FILE_FAILED:
		report_line(f->path, 0, "its last run %s: will run again from its first statement",
			    f->row->outcome);
		sum->pending++;
		sum->earlier = true;
		break;
	case FILE_CHANGED:
		report_line(f->path, 0, "changed since it was applied: refused");
		break;
	case FILE_DECLARED:
		st = constraints_converge(f->cons, ph, p->conn, NULL, CONS_PLAN, sum->earlier,
					  &actions);
		if (st != ST_OK && st != ST_DRIFT && st != ST_PREFLIGHT)
			return st;
		sum->result = worse(sum->result, st);
		break;
	case FILE_APPLIED:
	case FILE_MOVED:
	case FILE_MISSING:
		break;
	}
	return ST_OK;
}

enum status report_plan(struct phases *p)
{
	const struct config *cfg = p->cfg;
	struct plan_sum sum = { .result = ST_OK };
	enum status st = ST_OK;

	for (int i = 0; i < cfg->n_phases && st == ST_OK; i++) {
		const struct phase *ph = &cfg->phases[i];
		const struct phase_ops *k = phases_ops(ph->kind);
		char *line = k->plan_line ? k->plan_line(p, i) : NULL;

		if (line)
			report_line(NULL, 0, "phase \"%s\": %s", ph->name, line);
		free(line);
		sum.earlier |= k->creates;
		sum.result = worse(sum.result, check_phase(p, i));
		for (int j = 0; j < p->plans[i].n && st == ST_OK; j++)
			st = plan_file(p, ph, &p->plans[i].files[j], &sum);
	}
	if (st != ST_OK)
		return st;
	if (sum.result == ST_OK)
		log_info("plan: %d file%s to apply; the plan can run", sum.pending,
			 sum.pending == 1 ? "" : "s");
	else
		log_error("plan: the run would stop: %s",
			  sum.result == ST_DRIFT ? "the database or a file drifted (see above)"
						 : "a pre-flight check fails (see above)");
	return sum.result;
}

struct verify_sum {
	enum status result;
	int differences;
};

/*
 * Log how file f of phase ph differs from what it must be, adding it to
 * sum, or print that it matches.  Returns ST_OK, or a failure other than
 * drift (verify stops there).
 */
static enum status verify_file(struct phases *p, const struct phase *ph, const struct mfile *f,
			       struct verify_sum *sum)
{
	enum status st;
	int diffs = 0;

	switch (f->state) {
	case FILE_CHANGED:
		sum->differences++;
		return ST_OK;
	case FILE_PENDING:
	case FILE_RERUN:
		log_at(LOG_ERROR, f->path, 0, 0, "%s",
		       f->state == FILE_PENDING ? "not applied yet"
						: "changed (repeatable) and not applied again yet");
		break;
	case FILE_FAILED:
		log_at(LOG_ERROR, f->path, 0, 0, "not applied: its last run (%s) %s",
		       f->row->applied_at, f->row->outcome);
		break;
	case FILE_MISSING:
		log_at(LOG_ERROR, f->path, 0, 0, "applied on %s, but no longer in the folder",
		       f->row->applied_at);
		break;
	case FILE_DECLARED:
		st = constraints_converge(f->cons, ph, p->conn, NULL, CONS_VERIFY, false, &diffs);
		if (st != ST_OK && st != ST_DRIFT)
			return st;
		sum->differences += diffs;
		sum->result = worse(sum->result, st);
		return ST_OK;
	case FILE_APPLIED:
		report_line(f->path, 0, "applied, checksum matches");
		return ST_OK;
	case FILE_MOVED:
		return ST_OK;
	}
	sum->differences++;
	sum->result = ST_DRIFT;
	return ST_OK;
}

enum status report_verify(struct phases *p)
{
	const struct config *cfg = p->cfg;
	struct verify_sum sum = { .result = ST_OK };
	enum status st = ST_OK;

	for (int i = 0; i < cfg->n_phases && st == ST_OK; i++) {
		if (check_phase(p, i) != ST_OK)
			sum.result = ST_DRIFT;
		for (int j = 0; j < p->plans[i].n && st == ST_OK; j++)
			st = verify_file(p, &cfg->phases[i], &p->plans[i].files[j], &sum);
	}
	if (st != ST_OK)
		return st;
	if (sum.result == ST_OK)
		log_info("verify: every applied file and every declared constraint matches");
	else
		log_error("verify: %d difference%s (see above)", sum.differences,
			  sum.differences == 1 ? "" : "s");
	return sum.result;
}
