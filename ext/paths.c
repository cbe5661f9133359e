/*
 * paths.c: planner callbacks: row estimates, paths (plain and parameterized), the plan.
 *
 * A model table answers prompts: a scan without a value for each prompt column cannot
 * run, so its plain path costs LLM_MISSING_PROMPT_COST and the planner prefers a
 * parameterized path that feeds the value from the other side of a join.
 *
 * Batched joins: a nested loop re-scans the model once per outer row, one serial HTTP
 * round trip each. When the outer side is a single plain table (or VALUES list, or set
 * function), the batch path adds an
 * initplan `ARRAY(SELECT <outer value> FROM <outer table> WHERE <its quals>)`: the first
 * re-scan sends up to pg_llm.join_batch_size of those values in one `= ANY` call (which
 * the wrapper fans out concurrently) and later re-scans are answered from that cache.
 */
#include "postgres.h"

#include "access/sysattr.h"
#include "catalog/pg_class.h"
#include "foreign/foreign.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "optimizer/subselect.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteManip.h"
#include "utils/lsyscache.h"

#include "pg_llm.h"

/* Costs in the planner's units (seq_page_cost = 1). */
#define LLM_CALL_COST 10.0		/* one call into Python and over HTTP */
#define LLM_ROW_COST 0.01
#define LLM_UNFILTERED_ROWS 1000.0
/*
 * A scan lacking a prompt value fails; make that path lose to any parameterized one.
 * Stays far below disable_cost so that a plan with no alternative still gets built.
 */
#define LLM_MISSING_PROMPT_COST 1.0e8

/* A batch path's fdw_private: which outer relation feeds which of our columns. */
#define LLM_BATCH_OUTER_RELID 0
#define LLM_BATCH_ATTNO 1

/* Planner state of one foreign relation (RelOptInfo->fdw_private). */
typedef struct LlmRelInfo
{
	Bitmapset  *prompt_attnos;	/* columns a scan needs values for */
	Bitmapset  *given_attnos;	/* columns the base quals give values for */
	double		value_rows;		/* rows the base quals ask for */
} LlmRelInfo;

/* Adds the attnos and estimated value count of the pushable clauses in rinfos. */
static void
collect_pushable(List *rinfos, Index relid, Bitmapset **attnos, double *rows)
{
	ListCell   *cell;

	foreach(cell, rinfos)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, cell);
		LlmQual		qual;

		if (rinfo->pseudoconstant || !llm_match_qual(rinfo->clause, relid, &qual))
			continue;
		if (!bms_is_member(qual.attno, *attnos))
			*rows *= llm_qual_value_count(&qual);
		*attnos = bms_add_member(*attnos, qual.attno);
	}
}

void
llmGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	LlmRelInfo *info = palloc0(sizeof(LlmRelInfo));

	llm_check_plan_privileges(baserel, foreigntableid);
	info->prompt_attnos = llm_prompt_attnos(foreigntableid);
	info->value_rows = 1.0;
	collect_pushable(baserel->baserestrictinfo, baserel->relid,
					 &info->given_attnos, &info->value_rows);
	baserel->fdw_private = info;
	baserel->tuples = LLM_UNFILTERED_ROWS;
	baserel->rows = bms_is_empty(info->given_attnos) ? LLM_UNFILTERED_ROWS : info->value_rows;
}

static void
scan_costs(LlmRelInfo *info, Bitmapset *given, double rows, Cost *startup, Cost *total)
{
	*startup = LLM_CALL_COST;
	if (!bms_is_subset(info->prompt_attnos, given))
		*startup += LLM_MISSING_PROMPT_COST;
	*total = *startup + rows * LLM_ROW_COST;
}

/* generate_implied_equalities_for_column callback: is em our column *arg? */
static bool
ec_member_is_column(PlannerInfo *root, RelOptInfo *rel, EquivalenceClass *ec,
					EquivalenceMember *em, void *arg)
{
	Node	   *expr = (Node *) em->em_expr;

	while (IsA(expr, RelabelType))
		expr = (Node *) ((RelabelType *) expr)->arg;
	return IsA(expr, Var) &&
		((Var *) expr)->varno == rel->relid &&
		((Var *) expr)->varlevelsup == 0 &&
		((Var *) expr)->varattno == *(AttrNumber *) arg;
}

