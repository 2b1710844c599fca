package e2e

import (
	"testing"
	"time"
)

// XEP-0363 with slixmpp's xep_0363 plugin: service discovery, the max-file-size form, a slot, the PUT with the
// slot's headers (aiohttp) and the GET (testdata/slixmpp_upload.py says what is checked).
func TestSlixmppUpload(t *testing.T) {
	runSlixmppScript(t, "slixmpp_upload.py", "upl", 60*time.Second)
}
