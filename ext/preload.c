/*
 * preload.c: with pg_llm in shared_preload_libraries, start Python in the postmaster and
 * import the modules a scan needs, once; every backend then forks with them ready.
 *
 * Without it, each new connection's first model query starts PL/Python's interpreter and
 * imports pg_llm (~60 ms measured, docs/performance.md). PL/Python 15 starts Python only
 * at its first call, so preloading plpython3 alone saves nothing: we start it here.
 *
 * Fork safety: the postmaster only imports modules. No thread is started and no socket is
 * opened before fork (pg_llm.preload checks this); Python installs no signal handlers
 * (Py_InitializeEx(0)); each backend runs PyOS_AfterFork_Child() before its first Python
 * call (ClientAuthentication_hook), as after any fork, which reseeds `random` and resets
 * the threading state. libpython is reached through PL/Python's own library, so pg_llm.so
 * does not link it and a server without the preload never loads Python early.
 *
 * Exit: every process forked from us inherits the postmaster's exit handlers, among them
 * OpenSSL's OPENSSL_cleanup() (registered by PostgreSQL itself), which frees all the state
 * Python's hashlib and ssl loaded here, and the destructors of every library Python
 * brought. Run in a backend, each of those writes copies a page the backend shares with
 * the postmaster, only to free it a moment before the process ends (~1.8 ms per
 * connection, measured: docs/performance.md). So a child process ends with _exit() once
 * PostgreSQL's proc_exit() has run all of its own callbacks, as forked children usually
 * do; handlers registered in the child itself still run first (they come later, and
 * run earlier). A direct exit() that skipped proc_exit() runs everything as before.
 *
 * PL/Python registers its `plpy` module at its first call with PyImport_AppendInittab;
 * we register it first (the table is read when the interpreter starts). Python 3.12 and
 * later refuse PL/Python's second registration: there the preload is skipped (LOG).
 */
#include "postgres.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/guc.h"

#include "pg_llm.h"

bool		pg_llm_preload_python = true;

typedef int (*py_int_fn) (void);
typedef void (*py_init_fn) (int);
typedef const char *(*py_version_fn) (void);
typedef int (*py_run_fn) (const char *, void *);
typedef void (*py_void_fn) (void);
typedef void *(*py_module_init_fn) (void);
typedef int (*py_inittab_fn) (const char *, py_module_init_fn);

/*
 * libpq/auth.h declares this hook but needs the GSSAPI headers (through libpq-be.h); the
 * hook is all we use of it.
 */
struct Port;
typedef void (*llm_client_auth_hook_type) (struct Port *port, int status);
extern PGDLLIMPORT llm_client_auth_hook_type ClientAuthentication_hook;

static py_void_fn after_fork_child = NULL;
static llm_client_auth_hook_type prev_client_auth_hook = NULL;

/* Each backend is a fork of the postmaster: tell Python, before anything runs it. */
static void
llm_backend_after_fork(struct Port *port, int status)
{
	if (after_fork_child != NULL)
		after_fork_child();
	if (prev_client_auth_hook)
		prev_client_auth_hook(port, status);
}

static void *
python_symbol(const char *name)
{
	void	   *symbol = dlsym(RTLD_DEFAULT, name);

	if (symbol == NULL)
		ereport(LOG,
				(errmsg("pg_llm: Python symbol %s not found, Python is not preloaded", name)));
	return symbol;
}

/*
 * on_exit() handler, registered in the postmaster after the handlers it should skip:
 * in a child whose proc_exit() has finished, end now with the same status.
 */
static void
llm_child_fast_exit(int status, void *arg)
{
	if (!IsUnderPostmaster || !proc_exit_inprogress)
		return;
	fflush(NULL);				/* what exit() would still do for stdio */
	_exit(status);
}

/* The code run in the postmaster: names nothing in __main__ (PL/Python's globals). */
static char *
preload_code(const char *path)
{
	StringInfoData code;
	const char *p;

	initStringInfo(&code);
	/* the path as hex: no quoting to get wrong */
	appendStringInfoString(&code, "[__import__('sys').path.insert(0, bytes.fromhex('");
	for (p = path; *p; p++)
		appendStringInfo(&code, "%02x", (unsigned char) *p);
	appendStringInfoString(&code, "').decode()), __import__('pg_llm.preload')]");
	return code.data;
}

