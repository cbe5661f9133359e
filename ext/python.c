/*
 * python.c: call llm._fdw_execute(payload) and hand each returned row to a callback.
 *
 * The call goes through fmgr, not SQL: EXECUTE on the function is revoked from PUBLIC
 * (it imports code as the postgres OS user), so only this bridge, after its own
 * privilege checks, may run it. The function is SECURITY DEFINER, so its Python runs as
 * the extension owner whoever scans. PL/Python returns sets one value per call.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "pg_llm.h"

static Oid
fdw_execute_oid(void)
{
	Oid			argtypes[1] = {TEXTOID};
	Oid			fn = LookupFuncName(list_make2(makeString("llm"), makeString("_fdw_execute")),
									1, argtypes, true);

	if (!OidIsValid(fn))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function llm._fdw_execute(text) does not exist"),
				 errhint("The pg_llm extension is incomplete: DROP EXTENSION pg_llm CASCADE; CREATE EXTENSION pg_llm CASCADE;")));
	return fn;
}

void
llm_call_python(const char *payload, LlmRowCallback callback, void *arg)
{
	MemoryContext caller = CurrentMemoryContext;
	MemoryContext call_cxt = AllocSetContextCreate(caller, "pg_llm python call",
												   ALLOCSET_DEFAULT_SIZES);
	MemoryContext row_cxt = AllocSetContextCreate(call_cxt, "pg_llm python row",
												  ALLOCSET_DEFAULT_SIZES);
	FmgrInfo	flinfo;
	ReturnSetInfo rsinfo;
	ExprContext *econtext;

	LOCAL_FCINFO(fcinfo, 1);

	MemoryContextSwitchTo(call_cxt);
	/* A fresh FmgrInfo per call: PL/Python keeps its set-returning state in fn_extra. */
	fmgr_info_cxt(fdw_execute_oid(), &flinfo, call_cxt);
	econtext = CreateStandaloneExprContext();

	MemSet(&rsinfo, 0, sizeof(rsinfo));
	rsinfo.type = T_ReturnSetInfo;
	rsinfo.econtext = econtext;
	rsinfo.allowedModes = SFRM_ValuePerCall;
	rsinfo.returnMode = SFRM_ValuePerCall;

	InitFunctionCallInfoData(*fcinfo, &flinfo, 1, InvalidOid, NULL, (Node *) &rsinfo);
	fcinfo->args[0].value = CStringGetTextDatum(payload);
	fcinfo->args[0].isnull = false;

	for (;;)
	{
		Datum		row;

		MemoryContextSwitchTo(row_cxt);
		rsinfo.isDone = ExprSingleResult;
		fcinfo->isnull = false;
		row = FunctionCallInvoke(fcinfo);
		if (rsinfo.isDone == ExprEndResult)
			break;
		if (fcinfo->isnull)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("pg_llm wrapper returned a NULL row"),
					 errhint("execute() must yield a dict or a list for every row.")));
		callback(row, arg);
		MemoryContextReset(row_cxt);
	}

	MemoryContextSwitchTo(caller);
	FreeExprContext(econtext, true);
	MemoryContextDelete(call_cxt);
}
