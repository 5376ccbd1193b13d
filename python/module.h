/*
 * module.h - what the two files of the `pareng._pareng` extension share: pareng_module.c (the
 * module, its built-in fib workload, configurations, errors and ^C) and tasks.c (the user's
 * Python functions as tasks on the workers).
 */
#ifndef PARENG_PY_MODULE_H
#define PARENG_PY_MODULE_H

#include <Python.h>
#include <pareng.h>

#include <stdbool.h>

/* A configuration for pareng_start: the defaults and the PARENG_* environment
 * (pareng_config_default), then cores= and cutoff= over them when they are not None. */
typedef struct config {
    pareng_config cfg;
    char *cpus;           /* the text cfg.cpus may point to (PyMem), or NULL */
    bool cutoff_given;    /* cutoff= was not None */
} config;

/* ValueError for a malformed environment or a cores/cutoff text the library refuses, with
 * its message; TypeError for an argument of another type. */
int make_config(PyObject *cores, PyObject *cutoff, config *c);
void config_free(config *c);
/* ^C before a run (with the GIL): libpareng's SIGINT handler (re)installed, a ^C left from
 * before forgotten; -1 with the exception of a ^C that came before the run. */
int sigint_prepare(void);
/* The Python exception of a failure rc (a negative errno) with libpareng's message: a ^C's
 * KeyboardInterrupt, ValueError for a refused configuration (naming cores= or PARENG_PLACES
 * when at_start), WorkerCrashed for a dead worker, OSError (its errno subclass) otherwise. */
void raise_failure(int rc, const char *message, bool at_start, PyObject *cores);
/* pareng.WorkerCrashed, a ChildProcessError: what raise_failure raises for -ECHILD. */
extern PyObject *WorkerCrashed;
/* Adds tasks.c's type and functions to the module. */
int tasks_init(PyObject *module);

#endif
