"""procs - what the fault tests (fault_injection.py, mpi_jobs.py) read of /proc about the
processes a job started: a process's state, parent, session and start time, the live members
of a session (a job runs in a session of its own), and a process's children."""
import os


def proc_stat(pid):
    """(state, ppid, session, start time) of pid, or None when it is gone. The start time
    tells a process from a later one that reused its pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = data[data.rfind(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[3]), int(fields[19])


def session_members(sid):
    """The live (not zombie) processes of session sid: {pid: proc_stat(pid)}."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st and st[2] == sid and st[0] not in "ZX":
                out[int(entry)] = st
    return out


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []
