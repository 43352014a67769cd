/*
 * config_values.c — the syntaxes of configuration values (see config.h):
 * durations, shell-like words, lists of names, and the "did you mean" guess
 * for a misspelled key.  Pure: no I/O, no logging.
 */
#include "config.h"

#include <ctype.h>
#include <limits.h>
#include <string.h>

#define SUGGEST_MAX 128 /* longest key config_suggest compares */

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * Durations are capped at INT_MAX milliseconds (24.8 days): PostgreSQL's
 * lock_timeout and statement_timeout take an int of milliseconds, and poll()
 * timeouts are ints too, so a larger value could only overflow somewhere.
 */
bool config_parse_duration(const char *s, long *ms)
{
	long long n = 0;
	long long unit = 1000;
	const char *p = s;

	if (!s || !is_digit(*p))
		return false;
	for (; is_digit(*p); p++) {
		n = n * 10 + (*p - '0');
		if (n > INT_MAX)
			return false;
	}
	if (*p == '\0' || strcmp(p, "s") == 0)
		unit = 1000;
	else if (strcmp(p, "ms") == 0)
		unit = 1;
	else if (strcmp(p, "m") == 0)
		unit = 60LL * 1000;
	else if (strcmp(p, "h") == 0)
		unit = 60LL * 60 * 1000;
	else
		return false;
	if (n * unit > INT_MAX)
		return false;
	*ms = (long)(n * unit);
	return true;
}

/*
 * The "…" quoted part of a word that starts after the opening quote at p:
 * appended to word; returns the closing quote, or NULL when there is none.
 */
static const char *put_double_quoted(struct sbuf *word, const char *p)
{
	for (;;) {
		if (*p == '\0')
			return NULL;
		if (*p == '"')
			return p;
		if (*p == '\\' && p[1] != '\0' && strchr("\"\\$`\n", p[1])) {
			if (p[1] != '\n')
				sbuf_putc(word, p[1]);
			p += 2;
			continue;
		}
		sbuf_putc(word, *p++);
	}
}

bool config_split_words(const char *s, struct strv *out, const char **err)
{
	struct sbuf word = { 0 };
	bool in_word = false;
	const char *msg = NULL;

	*out = (struct strv){ 0 };
	for (const char *p = s, *end; *p && !msg;) {
		if (is_blank(*p)) {
			if (in_word)
				strv_push(out, sbuf_take(&word));
			in_word = false;
			p++;
		} else if (*p == '\\' && p[1] == '\0') {
			msg = "trailing backslash";
		} else if (*p == '\\') {
			if (p[1] != '\n') { /* backslash-newline joins lines */
				sbuf_putc(&word, p[1]);
				in_word = true;
			}
			p += 2;
		} else if (*p == '\'') {
			end = strchr(p + 1, '\'');
			if (!end) {
				msg = "unterminated single quote";
				break;
			}
			sbuf_putn(&word, p + 1, (size_t)(end - p - 1));
			in_word = true;
			p = end + 1;
		} else if (*p == '"') {
			end = put_double_quoted(&word, p + 1);
			if (!end) {
				msg = "unterminated double quote";
				break;
			}
			in_word = true;
			p = end + 1;
		} else {
			sbuf_putc(&word, *p++);
			in_word = true;
		}
	}
	if (in_word && !msg)
		strv_push(out, sbuf_take(&word));
	sbuf_reset(&word);
	if (msg) {
		strv_free(out);
		if (err)
			*err = msg;
		return false;
	}
	strv_terminate(out);
	return true;
}

void config_split_list(const char *s, struct strv *out)
{
	*out = (struct strv){ 0 };
	for (const char *p = s; *p;) {
		size_t n = 0;
		while (*p == ',' || is_blank(*p))
			p++;
		while (p[n] && p[n] != ',' && !is_blank(p[n]))
			n++;
		if (n == 0)
			break;
		strv_push(out, xstrndup(p, n));
		p += n;
	}
	strv_terminate(out);
}

/* Case-insensitive Levenshtein distance; both strings shorter than SUGGEST_MAX. */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
	size_t prev[SUGGEST_MAX + 1];
	size_t cur[SUGGEST_MAX + 1];

	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = tolower((unsigned char)a[i - 1]) !=
				      tolower((unsigned char)b[j - 1]);
			size_t best = prev[j - 1] + cost;
			if (prev[j] + 1 < best)
				best = prev[j] + 1;
			if (cur[j - 1] + 1 < best)
				best = cur[j - 1] + 1;
			cur[j] = best;
		}
		memcpy(prev, cur, (lb + 1) * sizeof(prev[0]));
	}
	return prev[lb];
}

const char *config_suggest(const char *key, const char *const *known)
{
	const char *best = NULL;
	size_t best_d = 3;
	size_t lk = strlen(key);

	if (lk >= SUGGEST_MAX)
		return NULL;
	for (int i = 0; known[i]; i++) {
		size_t ln = strlen(known[i]);
		size_t d;
		if (ln >= SUGGEST_MAX || (lk > ln ? lk - ln : ln - lk) > 2)
			continue;
		d = edit_distance(key, lk, known[i], ln);
		if (d < best_d) {
			best = known[i];
			best_d = d;
		}
	}
	return best;
}
