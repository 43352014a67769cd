/*
 * operate.h — the operators' commands that write the history without
 * running anything, under the migration lock: baseline (adopt an existing
 * database) and accept (acknowledge an applied file edited on purpose).
 */
#ifndef PGPRELUDE_OPERATE_H
#define PGPRELUDE_OPERATE_H

#include "config.h"
#include "status.h"

/*
 * Record the pending files of the dir phases as applied without running
 * them (outcome "baselined"): every phase, or only phase (may be NULL), up
 * to and including the file upto names (its name, phase/name or path as
 * shown; NULL: all).  Refuses, writing nothing, a file recorded with
 * another checksum or whose last run failed (ST_USAGE).  Constraint files
 * need no baseline: they converge by definition.  Logs; returns ST_OK or
 * the failure status.
 */
enum status operate_baseline(const struct config *cfg, const char *phase, const char *upto)
	__attribute__((warn_unused_result));

/*
 * For each of files (paths as shown, or any path to the same file): record
 * its new checksum without running it, keeping the previous checksum, who
 * accepted it and when.  Refuses, writing nothing, a file that is not
 * applied, or not changed (ST_USAGE).  Logs; returns ST_OK or the failure.
 */
enum status operate_accept(const struct config *cfg, const struct strv *files)
	__attribute__((warn_unused_result));

#endif
