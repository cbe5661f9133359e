/*
 * privileges.c: per-scan checks in C.
 *
 * PostgreSQL checks SELECT on the table but not USAGE on the foreign server at query time,
 * and Python runs as the extension owner: so every scan checks, as the current user
 * (or the view owner), both privileges here. Checking per scan, not per plan, keeps a
 * plan prepared before SET ROLE honest.
 */
#include "postgres.h"

#include "foreign/foreign.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "pg_llm.h"

void
llm_check_scan_privileges(Oid relid, Oid serverid, Oid userid, Bitmapset *needed)
{
	int			attno = -1;

	if (pg_foreign_server_aclcheck(serverid, userid, ACL_USAGE) != ACLCHECK_OK)
	{
		ForeignServer *server = GetForeignServer(serverid);

		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for foreign server %s", server->servername),
				 errdetail("Foreign table \"%s\" sends its prompts to the engine (foreign server) \"%s\".",
						   get_rel_name(relid), server->servername),
				 errhint("The server's owner can run: GRANT USAGE ON FOREIGN SERVER %s TO %s;",
						 quote_identifier(server->servername),
						 quote_identifier(GetUserNameFromId(userid, false)))));
	}

	if (pg_class_aclcheck(relid, userid, ACL_SELECT) == ACLCHECK_OK)
		return;
	/* Column privileges are enough for the columns this scan reads. */
	while ((attno = bms_next_member(needed, attno)) >= 0)
		if (pg_attribute_aclcheck(relid, (AttrNumber) attno, userid, ACL_SELECT) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for foreign table %s", get_rel_name(relid)),
					 errhint("The table's owner can run: GRANT SELECT ON %s TO %s;",
							 quote_identifier(get_rel_name(relid)),
							 quote_identifier(GetUserNameFromId(userid, false)))));
	if (bms_is_empty(needed) &&
		pg_attribute_aclcheck_all(relid, userid, ACL_SELECT, ACLMASK_ANY) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for foreign table %s", get_rel_name(relid)),
				 errhint("The table's owner can run: GRANT SELECT ON %s TO %s;",
						 quote_identifier(get_rel_name(relid)),
						 quote_identifier(GetUserNameFromId(userid, false)))));
}
