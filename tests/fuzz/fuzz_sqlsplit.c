/*
 * fuzz_sqlsplit.c — libFuzzer target for the SQL statement splitter.
 *
 * The input is SQL text.  Besides "no crash, no leak, no undefined
 * behaviour" (the build adds ASan and UBSan), it checks what sqlsplit.h
 * promises and what migrate.c relies on:
 *   - statements come in order, do not overlap and lie within the text;
 *   - a statement starts at a token (not a blank, not a comment) and ends
 *     just past a ';' or at the end of the text;
 *   - line and col are those of the start offset (lines count '\n', columns
 *     count characters: every byte that is not a UTF-8 continuation byte);
 *   - the text between two statements holds no statement, and one statement
 *     split on its own is that one statement (the lexer's state between
 *     statements is empty);
 *   - an error names a position in the text where its construct opens;
 *   - on each statement, the index statement readers agree with each other
 *     (a CREATE INDEX CONCURRENTLY of a named index is a CREATE INDEX), name
 *     what is written in it, and build well-formed text[] literals;
 *   - transaction control is only read from a statement starting with one of
 *     its keywords, and a BEGIN's modes lie inside a BEGIN statement, at a
 *     token;
 *   - a backslash found outside quotes and comments is one, at the line and
 *     column given, inside a statement.
 * A broken invariant aborts with a message, which libFuzzer reports as a
 * crash with the input that caused it.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlsplit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, ...)                                                                 \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "fuzz_sqlsplit: invariant failed: %s: ", #cond); \
			fprintf(stderr, __VA_ARGS__);                                    \
			fputc('\n', stderr);                                             \
			abort();                                                         \
		}                                                                        \
	} while (0)

/* Advance *line and *col over s[from..to), the way sqlsplit counts them. */
static void advance(const char *s, size_t from, size_t to, int *line, int *col)
{
	for (size_t i = from; i < to; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\n') {
			++*line;
			*col = 1;
		} else if ((c & 0xC0) != 0x80) {
			++*col;
		}
	}
}

/* The offset of (line, col) in s, or (size_t)-1 when there is none. */
static size_t offset_of(const char *s, size_t len, int line, int col)
{
	int l = 1, c = 1;
	for (size_t i = 0; i < len; i++) {
		unsigned char b = (unsigned char)s[i];
		if (l == line && c == col && (b & 0xC0) != 0x80)
			return i;
		if (b == '\n') {
			l++;
			c = 1;
		} else if ((b & 0xC0) != 0x80) {
			c++;
		}
	}
	return (size_t)-1;
}

