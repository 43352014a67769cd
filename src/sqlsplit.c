#include "sqlsplit.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct lexer {
	const char *s;
	size_t len;
	size_t i;
	int line;
	int col;
};

/* Step over one byte, keeping line and column (columns count characters, not bytes). */
static void adv(struct lexer *lx)
{
	unsigned char c = (unsigned char)lx->s[lx->i];
	if (c == '\n') {
		lx->line++;
		lx->col = 1;
	} else if ((c & 0xC0) != 0x80) {
		lx->col++;
	}
	lx->i++;
}

static void adv_n(struct lexer *lx, size_t n)
{
	while (n-- > 0 && lx->i < lx->len)
		adv(lx);
}

static int peek(const struct lexer *lx, size_t ahead)
{
	return lx->i + ahead < lx->len ? (unsigned char)lx->s[lx->i + ahead] : -1;
}

static bool ident_start(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

static bool ident_char(int c)
{
	return ident_start(c) || (c >= '0' && c <= '9') || c == '$';
}

static bool fail(struct sqlsplit_error *err, const char *message, int line, int col)
{
	err->message = message;
	err->line = line;
	err->col = col;
	return false;
}

/* A '…' string, at lx->i; escapes are backslashes when it is an E'' string. */
static bool skip_string(struct lexer *lx, bool backslashes, struct sqlsplit_error *err)
{
	int line = lx->line, col = lx->col;
	adv(lx);
	while (lx->i < lx->len) {
		int c = peek(lx, 0);
		if (c == '\'') {
			adv(lx);
			if (peek(lx, 0) != '\'')
				return true;
			adv(lx); /* '' */
		} else if (c == '\\' && backslashes) {
			adv_n(lx, 2);
		} else {
			adv(lx);
		}
	}
	return fail(err, "unterminated quoted string", line, col);
}

/* A "…" identifier, at lx->i. */
static bool skip_quoted_ident(struct lexer *lx, struct sqlsplit_error *err)
{
	int line = lx->line, col = lx->col;
	adv(lx);
	while (lx->i < lx->len) {
		if (peek(lx, 0) == '"') {
			adv(lx);
			if (peek(lx, 0) != '"')
				return true;
		}
		adv(lx);
	}
	return fail(err, "unterminated quoted identifier", line, col);
}

/* A block comment, at lx->i; they nest. */
static bool skip_block_comment(struct lexer *lx, struct sqlsplit_error *err)
{
	int line = lx->line, col = lx->col;
	int depth = 0;
	while (lx->i < lx->len) {
		if (peek(lx, 0) == '/' && peek(lx, 1) == '*') {
			depth++;
			adv_n(lx, 2);
		} else if (peek(lx, 0) == '*' && peek(lx, 1) == '/') {
			adv_n(lx, 2);
			if (--depth == 0)
				return true;
		} else {
			adv(lx);
		}
	}
	return fail(err, "unterminated /* comment", line, col);
}

/*
 * The length of a dollar-quote tag ($$ or $tag$) at lx->i, or 0 when the
 * '$' does not open one (a parameter like $1, or part of an identifier).
 */
static size_t dollar_tag(const struct lexer *lx)
{
	size_t j = 1;
	if (lx->i > 0 && ident_char((unsigned char)lx->s[lx->i - 1]))
		return 0;
	if (peek(lx, 1) == '$')
		return 2;
	if (!ident_start(peek(lx, 1)))
		return 0;
	while (lx->i + j < lx->len && ident_char(peek(lx, j)) && peek(lx, j) != '$')
		j++;
	return peek(lx, j) == '$' ? j + 1 : 0;
}

static bool skip_dollar(struct lexer *lx, size_t taglen, struct sqlsplit_error *err)
{
	int line = lx->line, col = lx->col;
	const char *tag = lx->s + lx->i;
	adv_n(lx, taglen);
	while (lx->i + taglen <= lx->len) {
		if (lx->s[lx->i] == '$' && memcmp(lx->s + lx->i, tag, taglen) == 0) {
			adv_n(lx, taglen);
			return true;
		}
		adv(lx);
	}
	return fail(err, "unterminated dollar-quoted string", line, col);
}

static bool push(struct sql_stmt **v, int *n, int *cap, const struct sql_stmt *st)
{
	if (*n == *cap) {
		int ncap = *cap ? *cap * 2 : 16;
		struct sql_stmt *nv = realloc(*v, (size_t)ncap * sizeof(**v));
		if (!nv)
			return false;
		*v = nv;
		*cap = ncap;
	}
	(*v)[(*n)++] = *st;
	return true;
}

int sqlsplit(const char *text, size_t len, struct sql_stmt **out, struct sqlsplit_error *err)
{
	struct lexer lx = { .s = text, .len = len, .i = 0, .line = 1, .col = 1 };
	struct sql_stmt cur = { 0 };
	struct sql_stmt *v = NULL;
	int n = 0, cap = 0;
	bool open = false;
	int parens = 0;
	int atomic = 0;		 /* depth inside BEGIN ATOMIC … END */
	bool prev_begin = false; /* the last word was BEGIN */

	*out = NULL;
	while (lx.i < lx.len) {
		int c = peek(&lx, 0);

		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
			adv(&lx);
			continue;
		}
		if (c == '-' && peek(&lx, 1) == '-') {
			while (lx.i < lx.len && peek(&lx, 0) != '\n')
				adv(&lx);
			continue;
		}
		if (c == '/' && peek(&lx, 1) == '*') {
			if (!skip_block_comment(&lx, err))
				goto bad;
			continue;
		}
		if (c == ';' && parens == 0 && atomic == 0) {
			adv(&lx);
			if (open) {
				cur.end = lx.i;
				if (!push(&v, &n, &cap, &cur))
					goto oom;
				open = false;
			}
			prev_begin = false;
			continue;
		}
		if (!open) {
			open = true;
			cur.start = lx.i;
			cur.line = lx.line;
			cur.col = lx.col;
		}
		if (c == '\'') {
			bool e = lx.i > 0 && (text[lx.i - 1] == 'e' || text[lx.i - 1] == 'E') &&
				 (lx.i < 2 || !ident_char((unsigned char)text[lx.i - 2]));
			if (!skip_string(&lx, e, err)) {
				if (e)
					err->col--; /* an E'' string starts at its E (one byte, same line) */
				goto bad;
			}
		} else if (c == '"') {
			if (!skip_quoted_ident(&lx, err))
				goto bad;
		} else if (c == '$') {
			size_t taglen = dollar_tag(&lx);
			if (taglen == 0)
				adv(&lx);
			else if (!skip_dollar(&lx, taglen, err))
				goto bad;
		} else if (ident_start(c)) {
			size_t w = lx.i, wlen;
			while (lx.i < lx.len && ident_char(peek(&lx, 0)))
				adv(&lx);
			wlen = lx.i - w;
			if (wlen == 6 && strncasecmp(text + w, "atomic", 6) == 0 && prev_begin)
				atomic++;
			else if (atomic > 0 && wlen == 4 && strncasecmp(text + w, "case", 4) == 0)
				atomic++;
			else if (atomic > 0 && wlen == 3 && strncasecmp(text + w, "end", 3) == 0)
				atomic--;
			prev_begin = wlen == 5 && strncasecmp(text + w, "begin", 5) == 0;
			continue;
		} else {
			if (c == '(')
				parens++;
			else if (c == ')' && parens > 0)
				parens--;
			adv(&lx);
		}
		prev_begin = false;
	}
	if (open) {
		cur.end = lx.len;
		if (!push(&v, &n, &cap, &cur))
			goto oom;
	}
	*out = v;
	return n;
bad:
	free(v);
	return -1;
oom:
	free(v);
	return -2;
}
