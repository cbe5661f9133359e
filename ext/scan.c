/*
 * scan.c: executor callbacks. Evaluate the pushed values, call Python once per distinct
 * set of values, keep its rows in a tuplestore, hand them out.
 *
 * A rescan whose values did not change rewinds the tuplestore instead of asking the model
 * again (a nested loop re-scans the inner side for every outer row).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/tuplestore.h"

#include "pg_llm.h"

typedef struct LlmScanState
{
	Oid			relid;
	List	   *qual_attnos;	/* parallel to value_states */
	List	   *qual_kinds;
	List	   *value_states;	/* ExprState per pushed value */
	Bitmapset  *needed;			/* attnos the query reads */
	char	   *static_payload; /* the payload minus its quals */

	MemoryContext scan_cxt;		/* lives as long as the scan: rows, last quals */
	Tuplestorestate *rows;
	TupleTableSlot *row_slot;	/* the tuplestore hands out minimal tuples */
	char	   *rows_quals;		/* the quals JSON the rows answer; NULL: none yet */
	bool		positioned;		/* rows ready for the current (re)scan */

	/* per-column input conversion of the text Python returns */
	FmgrInfo   *in_functions;
	Oid		   *in_typioparams;

	int64		python_calls;	/* for EXPLAIN ANALYZE */
	int64		rewinds;
} LlmScanState;

void
llmBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *plan = (ForeignScan *) node->ss.ps.plan;
	EState	   *estate = node->ss.ps.state;
	Relation	rel = node->ss.ss_currentRelation;
	TupleDesc	desc = RelationGetDescr(rel);
	RangeTblEntry *rte = exec_rt_fetch(plan->scan.scanrelid, estate);
	Oid			userid = OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
	LlmScanState *st = palloc0(sizeof(LlmScanState));
	ListCell   *cell;
	int			i;

	node->fdw_state = st;
	st->relid = RelationGetRelid(rel);
	st->qual_attnos = list_nth(plan->fdw_private, LLM_PRIVATE_QUAL_ATTNOS);
	st->qual_kinds = list_nth(plan->fdw_private, LLM_PRIVATE_QUAL_KINDS);
	foreach(cell, (List *) list_nth(plan->fdw_private, LLM_PRIVATE_NEEDED))
		st->needed = bms_add_member(st->needed, lfirst_int(cell));

	/* Every execution, also EXPLAIN, also of a plan prepared under another role. */
	llm_check_scan_privileges(st->relid, plan->fs_server, userid, st->needed);

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	st->value_states = ExecInitExprList(plan->fdw_exprs, &node->ss.ps);
	st->static_payload = llm_payload_static_part(rel,
												 llm_scan_options(GetForeignTable(st->relid),
																  GetForeignServer(plan->fs_server),
																  userid),
												 userid, st->needed);
	st->scan_cxt = AllocSetContextCreate(estate->es_query_cxt, "pg_llm scan",
										 ALLOCSET_DEFAULT_SIZES);
	st->row_slot = ExecInitExtraTupleSlot(estate, desc, &TTSOpsMinimalTuple);

	st->in_functions = palloc0(sizeof(FmgrInfo) * desc->natts);
	st->in_typioparams = palloc0(sizeof(Oid) * desc->natts);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Oid			in_func;

		if (att->attisdropped)
			continue;
		getTypeInputInfo(att->atttypid, &in_func, &st->in_typioparams[i]);
		fmgr_info(in_func, &st->in_functions[i]);
	}
}

/* Strings sharing a hash, for dropping repeated prompts. */
typedef struct SeenValues
{
	uint32		hash;			/* key */
	List	   *strings;
} SeenValues;

