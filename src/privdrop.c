#include "privdrop.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* Parse a whole decimal id; false if s is not one. */
static bool parse_id(const char *s, unsigned long *id)
{
	char *end;
	if (!*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	*id = strtoul(s, &end, 10);
	return errno == 0 && *end == '\0' && *id < 4294967295UL;
}

/* One line of a colon-separated database (passwd or group), split into its fields. */
struct db_line {
	char *buf; /* getline's buffer: lines of any length */
	size_t cap;
	char *fields[7]; /* point into buf; "" for the missing ones */
};

/* Read the next line of f that has at least 3 fields.  Returns false at the end. */
static bool db_next(FILE *f, struct db_line *l, int nfields)
{
	while (getline(&l->buf, &l->cap, f) >= 0) {
		char *p = l->buf;
		int n = 0;
		l->buf[strcspn(l->buf, "\n")] = '\0';
		while (n < nfields) {
			l->fields[n++] = p;
			p = strchr(p, ':');
			if (!p)
				break;
			*p++ = '\0';
		}
		if (n < 3)
			continue;
		for (int i = n; i < nfields; i++)
			l->fields[i] = "";
		return true;
	}
	return false;
}

/*
 * Find the line of a database whose first field is name, or (when name is
 * NULL) whose third field is id; its fields are left in l (free l->buf).
 * Returns true when found.
 */
static bool db_lookup(const char *path, const char *name, unsigned long id, struct db_line *l,
		      int nfields)
{
	FILE *f = fopen(path, "re");
	bool found = false;

	if (!f)
		return false;
	while (!found && db_next(f, l, nfields)) {
		if (name)
			found = strcmp(l->fields[0], name) == 0;
		else
			found = strtoul(l->fields[2], NULL, 10) == id && *l->fields[2];
	}
	fclose(f);
	return found;
}

static bool resolve_group(const char *spec, const char *root, gid_t *gid)
{
	struct db_line l = { 0 };
	char path[512];
	unsigned long id;
	bool found;

	if (parse_id(spec, &id)) {
		*gid = (gid_t)id;
		return true;
	}
	snprintf(path, sizeof(path), "%s/etc/group", root);
	found = db_lookup(path, spec, 0, &l, 4);
	if (found)
		*gid = (gid_t)strtoul(l.fields[2], NULL, 10);
	free(l.buf);
	return found;
}

/* The most supplementary groups the kernel takes (NGROUPS_MAX, 65536 on Linux). */
static int groups_max(void)
{
	long max = sysconf(_SC_NGROUPS_MAX);
	return max > 0 && max <= 65536 * 16 ? (int)max : 65536;
}

/* Add g to c's groups unless it is there already; false when the list is full. */
static bool add_group(struct creds *c, gid_t g, int *cap, int max)
{
	for (int i = 0; i < c->ngroups; i++)
		if (c->groups[i] == g)
			return true;
	if (c->ngroups >= max)
		return false;
	if (c->ngroups == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		c->groups = xrealloc(c->groups, (size_t)*cap * sizeof(gid_t));
	}
	c->groups[c->ngroups++] = g;
	return true;
}

/* Whether the comma-separated member list names user. */
static bool has_member(const char *members, const char *user)
{
	size_t len = strlen(user);

	for (const char *m = members; *m;) {
		size_t n = strcspn(m, ",");
		if (n == len && strncmp(m, user, len) == 0)
			return true;
		m += n;
		if (*m == ',')
			m++;
	}
	return false;
}

/*
 * Start c's groups with its primary group, then add the groups that list
 * user as a member (when user is not NULL), up to the kernel's limit: past
 * it, warn and keep the first ones.
 */
static void resolve_groups(const char *user, const char *root, struct creds *c)
{
	struct db_line l = { 0 };
	int cap = 0, max = groups_max(), dropped = 0;
	char path[512];
	FILE *f;

	c->ngroups = 0;
	add_group(c, c->gid, &cap, max);
	if (!user)
		return;
	snprintf(path, sizeof(path), "%s/etc/group", root);
	f = fopen(path, "re");
	if (!f)
		return;
	while (db_next(f, &l, 4))
		if (has_member(l.fields[3], user) &&
		    !add_group(c, (gid_t)strtoul(l.fields[2], NULL, 10), &cap, max))
			dropped++;
	fclose(f);
	free(l.buf);
	if (dropped)
		log_warning(
			"user \"%s\" is a member of %d more groups than the system allows (%d); "
			"the application runs without them",
			user, dropped, max);
}

enum status privdrop_resolve(const char *spec, const char *root, struct creds *out)
{
	struct db_line l = { 0 };
	char user[64], path[512];
	const char *group = strchr(spec, ':');
	unsigned long id;
	bool found;

	memset(out, 0, sizeof(*out));
	snprintf(out->spec, sizeof(out->spec), "%s", spec);
	snprintf(user, sizeof(user), "%.*s", group ? (int)(group - spec) : (int)strlen(spec), spec);
	if (!*user || (group && !group[1])) {
		log_error("invalid [exec] user \"%s\": give NAME, UID, NAME:GROUP or UID:GID",
			  spec);
		return ST_USAGE;
	}
	snprintf(path, sizeof(path), "%s/etc/passwd", root);
	if (parse_id(user, &id)) {
		found = db_lookup(path, NULL, id, &l, 7);
		out->uid = (uid_t)id;
		out->gid = found ? (gid_t)strtoul(l.fields[3], NULL, 10) : (gid_t)id;
	} else {
		found = db_lookup(path, user, 0, &l, 7);
		if (!found) {
			free(l.buf);
			log_error("unknown user \"%s\" in [exec] user: not in %s", user, path);
			log_hint("Add the user to the image, or give a numeric UID[:GID].");
			return ST_USAGE;
		}
		out->uid = (uid_t)strtoul(l.fields[2], NULL, 10);
		out->gid = (gid_t)strtoul(l.fields[3], NULL, 10);
	}
	/* No passwd entry, or an empty home field: "/", as su-exec and gosu do. */
	snprintf(out->home, sizeof(out->home), "%s", found && *l.fields[5] ? l.fields[5] : "/");
	if (group && !resolve_group(group + 1, root, &out->gid)) {
		free(l.buf);
		log_error("unknown group \"%s\" in [exec] user: not in %s/etc/group", group + 1,
			  root);
		return ST_USAGE;
	}
	/* A user with an explicit group gets only that group, as su-exec does. */
	resolve_groups(found && !group ? l.fields[0] : NULL, root, out);
	free(l.buf);
	return ST_OK;
}

void privdrop_free(struct creds *c)
{
	free(c->groups);
	c->groups = NULL;
	c->ngroups = 0;
}

int privdrop_apply(const struct creds *c)
{
	if (setgroups((size_t)c->ngroups, c->groups) != 0)
		return errno;
	if (setgid(c->gid) != 0)
		return errno;
	if (setuid(c->uid) != 0)
		return errno;
	if (c->uid != 0 && setuid(0) == 0)
		return EPERM;
	return 0;
}

void privdrop_report(const struct creds *c, int err)
{
	log_error("could not switch to user \"%s\" (uid %ld, gid %ld): %s", c->spec, (long)c->uid,
		  (long)c->gid, strerror(err));
	log_hint("Switching users needs pgprelude to start as root.");
}
