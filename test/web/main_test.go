// Package web tests the public HTTP listener of the real xmppd binary: RFC 7395 WebSocket, XEP-0206 BOSH and
// XEP-0156 host-meta, with Go clients and Converse.js in headless Chromium, chatting with TCP clients.
package web

import (
	"os"
	"testing"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// shared is the server most tests use; tests create their own accounts.
var shared = &xmppclient.Shared{Name: "web", Options: harness.Options{
	Sections: map[string]string{"stream_management": "resume_timeout = \"60s\""},
}}

func TestMain(m *testing.M) { os.Exit(shared.Main(m)) }