/* Text outputs of the non-NULL, distinct elements of an array, in first-seen order. */
static List *
array_values(Datum array_datum)
{
	ArrayType  *array = DatumGetArrayTypeP(array_datum);
	Oid			elemtype = ARR_ELEMTYPE(array);
	int16		typlen;
	bool		typbyval;
	char		typalign;
	Oid			output;
	bool		varlena;
	Datum	   *elems;
	bool	   *nulls;
	int			count;
	int			i;
	HASHCTL		ctl;
	HTAB	   *seen;
	List	   *distinct = NIL;

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	getTypeOutputInfo(elemtype, &output, &varlena);
	deconstruct_array(array, elemtype, typlen, typbyval, typalign, &elems, &nulls, &count);

	MemSet(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(uint32);
	ctl.entrysize = sizeof(SeenValues);
	ctl.hcxt = CurrentMemoryContext;
	seen = hash_create("pg_llm distinct values", Max(count, 8), &ctl,
					   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	for (i = 0; i < count; i++)
	{
		char	   *value;
		uint32		hash;
		SeenValues *entry;
		ListCell   *cell;
		bool		found;
		bool		repeated = false;

		/* NULL never equals anything: it cannot select a row */
		if (nulls[i])
			continue;
		value = OidOutputFunctionCall(output, elems[i]);
		hash = hash_bytes((unsigned char *) value, strlen(value));
		entry = hash_search(seen, &hash, HASH_ENTER, &found);
		if (!found)
			entry->strings = NIL;
		foreach(cell, entry->strings)
			repeated |= strcmp(lfirst(cell), value) == 0;
		if (repeated)
			continue;
		entry->strings = lappend(entry->strings, value);
		distinct = lappend(distinct, value);
	}
	hash_destroy(seen);
	return distinct;
}

/*
 * Evaluate the pushed values for this (re)scan. Returns NIL and sets *no_rows when a
 * value is NULL or an array has no non-NULL element: no row can match, skip Python.
 */
static List *
evaluate_quals(ForeignScanState *node, LlmScanState *st, bool *no_rows)
{
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	List	   *result = NIL;
	ListCell   *state_cell,
			   *attno_cell,
			   *kind_cell;

	*no_rows = false;
	forthree(state_cell, st->value_states, attno_cell, st->qual_attnos, kind_cell, st->qual_kinds)
	{
		ExprState  *state = (ExprState *) lfirst(state_cell);
		LlmQualValues *qv = palloc0(sizeof(LlmQualValues));
		bool		isnull;
		Datum		value = ExecEvalExpr(state, econtext, &isnull);

		qv->attno = lfirst_int(attno_cell);
		qv->kind = (LlmQualKind) lfirst_int(kind_cell);
		if (isnull)
		{
			*no_rows = true;
			return NIL;
		}
		if (qv->kind == LLM_QUAL_EQ)
		{
			Oid			output;
			bool		varlena;

			getTypeOutputInfo(exprType((Node *) state->expr), &output, &varlena);
			qv->values = list_make1(OidOutputFunctionCall(output, value));
		}
		else
		{
			qv->values = array_values(value);
			if (qv->values == NIL)
			{
				*no_rows = true;
				return NIL;
			}
		}
		result = lappend(result, qv);
	}
	return result;
}

typedef struct RowSink
{
	LlmScanState *st;
	TupleDesc	desc;
	Datum	   *values;
	bool	   *nulls;
	int			ncolumns;		/* non-dropped columns: the length of every row */
} RowSink;

/* One text[] row from Python -> a tuple in the tuplestore. */
static void
store_row(Datum row_datum, void *arg)
{
	RowSink    *sink = (RowSink *) arg;
	ArrayType  *row = DatumGetArrayTypeP(row_datum);
	Datum	   *elems;
	bool	   *elem_nulls;
	int			count;
	int			i,
				column = 0;

	if (ARR_NDIM(row) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("pg_llm wrapper returned a row that is not a flat list")));
	deconstruct_array(row, TEXTOID, -1, false, TYPALIGN_INT, &elems, &elem_nulls, &count);
	if (count != sink->ncolumns)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("pg_llm wrapper returned a row of %d values for a table of %d columns",
						count, sink->ncolumns),
				 errhint("Return one value per column in \"columns\" order, or a dict keyed by column name.")));

	for (i = 0; i < sink->desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(sink->desc, i);

		sink->nulls[i] = true;
		if (att->attisdropped)
			continue;
		/* Convert only what the query reads: other columns stay NULL. */
		if (!elem_nulls[column] && bms_is_member(i + 1, sink->st->needed))
		{
			sink->values[i] = InputFunctionCall(&sink->st->in_functions[i],
												TextDatumGetCString(elems[column]),
												sink->st->in_typioparams[i],
												att->atttypmod);
			sink->nulls[i] = false;
		}
		column++;
	}
	tuplestore_putvalues(sink->st->rows, sink->desc, sink->values, sink->nulls);
}

