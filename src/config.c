/*
 * config.c — read and validate pgprelude's INI file (see config.h).
 *
 * inih does the tokenising, through inilines.c, which gives every key and
 * section its line, refuses over-long lines and stops at the first error.
 * A key's value is interpreted once it is complete (continuation lines
 * joined): expanded (expand.c), parsed (config_values.c) and stored;
 * messages about a value name the line of its key.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "expand.h"
#include "inilines.h"
#include "log.h"

#define MSG_MAX 512

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_';
}

char *config_expand(const char *s, char *errbuf, int errlen)
{
	char *out = NULL;

	expand_value(s, &out, errbuf, errlen);
	return out;
}

/* ---- the file's sections and keys ------------------------------------- */

enum sect {
	SECT_GLOBAL = 0,
	SECT_DATABASE,
	SECT_HISTORY,
	SECT_PHASE,
	SECT_EXEC,
	SECT__COUNT
};

static const char *const sect_names[SECT__COUNT] = {
	[SECT_GLOBAL] = "",	[SECT_DATABASE] = "database", [SECT_HISTORY] = "history",
	[SECT_PHASE] = "phase", [SECT_EXEC] = "exec",
};

static const char *const known_sections[] = { "database", "history", "phase", "exec", NULL };

enum key {
	K_LOG_FORMAT,
	K_LOG_LEVEL,
	K_TERMINATION_LOG,
	K_URL,
	K_WAIT_TIMEOUT,
	K_LOCK_WAIT_TIMEOUT,
	K_ROLE,
	K_TABLE,
	K_DIR,
	K_RUN,
	K_WAIT_FOR,
	K_WAIT_FOR_QUERY,
	K_TIMEOUT,
	K_EXPECT,
	K_EXPECT_QUERY,
	K_INPUTS,
	K_LOCK_TIMEOUT,
	K_STATEMENT_TIMEOUT,
	K_LOCK_RETRIES,
	K_OUT_OF_ORDER,
	K_COMMAND,
	K_MODE,
	K_USER,
	K__COUNT
};

#define KIND_BIT(k) (1u << (k))
#define KINDS_ALL (KIND_BIT(PHASE_DIR) | KIND_BIT(PHASE_RUN) | KIND_BIT(PHASE_WAIT_FOR))

struct key_def {
	const char *name;
	enum sect sect;
	enum phase_kind sets_kind; /* a kind key: the kind it gives the phase */
	unsigned applies;	   /* phase keys: KIND_BITs of the kinds it is for */
	bool multi_line;	   /* may continue on indented lines */
};

static const struct key_def key_defs[K__COUNT] = {
	[K_LOG_FORMAT] = { "log_format", SECT_GLOBAL, PHASE_NONE, 0, false },
	[K_LOG_LEVEL] = { "log_level", SECT_GLOBAL, PHASE_NONE, 0, false },
	[K_TERMINATION_LOG] = { "termination_log", SECT_GLOBAL, PHASE_NONE, 0, false },
	[K_URL] = { "url", SECT_DATABASE, PHASE_NONE, 0, true }, /* conninfo allows newlines */
	[K_WAIT_TIMEOUT] = { "wait_timeout", SECT_DATABASE, PHASE_NONE, 0, false },
	[K_LOCK_WAIT_TIMEOUT] = { "lock_wait_timeout", SECT_DATABASE, PHASE_NONE, 0, false },
	[K_ROLE] = { "role", SECT_DATABASE, PHASE_NONE, 0, false },
	[K_TABLE] = { "table", SECT_HISTORY, PHASE_NONE, 0, false },
	[K_DIR] = { "dir", SECT_PHASE, PHASE_DIR, KIND_BIT(PHASE_DIR), false },
	[K_RUN] = { "run", SECT_PHASE, PHASE_RUN, KIND_BIT(PHASE_RUN), true },
	[K_WAIT_FOR] = { "wait_for", SECT_PHASE, PHASE_WAIT_FOR, KIND_BIT(PHASE_WAIT_FOR), true },
	[K_WAIT_FOR_QUERY] = { "wait_for_query", SECT_PHASE, PHASE_WAIT_FOR,
			       KIND_BIT(PHASE_WAIT_FOR), true },
	[K_TIMEOUT] = { "timeout", SECT_PHASE, PHASE_NONE,
			KIND_BIT(PHASE_RUN) | KIND_BIT(PHASE_WAIT_FOR), false },
	[K_EXPECT] = { "expect", SECT_PHASE, PHASE_NONE, KINDS_ALL, true },
	[K_EXPECT_QUERY] = { "expect_query", SECT_PHASE, PHASE_NONE, KINDS_ALL, true },
	[K_INPUTS] = { "inputs", SECT_PHASE, PHASE_NONE, KIND_BIT(PHASE_RUN), true },
	[K_LOCK_TIMEOUT] = { "lock_timeout", SECT_PHASE, PHASE_NONE, KIND_BIT(PHASE_DIR), false },
	[K_STATEMENT_TIMEOUT] = { "statement_timeout", SECT_PHASE, PHASE_NONE, KIND_BIT(PHASE_DIR),
				  false },
	[K_LOCK_RETRIES] = { "lock_retries", SECT_PHASE, PHASE_NONE, KIND_BIT(PHASE_DIR), false },
	[K_OUT_OF_ORDER] = { "out_of_order", SECT_PHASE, PHASE_NONE, KIND_BIT(PHASE_DIR), false },
	[K_COMMAND] = { "command", SECT_EXEC, PHASE_NONE, 0, true },
	[K_MODE] = { "mode", SECT_EXEC, PHASE_NONE, 0, false },
	[K_USER] = { "user", SECT_EXEC, PHASE_NONE, 0, false },
};

