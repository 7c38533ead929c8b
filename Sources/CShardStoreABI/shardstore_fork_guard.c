// The fork guard: see include/shardstore_fork_guard.h.
#define _GNU_SOURCE
#include "shardstore_fork_guard.h"

#include <pthread.h>
#include <unistd.h>

// Writers first: with glibc's default (readers first), threads that keep reading keep the count
// of readers above zero and a fork waits forever. Entry points never enter the guard again while
// holding it (no entry point calls another), which this kind of lock requires.
#ifdef PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP
#define GUARD_INITIALIZER PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP
#else
#define GUARD_INITIALIZER PTHREAD_RWLOCK_INITIALIZER
#endif
static pthread_rwlock_t guard = GUARD_INITIALIZER;

// This process's id, set when the library is loaded and again in a child after fork(): getpid()
// is a system call, and every entry point asks.
static volatile pid_t process_id;

static void before_fork(void) { pthread_rwlock_wrlock(&guard); }

// The parent's forking thread releases the lock it took.
static void after_fork_in_parent(void) { pthread_rwlock_unlock(&guard); }

// The child's only thread was the forking thread, but with a new thread id, which glibc's unlock
// does not recognize as the writer's: the lock is made anew instead (nobody else can hold it).
static void after_fork_in_child(void) {
    pthread_rwlock_t fresh = GUARD_INITIALIZER;
    guard = fresh;
    process_id = getpid();
}

__attribute__((constructor)) static void install_fork_guard(void) {
    process_id = getpid();
    pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
}

void shardstore_fork_guard_enter(void) { pthread_rwlock_rdlock(&guard); }

void shardstore_fork_guard_leave(void) { pthread_rwlock_unlock(&guard); }

pid_t shardstore_process_id(void) { return process_id; }
