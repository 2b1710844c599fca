package xmppload

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"
)

// The end-to-end tests start the real xmppd (built by the harness) and run
// short loads against it with verified TLS.

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

func checkCleanChat(t *testing.T, rep *Report, clients int) {
	t.Helper()
	if rep.Logins != int64(clients) || rep.LoginErrors != 0 {
		t.Errorf("logins %d, errors %d, want %d/0 (errors: %v)", rep.Logins, rep.LoginErrors, clients, rep.Errors)
	}
	if rep.MessagesSent == 0 || rep.MessagesReceived != rep.MessagesSent {
		t.Errorf("sent %d, received %d", rep.MessagesSent, rep.MessagesReceived)
	}
	if rep.MessagesLost != 0 || rep.MessagesDuplicated != 0 || rep.MessagesOutOfOrder != 0 {
		t.Errorf("lost %d, duplicated %d, out of order %d", rep.MessagesLost, rep.MessagesDuplicated, rep.MessagesOutOfOrder)
	}
	if rep.Latency.Count != rep.MessagesReceived || rep.Latency.P50 <= 0 || rep.Latency.P50 > rep.Latency.P99 || rep.Latency.P99 > 5000 {
		t.Errorf("implausible latency %+v", rep.Latency)
	}
	if rep.LoginLatency.Count != int64(clients) || rep.LoginLatency.P50 <= 0 {
		t.Errorf("implausible login latency %+v", rep.LoginLatency)
	}
	if rep.MsgsPerSec <= 0 {
		t.Errorf("msgs_per_sec %v", rep.MsgsPerSec)
	}
	if len(rep.Errors) != 0 {
		t.Errorf("errors: %v", rep.Errors)
	}
	if failed, why := rep.Failed(); failed {
		t.Errorf("report failed: %s", why)
	}
}

