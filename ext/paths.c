/*
 * paths.c: planner callbacks: row estimates, paths (plain and parameterized), the plan.
 *
 * Each prompt is a remote call: a path costs pg_llm.prompt_cost (or the option prompt_cost)
 * per prompt it sends (cost.c counts them), so the planner runs cheap filters and joins
 * first and asks the model only for what they keep. A scan without a value for each
 * prompt column cannot run, so its plain path costs LLM_MISSING_PROMPT_COST and the planner
 * prefers a parameterized path that feeds the value from the other side of a join.
 *
 * Batched joins: a nested loop re-scans the model once per outer row, one serial HTTP
 * round trip each. When the outer value comes from a plain table (or VALUES list, or set
 * function), the batch path adds an initplan `ARRAY(SELECT <outer value> FROM <tables>
 * WHERE <their quals and joins>)`: the first re-scan sends up to pg_llm.join_batch_size of
 * those values in one `= ANY` call (which the wrapper fans out concurrently) and later
 * re-scans are answered from that cache. <tables> are the value's table and every table
 * an inner join links to it (batch_source): the path requires them all on the outer side,
 * so the initplan reads exactly the rows the nested loop will probe with, not those a
 * later join would drop.
 */
#include "postgres.h"

#include "access/sysattr.h"
#include "catalog/pg_class.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/cost.h"
#include "optimizer/joininfo.h"
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

/* Costs in the planner's units (seq_page_cost = 1); a prompt costs llm_prompt_cost(). */
#define LLM_CALL_COST 10.0		/* one call into Python */
#define LLM_ROW_COST 0.01
#define LLM_UNFILTERED_ROWS 1000.0
/*
 * A scan lacking a prompt value fails; make that path lose to any parameterized one, even
 * one sending millions of prompts at the default prompt cost. Stays below disable_cost
 * (1e10) so that a plan with no alternative still gets built and gives its clear error.
 */
#define LLM_MISSING_PROMPT_COST 1.0e9

/* A batch path's fdw_private: the relations its initplan reads, our column they feed. */
#define LLM_BATCH_OUTER_RELIDS 0
#define LLM_BATCH_ATTNO 1

/* Planner state of one foreign relation (RelOptInfo->fdw_private). */
typedef struct LlmRelInfo
{
	Bitmapset  *prompt_attnos;	/* columns a scan needs values for */
	Bitmapset  *given_attnos;	/* columns the base quals give values for */
	List	   *base_quals;		/* LlmQual * of the base quals */
	double		value_rows;		/* rows the base quals ask for */
	double		prompt_cost;	/* planner cost of one prompt (cost.c) */
} LlmRelInfo;

/* Adds the attnos, quals and estimated value count of the pushable clauses in rinfos. */
static void
collect_pushable(List *rinfos, Index relid, Bitmapset **attnos, List **quals, double *rows)
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
		*quals = lappend(*quals, memcpy(palloc(sizeof(LlmQual)), &qual, sizeof(LlmQual)));
	}
}

void
llmGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	LlmRelInfo *info = palloc0(sizeof(LlmRelInfo));

	llm_check_plan_privileges(baserel, foreigntableid);
	info->prompt_attnos = llm_prompt_attnos(foreigntableid);
	info->prompt_cost = llm_prompt_cost(foreigntableid);
	info->value_rows = 1.0;
	collect_pushable(baserel->baserestrictinfo, baserel->relid,
					 &info->given_attnos, &info->base_quals, &info->value_rows);
	baserel->fdw_private = info;
	baserel->tuples = LLM_UNFILTERED_ROWS;
	baserel->rows = bms_is_empty(info->given_attnos) ? LLM_UNFILTERED_ROWS : info->value_rows;
}

