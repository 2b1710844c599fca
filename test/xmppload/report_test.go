package xmppload

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReportJSONAndFailure(t *testing.T) {
	var h Histogram
	for i := int64(1); i <= 1000; i++ {
		h.Record(i * 1_000_000) // 1..1000 ms
	}
	r := &Report{Profile: "chat", Logins: 10, MessagesSent: 100, MessagesReceived: 97, MessagesLost: 3,
		Latency: h.SummaryMS(), MsgsPerSec: 12.5, Errors: map[string]int64{"sasl:not-authorized": 1}}
	path := filepath.Join(t.TempDir(), "r.json")
	if err := r.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"logins", "login_errors", "messages_sent", "messages_received", "messages_lost",
		"messages_duplicated", "messages_out_of_order", "latency_ms", "msgs_per_sec", "errors", "login_latency_ms"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	lat := m["latency_ms"].(map[string]any)
	if p50 := lat["p50"].(float64); p50 < 496 || p50 > 504 {
		t.Errorf("p50 = %v ms, want ~500", p50)
	}
	if p99 := lat["p99"].(float64); p99 < 982 || p99 > 998 {
		t.Errorf("p99 = %v ms, want ~990", p99)
	}
	if m["messages_lost"].(float64) != 3 {
		t.Errorf("messages_lost = %v", m["messages_lost"])
	}
	if failed, why := r.Failed(); !failed || !strings.Contains(why, "3 messages lost") {
		t.Errorf("Failed() = %v %q", failed, why)
	}
	r.MessagesLost = 0
	if failed, _ := r.Failed(); failed {
		t.Error("run without loss reported as failed")
	}
	r.Logins = 0
	if failed, _ := r.Failed(); !failed {
		t.Error("run without logins not failed")
	}
	var txt bytes.Buffer
	r.WriteText(&txt)
	if !strings.Contains(txt.String(), "sasl:not-authorized=1") || !strings.Contains(txt.String(), "received 97") {
		t.Errorf("text report:\n%s", txt.String())
	}
}

func TestParseFlagsHelpers(t *testing.T) {
	ips, err := ParseSourceIPs("127.0.0.1-127.0.0.3, 127.0.1.9")
	if err != nil || len(ips) != 4 || !ips[2].Equal(net.IPv4(127, 0, 0, 3)) || !ips[3].Equal(net.IPv4(127, 0, 1, 9)) {
		t.Fatalf("ParseSourceIPs = %v, %v", ips, err)
	}
	if ips, err := ParseSourceIPs("127.0.0.250-127.0.1.4"); err != nil || len(ips) != 11 {
		t.Fatalf("cross-octet range: %d, %v", len(ips), err)
	}
	for _, bad := range []string{"x", "127.0.0.5-127.0.0.1", "127.0.0.1-y"} {
		if _, err := ParseSourceIPs(bad); err == nil {
			t.Errorf("ParseSourceIPs(%q) accepted", bad)
		}
	}
	for in, want := range map[string]float64{"500": 500, "500/s": 500, "120/m": 2, "": 0} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"x/s", "5/d", "-1"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) accepted", bad)
		}
	}
}

func TestReadProcSelf(t *testing.T) {
	rss, cpu, err := readProc(os.Getpid())
	if err != nil || rss <= 0 || cpu < 0 {
		t.Fatalf("readProc(self) = %d KiB, %v s, %v", rss, cpu, err)
	}
}
