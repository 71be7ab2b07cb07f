#!/bin/sh
# The EXAMPLE section of a man page must be the example file, line for line
# (leading whitespace and the roff escapes \- and \e aside).
# usage: doc_example_check.sh MANPAGE FILE
set -eu
norm() { sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e '/^$/d'; }
awk '/^\.SH EXAMPLE/ { f = 1 } f && /^\.EX/ { g = 1; next } g && /^\.EE/ { exit } g' "$1" |
	sed -e 's/\\-/-/g' -e 's/\\e/\\/g' | norm >"${TMPDIR:-/tmp}/wvv-man-example.$$"
grep -v 'SPDX-License-Identifier' "$2" | norm >"${TMPDIR:-/tmp}/wvv-file-example.$$"
status=0
diff -u "${TMPDIR:-/tmp}/wvv-man-example.$$" "${TMPDIR:-/tmp}/wvv-file-example.$$" || status=1
rm -f "${TMPDIR:-/tmp}/wvv-man-example.$$" "${TMPDIR:-/tmp}/wvv-file-example.$$"
[ $status -eq 0 ] && echo "$1 EXAMPLE = $2"
exit $status
