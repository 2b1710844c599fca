package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	clientv3 "go.etcd.io/etcd/client/v3"
)

type Provider struct {
	leaseID      clientv3.LeaseID
	cluster      *cluster.Cluster
	baseKey      string
	clusterName  string
	deregistered bool
	// shutdown is set by Shutdown and read by the keep-alive and watch goroutines. xmppd patch: an atomic
	// (a plain bool upstream, a data race).
	shutdown atomic.Bool
	// renewed is when etcd last confirmed this member's lease (unix nanoseconds; 0 before the first). xmppd
	// patch: a member cut off from etcd cannot tell otherwise that the others have dropped it (LeaseRenewed).
	renewed atomic.Int64
	// ctx is the parent of every etcd call the provider makes; Shutdown cancels it, so no goroutine of the
	// provider stays blocked in a call to an etcd that is gone. xmppd patch: upstream used context.TODO().
	ctx     context.Context
	cancel  context.CancelFunc
	self    *Node
	members map[string]*Node // all, contains self.
	// clusterError is written by the watch goroutine and read by GetHealthStatus. xmppd patch: guarded by
	// errMu (unguarded upstream).
	errMu         sync.Mutex
	clusterError  error
	client        *clientv3.Client
	cancelWatch   func()
	cancelWatchCh chan bool
	keepAliveTTL  time.Duration
	retryInterval time.Duration
	revision      uint64
	// deregisterCritical time.Duration
}

func New() (*Provider, error) {
	return NewWithConfig("/protoactor", clientv3.Config{
		Endpoints:   []string{"127.0.0.1:2379"},
		DialTimeout: time.Second * 5,
	})
}

func NewWithConfig(baseKey string, cfg clientv3.Config) (*Provider, error) {
	client, err := clientv3.New(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Provider{
		ctx:           ctx,
		cancel:        cancel,
		client:        client,
		keepAliveTTL:  3 * time.Second,
		retryInterval: 1 * time.Second,
		baseKey:       baseKey,
		members:       map[string]*Node{},
		cancelWatchCh: make(chan bool),
	}
	return p, nil
}

func (p *Provider) init(c *cluster.Cluster) error {
	p.cluster = c
	addr := p.cluster.ActorSystem.Address()
	host, port, err := splitHostPort(addr)
	if err != nil {
		return err
	}

	p.cluster = c
	p.clusterName = p.cluster.Config.Name
	memberID := p.cluster.ActorSystem.ID
	knownKinds := c.GetClusterKinds()
	nodeName := fmt.Sprintf("%v@%v", p.clusterName, memberID)
	p.self = NewNode(nodeName, host, port, knownKinds)
	p.self.SetMeta("id", p.getID())
	return nil
}

func (p *Provider) StartMember(c *cluster.Cluster) error {
	if err := p.init(c); err != nil {
		return err
	}

	// fetch memberlist
	nodes, err := p.fetchNodes()
	if err != nil {
		return err
	}
	// initialize members
	p.updateNodesWithSelf(nodes)
	p.publishClusterTopologyEvent()
	p.startWatching()

	// register self
	if err := p.registerService(); err != nil {
		return err
	}
	p.startKeepAlive(p.ctx)
	return nil
}

func (p *Provider) StartClient(c *cluster.Cluster) error {
	if err := p.init(c); err != nil {
		return err
	}
	nodes, err := p.fetchNodes()
	if err != nil {
		return err
	}
	// initialize members
	p.updateNodes(nodes)
	p.publishClusterTopologyEvent()
	p.startWatching()
	return nil
}

// Shutdown removes this member from etcd and stops the provider's goroutines and its etcd client.
//
// xmppd patch: bounded. Upstream deleted the member's key with context.TODO(), so Shutdown (and with it
// cluster.Shutdown) blocked forever when etcd was unreachable; it never revoked the lease nor stopped the
// keep-alive goroutine nor closed the client. Now the delete and the lease revocation share one deadline
// of keepAliveTTL: beyond it the lease (and the key bound to it) expires in etcd on its own anyway. Then
// every call still in flight is cancelled and the client is closed. The error of the delete, if any, is
// returned after that cleanup.
func (p *Provider) Shutdown(graceful bool) error {
	p.shutdown.Store(true)
	var err error
	if !p.deregistered {
		ctx, cancel := context.WithTimeout(p.ctx, p.keepAliveTTL)
		err = p.deregisterService(ctx)
		if err != nil {
			p.cluster.Logger().Error("deregisterMember", slog.Any("error", err))
		} else {
			p.deregistered = true
		}
		if leaseID := p.getLeaseID(); leaseID > 0 {
			if _, rerr := p.client.Revoke(ctx, leaseID); rerr != nil {
				p.cluster.Logger().Warn("revoke lease", slog.Any("error", rerr))
			}
		}
		cancel()
	}
	if p.cancelWatch != nil {
		p.cancelWatch()
		p.cancelWatch = nil
	}
	p.cancel()
	if cerr := p.client.Close(); cerr != nil && !errors.Is(cerr, context.Canceled) {
		p.cluster.Logger().Warn("close etcd client", slog.Any("error", cerr))
	}
	return err
}

func (p *Provider) keepAliveForever(ctx context.Context) error {
	if p.self == nil {
		return fmt.Errorf("keepalive must be after initialize")
	}

	data, err := p.self.Serialize()
	if err != nil {
		return err
	}
	fullKey := p.getEtcdKey()

	var leaseId clientv3.LeaseID
	leaseId, err = p.newLeaseID(ctx)
	if err != nil {
		return err
	}
	p.setLeaseID(leaseId)

	if leaseId <= 0 {
		return fmt.Errorf("grant lease failed. leaseId=%d", leaseId)
	}
	_, err = p.put(ctx, fullKey, string(data), leaseId)
	if err != nil {
		return err
	}
	kaRespCh, err := p.client.KeepAlive(ctx, leaseId)
	if err != nil {
		return err
	}

	p.renewed.Store(time.Now().UnixNano())
	for resp := range kaRespCh {
		if resp == nil {
			return fmt.Errorf("keep alive failed. resp=%s", resp.String())
		}
		p.renewed.Store(time.Now().UnixNano())
		// plog.Infof("keep alive %s ttl=%d", p.getID(), resp.TTL)
		if p.shutdown.Load() {
			return nil
		}
	}
	return nil
}

func (p *Provider) startKeepAlive(ctx context.Context) {
	go func() {
		for !p.shutdown.Load() {
			if err := ctx.Err(); err != nil {
				p.cluster.Logger().Info("Keepalive was stopped.", slog.Any("error", err))
				return
			}

			if err := p.keepAliveForever(ctx); err != nil {
				p.cluster.Logger().Info("Failure refreshing service TTL. ReTrying...", slog.Duration("after", p.retryInterval), slog.Any("error", err))
			}
			time.Sleep(p.retryInterval)
		}
	}()
}

func (p *Provider) getID() string {
	return p.self.ID
}

func (p *Provider) getEtcdKey() string {
	return p.buildKey(p.clusterName, p.getID())
}

func (p *Provider) registerService() error {
	data, err := p.self.Serialize()
	if err != nil {
		return err
	}
	fullKey := p.getEtcdKey()
	if err != nil {
		return err
	}
	leaseId := p.getLeaseID()
	if leaseId <= 0 {
		_leaseId, err := p.newLeaseID(p.ctx)
		if err != nil {
			return err
		}
		leaseId = _leaseId
		p.setLeaseID(leaseId)
	}
	_, err = p.put(p.ctx, fullKey, string(data), leaseId)
	if err != nil {
		return err
	}
	return nil
}

// put writes key bound to the lease, within keepAliveTTL (xmppd patch: upstream waited forever for an
// etcd that is gone; beyond the TTL the lease is of no use anyway).
func (p *Provider) put(ctx context.Context, key, val string, leaseID clientv3.LeaseID) (*clientv3.PutResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, p.keepAliveTTL)
	defer cancel()
	return p.client.Put(ctx, key, val, clientv3.WithLease(leaseID))
}

