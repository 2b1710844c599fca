package actors_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
)

// mucOccupantsEnv makes the test binary the occupants' side of BenchmarkMUCFanout: "addr n", the server's
// address and how many occupants enter.
const mucOccupantsEnv = "XMPPD_BENCH_MUC_OCCUPANTS"

const mucBenchRoom = "bench@conference.localhost"

// BenchmarkMUCFanout: groupchat messages (XEP-0045 §7.4) in a room of 100 occupants, each over TLS: the sender
// and 99 others. One op is one message, done when all 100 copies (99 and the sender's own reflection) arrived;
// window is how many messages the sender keeps in flight; the room archive is off but in the last sub-benchmark. The 99 run in a child process (as in BenchmarkPEPFanout), so
// server-cpu-µs/copy is this process's CPU per delivered copy: the server's, plus the sender client's one
// message and one reflection per 100 copies; occupants-cpu-µs/copy is the child's.
func BenchmarkMUCFanout(b *testing.B) {
	const others = 99
	users := []string{"sender"}
	for i := range others {
		users = append(users, fmt.Sprintf("o%d", i))
	}
	srv := startServerTuned(b, users, nil, func(c *config.Config) {
		c.MUC.MessagesPerSecond, c.MUC.MessageBurst = 1e9, 1<<30 // the limit is not what is measured
		c.MUC.Defaults.Archive = false                           // the fan-out alone first; "window=16,archive" turns the room archive on
	})
	addr := srv.C2SAddrs()[0]

	sender, err := login(addr, "sender", "s")
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		sender.send("</stream:stream>")
		sender.conn.Close()
	}()
	// The sender creates the room and accepts the defaults (§10.1.2) before the others enter.
	if err := sender.send("<presence to='" + mucBenchRoom + "/sender'><x xmlns='http://jabber.org/protocol/muc'/></presence>" +
		"<iq type='set' id='inst' to='" + mucBenchRoom + "'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>"); err != nil {
		b.Fatal(err)
	}
	if _, _, err := sender.until("iq"); err != nil {
		b.Fatal(err)
	}

	child := startBenchChild(b, mucOccupantsEnv+"="+addr+" "+strconv.Itoa(others), "the occupants")
	// The sender's stream from here on: count its reflections in the raw bytes.
	say := func(id, body string) error {
		return sender.send("<message to='" + mucBenchRoom + "' type='groupchat' id='" + id + "'><body>" + body + "</body></message>")
	}
	if err := say("sync", "sync"); err != nil {
		b.Fatal(err)
	}
	if _, ok := child.expect("synced", 20*time.Second); !ok {
		b.Fatal("sync did not reach every occupant")
	}
	for {
		se, inner, err := sender.next()
		if err != nil {
			b.Fatal(err)
		}
		if se.Name.Local == "message" && strings.Contains(inner, "<body>sync</body>") {
			break
		}
	}
	reflected := make(chan int, 1024)
	go func() {
		tag := []byte("<body>")
		buf := make([]byte, 64<<10)
		carry := 0
		for {
			k, err := sender.r.Read(buf[carry:])
			if err != nil {
				close(reflected)
				return
			}
			end := carry + k
			if n := bytes.Count(buf[:end], tag); n > 0 {
				reflected <- n
			}
			carry = min(len(tag)-1, end)
			copy(buf, buf[end-carry:end])
		}
	}()

	// Counters over every sub-benchmark: messages sent, reflections seen, copies the others counted.
	sent, own, got := 0, 0, 0
	run := func(b *testing.B, window int) {
		b.ReportAllocs()
		b.ResetTimer()
		cpu0, child0 := cpuTime(), child.cpu()
		base := sent
		for sent < base+b.N || own < sent {
			for sent < base+b.N && sent-own < window {
				if err := say(fmt.Sprintf("m%d", sent), "m"); err != nil {
					b.Fatal(err)
				}
				sent++
			}
			n, ok := <-reflected
			if !ok {
				b.Fatal("the sender's stream ended")
			}
			own += n
		}
		for got < others*sent {
			v, ok := child.expect("count ", 10*time.Second)
			if !ok {
				b.Fatalf("fewer than %d copies to the others", others*sent)
			}
			got, _ = strconv.Atoi(v)
		}
		b.StopTimer()
		if got != others*sent || own != sent {
			b.Fatalf("%d copies to the others and %d reflections for %d messages", got, own, sent)
		}
		cpu, childUsed := cpuTime()-cpu0, child.cpu()-child0
		copies := float64((others + 1) * b.N)
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/copies, "ns/copy")
		b.ReportMetric(float64(cpu.Nanoseconds())/1000/copies, "server-cpu-µs/copy")
		b.ReportMetric(float64(childUsed.Nanoseconds())/1000/copies, "occupants-cpu-µs/copy")
	}
	// window=1: one message fanned out at a time (each copy is a write of its own to its connection);
	// window=16: up to 16 messages in flight, as in a busy room, where a connection's writer coalesces copies.
	b.Run("window=1", func(b *testing.B) { run(b, 1) })
	b.Run("window=16", func(b *testing.B) { run(b, 16) })
	// The same with the room's XEP-0313 archive on (the owner's form; the room takes it before the messages that
	// follow it): one archive row per message, committed in groups (features/muc/part.go).
	if err := sender.send("<iq type='set' id='arch' to='" + mucBenchRoom + "'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>" +
		"<field var='muc#roomconfig_enablearchiving'><value>1</value></field></x></query></iq>"); err != nil {
		b.Fatal(err)
	}
	b.Run("window=16,archive", func(b *testing.B) { run(b, 16) })
}