/*
 * Join clauses that could feed our columns from other relations: the plain join
 * clauses, and `col = other.x` implied by equivalence classes (where `a.x = ft.col`
 * lands: it is not in joininfo).
 */
static List *
candidate_join_clauses(PlannerInfo *root, RelOptInfo *baserel)
{
	List	   *clauses = NIL;
	ListCell   *cell;
	AttrNumber	attno;

	foreach(cell, baserel->joininfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, cell);
		LlmQual		qual;

		if (join_clause_is_movable_to(rinfo, baserel) &&
			llm_match_qual(rinfo->clause, baserel->relid, &qual))
			clauses = lappend(clauses, rinfo);
	}
	if (baserel->has_eclass_joins)
		for (attno = 1; attno <= baserel->max_attr; attno++)
			clauses = list_concat(clauses,
								  generate_implied_equalities_for_column(root, baserel,
																		 ec_member_is_column,
																		 &attno,
																		 baserel->lateral_referencers));
	return clauses;
}

/* Can a subquery read this outer relation again, with the same quals, for a batch? */
static bool
is_batchable_outer_rel(PlannerInfo *root, Index relid)
{
	RelOptInfo *rel;
	RangeTblEntry *rte;
	ListCell   *cell;

	if (relid >= (Index) root->simple_rel_array_size || root->simple_rel_array[relid] == NULL)
		return false;
	rel = root->simple_rel_array[relid];
	rte = root->simple_rte_array[relid];
	if (rel->reloptkind != RELOPT_BASEREL || !bms_is_empty(rel->lateral_relids) ||
		rte->securityQuals != NIL)
		return false;
	switch (rte->rtekind)
	{
		case RTE_RELATION:
			if ((rte->relkind != RELKIND_RELATION && rte->relkind != RELKIND_MATVIEW) ||
				rte->tablesample != NULL)
				return false;
			break;
		case RTE_VALUES:		/* FROM (VALUES ...) q(text) */
			if (!llm_expr_is_batchable((Node *) rte->values_lists, relid))
				return false;
			break;
		case RTE_FUNCTION:		/* FROM unnest(...), generate_series(...) */
			if (!llm_expr_is_batchable((Node *) rte->functions, relid))
				return false;
			break;
		default:
			return false;
	}
	foreach(cell, rel->baserestrictinfo)
		if (!llm_expr_is_batchable((Node *) lfirst_node(RestrictInfo, cell)->clause, relid))
			return false;
	return true;
}

/*
 * The one pushable clause of ppi that takes its value from outer_relid, if the values
 * can be batched; NULL otherwise (two such clauses could not share one ANY call).
 */
static RestrictInfo *
batchable_join_clause(PlannerInfo *root, RelOptInfo *baserel, ParamPathInfo *ppi,
					  Index outer_relid, LlmQual *batch_qual)
{
	RestrictInfo *found = NULL;
	ListCell   *cell;

	foreach(cell, ppi->ppi_clauses)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, cell);
		LlmQual		qual;

		if (rinfo->pseudoconstant || !llm_match_qual(rinfo->clause, baserel->relid, &qual) ||
			!llm_references_rel((Node *) qual.value, outer_relid))
			continue;
		if (found != NULL || qual.kind != LLM_QUAL_EQ ||
			!llm_expr_is_batchable((Node *) qual.value, outer_relid) ||
			!OidIsValid(get_promoted_array_type(exprType((Node *) qual.value))))
			return NULL;
		found = rinfo;
		*batch_qual = qual;
	}
	return found;
}