/* One call sending the prompts these quals ask for, returning rows rows. */
static void
scan_costs(LlmRelInfo *info, List *quals, Bitmapset *given, double rows,
		   Cost *startup, Cost *total)
{
	bool		exact;

	*startup = LLM_CALL_COST +
		llm_estimate_prompts(quals, info->prompt_attnos, &exact) * info->prompt_cost;
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
	Relids		self;
	ListCell   *cell;

	if (relid >= (Index) root->simple_rel_array_size || root->simple_rel_array[relid] == NULL)
		return false;
	rel = root->simple_rel_array[relid];
	rte = root->simple_rte_array[relid];
	self = bms_make_singleton(relid);
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
			if (!llm_expr_is_batchable((Node *) rte->values_lists, self))
				return false;
			break;
		case RTE_FUNCTION:		/* FROM unnest(...), generate_series(...) */
			if (!llm_expr_is_batchable((Node *) rte->functions, self))
				return false;
			break;
		default:
			return false;
	}
	foreach(cell, rel->baserestrictinfo)
		if (!llm_expr_is_batchable((Node *) lfirst_node(RestrictInfo, cell)->clause, self))
			return false;
	return true;
}

/* How an outer join between the value's relation and another bears on the batch. */
typedef enum LlmJoinBearing
{
	LLM_JOIN_INNER,				/* no outer join between them: it may drop rows */
	LLM_JOIN_KEEPS_ALL,			/* a left/full join that keeps every row of the value's side */
	LLM_JOIN_FILTERS			/* a semi/anti join dropping rows; a subquery cannot say so */
} LlmJoinBearing;

static LlmJoinBearing
join_bearing(PlannerInfo *root, Index value_relid, Index other)
{
	ListCell   *cell;

	foreach(cell, root->join_info_list)
	{
		SpecialJoinInfo *sj = lfirst_node(SpecialJoinInfo, cell);
		bool		value_left = bms_is_member(value_relid, sj->syn_lefthand);
		bool		value_right = bms_is_member(value_relid, sj->syn_righthand);
		bool		other_left = bms_is_member(other, sj->syn_lefthand);
		bool		other_right = bms_is_member(other, sj->syn_righthand);

		if (!((value_left && other_right) || (value_right && other_left)))
			continue;			/* same side: no outer join between them here */
		if (sj->jointype == JOIN_FULL || (sj->jointype == JOIN_LEFT && value_left))
			return LLM_JOIN_KEEPS_ALL;
		return LLM_JOIN_FILTERS;
	}
	return LLM_JOIN_INNER;
}

/*
 * The relations a batch of value_relid's values must read: it and every relation an inner
 * join links to it, directly or through another (except models), since each may drop
 * rows before the model is asked. NULL when one of them cannot be read again by a
 * subquery (or drops rows through a semi/anti join): a batch over fewer relations would
 * ask for rows the query drops, so there is none and each row is asked on its own.
 */
static Relids
batch_source(PlannerInfo *root, RelOptInfo *baserel, Index value_relid)
{
	Relids		source = bms_make_singleton(value_relid);
	bool		grew = true;
	int			i;

	if (!is_batchable_outer_rel(root, value_relid))
		return NULL;
	while (grew)
	{
		grew = false;
		for (i = 1; i < root->simple_rel_array_size; i++)
		{
			RelOptInfo *rel = root->simple_rel_array[i];
			int			member = -1;
			bool		linked = false;

			if (rel == NULL || rel->reloptkind != RELOPT_BASEREL || i == (int) baserel->relid ||
				bms_is_member(i, source))
				continue;
			while (!linked && (member = bms_next_member(source, member)) >= 0)
				linked = have_relevant_joinclause(root, find_base_rel(root, member), rel);
			/* another model asked for the same values answers each: it drops none */
			if (!linked || (rel->fdwroutine != NULL &&
							rel->fdwroutine->GetForeignPaths == llmGetForeignPaths))
				continue;
			switch (join_bearing(root, value_relid, i))
			{
				case LLM_JOIN_KEEPS_ALL:
					continue;
				case LLM_JOIN_FILTERS:
					return NULL;
				case LLM_JOIN_INNER:
					if (!is_batchable_outer_rel(root, i))
						return NULL;
					source = bms_add_member(source, i);
					grew = true;
			}
		}
	}
	return source;
}

/*
 * Copies of the clauses a subquery over the relations `source` must apply to read the
 * rows their join gives: each one's own quals and the inner-join clauses among them
 * (plain ones, and those equivalence classes imply, as joining them would generate).
 * NIL with *ok false when one of them cannot be re-evaluated there.
 */
