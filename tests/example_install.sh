#!/bin/sh
# The HPC example as a user builds it: `meson install` into a temporary prefix, then
# cc $(pkg-config --cflags --libs pareng), then run it.
set -eu
build=$1 example=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --destdir "$tmp" --quiet --no-rebuild
pc=$(find "$tmp" -name pareng.pc | head -n 1)
lib=$(dirname "$(find "$tmp" -name 'libpareng.so*' | head -n 1)")
export PKG_CONFIG_PATH="$(dirname "$pc")" PKG_CONFIG_SYSROOT_DIR="$tmp"
cc -std=c11 -Wall -Wextra -Werror "$example" $(pkg-config --cflags --libs pareng) -o "$tmp/stencil_dot"
LD_LIBRARY_PATH="$lib" "$tmp/stencil_dot"