static void
add_batch_path(PlannerInfo *root, RelOptInfo *baserel, Relids required_outer,
			   ParamPathInfo *ppi, double rows)
{
	Index		outer_relid;
	LlmQual		qual;
	Cost		per_rescan;

	if (pg_llm_join_batch_size < 2 || bms_membership(required_outer) != BMS_SINGLETON)
		return;
	outer_relid = bms_singleton_member(required_outer);
	if (!is_batchable_outer_rel(root, outer_relid) ||
		batchable_join_clause(root, baserel, ppi, outer_relid, &qual) == NULL)
		return;
	/* One call per batch instead of one per outer row. */
	per_rescan = LLM_CALL_COST / pg_llm_join_batch_size + rows * LLM_ROW_COST;
	add_path(baserel, (Path *) create_foreignscan_path(root, baserel, NULL, rows,
													   0.0, per_rescan, NIL, required_outer,
													   NULL,
													   list_make2(makeInteger(outer_relid),
																  makeInteger(qual.attno))));
}

void
llmGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	LlmRelInfo *info = (LlmRelInfo *) baserel->fdw_private;
	List	   *outer_sets = NIL;
	ListCell   *cell;
	Cost		startup,
				total;

	scan_costs(info, info->given_attnos, baserel->rows, &startup, &total);
	add_path(baserel, (Path *) create_foreignscan_path(root, baserel, NULL, baserel->rows,
													   startup, total, NIL,
													   baserel->lateral_relids,
													   NULL, NIL));

	/* One parameterized path per distinct set of outer relations, as postgres_fdw does. */
	foreach(cell, candidate_join_clauses(root, baserel))
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, cell);
		Relids		required_outer;
		ParamPathInfo *ppi;
		Bitmapset  *given;
		double		rows;
		ListCell   *seen;
		bool		duplicate = false;

		required_outer = bms_difference(bms_union(rinfo->clause_relids, baserel->lateral_relids),
										baserel->relids);
		if (bms_is_empty(required_outer))
			continue;
		foreach(seen, outer_sets)
			duplicate |= bms_equal(lfirst(seen), required_outer);
		if (duplicate)
			continue;
		outer_sets = lappend(outer_sets, required_outer);

		ppi = get_baserel_parampathinfo(root, baserel, required_outer);
		given = bms_copy(info->given_attnos);
		rows = info->value_rows;
		collect_pushable(ppi->ppi_clauses, baserel->relid, &given, &rows);
		scan_costs(info, given, rows, &startup, &total);
		add_path(baserel, (Path *) create_foreignscan_path(root, baserel, NULL, rows,
														   startup, total, NIL,
														   required_outer, NULL, NIL));
		if (bms_is_subset(info->prompt_attnos, given))
			add_batch_path(root, baserel, required_outer, ppi, rows);
	}
}

/*
 * An initplan computing ARRAY(SELECT value FROM outer_rel WHERE <outer_rel's quals>):
 * every value the nested loop will feed us, known before its first re-scan.
 */
static Node *
batch_values_initplan(PlannerInfo *root, Index outer_relid, Expr *outer_value)
{
	RelOptInfo *outer = find_base_rel(root, outer_relid);
	Query	   *subquery = makeNode(Query);
	RangeTblRef *rtr = makeNode(RangeTblRef);
	SubLink    *sublink = makeNode(SubLink);
	Expr	   *value = copyObject(outer_value);
	RangeTblEntry *rte;
	List	   *quals = NIL;
	ListCell   *cell;

	foreach(cell, outer->baserestrictinfo)
		quals = lappend(quals, copyObject(lfirst_node(RestrictInfo, cell)->clause));
	ChangeVarNodes((Node *) value, outer_relid, 1, 0);
	ChangeVarNodes((Node *) quals, outer_relid, 1, 0);

	rtr->rtindex = 1;
	subquery->commandType = CMD_SELECT;
	subquery->querySource = QSRC_ORIGINAL;
	subquery->canSetTag = true;
	rte = copyObject(planner_rt_fetch(outer_relid, root));
	/* the subquery only reads (the outer table may be an UPDATE's target) */
	if (rte->rtekind == RTE_RELATION)
		rte->requiredPerms = ACL_SELECT;
	rte->insertedCols = NULL;
	rte->updatedCols = NULL;
	subquery->rtable = list_make1(rte);
	subquery->jointree = makeFromExpr(list_make1(rtr),
									  quals ? (Node *) make_ands_explicit(quals) : NULL);
	subquery->targetList = list_make1(makeTargetEntry(value, 1, pstrdup("value"), false));

	sublink->subLinkType = ARRAY_SUBLINK;
	sublink->subLinkId = 0;
	sublink->subselect = (Node *) subquery;
	sublink->location = -1;
	/* Plans the subquery and registers it as an initplan of this query level. */
	return SS_process_sublinks(root, (Node *) sublink, false);
}

