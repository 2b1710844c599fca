package actors_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xmppd/xmppd/storage"
	"github.com/xmppd/xmppd/storage/sqlite"
)

// floorReadersEnv makes the test binary the reading side of BenchmarkFanoutFloor: "addr n tls|tcp".
const floorReadersEnv = "XMPPD_BENCH_FLOOR_READERS"

// floorCopy is about the size of one notification of BenchmarkPEPFanout as written (450 bytes).
var floorCopy = "<message from='pub@localhost' to='c0@localhost/r' type='headline' id='pep1'><event xmlns='http://jabber.org/protocol/pubsub#event'>" +
	"<items node='urn:xmpp:avatar:metadata'><item id='i0'><metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='12345' id='i0' height='64' width='64' type='image/png'/>" +
	"</metadata></item></items></event>" + strings.Repeat("<x/>", 40) + "</message>"

// BenchmarkFanoutFloor is what the fan-out benchmarks cannot go below on this machine: one op writes one copy
// (floorCopy) to each of 100 loopback connections, one Write each, as the server's writers do when each copy
// goes out alone (one PEP notification per contact, or a room with window=1), and ends when the readers (a child
// process, as in BenchmarkPEPFanout) have all of it. No actors, no XML: server-cpu-µs/copy is this process's CPU
// per copy for the write(2) and, over TLS, the record. "publish" is the storage side of one PEP publish alone
// (PublishPubSubItem on SQLite with synchronous=FULL: one transaction and its fsync), per publish and per
// notification of a 100-contact fan-out.
func BenchmarkFanoutFloor(b *testing.B) {
	const conns = 100
	for _, mode := range []string{"tcp", "tls"} {
		b.Run(mode, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			var cfg *tls.Config
			if mode == "tls" {
				cfg = floorTLS(b)
			}
			accepted := make(chan net.Conn, conns)
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					if cfg != nil {
						tc := tls.Server(c, cfg)
						if tc.Handshake() != nil {
							c.Close()
							continue
						}
						c = tc
					}
					accepted <- c
				}
			}()
			child := startBenchChild(b, floorReadersEnv+"="+ln.Addr().String()+" "+strconv.Itoa(conns)+" "+mode, "the readers")
			var cs []net.Conn
			for range conns {
				select {
				case c := <-accepted:
					cs = append(cs, c)
				case <-time.After(30 * time.Second):
					b.Fatal("the readers did not connect")
				}
			}
			defer func() {
				for _, c := range cs {
					c.Close()
				}
			}()
			msg := []byte(floorCopy)
			round := func(i int) {
				for _, c := range cs {
					if _, err := c.Write(msg); err != nil {
						b.Fatal(err)
					}
				}
				if _, ok := child.expect("got "+strconv.Itoa(i), 10*time.Second); !ok {
					b.Fatalf("round %d did not reach every reader", i)
				}
			}
			round(0) // warm-up
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := 1; i <= b.N; i++ {
				round(i)
			}
			b.StopTimer()
			copies := float64(conns * b.N)
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/1000/copies, "server-cpu-µs/copy")
		})
	}
	b.Run("publish", func(b *testing.B) {
		db, err := sqlite.Open(filepath.Join(b.TempDir(), "xmppd.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		ctx := context.Background()
		if err := db.CreateAccount(ctx, "pub@localhost", nil); err != nil {
			b.Fatal(err)
		}
		if err := db.PutPubSubNode(ctx, "pub@localhost", storage.PubSubNode{Node: "urn:xmpp:avatar:metadata", Created: time.Now()}); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		cpu0 := cpuTime()
		for i := range b.N {
			it := storage.PubSubItem{ID: "i" + strconv.Itoa(i), Publisher: "pub@localhost", Published: time.Now(),
				Payload: "<metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='12345' id='i' height='64' width='64' type='image/png'/></metadata>"}
			if err := db.PublishPubSubItem(ctx, "pub@localhost", "urn:xmpp:avatar:metadata", it, 1); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		cpu := float64((cpuTime() - cpu0).Nanoseconds()) / 1000 / float64(b.N)
		b.ReportMetric(cpu, "cpu-µs/publish")
		b.ReportMetric(cpu/100, "cpu-µs/notification-of-100")
	})
}

// floorTLS is a TLS configuration with a fresh self-signed ECDSA P-256 certificate (the server's kind).
func floorTLS(b *testing.B) *tls.Config {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// floorReaders is the child process of BenchmarkFanoutFloor: n connections that read and count; "got <i>" when
// every connection has had i+1 copies. "cpu" on stdin is not needed here; the end of stdin ends it.
func floorReaders(spec string) int {
	f := strings.Fields(spec)
	if len(f) != 3 {
		fmt.Fprintln(os.Stderr, "bad", floorReadersEnv, spec)
		return 2
	}
	n, _ := strconv.Atoi(f[1])
	var (
		mu     sync.Mutex
		rounds = map[int64]int{}
		out    sync.Mutex
	)
	say := func(line string) {
		out.Lock()
		defer out.Unlock()
		_, _ = io.WriteString(os.Stdout, line+"\n")
	}
	var conns []net.Conn
	for range n {
		c, err := net.Dial("tcp", f[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, "floor reader:", err)
			return 1
		}
		if f[2] == "tls" {
			tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true}) // loopback, a throwaway certificate
			if err := tc.Handshake(); err != nil {
				fmt.Fprintln(os.Stderr, "floor reader:", err)
				return 1
			}
			c = tc
		}
		conns = append(conns, c)
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var total atomic.Int64
			buf := make([]byte, 64<<10)
			size := int64(len(floorCopy))
			for {
				k, err := c.Read(buf)
				if err != nil {
					return
				}
				before := total.Load() / size
				after := total.Add(int64(k)) / size
				for r := before; r < after; r++ {
					mu.Lock()
					rounds[r]++
					done := rounds[r] == n
					if done {
						delete(rounds, r)
					}
					mu.Unlock()
					if done {
						say("got " + strconv.FormatInt(r, 10))
					}
				}
			}
		}()
	}
	say("up")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	return 0
}
