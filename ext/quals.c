/*
 * quals.c: find the clauses a scan can hand to Python.
 *
 * Pushable forms: `column = value` (either side) and `column = ANY(array)`, where the
 * value is anything the executor can compute before the scan: a constant, a parameter
 * ($1, a PL/pgSQL variable, a generic plan's parameter), an outer query's column (a
 * nestloop parameter), an initplan. Values are evaluated in the executor only.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "utils/array.h"
#include "utils/lsyscache.h"

#include "pg_llm.h"

/* How many values an = ANY array gives when its size is unknown at plan time. */
#define LLM_UNKNOWN_ARRAY_VALUES 10.0

static Var *
column_of(Node *node, Index relid)
{
	while (node && IsA(node, RelabelType))
		node = (Node *) ((RelabelType *) node)->arg;
	if (node && IsA(node, Var))
	{
		Var		   *var = (Var *) node;

		if (var->varno == relid && var->varlevelsup == 0 && var->varattno > 0)
			return var;
	}
	return NULL;
}

static bool
references_rel_walker(Node *node, Index *relid)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
		return ((Var *) node)->varno == *relid && ((Var *) node)->varlevelsup == 0;
	return expression_tree_walker(node, references_rel_walker, relid);
}

/* Does the expression use a column of this relation (of this query level)? */
bool
llm_references_rel(Node *node, Index relid)
{
	return references_rel_walker(node, &relid);
}

/* Does the expression use a column of any of these relations (of this query level)? */
bool
llm_references_rels(Node *node, Relids relids)
{
	int			relid = -1;

	while ((relid = bms_next_member(relids, relid)) >= 0)
		if (llm_references_rel(node, relid))
			return true;
	return false;
}

/* A value the executor can compute before scanning this relation. */
static bool
is_computable_value(Node *value, Index relid)
{
	return !references_rel_walker(value, &relid) &&
		!contain_volatile_functions(value);
}

static bool
is_equality_operator(Oid opno)
{
	char	   *name = get_opname(opno);

	return name != NULL && strcmp(name, "=") == 0;
}

static bool match_or_of_equalities(BoolExpr *or_clause, Index relid, LlmQual *qual);

/*
 * Is clause `column = value` or `column = ANY(array)` on relation relid? Fills *qual.
 */
bool
llm_match_qual(Expr *clause, Index relid, LlmQual *qual)
{
	Var		   *var;

	if (is_orclause(clause))
		return match_or_of_equalities((BoolExpr *) clause, relid, qual);

	/* The planner turns `flag = true` into `flag` and `flag = false` into `NOT flag`. */
	if ((var = column_of((Node *) clause, relid)) != NULL && var->vartype == BOOLOID)
	{
		qual->attno = var->varattno;
		qual->kind = LLM_QUAL_EQ;
		qual->value = (Expr *) makeBoolConst(true, false);
		return true;
	}
	if (is_notclause(clause) &&
		(var = column_of((Node *) get_notclausearg(clause), relid)) != NULL &&
		var->vartype == BOOLOID)
	{
		qual->attno = var->varattno;
		qual->kind = LLM_QUAL_EQ;
		qual->value = (Expr *) makeBoolConst(false, false);
		return true;
	}
	if (IsA(clause, OpExpr))
	{
		OpExpr	   *op = (OpExpr *) clause;
		Node	   *left,
				   *right;
		Var		   *var;
		Node	   *value;

		if (list_length(op->args) != 2 || !is_equality_operator(op->opno))
			return false;
		left = linitial(op->args);
		right = lsecond(op->args);
		if ((var = column_of(left, relid)) != NULL)
			value = right;
		else if ((var = column_of(right, relid)) != NULL)
			value = left;
		else
			return false;
		if (!is_computable_value(value, relid))
			return false;
		qual->attno = var->varattno;
		qual->kind = LLM_QUAL_EQ;
		qual->value = (Expr *) value;
		return true;
	}
	if (IsA(clause, ScalarArrayOpExpr))
	{
		ScalarArrayOpExpr *saop = (ScalarArrayOpExpr *) clause;
		Var		   *var;
		Node	   *value;

		if (!saop->useOr || list_length(saop->args) != 2 ||
			!is_equality_operator(saop->opno))
			return false;
		var = column_of(linitial(saop->args), relid);
		value = lsecond(saop->args);
		if (var == NULL || !is_computable_value(value, relid))
			return false;
		qual->attno = var->varattno;
		qual->kind = LLM_QUAL_ANY;
		qual->value = (Expr *) value;
		return true;
	}
	return false;
}

