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
	List	   *qual_roles;		/* LlmQualRole per value */
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

	/* batched join (paths.c): rows by value instead of a tuplestore */
	bool		batched;
	AttrNumber	batch_attno;
	int			batch_column;	/* index of batch_attno in Python's rows */
	LlmBatch   *batch;			/* NULL until the first re-scan of an execution */
	char	   *batch_scan_quals;	/* the other quals the cache answers for */
	List	   *serving;		/* MinimalTuples of the current value */
	int			serve_next;

	LlmSpent	spent;			/* EXPLAIN ANALYZE: what the calls spent (cost.c) */
	int64		python_calls;	/* for EXPLAIN ANALYZE */
	int64		rewinds;
	int64		batch_hits;
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
	ListCell   *cell,
			   *attno_cell;
	int			i;

	node->fdw_state = st;
	st->relid = RelationGetRelid(rel);
	st->qual_attnos = list_nth(plan->fdw_private, LLM_PRIVATE_QUAL_ATTNOS);
	st->qual_kinds = list_nth(plan->fdw_private, LLM_PRIVATE_QUAL_KINDS);
	st->qual_roles = list_nth(plan->fdw_private, LLM_PRIVATE_QUAL_ROLES);
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

	forboth(cell, st->qual_roles, attno_cell, st->qual_attnos)
		if (lfirst_int(cell) == LLM_ROLE_BATCH)
		{
			st->batched = true;
			st->batch_attno = lfirst_int(attno_cell);
		}
	st->batch_column = -1;
	for (i = 0; i < desc->natts && i < st->batch_attno; i++)
		if (!TupleDescAttr(desc, i)->attisdropped)
			st->batch_column++;

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

/* The text of one value, or the distinct non-NULL elements of an array value. */
static List *
value_texts(ExprState *state, LlmQualKind kind, Datum value)
{
	Oid			output;
	bool		varlena;

	if (kind == LLM_QUAL_ANY)
		return array_values(value);
	getTypeOutputInfo(exprType((Node *) state->expr), &output, &varlena);
	return list_make1(OidOutputFunctionCall(output, value));
}

/*
 * Evaluate the pushed values of the given role for this (re)scan. Returns NIL and sets
 * *no_rows when a value is NULL or an array has no non-NULL element: no row can match.
 */