/* The columns the query reads from this relation, as an IntList of attnos. */
static List *
needed_attnos(RelOptInfo *baserel, Oid relid, List *local_quals)
{
	Bitmapset  *attrs = NULL;
	List	   *result = NIL;
	int			i = -1;
	bool		whole_row;

	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &attrs);
	pull_varattnos((Node *) local_quals, baserel->relid, &attrs);
	whole_row = bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs);
	while ((i = bms_next_member(attrs, i)) >= 0)
	{
		AttrNumber	attno = i + FirstLowInvalidHeapAttributeNumber;

		if (attno > 0 && !whole_row)
			result = lappend_int(result, attno);
	}
	if (whole_row)
		for (i = 1; i <= baserel->max_attr; i++)
			result = lappend_int(result, i);
	return result;
}

ForeignScan *
llmGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
				  ForeignPath *best_path, List *tlist, List *scan_clauses,
				  Plan *outer_plan)
{
	List	   *fdw_exprs = NIL;
	List	   *qual_attnos = NIL;
	List	   *qual_kinds = NIL;
	List	   *qual_roles = NIL;
	List	   *local_quals;
	Index		batch_outer = 0;
	AttrNumber	batch_attno = InvalidAttrNumber;
	Expr	   *batch_value = NULL;
	List	   *fdw_private;
	ListCell   *cell;

	if (best_path->fdw_private != NIL)
	{
		batch_outer = intVal(list_nth(best_path->fdw_private, LLM_BATCH_OUTER_RELID));
		batch_attno = intVal(list_nth(best_path->fdw_private, LLM_BATCH_ATTNO));
	}

	/* scan_clauses holds the join clauses of a parameterized path too. */
	foreach(cell, scan_clauses)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, cell);
		LlmQual		qual;

		if (rinfo->pseudoconstant || !llm_match_qual(rinfo->clause, baserel->relid, &qual))
			continue;
		fdw_exprs = lappend(fdw_exprs, qual.value);
		qual_attnos = lappend_int(qual_attnos, qual.attno);
		qual_kinds = lappend_int(qual_kinds, qual.kind);
		if (batch_outer != 0 && qual.attno == batch_attno && qual.kind == LLM_QUAL_EQ &&
			llm_references_rel((Node *) qual.value, batch_outer))
		{
			qual_roles = lappend_int(qual_roles, LLM_ROLE_PER_ROW);
			batch_value = qual.value;
		}
		else
			qual_roles = lappend_int(qual_roles, LLM_ROLE_SCAN);
	}
	if (batch_value != NULL)
	{
		fdw_exprs = lappend(fdw_exprs, batch_values_initplan(root, batch_outer, batch_value));
		qual_attnos = lappend_int(qual_attnos, batch_attno);
		qual_kinds = lappend_int(qual_kinds, LLM_QUAL_ANY);
		qual_roles = lappend_int(qual_roles, LLM_ROLE_BATCH);
	}

	/*
	 * Every clause also stays in the local filter: Python returns each input column
	 * unchanged, so the recheck is cheap and keeps results exact whatever Python does.
	 */
	local_quals = extract_actual_clauses(scan_clauses, false);

	fdw_private = list_make4(needed_attnos(baserel, foreigntableid, local_quals),
							 qual_attnos, qual_kinds, qual_roles);

	return make_foreignscan(tlist, local_quals, baserel->relid, fdw_exprs, fdw_private,
							NIL, NIL, outer_plan);
}