func (p *Provider) deregisterService(ctx context.Context) error {
	fullKey := p.getEtcdKey()
	_, err := p.client.Delete(ctx, fullKey)
	return err
}

func (p *Provider) handleWatchResponse(resp clientv3.WatchResponse) map[string]*Node {
	changes := map[string]*Node{}
	for _, ev := range resp.Events {
		key := string(ev.Kv.Key)
		nodeId, err := getNodeID(key, "/")
		if err != nil {
			p.cluster.Logger().Error("Invalid member.", slog.String("key", key))
			continue
		}

		switch ev.Type {
		case clientv3.EventTypePut:
			node, err := NewNodeFromBytes(ev.Kv.Value)
			if err != nil {
				p.cluster.Logger().Error("Invalid member.", slog.String("key", key))
				continue
			}
			if p.self.Equal(node) {
				p.cluster.Logger().Debug("Skip self.", slog.String("key", key))
				continue
			}
			if _, ok := p.members[nodeId]; ok {
				p.cluster.Logger().Debug("Update member.", slog.String("key", key))
			} else {
				p.cluster.Logger().Debug("New member.", slog.String("key", key))
			}
			changes[nodeId] = node
		case clientv3.EventTypeDelete:
			node, ok := p.members[nodeId]
			if !ok {
				continue
			}
			p.cluster.Logger().Debug("Delete member.", slog.String("key", key))
			cloned := *node
			cloned.SetAlive(false)
			changes[nodeId] = &cloned
		default:
			p.cluster.Logger().Error("Invalid etcd event.type.", slog.String("key", key),
				slog.String("type", ev.Type.String()))
		}
	}
	p.revision = uint64(resp.Header.GetRevision())
	return changes
}

func (p *Provider) keepWatching(ctx context.Context) error {
	clusterKey := p.buildKey(p.clusterName)
	stream := p.client.Watch(ctx, clusterKey, clientv3.WithPrefix())
	return p._keepWatching(stream)
}

