/*
 * fuzz.h - what the fuzz targets of tests/fuzz share. Each target is one
 * LLVMFuzzerTestOneInput, built twice by tests/meson.build: with libFuzzer (clang,
 * -fsanitize=fuzzer: fuzz_<target>, run by tests/fuzz/run) and with the replay driver
 * (replay.c, any compiler: the meson test fuzz-<target>, which feeds the seed corpus and
 * deterministic mutations of it). A target never returns an error for bad input: bad input is
 * what it is for. It aborts (FUZZ_CHECK) when an invariant of the code under test breaks, so
 * that either driver reports the input.
 */
#ifndef PARENG_FUZZ_H
#define PARENG_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stops the process (abort: libFuzzer and the replay driver both report the input) when cond
 * is false, saying which invariant broke. */
#define FUZZ_CHECK(cond, ...)                                                                 \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s:%d: invariant broken: %s: ", __FILE__, __LINE__, #cond);      \
            fprintf(stderr, __VA_ARGS__);                                                     \
            fputc('\n', stderr);                                                              \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

/* The input as a C string (it ends at its first NUL byte, if any), to free. */
static inline char *fuzz_string(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
