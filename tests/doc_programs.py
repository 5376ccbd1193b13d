#!/usr/bin/env python3
# doc_programs.py - compiles and runs every complete C program shown in README.md and docs/*.md,
# so that a change to the library that breaks a documented example fails the test suite.
#
# A complete program is a ```c fenced block that defines main(); other C blocks are fragments
# and are skipped. Each program is built as a user of an installed libpareng would build it
# (the public header, the shared library, -Wall -Wextra -Werror) and must exit 0 within the
# time limit. docs/examples/*.c are whole files that meson builds itself: not looked at here.
import argparse
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

RUN_TIMEOUT_S = 60
COMPILE_TIMEOUT_S = 120
FENCE = re.compile(r"^( *)(`{3,}|~{3,})\s*([^`\s]*)")
# A definition, not a call: a type before the name ("int main(void)", "int\nmain(int argc...").
DEFINES_MAIN = re.compile(r"\bint\s+main\s*\(")


def c_blocks(path):
    """Yields (line of the opening fence, code) for each fenced block tagged c."""
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = len(m.group(1)), m.group(2), m.group(3).lower()
        start = i + 1
        body = []
        i += 1
        # The block ends at a fence of the same character at least as long (CommonMark).
        while i < len(lines):
            close = FENCE.match(lines[i])
            if close and close.group(2)[0] == fence[0] and len(close.group(2)) >= len(fence) \
                    and not close.group(3):
                break
            line = lines[i]
            # Blocks inside list items are indented as their fence is; the code is not.
            body.append(line[indent:] if not line[:indent].strip() else line.lstrip())
            i += 1
        i += 1
        if lang == "c":
            yield start, "\n".join(body) + "\n"


def run(cmd, timeout, env=None):
    """(exit status or None on timeout, combined output). The command gets its own process
    group, killed whole on timeout: a program's engine workers would otherwise keep the
    output pipe open."""
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                          start_new_session=True) as p:
        try:
            out, _ = p.communicate(timeout=timeout)
            return p.returncode, out.decode(errors="replace")
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
            return None, out.decode(errors="replace") + f"\n(killed after {timeout} s)\n"


def main():
    ap = argparse.ArgumentParser(
        description="Compile and run the complete C programs of README.md and docs/*.md.")
    ap.add_argument("--source-root", required=True, type=Path)
    ap.add_argument("--cc", required=True, help="the build's compiler command, shell-quoted")
    ap.add_argument("--include", required=True, help="the tree's include/ directory")
    ap.add_argument("--lib", required=True, help="the built shared libpareng")
    ap.add_argument("--cflag", action="append", default=[],
                    help="an extra flag for compiling and linking (sanitizers)")
    args = ap.parse_args()

    root = args.source_root.resolve()
    # Globbed here rather than listed in meson, so that a new page is tested without
    # touching the build files.
    pages = [root / "README.md"] + sorted((root / "docs").glob("*.md"))
    libdir = str(Path(args.lib).resolve().parent)
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = libdir + (":" + env["LD_LIBRARY_PATH"]
                                       if env.get("LD_LIBRARY_PATH") else "")

    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="pareng-doc-") as tmp:
        for page in pages:
            rel = page.relative_to(root)
            for line, code in c_blocks(page):
                where = f"{rel}:{line}"
                if not DEFINES_MAIN.search(code):
                    print(f"skip {where} (a fragment: no main)")
                    continue
                stem = f"{rel.as_posix().replace('/', '_').replace('.', '_')}_{line}"
                src = Path(tmp) / f"{stem}.c"
                exe = Path(tmp) / stem
                src.write_text(code, encoding="utf-8")
                cmd = shlex.split(args.cc) + [
                    "-O2", "-Wall", "-Wextra", "-Werror", *args.cflag,
                    "-I", args.include, str(src), "-o", str(exe),
                    args.lib, f"-Wl,-rpath,{libdir}", "-lm"]
                rc, out = run(cmd, COMPILE_TIMEOUT_S)
                if rc != 0:
                    failed += 1
                    print(f"FAIL {where}: does not compile\n$ {shlex.join(cmd)}\n{out}")
                    continue
                rc, out = run([str(exe)], RUN_TIMEOUT_S, env)
                if rc != 0:
                    failed += 1
                    if rc is None:
                        status = "timed out"
                    elif rc < 0:
                        status = f"killed by signal {-rc} ({signal.Signals(-rc).name})"
                    else:
                        status = f"exited with status {rc}"
                    print(f"FAIL {where}: {status}\n{out}")
                    continue
                passed += 1
                print(f"ok   {where}")

    if passed + failed == 0:
        print(f"no complete C program (a ```c block defining main) found in README.md or "
              f"docs/*.md under {root}: nothing was tested")
        failed = 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
