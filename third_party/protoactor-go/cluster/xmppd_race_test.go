// xmppd patch (see XMPPD-PATCHES.md): clusters of real members in one process, on 127.0.0.1 only, for
// `go test -race`. Each test forms a cluster with one membership provider and the disthash identity lookup,
// activates grains spread over the members, has a third member join and then leave, and checks that every
// identity is still served by the members that are left. The race detector is the main assertion; the
// checks make sure the paths that raced (topology updates, block lists, member lists, grain calls) ran.

package cluster_test

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/automanaged"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
)

const (
	raceClusterName = "xmppd-race"
	grainKind       = "echo"
	grainCount      = 30 // with rendezvous hashing over 3 members, P(a member gets none) ≈ 3·(2/3)^30 ≈ 2e-5
	waitLong        = 60 * time.Second
)

// member is one actor system with its cluster, logging into the test's log file.
type member struct {
	sys  *actor.ActorSystem
	c    *cluster.Cluster
	once sync.Once
}

// shutdown shuts the member down gracefully, once; the test's cleanup calls it for members still up.
func (m *member) shutdown() { m.once.Do(func() { m.c.Shutdown(true) }) }

// newLogFile returns a log file for the members of one test; its tail is printed when the test fails. The
// library logs from its own goroutines, which may outlive the test, so t.Log cannot be the sink.
func newLogFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "members.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("XMPPD_RACE_LOG") != "" {
			b, _ := os.ReadFile(f.Name())
			lines := strings.Split(string(b), "\n")
			if len(lines) > 80 && os.Getenv("XMPPD_RACE_LOG") == "" {
				lines = lines[len(lines)-80:]
			}
			t.Logf("members' log (tail):\n%s", strings.Join(lines, "\n"))
		}
		_ = f.Close()
	})
	return f
}

func startMember(t *testing.T, logf *os.File, provider cluster.ClusterProvider, opts ...remote.ConfigOption) *member {
	t.Helper()
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(s *actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelInfo})).With("system", s.ID)
	}))
	kind := cluster.NewKind(grainKind, actor.PropsFromFunc(func(ctx actor.Context) {
		if m, ok := ctx.Message().(*wrapperspb.StringValue); ok {
			// The reply names the member that hosts the grain, so the test sees the placement.
			ctx.Respond(wrapperspb.String(ctx.ActorSystem().Address() + " " + m.Value))
		}
	}))
	cfg := cluster.Configure(raceClusterName, provider, disthash.New(),
		remote.Configure("127.0.0.1", 0, opts...), cluster.WithKinds(kind),
		cluster.WithRequestTimeout(5*time.Second))
	c := cluster.New(sys, cfg)
	c.StartMember()
	m := &member{sys: sys, c: c}
	t.Cleanup(m.shutdown)
	return m
}

func (m *member) addr() string { return m.sys.Address() }

