package cluster

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

type GrainCallConfig struct {
	RetryCount  int
	Timeout     time.Duration
	RetryAction func(n int) int
	Context     actor.SenderContext
}

type GrainCallOption func(config *GrainCallConfig)

// DefaultGrainCallConfig returns a fresh default call configuration for cluster.
//
// xmppd patch: upstream cached the first call's configuration in a package variable, without
// synchronisation (a data race), bound to the first cluster's root context (so with two clusters in one
// process, RequestFuture on the second sent from the first one's actor system), and every call's options
// were applied to that shared value (so one call's timeout became every later call's).
func DefaultGrainCallConfig(cluster *Cluster) *GrainCallConfig {
	return NewGrainCallOptions(cluster)
}

func NewGrainCallOptions(cluster *Cluster) *GrainCallConfig {
	return &GrainCallConfig{
		// TODO: set default in config
		RetryCount: 3,
		Context:    cluster.ActorSystem.Root,
		Timeout:    cluster.Config.RequestTimeoutTime,
		RetryAction: func(i int) int {
			i++
			time.Sleep(time.Duration(i * i * 50))
			return i
		},
	}
}

func WithTimeout(timeout time.Duration) GrainCallOption {
	return func(config *GrainCallConfig) {
		config.Timeout = timeout
	}
}

func WithRetryCount(count int) GrainCallOption {
	return func(config *GrainCallConfig) {
		config.RetryCount = count
	}
}

func WithRetryAction(act func(i int) int) GrainCallOption {
	return func(config *GrainCallConfig) {
		config.RetryAction = act
	}
}

func WithContext(ctx actor.SenderContext) GrainCallOption {
	return func(config *GrainCallConfig) {
		config.Context = ctx
	}
}

type ClusterInit struct {
	Identity *ClusterIdentity
	Cluster  *Cluster
}
