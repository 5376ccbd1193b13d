#!/usr/bin/env python3
# man_pages.py - checks the generated man pages (docs/meson.build): each renders through groff
# with no warning, and has a NAME section in the form whatis and apropos read ("name - what
# it is") and a SYNOPSIS. Exits 77 (skipped) when groff is not installed.
import re
import shutil
import subprocess
import sys

# All warnings but "break" (a line that cannot be broken or adjusted in a table or a long
# word): those depend on the page width the reader's terminal happens to have. Nor tbl's
# "table text block will not fit on one page": where a 66-line page of paper ends moves with
# every line written above it, and man shows a page on a terminal as one continuous page.
GROFF = ["groff", "-t", "-man", "-Tutf8", "-ww", "-Wbreak"]
PAGE_BREAK_WARNING = re.compile(r"^warning: page \d+: table text block will not fit on one page$")
NAME_LINE = re.compile(r"^[\w.+-]+(, [\w.+-]+)* \\?- \S")


def check(page):
    """The problems of one page, as a list of lines."""
    problems = []
    with open(page, encoding="utf-8") as f:
        roff = f.read().splitlines()
    p = subprocess.run(GROFF + ["-z", page], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    warnings = [line for line in p.stderr.decode(errors="replace").splitlines()
                if not PAGE_BREAK_WARNING.match(line)]
    if p.returncode != 0 or warnings:
        problems.append(f"groff (status {p.returncode}):\n" + "\n".join(warnings))
    sections = [line[len(".SH "):].strip('"') for line in roff if line.startswith(".SH ")]
    for wanted in ("NAME", "SYNOPSIS"):
        if wanted not in sections:
            problems.append(f"no {wanted} section (sections: {', '.join(sections)})")
    if sections[:1] != ["NAME"]:
        problems.append("NAME is not the first section")
    if "NAME" in sections:
        start = roff.index(".SH NAME") + 1
        text = next((line for line in roff[start:] if not line.startswith(".")), "")
        if not NAME_LINE.match(text):
            problems.append(f"the NAME line is not 'name - description': {text!r}")
    rendered = subprocess.run(GROFF + ["-P-cbou", page], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL).stdout.decode(errors="replace")
    for wanted in ("NAME", "SYNOPSIS", "DESCRIPTION"):
        if not re.search(rf"^{wanted}$", rendered, re.M):
            problems.append(f"the rendered page shows no {wanted} heading")
    return problems


def main():
    if not shutil.which("groff"):
        print("groff is not installed (Debian: groff-base): the man pages are not checked")
        return 77
    passed = failed = 0
    for page in sys.argv[1:]:
        problems = check(page)
        if problems:
            failed += 1
            print(f"FAIL {page}:\n  " + "\n  ".join(problems))
        else:
            passed += 1
            print(f"ok   {page}")
    if not sys.argv[1:]:
        print("no man page given")
        failed = 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
