#!/usr/bin/env bash
# Run this build on Debian's packaged kernel in QEMU: the loader, the demo,
# a probe of each engine and most of the ctest suite, inside a guest that
# boots Debian 12's linux-image-amd64 (6.1; --kernel 5.10: bullseye's) with
# the stock sysctls. Needs root (debootstrap) and a built tree: the tree is
# copied into the guest at the same absolute paths (ctest records them), and
# runs there against the guest's own Debian 12 libraries.
#
#   sudo scripts/vmtest.sh [--kernel 6.1|5.10] [--build DIR] [--cache DIR]
#                          [--tests REGEX] [--exclude REGEX | --all] [--timeout SEC]
#                          [--prepare]   (only make the cached image)
#
# The guest image (a debootstrap of bookworm, its kernel and initrd) is kept
# under the cache directory, keyed by what went into it: a second run boots
# in well under a minute. Exit status: 0 if everything passed in the guest.
set -euo pipefail
{ # (read whole before it runs: editing the file cannot change a run)

here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/common.sh
. "$here/scripts/lib/common.sh"
build=${BUILD_DIR:-$here/build}
cache=${VMTEST_CACHE:-/var/cache/writevv-vmtest}
kernel=6.1
mirror=${VMTEST_MIRROR:-http://deb.debian.org/debian}
timeout_s=1500
# What runs in the guest (ctest -E): every test but these, which cost too much
# under emulation for what they would add (the native CI run has them all):
#  valgrind_*       valgrind under TCG: ~50x on top of the emulation's ~6x
#  bench_smoke      a benchmark (timings, no kernel feature of its own)
#  install_consumer cmake --install and a consumer build: nothing kernel-specific
#  check_abi        the .so's exported symbols (nm): the same file on any kernel
#  relay_*          need ffmpeg/ffprobe/curl in the image and are live-paced:
#                   ~60 s natively, minutes under TCG, for the engines that the
#                   test_* programs already run one by one
#  test_memory*     RSS bounds over a million calls: library bookkeeping
#                   (45 s under TCG for kernel mode alone)
#  test_latency_*, test_threads_* per engine: run in kernel mode only
#  test_hostile_{iouring,sendfile,zerocopy,userland}: the matrix runs in kernel
#                   and default mode (which uses io_uring, sendfile and zero-copy)
#  test_differential_userland: the writev loop against itself (70 s under TCG)
# --all runs everything but valgrind_, bench_smoke, install_consumer, check_abi, relay_.
exclude_all='^(valgrind_|bench_smoke$|install_consumer$|check_abi$|relay_)'
exclude='^(valgrind_|bench_smoke$|install_consumer$|check_abi$|relay_|test_memory|test_latency_|test_threads_|test_hostile_(iouring|sendfile|zerocopy|userland)$|test_differential_userland$)'
include=''
prepare_only=0
exclude_given=0

usage() {
	sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
}
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) kernel=$2; shift 2 ;;
	--build) build=$(cd "$2" && pwd); shift 2 ;;
	--cache) cache=$2; shift 2 ;;
	--tests) include=$2; shift 2 ;;
	--exclude) exclude=$2; exclude_given=1; shift 2 ;;
	--all) exclude=$exclude_all; shift ;;
	--timeout) timeout_s=$2; shift 2 ;;
	--prepare) prepare_only=1; shift ;;
	-h | --help) usage ;;
	*) echo "vmtest: unknown option $1" >&2; usage ;;
	esac
done

case "$kernel" in
6.1) kernel_suite=bookworm ;;
5.10)
	kernel_suite=bullseye
	# No IORING_OP_SEND_ZC before 6.0: zero-copy mode is refused (the probe
	# shows EOPNOTSUPP and the fallback), so its tests fail by design there.
	[ "$exclude_given" = 1 ] || exclude="${exclude%)}|test_zerocopy$|[a-z_]*_zerocopy$)"
	;;
*) echo "vmtest: --kernel 6.1 or 5.10 (Debian 12's, Debian 11's)" >&2; exit 2 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
	echo "vmtest: run as root: debootstrap needs it" >&2
	exit 1
fi
if [ "$prepare_only" = 0 ] && { [ ! -x "$build/writevv-loader" ] || [ ! -f "$build/CTestTestfile.cmake" ]; }; then
	echo "vmtest: no built tree at $build (build first, e.g. scripts/quickstart.sh test)" >&2
	exit 1
