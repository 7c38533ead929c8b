/*
 * Reads through the C ABI what `shardstore bench --indices FILE --json` reads natively, with the
 * same work per sample (zlib's crc32 over every member, chained in visit order), so the two
 * checksums must match and the rates compare the ABI's per-call cost. Run by tools/bench-c-abi.
 *
 *   cabi_bench INDEX STRATEGY INDICES_FILE BATCH
 *
 * BATCH 0 calls shardstore_get per sample; BATCH n > 0 calls shardstore_get_batch on n at a time.
 * Prints one JSON line: samples_per_s, checksum, k, open_s, run_s.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <zlib.h>

#include "shardstore.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void fail(const char *what, char *error) {
    fprintf(stderr, "cabi_bench: %s: %s\n", what, error ? error : "(no message)");
    exit(1);
}

static uLong crc_sample(uLong crc, const shardstore_sample *s) {
    for (size_t i = 0; i < s->member_count; i++) {
        const uint8_t *p = s->members[i].data;
        uint64_t left = s->members[i].length;
        while (left > 0) {
            uInt n = left > (1u << 30) ? (1u << 30) : (uInt)left;
            crc = crc32(crc, p, n);
            p += n;
            left -= n;
        }
    }
    return crc;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: cabi_bench INDEX STRATEGY INDICES_FILE BATCH\n");
        return 2;
    }
    size_t batch = (size_t)strtoull(argv[4], NULL, 10);
    FILE *f = fopen(argv[3], "rb");
    if (!f) fail("cannot open the indices file", NULL);
    fseek(f, 0, SEEK_END);
    size_t k = (size_t)ftell(f) / sizeof(int64_t);
    fseek(f, 0, SEEK_SET);
    int64_t *positions = malloc(k * sizeof(int64_t) + 1);
    if (fread(positions, sizeof(int64_t), k, f) != k) fail("short read of the indices file", NULL);
    fclose(f);

    char *error = NULL;
    double t0 = now();
    shardstore_open_options options;
    shardstore_open_options_init(&options);
    options.strategy = argv[2];
    shardstore_dataset *dataset = NULL;
    if (shardstore_open(argv[1], &options, &dataset, &error) != SHARDSTORE_OK) fail("open", error);
    double t1 = now();

    uLong crc = crc32(0L, Z_NULL, 0);
    if (batch == 0) {
        for (size_t i = 0; i < k; i++) {
            shardstore_sample s;
            shardstore_lease *lease;
            if (shardstore_get(dataset, positions[i], &s, &lease, &error) != SHARDSTORE_OK) fail("get", error);
            crc = crc_sample(crc, &s);
            shardstore_lease_release(lease);
        }
    } else {
        shardstore_sample *samples = malloc(batch * sizeof *samples);
        for (size_t i = 0; i < k; i += batch) {
            size_t n = k - i < batch ? k - i : batch;
            shardstore_lease *lease;
            if (shardstore_get_batch(dataset, positions + i, n, samples, &lease, &error) != SHARDSTORE_OK)
                fail("get_batch", error);
            for (size_t j = 0; j < n; j++) crc = crc_sample(crc, &samples[j]);
            shardstore_lease_release(lease);
        }
        free(samples);
    }
    double t2 = now();
    shardstore_close(dataset);
    printf("{\"samples_per_s\": %.0f, \"checksum\": %lu, \"k\": %zu, \"open_s\": %.3f, \"run_s\": %.3f}\n",
           (double)k / (t2 - t1), crc, k, t1 - t0, t2 - t1);
    return 0;
}
