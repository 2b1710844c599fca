package actors_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xmppd/xmppd/protocol/caps"
	"github.com/xmppd/xmppd/protocol/pubsub"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/storage"
)

// pepBenchNode is a node real clients ask +notify for (XEP-0084 avatar metadata), so the notification takes the
// common path: contacts learnt from presence, their interest from verified XEP-0115 caps.
const pepBenchNode = "urn:xmpp:avatar:metadata"

// pepBenchDisco is the contacts' disco#info: what they answer the server's caps query with, and what their ver
// is computed from.
const pepBenchDisco = "<query xmlns='" + stanza.NSDiscoInf + "'>" +
	"<identity category='client' type='pc' name='bench'/>" +
	"<feature var='" + stanza.NSDiscoInf + "'/>" +
	"<feature var='" + caps.NS + "'/>" +
	"<feature var='" + pepBenchNode + pubsub.NotifySuffix + "'/>" +
	"</query>"

// pepContactsEnv makes the test binary the contacts' side of BenchmarkPEPFanout instead of running tests: its
// value is "addr contacts", the server's address and how many contacts log in.
const pepContactsEnv = "XMPPD_BENCH_PEP_CONTACTS"

// TestMain lets BenchmarkPEPFanout run its 100 contact clients in a child process (this binary, re-executed), so
// that the benchmark's own CPU time is the server's: in one process the clients' TLS and reading would be half
// the figure, and pinning them to threads of their own to measure them doubled the total.
func TestMain(m *testing.M) {
	if spec := os.Getenv(pepContactsEnv); spec != "" {
		os.Exit(pepContacts(spec))
	}
	if spec := os.Getenv(mucOccupantsEnv); spec != "" {
		os.Exit(mucOccupants(spec))
	}
	if spec := os.Getenv(floorReadersEnv); spec != "" {
		os.Exit(floorReaders(spec))
	}
	os.Exit(m.Run())
}

