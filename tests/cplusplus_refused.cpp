/*
 * cplusplus_refused.cpp - must NOT compile (tests/meson.build runs the C++ compiler on it with
 * -DCASE=1 or 2 and looks for pareng.h's message): types that are trivially copyable, as the
 * docs ask, yet cannot be a task's result, each refused with a static assertion that says why
 * before the errors they cause inside the header.
 *   1: a result type without a default constructor
 *   2: an argument type with a const member (not assignable)
 *   3: a reference argument (whose message spoke of a const member)
 */
#include <pareng.h>

#if CASE == 1
struct point {
    int x, y;
    point(int a, int b) : x(a), y(b) {}
};

PARENG_TASK_1(point, origin_plus, int, n)
{
    return point(n, n);
}
#elif CASE == 3
PARENG_TASK_1(int, by_reference, const int &, x)
{
    return x;
}
#else
struct tagged {
    const int tag;
    int value;
};

PARENG_TASK_1(int, value_of, tagged, t)
{
    return t.value;
}
#endif
