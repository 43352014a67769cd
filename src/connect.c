/*
 * connect.c — connecting to the database (see db.h): the connection
 * string, one attempt with its failure classified, the wait for a server
 * that is not ready yet, and what is done while the server is busy.
 */
#include "db.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "log.h"
#include "util.h"
#include "wait.h"

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

/* Start connecting to cfg's database (libpq's connect_timeout in whole seconds, at least 2). */
static PGconn *start(const struct config *cfg, long connect_timeout_ms, const char *url,
		     const char *password)
{
	const char *keys[8];
	const char *vals[8];
	char timeout[24];
	char appname[64];
	char host[48] = "";
	int n = 0;
	PGconn *conn;

	gethostname(host, sizeof(host) - 1);
	snprintf(appname, sizeof(appname), "pgprelude/%s", host);
	snprintf(timeout, sizeof(timeout), "%ld",
		 connect_timeout_ms < 2000 ? 2 : connect_timeout_ms / 1000);
	if (!url)
		url = cfg->db_url;
	if (!password)
		password = cfg->db_password;
	if (url && *url) {
		keys[n] = "dbname";
		vals[n++] = url;
	}
	if (password && !(url && url_has_password(url))) {
		keys[n] = "password";
		vals[n++] = password;
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
	/* The server's login errors then carry their SQLSTATE (classify). */
	if (conn)
		PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);
	return conn;
}

/*
 * Poll the connection ourselves, so that a stop signal ends the attempt at
 * once.  False on a stop signal.
 */
static bool poll_connect(PGconn *conn)
{
	for (PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
	     PQstatus(conn) != CONNECTION_BAD && ps != PGRES_POLLING_OK &&
	     ps != PGRES_POLLING_FAILED;) {
		if (ps == PGRES_POLLING_READING)
			use_server_time(conn);
		if (wait_fd(PQsocket(conn), ps == PGRES_POLLING_READING ? POLLIN : POLLOUT, -1) < 0)
			return false;
		ps = PQconnectPoll(conn);
	}
	return true;
}

/*
 * The first query of a session, in the round trip SELECT 1 would take: is
 * the server a standby, and does a pooler or proxy stand between (it answers
 * the startup with its own process id: the backend has another; lock.c then
 * checks that it keeps a session's advisory lock).  Returns ST_OK, or
 * ST_UNREACHABLE with *why and errbuf filled.
 */
static enum status check_server(PGconn *conn, const char **why, char *errbuf, size_t errlen)
{
	/* no idle timeout of the role may end pgprelude's sessions (the lock's above all) */
	PGresult *res = PQexec(
		conn,
		PQserverVersion(conn) >= 140000
			? "SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.pg_backend_pid(),"
			  " pg_catalog.set_config('idle_in_transaction_session_timeout', '0', false),"
			  " pg_catalog.set_config('idle_session_timeout', '0', false)"
			: "SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.pg_backend_pid(),"
			  " pg_catalog.set_config('idle_in_transaction_session_timeout', '0', false)");
	enum status st = ST_OK;

	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		one_line(errbuf, errlen, PQerrorMessage(conn));
		*why = "SELECT 1 failed";
		st = ST_UNREACHABLE;
	} else if (!standby_ok && strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
		/* A standby cannot be migrated, but a failover may promote it: wait. */
		one_line(
			errbuf, errlen,
			"the server is a hot standby: it accepts only read-only transactions until "
			"it is promoted");
		*why = "the server is a standby (in recovery)";
		st = ST_UNREACHABLE;
	} else if (atol(PQgetvalue(res, 0, 1)) != (long)PQbackendPID(conn)) {
		proxied = true;
	}
	PQclear(res);
	return st;
}

/* Wipe and free a string that may hold a secret. */
static void wipe(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

enum status db_connect_once(const struct config *cfg, long connect_timeout_ms, PGconn **out,
			    const char **reason, char *errbuf, size_t errlen)
{
	char *url = NULL, *password = NULL;
	const char *why = "unknown";
	enum status st = ST_OK;
	PGconn *conn;

	*out = NULL;
	/* secrets as they are now: a rotated token is picked up at the next attempt */
	if (config_secrets_now(cfg, &url, &password, errbuf, errlen) != ST_OK) {
		if (reason)
			*reason = "a secret file cannot be read";
		return ST_UNREACHABLE;
	}
	conn = start(cfg, connect_timeout_ms, url, password);
	wipe(url);
	wipe(password);
	if (!conn) {
		one_line(errbuf, errlen, "out of memory");
		why = "out of memory";
		st = ST_INTERNAL;
	} else if (!poll_connect(conn)) {
		one_line(errbuf, errlen, "interrupted by a signal");
		why = "interrupted";
		st = ST_SIGNAL;
	} else if (PQstatus(conn) != CONNECTION_OK) {
		char state[6], terse[1024];
		startup_sqlstate(PQerrorMessage(conn), state);
		terse_message(PQerrorMessage(conn), terse, sizeof(terse));
		one_line(errbuf, errlen, terse);
		st = classify(terse, state, &why);
	} else {
		PQsetErrorVerbosity(conn, PQERRORS_DEFAULT);
		PQsetNoticeReceiver(conn, db_notice_receiver, NULL);
		st = check_server(conn, &why, errbuf, errlen);
	}
	if (reason && st != ST_OK)
		*reason = why;
	if (st == ST_OK) {
		*out = conn;
		return ST_OK;
	}
	/* keep the description of the target for the caller's messages */
	if (conn && st != ST_SIGNAL)
		db_describe(conn);
	PQfinish(conn);
	return st;
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
