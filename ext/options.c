/*
 * options.c: validate server, table and user-mapping options; merge them for a scan.
 *
 * Option names are open-ended (the Python wrapper defines most of them), but the ones the
 * bridge or security depends on are checked here, at CREATE/ALTER time. The trust rule
 * (docs/security.md): where requests go and what they carry is decided by the engine's
 * owner alone, so connection options live only on the server; a user mapping holds only
 * the key; a foreign table holds the model.
 */
#include "postgres.h"

#include <ctype.h>

#include "access/reloptions.h"
#include "catalog/pg_foreign_data_wrapper.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "pg_llm.h"

static const char *
catalog_noun(Oid catalog)
{
	switch (catalog)
	{
		case ForeignServerRelationId:
			return "server";
		case ForeignTableRelationId:
			return "foreign table";
		case UserMappingRelationId:
			return "user mapping";
		default:
			return "foreign-data wrapper";
	}
}

/*
 * Options that decide where requests go or what they carry: valid only on the server,
 * which only its owner (whoever may create engines) can change.
 */
static const char *const server_only_options[] = {
	"base_url", "provider", "wrapper", "organization", "project", "headers",
	"default_headers", "proxy", "api_base", NULL
};

bool
llm_is_server_only_option(const char *name)
{
	const char *const *known;

	if (strncmp(name, "price_", 6) == 0)	/* prices decide what budgets charge */
		return true;
	for (known = server_only_options; *known; known++)
		if (strcmp(name, *known) == 0)
			return true;
	return false;
}

static bool
is_identifier(const char *s)
{
	if (!(isalpha((unsigned char) *s) || *s == '_'))
		return false;
	for (; *s; s++)
		if (!(isalnum((unsigned char) *s) || *s == '_'))
			return false;
	return true;
}

/* `pg_llm.module.Class`: only code shipped with the extension may run as postgres. */
static bool
is_wrapper_class_path(const char *value)
{
	char	   *copy = pstrdup(value);
	char	   *part;
	char	   *save = NULL;
	int			parts = 0;

	if (strncmp(value, "pg_llm.", 7) != 0)
		return false;
	for (part = strtok_r(copy, ".", &save); part; part = strtok_r(NULL, ".", &save))
	{
		if (!is_identifier(part))
			return false;
		parts++;
	}
	/* strtok_r skips empty parts: reject "pg_llm..x" and a trailing dot explicitly */
	return parts >= 3 && strstr(value, "..") == NULL && value[strlen(value) - 1] != '.';
}

static void
require_nonnegative_number(DefElem *def, const char *hint)
{
	char	   *value = defGetString(def);
	char	   *end;
	double		number = strtod(value, &end);

	if (end == value || *end != '\0' || number < 0 || number != number)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"%s\" must be a non-negative number, not \"%s\"",
						def->defname, value),
				 errhint(hint, def->defname)));
}

/* Feature options of a model or engine (pg_llm.model_features): name, allowed values. */
static const char *const feature_options[][4] = {
	{"on_error", "error", "null", NULL},
	{"cache", "off", "on", "always"},
	{"audit", "off", "on", NULL},
	{"cache_ttl", NULL},		/* whole numbers >= 0 */
	{"cache_max_rows", NULL},
};

static bool
is_feature_option(const char *name)
{
	int			i;

	for (i = 0; i < lengthof(feature_options); i++)
		if (strcmp(name, feature_options[i][0]) == 0)
			return true;
	return false;
}

static void
validate_feature_option(DefElem *def)
{
	const char *value = defGetString(def);
	int			i,
				j;

	for (i = 0; i < lengthof(feature_options); i++)
	{
		if (strcmp(def->defname, feature_options[i][0]) != 0)
			continue;
		if (feature_options[i][1] == NULL)
		{
			const char *c = value;

			for (; *c && isdigit((unsigned char) *c); c++)
				;
			if (*value == '\0' || *c != '\0' || strlen(value) > 12)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"%s\" must be a whole number of 0 or more, not \"%s\"",
								def->defname, value),
						 errhint("0 means no limit, e.g. OPTIONS (%s '3600').", def->defname)));
			return;
		}
		for (j = 1; j < 4 && feature_options[i][j] != NULL; j++)
			if (strcmp(value, feature_options[i][j]) == 0)
				return;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value \"%s\" for option \"%s\"", value, def->defname),
				 errhint("Use %s%s%s%s%s, or set it with llm_alter_model(name, options => ...).",
						 feature_options[i][1], ", ", feature_options[i][2],
						 feature_options[i][3] ? ", " : "",
						 feature_options[i][3] ? feature_options[i][3] : "")));
	}
}

