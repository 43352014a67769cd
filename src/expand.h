/*
 * expand.h — ${VAR} expansion of configuration values, and *_FILE secrets.
 *
 * ${VAR} is getenv("VAR"); when VAR is unset and VAR_FILE names a file, the
 * file's content without one trailing "\n" or "\r\n".  ${VAR:-default} uses
 * default (itself expanded) when VAR is unset or empty.  "$$" yields "$";
 * a "$" not followed by "{" is kept as is.
 *
 * Pure but for getenv and reading the files that *_FILE variables name;
 * logs nothing (a value or a file may hold a password).
 */
#ifndef PGPRELUDE_EXPAND_H
#define PGPRELUDE_EXPAND_H

enum expand_result {
	EXPAND_OK = 0,
	EXPAND_SYNTAX, /* unterminated or malformed ${...}, or defaults nested too deep */
	EXPAND_UNSET,  /* a variable is not set and has no default */
	EXPAND_FILE    /* VAR_FILE could not be read */
};

/*
 * Expand s.  EXPAND_OK: *out is a malloc'd string the caller frees (and
 * should wipe: it may hold a secret).  Otherwise *out is NULL and errbuf
 * (errlen bytes) holds a one-line message: "unterminated ${", "variable X
 * is not set", "could not read X_FILE \"path\": reason", ...
 */
enum expand_result expand_value(const char *s, char **out, char *errbuf, int errlen);

/*
 * expand_value for a libpq connection string ([database] url): every
 * substituted value is quoted for the syntax it lands in, so that a
 * password holding blanks, quotes, backslashes, "@", "%" or "=" reaches the
 * server as it is.  In a URI (postgresql://...) it is percent-encoded,
 * except in the host list; in key=value syntax it is backslash-escaped, or
 * single-quoted when it is a value of its own.  A reference that makes up
 * the whole value (url = ${DATABASE_URL}) holds a whole connection string
 * and is kept as is.
 */
enum expand_result expand_conninfo(const char *s, char **out, char *errbuf, int errlen);

/*
 * Read the secret file at path into *out (malloc'd, caller frees) without
 * one trailing "\n" or "\r\n".  Returns NULL, or why the file could not be
 * read (strerror's text, or a static message for a NUL byte or a file
 * larger than 1 MiB) with *out NULL.
 */
const char *expand_read_secret(const char *path, char **out);

#endif
