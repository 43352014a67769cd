#include "sqlsplit.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

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

/* ---- tokens ----------------------------------------------------------------- */

enum tok_kind {
	TOK_END,    /* the end of the text */
	TOK_WORD,   /* a keyword or an unquoted identifier */
	TOK_QUOTED, /* a "quoted identifier" */
	TOK_STRING, /* a '' or E'' string (its E is the word before it) */
	TOK_DOLLAR, /* a dollar-quoted string */
	TOK_CHAR    /* any other one character: ; ( ) . , a digit, a $ that opens no quote */
};

struct token {
	enum tok_kind kind;
	const char *p; /* its first byte, as written */
	size_t len;
	int line; /* where it starts */
	int col;
};

static bool is_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Step over blanks and comments; false with *err for an unterminated comment. */
static bool skip_blanks(struct lexer *lx, struct sqlsplit_error *err)
{
	for (;;) {
		int c = peek(lx, 0);
		if (is_blank(c)) {
			adv(lx);
		} else if (c == '-' && peek(lx, 1) == '-') {
			while (lx->i < lx->len && peek(lx, 0) != '\n')
				adv(lx);
		} else if (c == '/' && peek(lx, 1) == '*') {
			if (!skip_block_comment(lx, err))
				return false;
		} else {
			return true;
		}
	}
}

/*
 * Step over blanks and comments, then over the next token into *t (TOK_END
 * at the end of the text).  False with *err for an unterminated quote,
 * identifier, dollar quote or comment.
 */
static bool lex_next(struct lexer *lx, struct token *t, struct sqlsplit_error *err)
{
	int c;
	size_t taglen;

	if (!skip_blanks(lx, err))
		return false;
	c = peek(lx, 0);
	*t = (struct token){
		.kind = TOK_CHAR, .p = lx->s + lx->i, .line = lx->line, .col = lx->col
	};
	if (c < 0) {
		t->kind = TOK_END;
	} else if (c == '\'') {
		bool e = lx->i > 0 && (lx->s[lx->i - 1] == 'e' || lx->s[lx->i - 1] == 'E') &&
			 (lx->i < 2 || !ident_char((unsigned char)lx->s[lx->i - 2]));
		t->kind = TOK_STRING;
		if (!skip_string(lx, e, err)) {
			if (e)
				err->col--; /* an E'' string starts at its E (one byte, same line) */
			return false;
		}
	} else if (c == '"') {
		t->kind = TOK_QUOTED;
		if (!skip_quoted_ident(lx, err))
			return false;
	} else if (c == '$' && (taglen = dollar_tag(lx)) > 0) {
		t->kind = TOK_DOLLAR;
		if (!skip_dollar(lx, taglen, err))
			return false;
	} else if (ident_start(c)) {
		t->kind = TOK_WORD;
		while (lx->i < lx->len && ident_char(peek(lx, 0)))
			adv(lx);
	} else {
		adv(lx);
	}
	t->len = (size_t)(lx->s + lx->i - t->p);
	return true;
}

/* Whether t is the keyword word (any case). */
static bool tok_is(const struct token *t, const char *word)
{
	return t->kind == TOK_WORD && t->len == strlen(word) &&
	       strncasecmp(t->p, word, t->len) == 0;
}

/* Whether t is the character c. */
static bool tok_char(const struct token *t, char c)
{
	return t->kind == TOK_CHAR && *t->p == c;
}

/* ---- statements ------------------------------------------------------------ */

static void push(struct sql_stmt **v, int *n, int *cap, const struct sql_stmt *st)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*v = xrealloc(*v, (size_t)*cap * sizeof(**v));
	}
	(*v)[(*n)++] = *st;
}

int sqlsplit(const char *text, size_t len, struct sql_stmt **out, struct sqlsplit_error *err)
{
	struct lexer lx = { .s = text, .len = len, .i = 0, .line = 1, .col = 1 };
	struct sql_stmt cur = { 0 };
	struct sql_stmt *v = NULL;
	struct token t;
	int n = 0, cap = 0;
	bool open = false;
	int parens = 0;
	int atomic = 0;		 /* depth inside BEGIN ATOMIC … END */
	bool prev_begin = false; /* the last word was BEGIN */

	*out = NULL;
	for (;;) {
		if (!lex_next(&lx, &t, err)) {
			free(v);
			return -1;
		}
		if (t.kind == TOK_END)
			break;
		if (tok_char(&t, ';') && parens == 0 && atomic == 0) {
			if (open) {
				cur.end = lx.i;
				push(&v, &n, &cap, &cur);
				open = false;
			}
			prev_begin = false;
			continue;
		}
		if (!open) {
			open = true;
			cur.start = (size_t)(t.p - text);
			cur.line = t.line;
			cur.col = t.col;
		}
		if (t.kind == TOK_WORD) {
			if (prev_begin && tok_is(&t, "atomic"))
				atomic++;
			else if (atomic > 0 && tok_is(&t, "case"))
				atomic++;
			else if (atomic > 0 && tok_is(&t, "end"))
				atomic--;
			prev_begin = tok_is(&t, "begin");
			continue;
		}
		if (tok_char(&t, '('))
			parens++;
		else if (tok_char(&t, ')') && parens > 0)
			parens--;
		prev_begin = false;
	}
	if (open) {
		cur.end = lx.len;
		push(&v, &n, &cap, &cur);
	}
	*out = v;
	return n;
}

