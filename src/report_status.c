/* report_status.c — what the status command prints: a table, or JSON (see report.h). */
#include "report_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate.h"
#include "util.h"

#define STATUS_ROW "%-12s %-9s %-40s %-8s %-25s %s\n"

/* When f was applied (here or under another phase), or "". */
static const char *applied_at(const struct mfile *f)
{
	return f->row ? f->row->applied_at : f->moved ? f->moved->applied_at : "";
}

/* A file's state as status shows it: an applied file recorded by baseline says so. */
static const char *state_name(const struct mfile *f)
{
	if (f->state == FILE_PENDING && f->late)
		return "out-of-order";
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

/* The members of file f's object in status (and plan and verify), without the braces. */
void report_json_file_fields(struct sbuf *b, const struct mfile *f)
{
	const char *at = applied_at(f);

	sbuf_puts(b, "\"file\":");
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
}

/* One file of the status as a JSON object. */
static void status_json_file(struct sbuf *b, const struct mfile *f)
{
	sbuf_putc(b, '{');
	report_json_file_fields(b, f);
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
