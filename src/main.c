/*
 * pgprelude — get the database into the shape the application needs, then
 * hand the container over to the application.
 *
 *   argv → config → wait for the database → take the lock → phases → hand over
 *
 * Each command (wait, status, plan, verify, migrate, and the default that
 * hands over) is one row of commands[] and one function.  Only main() and
 * job_end() turn a status into an exit code (status.h).
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "db.h"
#include "ddl.h"
#include "init.h"
#include "lock.h"
#include "log.h"
#include "operate.h"
#include "phases.h"
#include "privdrop.h"
#include "proc.h"
#include "report.h"
#include "status.h"
#include "util.h"

#define DEFAULT_CONFIG "/entrypoint/pgprelude.ini"

struct job;

/* A command: one row of the table below, one function. */
struct command {
	const char *name; /* as given on the command line; NULL for the default */
	enum status (*fn)(struct job *j);
	unsigned flags; /* CMD_* */
};

enum {
	CMD_JSON = 1,	    /* takes --json */
	CMD_HANDS_OVER = 2, /* needs a command to hand over to (after "--" or [exec] command) */
	CMD_OPERANDS = 4,   /* takes operands after its name (options.args) */
	CMD_SQL = 8	    /* takes --sql (plan: the SQL migrate would send) */
};

struct options {
	const struct command *cmd;
	const char *config_path;
	bool json;
	bool sql; /* plan --sql */
	bool verbose;
	int log_format;	    /* -1: from the config */
	struct strv app;    /* the command after "--" (points into argv) */
	struct strv args;   /* a command's operands (points into argv) */
	const char *phase;  /* baseline --phase */
	const char *upto;   /* baseline --to */
	bool allow_missing; /* verify --allow-missing */
};

/* Everything a command works with, and what it leaves for main to end with. */
struct job {
	struct options opt;
	struct config cfg;
	struct creds creds; /* [exec] user, resolved before anything runs */
	PGconn *conn;	    /* the connection a command leaves open, or NULL */
	long started;
	bool handed_over; /* the application ran: exit with exit_code */
	int exit_code;
};

static void usage(FILE *out)
{
	fprintf(out,
		"pgprelude %s: get the database ready, then start the application.\n"
		"\n"
		"Usage:\n"
		"  pgprelude [OPTION]... [--] COMMAND [ARG]...   run the phases, then exec COMMAND\n"
		"  pgprelude [OPTION]... migrate                 run the phases, then exit\n"
		"  pgprelude [OPTION]... status [--json]         show every file and its state\n"
		"  pgprelude [OPTION]... wait                    wait for the database, then exit\n"
		"  pgprelude [OPTION]... plan [--json|--sql]     show what would run, with the pre-flight\n"
		"                                                checks, changing nothing\n"
		"  pgprelude [OPTION]... verify [--json] [--allow-missing]\n"
		"                                                check applied files and declared\n"
		"                                                constraints, read-only\n"
		"  pgprelude [OPTION]... baseline [--phase NAME] [--to FILE]\n"
		"                                                record pending files as applied\n"
		"                                                without running them (adopt an\n"
		"                                                existing database)\n"
		"  pgprelude [OPTION]... accept FILE...          record the new checksum of applied\n"
		"                                                files edited on purpose\n"
		"\n"
		"Options:\n"
		"  -c, --config=FILE      configuration file (default $PGPRELUDE_CONFIG, else\n"
		"                         " DEFAULT_CONFIG ")\n"
		"      --json             status, plan, verify: print one JSON document\n"
		"      --sql              plan: print the SQL that migrate would send\n"
		"      --phase=NAME       baseline: only this dir phase\n"
		"      --to=FILE          baseline: up to and including this file\n"
		"      --allow-missing    verify: applied files gone from the folder (a rollback to\n"
		"                         an older image) are no difference\n"
		"      --log-format=FMT   text or json (overrides log_format in the file)\n"
		"  -v, --verbose          also log debug lines\n"
		"  -h, --help             show this help, then exit\n"
		"  -V, --version          show the version, then exit\n"
		"\n"
		"Without COMMAND, [exec] command from the configuration is started.\n"
		"Options may also follow a named command (pgprelude migrate -c FILE); after\n"
		"\"--\", or after COMMAND, every word is the application's.\n"
		"\n"
		"Exit codes:\n"
		"  0    success (after the hand-over: the application's own status)\n"
		"  2    bad command line or configuration, or a bad migration file\n"
		"  3    database not reachable before [database] wait_timeout\n"
		"  4    authentication failed, or unknown role or database (not retried)\n"
		"  5    migration lock not obtained before [database] lock_wait_timeout\n"
		"  6    SQL error in a migration (its transaction was rolled back)\n"
		"  7    pre-flight check failed\n"
		"  8    an applied file has changed, or the database differs from a declared\n"
		"       constraint (drift); verify: any difference\n"
		"  9    external step failed: run command, wait_for timeout, or expect unmet\n"
		"  10   connection to the database lost during the run\n"
		"  11   internal error (out of memory, I/O error)\n"
		"  126  COMMAND is not executable\n"
		"  127  COMMAND not found\n"
		"  128+N  stopped by signal N before the hand-over\n",
		PGPRELUDE_VERSION);
}

