/*
 * messages.c: clean up how pg_llm's own errors read.
 *
 * PL/Python reports an exception raised by Python code as "<module>.<Class>: <message>"
 * followed by a Python traceback in CONTEXT. pg_llm raises its errors (and re-raises SQL
 * errors of its own queries) as pg_llm.SqlError, a plpy.Error subclass defined in
 * pg_llm/boot.py: only a message with exactly that prefix is rewritten, whatever the
 * function's name, so another PL/Python function's errors (plpy.Error, spiexceptions.*,
 * a bare Python exception) keep their text and traceback.
 */
#include "postgres.h"

#include "utils/elog.h"
#include "utils/memutils.h"

#include "pg_llm.h"

static emit_log_hook_type prev_emit_log_hook = NULL;

/* Keep in step with SQL_ERROR_PREFIX in pg_llm/boot.py. */
static const char own_prefix[] = "pg_llm.SqlError: ";
static const char traceback_header[] = "Traceback (most recent call last):";

/*
 * The context without PL/Python's traceback: the traceback's lines after its header are
 * indented, the first line that is not ('PL/Python function "x"') and any outer context
 * lines stay. NULL when nothing is left.
 */
static const char *
context_after_traceback(const char *context)
{
	const char *line;

	if (strncmp(context, traceback_header, sizeof(traceback_header) - 1) != 0)
		return context;
	line = strchr(context, '\n');
	while (line != NULL)
	{
		line++;
		if (*line != ' ' && *line != '\0')
			return line;
		line = strchr(line, '\n');
	}
	return NULL;
}

static void
llm_emit_log_hook(ErrorData *edata)
{
	if (edata->elevel >= ERROR && edata->message != NULL &&
		strncmp(edata->message, own_prefix, sizeof(own_prefix) - 1) == 0)
	{
		/* The originals live in ErrorContext, which is reset after the report. */
		MemoryContext old = MemoryContextSwitchTo(ErrorContext);

		edata->message = pstrdup(edata->message + sizeof(own_prefix) - 1);
		if (edata->context != NULL)
		{
			const char *rest = context_after_traceback(edata->context);

			edata->context = rest ? pstrdup(rest) : NULL;
		}
		MemoryContextSwitchTo(old);
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
