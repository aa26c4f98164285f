#!/usr/bin/env bash
# ensure-chromium.sh makes sure the Chromium browser that the finance page's
# test (package financeweb) runs headless is installed. `make test` calls it
# first, like ensure-postgres.sh.
#
# It looks where the test looks: $CHROMIUM, then /usr/bin/chromium. If the
# browser is there it prints nothing and exits 0. If not, it installs the
# Debian chromium package when it can (root with apt-get), and otherwise
# says what to install and exits 1.
set -euo pipefail

me="ensure-chromium"

if [[ -n "${CHROMIUM:-}" ]]; then
	# Like the test: an explicit CHROMIUM is used as is, never second-guessed.
	if [[ -f "$CHROMIUM" && -x "$CHROMIUM" ]]; then
		exit 0
	fi
	echo "$me: CHROMIUM=$CHROMIUM is not an executable file." >&2
	echo "$me: set CHROMIUM to the chromium binary (e.g. /usr/bin/chromium), or unset it." >&2
	exit 1
fi

bin=/usr/bin/chromium
if [[ -x "$bin" ]]; then
	exit 0
fi

if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
	echo "$me: $bin not found; installing the chromium package with apt-get..." >&2
	export DEBIAN_FRONTEND=noninteractive
	# apt output goes to stderr so that stdout stays clean for callers.
	# Wait for the dpkg lock rather than failing if another apt is running.
	apt-get -q -o DPkg::Lock::Timeout=300 update >&2 ||
		echo "$me: apt-get update failed; trying the install anyway" >&2
	apt-get -q -o DPkg::Lock::Timeout=300 install -y --no-install-recommends chromium >&2 ||
		echo "$me: apt-get install chromium reported an error; checking whether the browser arrived anyway" >&2
	if [[ -x "$bin" ]]; then
		echo "$me: chromium installed." >&2
		exit 0
	fi
	echo "$me: installed the chromium package, but there is still no $bin." >&2
	echo "$me: set CHROMIUM to the chromium binary." >&2
	exit 1
fi

cat >&2 <<EOF
$me: Chromium not found at $bin.
Install it with:

    sudo apt-get install chromium        # Debian

or set CHROMIUM to a Chromium binary.
EOF
exit 1
