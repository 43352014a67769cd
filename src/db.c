#include "db.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "init.h"
#include "log.h"
#include "util.h"
#include "wait.h"

/* The file NOTICEs are reported against; only one file runs at a time. */
static const char *notice_file;

/*
 * Copy msg into out with every password in it masked: the part after
 * "user:" in a URI's "scheme://user:password@", and a "password=" value.
 * libpq quotes the whole URI or conninfo in some of its parse errors.
 */
static void mask_passwords(const char *msg, char *out, size_t len)
{
	size_t j = 0;

	for (const char *p = msg; *p && j + 1 < len;) {
		const char *skip = NULL;
		if (strncmp(p, "://", 3) == 0) {
			/* userinfo runs to '@' (before any '/', blank or quote); the password after its ':' */
			const char *e = p + 3, *colon = NULL;
			while (*e && *e != '@' && *e != '/' && *e != ' ' && *e != '"') {
				if (*e == ':' && !colon)
					colon = e;
				e++;
			}
			if (*e == '@' && colon) {
				size_t n = (size_t)(colon + 1 - p);
				if (j + n + 1 >= len)
					break;
				memcpy(out + j, p, n);
				j += n;
				skip = e;
			}
		} else if (strncmp(p, "password=", 9) == 0) {
			const char *e = p + 9;
			if (*e == '\'') {
				for (e++; *e && *e != '\''; e++)
					if (*e == '\\' && e[1])
						e++;
				if (*e)
					e++;
			} else {
				while (*e && *e != ' ' && *e != '"')
					e++;
			}
			if (j + 10 >= len)
				break;
			memcpy(out + j, p, 9);
			j += 9;
			skip = e;
		}
		if (skip) {
			const char *mask = "*****";
			for (; *mask && j + 1 < len; mask++)
				out[j++] = *mask;
			p = skip;
		} else {
			out[j++] = *p++;
		}
	}
	if (len)
		out[j < len ? j : len - 1] = '\0';
}

enum status db_check_url(const struct config *cfg)
{
	char *err = NULL;
	char masked[1024];
	PQconninfoOption *opts;

	if (!cfg->db_url || !*cfg->db_url)
		return ST_OK;
	opts = PQconninfoParse(cfg->db_url, &err);
	if (!opts) {
		if (err) {
			size_t n = strlen(err);
			while (n > 0 && err[n - 1] == '\n')
				err[--n] = '\0';
		}
		/* libpq's message may quote the url, password and all */
		mask_passwords(err ? err : "out of memory", masked, sizeof(masked));
		log_error("invalid database url in [database] url: %s", masked);
		log_hint("Give a libpq connection string (host=... dbname=...) or a URI "
			 "(postgresql://user@host:port/dbname).");
		PQfreemem(err);
		return ST_USAGE;
	}
	PQconninfoFree(opts);
	return ST_OK;
}

/* Whether the conninfo in url sets a password itself. */
static bool url_has_password(const char *url)
{
	PQconninfoOption *opts = PQconninfoParse(url, NULL);
	bool has = false;
	if (!opts)
		return false;
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val && *o->val)
			has = true;
	PQconninfoFree(opts);
	return has;
}

static void notice_receiver(void *arg, const PGresult *res)
{
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	enum log_level level = LOG_INFO;
	(void)arg;

	if (!sev)
		sev = "NOTICE";
	if (strcmp(sev, "WARNING") == 0)
		level = LOG_WARNING;
	else if (strcmp(sev, "DEBUG") == 0)
		level = LOG_DEBUG;
	/* A WARNING is logged as a warning: its severity is the level already. */
	if (level == LOG_WARNING && notice_file)
		log_at(level, notice_file, 0, 0, "%s", msg ? msg : "");
	else if (level == LOG_WARNING)
		log_msg(level, "server: %s", msg ? msg : "");
	else if (notice_file)
		log_at(level, notice_file, 0, 0, "%s: %s", sev, msg ? msg : "");
	else
		log_msg(level, "server %s: %s", sev, msg ? msg : "");
	if (detail)
		log_detail("%s", detail);
}

void db_set_notice_file(PGconn *conn, const char *file)
{
	(void)conn;
	notice_file = file;
}

/*
 * The SQLSTATE the server sent with its last error while the connection was
 * being set up, from libpq's message in verbose form ("FATAL:  28P01: ...",
 * the severity word in the server's language): copied into state (6 bytes),
 * or "" when the failure was libpq's own (refused, timed out, no password).
 */