// BenchmarkPEPFanout: one PEP publish (XEP-0163) fanned out to 100 contacts, each with one available resource
// over TLS whose verified caps carry urn:xmpp:avatar:metadata+notify, mutual 'both' subscriptions. One op is one
// publish: the publisher sends it, and the op ends when its IQ result and all 100 notifications arrived (no
// pipelining: one publish fanned out is the case to measure; each is one SQLite commit with an fsync, which
// bounds the wall time more than the CPU).
//
// The contacts run in a child process (TestMain), the server and the publisher in this one: server-cpu-µs is
// this process's CPU (getrusage) per notification, the server's plus the publisher client's one IQ per 100
// notifications; contacts-cpu-µs is the child's (TLS and counting bytes), for comparison.
func BenchmarkPEPFanout(b *testing.B) {
	const contacts = 100
	users := []string{"pub"}
	for i := range contacts {
		users = append(users, fmt.Sprintf("c%d", i))
	}
	srv := startServerWith(b, users, func(ctx context.Context, st storage.Store) {
		for _, c := range users[1:] {
			if _, err := st.PutRosterItem(ctx, "pub@localhost", storage.RosterItem{JID: c + "@localhost", Subscription: "both"}); err != nil {
				b.Fatal(err)
			}
			if _, err := st.PutRosterItem(ctx, c+"@localhost", storage.RosterItem{JID: "pub@localhost", Subscription: "both"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	addr := srv.C2SAddrs()[0]

	child := startBenchChild(b, pepContactsEnv+"="+addr+" "+strconv.Itoa(contacts), "the contacts")

	pub, err := login(addr, "pub", "p")
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		pub.send("</stream:stream>")
		pub.conn.Close()
	}()
	publish := func(id string) error {
		err := pub.send("<iq type='set' id='" + id + "'><pubsub xmlns='" + pubsub.NS + "'><publish node='" + pepBenchNode + "'><item id='" + id + "'>" +
			"<metadata xmlns='" + pepBenchNode + "'><info bytes='12345' id='" + id + "' height='64' width='64' type='image/png'/></metadata>" +
			"</item></publish></pubsub></iq>")
		if err != nil {
			return err
		}
		se, inner, err := pub.until("iq")
		if err != nil {
			return err
		}
		for _, a := range se.Attr {
			if a.Name.Local == "type" && a.Value != "result" {
				return fmt.Errorf("publish %s: %s: %s", id, a.Value, inner)
			}
		}
		return nil
	}
	// Warm-up: the contacts' caps are verified and reach the publisher's PEP part asynchronously; publish until
	// one item reached every contact, then "sync", after which the contacts count raw bytes.
	start := time.Now()
	for k := 0; ; k++ {
		id := fmt.Sprintf("w%d", k)
		if err := publish(id); err != nil {
			b.Fatal(err)
		}
		if _, ok := child.expect("heard "+id, 200*time.Millisecond); ok {
			break
		}
		if time.Since(start) > 20*time.Second {
			b.Fatalf("warm-up: %s did not reach all %d contacts", id, contacts)
		}
	}
	if err := publish("sync"); err != nil {
		b.Fatal(err)
	}
	if _, ok := child.expect("synced", 10*time.Second); !ok {
		b.Fatal("sync did not reach every contact")
	}

	b.ReportAllocs()
	b.ResetTimer()
	cpu0, child0 := cpuTime(), child.cpu()
	got := 0
	for i := 0; i < b.N; i++ {
		if err := publish(fmt.Sprintf("i%d", i)); err != nil {
			b.Fatal(err)
		}
		want := contacts * (i + 1)
		for got < want {
			v, _ := child.expect("count ", 10*time.Second)
			if got, err = strconv.Atoi(v); err != nil {
				b.Fatalf("publish %d: fewer than %d notifications", i, want)
			}
		}
	}
	b.StopTimer()
	if got != contacts*b.N { // more: some contact was told twice
		b.Fatalf("%d notifications for %d publishes to %d contacts", got, b.N, contacts)
	}
	cpu, childUsed := cpuTime()-cpu0, child.cpu()-child0
	notes := float64(contacts * b.N)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/notes, "ns/notification")
	b.ReportMetric(float64(cpu.Nanoseconds())/1000/notes, "server-cpu-µs/notification")
	b.ReportMetric(float64(childUsed.Nanoseconds())/1000/notes, "contacts-cpu-µs/notification")
}

// pepContacts is the child process of BenchmarkPEPFanout: it logs in the contacts c0…c<n-1> with caps presence and
// tells the parent, one line each on stdout, "up" once all are logged in, "heard <id>" when an item reached every
// contact, "synced" when every contact heard "sync" and counts raw bytes from then on, and "count <total>" each
// time the notifications counted since reach a multiple of n (one publish delivered). A line "cpu" on stdin is
// answered with "cpu <ns>", this process's CPU time; at the end of stdin the contacts end their streams.
func pepContacts(spec string) int {
	addr, nstr, _ := strings.Cut(spec, " ")
	n, err := strconv.Atoi(nstr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad", pepContactsEnv, spec)
		return 2
	}
	var out sync.Mutex
	say := func(line string) {
		out.Lock()
		defer out.Unlock()
		_, _ = io.WriteString(os.Stdout, line+"\n")
	}
	presence := "<presence><c xmlns='" + caps.NS + "' hash='sha-1' node='https://xmppd.invalid/bench' ver='" + caps.ServerVer(pepBenchDisco) + "'/></presence>"

	var (
		mu        sync.Mutex
		seen      = map[string]int{}
		synced    int
		delivered atomic.Int64
		readers   sync.WaitGroup
		clients   []*rawClient
	)
	// heard counts that one more contact heard of the items ids; the last of them to do so tells the parent.
	heard := func(ids []string) {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			seen[id]++
			if seen[id] == n {
				say("heard " + id)
			}
			if id == "sync" {
				if synced++; synced == n {
					say("synced")
				}
			}
		}
	}
	count := func(k int) {
		total := delivered.Add(int64(k))
		if total/int64(n) > (total-int64(k))/int64(n) {
			say("count " + strconv.FormatInt(total, 10))
		}
	}
	for i := range n {
		c, err := loginWith(addr, fmt.Sprintf("c%d", i), "r", presence)
		if err != nil {
			fmt.Fprintln(os.Stderr, "contact login:", err)
			return 1
		}
		clients = append(clients, c)
		readers.Add(1)
		go func() {
			defer readers.Done()
			if pepContactSetup(c, heard) {
				pepContactCount(c, count)
			}
		}()
	}
	say("up")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "cpu" {
			say("cpu " + strconv.FormatInt(cpuTime().Nanoseconds(), 10))
		}
	}
	for _, c := range clients {
		c.send("</stream:stream>")
		c.conn.Close()
	}
	readers.Wait()
	return 0
}

// pepContactSetup reads a contact's stream until the "sync" notification: it answers the server's XEP-0115
// disco#info query (§6.3) with pepBenchDisco and reports the items of every notification to heard. False when
// the stream ended first.
func pepContactSetup(c *rawClient, heard func(ids []string)) bool {
	for {
		se, inner, err := c.next()
		if err != nil {
			return false
		}
		attr := func(name string) string {
			for _, a := range se.Attr {
				if a.Name.Local == name {
					return a.Value
				}
			}
			return ""
		}
		switch se.Name.Local {
		case "iq":
			if attr("type") == "get" && strings.Contains(inner, stanza.NSDiscoInf) {
				// The answer names the node it is about (node#ver), as §6.2 has it.
				var q struct {
					Node string `xml:"node,attr"`
				}
				_ = xml.Unmarshal([]byte(inner), &q)
				answer := strings.Replace(pepBenchDisco, "'>", "' node='"+q.Node+"'>", 1)
				if c.send("<iq type='result' to='"+attr("from")+"' id='"+attr("id")+"'>"+answer+"</iq>") != nil {
					return false
				}
			}
		case "message":
			var m struct {
				Items []struct {
					ID string `xml:"id,attr"`
				} `xml:"event>items>item"`
			}
			if xml.Unmarshal([]byte("<m>"+inner+"</m>"), &m) != nil {
				continue
			}
			var ids []string
			for _, it := range m.Items {
				ids = append(ids, it.ID)
			}
			heard(ids)
			if slices.Contains(ids, "sync") {
				return true
			}
		}
	}
}

// pepContactCount counts notifications in the raw bytes of a contact's stream until it ends: after "sync" the
// server sends the contacts nothing else, and decoding every notification with encoding/xml would cost the
// contacts more than the server spends on it.
func pepContactCount(c *rawClient, count func(int)) {
	tag := []byte(pubsub.NSEvent)
	buf := make([]byte, 64<<10)
	carry := 0 // bytes kept from the previous read: the namespace may straddle two reads
	for {
		k, err := c.r.Read(buf[carry:])
		if err != nil {
			return
		}
		end := carry + k
		if n := bytes.Count(buf[:end], tag); n > 0 {
			count(n)
		}
		carry = min(len(tag)-1, end)
		copy(buf, buf[end-carry:end])
	}
}