// mucOccupants is the child process of BenchmarkMUCFanout: occupants o0…o<n-1> enter the room (no history), and
// it tells the parent "up" once all are in, "synced" once every occupant got the "sync" message (counting raw
// <body> tags from then on), and "count <total>" each time the copies counted reach a multiple of n. "cpu" on
// stdin is answered with "cpu <ns>".
func mucOccupants(spec string) int {
	addr, nstr, _ := strings.Cut(spec, " ")
	n, err := strconv.Atoi(nstr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bad", mucOccupantsEnv, spec)
		return 2
	}
	var out sync.Mutex
	say := func(line string) {
		out.Lock()
		defer out.Unlock()
		_, _ = io.WriteString(os.Stdout, line+"\n")
	}
	var (
		entered, synced atomic.Int64
		delivered       atomic.Int64
		readers         sync.WaitGroup
		clients         []*rawClient
	)
	count := func(k int) {
		total := delivered.Add(int64(k))
		if total/int64(n) > (total-int64(k))/int64(n) {
			say("count " + strconv.FormatInt(total, 10))
		}
	}
	for i := range n {
		nick := fmt.Sprintf("o%d", i)
		c, err := loginWith(addr, nick, "r", "<presence/><presence to='"+mucBenchRoom+"/"+nick+"'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>")
		if err != nil {
			fmt.Fprintln(os.Stderr, "occupant login:", err)
			return 1
		}
		clients = append(clients, c)
		readers.Add(1)
		go func() {
			defer readers.Done()
			in := false
			for {
				se, inner, err := c.next()
				if err != nil {
					return
				}
				if !in && se.Name.Local == "presence" && strings.Contains(inner, "code='110'") {
					in = true
					if entered.Add(1) == int64(n) {
						say("up")
					}
				}
				if se.Name.Local == "message" && strings.Contains(inner, "<body>sync</body>") {
					break
				}
			}
			if synced.Add(1) == int64(n) {
				say("synced")
			}
			tag := []byte("<body>")
			buf := make([]byte, 64<<10)
			carry := 0
			for {
				k, err := c.r.Read(buf[carry:])
				if err != nil {
					return
				}
				end := carry + k
				if m := bytes.Count(buf[:end], tag); m > 0 {
					count(m)
				}
				carry = min(len(tag)-1, end)
				copy(buf, buf[end-carry:end])
			}
		}()
	}
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
