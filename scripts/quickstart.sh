#!/usr/bin/env bash
# Set up a fresh Debian 12 machine, build writevv, then either run the
# fan-out demo (`demo`) or the whole test suite (`test`). Needs root: it
# installs packages, mounts bpffs and loads the BPF program.
set -euo pipefail

what=${1:-test}
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
# shellcheck source=lib/common.sh
. "$here/scripts/lib/common.sh"

if [ "$(id -u)" -ne 0 ]; then
	echo "quickstart: run as root (sudo $0 $what): it installs packages and loads BPF" >&2
	exit 1
fi

packages=(build-essential cmake pkg-config clang libclang-rt-dev llvm libbpf-dev bpftool libelf-dev zlib1g-dev valgrind
	libcmocka-dev liburing-dev iproute2 procps ffmpeg curl jq xxd gnuplot-nox
	libssl-dev python3-websockets nodejs node-ws redis-server libhiredis-dev)
install_missing quickstart "${packages[@]}"

if ! mountpoint -q /sys/fs/bpf; then
	mount -t bpf bpf /sys/fs/bpf
fi

# shellcheck disable=SC2086 # CMAKE_ARGS is a list of options
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)"

case "$what" in
demo)
	# Load this build's program; replace another build's if one is loaded
	# (running applications fall back to userland and pick it up again).
	if ! "$build/writevv-loader" load 2>/dev/null; then
		"$build/writevv-loader" unload
		"$build/writevv-loader" load
	fi
	"$build/writevv-demo" --targets 1000
	;;
test)
	ctest --test-dir "$build" --output-on-failure --timeout 600 2>&1 | tee "$build/ctest-output.log"
	no_skipped_tests quickstart "$build/ctest-output.log"
	;;
*)
	echo "usage: $0 demo|test" >&2
	exit 2
	;;
esac