static void
validate_option(DefElem *def, Oid catalog)
{
	const char *name = def->defname;

	if (catalog == ForeignDataWrapperRelationId)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("foreign-data wrapper pg_llm takes no options"),
				 errhint("Put engine options on the server and model options on the foreign table.")));

	if (!is_identifier(name))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid option name \"%s\"", name),
				 errhint("Option names are lower-case identifiers such as base_url or prompt_template.")));

	if (catalog == UserMappingRelationId && strcmp(name, "api_key") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("option \"%s\" is not valid in a user mapping of pg_llm", name),
				 errdetail("A user mapping carries only the API key; where requests go is the engine's (the server's) option."),
				 errhint("CREATE USER MAPPING FOR CURRENT_USER SERVER name OPTIONS (api_key '...')")));

	if (catalog != ForeignServerRelationId && llm_is_server_only_option(name))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("option \"%s\" is only valid on a server, not on a %s",
						name, catalog_noun(catalog)),
				 errdetail("Where an engine's requests go and what they carry is decided by the owner of its foreign server alone."),
				 errhint("Create another engine for another endpoint: SELECT llm_create_engine('name', base_url => '...');")));

	if (strcmp(name, "wrapper") == 0)
	{
		if (!is_wrapper_class_path(defGetString(def)))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid wrapper class \"%s\"", defGetString(def)),
					 errdetail("The backend imports the wrapper as the postgres operating-system user."),
					 errhint("Use a class shipped with pg_llm, e.g. 'pg_llm.fdw.ModelTable' or 'pg_llm.wrappers.echo.EchoTable'.")));
	}
	else if (strcmp(name, "api_key") == 0 && catalog != UserMappingRelationId)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("option \"api_key\" is only valid in a user mapping, not on a %s",
						catalog_noun(catalog)),
				 errdetail("Server and table options are readable by every user."),
				 errhint("CREATE USER MAPPING FOR PUBLIC SERVER name OPTIONS (api_key '...')")));
	else if (strcmp(name, "prompt_columns") == 0)
	{
		List	   *names;

		if (catalog != ForeignTableRelationId)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("option \"prompt_columns\" is only valid on a foreign table"),
					 errhint("ALTER FOREIGN TABLE name OPTIONS (ADD prompt_columns 'question')")));
		if (!SplitIdentifierString(pstrdup(defGetString(def)), ',', &names))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid prompt_columns \"%s\"", defGetString(def)),
					 errhint("Give a comma-separated list of column names, e.g. 'question, context'.")));
	}
	else if (strncmp(name, "price_", 6) == 0)
		require_nonnegative_number(def, "Prices are USD per million tokens, e.g. OPTIONS (%s '0.15').");
	else if (strcmp(name, "prompt_cost") == 0)	/* read by the planner (cost.c) */
		require_nonnegative_number(def, "A planner cost per prompt, like pg_llm.prompt_cost (default 100), e.g. OPTIONS (%s '5000').");
	else if (is_feature_option(name))
		validate_feature_option(def);
	else if (strcmp(name, "base_url") == 0)
	{
		const char *url = defGetString(def);

		const char *authority = strstr(url, "://");

		if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid base_url \"%s\"", url),
					 errhint("Give the endpoint's http:// or https:// URL, e.g. 'http://127.0.0.1:8765/v1'.")));
		/* user:password@host would sit in options every role can read */
		if (memchr(authority + 3, '@', strcspn(authority + 3, "/?#")) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("base_url must not carry credentials"),
					 errdetail("Server options are readable by every role."),
					 errhint("Give the key as api_key: SELECT llm_set_api_key('engine', '...');")));
	}
}

