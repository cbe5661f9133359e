/*
 * cost.c: what a scan will cost and what it spent.
 *
 * The planner and EXPLAIN count a scan's prompts with one function, llm_estimate_prompts;
 * the planner charges llm_prompt_cost() for each (paths.c).
 *
 * EXPLAIN (pg_llm.scan_cost): when every value the scan sends is a constant, Python builds
 * the very requests the scan would send (de-duplicated, before the answer cache) and
 * estimates their input tokens, output tokens (max_tokens, or 256 each) and USD from the
 * engine's prices. The planner does not: that would put a call into Python (0.1-0.3 ms,
 * docs/fdw-bridge.md) into the planning of every query, and generic plans know no values.
 * EXPLAIN ANALYZE: after each call into Python an instrumented scan adds what that call did:
 * prompts sent, cache hits, failed prompts, retries, tokens and USD. Scans that are not
 * instrumented never call in here.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/rel.h"

#include "pg_llm.h"

/* The number in option `name` of options, if it is there (the validator checked it). */
static void
option_number(List *options, const char *name, double *number)
{
	ListCell   *cell;

	foreach(cell, options)
		if (strcmp(lfirst_node(DefElem, cell)->defname, name) == 0)
			*number = strtod(defGetString(lfirst_node(DefElem, cell)), NULL);
}

/*
 * Planner cost of one prompt to this model: its table's option prompt_cost, else its
 * engine's (as postgres_fdw's fdw_startup_cost), else the setting pg_llm.prompt_cost.
 */
double
llm_prompt_cost(Oid foreigntableid)
{
	ForeignTable *table = GetForeignTable(foreigntableid);
	double		cost = pg_llm_prompt_cost;

	option_number(GetForeignServer(table->serverid)->options, "prompt_cost", &cost);
	option_number(table->options, "prompt_cost", &cost);
	return cost;
}

/* The values both lists hold (quals on one column are ANDed). */
static List *
intersect_values(List *a, List *b)
{
	List	   *both = NIL;
	ListCell   *x;

	foreach(x, a)
	{
		ListCell   *y;

		foreach(y, b)
		{
			if (strcmp(lfirst(x), lfirst(y)) == 0)
			{
				both = lappend(both, lfirst(x));
				break;
			}
		}
	}
	return both;
}

/*
 * Prompts one call of a scan sends with these quals (LlmQual *): the product, over the
 * prompt columns, of the distinct values their quals allow. A constant counts its
 * distinct non-NULL values; a value known only when the scan runs counts 1 (`= x`) or
 * the planner's guess for an array. *exact: every prompt column has constant values only.
 */
double
llm_estimate_prompts(List *quals, Bitmapset *prompt_attnos, bool *exact)
{
	double		prompts = 1;
	int			attno = -1;

	*exact = true;
	while ((attno = bms_next_member(prompt_attnos, attno)) >= 0)
	{
		List	   *values = NIL;
		bool		constant = false;
		double		guess = -1;
		ListCell   *cell;

		foreach(cell, quals)
		{
			LlmQual    *qual = lfirst(cell);

			if (qual->attno != attno)
				continue;
			if (IsA(qual->value, Const))
			{
				List	   *these = llm_const_values((Const *) qual->value, qual->kind);

				values = constant ? intersect_values(values, these) : these;
				constant = true;
			}
			else
			{
				double		count = llm_qual_value_count(qual);

				guess = guess < 0 ? count : Min(guess, count);
				*exact = false;
			}
		}
		if (constant)
			prompts *= guess < 0 ? list_length(values) : Min(guess, list_length(values));
		else if (guess >= 0)
			prompts *= guess;
		else
			*exact = false;		/* no value: the scan cannot run (paths.c) */
	}
	return prompts;
}

