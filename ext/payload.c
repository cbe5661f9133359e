/*
 * payload.c: the JSON document handed to pg_llm.bridge.execute_scan.
 *
 * Layout (docs/architecture.md, "The C bridge <-> Python contract"):
 * {"relid", "table", "user", "options", "columns", "needed", "quals"}. Everything but
 * the quals is fixed for a scan, so it is built once in BeginForeignScan.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "pg_llm.h"

static void
append_json_string(StringInfo buf, const char *s)
{
	if (s == NULL)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, s);
}

char *
llm_payload_static_part(Relation rel, List *options, Oid userid, Bitmapset *needed)
{
	TupleDesc	desc = RelationGetDescr(rel);
	StringInfoData buf;
	ListCell   *cell;
	bool		first = true;
	int			i;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"relid\": %u, \"table\": ", RelationGetRelid(rel));
	append_json_string(&buf, quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
														RelationGetRelationName(rel)));
	appendStringInfoString(&buf, ", \"user\": ");
	append_json_string(&buf, GetUserNameFromId(userid, false));

	appendStringInfoString(&buf, ", \"options\": {");
	foreach(cell, options)
	{
		DefElem    *def = lfirst_node(DefElem, cell);

		if (!first)
			appendStringInfoString(&buf, ", ");
		first = false;
		append_json_string(&buf, def->defname);
		appendStringInfoString(&buf, ": ");
		append_json_string(&buf, defGetString(def));
	}

	appendStringInfoString(&buf, "}, \"columns\": [");
	first = true;
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			continue;
		if (!first)
			appendStringInfoString(&buf, ", ");
		first = false;
		appendStringInfoString(&buf, "{\"name\": ");
		append_json_string(&buf, NameStr(att->attname));
		appendStringInfoString(&buf, ", \"type\": ");
		append_json_string(&buf, format_type_be(att->atttypid));
		appendStringInfoChar(&buf, '}');
	}

	appendStringInfoString(&buf, "], \"needed\": [");
	first = true;
	i = -1;
	while ((i = bms_next_member(needed, i)) >= 0)
	{
		if (!first)
			appendStringInfoString(&buf, ", ");
		first = false;
		append_json_string(&buf, NameStr(TupleDescAttr(desc, i - 1)->attname));
	}
	appendStringInfoChar(&buf, ']');

	/*
	 * Spending guards, only when set: Python sums the scans of one statement, which the
	 * local transaction id and the statement's start time identify.
	 */
	if (pg_llm_max_prompts_per_statement > 0 || pg_llm_max_cost_per_statement > 0)
		appendStringInfo(&buf, ", \"limits\": {\"max_prompts\": %d, \"max_cost\": %.10g, "
						 "\"statement\": \"%u:" INT64_FORMAT "\"}",
						 pg_llm_max_prompts_per_statement, pg_llm_max_cost_per_statement,
						 MyProc->lxid, (int64) GetCurrentStatementStartTimestamp());
	return buf.data;
}

/* The "quals" array from evaluated values (a List of LlmQualValues). */
char *
llm_quals_json(TupleDesc desc, List *qual_values)
{
	StringInfoData buf;
	ListCell   *cell;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	foreach(cell, qual_values)
	{
		LlmQualValues *qv = (LlmQualValues *) lfirst(cell);
		ListCell   *value;

		if (cell != list_head(qual_values))
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, "{\"field\": ");
		append_json_string(&buf, NameStr(TupleDescAttr(desc, qv->attno - 1)->attname));
		if (qv->kind == LLM_QUAL_EQ)
		{
			appendStringInfoString(&buf, ", \"op\": \"=\", \"value\": ");
			append_json_string(&buf, (char *) linitial(qv->values));
		}
		else
		{
			appendStringInfoString(&buf, ", \"op\": \"= ANY\", \"value\": [");
			foreach(value, qv->values)
			{
				if (value != list_head(qv->values))
					appendStringInfoString(&buf, ", ");
				append_json_string(&buf, (char *) lfirst(value));
			}
			appendStringInfoChar(&buf, ']');
		}
		appendStringInfoChar(&buf, '}');
	}
	appendStringInfoChar(&buf, ']');
	return buf.data;
}

char *
llm_payload(const char *static_part, const char *quals_json)
{
	return psprintf("%s, \"quals\": %s}", static_part, quals_json);
}
