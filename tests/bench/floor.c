/*
 * The floor of a no-op restart: the least a program can do to learn that a
 * PostgreSQL database is there and answers.  Connect with libpq (conninfo
 * from argv[1], else libpq's PG* variables), run SELECT 1, disconnect.
 *
 *   cc -O2 -I/usr/include/postgresql -o floor floor.c -lpq
 *   floor ['postgresql://user:pw@host:port/db']
 *
 * Exit status 0 when SELECT 1 answered, 1 otherwise (with libpq's message).
 */
#include <stdio.h>

#include <libpq-fe.h>

int main(int argc, char **argv)
{
	PGconn *conn = PQconnectdb(argc > 1 ? argv[1] : "");
	PGresult *res;
	int ok;

	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "floor: error: %s", PQerrorMessage(conn));
		PQfinish(conn);
		return 1;
	}
	res = PQexec(conn, "SELECT 1");
	ok = PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "floor: error: %s", PQerrorMessage(conn));
	PQclear(res);
	PQfinish(conn);
	return ok ? 0 : 1;
}