static void startup_sqlstate(const char *msg, char state[6])
{
	state[0] = '\0';
	for (const char *p = msg; (p = strstr(p, ":  ")) != NULL; p++) {
		const char *c = p + 3;
		int n = 0;
		while (n < 5 && ((c[n] >= '0' && c[n] <= '9') || (c[n] >= 'A' && c[n] <= 'Z')))
			n++;
		if (n == 5 && c[5] == ':' && c[6] == ' ') {
			memcpy(state, c, 5);
			state[5] = '\0';
		}
	}
}

/*
 * libpq's verbose message as it reads in the default verbosity: without the
 * "SQLSTATE: " after each severity and without the LOCATION lines.  Written
 * into out (len bytes).
 */
static void terse_message(const char *msg, char *out, size_t len)
{
	size_t j = 0;

	for (const char *p = msg; *p && j + 1 < len;) {
		const char *eol = strchr(p, '\n');
		const char *end = eol ? eol + 1 : p + strlen(p);
		char state[6];

		if (strncmp(p, "LOCATION:  ", 11) == 0) {
			p = end;
			continue;
		}
		while (p < end && j + 1 < len) {
			out[j++] = *p;
			/* ":  28P01: " -> ":  " */
			if (j >= 3 && strncmp(out + j - 3, ":  ", 3) == 0 &&
			    (startup_sqlstate(p - 2, state), *state) &&
			    strncmp(p + 1, state, 5) == 0)
				p += 7;
			p++;
		}
	}
	out[j] = '\0';
}

/*
 * Classify a failed connection attempt: by the SQLSTATE the server sent,
 * whatever the language of its messages, and for libpq's own failures
 * (which carry none) by libpq's message.  A known English server message
 * gives a more precise reason; anything unknown counts as "waiting may help".
 */
static enum status classify(const char *msg, const char *state, const char **reason)
{
	static const struct {
		const char *needle;
		const char *reason;
		enum status st;
	} rules[] = {
		{ "invalid integer value", "the connection settings are invalid", ST_USAGE },
		{ "invalid connection option", "the connection settings are invalid", ST_USAGE },
		{ "invalid sslmode value", "the connection settings are invalid", ST_USAGE },
		{ "password authentication failed", "password authentication failed", ST_AUTH },
		{ "no password supplied", "no password was supplied", ST_AUTH },
		{ "SCRAM authentication", "authentication failed", ST_AUTH },
		{ "authentication failed", "authentication failed", ST_AUTH },
		{ "no pg_hba.conf entry", "pg_hba.conf rejects the connection", ST_AUTH },
		{ "role \"", "the role does not exist", ST_AUTH },
		{ "database \"", "the database does not exist", ST_AUTH },
		{ "SSL was required", "the server refuses SSL", ST_AUTH },
		{ "server does not support SSL", "the server refuses SSL", ST_AUTH },
		{ "certificate", "the server certificate is not accepted", ST_AUTH },
		{ "is starting up", "the server is starting up", ST_UNREACHABLE },
		{ "shutting down", "the server is shutting down", ST_UNREACHABLE },
		{ "recovery mode", "the server is in recovery", ST_UNREACHABLE },
		{ "too many clients", "the server has too many clients", ST_UNREACHABLE },
		{ "Connection refused", "connection refused", ST_UNREACHABLE },
		{ "No such file or directory", "no server socket yet", ST_UNREACHABLE },
		{ "could not translate host name", "host name not resolved", ST_UNREACHABLE },
		{ "timeout expired", "connection timed out", ST_UNREACHABLE },
		{ "No route to host", "no route to host", ST_UNREACHABLE },
	};
	/* The server's own verdict, by SQLSTATE class: what waiting cannot fix. */
	static const struct {
		const char *prefix;
		const char *reason;
		enum status st;
	} states[] = {
		{ "28P01", "password authentication failed", ST_AUTH },
		{ "28", "the server refuses the role or the connection", ST_AUTH },
		{ "3D000", "the database does not exist", ST_AUTH },
		{ "42501", "the role may not connect", ST_AUTH },
		{ "53300", "the server has too many clients", ST_UNREACHABLE },
		{ "57P03", "the server cannot accept connections yet", ST_UNREACHABLE },
	};
	enum status st = ST_UNREACHABLE;

