#!/usr/bin/env bash
# Install into a scratch prefix, then build and run a consumer with
# pkg-config and with find_package(writevv): what a user of the package does.
set -euo pipefail
build=$1
src=$(cd "$(dirname "$0")" && pwd)
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(find "$prefix" -name writevv.pc -printf '%h\n' | head -1)
test -f "$prefix/include/writevv.h"
test -n "$(find "$prefix" -name 'writevv.3*')"
test -x "$prefix/sbin/writevv-loader"
cc -Wall -Wextra -Werror $(PKG_CONFIG_PATH=$libdir pkg-config --cflags writevv) "$src/consumer.c" \
	$(PKG_CONFIG_PATH=$libdir pkg-config --libs writevv) -Wl,-rpath,"$(dirname "$libdir")" -o "$prefix/consumer-pc"
"$prefix/consumer-pc"
cmake -S "$src/consumer" -B "$prefix/consumer-build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/consumer-build" >/dev/null
"$prefix/consumer-build/consumer"
echo "install_consumer: pkg-config and find_package both work"
