#!/usr/bin/env bash
# Set up a fresh Debian 12 machine, build writevv, then run the fan-out
# demo (`demo`), writevv-relay with live publishers for a browser (`relay`),
# or the whole test suite (`test`). Needs root: it
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
	libssl-dev python3-websockets nodejs node-ws redis-server libhiredis-dev chromium firefox-esr libavcodec59 fonts-dejavu-core)
# (libavcodec59: Firefox ESR's H.264/AAC decoder, which it only Recommends)
install_missing quickstart "${packages[@]}"

# npm: Debian's package, unless the nodejs installed brings its own (its
# nodesource build does, and conflicts with Debian's npm).
if ! command -v npm >/dev/null 2>&1; then
	echo "quickstart: installing npm"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
# The front-end packages the relay's pages load (examples/relay/www/package.json,
# pinned by its package-lock.json), into examples/relay/www/node_modules.
www=$here/examples/relay/www
if ! (cd "$www" && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
	if [ -f "$www/node_modules/mpegts.js/dist/mpegts.js" ]; then
		echo "quickstart: npm ci failed; keeping the packages already in $www/node_modules" >&2
	else
		echo "quickstart: npm ci in $www failed: the relay's pages will say that mpegts.js" \
			"and uPlot are missing, and its browser tests will fail" >&2
	fi
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
relay)
	# writevv-relay with a live video and a message publisher (the pages:
	# /watch/tv, /messages/chat, /dashboard on 127.0.0.1:8080).
	if ! "$build/writevv-loader" load 2>/dev/null; then
		"$build/writevv-loader" unload
		"$build/writevv-loader" load
	fi
	exec bash "$here/examples/relay/demo.sh" "$build"
	;;
test)
	ctest --test-dir "$build" --output-on-failure --timeout 600 2>&1 | tee "$build/ctest-output.log"
	no_skipped_tests quickstart "$build/ctest-output.log"
	;;
*)
	echo "usage: $0 demo|relay|test" >&2
	exit 2
	;;
esac
