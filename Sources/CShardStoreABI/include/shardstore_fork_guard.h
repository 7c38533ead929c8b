/*
 * The fork guard of libShardStoreC.so (internal: not part of shardstore.h, not exported).
 *
 * fork() copies one thread. A thread of the parent that was inside the library at that moment may
 * have held a lock of SQLite (its global mutexes), of the Swift runtime or of ShardStore; in the
 * child that lock is never released, and the first call that needs it blocks forever. So every
 * entry point holds this guard shared while it runs, and a pthread_atfork handler takes it
 * exclusively around fork(): a fork waits until no thread is inside the library, and no thread
 * enters until the fork is done. Shared holders do not wait for each other.
 */
#ifndef SHARDSTORE_FORK_GUARD_H
#define SHARDSTORE_FORK_GUARD_H

/* Enter and leave an entry point; an entry point must not enter again before it leaves. */
void shardstore_fork_guard_enter(void);
void shardstore_fork_guard_leave(void);

/* This process's id without a system call: kept by the library's constructor and its
   pthread_atfork child handler (a process made by fork() gets its own). */
#include <sys/types.h>
pid_t shardstore_process_id(void);

#endif