	*reason = "the server does not answer";
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		if (strstr(msg, rules[i].needle)) {
			*reason = rules[i].reason;
			st = rules[i].st;
			break;
		}
	}
	if (!*state)
		return st;
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		if (strncmp(state, states[i].prefix, strlen(states[i].prefix)) != 0)
			continue;
		/* an English message said more about the same verdict: keep its reason */
		if (st != states[i].st)
			*reason = states[i].reason;
		return states[i].st;
	}
	/* another server error: waiting may help (a restart, a failover) */
	return st == ST_AUTH ? ST_UNREACHABLE : st;
}

/* Copy libpq's message into errbuf as one line. */
static void one_line(char *errbuf, size_t errlen, const char *msg)
{
	size_t j = 0;
	if (!errlen)
		return;
	for (size_t i = 0; msg && msg[i] && j + 1 < errlen; i++) {
		char c = msg[i];
		if (c == '\n') {
			if (!msg[i + 1])
				break;
			c = ' ';
		}
		errbuf[j++] = c;
	}
	errbuf[j] = '\0';
}

/*
 * Set up OpenSSL's random generator while the server starts the session (it
 * has the startup packet): libpq needs it for the SCRAM nonce, and would set
 * it up only once the server has asked for the password and waits for the
 * answer.
 */
static void warm_up_random(void)
{
	static bool done;
	unsigned char byte;

	if (!done) {
		done = true;
		(void)RAND_bytes(&byte, 1);
	}
}

static bool standby_ok;
static bool proxied;

bool db_behind_proxy(void)
{
	return proxied;
}

void db_allow_standby(bool ok)
{
	standby_ok = ok;
}

static bool (*idle_fn)(void *);
static void *idle_arg;

void db_set_idle(bool (*fn)(void *arg), void *arg)
{
	idle_fn = fn;
	idle_arg = arg;
}

/* Whether fd has something to read now. */
static bool readable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	return poll(&pfd, 1, 0) != 0;
}

/*
 * While the server is busy with the connection (it starts the session,
 * checks the password, loads its caches), do what can be done meanwhile:
 * set up the random generator, then the caller's idle work, a bit at a time,
 * for as long as the server has not answered.
 */
static void use_server_time(PGconn *conn)
{
	if (PQstatus(conn) == CONNECTION_AWAITING_RESPONSE)
		warm_up_random();
	while (idle_fn && !readable(PQsocket(conn)))
		if (!idle_fn(idle_arg))
			idle_fn = NULL;
}

enum status db_connect_once(const struct config *cfg, long connect_timeout_ms, PGconn **out,
			    const char **reason, char *errbuf, size_t errlen)
{
	const char *keys[8];
	const char *vals[8];
	char timeout[24];
	char appname[64];
	char host[48] = "";
	int n = 0;
	const char *why = "unknown";
	enum status st;
	PGconn *conn;
	PGresult *res;

	*out = NULL;
	gethostname(host, sizeof(host) - 1);
	snprintf(appname, sizeof(appname), "pgprelude/%s", host);
	/* libpq's connect_timeout is whole seconds, at least 2. */
	snprintf(timeout, sizeof(timeout), "%ld",
		 connect_timeout_ms < 2000 ? 2 : connect_timeout_ms / 1000);

	if (cfg->db_url && *cfg->db_url) {
		keys[n] = "dbname";
		vals[n++] = cfg->db_url;
	}
	if (cfg->db_password && !(cfg->db_url && url_has_password(cfg->db_url))) {
		keys[n] = "password";
		vals[n++] = cfg->db_password;
	}
	keys[n] = "connect_timeout";
	vals[n++] = timeout;
	keys[n] = "application_name";
	vals[n++] = appname;
	keys[n] = "client_encoding";
	vals[n++] = "UTF8";
	keys[n] = NULL;
	vals[n] = NULL;

	conn = PQconnectStartParams(keys, vals, 1);
	if (!conn) {
		one_line(errbuf, errlen, "out of memory");
		if (reason)
			*reason = "out of memory";
		return ST_INTERNAL;
	}
	/* The server's login errors then carry their SQLSTATE (classify). */
	PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);
	/* Poll the connection ourselves, so that a stop signal ends the attempt at once. */
	for (PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
	     PQstatus(conn) != CONNECTION_BAD && ps != PGRES_POLLING_OK &&
	     ps != PGRES_POLLING_FAILED;) {
		int r;
		if (ps == PGRES_POLLING_READING)
			use_server_time(conn);
		r = wait_fd(PQsocket(conn), ps == PGRES_POLLING_READING ? POLLIN : POLLOUT, -1);
		if (r < 0) {
			one_line(errbuf, errlen, "interrupted by a signal");
			if (reason)
				*reason = "interrupted";
			PQfinish(conn);
			return ST_SIGNAL;
		}
		ps = PQconnectPoll(conn);
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		char state[6], terse[1024];
		startup_sqlstate(PQerrorMessage(conn), state);
		terse_message(PQerrorMessage(conn), terse, sizeof(terse));
		one_line(errbuf, errlen, terse);
		st = classify(terse, state, &why);
		if (reason)
			*reason = why;
		/* keep the description of the target for the caller's messages */
		db_describe(conn);
		PQfinish(conn);
		return st;
	}
	PQsetErrorVerbosity(conn, PQERRORS_DEFAULT);
	PQsetNoticeReceiver(conn, notice_receiver, NULL);
	res = PQexec(conn, "SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.pg_backend_pid()");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		one_line(errbuf, errlen, PQerrorMessage(conn));
		if (reason)
			*reason = "SELECT 1 failed";
		PQclear(res);
		db_describe(conn);
		PQfinish(conn);
		return ST_UNREACHABLE;
	}
	/*
	 * A pooler or proxy answers the startup with its own process id: the
	 * backend that runs our statements has another (lock.c then checks that
	 * the pooler keeps a session's advisory lock).
	 */
	if (atol(PQgetvalue(res, 0, 1)) != (long)PQbackendPID(conn))
		proxied = true;
	/* A standby cannot be migrated, but a failover may promote it: wait. */
	if (!standby_ok && strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
		one_line(
			errbuf, errlen,
			"the server is a hot standby: it accepts only read-only transactions until "
			"it is promoted");
		if (reason)
			*reason = "the server is a standby (in recovery)";
		PQclear(res);
		db_describe(conn);
		PQfinish(conn);
		return ST_UNREACHABLE;
	}
	PQclear(res);
	*out = conn;
	return ST_OK;
}

