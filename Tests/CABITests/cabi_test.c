/*
 * The C ABI from C: libShardStoreC.so as a C program (or Python's ctypes) sees it. Run by
 * tools/test-c-abi, which makes the dataset and checks what this program writes.
 *
 *   cabi_test INDEX STRATEGY LOOKUP COUNT OUTDIR
 *
 * Reads every sample of INDEX (COUNT samples) with STRATEGY and LOOKUP and writes OUTDIR/<position>.key and
 * OUTDIR/<position>.<ext> for the script to compare with the shards; OUTDIR/splits.json and
 * OUTDIR/metadata.json. Checks in itself: batches equal single reads, positions by key, error
 * codes and messages, storage order, leases outliving their dataset, and reading in a forked
 * child (from several threads at once) after the parent opened and read; with the statements
 * lookup, that the child opened connections of its own to the index. Exits 1 at the first
 * failure, saying what failed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shardstore.h"

static const char *strategy;
static const char *lookup;

#define CHECK(cond, ...)                                                                          \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "cabi_test (%s, %s) line %d: ", strategy, lookup, __LINE__);          \
            fprintf(stderr, __VA_ARGS__);                                                         \
            fprintf(stderr, "\n");                                                                \
            exit(1);                                                                              \
        }                                                                                         \
    } while (0)

/* Checks a call succeeded, printing its message otherwise. */
#define OK(call)                                                                                  \
    do {                                                                                          \
        char *error_ = NULL;                                                                      \
        shardstore_status status_ = (call);                                                       \
        CHECK(status_ == SHARDSTORE_OK, "%s gave %d: %s", #call, (int)status_,                   \
              error_ ? error_ : "(no message)");                                                  \
    } while (0)

/* Checks a call failed with `code` and message `message` (NULL: any message). */
#define FAILS(call, code, message, what)                                                          \
    do {                                                                                          \
        char *error_ = NULL;                                                                      \
        shardstore_status status_ = (call);                                                       \
        expect_failure(status_, error_, code, message, what);                                     \
    } while (0)

static void expect_failure(shardstore_status status, char *error, shardstore_status code,
                           const char *message, const char *what) {
    CHECK(status == code, "%s gave %d (%s), expected %d", what, (int)status, error ? error : "-", (int)code);
    CHECK(error != NULL, "%s left no message", what);
    if (message) CHECK(strcmp(error, message) == 0, "%s said\n  %s\nexpected\n  %s", what, error, message);
    CHECK(strchr(error, '\n') == NULL, "%s: the message is not one line: %s", what, error);
    shardstore_string_free(error);
}

/* A copy of a sample, to compare across calls, closes and forks. */
typedef struct copied_sample {
    uint8_t *key;
    size_t key_length;
    int64_t position, index;
    size_t member_count;
    char **exts;
    uint8_t **data;
    uint64_t *lengths;
} copied_sample;

static copied_sample copy_sample(const shardstore_sample *s) {
    copied_sample c = {0};
    c.key = malloc(s->key_length + 1);
    memcpy(c.key, s->key, s->key_length);
    c.key_length = s->key_length;
    c.position = s->position;
    c.index = s->index;
    c.member_count = s->member_count;
    c.exts = calloc(s->member_count + 1, sizeof(char *));
    c.data = calloc(s->member_count + 1, sizeof(uint8_t *));
    c.lengths = calloc(s->member_count + 1, sizeof(uint64_t));
    for (size_t i = 0; i < s->member_count; i++) {
        const shardstore_member *m = &s->members[i];
        CHECK(m->ext[m->ext_length] == '\0' && strlen(m->ext) == m->ext_length, "ext not NUL-terminated");
        CHECK((m->length == 0) == (m->data == NULL), "data must be NULL exactly when length is 0");
        c.exts[i] = strdup(m->ext);
        c.data[i] = malloc(m->length + 1);
        if (m->length) memcpy(c.data[i], m->data, m->length);
        c.lengths[i] = m->length;
    }
    return c;
}

