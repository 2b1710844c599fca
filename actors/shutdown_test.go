package actors_test

import (
	"testing"
	"time"
)

// Shutdown must end every stream with <system-shutdown/> and return promptly once user actors have drained.
func TestShutdownWithSessions(t *testing.T) {
	srv := startServer(t)
	addr := srv.C2SAddrs()[0]
	a, err := login(addr, "alice", "a")
	if err != nil {
		t.Fatal(err)
	}
	defer a.conn.Close()
	b, err := login(addr, "bob", "b")
	if err != nil {
		t.Fatal(err)
	}
	defer b.conn.Close()
	a.send("<message to='bob@localhost' type='chat'><body>x</body></message>")
	if _, _, err := b.until("message"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	srv.Shutdown(5 * time.Second)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	if _, inner, err := a.until("error"); err != nil || inner == "" {
		t.Errorf("alice: no stream error: %v %q", err, inner)
	}
}
