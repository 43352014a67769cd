#include "status.h"

int status_exit_code(enum status st, int signo)
{
	switch (st) {
	case ST_OK:
		return 0;
	case ST_USAGE:
		return EXIT_USAGE;
	case ST_UNREACHABLE:
		return EXIT_UNREACHABLE;
	case ST_AUTH:
		return EXIT_AUTH;
	case ST_LOCK:
		return EXIT_LOCK;
	case ST_SQL:
		return EXIT_SQL;
	case ST_PREFLIGHT:
		return EXIT_PREFLIGHT;
	case ST_DRIFT:
		return EXIT_DRIFT;
	case ST_EXTERNAL:
		return EXIT_EXTERNAL;
	case ST_CONNLOST:
		return EXIT_CONNLOST;
	case ST_INTERNAL:
		return EXIT_INTERNAL;
	case ST_SIGNAL:
		return EXIT_SIGNAL_BASE + (signo > 0 && signo < 128 ? signo : 0);
	case ST_NOEXEC:
		return EXIT_NOEXEC;
	case ST_NOTFOUND:
		return EXIT_NOTFOUND;
	}
	return EXIT_INTERNAL;
}

const char *status_name(enum status st)
{
	static const char *const names[] = {
		[ST_OK] = "ok",
		[ST_USAGE] = "usage",
		[ST_UNREACHABLE] = "unreachable",
		[ST_AUTH] = "auth",
		[ST_LOCK] = "lock-timeout",
		[ST_SQL] = "sql-error",
		[ST_PREFLIGHT] = "preflight",
		[ST_DRIFT] = "drift",
		[ST_EXTERNAL] = "external",
		[ST_CONNLOST] = "connection-lost",
		[ST_INTERNAL] = "internal",
		[ST_SIGNAL] = "signal",
		[ST_NOEXEC] = "not-executable",
		[ST_NOTFOUND] = "not-found",
	};
	if ((unsigned)st < sizeof(names) / sizeof(names[0]) && names[st])
		return names[st];
	return "unknown";
}