/* ---- the commands, one function each ---- */

/* While waiting for the lock: whether the holder did all there was to do (read without it). */
static bool done_meanwhile(void *arg)
{
	struct phases *p = arg;
	enum status st = phases_recheck(p);

	return st == ST_OK && phases_settled(p, &st) && st == ST_OK;
}

/* The database part of the job: wait, lock, phases.  Leaves *conn open (lock held). */
static enum status migrate(const struct config *cfg, PGconn **conn)
{
	struct phases p;
	long start = clock_ms();
	enum status st;

	phases_init(&p, cfg);
	st = phases_wait(&p, conn);
	/* What is there to do?  Read without the lock: a start with nothing to do takes none. */
	if (st == ST_OK)
		st = phases_prepare(&p, *conn);
	if (st == ST_OK && phases_settled(&p, &st)) {
		log_info("nothing to do: every file is applied and every step up to date; the "
			 "migration lock was not needed");
	} else if (st == ST_OK) {
		/* Something is: take the lock, and decide again from what is read under it. */
		bool files = phases_files_pending(&p), taken = true;
		st = lock_acquire_unless(*conn, cfg, done_meanwhile, &p, &taken);
		if (st == ST_OK && !taken) {
			log_info(
				"nothing left to do: another run did it while this one waited; the "
				"migration lock was not needed");
			goto out;
		}
		/* a session a killed run left applying a file must end before the history is read */
		if (st == ST_OK && files)
			st = migrate_begin_work(cfg, &p.work);
		/* the history read again under the lock; the folders as read before it */
		if (st == ST_OK)
			st = phases_recheck(&p);
		if (st == ST_OK)
			st = phases_prepare_locked(&p);
		if (st == ST_OK)
			st = phases_run(&p);
	}
out:
	phases_free(&p);
	if (st == ST_OK)
		log_info("database ready: %d phase%s done in %ld ms", cfg->n_phases,
			 cfg->n_phases == 1 ? "" : "s", clock_ms() - start);
	else if (st == ST_CONNLOST)
		log_hint("The database went away; the next start resumes where this one stopped.");
	return st;
}

/*
 * Close the lock connection (releasing the lock) and hand the process over
 * to the application: exec it, or start it and stay as its init.  Returns
 * the exit code (only when supervising, or when the hand-over failed).
 */
static int hand_over(const struct config *cfg, const struct strv *app, const struct creds *creds,
		     PGconn *conn, long started)
{
	const struct strv *cmd = app->n ? app : &cfg->exec_command;
	bool supervise =
		cfg->exec_mode == EXEC_SUPERVISE || (cfg->exec_mode == EXEC_AUTO && init_is_pid1());

	lock_release(conn, cfg);
	PQfinish(conn);
	init_reap();
	if (creds && creds->home[0])
		setenv("HOME", creds->home, 1);
	log_info("handing over to \"%s\"%s after %ld ms", cmd->v[0],
		 supervise ? " (supervised)" : "", clock_ms() - started);
	if (supervise)
		return init_supervise(cmd, creds);
	if (creds) {
		int err = privdrop_apply(creds);
		if (err != 0) {
			privdrop_report(creds, err);
			return status_exit_code(ST_NOEXEC, 0);
		}
	}
	return status_exit_code(proc_exec(cmd), 0);
}

