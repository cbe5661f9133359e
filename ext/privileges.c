/*
 * privileges.c: per-scan checks in C.
 *
 * Python runs as the extension owner, so every scan checks here, as the scanning role (the
 * current user, or the view owner), SELECT on the table or on the columns it reads. USAGE
 * on the engine (the foreign server) is what lets a role aim a table at the engine and
 * spend its key; PostgreSQL checks it when the table is created, and this check keeps
 * it true for the table's owner at every scan (the engine's owner can revoke it). The
 * scanning role needs no USAGE: SELECT on one model lets it ask that model and nothing else.
 * Checking per scan, not per plan, keeps a plan prepared before SET ROLE honest.
 *
 * PostgreSQL's own SELECT check runs before the scan and says only "permission denied":
 * planning checks first, so that a role with no SELECT at all is told which GRANT it needs.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "pg_llm.h"

static Oid
relation_owner(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

static void
deny_select(Oid relid, Oid userid)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied for foreign table %s", get_rel_name(relid)),
			 errdetail("Foreign table \"%s\" is a model: asking it needs SELECT on it.",
					   get_rel_name(relid)),
			 errhint("The model's owner can run: GRANT SELECT ON %s TO %s;",
					 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
												get_rel_name(relid)),
					 quote_identifier(GetUserNameFromId(userid, false)))));
}

void
llm_check_scan_privileges(Oid relid, Oid serverid, Oid userid, Bitmapset *needed)
{
	Oid			owner = relation_owner(relid);
	int			attno = -1;

	if (pg_foreign_server_aclcheck(serverid, owner, ACL_USAGE) != ACLCHECK_OK)
	{
		ForeignServer *server = GetForeignServer(serverid);

		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for foreign server %s", server->servername),
				 errdetail("Foreign table \"%s\" sends its prompts to the engine (foreign server) \"%s\", and its owner %s may not use that engine.",
						   get_rel_name(relid), server->servername,
						   GetUserNameFromId(owner, false)),
				 errhint("The server's owner can run: GRANT USAGE ON FOREIGN SERVER %s TO %s;",
						 quote_identifier(server->servername),
						 quote_identifier(GetUserNameFromId(owner, false)))));
	}

	if (pg_class_aclcheck(relid, userid, ACL_SELECT) == ACLCHECK_OK)
		return;
	/* Column privileges are enough for the columns this scan reads. */
	while ((attno = bms_next_member(needed, attno)) >= 0)
		if (pg_attribute_aclcheck(relid, (AttrNumber) attno, userid, ACL_SELECT) != ACLCHECK_OK)
			deny_select(relid, userid);
	if (bms_is_empty(needed) &&
		pg_attribute_aclcheck_all(relid, userid, ACL_SELECT, ACLMASK_ANY) != ACLCHECK_OK)
		deny_select(relid, userid);
}

/* At plan time: no SELECT on the model nor on any of its columns (the executor would refuse). */
void
llm_check_plan_privileges(RelOptInfo *baserel, Oid relid)
{
	Oid			userid = OidIsValid(baserel->userid) ? baserel->userid : GetUserId();

	if (pg_class_aclcheck(relid, userid, ACL_SELECT) != ACLCHECK_OK &&
		pg_attribute_aclcheck_all(relid, userid, ACL_SELECT, ACLMASK_ANY) != ACLCHECK_OK)
		deny_select(relid, userid);
}