/*
 * `col = a OR col = b ...` (PostgreSQL 15 does not turn it into ANY): one ANY qual over an
 * ARRAY[a, b, ...] of the values, when all arms compare the same column with one type.
 */
static bool
match_or_of_equalities(BoolExpr *or_clause, Index relid, LlmQual *qual)
{
	List	   *values = NIL;
	AttrNumber	attno = InvalidAttrNumber;
	Oid			value_type = InvalidOid;
	ArrayExpr  *array;
	ListCell   *cell;

	foreach(cell, or_clause->args)
	{
		LlmQual		arm;

		if (!IsA(lfirst(cell), OpExpr) || !llm_match_qual(lfirst(cell), relid, &arm) ||
			(attno != InvalidAttrNumber && arm.attno != attno) ||
			(OidIsValid(value_type) && exprType((Node *) arm.value) != value_type))
			return false;
		attno = arm.attno;
		value_type = exprType((Node *) arm.value);
		values = lappend(values, arm.value);
	}
	if (values == NIL || !OidIsValid(get_array_type(value_type)))
		return false;

	array = makeNode(ArrayExpr);
	array->array_typeid = get_array_type(value_type);
	array->array_collid = InvalidOid;
	array->element_typeid = value_type;
	array->elements = values;
	array->multidims = false;
	array->location = -1;
	qual->attno = attno;
	qual->kind = LLM_QUAL_ANY;
	qual->value = (Expr *) array;
	return true;
}

/* Planner estimate of how many values (prompts) a qual gives. */
double
llm_qual_value_count(const LlmQual *qual)
{
	if (qual->kind == LLM_QUAL_EQ)
		return 1.0;
	if (IsA(qual->value, Const))
	{
		Const	   *c = (Const *) qual->value;

		if (c->constisnull)
			return 1.0;
		return Max(1.0, (double) ArrayGetNItems(ARR_NDIM(DatumGetArrayTypeP(c->constvalue)),
												ARR_DIMS(DatumGetArrayTypeP(c->constvalue))));
	}
	if (IsA(qual->value, ArrayExpr))
		return Max(1.0, (double) list_length(((ArrayExpr *) qual->value)->elements));
	return LLM_UNKNOWN_ARRAY_VALUES;
}

static bool
batchable_walker(Node *node, Relids outer_relids)
{
	if (node == NULL)
		return false;
	switch (nodeTag(node))
	{
		case T_Var:
			return !bms_is_member(((Var *) node)->varno, outer_relids) ||
				((Var *) node)->varlevelsup != 0 ||
				((Var *) node)->varattno <= 0;
		case T_Param:
			return ((Param *) node)->paramkind != PARAM_EXTERN;
		case T_SubPlan:
		case T_AlternativeSubPlan:
		case T_SubLink:
		case T_PlaceHolderVar:
		case T_Aggref:
		case T_WindowFunc:
		case T_GroupingFunc:
			return true;
		default:
			return expression_tree_walker(node, batchable_walker, (void *) outer_relids);
	}
}

/*
 * Can `node` be re-evaluated in a subquery over outer_relids alone? True when it reads
 * only those relations' columns, constants and $n parameters.
 */
bool
llm_expr_is_batchable(Node *node, Relids outer_relids)
{
	return !batchable_walker(node, outer_relids) && !contain_volatile_functions(node);
}
