/*
 * phase_run.c — the "run" kind of phase: an external command (proc.h), run
 * as argv without a shell, its exit status honoured.
 *
 * A step that declares inputs is skipped while it is up to date: its
 * fingerprint (SHA-256 of its argv and of the files its inputs name, in the
 * order written, each glob's matches in byte order) is the one recorded in
 * the history after its last successful run, and its expect and
 * expect_query hold.  The history keeps one row per such step, keyed by
 * (phase, RUN_KEY).  Without inputs a step runs on every start.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "history.h"
#include "init.h"
#include "log.h"
#include "phases.h"
#include "proc.h"
#include "util.h"

/* The history row of a run step; no file of a dir phase can have this name. */
#define RUN_KEY "(run)"

/* Hash the file at path into md.  Returns NULL, or why it could not be read. */
static const char *hash_file(EVP_MD_CTX *md, const char *path)
{
	char buf[65536];
	struct stat sb;
	ssize_t n;
	int fd;

	if (stat(path, &sb) != 0)
		return strerror(errno);
	if (S_ISDIR(sb.st_mode))
		return "it is a folder (name its files, e.g. with a glob: folder/*)";
	if (!S_ISREG(sb.st_mode))
		return "not a regular file";
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return strerror(errno);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return strerror(errno);
		}
		EVP_DigestUpdate(md, buf, (size_t)n);
	}
	close(fd);
	return NULL;
}

/* The error of the folder glob could not read (glob_failed), or 0. */
static int glob_errno;

static int glob_failed(const char *path, int err)
{
	(void)path;
	glob_errno = err;
	return 1; /* stop: GLOB_ERR stops anyway */
}

/*
 * The fingerprint of phase ph into out (64 hex digits).  ST_OK, or ST_USAGE
 * after logging an input that cannot be read.
 */
