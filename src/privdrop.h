/*
 * privdrop.h — switch to another user before the hand-over, as su-exec does:
 * setgroups, setgid, setuid.  Names are looked up in /etc/passwd and
 * /etc/group directly (no NSS), which is what a BusyBox image has and what a
 * static binary can rely on.
 */
#ifndef PGPRELUDE_PRIVDROP_H
#define PGPRELUDE_PRIVDROP_H

#include <stdbool.h>
#include <sys/types.h>

#include "status.h"

#define PRIVDROP_MAX_GROUPS 64

struct creds {
	uid_t uid;
	gid_t gid;
	gid_t groups[PRIVDROP_MAX_GROUPS]; /* supplementary groups, the primary one first */
	int ngroups;
	char home[256]; /* "" when unknown */
	char spec[64];	/* as configured, for messages */
};

/*
 * Resolve "NAME", "UID", "NAME:GROUP" or "UID:GID" (a numeric user that is
 * not in /etc/passwd gets its own number as group).  root may be given a
 * prefix other than "/" for the two files ("" normally).  Returns ST_OK, or
 * ST_USAGE after logging an unknown user or group.
 */
enum status privdrop_resolve(const char *spec, const char *root, struct creds *out)
	__attribute__((warn_unused_result));

/*
 * Apply creds to the calling process: setgroups, setgid, setuid, in that
 * order.  Async-signal-safe (for a child between fork and exec).  Returns 0
 * or the errno of the call that failed; when the target is not root, also
 * fails with EPERM if root could be regained afterwards.
 */
int privdrop_apply(const struct creds *c);

/* Log that applying c failed with err (from privdrop_apply). */
void privdrop_report(const struct creds *c, int err);

#endif
