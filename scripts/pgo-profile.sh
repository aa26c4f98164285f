#!/usr/bin/env bash
# pgo-profile.sh writes cmd/loyaltyd/default.pgo, the CPU profile Go's
# profile-guided optimisation builds loyaltyd with (go build uses it on its
# own). `make pgo-profile` calls it after building bin/loyaltyd (itself
# built with the profile it replaces: a profile's hot paths hardly depend
# on it) and bin/loyaltybench.
#
# The profile is the service under make bench's load with the event
# pipeline on: loyaltybench events-ab runs one spread and one hot pair of
# phases, and while each "on" phase is measured this script takes 25 s of
# loyaltyd's CPU profile from its -pprof-listen port; the two are merged.
set -euo pipefail

me="pgo-profile"
port=${PGO_PPROF_PORT:-6061}
out=cmd/loyaltyd/default.pgo
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for mode in spread hot; do
	log="$work/$mode.log"
	LOYALTY_PPROF_LISTEN="127.0.0.1:$port" bin/loyaltybench events-ab -loyaltyd bin/loyaltyd \
		-modes "$mode" -pairs 1 -duration 35s >"$log" 2>&1 &
	bench=$!
	# The "on" phase is measuring once the pipeline has caught up with its setup.
	until grep -q "caught up with the setup" "$log"; do
		if ! kill -0 "$bench" 2>/dev/null; then
			echo "$me: loyaltybench events-ab stopped before the on phase:" >&2
			cat "$log" >&2
			exit 1
		fi
		sleep 1
	done
	sleep 3
	curl -fsS -o "$work/$mode.pprof" "http://127.0.0.1:$port/debug/pprof/profile?seconds=25"
	wait "$bench"
	echo "$me: $mode profile taken during the on phase: $(grep 'committed writes/s' "$log" | tail -1)"
done
go tool pprof -proto "$work/spread.pprof" "$work/hot.pprof" >"$work/merged.pgo"
mv "$work/merged.pgo" "$out"
echo "$me: wrote $out"
