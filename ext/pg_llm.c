/*
 * pg_llm.c: module entry points: the FDW handler, the GUC, and two tiny SQL functions.
 *
 * The callbacks themselves live by job in paths.c (planner) and scan.c (executor), the
 * option validator in options.c, as postgres_fdw splits its code.
 */
#include "postgres.h"

#include "fmgr.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "pg_llm.h"

PG_MODULE_MAGIC;

#ifndef PG_LLM_PYTHON_PATH
#define PG_LLM_PYTHON_PATH "/usr/local/lib/pg_llm/python"
#endif

char	   *pg_llm_python_path = NULL;
int			pg_llm_join_batch_size = 1000;
double		pg_llm_prompt_cost = 100.0;
int			pg_llm_max_prompts_per_statement = 0;
double		pg_llm_max_cost_per_statement = 0.0;

void		_PG_init(void);

void
_PG_init(void)
{
	/* SUSET: the path decides which code runs as the postgres OS user. */
	DefineCustomStringVariable("pg_llm.python_path",
							   "Directory the backend's Python imports the pg_llm package from.",
							   NULL,
							   &pg_llm_python_path,
							   PG_LLM_PYTHON_PATH,
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("pg_llm.join_batch_size",
							"Outer values a joined model table asks for in one call.",
							"A nested loop over a plain table sends up to this many of its values in one = ANY call; 0 or 1 asks one value per outer row.",
							&pg_llm_join_batch_size,
							1000, 0, 100000,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);
	/*
	 * 100, postgres_fdw's fdw_startup_cost (one remote round trip): 10,000 times a row's CPU
	 * cost, so the planner sends as few prompts as it can. Higher would JIT-compile plans
	 * of under 1000 prompts (jit_above_cost 100,000), tens of ms that a query answered from
	 * the answer cache would notice; an expensive engine sets its own prompt_cost.
	 */
	DefineCustomRealVariable("pg_llm.prompt_cost",
							 "Planner cost of one prompt sent to a model.",
							 "In the planner's units (seq_page_cost = 1). A model's table option or its engine's server option prompt_cost overrides it.",
							 &pg_llm_prompt_cost,
							 100.0, 0.0, 1.0e6,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	/* USERSET on purpose: set per role, per database or with SET LOCAL (pg_llm.spending). */
	DefineCustomIntVariable("pg_llm.max_prompts_per_statement",
							"Most prompts one statement may send to models; 0 means no limit.",
							"A scan that would pass it fails with SQLSTATE 53400 before sending anything. Answers from the cache do not count.",
							&pg_llm_max_prompts_per_statement,
							0, 0, INT_MAX,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);
	DefineCustomRealVariable("pg_llm.max_cost_per_statement",
							 "Most estimated USD one statement may spend on models; 0 means no limit.",
							 "Estimated from the engine's prices, the prompts' length and max_tokens before anything is sent.",
							 &pg_llm_max_cost_per_statement,
							 0.0, 0.0, 1.0e9,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
	/* before the prefix is reserved: that drops the placeholder of its GUC */
	llm_preload_python();		/* only with shared_preload_libraries (preload.c) */
	MarkGUCPrefixReserved("pg_llm");
	llm_install_message_hook();
}

PG_FUNCTION_INFO_V1(pg_llm_handler);

Datum
pg_llm_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = llmGetForeignRelSize;
	routine->GetForeignPaths = llmGetForeignPaths;
	routine->GetForeignPlan = llmGetForeignPlan;
	routine->BeginForeignScan = llmBeginForeignScan;
	routine->IterateForeignScan = llmIterateForeignScan;
	routine->ReScanForeignScan = llmReScanForeignScan;
	routine->EndForeignScan = llmEndForeignScan;
	routine->ExplainForeignScan = llmExplainForeignScan;

	PG_RETURN_POINTER(routine);
}

PG_FUNCTION_INFO_V1(pg_llm_python_path_sql);

/* llm._python_path(): what llm._boot() puts on sys.path. */
Datum
pg_llm_python_path_sql(PG_FUNCTION_ARGS)
{
	if (pg_llm_python_path == NULL || pg_llm_python_path[0] == '\0')
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(pg_llm_python_path));
}

PG_FUNCTION_INFO_V1(pg_llm_check_interrupts);

/*
 * llm._check_interrupts(): Python polls this while it waits on HTTP, so that
 * statement_timeout and pg_cancel_backend end a scan at once (raises 57014).
 */
Datum
pg_llm_check_interrupts(PG_FUNCTION_ARGS)
{
	CHECK_FOR_INTERRUPTS();
	PG_RETURN_VOID();
}
