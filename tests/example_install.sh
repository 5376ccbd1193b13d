#!/bin/sh
# An example of docs/examples as a user builds it: `meson install` into a temporary prefix,
# then CC EXAMPLE.c $(pkg-config --cflags --libs PACKAGE), then run it, under LAUNCHER when
# one is given (mpirun -np 3 for the ring).
# Usage: example_install.sh BUILD EXAMPLE.c PACKAGE CC [LAUNCHER...]
set -eu
build=$1 example=$2 package=$3 compiler=$4
shift 4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --destdir "$tmp" --quiet --no-rebuild
pc=$(find "$tmp" -name "$package.pc" | head -n 1)
lib=$(dirname "$(find "$tmp" -name 'libpareng.so*' | head -n 1)")
export PKG_CONFIG_PATH="$(dirname "$pc")" PKG_CONFIG_SYSROOT_DIR="$tmp"
program="$tmp/$(basename "$example" .c)"
"$compiler" -std=c11 -Wall -Wextra -Werror "$example" $(pkg-config --cflags --libs "$package") -o "$program"
LD_LIBRARY_PATH="$lib" "$@" "$program"
