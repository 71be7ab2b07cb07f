# Shell functions shared by scripts/quickstart.sh and scripts/vmtest.sh (sourced).

# install_missing WHO PACKAGE...: apt-get install the Debian packages that are
# not installed yet.
install_missing() {
	local who=$1 p
	local missing=()
	shift
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "$who: installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
}

# no_skipped_tests WHO LOG: fails when ctest's output LOG reports a skipped
# test. Run as root, nothing may skip (the tests skip, exit 77, only without
# root or BPF): a skip would hide a missing feature.
no_skipped_tests() {
	local who=$1 log=$2
	if grep -E '\*\*\*Skipped|\(Skipped\)$' "$log" >/dev/null; then
		echo "$who: ctest skipped tests (as root nothing may skip):" >&2
		grep -E '\*\*\*Skipped|\(Skipped\)$' "$log" >&2
		return 1
	fi
}
