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
 * Prompts the scan sends: the product, over the prompt columns, of the distinct values its
 * scan quals give. -1 when a prompt column's value is known only when the scan runs (a
 * parameter of a generic plan, a join's outer value, a function result).
 */
static double
plan_time_prompts(ForeignScan *plan, Bitmapset *prompt_attnos)
{
	List	   *attnos = list_nth(plan->fdw_private, LLM_PRIVATE_QUAL_ATTNOS);
	List	   *kinds = list_nth(plan->fdw_private, LLM_PRIVATE_QUAL_KINDS);
	List	   *roles = list_nth(plan->fdw_private, LLM_PRIVATE_QUAL_ROLES);
	double		prompts = 1;
	int			attno = -1;

	while ((attno = bms_next_member(prompt_attnos, attno)) >= 0)
	{
		List	   *values = NIL;
		bool		constrained = false;
		ListCell   *value_cell,
				   *attno_cell,
				   *kind_cell,
				   *role_cell;

		forfour(value_cell, plan->fdw_exprs, attno_cell, attnos, kind_cell, kinds,
				role_cell, roles)
		{
			Node	   *value = lfirst(value_cell);
			List	   *these;

			if (lfirst_int(attno_cell) != attno)
				continue;
			if (lfirst_int(role_cell) != LLM_ROLE_SCAN || !IsA(value, Const))
				return -1;
			these = llm_const_values((Const *) value, (LlmQualKind) lfirst_int(kind_cell));
			values = constrained ? intersect_values(values, these) : these;
			constrained = true;
		}
		if (!constrained)
			return -1;
		prompts *= list_length(values);
	}
	return prompts;
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