/* Whether `s` (a leased sample) equals the copy `c`. */
static int same(const shardstore_sample *s, const copied_sample *c) {
    if (s->key_length != c->key_length || memcmp(s->key, c->key, c->key_length) != 0) return 0;
    if (s->position != c->position || s->index != c->index || s->member_count != c->member_count) return 0;
    for (size_t i = 0; i < c->member_count; i++) {
        const shardstore_member *m = &s->members[i];
        if (strcmp(m->ext, c->exts[i]) != 0 || m->length != c->lengths[i]) return 0;
        if (m->length && memcmp(m->data, c->data[i], m->length) != 0) return 0;
    }
    return 1;
}

static void write_file(const char *dir, const char *name, const void *bytes, size_t length) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot write %s: %s", path, strerror(errno));
    CHECK(fwrite(bytes, 1, length, f) == length && fclose(f) == 0, "cannot write %s", path);
}

static shardstore_dataset *open_dataset(const char *index, const char *split) {
    shardstore_open_options options;
    shardstore_open_options_init(&options);
    options.strategy = strategy;
    options.lookup = lookup;
    options.split = split;
    shardstore_dataset *dataset = NULL;
    OK(shardstore_open(index, &options, &dataset, &error_));
    return dataset;
}

/* ---- fork ---------------------------------------------------------------------------------- */

typedef struct reader_job {
    shardstore_dataset *dataset;
    copied_sample *expected;
    int64_t count;
    int thread;
    int failures;
} reader_job;

static void *read_all(void *argument) {
    reader_job *job = argument;
    for (int64_t i = 0; i < job->count; i++) {
        int64_t p = (i * 7 + job->thread * 3) % job->count;
        shardstore_sample s;
        shardstore_lease *lease = NULL;
        char *error = NULL;
        if (shardstore_get(job->dataset, p, &s, &lease, &error) != SHARDSTORE_OK) {
            fprintf(stderr, "child thread %d, position %" PRId64 ": %s\n", job->thread, p, error ? error : "-");
            shardstore_string_free(error);
            job->failures++;
            continue;
        }
        if (!same(&s, &job->expected[p])) {
            fprintf(stderr, "child thread %d, position %" PRId64 ": other bytes than the parent read\n",
                    job->thread, p);
            job->failures++;
        }
        shardstore_lease_release(lease);
    }
    return NULL;
}

/* The number of this process's descriptors open on the file at `path`. */
static int descriptors_on(const char *path) {
    char real[PATH_MAX], link[PATH_MAX + 32], target[PATH_MAX];
    CHECK(realpath(path, real) != NULL, "realpath %s", path);
    DIR *dir = opendir("/proc/self/fd");
    CHECK(dir != NULL, "/proc/self/fd");
    int n = 0;
    for (struct dirent *e; (e = readdir(dir)) != NULL;) {
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        ssize_t length = readlink(link, target, sizeof target - 1);
        if (length < 0) continue;
        target[length] = '\0';
        if (strcmp(target, real) == 0) n++;
    }
    closedir(dir);
    return n;
}

/* In a child: checks a lease the parent took before the fork, reads every sample from `threads`
   threads at once (their first calls race to reopen the dataset), releases the lease and closes.
   With one thread and the statements lookup, also checks that the child opened a connection of
   its own: one thread alone would otherwise reuse the parent's idle connection. */
