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

struct creds {
	uid_t uid;
	gid_t gid;
	gid_t *groups; /* supplementary groups, the primary one first (privdrop_free) */
	int ngroups;
	char home[256]; /* from /etc/passwd; "/" when the user has none */
	char spec[64];	/* as configured, for messages */
};

/*
 * Resolve "NAME", "UID", "NAME:GROUP" or "UID:GID" (a numeric user that is
 * not in /etc/passwd gets its own number as group, and "/" as home).  A
 * user without an explicit group also gets every group of /etc/group that
 * lists it as a member, up to the system's limit (a warning says how many
 * more there were).  Lines may be of any length.  root may be given a
 * prefix other than "/" for the two files ("" normally).  Returns ST_OK
 * (free with privdrop_free), or ST_USAGE after logging an unknown user or
 * group (nothing to free).
 */
enum status privdrop_resolve(const char *spec, const char *root, struct creds *out)
	__attribute__((warn_unused_result));

/* Free what privdrop_resolve allocated in c (nothing when c is all zero). */
void privdrop_free(struct creds *c);

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