static List *
evaluate_quals(ForeignScanState *node, LlmScanState *st, LlmQualRole role, bool *no_rows)
{
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	List	   *result = NIL;
	ListCell   *state_cell,
			   *attno_cell,
			   *kind_cell,
			   *role_cell;

	*no_rows = false;
	forfour(state_cell, st->value_states, attno_cell, st->qual_attnos,
			kind_cell, st->qual_kinds, role_cell, st->qual_roles)
	{
		ExprState  *state = (ExprState *) lfirst(state_cell);
		LlmQualValues *qv;
		bool		isnull;
		Datum		value;

		if (lfirst_int(role_cell) != (int) role)
			continue;
		value = ExecEvalExpr(state, econtext, &isnull);
		qv = palloc0(sizeof(LlmQualValues));
		qv->attno = lfirst_int(attno_cell);
		qv->kind = (LlmQualKind) lfirst_int(kind_cell);
		qv->values = isnull ? NIL : value_texts(state, qv->kind, value);
		if (qv->values == NIL)
		{
			*no_rows = true;
			return NIL;
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
	if (!sink->st->batched)
	{
		tuplestore_putvalues(sink->st->rows, sink->desc, sink->values, sink->nulls);
		return;
	}

	/* Batched: file the row under its prompt value, which Python returns unchanged. */
	if (!elem_nulls[sink->st->batch_column])
	{
		LlmBatchEntry *entry = llm_batch_lookup(sink->st->batch,
												TextDatumGetCString(elems[sink->st->batch_column]),
												false);
		MemoryContext old;

		if (entry == NULL)
			return;				/* not a value we asked for: the filter would drop it */
		old = MemoryContextSwitchTo(sink->st->scan_cxt);
		entry->tuples = lappend(entry->tuples,
								heap_form_minimal_tuple(sink->desc, sink->values, sink->nulls));
		MemoryContextSwitchTo(old);
	}
}

/* One call into Python with these quals; rows go to the tuplestore or the batch cache. */
static void
call_python(ForeignScanState *node, LlmScanState *st, const char *quals_json)
{
	TupleDesc	desc = RelationGetDescr(node->ss.ss_currentRelation);
	RowSink		sink;
	int			i;

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
	if (node->ss.ps.instrument != NULL)
		llm_spent_add(&st->spent);
	pfree(sink.values);
	pfree(sink.nulls);
}

/*
 * Evaluate this (re)scan's own quals in per-tuple memory, which stays current (*old is the
 * context to return to): *quals and their JSON in *json ("null" and true when no row can
 * match).
 */
static bool
scan_quals(ForeignScanState *node, LlmScanState *st, MemoryContext *old, List **quals,
		   char **json)
{
	bool		no_rows;

	*old = MemoryContextSwitchTo(node->ss.ps.ps_ExprContext->ecxt_per_tuple_memory);
	*quals = evaluate_quals(node, st, LLM_ROLE_SCAN, &no_rows);
	*json = no_rows ? "null"
		: llm_quals_json(RelationGetDescr(node->ss.ss_currentRelation), *quals);
	return no_rows;
}

static void
fetch_rows(ForeignScanState *node, LlmScanState *st)
{
	MemoryContext old;
	List	   *quals;
	char	   *quals_json;
	bool		no_rows = scan_quals(node, st, &old, &quals, &quals_json);

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
	if (!no_rows)
		call_python(node, st, quals_json);
}

/*
 * Batched join scan: answer this re-scan's value from the cache, asking Python for the
 * next chunk of the initplan's values when it is not there yet.
 */
static void
fetch_batched(ForeignScanState *node, LlmScanState *st)
{
	TupleDesc	desc = RelationGetDescr(node->ss.ss_currentRelation);
	MemoryContext old;
	bool		no_rows;
	List	   *own_quals;
	List	   *per_row = NIL;
	char	   *scan_json;
	LlmBatchEntry *entry;

	st->serving = NIL;
	st->serve_next = 0;
	no_rows = scan_quals(node, st, &old, &own_quals, &scan_json);
	if (!no_rows)
		per_row = evaluate_quals(node, st, LLM_ROLE_PER_ROW, &no_rows);
	if (no_rows)
	{
		MemoryContextSwitchTo(old);
		return;
	}

	/* First use, or the other quals changed (an outer query's parameter): reload. */
	if (st->batch == NULL || strcmp(st->batch_scan_quals, scan_json) != 0)
	{
		List	   *batch_values = evaluate_quals(node, st, LLM_ROLE_BATCH, &no_rows);

		MemoryContextReset(st->scan_cxt);
		MemoryContextSwitchTo(st->scan_cxt);
		st->batch_scan_quals = pstrdup(scan_json);
		st->batch = llm_batch_create(no_rows ? NIL
									 : ((LlmQualValues *) linitial(batch_values))->values);
		MemoryContextSwitchTo(node->ss.ps.ps_ExprContext->ecxt_per_tuple_memory);
	}

	MemoryContextSwitchTo(st->scan_cxt);
	entry = llm_batch_lookup(st->batch,
							 (char *) linitial(((LlmQualValues *) linitial(per_row))->values),
							 true);
	MemoryContextSwitchTo(node->ss.ps.ps_ExprContext->ecxt_per_tuple_memory);
	if (entry->asked)
		st->batch_hits++;
	else
	{
		List	   *chunk = llm_batch_next_chunk(st->batch, entry, Max(pg_llm_join_batch_size, 1));
		LlmQualValues *qv = palloc0(sizeof(LlmQualValues));
		ListCell   *cell;

		qv->attno = st->batch_attno;
		qv->kind = list_length(chunk) == 1 ? LLM_QUAL_EQ : LLM_QUAL_ANY;
		foreach(cell, chunk)
			qv->values = lappend(qv->values, ((LlmBatchEntry *) lfirst(cell))->value);
		call_python(node, st, llm_quals_json(desc, lappend(list_copy(own_quals), qv)));
	}
	MemoryContextSwitchTo(old);
	st->serving = entry->tuples;
}

TupleTableSlot *
llmIterateForeignScan(ForeignScanState *node)
{
	LlmScanState *st = (LlmScanState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;

	if (!st->positioned)
	{
		if (st->batched)
			fetch_batched(node, st);
		else
			fetch_rows(node, st);
		st->positioned = true;
	}
	if (st->batched)
	{
		if (st->serve_next >= list_length(st->serving))
			return ExecClearTuple(slot);
		ExecStoreMinimalTuple(list_nth(st->serving, st->serve_next++), st->row_slot, false);
		return ExecCopySlot(slot, st->row_slot);
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
	List	   *roles = list_nth(plan->fdw_private, LLM_PRIVATE_QUAL_ROLES);
	Oid			relid = RelationGetRelid(node->ss.ss_currentRelation);
	bool		useprefix = list_length(es->rtable) > 1 || es->verbose;
	ListCell   *value_cell,
			   *attno_cell,
			   *kind_cell,
			   *role_cell;
	StringInfoData quals;
	StringInfoData batch;

	initStringInfo(&quals);
	initStringInfo(&batch);
	forfour(value_cell, plan->fdw_exprs, attno_cell, attnos, kind_cell, kinds, role_cell, roles)
	{
		/* show_scan_qual set es->deparse_cxt to this node: the quals are also the filter */
		char	   *value = deparse_expression(lfirst(value_cell), es->deparse_cxt,
											   useprefix, false);
		const char *column = quote_identifier(get_attname(relid, lfirst_int(attno_cell), false));
		StringInfo	buf = lfirst_int(role_cell) == LLM_ROLE_BATCH ? &batch : &quals;

		if (buf->len > 0)
			appendStringInfoString(buf, " AND ");
		if (lfirst_int(kind_cell) == LLM_QUAL_EQ)
			appendStringInfo(buf, "%s = %s", column, value);
		else
			appendStringInfo(buf, "%s = ANY (%s)", column, value);
	}
	ExplainPropertyText("LLM Quals", quals.len > 0 ? quals.data : "(none)", es);
	llm_explain_prompts(plan, relid, es);
	llm_explain_estimate(node, es);
	if (batch.len > 0)
	{
		ExplainPropertyText("LLM Batch", batch.data, es);
		ExplainPropertyInteger("LLM Batch Size", NULL, Max(pg_llm_join_batch_size, 1), es);
	}
	if (es->analyze && st != NULL)
	{
		ExplainPropertyInteger("LLM Calls", NULL, st->python_calls, es);
		ExplainPropertyInteger("LLM Rewinds", NULL, st->rewinds, es);
		if (batch.len > 0)
			ExplainPropertyInteger("LLM Batch Hits", NULL, st->batch_hits, es);
		llm_explain_spent(&st->spent, es);
	}
}
