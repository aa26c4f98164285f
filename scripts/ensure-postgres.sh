#!/usr/bin/env bash
# ensure-postgres.sh makes sure the PostgreSQL server binaries (postgres and
# initdb) that embeddedpg runs are installed. `make test` and `make run` call
# it first.
#
# It looks where embeddedpg.BinDir looks: $PG_BINDIR, then `pg_config --bindir`,
# then /usr/lib/postgresql/*/bin. If the binaries are there it prints nothing
# and exits 0. If not, it installs the Debian/Ubuntu postgresql package when
# it can (root with apt-get), and otherwise says what to install and exits 1.
#
# The postgresql package sets up and may try to start its own "main" cluster
# service. We do not use it (embeddedpg runs private servers), so a failure to
# start that service is not an error here.
set -euo pipefail

me="ensure-postgres"

# has_server DIR: DIR holds executable postgres and initdb.
has_server() {
	[[ -n "$1" && -f "$1/postgres" && -x "$1/postgres" && -f "$1/initdb" && -x "$1/initdb" ]]
}

# find_bindir: succeeds (printing nothing) if the server binaries are found.
find_bindir() {
	local dir
	if [[ -n "${PG_BINDIR:-}" ]]; then
		# Like BinDir: an explicit PG_BINDIR is used as is, never second-guessed.
		has_server "$PG_BINDIR"
		return
	fi
	if command -v pg_config >/dev/null 2>&1; then
		dir="$(pg_config --bindir 2>/dev/null || true)"
		if has_server "$dir"; then
			return 0
		fi
	fi
	for dir in /usr/lib/postgresql/*/bin; do
		if has_server "$dir"; then
			return 0
		fi
	done
	return 1
}

if find_bindir; then
	exit 0
fi

if [[ -n "${PG_BINDIR:-}" ]]; then
	# Installing a package would not help: PG_BINDIR still wins.
	echo "$me: PG_BINDIR=$PG_BINDIR does not hold executable postgres and initdb binaries." >&2
	echo "$me: set PG_BINDIR to a directory holding initdb and postgres (e.g. /usr/lib/postgresql/15/bin), or unset it." >&2
	exit 1
fi

if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
	echo "$me: PostgreSQL server binaries not found; installing the postgresql package with apt-get..." >&2
	export DEBIAN_FRONTEND=noninteractive
	# apt output goes to stderr so that stdout stays clean for callers.
	# Wait for the dpkg lock rather than failing if another apt is running.
	apt-get -q -o DPkg::Lock::Timeout=300 update >&2 ||
		echo "$me: apt-get update failed; trying the install anyway" >&2
	# The package's scripts may fail to start their own cluster service (no
	# init system in containers, say), which can make apt-get exit non-zero
	# although the binaries are installed; what counts is the check below.
	apt-get -q -o DPkg::Lock::Timeout=300 install -y --no-install-recommends postgresql >&2 ||
		echo "$me: apt-get install postgresql reported an error; checking whether the server binaries arrived anyway" >&2
	if find_bindir; then
		echo "$me: PostgreSQL server binaries installed." >&2
		exit 0
	fi
	echo "$me: installed the postgresql package, but still no postgres and initdb in \`pg_config --bindir\` or /usr/lib/postgresql/*/bin." >&2
	echo "$me: set PG_BINDIR to a directory holding initdb and postgres." >&2
	exit 1
fi

cat >&2 <<EOF
$me: PostgreSQL server binaries (postgres, initdb) not found.
Install them with:

    sudo apt-get install postgresql        # Debian/Ubuntu

or set PG_BINDIR to a directory holding initdb and postgres
(for example PG_BINDIR=/usr/lib/postgresql/15/bin).
EOF
exit 1
