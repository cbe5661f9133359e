/*
 * explain.c: what EXPLAIN says a scan will send, beyond the pushed quals scan.c lists:
 * the prompt columns and, when their values are constants at plan time, how many prompts.
 */
#include "postgres.h"

#include "nodes/pg_list.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "pg_llm.h"

/* Distinct non-null text outputs of a Const (one value, or each element of an array). */
List *
llm_const_values(Const *c, LlmQualKind kind)
{
	List	   *values = NIL;
	Oid			typoutput;
	bool		varlena;

	if (c->constisnull)
		return NIL;
	if (kind == LLM_QUAL_EQ)
	{
		getTypeOutputInfo(c->consttype, &typoutput, &varlena);
		return list_make1(OidOutputFunctionCall(typoutput, c->constvalue));
	}
	else
	{
		ArrayType  *array = DatumGetArrayTypeP(c->constvalue);
		Oid			elemtype = ARR_ELEMTYPE(array);
		int16		elemlen;
		bool		elembyval;
		char		elemalign;
		Datum	   *elems;
		bool	   *nulls;
		int			n;

		get_typlenbyvalalign(elemtype, &elemlen, &elembyval, &elemalign);
		deconstruct_array(array, elemtype, elemlen, elembyval, elemalign, &elems, &nulls, &n);
		getTypeOutputInfo(elemtype, &typoutput, &varlena);
		for (int i = 0; i < n; i++)
		{
			char	   *text;
			ListCell   *seen;
			bool		duplicate = false;

			if (nulls[i])
				continue;		/* = ANY never matches NULL: no prompt */
			text = OidOutputFunctionCall(typoutput, elems[i]);
			foreach(seen, values)
				duplicate |= strcmp(lfirst(seen), text) == 0;
			if (!duplicate)
				values = lappend(values, text);
		}
	}
	return values;
}

/*
 * Prompts the scan sends when every prompt column's values are constants at plan time;
 * -1 when one is known only when the scan runs (a parameter of a generic plan, a join's
 * outer value, a function result).
 */
static double
plan_time_prompts(ForeignScan *plan, Bitmapset *prompt_attnos)
{
	List	   *attnos = list_nth(plan->fdw_private, LLM_PRIVATE_QUAL_ATTNOS);
	List	   *kinds = list_nth(plan->fdw_private, LLM_PRIVATE_QUAL_KINDS);
	List	   *quals = NIL;
	ListCell   *value_cell,
			   *attno_cell,
			   *kind_cell;
	bool		exact;
	double		prompts;

	forthree(value_cell, plan->fdw_exprs, attno_cell, attnos, kind_cell, kinds)
	{
		LlmQual    *qual = palloc0(sizeof(LlmQual));

		qual->attno = lfirst_int(attno_cell);
		qual->kind = (LlmQualKind) lfirst_int(kind_cell);
		qual->value = lfirst(value_cell);
		quals = lappend(quals, qual);
	}
	prompts = llm_estimate_prompts(quals, prompt_attnos, &exact);
	return exact ? prompts : -1;
}

void
llm_explain_prompts(ForeignScan *plan, Oid relid, ExplainState *es)
{
	Bitmapset  *prompt_attnos = llm_prompt_attnos(relid);
	StringInfoData columns;
	int			attno = -1;
	double		prompts;

	if (bms_is_empty(prompt_attnos))
		return;
	initStringInfo(&columns);
	while ((attno = bms_next_member(prompt_attnos, attno)) >= 0)
		appendStringInfo(&columns, "%s%s", columns.len > 0 ? ", " : "",
						 quote_identifier(get_attname(relid, attno, false)));
	ExplainPropertyText("LLM Prompt Columns", columns.data, es);
	prompts = plan_time_prompts(plan, prompt_attnos);
	if (prompts >= 0)
		ExplainPropertyFloat("LLM Prompts", NULL, prompts, 0, es);
}
