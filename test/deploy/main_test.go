// Package deploy checks the operating pieces in docs/ against the real server: the Grafana dashboard and the
// Prometheus alert rules query only metrics a live xmppd exports, and the systemd unit verifies.
package deploy

import (
	"os"
	"testing"

	"github.com/xmppd/xmppd/test/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
