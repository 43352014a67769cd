/*
 * cdigest.h — what lets a start with nothing to do skip checking a
 * constraint file spec by spec: the digest of everything that checking it
 * reads, recorded in the history (outcome HISTORY_CONVERGED, keyed by the
 * file's phase and name) whenever the file was converged under the lock.
 *
 * The digest is a SHA-256, computed by the server in one query that writes
 * nothing, over pgprelude's version, the server's, the file's checksum, and
 * for every table the file names: which relation the name resolves to, and
 * the catalog rows of the table, its columns, its indexes and its
 * constraints, and of the foreign keys that reference it.  A start that
 * finds the digest it recorded knows that every declared constraint is
 * still as converging left it; any DDL on those tables (or a changed file,
 * or another version of pgprelude or the server) changes the digest, and the
 * file is checked spec by spec as before.
 */
#ifndef PGPRELUDE_CDIGEST_H
#define PGPRELUDE_CDIGEST_H

#include <stdbool.h>
#include <libpq-fe.h>

#include "status.h"

struct history;
struct mfile;

/*
 * The digest of constraint file f (FILE_DECLARED) on conn into out (64 hex
 * digits; "" when the server is older than PostgreSQL 11, which cannot
 * compute it).  ST_OK, or the failed query's status after logging.
 */
enum status cdigest_compute(const struct mfile *f, PGconn *conn, char out[65])
	__attribute__((warn_unused_result));

/*
 * Whether f of phase is known converged: the history records a digest for
 * it and the catalog still gives that digest.  The digest read is left in
 * now ("" when none could be), for cdigest_record after f was checked.
 * false also when the query fails (*st its status, after logging; else *st
 * is left alone).
 */
bool cdigest_unchanged(const struct mfile *f, const char *phase, const struct history *h,
		       PGconn *conn, char now[65], enum status *st);

/*
 * After f of phase was found converged (checked spec by spec, or converged
 * under the lock): record its digest in h unless that one is recorded
 * already.  before: the digest read before it was checked (cdigest_unchanged)
 * when it was checked without the lock; nothing is recorded unless the
 * catalog still gives it (a change meanwhile may not have been checked).
 * Under the lock (NULL before) the history table is made if need be; without
 * it a missing table is left missing.  ST_OK, or the failure's status after
 * logging.
 */
enum status cdigest_record(const struct mfile *f, const char *phase, struct history *h,
			   PGconn *conn, const char *before) __attribute__((warn_unused_result));

#endif