static int child_reads(const char *index, shardstore_dataset *dataset, copied_sample *expected, int64_t count,
                       const shardstore_sample *before_fork, shardstore_lease *lease, int threads) {
    int inherited = descriptors_on(index);
    if (!same(before_fork, &expected[0])) {
        fprintf(stderr, "child: the lease taken before the fork changed\n");
        return 1;
    }
    pthread_t ids[4];
    reader_job jobs[4];
    for (int t = 0; t < threads; t++) {
        jobs[t] = (reader_job){dataset, expected, count, t, 0};
        if (pthread_create(&ids[t], NULL, read_all, &jobs[t]) != 0) return 1;
    }
    int failures = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(ids[t], NULL);
        failures += jobs[t].failures;
    }
    if (threads == 1 && strcmp(lookup, "statements") == 0 && descriptors_on(index) <= inherited) {
        fprintf(stderr, "child: no connection of its own to the index (%d descriptors before reading, %d after)\n",
                inherited, descriptors_on(index));
        failures++;
    }
    shardstore_lease_release(lease);
    shardstore_close(dataset);
    return failures ? 1 : 0;
}

/* Readers that loop until told to stop, for forks made while they read. */
typedef struct looping_job {
    reader_job job;
    volatile int stop;
} looping_job;

static void *read_until_stopped(void *argument) {
    looping_job *l = argument;
    while (!l->stop && l->job.failures == 0) read_all(&l->job);
    return NULL;
}

/* In a child forked while other threads were inside the library: one read, then exit. */
static int child_reads_once(shardstore_dataset *dataset, copied_sample *expected, int64_t count, int round) {
    int64_t p = (round * 11) % count;
    shardstore_sample s;
    shardstore_lease *lease = NULL;
    char *error = NULL;
    if (shardstore_get(dataset, p, &s, &lease, &error) != SHARDSTORE_OK) {
        fprintf(stderr, "child of round %d: %s\n", round, error ? error : "-");
        return 1;
    }
    int ok = same(&s, &expected[p]);
    shardstore_lease_release(lease);
    return ok ? 0 : 1;
}

/* Forks `rounds` times while 3 threads read: every child must read and exit within 30 s (a child
   that finds a lock held by a thread it does not have, SQLite's among them, never does). */
static void fork_while_reading(shardstore_dataset *dataset, copied_sample *expected, int64_t count, int rounds) {
    looping_job readers[3];
    pthread_t ids[3];
    for (int t = 0; t < 3; t++) {
        readers[t] = (looping_job){{dataset, expected, count, t, 0}, 0};
        CHECK(pthread_create(&ids[t], NULL, read_until_stopped, &readers[t]) == 0, "pthread_create");
    }
    for (int round = 0; round < rounds; round++) {
        fflush(NULL);
        pid_t child = fork();
        CHECK(child >= 0, "fork: %s", strerror(errno));
        if (child == 0) _exit(child_reads_once(dataset, expected, count, round));
        int wstatus = 0;
        int waited = 0;
        pid_t done;
        while ((done = waitpid(child, &wstatus, WNOHANG)) == 0 && waited < 30000) {
            usleep(1000);
            waited++;
        }
        if (done == 0) {
            kill(child, SIGKILL);
            waitpid(child, &wstatus, 0);
        }
        CHECK(done == child, "a child forked while 3 threads read did not finish in 30 s (round %d): deadlocked",
              round);
        CHECK(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0, "a child forked while 3 threads read failed (round %d)",
              round);
    }
    for (int t = 0; t < 3; t++) {
        readers[t].stop = 1;
        pthread_join(ids[t], NULL);
        CHECK(readers[t].job.failures == 0, "a reading thread failed while the process forked");
    }
}

/* ---- loader and fork ------------------------------------------------------------------------ */

/* In a child forked while the parent's loader threads read: the loader refuses (it has no reader
   threads here), the dataset still reads. */
static int child_after_loader_fork(shardstore_dataset *dataset, shardstore_loader *loader, copied_sample *expected,
                                   int64_t count) {
    shardstore_batch batch;
    shardstore_lease *lease = NULL;
    char *error = NULL;
    shardstore_status status = shardstore_loader_next(loader, &batch, &lease, &error);
    if (status != SHARDSTORE_INVALID_ARGUMENT || error == NULL || strstr(error, "make loaders after forking") == NULL) {
        fprintf(stderr, "child: loader_next gave %d (%s), expected a refusal\n", (int)status, error ? error : "-");
        return 1;
    }
    shardstore_string_free(error);
    shardstore_loader_close(loader); /* frees nothing here, must not hang */
    return child_reads_once(dataset, expected, count, 3);
}

