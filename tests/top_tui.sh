#!/usr/bin/env bash
# pareng top's screen, driven through tmux as a person at a terminal would see it: it draws the
# running engine, redraws in place, and quits on q with status 0. Exit 77 (skipped) without
# tmux. Usage: top_tui.sh PARENG_BIN
set -u
pareng=${1:?usage: top_tui.sh PARENG_BIN}
command -v tmux >/dev/null || { echo "tmux not found: skipped"; exit 77; }
sock=$(mktemp -u /tmp/pareng-top-tmux.XXXXXX)
"$pareng" run fib 60 -c 2 >/dev/null 2>&1 & # minutes: it outlives the test, which stops it
run=$!
cleanup() {
  kill "$run" 2>/dev/null
  wait "$run" 2>/dev/null
  tmux -S "$sock" kill-server 2>/dev/null
  rm -f "$sock"
}
trap cleanup EXIT
failures=0
check() { # check WHAT COMMAND...
  local what=$1; shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; failures=$((failures + 1)); fi
}
screen() { tmux -S "$sock" capture-pane -p -t top; }
has() { grep -q -- "$1" <<<"$2"; }

for _ in $(seq 200); do "$pareng" top "$run" --once -d 10ms >/dev/null 2>&1 && break; sleep 0.05; done
TERM=xterm tmux -S "$sock" new-session -d -s top -x 150 -y 30 \
  "'$pareng' top $run --delay 200ms; echo TOP-EXITED \$?; sleep 60"
sleep 1.5
first=$(screen)
check "it draws its title" has "pareng top - " "$first"
check "it draws the engine" has "engine $run " "$first"
check "it draws the workers' table" has "state" "$first"
check "it draws both workers" has " 1 *[0-9]* " "$first"
sleep 1.5
second=$(screen)
check "it redraws: the screen changed" test "$first" != "$second"
check "in place: one title on the screen" test "$(grep -c 'pareng top - ' <<<"$second")" = 1
tmux -S "$sock" send-keys -t top q
for _ in $(seq 50); do has TOP-EXITED "$(screen)" && break; sleep 0.1; done
third=$(screen)
check "q quits, with status 0" has "TOP-EXITED 0" "$third"
echo "$third" | head -5
exit $((failures != 0))