func TestE2EChatSTARTTLSExistingAccounts(t *testing.T) {
	srv := harness.Start(t, harness.Options{})
	const clients = 6
	for i := 1; i <= clients; i++ {
		srv.AddUser(t, "u"+strconv.Itoa(i), "pw")
	}
	rep, err := Run(context.Background(), Config{
		Addr: srv.C2SAddr, Domain: srv.Domain, Clients: clients, Profile: ProfileChat,
		Duration: 2 * time.Second, Settle: 100 * time.Millisecond, Drain: 3 * time.Second,
		UserPrefix: "u", Password: "pw", TLS: "starttls", Mech: "SCRAM-SHA-256", CAFile: srv.CAFile,
		Window: 5, ServerPIDs: nil,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkCleanChat(t, rep, clients)
}

func TestE2EChatDirectTLSRegisterAtRate(t *testing.T) {
	srv := harness.Start(t, harness.Options{RegistrationAllow: true})
	const clients = 4
	rep, err := Run(context.Background(), Config{
		Addr: srv.DirectTLSAddr, Domain: srv.Domain, Clients: clients, Profile: ProfileChat,
		Duration: 2 * time.Second, Settle: 100 * time.Millisecond, Drain: 3 * time.Second,
		Register: true, UserPrefix: "reg", Password: "longsecret", PasswordSuffixIndex: true,
		TLS: "direct", Mech: "SCRAM-SHA-1", CAFile: srv.CAFile, Rate: 50, Window: 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Registrations != clients {
		t.Errorf("registrations %d (existing %d, errors %d: %v)", rep.Registrations, rep.RegistrationsExisting, rep.RegistrationErrors, rep.Errors)
	}
	checkCleanChat(t, rep, clients)
	// 50 msgs/s per client for ~2 s: about 100 each; the rate must be honoured.
	if per := float64(rep.MessagesSent) / clients; per < 60 || per > 140 {
		t.Errorf("%.0f messages per client at -rate 50 for 2s", per)
	}
}

// -stagger at a rate: the same messages, all delivered, the senders spread over each period.
func TestE2EChatStaggered(t *testing.T) {
	srv := harness.Start(t, harness.Options{})
	const clients = 8
	for i := 1; i <= clients; i++ {
		srv.AddUser(t, "s"+strconv.Itoa(i), "pw")
	}
	rep, err := Run(context.Background(), Config{
		Addr: srv.C2SAddr, Domain: srv.Domain, Clients: clients, Profile: ProfileChat, Rate: 5, Stagger: true,
		Duration: 2 * time.Second, Settle: 100 * time.Millisecond, Drain: 3 * time.Second, Window: 20,
		UserPrefix: "s", Password: "pw", CAFile: srv.CAFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkCleanChat(t, rep, clients)
	// 5 msgs/s per client for ~2 s: 10 each, give or take the one a phase adds or the last tick loses.
	if per := float64(rep.MessagesSent) / clients; per < 8 || per > 12 {
		t.Errorf("%.1f messages per client at -rate 5 for 2s", per)
	}
}

func TestE2EWrongPasswordIsCounted(t *testing.T) {
	srv := harness.Start(t, harness.Options{})
	srv.AddUser(t, "w1", "right")
	rep, err := Run(context.Background(), Config{
		Addr: srv.C2SAddr, Domain: srv.Domain, Clients: 1, Profile: ProfileIdle,
		Duration: 100 * time.Millisecond, Settle: 10 * time.Millisecond,
		UserPrefix: "w", Password: "wrong", CAFile: srv.CAFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Logins != 0 || rep.LoginErrors != 1 || rep.Errors["sasl:not-authorized"] != 1 {
		t.Errorf("logins %d, errors %d %v; want one sasl:not-authorized", rep.Logins, rep.LoginErrors, rep.Errors)
	}
	if failed, _ := rep.Failed(); !failed {
		t.Error("a run where nobody logged in must fail")
	}
}

// The muc profile: 6 clients in 2 rooms (3 occupants each) at 4 messages/s; every copy arrives once and in
// order, the sender's reflection included.
func TestE2EMUC(t *testing.T) {
	srv := harness.Start(t, harness.Options{})
	const clients = 6
	for i := 1; i <= clients; i++ {
		srv.AddUser(t, "m"+strconv.Itoa(i), "pw")
	}
	rep, err := Run(context.Background(), Config{
		Addr: srv.C2SAddr, Domain: srv.Domain, Clients: clients, Profile: ProfileMUC, Rooms: 2, Rate: 4,
		Duration: 2 * time.Second, Settle: 100 * time.Millisecond, Drain: 3 * time.Second,
		UserPrefix: "m", Password: "pw", CAFile: srv.CAFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.RoomOccupants) != 2 || rep.RoomOccupants[0] != 3 || rep.RoomOccupants[1] != 3 {
		t.Fatalf("occupants %v, want [3 3] (errors %v)", rep.RoomOccupants, rep.Errors)
	}
	checkCleanChat(t, rep, clients)
	// 4 messages/s per occupant for ~2 s, 3 copies each: about 24 copies per client.
	if per := float64(rep.MessagesReceived) / clients; per < 12 || per > 40 {
		t.Errorf("%.0f copies per client at -rate 4 for 2s in rooms of 3", per)
	}
}

// -transport websocket: the same chat over RFC 7395, plain on loopback and over TLS.
func TestE2EChatWebSocket(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		srv := harness.Start(t, harness.Options{HTTPTLS: tlsOn})
		const clients = 4
		for i := 1; i <= clients; i++ {
			srv.AddUser(t, "w"+strconv.Itoa(i), "pw")
		}
		mode := "none"
		if tlsOn {
			mode = "direct"
		}
		rep, err := Run(context.Background(), Config{
			Addr: srv.HTTPAddr, Transport: "websocket", Domain: srv.Domain, Clients: clients, Profile: ProfileChat,
			Duration: 2 * time.Second, Settle: 100 * time.Millisecond, Drain: 3 * time.Second,
			UserPrefix: "w", Password: "pw", TLS: mode, Mech: "SCRAM-SHA-256", CAFile: srv.CAFile, Window: 5,
		})
		if err != nil {
			t.Fatal(err)
		}
		checkCleanChat(t, rep, clients)
	}
}

// -transport bosh: the same chat over XEP-0124/0206, plain on loopback and over TLS, and plain with -bosh-gap.
// The server's own counters say the logins really went through /http-bind: at least a creation, a restart and
// the payload requests per client, and no BOSH session left once the clients have terminated theirs.
func TestE2EChatBOSH(t *testing.T) {
	for _, tc := range []struct {
		tlsOn bool
		gap   time.Duration // -bosh-gap
	}{{false, 0}, {true, 0}, {false, 50 * time.Millisecond}} {
		tlsOn := tc.tlsOn
		srv := harness.Start(t, harness.Options{HTTPTLS: tlsOn})
		const clients = 4
		for i := 1; i <= clients; i++ {
			srv.AddUser(t, "b"+strconv.Itoa(i), "pw")
		}
		mode := "none"
		if tlsOn {
			mode = "direct"
		}
		rep, err := Run(context.Background(), Config{
			Addr: srv.HTTPAddr, Transport: "bosh", Domain: srv.Domain, Clients: clients, Profile: ProfileChat,
			Duration: 2 * time.Second, Settle: 100 * time.Millisecond, Drain: 3 * time.Second, Rate: 20,
			UserPrefix: "b", Password: "pw", TLS: mode, Mech: "SCRAM-SHA-256", CAFile: srv.CAFile, Window: 5,
			BOSHGap: tc.gap,
		})
		if err != nil {
			t.Fatal(err)
		}
		checkCleanChat(t, rep, clients)
		// 20 messages/s for 2 s per client: about 40 each (an exact count would time the run).
		if per := float64(rep.MessagesSent) / clients; per < 20 || per > 60 {
			t.Errorf("%.0f messages per client at -rate 20 for 2s", per)
		}
		metrics := metricsText(t, srv)
		if n := metricValue(metrics, `xmppd_http_requests_total{endpoint="/http-bind"}`); n < 5*clients {
			t.Errorf("%v requests to /http-bind for %d BOSH clients", n, clients)
		}
		if n := metricValue(metrics, `xmppd_auth_success_total{mechanism="SCRAM-SHA-256"}`); n != clients {
			t.Errorf("%v SCRAM-SHA-256 logins on the server, want %d", n, clients)
		}
		deadline := time.Now().Add(5 * time.Second)
		for metricValue(metricsText(t, srv), `xmppd_http_sessions{transport="bosh"}`) != 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if n := metricValue(metricsText(t, srv), `xmppd_http_sessions{transport="bosh"}`); n != 0 {
			t.Errorf("%v BOSH sessions still open after the clients terminated theirs", n)
		}
	}
}

func metricsText(t *testing.T, srv *harness.Server) string {
	t.Helper()
	resp, err := http.Get("http://" + srv.DebugAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// metricValue is the value of the sample named exactly so (name{labels}); -1 when absent.
func metricValue(text, sample string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

func TestE2EChatWithStreamManagement(t *testing.T) {
	srv := harness.Start(t, harness.Options{})
	const clients = 4
	for i := 1; i <= clients; i++ {
		srv.AddUser(t, "sm"+strconv.Itoa(i), "pw")
	}
	rep, err := Run(context.Background(), Config{
		Addr: srv.C2SAddr, Domain: srv.Domain, Clients: clients, Profile: ProfileChat,
		Duration: 2 * time.Second, Settle: 100 * time.Millisecond, Drain: 3 * time.Second,
		UserPrefix: "sm", Password: "pw", CAFile: srv.CAFile, Rate: 50, Window: 20,
		SM: true, AckEvery: 7,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkCleanChat(t, rep, clients)
	// Each client sent ~100 messages plus its roster get and presence: about
	// 100/7 <r/>s each; every one is answered (the last may still be in
	// flight when the streams close).
	if rep.SMRequests < clients*10 || rep.SMAcks < rep.SMRequests-clients {
		t.Errorf("<r/> sent %d, <a/> received %d", rep.SMRequests, rep.SMAcks)
	}
	if rep.AckLatency == nil || rep.AckLatency.Count < rep.SMRequests-clients || rep.AckLatency.P50 <= 0 {
		t.Errorf("ack latency %+v for %d requests", rep.AckLatency, rep.SMRequests)
	}
	// xmppd asks every request_every (5) stanzas it sends: received messages.
	if rep.SMServerRequests < rep.MessagesReceived/10 {
		t.Errorf("server <r/> answered %d for %d messages received", rep.SMServerRequests, rep.MessagesReceived)
	}
	if rep.MessagesResent != 0 || rep.MessagesSMDuplicates != 0 {
		t.Errorf("resent %d, XEP-0198 duplicates %d without any reconnection", rep.MessagesResent, rep.MessagesSMDuplicates)
	}
}

func TestE2EReconnectResumes(t *testing.T) {
	t.Run("full-handshakes", func(t *testing.T) { reconnectResumes(t, false) })
	// -tls-resume: every reconnection also resumes its TLS session (the server issues tickets).
	t.Run("tls-resume", func(t *testing.T) { reconnectResumes(t, true) })
}

func reconnectResumes(t *testing.T, tlsResume bool) {
	srv := harness.Start(t, harness.Options{})
	const clients = 4
	for i := 1; i <= clients; i++ {
		srv.AddUser(t, "rc"+strconv.Itoa(i), "pw")
	}
	rep, err := Run(context.Background(), Config{
		Addr: srv.C2SAddr, Domain: srv.Domain, Clients: clients, Profile: ProfileReconnect,
		Duration: 3 * time.Second, Settle: 100 * time.Millisecond, Drain: 5 * time.Second,
		Hold: 300 * time.Millisecond, UserPrefix: "rc", Password: "pw", CAFile: srv.CAFile,
		Rate: 40, Window: 50, AckEvery: 5, TLSResume: tlsResume,
	})
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	rep.WriteText(&text)
	t.Log(text.String())
	// ~3 s / 0.3 s: about 10 drops per client.
	if rep.Drops < clients*3 || rep.Resumes != rep.Drops || rep.ResumesFailed != 0 {
		t.Errorf("drops %d, resumed %d, failed %d", rep.Drops, rep.Resumes, rep.ResumesFailed)
	}
	if want := map[bool]int64{false: 0, true: rep.Drops}[tlsResume]; rep.TLSResumed != want {
		t.Errorf("%d TLS handshakes resumed a session over %d reconnections, want %d", rep.TLSResumed, rep.Drops, want)
	}
	if rep.ResumeLatency == nil || rep.ResumeLatency.Count != rep.Resumes || rep.ResumeLatency.P50 <= 0 {
		t.Errorf("resume latency %+v for %d resumptions", rep.ResumeLatency, rep.Resumes)
	}
	if rep.Logins != clients || rep.LoginErrors != 0 {
		t.Errorf("logins %d, errors %d: a resumption is not a login", rep.Logins, rep.LoginErrors)
	}
	if rep.MessagesSent == 0 || rep.MessagesLost != 0 || rep.MessagesReceived != rep.MessagesSent {
		t.Errorf("sent %d, received %d, lost %d", rep.MessagesSent, rep.MessagesReceived, rep.MessagesLost)
	}
	// Exactly once: a copy is allowed only as an XEP-0198 duplicate (with a
	// delay), and xmppd's h is exact, so there is none.
	if rep.MessagesDuplicated != 0 || rep.MessagesSMDuplicates != 0 || rep.MessagesOutOfOrder != 0 {
		t.Errorf("duplicated %d, XEP-0198 duplicates %d, out of order %d", rep.MessagesDuplicated, rep.MessagesSMDuplicates, rep.MessagesOutOfOrder)
	}
	if len(rep.Errors) != 0 {
		t.Errorf("errors: %v", rep.Errors)
	}
	if failed, why := rep.Failed(); failed {
		t.Errorf("report failed: %s", why)
	}
}

// With a resumption window shorter than a reconnection, every <resume/> gets
// <failed/>: the client counts it and logs in afresh, and no message is lost
// (the server delivers what the old session had not had acknowledged again,
// offline; the client sends again what the server had not acknowledged).
func TestE2EReconnectFailedResumeLogsInAgain(t *testing.T) {
	srv := harness.Start(t, harness.Options{Sections: map[string]string{
		"stream_management": `resume_timeout = "1ms"`,
	}})
	const clients = 2
	for i := 1; i <= clients; i++ {
		srv.AddUser(t, "fr"+strconv.Itoa(i), "pw")
	}
	rep, err := Run(context.Background(), Config{
		Addr: srv.C2SAddr, Domain: srv.Domain, Clients: clients, Profile: ProfileReconnect,
		Duration: 2 * time.Second, Settle: 100 * time.Millisecond, Drain: 5 * time.Second,
		Hold: 400 * time.Millisecond, UserPrefix: "fr", Password: "pw", CAFile: srv.CAFile,
		Rate: 20, Window: 50, AckEvery: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	rep.WriteText(&text)
	t.Log(text.String())
	if rep.Drops < clients || rep.ResumesFailed != rep.Drops || rep.Resumes != 0 {
		t.Errorf("drops %d, resumed %d, failed %d", rep.Drops, rep.Resumes, rep.ResumesFailed)
	}
	if rep.Errors["resume-failed:item-not-found"] != rep.ResumesFailed {
		t.Errorf("errors %v, want %d resume-failed:item-not-found", rep.Errors, rep.ResumesFailed)
	}
	if rep.Logins != clients+rep.ResumesFailed || rep.LoginErrors != 0 {
		t.Errorf("logins %d (errors %d), want %d: one more after each failed resumption", rep.Logins, rep.LoginErrors, clients+rep.ResumesFailed)
	}
	if rep.MessagesSent == 0 || rep.MessagesLost != 0 || rep.MessagesDuplicated != 0 {
		t.Errorf("sent %d, received %d, lost %d, duplicated without a delay %d", rep.MessagesSent, rep.MessagesReceived, rep.MessagesLost, rep.MessagesDuplicated)
	}
	if failed, _ := rep.Failed(); !failed {
		t.Error("a run with failed resumptions must fail")
	}
}

// -profile roster -roster-online 0.5: the first run sets up mutual rosters over all the accounts (the offline ones
// log in for it), the measured phase has half of them online, and every update reaches exactly the sender's online
// contacts; the second run finds the subscriptions in place and sets nothing up.
func TestE2ERosterHalfOnline(t *testing.T) {
	srv := harness.Start(t, harness.Options{})
	const accounts, roster = 12, 6
	for i := 1; i <= accounts; i++ {
		srv.AddUser(t, "r"+strconv.Itoa(i), "pw")
	}
	cfg := Config{
		Addr: srv.C2SAddr, Domain: srv.Domain, Clients: accounts, Profile: ProfileRoster, RosterSize: roster,
		RosterOnline: 0.5, Rate: 4, Duration: 2 * time.Second, Settle: 300 * time.Millisecond, Drain: 3 * time.Second,
		UserPrefix: "r", Password: "pw", CAFile: srv.CAFile,
	}
	profile := t.TempDir() + "/roster.pprof"
	for run, wantSetup := range []bool{true, false} {
		if run == 1 {
			// The second run also profiles the server's measured phase through its debug listener.
			cfg.ServerPprof, cfg.ServerPprofOut = "http://"+srv.DebugAddr+"/debug/pprof/profile", profile
		}
		rep, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if rep.RosterSetup != wantSetup {
			t.Errorf("run %d: roster setup %v, want %v", run, rep.RosterSetup, wantSetup)
		}
		if rep.Logins != accounts/2 || rep.LoginErrors != 0 || rep.RosterIncomplete != 0 {
			t.Errorf("run %d: %d logins, %d errors, %d rosters incomplete; want %d, 0, 0 (errors %v)",
				run, rep.Logins, rep.LoginErrors, rep.RosterIncomplete, accounts/2, rep.Errors)
		}
		// Every second account online: 2 of each user's 6 contacts (the even neighbours).
		if rep.PresencesSent == 0 || rep.PresencesExpected != 2*rep.PresencesSent {
			t.Errorf("run %d: %d updates sent, %d deliveries expected, want 2 per update", run, rep.PresencesSent, rep.PresencesExpected)
		}
		if rep.PresencesDelivered != rep.PresencesExpected || rep.PresencesLost != 0 {
			t.Errorf("run %d: %d delivered of %d expected", run, rep.PresencesDelivered, rep.PresencesExpected)
		}
		if rep.PresenceLatency == nil || rep.PresenceLatency.Count != rep.PresencesDelivered || rep.PresenceLatency.P99 <= 0 {
			t.Errorf("run %d: implausible presence latency %+v", run, rep.PresenceLatency)
		}
		if failed, why := rep.Failed(); failed {
			t.Errorf("run %d: report failed: %s", run, why)
		}
		if run == 1 && (rep.ServerPprof != profile || rep.ServerPprofError != "") {
			t.Errorf("server profile %q, error %q", rep.ServerPprof, rep.ServerPprofError)
		}
	}
	checkCPUProfile(t, profile)
}

// checkCPUProfile: a gzipped protobuf profile (what go tool pprof reads) that names CPU samples.
func checkCPUProfile(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: not gzip: %v", path, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("cpu")) || !bytes.Contains(b, []byte("nanoseconds")) {
		t.Errorf("%s: %d bytes without the cpu/nanoseconds sample type", path, len(b))
	}
}
