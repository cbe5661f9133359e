/*
 * user_mappings.c: set one option of a user mapping without any SQL text.
 *
 * pg_llm keeps API keys and datasource passwords in user mappings. Written as DDL
 * ("ALTER USER MAPPING ... OPTIONS (SET api_key 'sk-...')") the secret is statement text,
 * which pg_stat_statements (track = all records nested utility statements as written),
 * event triggers and debug parse-tree logging can see. Here the statement is built as a
 * parse node and handed to CreateUserMapping() / AlterUserMapping() directly: the same
 * privilege checks and FDW validator as the DDL, and no query string anywhere.
 *
 *   llm._set_user_mapping_option(server name, role name, option text, value text)
 *   role NULL = PUBLIC; value NULL = drop the option.
 */
#include "postgres.h"

#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "access/xact.h"
#include "fmgr.h"
#include "foreign/foreign.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/syscache.h"

#include "pg_llm.h"

static bool
mapping_has_option(Oid userid, Oid serverid, const char *option)
{
	UserMapping *mapping = GetUserMapping(userid, serverid);
	ListCell   *lc;

	foreach(lc, mapping->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, option) == 0)
			return true;
	}
	return false;
}

PG_FUNCTION_INFO_V1(pg_llm_set_user_mapping_option);

Datum
pg_llm_set_user_mapping_option(PG_FUNCTION_ARGS)
{
	char	   *servername;
	char	   *option;
	char	   *value;
	RoleSpec   *user = makeNode(RoleSpec);
	ForeignServer *server;
	Oid			userid;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("server and option must not be NULL")));
	servername = pstrdup(NameStr(*PG_GETARG_NAME(0)));
	option = text_to_cstring(PG_GETARG_TEXT_PP(2));
	value = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));

	user->location = -1;
	if (PG_ARGISNULL(1))
	{
		user->roletype = ROLESPEC_PUBLIC;
		userid = ACL_ID_PUBLIC;
	}
	else
	{
		user->roletype = ROLESPEC_CSTRING;
		user->rolename = pstrdup(NameStr(*PG_GETARG_NAME(1)));
		userid = get_rolespec_oid(user, false);
	}
	server = GetForeignServerByName(servername, false);

	if (!SearchSysCacheExists2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(userid),
							   ObjectIdGetDatum(server->serverid)))
	{
		CreateUserMappingStmt *stmt;

		if (value == NULL)
			PG_RETURN_VOID();	/* nothing to drop */
		stmt = makeNode(CreateUserMappingStmt);
		stmt->user = user;
		stmt->servername = servername;
		stmt->if_not_exists = false;
		stmt->options = list_make1(makeDefElem(option, (Node *) makeString(value), -1));
		CreateUserMapping(stmt);
	}
	else
	{
		AlterUserMappingStmt *stmt;
		bool		has = mapping_has_option(userid, server->serverid, option);
		DefElemAction action;

		if (value == NULL && !has)
			PG_RETURN_VOID();
		action = value == NULL ? DEFELEM_DROP : (has ? DEFELEM_SET : DEFELEM_ADD);
		stmt = makeNode(AlterUserMappingStmt);
		stmt->user = user;
		stmt->servername = servername;
		stmt->options = list_make1(makeDefElemExtended(NULL, option,
													   value ? (Node *) makeString(value) : NULL,
													   action, -1));
		AlterUserMapping(stmt);
	}
	CommandCounterIncrement();
	PG_RETURN_VOID();
}
