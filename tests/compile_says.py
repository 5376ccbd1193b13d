#!/usr/bin/env python3
"""compile_says.py MESSAGE COMMAND...: COMMAND (a compiler's) must fail, and its output say
MESSAGE: a program that pareng.h refuses is refused with its own words, not only with the
errors that follow inside the header."""
import subprocess
import sys

message, command = sys.argv[1], sys.argv[2:]
done = subprocess.run(command, capture_output=True, text=True)
said = done.stdout + done.stderr
if done.returncode == 0 or message not in said:
    print(f"exit {done.returncode}; expected a failure saying {message!r}; got:\n{said}")
    sys.exit(1)
