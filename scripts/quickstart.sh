#!/usr/bin/env bash
# Set up a fresh Debian 12 machine, build writevv, then either run the
# fan-out demo (`demo`) or the whole test suite (`test`). Needs root: it
# installs packages, mounts bpffs and loads the BPF program.
set -euo pipefail

what=${1:-test}
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}

if [ "$(id -u)" -ne 0 ]; then
	echo "quickstart: run as root (sudo $0 $what): it installs packages and loads BPF" >&2
	exit 1
fi

packages=(build-essential cmake pkg-config clang libclang-rt-dev llvm libbpf-dev bpftool libelf-dev zlib1g-dev valgrind
	libcmocka-dev liburing-dev iproute2 procps ffmpeg curl jq xxd gnuplot-nox
	libssl-dev python3-websockets nodejs node-ws redis-server libhiredis-dev)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "quickstart: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

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
	ctest --test-dir "$build" --output-on-failure --timeout 600
	;;
*)
	echo "usage: $0 demo|test" >&2
	exit 2
	;;
esac
