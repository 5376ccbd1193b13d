/*
 * cilksort.c - Cilk-5's parallel merge sort (Frigo, Leiserson, Randall, PLDI 1998; BOTS's
 * sort): sort four quarters in parallel, merge them pairwise in parallel, then merge the two
 * halves with a parallel merge that splits the larger run at its middle and the smaller one
 * by binary search. Below QUICKSIZE elements a quarter is sorted by quicksort, and below
 * MERGESIZE a merge is sequential. Input: SIZE pseudo-random 32-bit integers; the program
 * checks that the output is sorted, and its result is a checksum of the sorted array.
 * Usage and output: hpc.h.
 */
#include <stdbool.h>
#include <string.h>

#include "hpc.h"

typedef uint32_t elm;

#define QUICKSIZE 2048
#define MERGESIZE 2048
#define INSERTIONSIZE 20

static void insertion_sort(elm *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        elm v = a[i];
        size_t j = i;
        for (; j > 0 && a[j - 1] > v; j--)
            a[j] = a[j - 1];
        a[j] = v;
    }
}

static elm median3(elm a, elm b, elm c)
{
    return a < b ? (b < c ? b : a < c ? c : a) : (a < c ? a : b < c ? c : b);
}

static void swap(elm *a, elm *b)
{
    elm t = *a;
    *a = *b;
    *b = t;
}

/* Hoare's partition around the median of three: [a, a + p) <= pivot <= [a + p, a + n). */
static size_t partition(elm *a, size_t n)
{
    elm pivot = median3(a[0], a[n / 2], a[n - 1]);
    size_t i = 0, j = n - 1;
    for (;;) {
        while (a[i] < pivot)
            i++;
        while (a[j] > pivot)
            j--;
        if (i >= j)
            return j + 1;
        swap(&a[i++], &a[j--]);
    }
}

static void quick_sort(elm *a, size_t n)
{
    while (n > INSERTIONSIZE) {
        size_t p = partition(a, n);
        quick_sort(a, p);
        a += p;
        n -= p;
    }
    insertion_sort(a, n);
}

static void merge_serial(const elm *a, size_t na, const elm *b, size_t nb, elm *dest)
{
    while (na && nb) {
        if (*b < *a) {
            *dest++ = *b++;
            nb--;
        } else {
            *dest++ = *a++;
            na--;
        }
    }
    memcpy(dest, a, na * sizeof *a);
    memcpy(dest + na, b, nb * sizeof *b);
}

/* The first index of b[0..n) whose element is not below v. */
static size_t lower_bound(const elm *b, size_t n, elm v)
{
    size_t lo = 0;
    while (n) {
        size_t half = n / 2;
        if (b[lo + half] < v) {
            lo += half + 1;
            n -= half + 1;
        } else {
            n = half;
        }
    }
    return lo;
}

/* The split of a parallel merge: the larger run's middle element goes to its place in dest,
 * and the two sides around it merge independently. Returns false when the merge is small
 * enough to be sequential (done then). */
typedef struct merge_split {
    const elm *a, *b;
    size_t na, nb, mid, cut;
} merge_split;

static bool split_merge(const elm *a, size_t na, const elm *b, size_t nb, elm *dest,
                        merge_split *s)
{
    if (na < nb) {
        const elm *t = a;
        a = b;
        b = t;
        size_t tn = na;
        na = nb;
        nb = tn;
    }
    if (na + nb < MERGESIZE) {
        merge_serial(a, na, b, nb, dest);
        return false;
    }
    *s = (merge_split){.a = a, .b = b, .na = na, .nb = nb, .mid = na / 2};
    s->cut = lower_bound(b, nb, a[s->mid]);
    dest[s->mid + s->cut] = a[s->mid];
    return true;
}

static void merge_rec(const elm *a, size_t na, const elm *b, size_t nb, elm *dest)
{
    merge_split s;
    if (!split_merge(a, na, b, nb, dest, &s))
        return;
    merge_rec(s.a, s.mid, s.b, s.cut, dest);
    merge_rec(s.a + s.mid + 1, s.na - s.mid - 1, s.b + s.cut, s.nb - s.cut,
              dest + s.mid + s.cut + 1);
}

/* Sorts a[0..n) using tmp[0..n). */
static void sort_serial(elm *a, elm *tmp, size_t n)
{
    if (n < QUICKSIZE) {
        quick_sort(a, n);
        return;
    }
    size_t q = n / 4;
    sort_serial(a, tmp, q);
    sort_serial(a + q, tmp + q, q);
    sort_serial(a + 2 * q, tmp + 2 * q, q);
    sort_serial(a + 3 * q, tmp + 3 * q, n - 3 * q);
    merge_rec(a, q, a + q, q, tmp);
    merge_rec(a + 2 * q, q, a + 3 * q, n - 3 * q, tmp + 2 * q);
    merge_rec(tmp, 2 * q, tmp + 2 * q, n - 2 * q, a);
}

PARENG_TASK_5(int, merge_task, const elm *, a, size_t, na, const elm *, b, size_t, nb, elm *,
              dest)
{
    merge_split s;
    if (!split_merge(a, na, b, nb, dest, &s))
        return 0;
    PARENG_SPAWN(merge_task, s.a, s.mid, s.b, s.cut, dest);
    PARENG_CALL(merge_task, s.a + s.mid + 1, s.na - s.mid - 1, s.b + s.cut, s.nb - s.cut,
                dest + s.mid + s.cut + 1);
    return PARENG_SYNC(merge_task);
}

