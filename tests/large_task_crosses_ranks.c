/*
 * large_task_crosses_ranks.c - must NOT compile (tests/meson.build runs the compiler on it and
 * expects it to fail): a task whose arguments do not fit a frame keeps them in its rank's
 * memory (pareng.h: spilled), so PARENG_TASK_CROSSES_RANKS refuses it.
 */
#include <pareng.h>

typedef struct samples {
    double x[8]; /* 64 bytes */
} samples;

PARENG_TASK_1(double, mean, samples, s)
{
    double sum = 0;
    for (int i = 0; i < 8; i++)
        sum += s.x[i];
    return sum / 8;
}
PARENG_TASK_CROSSES_RANKS(mean)
