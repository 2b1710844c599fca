package etcdtest

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newClient(t *testing.T, endpoint string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// TestStartStop: the server stores and returns a key, keeps its data in its own directory, and is gone
// (not healthy, the process exited) after Stop; a second Stop (the cleanup's) is harmless.
func TestStartStop(t *testing.T) {
	s := Start(t)
	if !Healthy(s.Endpoint) {
		t.Fatalf("%s is not healthy after Start", s.Endpoint)
	}
	cli := newClient(t, s.Endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "/xmppd/etcdtest", "value"); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, "/xmppd/etcdtest")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "value" {
		t.Fatalf("get /xmppd/etcdtest: %v", resp.Kvs)
	}
	entries, err := os.ReadDir(s.Dir)
	if err != nil || len(entries) < 2 { // the data directory and etcd.log
		t.Fatalf("%s: %v %v", s.Dir, entries, err)
	}

	s.Stop()
	select {
	case <-s.exited:
	default:
		t.Fatal("etcd still runs after Stop")
	}
	if Healthy(s.Endpoint) {
		t.Fatalf("%s still healthy after Stop", s.Endpoint)
	}
}

// TestTwoServers: two servers in one test are independent (their own ports and data).
func TestTwoServers(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Endpoint == b.Endpoint {
		t.Fatalf("both servers on %s", a.Endpoint)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := newClient(t, a.Endpoint).Put(ctx, "/only-in-a", "1"); err != nil {
		t.Fatal(err)
	}
	resp, err := newClient(t, b.Endpoint).Get(ctx, "/only-in-a")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 0 {
		t.Fatalf("b has a's key: %v", resp.Kvs)
	}
}

// TestProtoactorMembership is what xmppd's cluster does with the server: two protoactor-go members (the
// fork in third_party/protoactor-go, built with xmppd's module versions) register through the etcd provider,
// see each other, and the one that shuts down removes its key.
func TestProtoactorMembership(t *testing.T) {
	s := Start(t)
	const prefix = "/xmppd-etcdtest"
	start := func() *cluster.Cluster {
		p, err := etcd.NewWithConfig(prefix, clientv3.Config{Endpoints: []string{s.Endpoint}, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
			return slog.New(slog.DiscardHandler)
		}))
		c := cluster.New(sys, cluster.Configure("etcdtest", p, disthash.New(), remote.Configure("127.0.0.1", 0)))
		c.StartMember()
		return c
	}
	a := start()
	t.Cleanup(func() { a.Shutdown(true) })
	b := start()

	cli := newClient(t, s.Endpoint)
	keys := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := cli.Get(ctx, prefix+"/etcdtest/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		return int(resp.Count)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("not within 30s: %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("both members see two members", func() bool {
		return a.MemberList.Length() == 2 && b.MemberList.Length() == 2
	})
	if n := keys(); n != 2 {
		t.Fatalf("%d member keys under %s, want 2", n, prefix)
	}

	b.Shutdown(true)
	waitFor("one member key left after b's shutdown", func() bool { return keys() == 1 })
	waitFor("a sees one member", func() bool { return a.MemberList.Length() == 1 })
}
