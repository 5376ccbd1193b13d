#!/usr/bin/env bash
# The bash completion (tools/pareng.bash-completion) against the built CLI: commands, each
# command's options as its own --help lists them, workloads, option values. Usage:
#   completion.sh COMPLETION_FILE PARENG_BINARY
set -u
source "$1" || exit 1
pareng=$2
passed=0 failed=0

# complete WORDS...: COMPREPLY for the command line WORDS (the last one being completed)
complete_line() {
    COMP_WORDS=("$pareng" "$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    _pareng
    printf '%s\n' "${COMPREPLY[@]}"
}

expect() { # expect DESCRIPTION WANTED -- WORDS...: every WANTED word is offered
    local what=$1 wanted=$2
    shift 3
    local got
    got=$(complete_line "$@")
    for w in $wanted; do
        if ! grep -qxF -- "$w" <<<"$got"; then
            echo "FAIL $what: '$w' not offered for '$*' (got: $(tr '\n' ' ' <<<"$got"))"
            failed=$((failed + 1))
            return
        fi
    done
    echo "ok   $what"
    passed=$((passed + 1))
}

refuse() { # refuse DESCRIPTION UNWANTED -- WORDS...: no UNWANTED word is offered
    local what=$1 unwanted=$2
    shift 3
    local got
    got=$(complete_line "$@")
    for w in $unwanted; do
        if grep -qxF -- "$w" <<<"$got"; then
            echo "FAIL $what: '$w' offered for '$*'"
            failed=$((failed + 1))
            return
        fi
    done
    echo "ok   $what"
    passed=$((passed + 1))
}

expect "commands" "run map topo bench top clean help" -- ""
expect "commands by prefix" "run" -- "r"
expect "run's workloads" "fib http" -- run ""
expect "bench's workloads" "fib spawn" -- bench ""
expect "run's options" "--cores --cutoff --grain --stats --json --io-latency --help" -- run fib 30 --
expect "bench's options" "--workers --runs --warmup --export-json --export-csv --plot --peers" -- bench fib 30 --
refuse "bench has no --cores" "--cores" -- bench fib 30 --
expect "run's watching options" "--trace --timeline --scale --burden --plot" -- run fib 30 --
expect "top's options" "--delay --iterations --once --json" -- top --
expect "bench's --timeline" "--timeline" -- bench fib 30 --
expect "--trace takes a file" "$1" -- run fib 30 --trace "${1%-completion}"
expect "topo's options" "--cores --topology --json" -- topo --
refuse "only options, not what the help's prose names" "--of" -- topo --
refuse "only top's options, not run's it mentions" "--stats" -- top --
expect "--cutoff values" "auto none" -- run fib 30 --cutoff ""
expect "--cores values" "auto core:all" -- run fib 30 --cores ""
echo "$passed passed, $failed failed"
((failed == 0))
