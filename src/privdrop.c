#include "privdrop.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

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

/*
 * Find the line of a colon-separated database (passwd or group) whose first
 * field is name, or (when name is NULL) whose third field is id.  The fields
 * of the match are stored in fields (pointing into line).  Returns true when
 * found.
 */
static bool db_lookup(const char *path, const char *name, unsigned long id, char *line, size_t len,
		      char *fields[7], int nfields)
{
	FILE *f = fopen(path, "re");
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, (int)len, f)) {
		char *p = line;
		int n = 0;
		line[strcspn(line, "\n")] = '\0';
		while (n < nfields) {
			fields[n++] = p;
			p = strchr(p, ':');
			if (!p)
				break;
			*p++ = '\0';
		}
		if (n < 3)
			continue;
		for (int i = n; i < nfields; i++)
			fields[i] = "";
		if (name)
			found = strcmp(fields[0], name) == 0;
		else
			found = strtoul(fields[2], NULL, 10) == id && *fields[2];
	}
	fclose(f);
	return found;
}

static bool resolve_group(const char *spec, const char *root, gid_t *gid)
{
	char path[512], line[4096];
	char *fields[7];
	unsigned long id;

	if (parse_id(spec, &id)) {
		*gid = (gid_t)id;
		return true;
	}
	snprintf(path, sizeof(path), "%s/etc/group", root);
	if (!db_lookup(path, spec, 0, line, sizeof(line), fields, 4))
		return false;
	*gid = (gid_t)strtoul(fields[2], NULL, 10);
	return true;
}

/* Add the groups that list user as a member. */
static void add_member_groups(const char *user, const char *root, struct creds *c)
{
	char path[512], line[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/etc/group", root);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f) && c->ngroups < PRIVDROP_MAX_GROUPS) {
		char *fields[4] = { 0 };
		char *p = line;
		int n = 0;
		line[strcspn(line, "\n")] = '\0';
		while (n < 4 && p) {
			fields[n++] = p;
			p = strchr(p, ':');
			if (p)
				*p++ = '\0';
		}
		if (n < 4)
			continue;
		for (char *m = strtok(fields[3], ","); m; m = strtok(NULL, ",")) {
			if (strcmp(m, user) == 0) {
				gid_t g = (gid_t)strtoul(fields[2], NULL, 10);
				bool dup = false;
				for (int i = 0; i < c->ngroups; i++)
					dup = dup || c->groups[i] == g;
				if (!dup)
					c->groups[c->ngroups++] = g;
				break;
			}
		}
	}
	fclose(f);
}

enum status privdrop_resolve(const char *spec, const char *root, struct creds *out)
{
	char user[64], path[512], line[4096];
	char *fields[7];
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
		found = db_lookup(path, NULL, id, line, sizeof(line), fields, 7);
		out->uid = (uid_t)id;
		out->gid = found ? (gid_t)strtoul(fields[3], NULL, 10) : (gid_t)id;
	} else {
		found = db_lookup(path, user, 0, line, sizeof(line), fields, 7);
		if (!found) {
			log_error("unknown user \"%s\" in [exec] user: not in %s", user, path);
			log_hint("Add the user to the image, or give a numeric UID[:GID].");
			return ST_USAGE;
		}
		out->uid = (uid_t)strtoul(fields[2], NULL, 10);
		out->gid = (gid_t)strtoul(fields[3], NULL, 10);
	}
	if (found)
		snprintf(out->home, sizeof(out->home), "%s", fields[5]);
	if (group) {
		if (!resolve_group(group + 1, root, &out->gid)) {
			log_error("unknown group \"%s\" in [exec] user: not in %s/etc/group",
				  group + 1, root);
			return ST_USAGE;
		}
	}
	out->groups[out->ngroups++] = out->gid;
	/* A user with an explicit group gets only that group, as su-exec does. */
	if (found && !group)
		add_member_groups(fields[0], root, out);
	return ST_OK;
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