void
llm_preload_python(void)
{
	py_int_fn	is_initialized;
	py_init_fn	initialize;
	py_version_fn version;
	py_run_fn	run;
	py_inittab_fn append_inittab;
	py_module_init_fn init_plpy;
	const char *v;
	int			major = 0,
				minor = 0;

	if (!process_shared_preload_libraries_in_progress)
		return;
	/* POSTMASTER: a backend cannot start Python before fork after the fact */
	DefineCustomBoolVariable("pg_llm.preload_python",
							 "Start Python and import pg_llm in the postmaster (pg_llm in shared_preload_libraries).",
							 "Each new connection's first model query then skips starting the interpreter and importing modules.",
							 &pg_llm_preload_python,
							 true,
							 PGC_POSTMASTER,
							 0,
							 NULL, NULL, NULL);
	if (!pg_llm_preload_python)
		return;

	/* PL/Python's library brings libpython into the process, RTLD_GLOBAL */
	PG_TRY();
	{
		load_file("$libdir/plpython3", false);
	}
	PG_CATCH();
	{
		/* no PL/Python installed: start without Python rather than not at all */
		EmitErrorReport();
		FlushErrorState();
		ereport(LOG,
				(errmsg("pg_llm: Python is not preloaded: PL/Python (plpython3) could not be loaded")));
		return;
	}
	PG_END_TRY();

	is_initialized = (py_int_fn) python_symbol("Py_IsInitialized");
	initialize = (py_init_fn) python_symbol("Py_InitializeEx");
	version = (py_version_fn) python_symbol("Py_GetVersion");
	run = (py_run_fn) python_symbol("PyRun_SimpleStringFlags");
	append_inittab = (py_inittab_fn) python_symbol("PyImport_AppendInittab");
	init_plpy = (py_module_init_fn) python_symbol("PyInit_plpy");
	after_fork_child = (py_void_fn) python_symbol("PyOS_AfterFork_Child");
	if (!is_initialized || !initialize || !version || !run || !append_inittab || !init_plpy ||
		!after_fork_child)
	{
		after_fork_child = NULL;
		return;
	}

	v = version();
	if (sscanf(v, "%d.%d", &major, &minor) != 2 || major != 3 || minor >= 12)
	{
		ereport(LOG,
				(errmsg("pg_llm: Python is not preloaded: Python %d.%d lets PL/Python register its module only before the interpreter starts", major, minor),
				 errhint("Remove pg_llm from shared_preload_libraries, or set pg_llm.preload_python = off.")));
		after_fork_child = NULL;
		return;
	}

	if (!is_initialized())
	{
		/*
		 * As PL/Python's first call does: `plpy` must be a built-in module before the
		 * interpreter starts (sys.builtin_module_names is fixed then). PL/Python's own
		 * registration in the backend later is a harmless duplicate.
		 */
		if (append_inittab("plpy", init_plpy) != 0)
		{
			after_fork_child = NULL;
			return;
		}
		initialize(0);			/* 0: no Python signal handlers in the postmaster */
	}

	if (run(preload_code(pg_llm_python_path ? pg_llm_python_path : ""), NULL) != 0)
		ereport(WARNING,
				(errmsg("pg_llm: could not import the pg_llm modules in the postmaster"),
				 errdetail("The Python traceback is in the server log above."),
				 errhint("Backends will import them at their first model query. Check pg_llm.python_path.")));
	else
		ereport(LOG,
				(errmsg("pg_llm: Python %d.%d started and pg_llm imported in the postmaster", major, minor)));

	prev_client_auth_hook = ClientAuthentication_hook;
	ClientAuthentication_hook = llm_backend_after_fork;
	if (on_exit(llm_child_fast_exit, NULL) != 0)
		ereport(LOG,
				(errmsg("pg_llm: could not register the exit handler; backends run all exit handlers")));
}