static List *
batch_source_clauses(PlannerInfo *root, Relids source, bool *ok)
{
	List	   *rinfos = NIL;
	List	   *clauses = NIL;
	Relids		joined = NULL;
	ListCell   *cell;
	int			relid = -1;

	while ((relid = bms_next_member(source, relid)) >= 0)
	{
		RelOptInfo *rel = find_base_rel(root, relid);

		rinfos = list_concat(rinfos, rel->baserestrictinfo);
		foreach(cell, rel->joininfo)
		{
			RestrictInfo *rinfo = lfirst_node(RestrictInfo, cell);

			if (bms_is_subset(rinfo->required_relids, source) && rinfo->is_pushed_down &&
				!rinfo->outerjoin_delayed)
				rinfos = list_append_unique_ptr(rinfos, rinfo);
		}
		if (joined != NULL)
			rinfos = list_concat(rinfos,
								 generate_join_implied_equalities(root,
																  bms_add_member(bms_copy(joined), relid),
																  joined, rel));
		joined = bms_add_member(joined, relid);
	}
	*ok = true;
	foreach(cell, rinfos)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, cell);

		if (!llm_expr_is_batchable((Node *) rinfo->clause, source))
			*ok = false;
		clauses = lappend(clauses, copyObject(rinfo->clause));
	}
	return *ok ? clauses : NIL;
}

/*
 * The one pushable clause of ppi that takes its value from the relations source, if the
 * values can be batched; NULL otherwise (two such clauses could not share one ANY call).
 */
static RestrictInfo *
batchable_join_clause(PlannerInfo *root, RelOptInfo *baserel, ParamPathInfo *ppi,
					  Relids source, LlmQual *batch_qual)
{
	RestrictInfo *found = NULL;
	ListCell   *cell;

	foreach(cell, ppi->ppi_clauses)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, cell);
		LlmQual		qual;

		if (rinfo->pseudoconstant || !llm_match_qual(rinfo->clause, baserel->relid, &qual) ||
			!llm_references_rels((Node *) qual.value, source))
			continue;
		if (found != NULL || qual.kind != LLM_QUAL_EQ ||
			!llm_expr_is_batchable((Node *) qual.value, source) ||
			!OidIsValid(get_promoted_array_type(exprType((Node *) qual.value))))
			return NULL;
		found = rinfo;
		*batch_qual = qual;
	}
	return found;
}

/* Relids as an IntList (path and plan fdw_private must be copyable lists). */
static List *
list_of_relids(Relids relids)
{
	List	   *list = NIL;
	int			relid = -1;

	while ((relid = bms_next_member(relids, relid)) >= 0)
		list = lappend_int(list, relid);
	return list;
}

/*
 * The batched path for a join whose value comes from value_relid. It requires all of
 * batch_source on the outer side. Each distinct value costs its prompts and a share of
 * one call: Memoize, which the planner adds above a path this costly, counts each
 * distinct value once, as the batch asks each once.
 */