/* llm._fdw_explain(payload, mode) -> float8[], or NULL (also when an older install lacks it) */
static int
call_explain(const char *payload, const char *mode, float8 **values)
{
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Oid			fn = LookupFuncName(list_make2(makeString("llm"), makeString("_fdw_explain")),
									2, argtypes, true);
	FmgrInfo	flinfo;
	Datum		result;
	Datum	   *elems;
	bool	   *nulls;
	int			count,
				i;

	LOCAL_FCINFO(fcinfo, 2);

	if (!OidIsValid(fn))
		return 0;
	fmgr_info(fn, &flinfo);
	InitFunctionCallInfoData(*fcinfo, &flinfo, 2, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = CStringGetTextDatum(payload);
	fcinfo->args[0].isnull = false;
	fcinfo->args[1].value = CStringGetTextDatum(mode);
	fcinfo->args[1].isnull = false;
	result = FunctionCallInvoke(fcinfo);
	if (fcinfo->isnull)
		return 0;
	deconstruct_array(DatumGetArrayTypeP(result), FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL,
					  TYPALIGN_DOUBLE, &elems, &nulls, &count);
	*values = palloc0(sizeof(float8) * count);
	for (i = 0; i < count; i++)
		(*values)[i] = nulls[i] ? 0 : DatumGetFloat8(elems[i]);
	return count;
}

void
llm_explain_estimate(ForeignScanState *node, ExplainState *es)
{
	ForeignScan *plan = (ForeignScan *) node->ss.ps.plan;
	Relation	rel = node->ss.ss_currentRelation;
	RangeTblEntry *rte = exec_rt_fetch(plan->scan.scanrelid, node->ss.ps.state);
	Oid			userid = OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
	List	   *attnos = list_nth(plan->fdw_private, LLM_PRIVATE_QUAL_ATTNOS);
	List	   *kinds = list_nth(plan->fdw_private, LLM_PRIVATE_QUAL_KINDS);
	List	   *roles = list_nth(plan->fdw_private, LLM_PRIVATE_QUAL_ROLES);
	List	   *quals = NIL;
	Bitmapset  *needed = NULL;
	ListCell   *value_cell,
			   *attno_cell,
			   *kind_cell,
			   *role_cell;
	char	   *payload;
	float8	   *est;

	/* Only when all values are known now: a parameter or a join's value is not. */
	forfour(value_cell, plan->fdw_exprs, attno_cell, attnos, kind_cell, kinds, role_cell, roles)
	{
		LlmQualValues *qv;

		if (lfirst_int(role_cell) != LLM_ROLE_SCAN || !IsA(lfirst(value_cell), Const))
			return;
		qv = palloc0(sizeof(LlmQualValues));
		qv->attno = lfirst_int(attno_cell);
		qv->kind = (LlmQualKind) lfirst_int(kind_cell);
		qv->values = llm_const_values((Const *) lfirst(value_cell), qv->kind);
		if (qv->values == NIL)
			return;				/* NULL: no row can match, nothing is sent */
		quals = lappend(quals, qv);
	}
	foreach(value_cell, (List *) list_nth(plan->fdw_private, LLM_PRIVATE_NEEDED))
		needed = bms_add_member(needed, lfirst_int(value_cell));

	payload = llm_payload(llm_payload_static_part(rel,
												  llm_scan_options(GetForeignTable(RelationGetRelid(rel)),
																   GetForeignServer(plan->fs_server),
																   userid),
												  userid, needed),
						  llm_quals_json(RelationGetDescr(rel), quals));
	if (call_explain(payload, "estimate", &est) < 4)
		return;
	ExplainPropertyFloat("LLM Estimated Input Tokens", NULL, est[1], 0, es);
	ExplainPropertyFloat("LLM Estimated Output Tokens", NULL, est[2], 0, es);
	ExplainPropertyFloat("LLM Estimated Cost", "USD", est[3], 6, es);
}

void
llm_spent_add(LlmSpent *spent)
{
	float8	   *last;
	int			i;

	if (call_explain("{}", "actual", &last) < LLM_SPENT_FIELDS)
		return;
	for (i = 0; i < LLM_SPENT_FIELDS; i++)
		spent->values[i] += last[i];
	spent->calls++;
}

void
llm_explain_spent(LlmSpent *spent, ExplainState *es)
{
	if (spent->calls == 0)
		return;
	ExplainPropertyFloat("LLM Prompts Sent", NULL, spent->values[0], 0, es);
	ExplainPropertyFloat("LLM Cache Hits", NULL, spent->values[1], 0, es);
	ExplainPropertyFloat("LLM Failed Prompts", NULL, spent->values[2], 0, es);
	ExplainPropertyFloat("LLM Retries", NULL, spent->values[3], 0, es);
	ExplainPropertyFloat("LLM Input Tokens", NULL, spent->values[4], 0, es);
	ExplainPropertyFloat("LLM Output Tokens", NULL, spent->values[5], 0, es);
	ExplainPropertyFloat("LLM Cost", "USD", spent->values[6], 6, es);
}
