#!/usr/bin/env bash
# The project's test command: installs what the tests need, then runs every test with the race detector, then
# a short run of every fuzz target on its committed corpus.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/test-deps.sh

go vet ./...
# -p 2: the machine has two cores; end-to-end tests start real servers.
go test -race -count=1 -p 2 -timeout 20m ./...
# The patched cluster code's own tests: third_party/protoactor-go is a module of its own, out of ./...'s reach.
(cd third_party/protoactor-go && go test -race -count=1 -timeout 10m -run Xmppd ./cluster/...)

# Every fuzz target for a few seconds on top of its committed corpus (scripts/fuzz.sh finds them).
scripts/fuzz.sh "${FUZZ_SECONDS:-3}"