func (p *Provider) _keepWatching(stream clientv3.WatchChan) error {
	for resp := range stream {
		if err := resp.Err(); err != nil {
			p.cluster.Logger().Error("Failure watching service.")
			return err
		}
		if len(resp.Events) <= 0 {
			p.cluster.Logger().Error("Empty etcd.events.", slog.Int("events", len(resp.Events)))
			continue
		}
		nodesChanges := p.handleWatchResponse(resp)
		p.updateNodesWithChanges(nodesChanges)
		p.publishClusterTopologyEvent()
	}
	return nil
}

func (p *Provider) startWatching() {
	ctx, cancel := context.WithCancel(p.ctx)
	p.cancelWatch = cancel
	go func() {
		for !p.shutdown.Load() && ctx.Err() == nil {
			if err := p.keepWatching(ctx); err != nil {
				if p.shutdown.Load() || ctx.Err() != nil {
					return
				}
				p.cluster.Logger().Error("Failed to keepWatching.", slog.Any("error", err))
				p.errMu.Lock()
				p.clusterError = err
				p.errMu.Unlock()
				// xmppd patch: upstream retried at once, a busy loop while the error lasts.
				select {
				case <-ctx.Done():
				case <-time.After(p.retryInterval):
				}
			}
		}
	}()
}

// GetHealthStatus returns an error if the cluster health status has problems
// LeaseRenewed is when etcd last renewed this member's lease (zero before the first time), and the lease's TTL:
// once TTL has passed since, etcd has expired the key and the other members have dropped this one. xmppd patch.
func (p *Provider) LeaseRenewed() (time.Time, time.Duration) {
	n := p.renewed.Load()
	if n == 0 {
		return time.Time{}, p.keepAliveTTL
	}
	return time.Unix(0, n), p.keepAliveTTL
}

func (p *Provider) GetHealthStatus() error {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	return p.clusterError
}

func newContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.TODO(), timeout)
}

func (p *Provider) buildKey(names ...string) string {
	return strings.Join(append([]string{p.baseKey}, names...), "/")
}

func (p *Provider) fetchNodes() ([]*Node, error) {
	key := p.buildKey(p.clusterName)
	ctx, cancel := context.WithTimeout(p.ctx, p.keepAliveTTL) // xmppd patch: was context.TODO()
	defer cancel()
	resp, err := p.client.Get(ctx, key, clientv3.WithPrefix())
	if err != nil {
		return nil, err
	}
	var nodes []*Node
	for _, v := range resp.Kvs {
		n := Node{}
		if err := n.Deserialize(v.Value); err != nil {
			return nil, err
		}
		nodes = append(nodes, &n)
	}
	p.revision = uint64(resp.Header.GetRevision())
	// plog.Debug("fetch nodes",
	// 	log.Uint64("raft term", resp.Header.GetRaftTerm()),
	// 	log.Int64("revision", resp.Header.GetRevision()))
	return nodes, nil
}

func (p *Provider) updateNodes(members []*Node) {
	for _, n := range members {
		p.members[n.ID] = n
	}
}

func (p *Provider) updateNodesWithSelf(members []*Node) {
	p.updateNodes(members)
	p.members[p.self.ID] = p.self
}

func (p *Provider) updateNodesWithChanges(changes map[string]*Node) {
	for memberId, member := range changes {
		p.members[memberId] = member
		if !member.IsAlive() {
			delete(p.members, memberId)
		}
	}
}

func (p *Provider) createClusterTopologyEvent() []*cluster.Member {
	res := make([]*cluster.Member, len(p.members))
	i := 0
	for _, m := range p.members {
		res[i] = m.MemberStatus()
		i++
	}
	return res
}

func (p *Provider) publishClusterTopologyEvent() {
	res := p.createClusterTopologyEvent()
	p.cluster.Logger().Info("Update cluster.", slog.Int("members", len(res)))
	// for _, m := range res {
	// 	plog.Info("\t", log.Object("member", m))
	// }
	p.cluster.MemberList.UpdateClusterTopology(res)
	// p.cluster.ActorSystem.EventStream.Publish(res)
}

func (p *Provider) getLeaseID() clientv3.LeaseID {
	return (clientv3.LeaseID)(atomic.LoadInt64((*int64)(&p.leaseID)))
}

func (p *Provider) setLeaseID(leaseID clientv3.LeaseID) {
	atomic.StoreInt64((*int64)(&p.leaseID), (int64)(leaseID))
}

func (p *Provider) newLeaseID(ctx context.Context) (clientv3.LeaseID, error) {
	ttlSecs := int64(p.keepAliveTTL / time.Second)
	ctx, cancel := context.WithTimeout(ctx, p.keepAliveTTL) // xmppd patch: was context.TODO()
	defer cancel()
	resp, err := p.client.Grant(ctx, ttlSecs)
	if err != nil {
		return 0, err
	}
	return resp.ID, nil
}

func splitHostPort(addr string) (host string, port int, err error) {
	if h, p, e := net.SplitHostPort(addr); e != nil {
		if addr != "nonhost" {
			err = e
		}
		host = "nonhost"
		port = -1
	} else {
		host = h
		port, err = strconv.Atoi(p)
	}
	return
}
