/* fuzz_common.h: helpers shared by the libFuzzer targets of fuzz/ and by their replay
 * in tests/test_fuzz_regressions.c: a private temp directory for file-based readers,
 * NUL-terminated copies of inputs, and checks that abort (so libFuzzer reports a crash)
 * when the library breaks its own contract on a bad input.
 *
 * Each target file defines `int fuzz_<target>_one(const uint8_t *data, size_t size)`
 * and, unless CSER_FUZZ_REPLAY is defined, the libFuzzer entry point that calls it. The
 * replay test defines CSER_FUZZ_REPLAY and includes every target file, so the helpers
 * here are static inline (one copy per translation unit, no unused warnings).
 */
#ifndef CSER_FUZZ_COMMON_H
#define CSER_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cser/cser.h"

/* Aborts with a message when cond is false: the fuzzer saves the input as a crash. */
#define FUZZ_ASSERT(cond, ...)                                                \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "fuzz: %s:%d: check '%s' failed: ", __FILE__,     \
                    __LINE__, #cond);                                         \
            fprintf(stderr, __VA_ARGS__);                                     \
            fprintf(stderr, "\n");                                            \
            abort();                                                          \
        }                                                                     \
    } while (0)

/* The contract of every library call on any input: a known status; a failure carries
 * a non-empty message; CSER_ERR_INTERNAL (a broken invariant) never happens. Call
 * cser_error_clear() before the call being checked. */
static inline cser_status fuzz_check_status(cser_status s, const char *call)
{
    FUZZ_ASSERT(s >= CSER_OK && s <= CSER_ERR_INTERNAL, "%s returned status %d", call,
                (int)s);
    FUZZ_ASSERT(s != CSER_ERR_INTERNAL, "%s: internal error: %s", call,
                cser_last_error());
    FUZZ_ASSERT(s == CSER_OK || cser_last_error()[0] != '\0',
                "%s failed (%s) without a message", call, cser_status_str(s));
    return s;
}

/* A malloc'ed NUL-terminated copy of the input (the string ends at its first NUL). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    FUZZ_ASSERT(s != NULL, "out of memory for %zu bytes", size + 1);
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#define FUZZ_MAX_FILES 8

typedef struct {
    char dir[64];                       /* mkdtemp'd, "" until first use */
    char names[FUZZ_MAX_FILES][96];     /* files written in it           */
    int nnames;
} fuzz_tmp_state;

static inline fuzz_tmp_state *fuzz_tmp(void)
{
    static fuzz_tmp_state st;
    return &st;
}

static inline void fuzz_tmp_remove(void)
{
    fuzz_tmp_state *t = fuzz_tmp();
    for (int i = 0; i < t->nnames; i++)
        unlink(t->names[i]);
    if (t->dir[0])
        rmdir(t->dir);
    t->dir[0] = '\0';
    t->nnames = 0;
}

/* A private directory, in /dev/shm when it exists (no disk traffic), created once and
 * removed at exit. */
static inline const char *fuzz_tmpdir(void)
{
    fuzz_tmp_state *t = fuzz_tmp();
    if (t->dir[0])
        return t->dir;
    snprintf(t->dir, sizeof t->dir, "/dev/shm/cser-fuzz-XXXXXX");
    if (!mkdtemp(t->dir)) {
        snprintf(t->dir, sizeof t->dir, "/tmp/cser-fuzz-XXXXXX");
        FUZZ_ASSERT(mkdtemp(t->dir) != NULL, "cannot create a temp directory");
    }
    atexit(fuzz_tmp_remove);
    return t->dir;
}

/* Writes bytes to the file `name` of the temp directory; its path goes into path. */
static inline void fuzz_write_file(const char *name, const uint8_t *data, size_t size,
                                   char *path, size_t cap)
{
    fuzz_tmp_state *t = fuzz_tmp();
    snprintf(path, cap, "%s/%s", fuzz_tmpdir(), name);
    int known = 0;
    for (int i = 0; i < t->nnames; i++)
        known |= strcmp(t->names[i], path) == 0;
    if (!known && t->nnames < FUZZ_MAX_FILES)
        snprintf(t->names[t->nnames++], sizeof t->names[0], "%s", path);
    FILE *f = fopen(path, "wb");
    FUZZ_ASSERT(f != NULL, "cannot write %s", path);
    FUZZ_ASSERT(size == 0 || fwrite(data, 1, size, f) == size, "short write to %s", path);
    FUZZ_ASSERT(fclose(f) == 0, "cannot close %s", path);
}

/* Little-endian 16-bit length prefix: the first bytes of an input that is split in
 * two parts. */
static inline size_t fuzz_u16(const uint8_t *p)
{
    return (size_t)p[0] | (size_t)p[1] << 8;
}

#endif
