#include "report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"

void report_line(const char *file, int line, const char *fmt, ...)
{
	char *text = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		xoom();
	va_end(ap);
	if (file && line > 0)
		printf("%s:%d: %s\n", file, line, text);
	else if (file)
		printf("%s: %s\n", file, text);
	else
		printf("%s\n", text);
	fflush(stdout);
	free(text);
}