// waitMembers waits until every member in ms sees exactly the members in ms.
func waitMembers(t *testing.T, ms ...*member) {
	t.Helper()
	want := make([]string, 0, len(ms))
	for _, m := range ms {
		want = append(want, m.addr())
	}
	sort.Strings(want)
	deadline := time.Now().Add(waitLong)
	for {
		ok := true
		var seen []string
		for _, m := range ms {
			var got []string
			for _, mem := range m.c.MemberList.Members().Members() {
				got = append(got, mem.Address())
			}
			sort.Strings(got)
			seen = append(seen, fmt.Sprintf("%s sees %v", m.addr(), got))
			if strings.Join(got, ",") != strings.Join(want, ",") || m.c.MemberList.Length() != len(ms) {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("members did not converge on %v within %v: %v", want, waitLong, seen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// callAll asks every grain through every member in from, concurrently (Request and RequestFuture), until
// each call is answered, and returns the set of member addresses that hosted a grain. A call may fail while
// a topology change settles; it is retried until waitLong has passed.
func callAll(t *testing.T, from ...*member) map[string]bool {
	t.Helper()
	var mu sync.Mutex
	hosts := map[string]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, len(from)*grainCount)
	for _, m := range from {
		for i := 0; i < grainCount; i++ {
			wg.Add(1)
			go func(m *member, id string, useFuture bool) {
				defer wg.Done()
				deadline := time.Now().Add(waitLong)
				var lastErr error
				for time.Now().Before(deadline) {
					var res interface{}
					var err error
					if useFuture {
						var f *actor.Future
						if f, err = m.c.RequestFuture(id, grainKind, wrapperspb.String(id)); err == nil {
							res, err = f.Result()
						}
					} else {
						res, err = m.c.Request(id, grainKind, wrapperspb.String(id))
					}
					if sv, ok := res.(*wrapperspb.StringValue); ok && err == nil {
						host, rest, _ := strings.Cut(sv.Value, " ")
						if rest != id {
							errs <- fmt.Errorf("%s: grain %s answered %q", m.addr(), id, sv.Value)
							return
						}
						mu.Lock()
						hosts[host] = true
						mu.Unlock()
						return
					}
					lastErr = fmt.Errorf("res=%v err=%v", res, err)
					time.Sleep(50 * time.Millisecond)
				}
				errs <- fmt.Errorf("%s: grain %s not answered within %v: %v", m.addr(), id, waitLong, lastErr)
			}(m, fmt.Sprintf("user-%d@example.net", i), i%2 == 1)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	return hosts
}

func requireHosts(t *testing.T, got map[string]bool, ms ...*member) {
	t.Helper()
	want := map[string]bool{}
	for _, m := range ms {
		want[m.addr()] = true
	}
	for h := range got {
		if !want[h] {
			t.Errorf("a grain was hosted on %s, which is not a live member (%v)", h, want)
		}
	}
	for h := range want {
		if !got[h] {
			t.Errorf("no grain was placed on member %s (hosts %v)", h, got)
		}
	}
}

// exercise runs the scenario: a, b form the cluster, grains spread over both; c joins, grains spread over
// the three; c leaves gracefully, the grains it hosted re-activate on a and b.
func exercise(t *testing.T, start func() *member) {
	a, b := start(), start()
	waitMembers(t, a, b)
	requireHosts(t, callAll(t, a, b), a, b)

	c := start()
	waitMembers(t, a, b, c)
	requireHosts(t, callAll(t, a, b, c), a, b, c)

	c.shutdown()
	waitMembers(t, a, b)
	requireHosts(t, callAll(t, a, b), a, b)
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestXmppdRaceAutomanaged(t *testing.T) {
	logf := newLogFile(t)
	var ports []int
	var hosts []string
	for i := 0; i < 3; i++ {
		p := freeTCPPort(t)
		ports = append(ports, p)
		hosts = append(hosts, fmt.Sprintf("127.0.0.1:%d", p))
	}
	n := 0
	exercise(t, func() *member {
		p := automanaged.NewWithConfig(200*time.Millisecond, ports[n], hosts...)
		n++
		return startMember(t, logf, p)
	})
}

func TestXmppdRaceEtcd(t *testing.T) {
	endpoint := startEtcd(t)
	logf := newLogFile(t)
	exercise(t, func() *member {
		p, err := etcd.NewWithConfig("/xmppd-race", clientv3.Config{
			Endpoints:   []string{endpoint},
			DialTimeout: 5 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		return startMember(t, logf, p)
	})
}

// TestXmppdShutdownWithoutEtcd: cluster.Shutdown(true) of members whose etcd has stopped returns (upstream
// it blocked forever in the provider's deregistration, a gRPC call without a deadline). The bound checked is
// generous, for a loaded machine; the patched provider gives up on etcd after its lease TTL (3s), and
// cluster.Shutdown itself waits 2s for ownership transfers.
func TestXmppdShutdownWithoutEtcd(t *testing.T) {
	srv := startEtcdServer(t)
	logf := newLogFile(t)
	start := func() *member {
		p, err := etcd.NewWithConfig("/xmppd-shutdown", clientv3.Config{
			Endpoints:   []string{srv.Endpoint},
			DialTimeout: 5 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		return startMember(t, logf, p)
	}
	a, b := start(), start()
	waitMembers(t, a, b)
	requireHosts(t, callAll(t, a, b), a, b)

	srv.Stop()

	const bound = 30 * time.Second
	for _, m := range []*member{a, b} {
		began := time.Now()
		done := make(chan struct{})
		go func() { m.shutdown(); close(done) }()
		select {
		case <-done:
			t.Logf("%s: Shutdown(true) without etcd returned after %v", m.addr(), time.Since(began).Round(time.Millisecond))
		case <-time.After(bound):
			t.Fatalf("%s: Shutdown(true) without etcd had not returned after %v", m.addr(), bound)
		}
	}
}