static void
fetch_rows(ForeignScanState *node, LlmScanState *st)
{
	TupleDesc	desc = RelationGetDescr(node->ss.ss_currentRelation);
	MemoryContext old;
	bool		no_rows;
	List	   *quals;
	char	   *quals_json;
	RowSink		sink;
	int			i;

	old = MemoryContextSwitchTo(node->ss.ps.ps_ExprContext->ecxt_per_tuple_memory);
	quals = evaluate_quals(node, st, &no_rows);
	quals_json = no_rows ? "null" : llm_quals_json(desc, quals);
	MemoryContextSwitchTo(old);

	if (st->rows_quals != NULL && strcmp(st->rows_quals, quals_json) == 0)
	{
		tuplestore_rescan(st->rows);
		st->rewinds++;
		return;
	}

	/* New values: forget the old rows. */
	if (st->rows)
		tuplestore_end(st->rows);
	MemoryContextReset(st->scan_cxt);
	old = MemoryContextSwitchTo(st->scan_cxt);
	st->rows = tuplestore_begin_heap(false, false, work_mem);
	st->rows_quals = pstrdup(quals_json);
	MemoryContextSwitchTo(old);
	if (no_rows)
		return;

	sink.st = st;
	sink.desc = desc;
	sink.values = palloc(sizeof(Datum) * desc->natts);
	sink.nulls = palloc(sizeof(bool) * desc->natts);
	sink.ncolumns = 0;
	for (i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped)
			sink.ncolumns++;

	st->python_calls++;
	llm_call_python(llm_payload(st->static_payload, quals_json), store_row, &sink);
	pfree(sink.values);
	pfree(sink.nulls);
}

TupleTableSlot *
llmIterateForeignScan(ForeignScanState *node)
{
	LlmScanState *st = (LlmScanState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;

	if (!st->positioned)
	{
		fetch_rows(node, st);
		st->positioned = true;
	}
	if (!tuplestore_gettupleslot(st->rows, true, false, st->row_slot))
		return ExecClearTuple(slot);
	return ExecCopySlot(slot, st->row_slot);
}

void
llmReScanForeignScan(ForeignScanState *node)
{
	LlmScanState *st = (LlmScanState *) node->fdw_state;

	/* Values are compared on the next fetch: equal ones rewind, new ones call Python. */
	st->positioned = false;
}

void
llmEndForeignScan(ForeignScanState *node)
{
	LlmScanState *st = (LlmScanState *) node->fdw_state;

	if (st && st->rows)
		tuplestore_end(st->rows);
}

void
llmExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	ForeignScan *plan = (ForeignScan *) node->ss.ps.plan;
	LlmScanState *st = (LlmScanState *) node->fdw_state;
	List	   *attnos = list_nth(plan->fdw_private, LLM_PRIVATE_QUAL_ATTNOS);
	List	   *kinds = list_nth(plan->fdw_private, LLM_PRIVATE_QUAL_KINDS);
	Oid			relid = RelationGetRelid(node->ss.ss_currentRelation);
	bool		useprefix = list_length(es->rtable) > 1 || es->verbose;
	ListCell   *value_cell,
			   *attno_cell,
			   *kind_cell;
	StringInfoData buf;

	initStringInfo(&buf);
	forthree(value_cell, plan->fdw_exprs, attno_cell, attnos, kind_cell, kinds)
	{
		/* show_scan_qual set es->deparse_cxt to this node: the quals are also the filter */
		char	   *value = deparse_expression(lfirst(value_cell), es->deparse_cxt,
											   useprefix, false);
		const char *column = quote_identifier(get_attname(relid, lfirst_int(attno_cell), false));

		if (buf.len > 0)
			appendStringInfoString(&buf, " AND ");
		if (lfirst_int(kind_cell) == LLM_QUAL_EQ)
			appendStringInfo(&buf, "%s = %s", column, value);
		else
			appendStringInfo(&buf, "%s = ANY (%s)", column, value);
	}
	ExplainPropertyText("LLM Quals", buf.len > 0 ? buf.data : "(none)", es);
	if (es->analyze && st != NULL)
	{
		ExplainPropertyInteger("LLM Calls", NULL, st->python_calls, es);
		ExplainPropertyInteger("LLM Rewinds", NULL, st->rewinds, es);
	}
}