/* [--] COMMAND [ARG]...: the whole job, then hand over. */
static enum status cmd_run(struct job *j)
{
	enum status st = migrate(&j->cfg, &j->conn);

	if (st != ST_OK)
		return st;
	j->exit_code = hand_over(&j->cfg, &j->opt.app, j->cfg.exec_user ? &j->creds : NULL, j->conn,
				 j->started);
	j->conn = NULL; /* hand_over closed it */
	j->handed_over = true;
	return ST_OK;
}

static enum status cmd_migrate(struct job *j)
{
	return migrate(&j->cfg, &j->conn);
}

static enum status cmd_wait(struct job *j)
{
	return db_wait(&j->cfg, &j->conn);
}

static enum status cmd_status(struct job *j)
{
	struct phases p;
	enum status st = phases_open(&p, &j->cfg, false);

	if (st == ST_OK)
		report_status(&p, j->opt.json);
	phases_close(&p);
	return st;
}

/* Read everything on a read-only session, then report as text, JSON (--json) or SQL (--sql). */
static enum status inspect(struct job *j,
			   enum status (*report)(struct phases *p, enum report_format fmt))
{
	struct phases p;
	enum status st = phases_open(&p, &j->cfg, true);

	p.allow_missing = j->opt.allow_missing;
	if (st == ST_OK)
		st = report(&p, j->opt.json ? REPORT_JSON : j->opt.sql ? REPORT_SQL : REPORT_TEXT);
	phases_close(&p);
	return st;
}

static enum status cmd_plan(struct job *j)
{
	return inspect(j, report_plan);
}

static enum status cmd_verify(struct job *j)
{
	return inspect(j, report_verify);
}

/* baseline [--phase NAME] [--to FILE] */
static enum status cmd_baseline(struct job *j)
{
	if (j->opt.args.n > 0) {
		log_error("baseline: unexpected argument \"%s\"", j->opt.args.v[0]);
		log_hint("Usage: pgprelude baseline [--phase NAME] [--to FILE]");
		return ST_USAGE;
	}
	return operate_baseline(&j->cfg, j->opt.phase, j->opt.upto);
}

/* accept FILE... */
static enum status cmd_accept(struct job *j)
{
	if (j->opt.args.n == 0) {
		log_error("accept: name the changed files to accept");
		log_hint("Usage: pgprelude accept FILE...");
		return ST_USAGE;
	}
	return operate_accept(&j->cfg, &j->opt.args);
}

/* The default row first.  One row a line (clang-format would pack them in columns). */
/* clang-format off */
static const struct command commands[] = {
	{ NULL, cmd_run, CMD_HANDS_OVER },
	{ "migrate", cmd_migrate, 0 },
	{ "status", cmd_status, CMD_JSON },
	{ "wait", cmd_wait, 0 },
	{ "plan", cmd_plan, CMD_JSON | CMD_SQL },
	{ "verify", cmd_verify, CMD_JSON },
	{ "baseline", cmd_baseline, CMD_OPERANDS },
	{ "accept", cmd_accept, CMD_OPERANDS },
};
/* clang-format on */

/* ---- the command line ---- */

