/*
 * array_argument.c - must NOT compile (tests/meson.build runs the compiler on it, warnings off,
 * and expects it to fail): an argument of an array type would be a pointer in the task's
 * functions and could not initialize the frame's copy, which C compilers only warn about, and
 * the task would get garbage. pareng.h refuses it with a static assertion.
 */
#include <pareng.h>

typedef char board[16];

PARENG_TASK_2(int, queen_at, int, row, board, b)
{
    return b[row];
}
