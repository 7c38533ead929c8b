#ifndef CSHARDSQLITE_SHIM_H
#define CSHARDSQLITE_SHIM_H
#include <sqlite3.h>

/// SQLITE_TRANSIENT is a cast of -1 to a function pointer, which Swift cannot import.
static inline sqlite3_destructor_type cshard_sqlite_transient(void) { return SQLITE_TRANSIENT; }
/// SQLITE_STATIC likewise (a null destructor): the caller keeps the bytes alive until the step.
static inline sqlite3_destructor_type cshard_sqlite_static(void) { return SQLITE_STATIC; }
#endif