/* The last target described, kept so that messages after PQfinish can name it. */
static char target[256];

const char *db_describe(PGconn *conn)
{
	if (conn) {
		const char *host = PQhost(conn);
		const char *port = PQport(conn);
		const char *db = PQdb(conn);
		const char *user = PQuser(conn);
		if (host && host[0] == '/')
			snprintf(target, sizeof(target), "%s/.s.PGSQL.%s/%s as %s", host,
				 port ? port : "", db ? db : "", user ? user : "");
		else
			snprintf(target, sizeof(target), "%s:%s/%s as %s",
				 host && *host ? host : "localhost", port ? port : "", db ? db : "",
				 user ? user : "");
	}
	return target;
}

enum status db_wait(const struct config *cfg, PGconn **out)
{
	/* Exponential backoff up to 2 s, with jitter; a line at the first failure, then every 5 s. */
	struct waiter w = { .timeout_ms = cfg->wait_timeout_ms,
			    .backoff_ms = 100,
			    .backoff_max_ms = 2000,
			    .jitter = true,
			    .report_ms = 5000 };
	int attempts = 0;
	char err[512];
	const char *reason = NULL;
	enum status st;

	*out = NULL;
	waiter_start(&w);
	for (;;) {
		long left = cfg->wait_timeout_ms - waiter_elapsed(&w);
		attempts++;
		st = db_connect_once(cfg, left < 10000 ? left : 10000, out, &reason, err,
				     sizeof(err));
		if (st == ST_OK) {
			log_info("database %s is ready (%ld ms, %d attempt%s)", db_describe(*out),
				 waiter_elapsed(&w), attempts, attempts == 1 ? "" : "s");
			return ST_OK;
		}
		if (st == ST_SIGNAL)
			return st;
		if (st != ST_UNREACHABLE) {
			log_error("could not connect to %s: %s", db_describe(NULL), reason);
			log_detail("%s", err);
			if (st == ST_AUTH)
				log_hint(
					"Waiting cannot fix this: check the user, password, database name "
					"and SSL settings.");
			else if (st == ST_USAGE)
				log_hint("Check [database] url and the PG* environment variables.");
			return st;
		}
		if (waiter_elapsed(&w) >= cfg->wait_timeout_ms) {
			log_error("database %s still not reachable after %ld s: %s",
				  db_describe(NULL), waiter_elapsed(&w) / 1000, reason);
			log_detail("%s", err);
			log_hint(
				"Raise [database] wait_timeout if the server needs longer to start.");
			return ST_UNREACHABLE;
		}
		if (waiter_report_due(&w)) {
			log_info("waiting for database %s: %s (%.1f s elapsed)", db_describe(NULL),
				 reason, (double)waiter_elapsed(&w) / 1000.0);
			log_debug("%s", err);
		}
		st = waiter_sleep(&w);
		if (st != ST_OK)
			return st;
	}
}