static const char *const global_keys[] = { "log_format", "log_level", "termination_log", NULL };
static const char *const database_keys[] = { "url", "wait_timeout", "lock_wait_timeout", "role",
					     NULL };
static const char *const history_keys[] = { "table", NULL };
static const char *const phase_keys[] = {
	"dir",		"run",		"wait_for", "wait_for_query", "timeout",
	"expect",	"expect_query", "inputs",   "lock_timeout",   "statement_timeout",
	"lock_retries", "out_of_order", NULL
};
static const char *const exec_keys[] = { "command", "mode", "user", NULL };

static const char *const *const sect_keys[SECT__COUNT] = {
	[SECT_GLOBAL] = global_keys, [SECT_DATABASE] = database_keys, [SECT_HISTORY] = history_keys,
	[SECT_PHASE] = phase_keys,   [SECT_EXEC] = exec_keys,
};

static const char *const kind_names[] = { [PHASE_NONE] = "none",
					  [PHASE_DIR] = "dir",
					  [PHASE_RUN] = "run",
					  [PHASE_WAIT_FOR] = "wait_for" };

/* ---- the loader ------------------------------------------------------- */

struct loader {
	struct config *cfg;
	const char *path;
	char *base;	/* folder of the config file, or NULL for "." */
	int lineno;	/* of the section header or key being handled */
	enum status st; /* ST_OK until the first error */
	bool may_hint;	/* the error just logged may get a hint line */

	enum sect sect;		    /* the current section */
	int sect_seen[SECT__COUNT]; /* line of each non-phase section's header */
	int key_line[K__COUNT];	    /* keys seen in the current section */
	enum key kind_key;	    /* the key that gave the current phase its kind */

	int pend_key; /* the key whose value is being stored, or -1 */
	int pend_line;
	int pend_cont_line; /* its first continuation line, or 0 */
	const char *pend;   /* its value */
};

static struct phase *cur_phase(struct loader *ld)
{
	return ld->sect == SECT_PHASE ? &ld->cfg->phases[ld->cfg->n_phases - 1] : NULL;
}

/* "[database]", "[phase x]" or "the global section" for messages. */
static const char *sect_label(struct loader *ld, char *buf, size_t size)
{
	if (ld->sect == SECT_GLOBAL)
		snprintf(buf, size, "the global section");
	else if (ld->sect == SECT_PHASE)
		snprintf(buf, size, "[phase %s]", cur_phase(ld)->name);
	else
		snprintf(buf, size, "[%s]", sect_names[ld->sect]);
	return buf;
}