/* ---- reading one statement ---------------------------------------------------- */

/* A lexer over statement sql: len bytes, or up to a NUL byte (where libpq ends it). */
static struct lexer stmt_lexer(const char *sql, size_t len)
{
	return (struct lexer){ .s = sql, .len = strnlen(sql, len), .i = 0, .line = 1, .col = 1 };
}

/* The next token of a statement; an unterminated one ends it (TOK_END). */
static void stmt_next(struct lexer *lx, struct token *t)
{
	struct sqlsplit_error ignored;

	if (!lex_next(lx, t, &ignored)) {
		lx->i = lx->len;
		t->kind = TOK_END;
		t->len = 0;
	}
}

/* ---- transaction control ----------------------------------------------------- */

/* After COMMIT / END / ROLLBACK / ABORT [WORK | TRANSACTION]: whether AND CHAIN follows. */
static bool and_chain(struct lexer *lx)
{
	struct token t;

	stmt_next(lx, &t);
	if (tok_is(&t, "work") || tok_is(&t, "transaction"))
		stmt_next(lx, &t);
	if (!tok_is(&t, "and"))
		return false;
	stmt_next(lx, &t);
	return tok_is(&t, "chain");
}

enum sql_txctl sqlsplit_tx_control(const char *sql, size_t len)
{
	struct lexer lx = stmt_lexer(sql, len);
	struct token t, next;
	struct lexer rest;

	stmt_next(&lx, &t);
	rest = lx;
	stmt_next(&lx, &next);
	if (tok_is(&t, "begin"))
		return TXCTL_BEGIN;
	if (tok_is(&t, "start"))
		return tok_is(&next, "transaction") ? TXCTL_BEGIN : TXCTL_NONE;
	if (tok_is(&t, "prepare"))
		return tok_is(&next, "transaction") ? TXCTL_OTHER : TXCTL_NONE;
	if (tok_is(&t, "commit") || tok_is(&t, "end")) {
		if (tok_is(&t, "commit") && tok_is(&next, "prepared"))
			return TXCTL_OTHER;
		return and_chain(&rest) ? TXCTL_OTHER : TXCTL_COMMIT;
	}
	if (tok_is(&t, "rollback") || tok_is(&t, "abort")) {
		/* ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT] name stays in the transaction */
		if (tok_is(&next, "work") || tok_is(&next, "transaction"))
			stmt_next(&lx, &next);
		return tok_is(&next, "to") ? TXCTL_NONE : TXCTL_OTHER;
	}
	return TXCTL_NONE;
}

size_t sqlsplit_begin_modes(const char *sql, size_t len)
{
	struct lexer lx = stmt_lexer(sql, len);
	struct token t;

	stmt_next(&lx, &t);
	if (tok_is(&t, "start")) {
		stmt_next(&lx, &t);
		if (!tok_is(&t, "transaction"))
			return 0;
	} else if (!tok_is(&t, "begin")) {
		return 0;
	}
	stmt_next(&lx, &t);
	if (tok_is(&t, "work") || tok_is(&t, "transaction"))
		stmt_next(&lx, &t);
	return t.kind == TOK_END || tok_char(&t, ';') ? 0 : (size_t)(t.p - sql);
}

bool sqlsplit_find_backslash(const char *text, size_t len, struct sql_stmt *at)
{
	struct lexer lx = { .s = text, .len = len, .i = 0, .line = 1, .col = 1 };
	struct sqlsplit_error ignored;
	struct token t;

	for (;;) {
		if (!lex_next(&lx, &t, &ignored) || t.kind == TOK_END)
			return false;
		if (tok_char(&t, '\\')) {
			at->start = (size_t)(t.p - text);
			at->line = t.line;
			at->col = t.col;
			while (lx.i < lx.len && ident_char(peek(&lx, 0)))
				lx.i++;
			at->end = lx.i;
			return true;
		}
	}
}

/* ---- index statements ------------------------------------------------------- */

/* Step over the next token of lx when it is the keyword word. */
static void skip_word(struct lexer *lx, const char *word)
{
	struct lexer save = *lx;
	struct token t;

	stmt_next(lx, &t);
	if (!tok_is(&t, word))
		*lx = save;
}

/* Whether t can be a name: a word, or a "quoted identifier" that is not empty. */
static bool is_name(const struct token *t)
{
	return t->kind == TOK_WORD || (t->kind == TOK_QUOTED && t->len > 2);
}

