/*
 * messages.c: clean up how pg_llm's own errors read.
 *
 * PL/Python reports an error raised with plpy.error() as "plpy.Error: <message>" followed by a
 * Python traceback in CONTEXT. For pg_llm's functions the message and hint were written for
 * users, so strip the prefix and the traceback; other PL/Python functions are left alone.
 */
#include "postgres.h"

#include "utils/elog.h"
#include "utils/memutils.h"

#include "pg_llm.h"

static emit_log_hook_type prev_emit_log_hook = NULL;

static const char plpy_prefix[] = "plpy.Error: ";

/* The function line PL/Python adds after its traceback, for one of pg_llm's functions. */
static const char *
pg_llm_function_line(const char *context)
{
	const char *line = context;

	while (line && *line)
	{
		const char *end = strchr(line, '\n');
		size_t		len = end ? (size_t) (end - line) : strlen(line);

		/* 'PL/Python function "llm_x"' alone on its line, not 'PL/Python function "x", line 3' */
		if ((strncmp(line, "PL/Python function \"llm_", 24) == 0 ||
			 strncmp(line, "PL/Python function \"_", 21) == 0) &&
			len > 0 && line[len - 1] == '"')
			return line;
		line = end ? end + 1 : NULL;
	}
	return NULL;
}

static void
llm_emit_log_hook(ErrorData *edata)
{
	if (edata->elevel >= ERROR && edata->message != NULL && edata->context != NULL &&
		strncmp(edata->message, plpy_prefix, sizeof(plpy_prefix) - 1) == 0)
	{
		const char *function_line = pg_llm_function_line(edata->context);

		if (function_line != NULL)
		{
			/* The originals live in ErrorContext, which is reset after the report. */
			MemoryContext old = MemoryContextSwitchTo(ErrorContext);

			edata->message = pstrdup(edata->message + sizeof(plpy_prefix) - 1);
			edata->context = pstrdup(function_line);
			MemoryContextSwitchTo(old);
		}
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

void
llm_install_message_hook(void)
{
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = llm_emit_log_hook;
}