static int is_blank(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Split a private copy of s[0..len), so that ASan sees any read past its end. */
static int split_copy(const char *s, size_t len, struct sql_stmt **out, struct sqlsplit_error *err)
{
	char *copy = malloc(len ? len : 1);
	int n;
	if (!copy)
		abort();
	memcpy(copy, s, len);
	n = sqlsplit(copy, len, out, err);
	free(copy);
	return n;
}

/* Whether the NUL-terminated word is written in s[0..len). */
static bool written_in(const char *s, size_t len, const char *word)
{
	return memmem(s, len, word, strlen(word)) != NULL;
}

/* A text[] literal as sqlsplit_index_targets builds it: empty, or {"…"[,"…"]…}. */
static bool is_literal(const struct sbuf *b)
{
	return b->len == 0 || (b->len >= 4 && b->p[0] == '{' && b->p[1] == '"' &&
			       b->p[b->len - 2] == '"' && b->p[b->len - 1] == '}');
}

/* The index statement readers on statement s[0..len), a private copy as in split_copy. */
static void check_index_statement(const char *s, size_t len)
{
	char *copy = malloc(len ? len : 1);
	char *name, *table, *cname, *ctable;
	struct sbuf tables = { 0 }, indexes = { 0 };
	bool conc, create, cic;

	if (!copy)
		abort();
	memcpy(copy, s, len);
	create = sqlsplit_parse_create_index(copy, len, &conc, &name, &table);
	cic = sqlsplit_parse_cic(copy, len, &cname, &ctable);
	CHECK(create || (!name && !table), "no CREATE INDEX, but a name or table");
	CHECK(!create || (table && *table && written_in(copy, len, table)),
	      "table \"%s\" is not written in the statement", table ? table : "(null)");
	CHECK(!name || (*name && written_in(copy, len, name)),
	      "name \"%s\" is not written in the statement", name);
	CHECK(cic == (create && conc && name != NULL), "CIC %d, CREATE INDEX %d, concurrently %d",
	      cic, create, create && conc);
	CHECK(!cic || (strcmp(cname, name) == 0 && strcmp(ctable, table) == 0), "CIC names differ");
	sqlsplit_index_targets(copy, len, &tables, &indexes);
	CHECK(is_literal(&tables) && is_literal(&indexes), "bad literals %s / %s",
	      tables.p ? tables.p : "", indexes.p ? indexes.p : "");
	CHECK(!create || tables.len > 0, "CREATE INDEX on \"%s\" adds no table", table);
	free(name);
	free(table);
	free(cname);
	free(ctable);
	sbuf_reset(&tables);
	sbuf_reset(&indexes);
	free(copy);
}

/* The transaction control readers on statement s[0..len), a private copy. */
static void check_tx_statement(const char *s, size_t len)
{
	char *copy = malloc(len ? len : 1);
	enum sql_txctl tx;
	size_t modes;

	if (!copy)
		abort();
	memcpy(copy, s, len);
	tx = sqlsplit_tx_control(copy, len);
	modes = sqlsplit_begin_modes(copy, len);
	CHECK(tx == TXCTL_NONE || (len > 0 && strchr("bBsScCeErRaApP", copy[0]) != NULL),
	      "transaction control %d read from a statement starting with '%c'", (int)tx, copy[0]);
	CHECK(tx != TXCTL_BEGIN || strchr("bBsS", copy[0]) != NULL, "a BEGIN starting with '%c'",
	      copy[0]);
	CHECK(modes == 0 ||
		      (tx == TXCTL_BEGIN && modes < len && !is_blank((unsigned char)copy[modes])),
	      "modes at %zu of %zu, transaction control %d", modes, len, (int)tx);
	free(copy);
}

/* sqlsplit_find_backslash on text (split into n statements v). */
static void check_backslash(const char *text, size_t size, const struct sql_stmt *v, int n)
{
	char *copy = malloc(size ? size : 1);
	struct sql_stmt at;
	bool inside = false;

	if (!copy)
		abort();
	memcpy(copy, text, size);
	if (sqlsplit_find_backslash(copy, size, &at)) {
		CHECK(at.start < at.end && at.end <= size && copy[at.start] == '\\',
		      "backslash at [%zu, %zu) of %zu", at.start, at.end, size);
		CHECK(offset_of(copy, size, at.line, at.col) == at.start,
		      "backslash at %zu says %d:%d", at.start, at.line, at.col);
		for (int i = 0; i < n && !inside; i++)
			inside = v[i].start <= at.start && at.start < v[i].end;
		CHECK(inside, "backslash at %zu is in no statement", at.start);
	}
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct sql_stmt *v = (struct sql_stmt *)&v; /* must be overwritten */
	struct sqlsplit_error err = { 0 };
	int n = sqlsplit(text, size, &v, &err);

	CHECK(n >= -1, "returned %d", n);
	if (n == -1) {
		size_t at;
		char opener;
		CHECK(v == NULL, "an error leaves *out NULL");
		CHECK(err.message != NULL, "an error has a message");
		at = offset_of(text, size, err.line, err.col);
		CHECK(at != (size_t)-1, "error position %d:%d is outside the text", err.line,
		      err.col);
		opener = strstr(err.message, "string") && strstr(err.message, "dollar") ? '$'
			 : strstr(err.message, "quoted string")				? '\''
			 : strstr(err.message, "identifier")				? '"'
			 : strstr(err.message, "comment")				? '/'
											: 0;
		CHECK(opener != 0, "unknown error message \"%s\"", err.message);
		/* an E'' string may be placed at its E */
		CHECK(text[at] == opener ||
			      (opener == '\'' && (text[at] == 'E' || text[at] == 'e') &&
			       at + 1 < size && text[at + 1] == '\''),
		      "\"%s\" at %d:%d, which holds '%c'", err.message, err.line, err.col,
		      text[at]);
		return 0;
	}
	CHECK(n == 0 ? v == NULL : v != NULL, "%d statements, out %p", n, (void *)v);

	size_t prev_end = 0, pos = 0;
	int line = 1, col = 1;
	for (int i = 0; i < n; i++) {
		const struct sql_stmt *st = &v[i];
		struct sql_stmt *sub = NULL;
		struct sqlsplit_error suberr = { 0 };
		int m;

		CHECK(st->start >= prev_end,
		      "statement %d starts at %zu, before the end %zu of the one before", i,
		      st->start, prev_end);
		CHECK(st->start < st->end && st->end <= size,
		      "statement %d is [%zu, %zu) in %zu bytes", i, st->start, st->end, size);
		CHECK(!is_blank(data[st->start]), "statement %d starts with a blank", i);
		CHECK(!(data[st->start] == ';'), "statement %d starts with ';'", i);
		CHECK(st->end == size || data[st->end - 1] == ';',
		      "statement %d ends at %zu, not past a ';'", i, st->end);
		advance(text, pos, st->start, &line, &col);
		pos = st->start;
		CHECK(st->line == line && st->col == col,
		      "statement %d at offset %zu says %d:%d, is %d:%d", i, st->start, st->line,
		      st->col, line, col);

		/* what lies between statements holds none */
		m = split_copy(text + prev_end, st->start - prev_end, &sub, &suberr);
		CHECK(m == 0, "the %zu bytes before statement %d split into %d statements",
		      st->start - prev_end, i, m);
		free(sub);
		sub = NULL;

		/* a statement split on its own is itself */
		m = split_copy(text + st->start, st->end - st->start, &sub, &suberr);
		CHECK(m == 1, "statement %d [%zu, %zu) split on its own gives %d", i, st->start,
		      st->end, m);
		CHECK(sub[0].start == 0 && sub[0].end == st->end - st->start && sub[0].line == 1 &&
			      sub[0].col == 1,
		      "statement %d split on its own is [%zu, %zu) at %d:%d", i, sub[0].start,
		      sub[0].end, sub[0].line, sub[0].col);
		free(sub);
		check_index_statement(text + st->start, st->end - st->start);
		check_tx_statement(text + st->start, st->end - st->start);
		prev_end = st->end;
	}
	check_backslash(text, size, v, n);
	if (n > 0) {
		struct sql_stmt *sub = NULL;
		struct sqlsplit_error suberr = { 0 };
		int m = split_copy(text + prev_end, size - prev_end, &sub, &suberr);
		CHECK(m == 0, "the %zu bytes after the last statement split into %d",
		      size - prev_end, m);
		free(sub);
	}
	free(v);
	return 0;
}