/*
 * The [schema.]name next in lx as written, into *rel (from its first to its
 * last token); false when there is none, or more dots than to_regclass()
 * takes.
 */
static bool next_relation(struct lexer *lx, struct token *rel)
{
	struct token t, dot;
	int parts = 1;

	stmt_next(lx, &t);
	if (!is_name(&t))
		return false;
	*rel = t;
	for (;;) {
		struct lexer save = *lx;
		stmt_next(lx, &dot);
		if (!tok_char(&dot, '.')) {
			*lx = save;
			break;
		}
		stmt_next(lx, &t);
		if (!is_name(&t) || ++parts > 2)
			return false;
	}
	rel->len = (size_t)(t.p + t.len - rel->p);
	return true;
}

/*
 * CREATE [UNIQUE] INDEX [CONCURRENTLY] [[IF NOT EXISTS] name] ON [ONLY]
 * table at lx: true with the name (len 0 when there is none) and the table.
 */
static bool create_index(struct lexer *lx, bool *concurrently, struct token *name,
			 struct token *table)
{
	struct token t;

	*concurrently = false;
	name->len = 0;
	stmt_next(lx, &t);
	if (!tok_is(&t, "create"))
		return false;
	stmt_next(lx, &t);
	if (tok_is(&t, "unique"))
		stmt_next(lx, &t);
	if (!tok_is(&t, "index"))
		return false;
	stmt_next(lx, &t);
	if (tok_is(&t, "concurrently")) {
		*concurrently = true;
		stmt_next(lx, &t);
	}
	if (tok_is(&t, "if")) {
		stmt_next(lx, &t); /* not */
		stmt_next(lx, &t); /* exists */
		stmt_next(lx, &t);
	}
	if (!tok_is(&t, "on")) {
		if (!is_name(&t))
			return false;
		*name = t;
		stmt_next(lx, &t);
		if (!tok_is(&t, "on"))
			return false;
	}
	skip_word(lx, "only");
	return next_relation(lx, table);
}

bool sqlsplit_parse_create_index(const char *sql, size_t len, bool *concurrently, char **name,
				 char **table)
{
	struct lexer lx = stmt_lexer(sql, len);
	struct token nm, rel;

	*name = *table = NULL;
	if (!create_index(&lx, concurrently, &nm, &rel))
		return false;
	if (nm.len > 0)
		*name = xstrndup(nm.p, nm.len);
	*table = xstrndup(rel.p, rel.len);
	return true;
}

bool sqlsplit_parse_cic(const char *sql, size_t len, char **name, char **table)
{
	struct lexer lx = stmt_lexer(sql, len);
	struct token nm, rel;
	bool concurrently;

	*name = *table = NULL;
	if (!create_index(&lx, &concurrently, &nm, &rel) || !concurrently || nm.len == 0)
		return false;
	*name = xstrndup(nm.p, nm.len);
	*table = xstrndup(rel.p, rel.len);
	return true;
}

/* Append name, as written, to the text[] literal arr ({"a","b"}; empty: none yet). */
static void text_array_add(struct sbuf *arr, const struct token *name)
{
	if (arr->len > 0)
		arr->p[arr->len - 1] = ','; /* its closing brace */
	else
		sbuf_putc(arr, '{');
	sbuf_putc(arr, '"');
	for (size_t i = 0; i < name->len; i++) {
		if (name->p[i] == '"' || name->p[i] == '\\')
			sbuf_putc(arr, '\\');
		sbuf_putc(arr, name->p[i]);
	}
	sbuf_puts(arr, "\"}");
}

void sqlsplit_index_targets(const char *sql, size_t len, struct sbuf *tables, struct sbuf *indexes)
{
	struct lexer lx = stmt_lexer(sql, len), whole = lx;
	struct token t, name, rel;
	bool concurrently, index;

	stmt_next(&lx, &t);
	if (tok_is(&t, "reindex")) {
		stmt_next(&lx, &t);
		if (tok_char(&t, '(')) {
			do
				stmt_next(&lx, &t);
			while (t.kind != TOK_END && !tok_char(&t, ')'));
			stmt_next(&lx, &t);
		}
		index = tok_is(&t, "index");
		if (!index && !tok_is(&t, "table"))
			return;
		skip_word(&lx, "concurrently");
		if (next_relation(&lx, &rel))
			text_array_add(index ? indexes : tables, &rel);
	} else if (tok_is(&t, "drop")) {
		stmt_next(&lx, &t);
		if (!tok_is(&t, "index"))
			return;
		skip_word(&lx, "concurrently");
		skip_word(&lx, "if");
		skip_word(&lx, "exists");
		/* a, b, … */
		while (next_relation(&lx, &rel)) {
			text_array_add(indexes, &rel);
			stmt_next(&lx, &t);
			if (!tok_char(&t, ','))
				break;
		}
	} else if (create_index(&whole, &concurrently, &name, &rel)) {
		text_array_add(tables, &rel);
	}
}