static enum status fingerprint(const struct phase *ph, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char sum[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	enum status st = ST_OK;

	if (!md)
		xoom();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	for (int i = 0; i < ph->argv.n; i++)
		EVP_DigestUpdate(md, ph->argv.v[i], strlen(ph->argv.v[i]) + 1);
	for (int i = 0; i < ph->inputs.n && st == ST_OK; i++) {
		glob_t g;
		int r;

		glob_errno = 0;
		r = glob(ph->inputs.v[i], GLOB_ERR, glob_failed, &g);
		/* a folder on the way that is not there: nothing matches, as for a missing file */
		if (r == GLOB_ABORTED && (glob_errno == ENOENT || glob_errno == ENOTDIR)) {
			globfree(&g);
			r = GLOB_NOMATCH;
		}
		EVP_DigestUpdate(md, "\0", 1);
		if (r == GLOB_NOMATCH) {
			log_warning("phase \"%s\": inputs: nothing matches %s", ph->name,
				    ph->inputs.v[i]);
		} else if (r != 0) {
			log_error("phase \"%s\": could not read the inputs %s: %s", ph->name,
				  ph->inputs.v[i],
				  glob_errno ? strerror(glob_errno) : "out of memory");
			st = ST_USAGE;
		}
		for (size_t j = 0; r == 0 && j < g.gl_pathc && st == ST_OK; j++) {
			const char *why;
			EVP_DigestUpdate(md, g.gl_pathv[j], strlen(g.gl_pathv[j]) + 1);
			why = hash_file(md, g.gl_pathv[j]);
			if (why) {
				log_error("phase \"%s\": could not read input \"%s\": %s", ph->name,
					  g.gl_pathv[j], why);
				st = ST_USAGE;
			}
		}
		if (r != GLOB_NOMATCH)
			globfree(&g);
	}
	EVP_DigestFinal_ex(md, sum, &len);
	EVP_MD_CTX_free(md);
	for (unsigned int i = 0; i < len && i < 32; i++) {
		out[2 * i] = hex[sum[i] >> 4];
		out[2 * i + 1] = hex[sum[i] & 15];
	}
	out[64] = '\0';
	return st;
}

static enum status run_match(struct phases *p, int i)
{
	const struct phase *ph = &p->cfg->phases[i];
	struct run_state *rs = &p->runs[i];
	enum status st = ST_OK;

	if (ph->inputs.n == 0) {
		rs->verdict = RUN_ALWAYS;
		return ST_OK;
	}
	/* the inputs are read once: matched again (phases_recheck), the step keeps its fingerprint */
	if (!rs->fingerprint[0]) {
		st = fingerprint(ph, rs->fingerprint);
		if (st != ST_OK) {
			rs->fingerprint[0] = '\0';
			return st;
		}
	}
	rs->row = history_find(&p->hist, ph->name, RUN_KEY);
	if (!rs->row || history_row_failed(rs->row))
		rs->verdict = RUN_FIRST;
	else if (strcmp(rs->row->checksum, rs->fingerprint) != 0)
		rs->verdict = RUN_CHANGED;
	else
		rs->verdict = phases_expect_holds(p, ph, &st) ? RUN_UP_TO_DATE : RUN_UNMET;
	return st;
}

static void run_skip(struct phases *p, int i)
{
	log_info("phase \"%s\": up to date (inputs unchanged since %s): not run",
		 p->cfg->phases[i].name, p->runs[i].row->applied_at);
}

static enum status run_run(struct phases *p, int i)
{
	const struct phase *ph = &p->cfg->phases[i];
	const struct run_state *rs = &p->runs[i];
	enum status st;

	if (rs->verdict == RUN_UP_TO_DATE) {
		run_skip(p, i);
		return ST_OK;
	}
	st = proc_run(ph->name, &ph->argv, ph->timeout_ms);
	init_reap(); /* what it left behind, when we are PID 1 or a subreaper */
	if (st == ST_OK) {
		/* a schema tool may drop what it does not know, the history among it */
		char *step = xasprintf("run step \"%s\"", ph->name);
		st = history_check_present(p->conn, &p->hist, step);
		free(step);
	}
	return st;
}

/* After the step ran and its expect holds: record its fingerprint. */
static enum status run_done(struct phases *p, int i)
{
	const struct phase *ph = &p->cfg->phases[i];
	const struct run_state *rs = &p->runs[i];
	enum status st;

	if (rs->verdict == RUN_ALWAYS || rs->verdict == RUN_UP_TO_DATE)
		return ST_OK;
	st = history_ensure(p->conn, &p->hist);
	if (st == ST_OK)
		st = history_record(p->conn, &p->hist, ph->name, RUN_KEY, rs->fingerprint, 0,
				    "applied", rs->row);
	return st;
}

static bool run_settled(struct phases *p, int i, enum status *st)
{
	(void)st;
	return p->runs[i].verdict == RUN_UP_TO_DATE;
}

static const char *run_state_name(const struct phases *p, int i)
{
	switch (p->runs[i].verdict) {
	case RUN_UP_TO_DATE:
		return "applied";
	case RUN_ALWAYS:
		return "always";
	case RUN_FIRST:
	case RUN_CHANGED:
	case RUN_UNMET:
		break;
	}
	return "pending";
}

static char *run_plan_line(const struct phases *p, int i)
{
	const struct phase *ph = &p->cfg->phases[i];
	const char *cmd = ph->argv.n ? ph->argv.v[0] : "";

	switch (p->runs[i].verdict) {
	case RUN_UP_TO_DATE:
		return xasprintf("run %s: up to date (inputs unchanged since %s, expect holds): "
				 "will not run",
				 cmd, p->runs[i].row->applied_at);
	case RUN_FIRST:
		return xasprintf("run %s: will run (never recorded with its inputs)", cmd);
	case RUN_CHANGED:
		return xasprintf("run %s: will run (its inputs or command changed)", cmd);
	case RUN_UNMET:
		return xasprintf(
			"run %s: will run (inputs unchanged, but its expect does not hold)", cmd);
	case RUN_ALWAYS:
		break;
	}
	return xasprintf("run %s", cmd);
}

const struct phase_ops phase_run_ops = {
	.name = "run",
	.creates = true,
	.match = run_match,
	.run = run_run,
	.done = run_done,
	.settled = run_settled,
	.skip = run_skip,
	.state = run_state_name,
	.plan_line = run_plan_line,
	.expect_hint = "The command exited 0 without creating them; look at its output above "
		       "(a schema tool may skip its work on a database it has not initialised).",
};