fi

# ---- host tools (only this script needs them) --------------------------
host_packages=(qemu-system-x86 debootstrap e2fsprogs)
install_missing vmtest "${host_packages[@]}"

# ---- the guest image, cached by its recipe -------------------------------
# What the tests need at run time (the build is the host's: Debian 12, the
# same libraries), cmake for ctest, and the tools the tests and this script use.
guest_packages=(libbpf1 liburing2 libcmocka0 libelf1 zlib1g bpftool iproute2 procps kmod
	cmake util-linux coreutils)
recipe_version=2 # bump when the image recipe below changes
key=$(printf '%s\n' "$recipe_version" "$kernel_suite" "$mirror" "${guest_packages[@]}" |
	sha256sum | cut -c1-16)
img_dir=$cache/bookworm-linux$kernel-$key

build_image() {
	local tmp=$img_dir.tmp root
	rm -rf "$tmp"
	mkdir -p "$tmp"
	root=$tmp/root
	echo "vmtest: debootstrap bookworm into $root (once per recipe; cached at $img_dir)"
	debootstrap --variant=minbase --include="$(IFS=,; echo "${guest_packages[*]}")" \
		bookworm "$root" "$mirror" >"$tmp/debootstrap.log" 2>&1 ||
		{ tail -30 "$tmp/debootstrap.log"; return 1; }
	# A small initrd: the modules this VM needs to find its root, not "most".
	mkdir -p "$root/etc/initramfs-tools/conf.d"
	echo 'MODULES=list' >"$root/etc/initramfs-tools/conf.d/vmtest.conf"
	printf '%s\n' virtio_pci virtio_blk ext4 crc32c_generic >>"$root/etc/initramfs-tools/modules"
	# The kernel a user gets: bookworm's with its updates and security fixes
	# (or, for --kernel 5.10, only the kernel from bullseye's).
	local sec=${mirror%/debian}/debian-security
	printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s bookworm-security main\n' \
		"$mirror" "$mirror" "$sec" >"$root/etc/apt/sources.list"
	local kpkg=linux-image-amd64
	if [ "$kernel_suite" != bookworm ]; then
		printf 'deb %s %s main\ndeb %s %s-security main\n' "$mirror" "$kernel_suite" \
			"$sec" "$kernel_suite" >"$root/etc/apt/sources.list.d/$kernel_suite.list"
		printf 'Package: *\nPin: release n=%s\nPin-Priority: 100\n\n' \
			"$kernel_suite" "$kernel_suite-security" >"$root/etc/apt/preferences.d/$kernel_suite"
		kpkg=linux-image-amd64/$kernel_suite-security
	fi
	mount -t proc proc "$root/proc"
	(
		trap 'umount "$root/proc"' EXIT
		chroot "$root" /usr/bin/env DEBIAN_FRONTEND=noninteractive sh -c \
			"apt-get update -qq && apt-get upgrade -y -qq &&
			 apt-get install -y -qq --no-install-recommends $kpkg && apt-get clean" >"$tmp/kernel.log" 2>&1
	) || { tail -30 "$tmp/kernel.log"; return 1; }
	cp "$root"/boot/vmlinuz-* "$tmp/vmlinuz"
	cp "$root"/boot/initrd.img-* "$tmp/initrd.img"
	# PID 1 of the guest: mount what the tests need, run the run's script
	# from the second disk (made for each run), power off.
	cat >"$root/sbin/vmtest-init" <<-'EOF'
	#!/bin/sh
	export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
	mountpoint -q /proc || mount -t proc proc /proc
	mountpoint -q /sys || mount -t sysfs sys /sys
	mountpoint -q /dev || mount -t devtmpfs dev /dev
	mkdir -p /dev/pts /dev/shm /host
	mount -t devpts devpts /dev/pts
	mount -t tmpfs tmpfs /dev/shm
	mount -t tmpfs tmpfs /tmp
	mountpoint -q /run || mount -t tmpfs tmpfs /run
	mount -t bpf bpf /sys/fs/bpf
	mount -t ext4 /dev/vdb /host
	sh /host/vmtest-guest.sh
	echo "VMTEST-EXIT $?"
	umount /host
	sync
	sleep 0 # (read now: nothing is read from the disks as they go away)
	echo o >/proc/sysrq-trigger
	sleep 60
	EOF
	chmod 755 "$root/sbin/vmtest-init"
	echo vmtest >"$root/etc/hostname"
	rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* \
		"$root"/var/lib/apt/lists/* "$root"/boot/initrd.img-*
	local mb
	mb=$(du -sm "$root" | cut -f1)
	mkfs.ext4 -q -F -L vmtest-root -d "$root" "$tmp/root.ext4" "$((mb + 768))M" >/dev/null
	dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${db:Status-Abbrev} ${Package} ${Version}\n' \
		'linux-image-*' libbpf1 liburing2 libcmocka0 | sed -n 's/^ii  //p' >"$tmp/versions"
	rm -rf "$root"
	mv "$tmp" "$img_dir"
}

if [ ! -f "$img_dir/root.ext4" ]; then
	t0=$(date +%s)
	build_image
	echo "vmtest: image built in $(($(date +%s) - t0)) s ($(du -sh --apparent-size "$img_dir/root.ext4" | cut -f1))"
else
	echo "vmtest: cached image $img_dir"
fi
sed 's/^/vmtest: guest has /' "$img_dir/versions"
[ "$prepare_only" = 1 ] && exit 0

# ---- this run's disk: the tree at its own paths, and the guest's script ---
work=$(mktemp -d /tmp/writevv-vmtest.XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
stage=$work/stage
mkdir -p "$stage$here"
# The source tree without its build trees; the build tree (wherever it is).
tar -C "$here" --exclude=./.git --exclude='./build*' -cf - . | tar -C "$stage$here" -xf -
mkdir -p "$stage$build"
tar -C "$build" --exclude=./Testing -cf - . | tar -C "$stage$build" -xf -
cc -O2 -Wall -Wextra -Werror -I"$here/lib" -I"$here/util" -I"$build/include" -o "$stage/vmtest-probe" \
	"$here/scripts/vmtest-probe.c" "$here/util/mode_names.c" \
	-L"$build" -Wl,-rpath,"$build" -lwritevv -luring

# The pin directory the build's tests use (a cache variable of the build).
pin_dir=$(sed -n 's/^WVV_TEST_PIN_DIR:[A-Z]*=//p' "$build/CMakeCache.txt")
cat >"$stage/vmtest-guest.sh" <<EOF
here='$here' build='$build' pin_dir='${pin_dir:-/sys/fs/bpf/writevv-ctest}'
include='$include' exclude='$exclude'
EOF
cat >>"$stage/vmtest-guest.sh" <<'EOF'
# Runs as PID 1's child in the guest; the exit status is the verdict.
# The console opened afresh, and nothing of it given to the tests: the console
# PID 1 got is one open file shared by fds 0-2, so a test that made its stdin
# non-blocking would make every later write to the console fail (EAGAIN).
exec </dev/null >/dev/ttyS0 2>&1
# What ctest printed, on the disk that the host reads if the guest hangs.
(while sleep 10; do sync; done) &
for d in "$here" "$build"; do
	mkdir -p "$d"
	mountpoint -q "$d" || mount --bind "/host$d" "$d"
done
ip link set lo up
echo "== guest: $(uname -sr) ($(. /etc/os-release; echo "$PRETTY_NAME")), $(nproc) CPUs"
echo "== stock sysctls"
sysctl net.core.wmem_max net.core.rmem_max net.core.wmem_default net.ipv4.tcp_wmem \
	net.ipv4.tcp_rmem net.ipv4.tcp_congestion_control kernel.unprivileged_bpf_disabled \
	kernel.io_uring_disabled 2>&1
echo "== memlock limit: $(ulimit -l) KiB"
fail=0
echo "== writevv-loader load"
"$build/writevv-loader" load || fail=1
"$build/writevv-loader" status || fail=1
echo "== kernel features and each engine (WRITEVV_MODE=...; GETMODE after one checked call)"
/host/vmtest-probe features || fail=1
for m in default kernel iouring sendfile zerocopy userland; do
	WRITEVV_MODE=$m /host/vmtest-probe mode || fail=1
done
echo "== writevv-demo --targets 200 (kernel mode program loaded)"
(cd /tmp && "$build/writevv-demo" --targets 200) || { echo "demo FAILED"; fail=1; }
"$build/writevv-loader" unload || fail=1
# Not root: a member of the loader's --group (kernel.unprivileged_bpf_disabled
# is 2 on Debian; since 5.19 it only stops map creation and program loads).
echo "== kernel mode as uid 65534 in group nogroup (writevv-loader load --group nogroup)"
"$build/writevv-loader" load --group nogroup >/dev/null || fail=1
setpriv --reuid=65534 --regid=65534 --clear-groups env WRITEVV_MODE=kernel /host/vmtest-probe mode ||
	fail=1
"$build/writevv-loader" unload >/dev/null || fail=1
echo "== ctest (-R '$include' -E '$exclude')"
# One test at a time, as the README's command runs them: tests that read the
# program's counters (test_fanout, test_mixed) see every process's traffic.
ctest --test-dir "$build" ${include:+-R "$include"} -E "$exclude" --output-on-failure \
	--timeout 300 >/host/ctest.log 2>&1 &
ctest_pid=$!
tail -n +1 -f /host/ctest.log --pid=$ctest_pid
wait $ctest_pid || fail=1
# As root nothing may skip (exit 77: no root or no BPF): a skip hides a missing feature.
if grep -E '[*][*][*]Skipped|[(]Skipped[)]$' /host/ctest.log; then
	echo "vmtest: ctest skipped tests" >&2
	fail=1
fi
ctest --test-dir "$build" ${include:+-R "$include"} -E "$exclude" -N | tail -1
exit $fail
EOF
mkfs.ext4 -q -F -L vmtest-tree -d "$stage" "$work/tree.ext4" \
	"$(($(du -sm "$stage" | cut -f1) + 256))M" >/dev/null

# ---- boot ------------------------------------------------------------------
# TCG by default: /dev/kvm may exist without working (nested virtualisation
# off, as on the CI machines); VMTEST_ACCEL=kvm where it works. The root image
# is never written (snapshot=on): the cached copy stays clean.
accel=${VMTEST_ACCEL:-tcg}
echo "vmtest: booting linux $kernel ($accel), timeout $timeout_s s"
log=$work/console.log
t0=$(date +%s)
set +e
# The console goes to a file (qemu never waits to write it: with -serial stdio
# into a pipe the guest's console output stalled for good under load), which
# is followed here.
: >"$log"
timeout "$timeout_s" qemu-system-x86_64 -accel "$accel" -cpu max -smp 2 -m 4G \
	-display none -no-reboot -serial "file:$log" -monitor "unix:$work/monitor,server,nowait" \
	-kernel "$img_dir/vmlinuz" -initrd "$img_dir/initrd.img" \
	-append "root=/dev/vda rw console=ttyS0 init=/sbin/vmtest-init panic=-1 quiet loglevel=4" \
	-drive "file=$img_dir/root.ext4,format=raw,if=virtio,snapshot=on" \
	-drive "file=$work/tree.ext4,format=raw,if=virtio" \
	-nic none </dev/null >"$work/qemu.log" 2>&1 &
qemu_pid=$!
tail -n +1 -f "$log" --pid=$qemu_pid | sed -u 's/\r$//'
wait $qemu_pid
qemu_rc=$?
cat "$work/qemu.log"
set -e
echo "vmtest: guest ran $(($(date +%s) - t0)) s"
verdict=$(tr -d "\r" <"$log" | sed -n "s/^VMTEST-EXIT \([0-9]*\)$/\1/p" | tail -1)
if [ "$qemu_rc" = 124 ]; then
	echo "vmtest: FAILED: the guest did not finish in $timeout_s s; the end of its ctest output:" >&2
	debugfs -R "cat /ctest.log" "$work/tree.ext4" 2>/dev/null | tail -40 >&2
	exit 1
fi
if [ -z "$verdict" ]; then
	echo "vmtest: FAILED: the guest ended (qemu status $qemu_rc) without a verdict" >&2
	exit 1
fi
if [ "$verdict" != 0 ]; then
	echo "vmtest: FAILED on linux $kernel (see above)" >&2
	exit 1
fi
echo "vmtest: all passed on linux $kernel"
exit 0
}
