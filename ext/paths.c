/*
 * paths.c: planner callbacks: row estimates, paths (plain and parameterized), the plan.
 *
 * A model table answers prompts: a scan without a value for each prompt column cannot
 * run, so its plain path costs LLM_MISSING_PROMPT_COST and the planner prefers a
 * parameterized path that feeds the value from the other side of a join.
 */
#include "postgres.h"

#include "access/sysattr.h"
#include "foreign/foreign.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"

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
	}
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
	List	   *local_quals;
	List	   *fdw_private;
	ListCell   *cell;

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
	}

	/*
	 * Every clause also stays in the local filter: Python returns each input column
	 * unchanged, so the recheck is cheap and keeps results exact whatever Python does.
	 */
	local_quals = extract_actual_clauses(scan_clauses, false);

	fdw_private = list_make4(needed_attnos(baserel, foreigntableid, local_quals),
							 qual_attnos, qual_kinds, makeInteger(-1));

	return make_foreignscan(tlist, local_quals, baserel->relid, fdw_exprs, fdw_private,
							NIL, NIL, outer_plan);
}