/* The options before the command.  Returns ST_OK, or ST_USAGE after logging; *done for --help/--version. */
static enum status parse_options(int argc, char **argv, struct options *o, bool *done)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "sql", no_argument, NULL, 's' },
		{ "log-format", required_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "phase", required_argument, NULL, 'p' },
		{ "to", required_argument, NULL, 't' },
		{ "allow-missing", no_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	opterr = 0;
	/* "+": stop at the first non-option, so the application's own options stay its own. */
	while ((c = getopt_long(argc, argv, "+c:vhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config_path = optarg;
			break;
		case 'j':
			o->json = true;
			break;
		case 's':
			o->sql = true;
			break;
		case 'f':
			if (strcmp(optarg, "text") == 0)
				o->log_format = LOG_FORMAT_TEXT;
			else if (strcmp(optarg, "json") == 0)
				o->log_format = LOG_FORMAT_JSON;
			else {
				log_error("invalid --log-format \"%s\": give text or json", optarg);
				return ST_USAGE;
			}
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			usage(stdout);
			*done = true;
			return ST_OK;
		case 'p':
			o->phase = optarg;
			break;
		case 't':
			o->upto = optarg;
			break;
		case 'm':
			o->allow_missing = true;
			break;
		case 'V':
			printf("pgprelude %s\n", PGPRELUDE_VERSION);
			*done = true;
			return ST_OK;
		default:
			if (optopt)
				log_error("unknown option \"-%c\"", optopt);
			else
				log_error("unknown option \"%s\"", argv[optind - 1]);
			log_hint(
				"Try \"pgprelude --help\". Options for the application go after \"--\".");
			return ST_USAGE;
		}
	}
	return ST_OK;
}

/*
 * The options after a named command (argv[optind] on): the same as before
 * it, as users type them ("pgprelude migrate -c FILE"); anything else is
 * refused.  Returns ST_OK, or ST_USAGE after logging; *done for
 * --help/--version.
 */
static enum status command_options(int argc, char **argv, struct options *o, bool *done)
{
	int first = optind - 1; /* the command's name stands as argv[0] */
	enum status st;

	optind = 0; /* start getopt afresh on the words after the command */
	st = parse_options(argc - first, argv + first, o, done);
	if (st != ST_OK || *done)
		return st;
	if (first + optind < argc && (o->cmd->flags & CMD_OPERANDS)) {
		o->args.v = argv + first + optind;
		o->args.n = argc - first - optind;
	} else if (first + optind < argc) {
		log_error("unexpected argument \"%s\" after \"%s\"", argv[first + optind],
			  o->cmd->name);
		return ST_USAGE;
	}
	if ((o->phase || o->upto) && strcmp(o->cmd->name ? o->cmd->name : "", "baseline") != 0) {
		log_error("--phase and --to go with the baseline command");
		return ST_USAGE;
	}
	if (o->allow_missing && strcmp(o->cmd->name ? o->cmd->name : "", "verify") != 0) {
		log_error("--allow-missing goes with the verify command");
		return ST_USAGE;
	}
	return ST_OK;
}

/*
 * The command at argv[optind] and what follows it: a named command, with
 * its options after it; else the default, the rest of argv being the
 * application.  Returns ST_OK, or ST_USAGE after logging; *done for
 * --help/--version.
 */
static enum status parse_command(int argc, char **argv, struct options *o, bool *done)
{
	o->cmd = &commands[0];
	if (optind < argc && strcmp(argv[optind - 1], "--") != 0) {
		for (size_t i = 1; i < sizeof(commands) / sizeof(commands[0]); i++) {
			if (strcmp(argv[optind], commands[i].name) == 0) {
				o->cmd = &commands[i];
				optind++;
				break;
			}
		}
	}
	if (o->cmd->flags & CMD_HANDS_OVER) {
		if (optind < argc) {
			o->app.v = argv + optind;
			o->app.n = argc - optind;
		}
		return ST_OK;
	}
	return command_options(argc, argv, o, done);
}

/* Parse argv.  Returns ST_OK, or ST_USAGE after logging; *done for --help/--version. */
static enum status parse_args(int argc, char **argv, struct options *o, bool *done)
{
	enum status st;

	memset(o, 0, sizeof(*o));
	o->log_format = -1;
	*done = false;
	st = parse_options(argc, argv, o, done);
	if (st != ST_OK || *done)
		return st;
	st = parse_command(argc, argv, o, done);
	if (st != ST_OK || *done)
		return st;
	if (o->json && !(o->cmd->flags & CMD_JSON)) {
		log_error("--json goes with the status, plan and verify commands");
		return ST_USAGE;
	}
	if (o->sql && !(o->cmd->flags & CMD_SQL)) {
		log_error("--sql goes with the plan command");
		return ST_USAGE;
	}
	if (o->sql && o->json) {
		log_error("%s: give --json or --sql, not both", o->cmd->name);
		return ST_USAGE;
	}
	if (!o->config_path)
		o->config_path = getenv("PGPRELUDE_CONFIG");
	if (!o->config_path || !*o->config_path)
		o->config_path = DEFAULT_CONFIG;
	return ST_OK;
}

/* ---- main ---- */

/*
 * What a command that hands over needs, found before anything runs: a
 * command to hand over to, and the user to run it as.  ST_OK, or the
 * failure status after logging.
 */
static enum status check_hand_over(struct job *j)
{
	if (!(j->opt.cmd->flags & CMD_HANDS_OVER))
		return ST_OK;
	if (j->opt.app.n == 0 && j->cfg.exec_command.n == 0) {
		log_error("no command to hand over to");
		log_hint(
			"Give one after \"--\", or set [exec] command; use \"pgprelude migrate\" to only "
			"run the phases.");
		return ST_USAGE;
	}
	/* An unknown user is found before anything runs, not after the migrations. */
	if (j->cfg.exec_user)
		return privdrop_resolve(j->cfg.exec_user, "", &j->creds);
	return ST_OK;
}

/* Free what the job holds and return its exit code: the application's, or st's. */
/*
 * A failed start leaves a short summary where the orchestrator looks for
 * one (Kubernetes shows /dev/termination-log in `kubectl describe pod`):
 * the exit code, then the first error with its detail and hint, at most
 * 4 KiB.  Only into a file that exists: pgprelude creates none.
 */
static void write_termination_log(const char *path, enum status st, int code)
{
	char head[64];
	int fd;

	if (!path || !*path || access(path, W_OK) != 0)
		return;
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return;
	snprintf(head, sizeof(head), "pgprelude: exit %d (%s)\n", code, status_name(st));
	if (write(fd, head, strlen(head)) > 0) {
		const char *first = log_first_error();
		size_t room = 4096 - strlen(head), n = strlen(first);
		if (write(fd, first, n < room ? n : room) < 0)
			log_debug("could not write %s", path);
	}
	close(fd);
}

static int job_end(struct job *j, enum status st)
{
	int code;

	privdrop_free(&j->creds);
	if (j->handed_over) {
		config_free(&j->cfg);
		return j->exit_code;
	}
	if (j->conn)
		PQfinish(j->conn);
	if (st == ST_SIGNAL)
		log_error(
			"stopped by signal %d (%s) before the hand-over: the running statement was "
			"cancelled and the lock released",
			init_stop_signal(), strsignal(init_stop_signal()));
	code = status_exit_code(st, init_stop_signal());
	if (st != ST_OK)
		write_termination_log(j->cfg.termination_log, st, code);
	config_free(&j->cfg);
	return code;
}

int main(int argc, char **argv)
{
	struct job job = { .started = clock_ms() };
	bool done;
	enum status st;

	/* First of all, so that no signal is lost or kills us half-way. */
	st = init_setup();
	if (st != ST_OK)
		return status_exit_code(st, 0);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	st = parse_args(argc, argv, &job.opt, &done);
	if (st != ST_OK || done)
		return status_exit_code(st, 0);
	st = config_load(job.opt.config_path, &job.cfg);
	if (st != ST_OK) {
		/* no configuration: the summary goes to the default place */
		write_termination_log(CONFIG_TERMINATION_LOG, st, status_exit_code(st, 0));
		return status_exit_code(st, 0);
	}
	log_setup(job.opt.log_format >= 0 ? (enum log_format)job.opt.log_format
					  : job.cfg.log_format,
		  job.opt.verbose ? LOG_DEBUG : (enum log_level)job.cfg.log_level);
	ddl_set_role(job.cfg.db_role);
	st = db_check_url(&job.cfg);
	if (st == ST_OK)
		st = check_hand_over(&job);
	if (st == ST_OK)
		st = job.opt.cmd->fn(&job);
	return job_end(&job, st);
}
