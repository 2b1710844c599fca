// Package migrate tests moving user data in and out of xmppd with XEP-0227 files through the real binary:
// export → import round trips between two data directories, hostile files refused, and files exported by the
// real Debian peers (Prosody 0.12, ejabberd 23.01) imported and logged into with the old passwords.
package migrate

import (
	"os"
	"testing"

	"github.com/xmppd/xmppd/test/harness"
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }
