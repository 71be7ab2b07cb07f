#!/bin/sh
# The shared library exports exactly the symbols of lib/writevv.map, each at
# its version node, and the public header's version macros (generated into
# the build's writevv_version.h) are project()'s version.
# usage: check_abi.sh LIBWRITEVV.so SOURCE_DIR PROJECT_VERSION VERSION_HEADER
set -eu
lib=$1 src=$2 version=$3 version_h=$4
fail=0

# "global:" names of the version script, one per line
expected=$(sed -n '/global:/,/local:/p' "$src/lib/writevv.map" | tr -d ' \t;' |
	grep -v -e 'global:' -e 'local:' -e '^$' | sort)
node=$(sed -n 's/^\(WRITEVV_[0-9.]*\) *{.*/\1/p' "$src/lib/writevv.map")
# defined dynamic symbols with their version, as "name@@NODE"
exported=$(nm -D --defined-only --with-symbol-versions "$lib" | awk '$2 ~ /^[TDBRW]$/ {print $3}' |
	grep -v "^${node}@@${node}\$" | sort)
want=$(printf '%s\n' $expected | sed "s/\$/@@$node/" | sort)
if [ "$exported" != "$want" ]; then
	echo "check_abi: exported symbols differ from lib/writevv.map:" >&2
	printf 'expected:\n%s\nexported:\n%s\n' "$want" "$exported" >&2
	fail=1
fi

hdr=$(sed -n 's/^#define WRITEVV_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$/\2/p' "$version_h" |
	paste -sd.)
if [ "$hdr" != "$version" ]; then
	echo "check_abi: $version_h says version $hdr, project() says $version" >&2
	fail=1
fi
[ $fail -eq 0 ] && echo "check_abi: $(echo "$exported" | wc -l) symbols at $node, version $version"
exit $fail