static void fail(struct loader *ld, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Log the one error line for the configuration and stop loading. */
static void fail(struct loader *ld, int line, const char *fmt, ...)
{
	char msg[MSG_MAX];
	va_list ap;

	if (ld->st != ST_OK)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_at(LOG_ERROR, ld->path, line, 0, "%s", msg);
	ld->st = ST_USAGE;
	ld->may_hint = true;
}

/* Like fail, for an error that is not about a line of the file. */
static void fail_plain(struct loader *ld, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fail_plain(struct loader *ld, const char *fmt, ...)
{
	char msg[MSG_MAX];
	va_list ap;

	if (ld->st != ST_OK)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_error("%s", msg);
	ld->st = ST_USAGE;
	ld->may_hint = true;
}

static void hint(struct loader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A hint line for the error fail() has just logged; at most one, and never without an error. */
static void hint(struct loader *ld, const char *fmt, ...)
{
	char msg[MSG_MAX];
	va_list ap;

	if (!ld->may_hint)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_hint("%s", msg);
	ld->may_hint = false;
}

static bool valid_phase_name(const char *s)
{
	for (; *s; s++)
		if (!is_name_char(*s) && *s != '-' && *s != '.')
			return false;
	return true;
}

/* An SQL identifier as written unquoted: a letter or "_", then letters, digits, "_"; at most 63 bytes. */
static bool valid_identifier(const char *s, size_t len)
{
	if (len == 0 || len > 63 || is_digit(s[0]))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_name_char(s[i]))
			return false;
	return true;
}

/* name or schema.name, each an identifier. */
static bool valid_table_name(const char *s)
{
	const char *dot = strchr(s, '.');

	if (!dot)
		return valid_identifier(s, strlen(s));
	return valid_identifier(s, (size_t)(dot - s)) && valid_identifier(dot + 1, strlen(dot + 1));
}

/* dir resolved against the config file's folder, without trailing slashes (malloc'd). */
static char *resolve_dir(const char *base, const char *dir)
{
	size_t len = strlen(dir);
	size_t size;
	char *out;

	while (len > 1 && dir[len - 1] == '/')
		len--;
	if (dir[0] == '/' || !base)
		return xstrndup(dir, len);
	size = strlen(base) + 1 + len + 1;
	out = xmalloc(size);
	snprintf(out, size, "%s%s%.*s", base, strcmp(base, "/") == 0 ? "" : "/", (int)len, dir);
	return out;
}

/* The folder of path ("/" for "/x.ini"), or NULL (meaning ".") when path has no slash. */
static char *config_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t len;

	if (!slash)
		return NULL;
	len = (size_t)(slash - path);
	while (len > 0 && path[len - 1] == '/')
		len--;
	return len == 0 ? xstrdup("/") : xstrndup(path, len);
}

/* True when every key of phase ph (but except) is for its kind; else logs the first that is not. */
static bool check_keys_fit_kind(struct loader *ld, struct phase *ph, enum key except)
{
	char label[MSG_MAX];
	for (int k = 0; k < K__COUNT; k++) {
		if (k == (int)except || ld->key_line[k] == 0 || key_defs[k].sect != SECT_PHASE)
			continue;
		if (key_defs[k].applies & KIND_BIT(ph->kind))
			continue;
		fail(ld, ld->key_line[k], "key \"%s\" does not apply to a %s phase in %s",
		     key_defs[k].name, kind_names[ph->kind], sect_label(ld, label, sizeof(label)));
		if (key_defs[k].applies == KIND_BIT(PHASE_DIR))
			hint(ld, "%s is only for dir phases", key_defs[k].name);
		else
			hint(ld, "%s is only for run and wait_for phases", key_defs[k].name);
		return false;
	}
	return true;
}

static bool set_duration(struct loader *ld, const char *value, long *dst)
{
	char label[MSG_MAX];
	if (config_parse_duration(value, dst))
		return true;
	fail(ld, ld->pend_line, "bad duration \"%s\" for %s in %s", value,
	     key_defs[ld->pend_key].name, sect_label(ld, label, sizeof(label)));
	hint(ld, "use a whole number with an optional unit ms, s, m or h, e.g. \"30s\" or \"5m\"");
	return false;
}

/* Whether a run or command value split into words; logs the error otherwise. */
static bool split_command(struct loader *ld, const char *value, struct strv *out, const char *what)
{
	const char *err = NULL;
	char label[MSG_MAX];

	if (config_split_words(value, out, &err))
		return true;
	fail(ld, ld->pend_line, "%s in %s of %s", err, what, sect_label(ld, label, sizeof(label)));
	return false;
}

/* Whether key k fits phase ph's kind (a kind key gives ph its kind).  Logs when not. */
static bool key_fits_phase(struct loader *ld, struct phase *ph, enum key k)
{
	if (key_defs[k].sets_kind != PHASE_NONE) {
		if (ph->kind != PHASE_NONE && ph->kind != key_defs[k].sets_kind) {
			fail(ld, ld->pend_line,
			     "phase \"%s\" has two kinds: \"%s\" here and \"%s\" on line %d",
			     ph->name, key_defs[k].name, key_defs[ld->kind_key].name,
			     ld->key_line[ld->kind_key]);
			hint(ld, "a phase does one thing: split it into two [phase NAME] sections");
			return false;
		}
		if (ph->kind == PHASE_NONE) {
			ph->kind = key_defs[k].sets_kind;
			ld->kind_key = k;
			return check_keys_fit_kind(ld, ph, k);
		}
	} else if (ph->kind != PHASE_NONE && !(key_defs[k].applies & KIND_BIT(ph->kind))) {
		check_keys_fit_kind(ld, ph, K__COUNT);
		return false;
	}
	return true;
}

/* Interpret the (expanded) value of a key of the current phase and store it in ph. */
static void store_phase_value(struct loader *ld, struct phase *ph, enum key k, const char *value)
{
	int line = ld->pend_line;
	char label[MSG_MAX];

	if (!key_fits_phase(ld, ph, k))
		return;
	switch (k) {
	case K_DIR:
		if (*value == '\0') {
			fail(ld, line, "dir is empty in %s", sect_label(ld, label, sizeof(label)));
			hint(ld,
			     "give the folder of the phase's migrations, e.g. \"dir = db-init\"");
			break;
		}
		ph->dir = resolve_dir(ld->base, value);
		break;
	case K_RUN:
		if (split_command(ld, value, &ph->argv, "run") && ph->argv.n == 0) {
			fail(ld, line, "run is empty in %s", sect_label(ld, label, sizeof(label)));
			hint(ld, "give the command to run, e.g. \"run = directus bootstrap\"");
		}
		break;
	case K_WAIT_FOR:
		config_split_list(value, &ph->relations);
		break;
	case K_WAIT_FOR_QUERY:
		if (*value)
			ph->query = xstrdup(value);
		break;
	case K_TIMEOUT:
		set_duration(ld, value, &ph->timeout_ms);
		break;
	case K_EXPECT:
		config_split_list(value, &ph->expect);
		if (ph->expect.n == 0 && strspn(value, " \t\r\n") < strlen(value))
			fail(ld, line, "expect = \"%s\" names no relation in %s", value,
			     sect_label(ld, label, sizeof(label)));
		break;
	case K_EXPECT_QUERY:
		free(ph->expect_query);
		ph->expect_query = *value ? xstrdup(value) : NULL;
		break;
	case K_INPUTS: {
		struct strv names = { 0 };
		config_split_list(value, &names);
		for (int i = 0; i < names.n; i++)
			strv_push(&ph->inputs, resolve_dir(ld->base, names.v[i]));
		strv_terminate(&ph->inputs);
		strv_free(&names);
		break;
	}
	case K_OUT_OF_ORDER:
		if (strcmp(value, "warn") == 0 || strcmp(value, "refuse") == 0) {
			ph->out_of_order_refuse = strcmp(value, "refuse") == 0;
		} else {
			fail(ld, line, "bad out_of_order \"%s\" in %s", value,
			     sect_label(ld, label, sizeof(label)));
			hint(ld, "use warn or refuse");
		}
		break;
	case K_LOCK_TIMEOUT:
		set_duration(ld, value, &ph->lock_timeout_ms);
		break;
	case K_STATEMENT_TIMEOUT:
		set_duration(ld, value, &ph->statement_timeout_ms);
		break;
	case K_LOCK_RETRIES: {
		char *end = NULL;
		long n = strtol(value, &end, 10);
		if (!is_digit(*value) || *end || n > 100) {
			fail(ld, ld->pend_line, "bad number \"%s\" for lock_retries in %s", value,
			     sect_label(ld, label, sizeof(label)));
			hint(ld, "use a whole number from 0 to 100");
		} else {
			ph->lock_retries = (int)n;
		}
		break;
	}
	default:
		break;
	}
}

/* Interpret the (expanded) value of a key outside [phase] sections and store it in cfg. */
static void store_value(struct loader *ld, enum key k, const char *value)
{
	struct config *cfg = ld->cfg;
	int line = ld->pend_line;
	int lvl;

	switch (k) {
	case K_LOG_FORMAT:
		if (strcasecmp(value, "text") == 0) {
			cfg->log_format = LOG_FORMAT_TEXT;
		} else if (strcasecmp(value, "json") == 0) {
			cfg->log_format = LOG_FORMAT_JSON;
		} else {
			fail(ld, line, "bad log_format \"%s\"", value);
			hint(ld, "use text or json");
		}
		break;
	case K_ROLE:
		free(cfg->db_role);
		cfg->db_role = *value ? xstrdup(value) : NULL;
		break;
	case K_TERMINATION_LOG:
		free(cfg->termination_log);
		cfg->termination_log = xstrdup(value);
		break;
	case K_LOG_LEVEL:
		lvl = log_level_parse(value);
		if (lvl < 0) {
			fail(ld, line, "bad log_level \"%s\"", value);
			hint(ld, "use debug, info, warning or error");
		} else {
			cfg->log_level = lvl;
		}
		break;
	case K_URL:
		free(cfg->db_url);
		cfg->db_url = xstrdup(value);
		break;
	case K_WAIT_TIMEOUT:
		set_duration(ld, value, &cfg->wait_timeout_ms);
		break;
	case K_LOCK_WAIT_TIMEOUT:
		set_duration(ld, value, &cfg->lock_wait_timeout_ms);
		break;
	case K_TABLE: {
		const char *dot = strchr(value, '.');
		if (!valid_table_name(value)) {
			fail(ld, line, "bad history table name \"%s\"", value);
			hint(ld, "use name or schema.name, with letters, digits and \"_\"");
			break;
		}
		free(cfg->history_schema);
		free(cfg->history_table);
		cfg->history_schema =
			dot ? xstrndup(value, (size_t)(dot - value)) : xstrdup("public");
		cfg->history_table = xstrdup(dot ? dot + 1 : value);
		break;
	}
	case K_COMMAND:
		strv_free(&cfg->exec_command);
		split_command(ld, value, &cfg->exec_command, "command");
		break;
	case K_MODE:
		if (strcmp(value, "auto") == 0) {
			cfg->exec_mode = EXEC_AUTO;
		} else if (strcmp(value, "exec") == 0) {
			cfg->exec_mode = EXEC_EXEC;
		} else if (strcmp(value, "supervise") == 0) {
			cfg->exec_mode = EXEC_SUPERVISE;
		} else {
			fail(ld, line, "bad mode \"%s\" in [exec]", value);
			hint(ld, "use auto, exec or supervise");
		}
		break;
	case K_USER:
		free(cfg->exec_user);
		cfg->exec_user = *value ? xstrdup(value) : NULL;
		break;
	default:
		break;
	}
}

/* The pending value is complete: expand it, interpret it, store it. */
static void commit_pending(struct loader *ld)
{
	struct phase *ph = cur_phase(ld);
	char err[MSG_MAX];
	char label[MSG_MAX];
	char *value = NULL;
	const char *raw;
	enum expand_result r;

	if (ld->pend_key < 0 || ld->st != ST_OK)
		return;
	if (ld->pend_cont_line && !key_defs[ld->pend_key].multi_line) {
		fail(ld, ld->pend_line, "%s in %s takes one line, but line %d continues it",
		     key_defs[ld->pend_key].name, sect_label(ld, label, sizeof(label)),
		     ld->pend_cont_line);
		hint(ld, "an indented line continues the value above it: remove the indentation");
		goto out;
	}
	raw = ld->pend;
	/* the url's substituted values are quoted for the connection string they land in */
	r = ld->pend_key == K_URL ? expand_conninfo(raw, &value, err, sizeof(err))
				  : expand_value(raw, &value, err, sizeof(err));
	if (r != EXPAND_OK) {
		fail(ld, ld->pend_line, "%s (in %s of %s)", err, key_defs[ld->pend_key].name,
		     sect_label(ld, label, sizeof(label)));
		if (r == EXPAND_UNSET) {
			/* err is "variable NAME is not set" */
			const char *name = err + strlen("variable ");
			const char *end = strstr(name, " is not set");
			int n = end ? (int)(end - name) : 4;
			if (!end)
				name = "NAME";
			hint(ld, "set %.*s, or give a default with ${%.*s:-default}", n, name, n,
			     name);
		}
		goto out;
	}
	/* kept as written too: its *_FILE secrets are read again at each connection attempt */
	if (ld->pend_key == K_URL) {
		free(ld->cfg->db_url_raw);
		ld->cfg->db_url_raw = xstrdup(raw);
	}
	if (ph)
		store_phase_value(ld, ph, (enum key)ld->pend_key, value);
	else
		store_value(ld, (enum key)ld->pend_key, value);
out:
	if (value)
		explicit_bzero(value, strlen(value));
	free(value);
	ld->pend = NULL;
	ld->pend_key = -1;
}

/* The current section ends (at a new header or the end of the file). */
static void close_section(struct loader *ld)
{
	struct phase *ph = cur_phase(ld);

	if (!ph || ld->st != ST_OK)
		return;
	if (ph->kind == PHASE_NONE) {
		fail(ld, ph->line, "phase \"%s\" has no kind: give one of dir, run, wait_for",
		     ph->name);
		return;
	}
	if (ph->kind == PHASE_WAIT_FOR && ph->relations.n == 0 && !ph->query) {
		int line = ld->key_line[K_WAIT_FOR] ? ld->key_line[K_WAIT_FOR]
						    : ld->key_line[K_WAIT_FOR_QUERY];
		fail(ld, line, "phase \"%s\" has nothing to wait for", ph->name);
		hint(ld, "give relations in wait_for, or a query in wait_for_query");
	}
}

static void open_phase(struct loader *ld, const char *name, size_t len)
{
	struct config *cfg = ld->cfg;
	struct phase *phases;
	char *copy = xstrndup(name, len);

	if (!valid_phase_name(copy)) {
		fail(ld, ld->lineno, "bad phase name \"%s\"", copy);
		hint(ld, "a phase name may use letters, digits, \"_\", \"-\" and \".\"");
		free(copy);
		return;
	}
	for (int i = 0; i < cfg->n_phases; i++) {
		if (strcmp(cfg->phases[i].name, copy) == 0) {
			fail(ld, ld->lineno, "duplicate phase \"%s\" (first on line %d)", copy,
			     cfg->phases[i].line);
			free(copy);
			return;
		}
	}
	phases = xrealloc(cfg->phases, ((size_t)cfg->n_phases + 1) * sizeof(*phases));
	cfg->phases = phases;
	phases[cfg->n_phases++] = (struct phase){
		.name = copy,
		.line = ld->lineno,
		.kind = PHASE_NONE,
		.timeout_ms = 10L * 60 * 1000,
		.lock_timeout_ms = 5000,
		.statement_timeout_ms = 0,
		.lock_retries = 5,
	};
}

/* A [section] header (text: what is between the brackets, trimmed): validate it, make it current. */
static void open_section(struct loader *ld, const char *text)
{
	const char *word, *arg;
	size_t word_len, arg_len, len = strlen(text);
	enum sect sect = SECT__COUNT;

	word = text;
	for (word_len = 0; word_len < len && !isspace((unsigned char)word[word_len]); word_len++)
		;
	arg = word + word_len;
	arg_len = len - word_len;
	while (arg_len > 0 && isspace((unsigned char)*arg)) {
		arg++;
		arg_len--;
	}
	for (int s = SECT_DATABASE; s < SECT__COUNT; s++)
		if (strlen(sect_names[s]) == word_len &&
		    strncmp(word, sect_names[s], word_len) == 0)
			sect = (enum sect)s;

	if (sect == SECT__COUNT) {
		char *w = xstrndup(word, word_len);
		const char *near;
		fail(ld, ld->lineno, "unknown section [%.*s]", (int)len, text);
		near = config_suggest(w, known_sections);
		if (near && strcmp(near, "phase") == 0)
			hint(ld, "did you mean [phase %.*s]?", (int)arg_len, arg);
		else if (near)
			hint(ld, "did you mean [%s]?", near);
		else
			hint(ld, "the sections are [database], [history], [phase NAME] and [exec]");
		free(w);
		return;
	}
	if (sect == SECT_PHASE && arg_len == 0) {
		fail(ld, ld->lineno, "phase without a name");
		hint(ld, "write [phase NAME], e.g. [phase schema]");
		return;
	}
	if (sect != SECT_PHASE && arg_len > 0) {
		fail(ld, ld->lineno, "section [%s] takes no name", sect_names[sect]);
		return;
	}
	if (sect != SECT_PHASE && ld->sect_seen[sect]) {
		fail(ld, ld->lineno, "duplicate section [%s] (first on line %d)", sect_names[sect],
		     ld->sect_seen[sect]);
		return;
	}
	if (sect == SECT_PHASE) {
		open_phase(ld, arg, arg_len);
		if (ld->st != ST_OK)
			return;
	} else {
		ld->sect_seen[sect] = ld->lineno;
	}
	ld->sect = sect;
	memset(ld->key_line, 0, sizeof(ld->key_line));
}

static bool on_section(void *user, const char *name, int line)
{
	struct loader *ld = user;

	close_section(ld);
	ld->lineno = line;
	if (ld->st == ST_OK)
		open_section(ld, name);
	return ld->st == ST_OK;
}

static bool on_key(void *user, const char *name, const char *value, int line, int cont_line)
{
	struct loader *ld = user;
	char label[MSG_MAX];
	int k;

	ld->lineno = line;
	for (k = 0; k < K__COUNT; k++)
		if (key_defs[k].sect == ld->sect && strcmp(key_defs[k].name, name) == 0)
			break;
	if (k == K__COUNT) {
		if (ld->sect == SECT_GLOBAL)
			fail(ld, line,
			     "unknown key \"%s\" at the top of the file (before any section)",
			     name);
		else
			fail(ld, line, "unknown key \"%s\" in %s", name,
			     sect_label(ld, label, sizeof(label)));
		const char *near = config_suggest(name, sect_keys[ld->sect]);
		if (near) {
			hint(ld, "did you mean \"%s\"?", near);
			return false;
		}
		for (int j = 0; j < K__COUNT; j++) {
			if (strcmp(key_defs[j].name, name) != 0)
				continue;
			if (key_defs[j].sect == SECT_GLOBAL)
				hint(ld, "%s belongs at the top of the file, before any section",
				     name);
			else if (key_defs[j].sect == SECT_PHASE)
				hint(ld, "%s belongs in a [phase NAME] section", name);
			else
				hint(ld, "%s belongs in [%s]", name, sect_names[key_defs[j].sect]);
			break;
		}
		return false;
	}
	if (ld->key_line[k]) {
		fail(ld, line, "duplicate key \"%s\" in %s (first on line %d)", name,
		     sect_label(ld, label, sizeof(label)), ld->key_line[k]);
		hint(ld, "to continue a value on the next line, indent that line");
		return false;
	}
	ld->key_line[k] = line;
	ld->pend_key = k;
	ld->pend_line = line;
	ld->pend_cont_line = cont_line;
	ld->pend = value;
	commit_pending(ld);
	return ld->st == ST_OK;
}

/* The whole file (*len bytes, NUL-terminated, malloc'd), or NULL after logging. */
static char *read_config_file(struct loader *ld, size_t *len)
{
	FILE *fp = fopen(ld->path, "re");
	struct sbuf text = { 0 };
	char chunk[8192];
	size_t got;

	if (!fp) {
		fail_plain(ld, "could not open configuration file \"%s\": %s", ld->path,
			   strerror(errno));
		return NULL;
	}
	while ((got = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		sbuf_putn(&text, chunk, got);
	if (ferror(fp))
		fail_plain(ld, "could not read configuration file \"%s\": %s", ld->path,
			   strerror(errno));
	fclose(fp);
	if (ld->st != ST_OK) {
		sbuf_reset(&text);
		return NULL;
	}
	*len = text.len;
	return sbuf_take(&text);
}

/* PGPASSWORD_FILE, for libpq, when PGPASSWORD is not set. */
enum status config_secrets_now(const struct config *cfg, char **url, char **password, char *err,
			       size_t errlen)
{
	const char *file = getenv("PGPASSWORD_FILE");
	const char *why;

	*url = *password = NULL;
	if (cfg->db_url_raw && strchr(cfg->db_url_raw, '$') &&
	    expand_conninfo(cfg->db_url_raw, url, err, (int)errlen) != EXPAND_OK)
		return ST_UNREACHABLE;
	if (getenv("PGPASSWORD") || !file || !*file)
		return ST_OK;
	why = expand_read_secret(file, password);
	if (why) {
		snprintf(err, errlen, "could not read PGPASSWORD_FILE \"%s\": %s", file, why);
		free(*url);
		*url = NULL;
		return ST_UNREACHABLE;
	}
	return ST_OK;
}

static void load_password(struct loader *ld)
{
	const char *file = getenv("PGPASSWORD_FILE");
	const char *why;

	if (getenv("PGPASSWORD") || !file || !*file)
		return;
	why = expand_read_secret(file, &ld->cfg->db_password);
	if (why)
		fail_plain(ld, "could not read PGPASSWORD_FILE \"%s\": %s", file, why);
}

enum status config_load(const char *path, struct config *cfg)
{
	static const struct inil_ops ops = { .section = on_section, .key = on_key };
	struct loader ld = { .cfg = cfg, .path = path, .pend_key = -1, .st = ST_OK };
	char *text = NULL;
	size_t len = 0;
	enum status st;

	memset(cfg, 0, sizeof(*cfg));
	cfg->log_format = LOG_FORMAT_TEXT;
	cfg->log_level = LOG_INFO;
	cfg->wait_timeout_ms = 60L * 1000;
	cfg->lock_wait_timeout_ms = 5L * 60 * 1000;
	cfg->path = xstrdup(path);
	/* its own schema: a schema tool may drop what it does not know in public */
	cfg->history_schema = xstrdup("pgprelude");
	cfg->history_table = xstrdup("history");
	cfg->termination_log = xstrdup(CONFIG_TERMINATION_LOG);
	ld.base = config_dirname(path);

	text = read_config_file(&ld, &len);
	if (!text)
		goto out;
	st = inil_parse_text(text, len, path, &ops, &ld);
	if (ld.st == ST_OK) /* else the callbacks said why */
		ld.st = st;
	close_section(&ld);
	if (ld.st == ST_OK)
		load_password(&ld);
out:
	free(text);
	free(ld.base);
	if (ld.st != ST_OK)
		config_free(cfg);
	return ld.st;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (int i = 0; cfg->phases && i < cfg->n_phases; i++) {
		struct phase *ph = &cfg->phases[i];
		free(ph->name);
		free(ph->dir);
		strv_free(&ph->argv);
		strv_free(&ph->relations);
		free(ph->query);
		strv_free(&ph->expect);
		free(ph->expect_query);
		strv_free(&ph->inputs);
	}
	free(cfg->phases);
	free(cfg->path);
	free(cfg->db_url);
	if (cfg->db_url_raw)
		explicit_bzero(cfg->db_url_raw, strlen(cfg->db_url_raw));
	free(cfg->db_url_raw);
	if (cfg->db_password)
		explicit_bzero(cfg->db_password, strlen(cfg->db_password));
	free(cfg->db_password);
	free(cfg->history_schema);
	free(cfg->history_table);
	strv_free(&cfg->exec_command);
	free(cfg->exec_user);
	free(cfg->termination_log);
	free(cfg->db_role);
	memset(cfg, 0, sizeof(*cfg));
}
