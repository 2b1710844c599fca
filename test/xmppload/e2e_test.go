package xmppload

import (
	"context"
	"os"
	"strconv"
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