enum status db_failure_status(PGconn *conn)
{
	return PQstatus(conn) == CONNECTION_BAD ? ST_CONNLOST : ST_SQL;
}

bool db_pos_to_linecol(const char *text, long pos, int *line, int *col)
{
	long ch = 0;
	int l = 1, c = 1;
	const unsigned char *p = (const unsigned char *)text;

	for (; *p; p++) {
		if ((*p & 0xC0) == 0x80)
			continue; /* UTF-8 continuation byte: same character */
		ch++;
		if (ch == pos) {
			*line = l;
			*col = c;
			return true;
		}
		if (*p == '\n') {
			l++;
			c = 1;
		} else {
			c++;
		}
	}
	*line = l;
	*col = c;
	return pos == ch + 1;
}

/* The file position of an error: the server's position in where->sent, else the statement's start. */
static void error_linecol(const PGresult *res, const struct db_where *where, int *line, int *col)
{
	const char *position = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);

	*line = 0;
	*col = 0;
	if (where && position && where->sent) {
		db_pos_to_linecol(where->sent, atol(position), line, col);
		if (where->sent_line > 1 || where->sent_col > 1) {
			if (*line == 1)
				*col += where->sent_col - 1;
			*line += where->sent_line - 1;
		}
	} else if (where && where->stmt_line > 0) {
		*line = where->stmt_line;
		*col = where->stmt_col;
	}
}

void db_report_error(const PGresult *res, const struct db_where *where)
{
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
	const char *context = PQresultErrorField(res, PG_DIAG_CONTEXT);
	const char *iquery = PQresultErrorField(res, PG_DIAG_INTERNAL_QUERY);
	const char *ipos = PQresultErrorField(res, PG_DIAG_INTERNAL_POSITION);
	const char *file = where ? where->file : NULL;
	int line = 0, col = 0;

	if (!msg) {
		/* No server error fields: the connection broke, libpq's text says why. */
		const char *m = PQresultErrorMessage(res);
		char buf[512];
		one_line(buf, sizeof(buf), m && *m ? m : "unknown error");
		if (where && where->stmt_line > 0)
			log_at(LOG_ERROR, file, where->stmt_line, where->stmt_col, "%s", buf);
		else if (file)
			log_at(LOG_ERROR, file, 0, 0, "%s", buf);
		else
			log_error("%s", buf);
		return;
	}
	error_linecol(res, where, &line, &col);
	if (file)
		log_at(LOG_ERROR, file, line, col, "%s (%s)", msg, state ? state : "?????");
	else
		log_error("%s (%s)", msg, state ? state : "?????");
	if (detail)
		log_detail("%s", detail);
	if (hint)
		log_hint("%s", hint);
	if (iquery) {
		if (ipos)
			log_msg(LOG_CONTEXT, "in internal query at character %s: %s", ipos, iquery);
		else
			log_msg(LOG_CONTEXT, "in internal query: %s", iquery);
	}
	if (context) {
		/* one log line per context line */
		const char *c = context;
		while (*c) {
			const char *e = strchr(c, '\n');
			int len = e ? (int)(e - c) : (int)strlen(c);
			if (len > 0)
				log_msg(LOG_CONTEXT, "%.*s", len, c);
			c += len + (e ? 1 : 0);
		}
	}
}

/* Ask the server to cancel the running statement (a stop signal arrived). */
static void cancel_query(PGconn *conn, const char *file)
{
	char err[256] = "";
	PGcancel *cancel = PQgetCancel(conn);

	log_warning("signal %d received: cancelling the running statement%s%s", init_stop_signal(),
		    file ? " of " : "", file ? file : "");
	if (!cancel || !PQcancel(cancel, err, sizeof(err)))
		log_warning("could not cancel the statement: %s", err[0] ? err : "out of memory");
	PQfreeCancel(cancel);
}

/*
 * Who holds the locks backend pid waits for: one phrase per session, from
 * the watching connection.  "" when it waits for no lock (or the query
 * fails: progress is best effort and must not stop the run).
 */