PARENG_TASK_3(int, sort_task, elm *, a, elm *, tmp, size_t, n)
{
    if (n < QUICKSIZE) {
        quick_sort(a, n);
        return 0;
    }
    size_t q = n / 4;
    PARENG_SPAWN(sort_task, a, tmp, q);
    PARENG_SPAWN(sort_task, a + q, tmp + q, q);
    PARENG_SPAWN(sort_task, a + 2 * q, tmp + 2 * q, q);
    PARENG_CALL(sort_task, a + 3 * q, tmp + 3 * q, n - 3 * q);
    PARENG_SYNC(sort_task);
    PARENG_SYNC(sort_task);
    PARENG_SYNC(sort_task);
    PARENG_SPAWN(merge_task, a, q, a + q, q, tmp);
    PARENG_CALL(merge_task, a + 2 * q, q, a + 3 * q, n - 3 * q, tmp + 2 * q);
    PARENG_SYNC(merge_task);
    return PARENG_CALL(merge_task, tmp, 2 * q, tmp + 2 * q, n - 2 * q, a);
}

#ifdef _OPENMP
static void merge_openmp(const elm *a, size_t na, const elm *b, size_t nb, elm *dest,
                         unsigned depth, unsigned cutoff)
{
    if (cutoff && depth >= cutoff) {
        merge_rec(a, na, b, nb, dest);
        return;
    }
    merge_split s;
    if (!split_merge(a, na, b, nb, dest, &s))
        return;
#pragma omp task
    merge_openmp(s.a, s.mid, s.b, s.cut, dest, depth + 1, cutoff);
    merge_openmp(s.a + s.mid + 1, s.na - s.mid - 1, s.b + s.cut, s.nb - s.cut,
                 dest + s.mid + s.cut + 1, depth + 1, cutoff);
#pragma omp taskwait
}

static void sort_openmp(elm *a, elm *tmp, size_t n, unsigned depth, unsigned cutoff)
{
    if (n < QUICKSIZE || (cutoff && depth >= cutoff)) {
        sort_serial(a, tmp, n);
        return;
    }
    size_t q = n / 4;
#pragma omp task
    sort_openmp(a, tmp, q, depth + 1, cutoff);
#pragma omp task
    sort_openmp(a + q, tmp + q, q, depth + 1, cutoff);
#pragma omp task
    sort_openmp(a + 2 * q, tmp + 2 * q, q, depth + 1, cutoff);
    sort_openmp(a + 3 * q, tmp + 3 * q, n - 3 * q, depth + 1, cutoff);
#pragma omp taskwait
#pragma omp task
    merge_openmp(a, q, a + q, q, tmp, depth + 1, cutoff);
    merge_openmp(a + 2 * q, q, a + 3 * q, n - 3 * q, tmp + 2 * q, depth + 1, cutoff);
#pragma omp taskwait
    merge_openmp(tmp, 2 * q, tmp + 2 * q, n - 2 * q, a, depth + 1, cutoff);
}
#endif

typedef struct sort_data {
    elm *a, *tmp;
    size_t n;
} sort_data;

static void sort_serial_version(hpc_run *run, void *data)
{
    (void)run;
    sort_data *d = data;
    sort_serial(d->a, d->tmp, d->n);
}

static int sort_pareng_version(hpc_run *run, void *data)
{
    sort_data *d = data;
    return PARENG_RUN(run->engine, sort_task, NULL, d->a, d->tmp, d->n);
}

#ifdef _OPENMP
static void sort_openmp_version(hpc_run *run, void *data)
{
    sort_data *d = data;
    sort_openmp(d->a, d->tmp, d->n, 0, run->omp_cutoff);
}
#else
#define sort_openmp_version NULL
#endif

static size_t shared_bytes(unsigned long n)
{
    return 2 * n * sizeof(elm) + 256;
}

int main(int argc, char **argv)
{
    static const hpc_program program = {
        .name = "cilksort", .size_meaning = "N, the elements, 1 to 2^30", .min_size = 1,
        .max_size = 1ul << 30, .shared_bytes = shared_bytes, .serial = sort_serial_version,
        .pareng = sort_pareng_version, .openmp = sort_openmp_version};
    hpc_run run;
    int rc = hpc_start(argc, argv, &program, &run);
    if (rc)
        return rc;
    size_t n = run.size;
    elm *a = hpc_alloc(&run, n * sizeof *a), *tmp = hpc_alloc(&run, n * sizeof *tmp);
    uint64_t x = 88172645463325252ull; /* xorshift64 (Marsaglia) */
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        a[i] = (elm)(x >> 32);
    }
    sort_data d = {a, tmp, n};
    double seconds = hpc_time(&run, &program, &d);
    if (seconds < 0)
        return 1;
    bool sorted = true;
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        sorted &= i == 0 || a[i - 1] <= a[i];
        sum = sum * 1000003u + a[i];
    }
    return hpc_finish(&run, sum, seconds, sorted);
}
