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

/* messages.c */
extern void llm_install_message_hook(void);

/* preload.c: Python started in the postmaster (pg_llm in shared_preload_libraries) */
extern bool pg_llm_preload_python;
extern void llm_preload_python(void);

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
extern bool llm_is_server_only_option(const char *name);
extern Bitmapset *llm_prompt_attnos(Oid relid);

/* quals.c */
extern bool llm_match_qual(Expr *clause, Index relid, LlmQual *qual);
extern bool llm_references_rel(Node *node, Index relid);
extern double llm_qual_value_count(const LlmQual *qual);
extern bool llm_references_rels(Node *node, Relids relids);
extern bool llm_expr_is_batchable(Node *node, Relids outer_relids);

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
	LLM_PRIVATE_QUAL_ROLES		/* IntList of LlmQualRole */
};

/* What a pushed value is for. */
typedef enum LlmQualRole
{
	LLM_ROLE_SCAN = 0,			/* sent with every call */
	LLM_ROLE_PER_ROW = 1,		/* a nested loop's value, answered from the batch cache */
	LLM_ROLE_BATCH = 2			/* initplan array of all per-row values to come */
} LlmQualRole;

/* GUC pg_llm.join_batch_size: values per batched call of a join; < 2 disables batching. */
extern int	pg_llm_join_batch_size;

/* GUC pg_llm.prompt_cost: planner cost of one prompt unless the engine or table sets it. */
extern double pg_llm_prompt_cost;

/* GUCs pg_llm.max_prompts_per_statement / max_cost_per_statement: 0 = no limit. */
extern int	pg_llm_max_prompts_per_statement;
extern double pg_llm_max_cost_per_statement;

/* privileges.c */
extern void llm_check_scan_privileges(Oid relid, Oid serverid, Oid userid, Bitmapset *needed);
extern void llm_check_plan_privileges(RelOptInfo *baserel, Oid relid);

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

/* batch.c: rows of a batched join scan, by prompt value */
typedef struct LlmBatchEntry
{
	char	   *value;			/* text output of the value */
	int			position;		/* in the initplan's order; -1 if not from it */
	bool		asked;			/* sent to Python already */
	List	   *tuples;			/* MinimalTuples Python returned for it */
} LlmBatchEntry;

typedef struct LlmBatch
{
	struct HTAB *by_hash;
	LlmBatchEntry **order;
	int			count;
} LlmBatch;

extern LlmBatch *llm_batch_create(List *values);
extern LlmBatchEntry *llm_batch_lookup(LlmBatch *batch, const char *value, bool create);
extern List *llm_batch_next_chunk(LlmBatch *batch, LlmBatchEntry *miss, int size);

/* python.c */
typedef void (*LlmRowCallback) (Datum row, void *arg);
extern void llm_call_python(const char *payload, LlmRowCallback callback, void *arg);

/* scan.c */
extern void llmBeginForeignScan(ForeignScanState *node, int eflags);
extern TupleTableSlot *llmIterateForeignScan(ForeignScanState *node);
extern void llmReScanForeignScan(ForeignScanState *node);
extern void llmEndForeignScan(ForeignScanState *node);
extern void llmExplainForeignScan(ForeignScanState *node, ExplainState *es);

/* explain.c */
extern void llm_explain_prompts(ForeignScan *plan, Oid relid, ExplainState *es);
extern List *llm_const_values(Const *c, LlmQualKind kind);

/* cost.c: prompts a scan sends and their planner cost; EXPLAIN's estimate and EXPLAIN
 * ANALYZE's spend (pg_llm.scan_cost) */
extern double llm_prompt_cost(Oid foreigntableid);
extern double llm_estimate_prompts(List *quals, Bitmapset *prompt_attnos, bool *exact);
#define LLM_SPENT_FIELDS 7		/* sent, cached, failed, retries, in/out tokens, USD */
typedef struct LlmSpent
{
	float8		values[LLM_SPENT_FIELDS];
	int64		calls;			/* Python calls that reported */
} LlmSpent;

extern void llm_explain_estimate(ForeignScanState *node, ExplainState *es);
extern void llm_spent_add(LlmSpent *spent);
extern void llm_explain_spent(LlmSpent *spent, ExplainState *es);

#endif							/* PG_LLM_H */