#define BLOCKERS_SQL                                                                                    \
	"(SELECT string_agg(format('pid %s (user %s, application \"%s\", %s, transaction started %s, "  \
	"query started %s: %s)', b.pid, coalesce(b.usename, '?'), coalesce(b.application_name, ''),"    \
	" coalesce(b.state, '?'), coalesce(to_char(b.xact_start, 'YYYY-MM-DD HH24:MI:SS.MS TZ'), '-')," \
	" coalesce(to_char(b.query_start, 'YYYY-MM-DD HH24:MI:SS.MS TZ'), '-'),"                        \
	" left(regexp_replace(coalesce(b.query, ''), '\\s+', ' ', 'g'), 80)), '; ' ORDER BY b.pid)"     \
	" FROM pg_stat_activity b WHERE b.pid = ANY (pg_blocking_pids($1::int)))"

/* Run a query on the watching connection; NULL (and a debug line) on any failure. */
static PGresult *watch_query(PGconn *watch, const char *sql, int pid)
{
	char param[24];
	const char *params[1] = { param };
	PGresult *res;

	if (!watch || PQstatus(watch) != CONNECTION_OK ||
	    PQtransactionStatus(watch) != PQTRANS_IDLE)
		return NULL;
	snprintf(param, sizeof(param), "%d", pid);
	res = PQexecParams(watch, sql, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		char buf[256];
		one_line(buf, sizeof(buf), PQerrorMessage(watch));
		log_debug("progress query failed: %s", buf);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* Note who holds the lock conn's backend waits for, if it waits for one. */
static void poll_blocker(struct db_run *run, PGconn *conn)
{
	PGresult *res = watch_query(run->watch, "SELECT " BLOCKERS_SQL, PQbackendPID(conn));

	if (!res)
		return;
	if (!PQgetisnull(res, 0, 0))
		snprintf(run->blocker, sizeof(run->blocker), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
}

/*
 * Log that the statement at line:col has run for elapsed_ms, and what it is
 * doing when that can be seen from run->watch.
 */
static void log_progress(struct db_run *run, PGconn *conn, int line, int col, long elapsed_ms)
{
	static const char sql[] =
		"SELECT a.wait_event_type, a.wait_event, p.phase, p.blocks_done, p.blocks_total,"
		"       p.tuples_done, p.tuples_total, p.lockers_done, p.lockers_total,"
		"       p.current_locker_pid, coalesce(nullif(p.index_relid, 0)::regclass::text, ''),"
		"       coalesce(p.relid::regclass::text, ''), " BLOCKERS_SQL ","
		"       (SELECT format('pid %s (%s, transaction started %s, query started %s)', l.pid,"
		"               coalesce(l.state, '?'),"
		"               coalesce(to_char(l.xact_start, 'YYYY-MM-DD HH24:MI:SS.MS TZ'), '-'),"
		"               coalesce(to_char(l.query_start, 'YYYY-MM-DD HH24:MI:SS.MS TZ'), '-'))"
		"          FROM pg_stat_activity l WHERE l.pid = p.current_locker_pid)"
		"  FROM pg_stat_activity a LEFT JOIN pg_stat_progress_create_index p ON p.pid = a.pid"
		" WHERE a.pid = $1::int";
	const char *file = run->file;
	double secs = (double)elapsed_ms / 1000.0;
	PGresult *res = watch_query(run->watch, sql, PQbackendPID(conn));

	if (!res) {
		log_at(LOG_INFO, file, line, col, "still running after %.0f s", secs);
		return;
	}
	if (!PQgetisnull(res, 0, 12))
		snprintf(run->blocker, sizeof(run->blocker), "%s", PQgetvalue(res, 0, 12));
	if (!PQgetisnull(res, 0, 2)) {
		/* an index build: its phase, and the work done in it */
		char work[160] = "";
		long long bdone = atoll(PQgetvalue(res, 0, 3)),
			  btotal = atoll(PQgetvalue(res, 0, 4));
		long long tdone = atoll(PQgetvalue(res, 0, 5)),
			  ttotal = atoll(PQgetvalue(res, 0, 6));
		long long ldone = atoll(PQgetvalue(res, 0, 7)),
			  ltotal = atoll(PQgetvalue(res, 0, 8));
		const char *index = PQgetvalue(res, 0, 10);
		if (btotal > 0)
			snprintf(work, sizeof(work), ", blocks %lld of %lld (%lld %%)", bdone,
				 btotal, bdone * 100 / btotal);
		else if (ttotal > 0)
			snprintf(work, sizeof(work), ", tuples %lld of %lld (%lld %%)", tdone,
				 ttotal, tdone * 100 / ttotal);
		else if (ltotal > 0)
			snprintf(work, sizeof(work), ", transactions %lld of %lld, now %s", ldone,
				 ltotal, PQgetisnull(res, 0, 13) ? "?" : PQgetvalue(res, 0, 13));
		log_at(LOG_INFO, file, line, col,
		       "still running after %.0f s: index %s%son %s: %s%s", secs, index,
		       *index ? " " : "", PQgetvalue(res, 0, 11), PQgetvalue(res, 0, 2), work);
	} else if (strcmp(PQgetvalue(res, 0, 0), "Lock") == 0) {
		log_at(LOG_INFO, file, line, col,
		       "still running after %.0f s: waiting for a %s lock held by %s", secs,
		       PQgetvalue(res, 0, 1),
		       PQgetisnull(res, 0, 12) ? "session not seen" : PQgetvalue(res, 0, 12));
	} else if (*PQgetvalue(res, 0, 0)) {
		log_at(LOG_INFO, file, line, col, "still running after %.0f s (waiting on %s: %s)",
		       secs, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
	} else {
		log_at(LOG_INFO, file, line, col, "still running after %.0f s", secs);
	}
	PQclear(res);
}

/* Where a running query stands, for await_result. */
struct waiting {
	bool cancelled;	    /* a stop signal arrived: the query was cancelled */
	long stmt_start;    /* when the statement whose result comes next started */
	long next_progress; /* when to log the next progress line */
	long next_poll;	    /* when to look for lock holders next (0: never) */
};

static void waiting_begin(struct waiting *w, const struct db_run *run)
{
	w->cancelled = false;
	w->stmt_start = clock_ms();
	w->next_progress = w->stmt_start + DB_PROGRESS_MS;
	w->next_poll = run->lock_poll_ms > 0 ? w->stmt_start + run->lock_poll_ms : 0;
}

/*
 * Wait until conn's next result can be read without blocking: a stop signal
 * cancels the query on the server (the result then comes as an error), and
 * progress lines (at line:col of run->file) and lock holders are looked for
 * as db_run says.  False when the connection broke.
 */
static bool await_result(PGconn *conn, struct db_run *run, struct waiting *w, int line, int col)
{
	while (PQisBusy(conn)) {
		long now = clock_ms();
		long wake = w->next_poll && w->next_poll < w->next_progress ? w->next_poll
									    : w->next_progress;
		int r = wait_fd(PQsocket(conn), POLLIN,
				w->cancelled ? -1 : (wake > now ? wake - now : 0));
		if (r < 0 && !w->cancelled) {
			cancel_query(conn, run->file);
			w->cancelled = true;
		}
		if (r > 0 && !PQconsumeInput(conn))
			return false;
		if (r != 0 || w->cancelled)
			continue;
		now = clock_ms();
		if (w->next_poll && now >= w->next_poll) {
			poll_blocker(run, conn);
			w->next_poll = clock_ms() + run->lock_poll_ms;
		}
		if (now >= w->next_progress) {
			log_progress(run, conn, line, col, now - w->stmt_start);
			w->next_progress = clock_ms() + DB_PROGRESS_MS;
		}
	}
	return true;
}

enum status db_run(PGconn *conn, const char *sql, struct db_run *run)
{
	enum status st = ST_OK;
	int index = 0; /* the statement whose result comes next */
	struct waiting w;
	int sent_line = run->sent_line > 0 ? run->sent_line : 1;
	int sent_col = run->sent_col > 0 ? run->sent_col : 1;
	/*
	 * The server sends the results of a script's statements only at its
	 * end: which one runs is known (for progress lines) for one statement only.
	 */
	int line = run->stmts && run->nstmts == 1 ? run->stmts[0].line : 0;
	int col = run->stmts && run->nstmts == 1 ? run->stmts[0].col : 0;
	PGresult *res;

	run->sqlstate[0] = '\0';
	run->message[0] = '\0';
	run->blocker[0] = '\0';
	run->err_line = run->err_col = 0;
	if (!PQsendQuery(conn, sql)) {
		char buf[sizeof(run->message)];
		one_line(buf, sizeof(buf), PQerrorMessage(conn));
		memcpy(run->message, buf, sizeof(buf));
		if (run->file)
			log_at(LOG_ERROR, run->file, sent_line, sent_col,
			       "could not send the statement: %s", buf);
		else
			log_error("could not send query: %s", buf);
		return db_failure_status(conn);
	}
	waiting_begin(&w, run);
	for (;;) {
		ExecStatusType rs;

		(void)await_result(conn, run, &w, line, col); /* a broken connection ends below */
		res = PQgetResult(conn);
		if (!res)
			break;
		rs = PQresultStatus(res);
		if (rs == PGRES_COPY_IN) {
			PQputCopyEnd(conn, "COPY FROM STDIN is not supported in migration files");
		} else if (rs == PGRES_COPY_OUT) {
			char *buf;
			while (PQgetCopyData(conn, &buf, 0) > 0)
				PQfreemem(buf);
		} else if (st == ST_OK && rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK &&
			   rs != PGRES_EMPTY_QUERY) {
			struct db_where where = { .file = run->file,
						  .sent = sql,
						  .sent_line = sent_line,
						  .sent_col = sent_col };
			const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
			if (run->stmts && index < run->nstmts) {
				where.stmt_line = run->stmts[index].line;
				where.stmt_col = run->stmts[index].col;
			}
			snprintf(run->sqlstate, sizeof(run->sqlstate), "%s", state ? state : "");
			if (msg)
				snprintf(run->message, sizeof(run->message), "%s", msg);
			else
				one_line(run->message, sizeof(run->message),
					 PQresultErrorMessage(res));
			error_linecol(res, &where, &run->err_line, &run->err_col);
			if (!w.cancelled &&
			    !(run->quiet_lock_timeout && strcmp(run->sqlstate, "55P03") == 0))
				db_report_error(res, &where);
			st = ST_SQL;
		}
		index++;
		w.stmt_start = clock_ms();
		w.next_progress = w.stmt_start + DB_PROGRESS_MS;
		PQclear(res);
	}
	if (w.cancelled)
		return ST_SIGNAL;
	if (st != ST_OK)
		st = db_failure_status(conn);
	return st;
}

enum status db_exec_script(PGconn *conn, const char *sql, const char *file,
			   const struct sql_stmt *stmts, int nstmts)
{
	struct db_run run = { .file = file, .stmts = stmts, .nstmts = nstmts };
	return db_run(conn, sql, &run);
}

enum status db_exec(PGconn *conn, const char *sql, const char *file)
{
	return db_exec_script(conn, sql, file, NULL, 0);
}

PGresult *db_query_run(PGconn *conn, const char *sql, int nparams, const char *const *params,
		       struct db_run *run, enum status *st)
{
	PGresult *res = NULL, *next;
	struct waiting w;

	run->blocker[0] = '\0';
	if (!PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0)) {
		char buf[256];
		one_line(buf, sizeof(buf), PQerrorMessage(conn));
		log_error("could not send query: %s", buf);
		*st = db_failure_status(conn);
		return NULL;
	}
	waiting_begin(&w, run);
	while (await_result(conn, run, &w, run->sent_line, run->sent_col) &&
	       (next = PQgetResult(conn)) != NULL) {
		PQclear(res);
		res = next;
	}
	while ((next = PQgetResult(conn)) != NULL) /* after a broken connection */
		PQclear(next);
	if (w.cancelled) {
		PQclear(res);
		*st = ST_SIGNAL;
		return NULL;
	}
	if (PQresultStatus(res) == PGRES_TUPLES_OK || PQresultStatus(res) == PGRES_COMMAND_OK) {
		*st = ST_OK;
		return res;
	}
	if (res)
		db_report_error(res, NULL);
	else
		log_error("query failed: %s", PQstatus(conn) == CONNECTION_BAD
						      ? "the connection was lost"
						      : "out of memory");
	PQclear(res);
	*st = db_failure_status(conn);
	return NULL;
}

PGresult *db_query(PGconn *conn, const char *sql, int nparams, const char *const *params,
		   enum status *st)
{
	struct db_run run = { 0 };
	return db_query_run(conn, sql, nparams, params, &run, st);
}

char *db_quote_ident(PGconn *conn, const char *name)
{
	char *q = PQescapeIdentifier(conn, name, strlen(name));
	char *copy;
	if (!q)
		return NULL;
	copy = strdup(q);
	PQfreemem(q);
	return copy;
}
