/*
 * apply.h — running one SQL file of a dir phase (migrate.h) on the work
 * connection, and recording it in the history.
 */
#ifndef PGPRELUDE_APPLY_H
#define PGPRELUDE_APPLY_H

#include <libpq-fe.h>

#include "history.h"
#include "migrate.h"
#include "status.h"

/*
 * Run file f of plan (FILE_PENDING, FILE_RERUN or FILE_FAILED) on conn, the
 * work connection, holding the work lock, the history table h existing, and
 * record it; as migrate_apply describes.  A FILE_FAILED file's last failure
 * is reported first.  watch is the idle lock connection (may be NULL).
 * Returns ST_OK, or the failure status after logging it.
 */
enum status apply_file(const struct mplan *plan, const struct mfile *f, struct history *h,
		       PGconn *conn, PGconn *watch) __attribute__((warn_unused_result));

#endif