static void
add_batch_path(PlannerInfo *root, RelOptInfo *baserel, Index value_relid)
{
	LlmRelInfo *info = (LlmRelInfo *) baserel->fdw_private;
	Relids		source;
	ParamPathInfo *ppi;
	LlmQual		qual;
	List	   *quals;
	Bitmapset  *given;
	double		rows = info->value_rows;
	bool		ok;
	bool		exact;
	Cost		per_value;

	if (pg_llm_join_batch_size < 2 ||
		(source = batch_source(root, baserel, value_relid)) == NULL ||
		!bms_is_subset(baserel->lateral_relids, source))
		return;
	ppi = get_baserel_parampathinfo(root, baserel, source);
	if (batchable_join_clause(root, baserel, ppi, source, &qual) == NULL)
		return;
	(void) batch_source_clauses(root, source, &ok);
	if (!ok)
		return;
	given = bms_copy(info->given_attnos);
	quals = list_copy(info->base_quals);
	collect_pushable(ppi->ppi_clauses, baserel->relid, &given, &quals, &rows);
	if (!bms_is_subset(info->prompt_attnos, given))
		return;
	per_value = llm_estimate_prompts(quals, info->prompt_attnos, &exact) * info->prompt_cost +
		LLM_CALL_COST / pg_llm_join_batch_size + rows * LLM_ROW_COST;
	add_path(baserel, (Path *) create_foreignscan_path(root, baserel, NULL, rows,
													   0.0, per_value, NIL, source, NULL,
													   list_make2(list_of_relids(source),
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

	scan_costs(info, info->base_quals, info->given_attnos, baserel->rows, &startup, &total);
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
		List	   *quals;
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
		quals = list_copy(info->base_quals);
		rows = info->value_rows;
		collect_pushable(ppi->ppi_clauses, baserel->relid, &given, &quals, &rows);
		scan_costs(info, quals, given, rows, &startup, &total);
		add_path(baserel, (Path *) create_foreignscan_path(root, baserel, NULL, rows,
														   startup, total, NIL,
														   required_outer, NULL, NIL));
		if (bms_is_subset(info->prompt_attnos, given) &&
			bms_membership(required_outer) == BMS_SINGLETON)
			add_batch_path(root, baserel, bms_singleton_member(required_outer));
	}
}

/*
 * An initplan computing ARRAY(SELECT value FROM <source> WHERE <their quals and joins>):
 * every value the nested loop will feed us, known before its first re-scan.
 */
static Node *
batch_values_initplan(PlannerInfo *root, Relids source, Expr *outer_value)
{
	Query	   *subquery = makeNode(Query);
	SubLink    *sublink = makeNode(SubLink);
	Expr	   *value = copyObject(outer_value);
	bool		ok;
	List	   *quals = batch_source_clauses(root, source, &ok);
	List	   *fromlist = NIL;
	List	   *rtable = NIL;
	/* renumber through indexes no relation of this level uses, so none is renamed twice */
	int			spare = root->simple_rel_array_size;
	int			relid = -1;
	int			n = 0;

	Assert(ok);					/* add_batch_path checked them */
	while ((relid = bms_next_member(source, relid)) >= 0)
	{
		RangeTblRef *rtr = makeNode(RangeTblRef);
		RangeTblEntry *rte = copyObject(planner_rt_fetch(relid, root));

		/* the subquery only reads (an outer table may be an UPDATE's target) */
		if (rte->rtekind == RTE_RELATION)
			rte->requiredPerms = ACL_SELECT;
		rte->insertedCols = NULL;
		rte->updatedCols = NULL;
		rtable = lappend(rtable, rte);
		rtr->rtindex = ++n;
		fromlist = lappend(fromlist, rtr);
		ChangeVarNodes((Node *) value, relid, spare + n, 0);
		ChangeVarNodes((Node *) quals, relid, spare + n, 0);
	}
	for (; n > 0; n--)
	{
		ChangeVarNodes((Node *) value, spare + n, n, 0);
		ChangeVarNodes((Node *) quals, spare + n, n, 0);
	}

	subquery->commandType = CMD_SELECT;
	subquery->querySource = QSRC_ORIGINAL;
	subquery->canSetTag = true;
	subquery->rtable = rtable;
	subquery->jointree = makeFromExpr(fromlist,
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
	Relids		batch_source = NULL;
	AttrNumber	batch_attno = InvalidAttrNumber;
	Expr	   *batch_value = NULL;
	List	   *fdw_private;
	ListCell   *cell;

	if (best_path->fdw_private != NIL)
	{
		foreach(cell, (List *) list_nth(best_path->fdw_private, LLM_BATCH_OUTER_RELIDS))
			batch_source = bms_add_member(batch_source, lfirst_int(cell));
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
		if (batch_source != NULL && qual.attno == batch_attno && qual.kind == LLM_QUAL_EQ &&
			llm_references_rels((Node *) qual.value, batch_source))
		{
			qual_roles = lappend_int(qual_roles, LLM_ROLE_PER_ROW);
			batch_value = qual.value;
		}
		else
			qual_roles = lappend_int(qual_roles, LLM_ROLE_SCAN);
	}
	if (batch_value != NULL)
	{
		fdw_exprs = lappend(fdw_exprs, batch_values_initplan(root, batch_source, batch_value));
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
