/*
 * pg_llm.h: declarations shared by the files of the C FDW bridge.
 *
 * The bridge does as little as possible in C: it finds the quals Python can use
 * (quals.c), plans scans and parameterized join paths (paths.c), checks privileges
 * (privileges.c), builds the JSON payload (payload.c), calls llm._fdw_execute (python.c)
 * and returns its rows (scan.c). Everything about models lives in Python.
 */
#ifndef PG_LLM_H
#define PG_LLM_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "commands/explain.h"
#include "executor/tuptable.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "nodes/execnodes.h"
#include "nodes/pathnodes.h"
#include "nodes/plannodes.h"

/* GUC pg_llm.python_path: where the backend's Python finds the pg_llm package. */
extern char *pg_llm_python_path;

/* How a pushed qual compares its column with its value. */
typedef enum LlmQualKind
{
	LLM_QUAL_EQ = 0,			/* column = value */
	LLM_QUAL_ANY = 1			/* column = ANY(array) */
} LlmQualKind;

/* A clause Python can use: `column = value` or `column = ANY(array)`. */
typedef struct LlmQual
{
	AttrNumber	attno;
	LlmQualKind kind;
	Expr	   *value;			/* evaluated in the executor, never at plan time */
} LlmQual;

/* options.c */
extern List *llm_scan_options(ForeignTable *table, ForeignServer *server, Oid userid);
extern Bitmapset *llm_prompt_attnos(Oid relid);

/* quals.c */
extern bool llm_match_qual(Expr *clause, Index relid, LlmQual *qual);
extern double llm_qual_value_count(const LlmQual *qual);
extern bool llm_expr_is_batchable(Node *node, Index outer_relid);

/* paths.c */
extern void llmGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid);
extern void llmGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid);
extern ForeignScan *llmGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
									  ForeignPath *best_path, List *tlist, List *scan_clauses,
									  Plan *outer_plan);

/* fdw_private of a ForeignScan plan, by position */
enum LlmPlanPrivate
{
	LLM_PRIVATE_NEEDED = 0,		/* IntList of attnos the query reads */
	LLM_PRIVATE_QUAL_ATTNOS,	/* IntList, one per fdw_exprs value */
	LLM_PRIVATE_QUAL_KINDS,		/* IntList of LlmQualKind */
	LLM_PRIVATE_BATCH_QUAL		/* Integer: index in fdw_exprs of the batch array, or -1 */
};

/* privileges.c */
extern void llm_check_scan_privileges(Oid relid, Oid serverid, Oid userid, Bitmapset *needed);

/* payload.c */
typedef struct LlmQualValues
{
	AttrNumber	attno;
	LlmQualKind kind;
	List	   *values;			/* char * text outputs; NIL with kind EQ never happens */
} LlmQualValues;

extern char *llm_payload_static_part(Relation rel, List *options, Oid userid, Bitmapset *needed);
extern char *llm_quals_json(TupleDesc desc, List *qual_values);
extern char *llm_payload(const char *static_part, const char *quals_json);

/* python.c */
typedef void (*LlmRowCallback) (Datum row, void *arg);
extern void llm_call_python(const char *payload, LlmRowCallback callback, void *arg);

/* scan.c */
extern void llmBeginForeignScan(ForeignScanState *node, int eflags);
extern TupleTableSlot *llmIterateForeignScan(ForeignScanState *node);
extern void llmReScanForeignScan(ForeignScanState *node);
extern void llmEndForeignScan(ForeignScanState *node);
extern void llmExplainForeignScan(ForeignScanState *node, ExplainState *es);

#endif							/* PG_LLM_H */