/* An epoch of a shuffled loader with 3 reader threads, forking after every batch: each child
   finishes (a fork waits for the readers' current batch, never deadlocks), and the parent's epoch
   is exactly the permutation. */
static void loader_while_forking(shardstore_dataset *dataset, copied_sample *expected, int64_t count) {
    shardstore_loader_options options;
    shardstore_loader_options_init(&options);
    options.order = SHARDSTORE_ORDER_SHUFFLE;
    options.batch_size = 3;
    options.seed = 9;
    options.threads = 3;
    options.prefetch = 6;
    options.collate = SHARDSTORE_COLLATE_BYTES;
    shardstore_loader *loader = NULL;
    OK(shardstore_loader_open(dataset, &options, &loader, &error_));
    char *seen = calloc((size_t)count, 1);
    int64_t total = 0;
    for (int round = 0;; round++) {
        shardstore_batch batch;
        shardstore_lease *lease = NULL;
        OK(shardstore_loader_next(loader, &batch, &lease, &error_));
        if (lease == NULL) break;
        for (int64_t i = 0; i < batch.count; i++) {
            int64_t p = batch.positions[i];
            CHECK(p >= 0 && p < count && !seen[p], "loader: position %" PRId64 " repeated or out of range", p);
            seen[p] = 1;
            /* The first member of every sample, from its column, equals a single read. */
            const copied_sample *e = &expected[p];
            for (size_t c = 0; c < batch.column_count; c++) {
                const shardstore_column *col = &batch.columns[c];
                CHECK(col->layout == SHARDSTORE_LAYOUT_BYTES, "collate bytes gave layout %u", col->layout);
                for (size_t m = 0; m < e->member_count; m++) {
                    if (strlen(e->exts[m]) != col->ext_length || memcmp(e->exts[m], col->ext, col->ext_length) != 0)
                        continue;
                    CHECK(col->present[i], "loader: position %" PRId64 " lacks .%s", p, e->exts[m]);
                    uint64_t length = (uint64_t)(col->offsets[i + 1] - col->offsets[i]);
                    CHECK(length == e->lengths[m] &&
                              memcmp((const char *)col->data + col->offsets[i], e->data[m], length) == 0,
                          "loader: position %" PRId64 " .%s differs from shardstore_get", p, e->exts[m]);
                }
            }
        }
        total += batch.count;
        shardstore_lease_release(lease);
        fflush(NULL);
        pid_t child = fork();
        CHECK(child >= 0, "fork: %s", strerror(errno));
        if (child == 0) _exit(child_after_loader_fork(dataset, loader, expected, count));
        int wstatus = 0;
        int waited = 0;
        pid_t done;
        while ((done = waitpid(child, &wstatus, WNOHANG)) == 0 && waited < 30000) {
            usleep(1000);
            waited++;
        }
        if (done == 0) {
            kill(child, SIGKILL);
            waitpid(child, &wstatus, 0);
        }
        CHECK(done == child, "a child forked while the loader read did not finish in 30 s (round %d)", round);
        CHECK(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0, "a child forked while the loader read failed (round %d)",
              round);
    }
    CHECK(total == count, "the loader's epoch had %" PRId64 " samples, expected %" PRId64, total, count);
    free(seen);
    shardstore_loader_close(loader);
}

