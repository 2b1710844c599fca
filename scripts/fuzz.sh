#!/usr/bin/env bash
# Runs every Go fuzz target in the repository for the given number of seconds each (default 10).
#
#   scripts/fuzz.sh [seconds]
#
# The budget is a count of executions (seconds × FUZZ_EXECS_PER_SECOND, default 10000), not -fuzztime=<n>s: with
# a wall-clock -fuzztime, Go 1.26's fuzz coordinator can report "context deadline exceeded" and fail a target that
# found nothing when the deadline races a busy worker (golang/go#75804, fixed in Go 1.27). A count has no
# deadline to race. A slow target (protocol/jid, about 2k executions/s on this machine) takes longer than
# the seconds given; the fast ones less.
#
# (third_party/ is the protoactor-go fork, a module of its own with tests of its own.)
# Targets are found with `go test -list 'Fuzz.*'` in every package that has a func Fuzz… in a _test.go file,
# so a new target is picked up without editing this script. Seed corpora live in testdata/fuzz/<Target>/ next
# to each target; a crasher found here is written there too (commit it with the fix). Fuzzing uses every core
# by default; set FUZZ_PARALLEL to limit the workers (-parallel).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-10}
case "$secs" in
  ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [seconds]" >&2; exit 2 ;;
esac
execs=$((secs * ${FUZZ_EXECS_PER_SECOND:-10000}))
par=()
if [ -n "${FUZZ_PARALLEL:-}" ]; then par=(-parallel "$FUZZ_PARALLEL"); fi

pkgs=$(grep -rl --include='*_test.go' --exclude-dir=third_party '^func Fuzz' . | xargs -n1 dirname | sort -u)
total=0
failed=()
for dir in $pkgs; do
  for target in $(go test -list 'Fuzz.*' "$dir" | grep '^Fuzz' || true); do
    total=$((total + 1))
    echo "=== fuzz $dir $target (${execs} executions)"
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "${execs}x" "${par[@]}" "$dir"; then
      failed+=("$dir $target")
    fi
  done
done
echo "fuzz.sh: $total targets, ${#failed[@]} failed"
if [ ${#failed[@]} -gt 0 ]; then
  printf '  FAILED: %s\n' "${failed[@]}"
  exit 1
fi