PG_FUNCTION_INFO_V1(pg_llm_validator);

Datum
pg_llm_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	ListCell   *cell;

	foreach(cell, options)
		validate_option(lfirst_node(DefElem, cell), catalog);

	PG_RETURN_VOID();
}

/* keep_key: only api_key; otherwise: everything but the server-only options. */
static List *
list_filter_names(List *options, bool keep_key)
{
	List	   *kept = NIL;
	ListCell   *cell;

	foreach(cell, options)
	{
		DefElem    *def = lfirst_node(DefElem, cell);
		bool		is_key = strcmp(def->defname, "api_key") == 0;

		if (keep_key ? is_key : !(is_key || llm_is_server_only_option(def->defname)))
			kept = lappend(kept, def);
	}
	return kept;
}

/*
 * The api_key of the user mapping for userid, else for PUBLIC, else none (GetUserMapping
 * would error). Only the key: mappings made before the validator refused other options
 * (0.1.0) may still hold base_url, and a role may create its own mapping.
 */
static List *
user_mapping_key(Oid userid, Oid serverid)
{
	Oid			candidates[2] = {userid, InvalidOid};
	int			i;

	for (i = 0; i < 2; i++)
	{
		HeapTuple	tuple = SearchSysCache2(USERMAPPINGUSERSERVER,
											ObjectIdGetDatum(candidates[i]),
											ObjectIdGetDatum(serverid));
		Datum		datum;
		bool		isnull;
		List	   *options = NIL;

		if (!HeapTupleIsValid(tuple))
			continue;
		datum = SysCacheGetAttr(USERMAPPINGUSERSERVER, tuple,
								Anum_pg_user_mapping_umoptions, &isnull);
		if (!isnull)
			options = untransformRelOptions(datum);
		ReleaseSysCache(tuple);
		return list_filter_names(options, true);
	}
	return NIL;
}

/*
 * Options of a scan, later ones overriding earlier ones as Multicorn merges them:
 * server, then table, then the user mapping's api_key. The result holds each name once.
 * Server-only options come from the server alone, whatever an older table holds, and
 * `engine` (what budgets and audit book the scan under) is the server's own name.
 */
List *
llm_scan_options(ForeignTable *table, ForeignServer *server, Oid userid)
{
	List	   *all = list_concat(list_concat(list_copy(server->options),
											  list_filter_names(table->options, false)),
								  user_mapping_key(userid, server->serverid));
	List	   *merged = NIL;
	ListCell   *cell;

	all = lappend(all, makeDefElem("engine", (Node *) makeString(server->servername), -1));

	foreach(cell, all)
	{
		DefElem    *def = lfirst_node(DefElem, cell);
		ListCell   *later;
		bool		overridden = false;

		for_each_cell(later, all, lnext(all, cell))
			if (strcmp(lfirst_node(DefElem, later)->defname, def->defname) == 0)
				overridden = true;
		if (!overridden)
			merged = lappend(merged, def);
	}
	return merged;
}

/* Attnos named by the table option prompt_columns: the scan needs a value for each. */
Bitmapset *
llm_prompt_attnos(Oid relid)
{
	ForeignTable *table = GetForeignTable(relid);
	Bitmapset  *attnos = NULL;
	ListCell   *cell;

	foreach(cell, table->options)
	{
		DefElem    *def = lfirst_node(DefElem, cell);
		List	   *names;
		ListCell   *name;

		if (strcmp(def->defname, "prompt_columns") != 0)
			continue;
		if (!SplitIdentifierString(pstrdup(defGetString(def)), ',', &names))
			names = NIL;		/* the validator rejects this already */
		foreach(name, names)
		{
			AttrNumber	attno = get_attnum(relid, (char *) lfirst(name));

			if (attno == InvalidAttrNumber)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("prompt_columns names column \"%s\", which foreign table \"%s\" does not have",
								(char *) lfirst(name), get_rel_name(relid)),
						 errhint("ALTER FOREIGN TABLE %s OPTIONS (SET prompt_columns '...') with existing columns.",
								 get_rel_name(relid))));
			attnos = bms_add_member(attnos, attno);
		}
	}
	return attnos;
}