/* ---- main ---------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: cabi_test INDEX STRATEGY LOOKUP COUNT OUTDIR\n");
        return 2;
    }
    const char *index = argv[1];
    strategy = argv[2];
    lookup = argv[3];
    int64_t count = strtoll(argv[4], NULL, 10);
    const char *out = argv[5];

    CHECK(shardstore_abi_version() == SHARDSTORE_ABI_VERSION, "ABI version %u", shardstore_abi_version());
    CHECK(strlen(shardstore_version()) > 0, "empty version");

    shardstore_dataset *dataset = open_dataset(index, NULL);
    CHECK(shardstore_count(dataset) == count, "count %" PRId64 ", expected %" PRId64, shardstore_count(dataset), count);
    shardstore_dataset_info info = {.struct_size = sizeof info};
    OK(shardstore_info(dataset, &info, &error_));
    CHECK(strcmp(info.strategy, strategy) == 0, "strategy %s", info.strategy);
    CHECK(strcmp(lookup, "auto") == 0 || strcmp(info.lookup, lookup) == 0, "lookup %s", info.lookup);
    CHECK(info.count == count && info.split == NULL && strcmp(info.index_path, index) == 0, "info");

    /* Every sample, written out for the script; kept for the checks below. */
    copied_sample *expected = calloc((size_t)count, sizeof *expected);
    for (int64_t p = 0; p < count; p++) {
        shardstore_sample s;
        shardstore_lease *lease = NULL;
        OK(shardstore_get(dataset, p, &s, &lease, &error_));
        CHECK(s.position == p && s.index == p, "position %" PRId64 " read as %" PRId64 "/%" PRId64, p, s.position, s.index);
        expected[p] = copy_sample(&s);
        char name[256];
        snprintf(name, sizeof name, "%" PRId64 ".key", p);
        write_file(out, name, s.key, s.key_length);
        for (size_t i = 0; i < s.member_count; i++) {
            snprintf(name, sizeof name, "%" PRId64 ".%s", p, s.members[i].ext);
            write_file(out, name, s.members[i].data, s.members[i].length);
        }
        shardstore_lease_release(lease);

        int64_t found = -1;
        OK(shardstore_position(dataset, expected[p].key, expected[p].key_length, &found, &error_));
        CHECK(found == p, "key of position %" PRId64 " found at %" PRId64, p, found);
    }

    /* A batch, in reverse with a repeat, equals the single reads. */
    int64_t *positions = malloc(sizeof(int64_t) * (size_t)(count + 1));
    for (int64_t i = 0; i < count; i++) positions[i] = count - 1 - i;
    positions[count] = 0;
    shardstore_sample *batch = calloc((size_t)count + 1, sizeof *batch);
    shardstore_lease *batch_lease = NULL;
    OK(shardstore_get_batch(dataset, positions, (size_t)count + 1, batch, &batch_lease, &error_));
    for (int64_t i = 0; i <= count; i++) CHECK(same(&batch[i], &expected[positions[i]]), "batch item %" PRId64, i);
    shardstore_lease_release(batch_lease);

    /* shardstore_get_into: every sample, in reverse, equals the single reads; its keeper lease is
       reused while it keeps the bytes (the preload: always; a mapping: within a shard; pread: never,
       each read has a buffer of its own), and every keeper taken still holds its sample's bytes
       after later reads. */
    {
        shardstore_member members[64];
        char text[4096];
        shardstore_lease *keeper = NULL;
        shardstore_lease **taken = calloc((size_t)count, sizeof *taken);
        size_t distinct = 0;
        shardstore_sample *read = calloc((size_t)count, sizeof *read);
        shardstore_member (*kept_members)[64] = calloc((size_t)count, sizeof *kept_members);
        for (int64_t i = 0; i < count; i++) {
            int64_t p = count - 1 - i;
            shardstore_lease *before = keeper;
            OK(shardstore_get_into(dataset, p, &read[p], members, 64, text, sizeof text, &keeper, &error_));
            CHECK(read[p].members == members, "get_into described position %" PRId64 " elsewhere", p);
            CHECK(same(&read[p], &expected[p]), "get_into(%" PRId64 ") differs from shardstore_get", p);
            if (read[p].member_count > 0) CHECK(keeper != NULL, "get_into(%" PRId64 ") kept nothing", p);
            if (keeper != before) taken[distinct++] = keeper;
            /* Keep the member pointers (the text is reused): their bytes must stay. */
            memcpy(kept_members[p], members, sizeof members);
            read[p].members = kept_members[p];
            read[p].key = (const uint8_t *)expected[p].key;
            for (size_t m = 0; m < read[p].member_count; m++) kept_members[p][m].ext = expected[p].exts[m];
        }
        if (strcmp(strategy, "memory") == 0) CHECK(distinct == 1, "the preload took %zu keeper leases", distinct);
        if (strcmp(strategy, "pread") == 0)
            CHECK(distinct == (size_t)count, "pread reads took %zu keeper leases for %" PRId64 " samples", distinct,
                  count);
        for (int64_t p = 0; p < count; p++)
            CHECK(same(&read[p], &expected[p]), "position %" PRId64 " changed after later get_into reads", p);
        for (size_t i = 0; i < distinct; i++) shardstore_lease_release(taken[i]);
        /* Too little room: BUFFER_TOO_SMALL with what the sample needs, the keeper untouched. */
        shardstore_sample small;
        shardstore_lease *untouched = (shardstore_lease *)&small;
        FAILS(shardstore_get_into(dataset, 0, &small, members, 0, text, sizeof text, &untouched, &error_),
              SHARDSTORE_BUFFER_TOO_SMALL, NULL, "get_into(no member room)");
        CHECK(untouched == (shardstore_lease *)&small, "a failed get_into changed *keeper");
        CHECK(small.member_count == expected[0].member_count && small.key_length == expected[0].key_length,
              "BUFFER_TOO_SMALL said %zu members and a key of %zu bytes", small.member_count, small.key_length);
        FAILS(shardstore_get_into(dataset, 0, &small, members, 64, text, expected[0].key_length, &keeper, &error_),
              SHARDSTORE_BUFFER_TOO_SMALL, NULL, "get_into(text room for the key only)");
        FAILS(shardstore_get_into(dataset, 0, &small, members, 64, text, sizeof text, NULL, &error_),
              SHARDSTORE_INVALID_ARGUMENT, "keeper is NULL; pass where to store the result", "get_into(NULL keeper)");
        free(kept_members);
        free(read);
        free(taken);
    }

    /* Errors: codes and messages. */
    char message[9000];
    shardstore_sample s;
    shardstore_lease *lease = NULL;
    snprintf(message, sizeof message, "index %" PRId64 " is out of range: the dataset has %" PRId64
             " samples (valid: 0 to %" PRId64 ")", count, count, count - 1);
    FAILS(shardstore_get(dataset, count, &s, &lease, &error_), SHARDSTORE_OUT_OF_RANGE, message,
                   "get(count)");
    FAILS(shardstore_get(dataset, -1, &s, &lease, &error_), SHARDSTORE_OUT_OF_RANGE, NULL, "get(-1)");
    int64_t found = 0;
    FAILS(shardstore_position(dataset, (const uint8_t *)"nope", 4, &found, &error_),
                   SHARDSTORE_UNKNOWN_KEY, "no sample has key 'nope'; `shardstore ls INDEX` lists the keys",
                   "position(nope)");
    positions[0] = 1;
    positions[1] = count + 5;
    snprintf(message, sizeof message, "batch item 1 (position %" PRId64 "): index %" PRId64
             " is out of range: the dataset has %" PRId64 " samples (valid: 0 to %" PRId64 ")",
             count + 5, count + 5, count, count - 1);
    FAILS(shardstore_get_batch(dataset, positions, 2, batch, &lease, &error_), SHARDSTORE_OUT_OF_RANGE,
                   message, "get_batch");
    CHECK(lease == NULL, "a failed batch leased something");
    shardstore_dataset *none = NULL;
    char missing[4096];
    snprintf(missing, sizeof missing, "%s/missing.sqlite", out);
    snprintf(message, sizeof message, "index '%s' does not exist; create it with `shardstore ingest %s SHARD...`",
             missing, missing);
    FAILS(shardstore_open(missing, NULL, &none, &error_), SHARDSTORE_INDEX_NOT_FOUND, message,
                   "open(missing)");
    CHECK(none == NULL, "a failed open stored a dataset");
    FAILS(shardstore_get(NULL, 0, &s, &lease, &error_), SHARDSTORE_INVALID_ARGUMENT,
                   "dataset is NULL; pass a dataset from shardstore_open", "get(NULL)");

    /* Splits and metadata, for the script. */
    char *json = NULL;
    OK(shardstore_splits_json(dataset, &json, &error_));
    write_file(out, "splits.json", json, strlen(json));
    shardstore_string_free(json);
    OK(shardstore_metadata_json(dataset, &json, &error_));
    write_file(out, "metadata.json", json, strlen(json));
    shardstore_string_free(json);

    /* Storage order of the val split: a permutation of its positions. */
    shardstore_dataset *val = open_dataset(index, "val");
    int64_t val_count = shardstore_count(val);
    CHECK(val_count > 0 && val_count < count, "val has %" PRId64 " samples", val_count);
    int64_t *order = malloc(sizeof(int64_t) * (size_t)val_count);
    char *seen = calloc((size_t)val_count, 1);
    OK(shardstore_storage_order(val, order, (size_t)val_count, &error_));
    for (int64_t i = 0; i < val_count; i++) {
        CHECK(order[i] >= 0 && order[i] < val_count && !seen[order[i]], "storage order is not a permutation");
        seen[order[i]] = 1;
    }
    FAILS(shardstore_storage_order(val, order, (size_t)val_count - 1, &error_),
                   SHARDSTORE_BUFFER_TOO_SMALL, NULL, "storage_order(too small)");
    shardstore_close(val);

    /* A lease outlives its dataset. */
    shardstore_dataset *brief = open_dataset(index, NULL);
    OK(shardstore_get(brief, count - 1, &s, &lease, &error_));
    shardstore_close(brief);
    CHECK(same(&s, &expected[count - 1]), "a lease changed when its dataset closed");
    shardstore_lease_release(lease);

    /* Fork: a child reads a dataset the parent opened and read (one child with one thread, one
       with 4 threads); the parent goes on. */
    shardstore_sample before_fork;
    shardstore_lease *fork_lease = NULL;
    OK(shardstore_get(dataset, 0, &before_fork, &fork_lease, &error_));
    for (int threads = 1; threads <= 4; threads += 3) {
        fflush(NULL);
        pid_t child = fork();
        CHECK(child >= 0, "fork: %s", strerror(errno));
        if (child == 0) _exit(child_reads(index, dataset, expected, count, &before_fork, fork_lease, threads));
        int wstatus = 0;
        CHECK(waitpid(child, &wstatus, 0) == child, "waitpid");
        CHECK(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0, "the forked child (%d threads) failed (status %d)",
              threads, wstatus);
    }
    fork_while_reading(dataset, expected, count, 50);
    loader_while_forking(dataset, expected, count);
    CHECK(same(&before_fork, &expected[0]), "the parent's lease changed after the fork");
    shardstore_lease_release(fork_lease);
    for (int64_t p = 0; p < count; p++) {
        OK(shardstore_get(dataset, p, &s, &lease, &error_));
        CHECK(same(&s, &expected[p]), "parent after the fork: position %" PRId64, p);
        shardstore_lease_release(lease);
    }

    printf("cabi_test (%s, lookup %s): %" PRId64 " samples, batch, get_into, errors, storage order, lease after close, fork, fork while reading, loader while forking: ok\n",
           strategy, info.lookup, count);
    shardstore_close(dataset);
    return 0;
}
