package config

import (
	"fmt"
	"net"
	"strconv"
)

// ClusterConfig makes this node one of several serving the same domains (actors/cluster.go): protoactor-go's
// cluster finds the members through the membership provider, the actor remote (gRPC) carries stanzas between
// them, and every node shares one PostgreSQL database. Without it the server is one node on its own storage.
type ClusterConfig struct {
	Enabled bool `toml:"enabled"`
	// Name is the cluster's name: only nodes with the same name see each other.
	Name string `toml:"name"`
	// Bind is the host:port the actor remote listens on (port 0: any free one); Advertise what the other nodes
	// dial (default: the address bound).
	Bind      string `toml:"bind"`
	Advertise string `toml:"advertise"`
	// Provider is the membership provider: "etcd" or "automanaged" (no extra server: the nodes poll each other's
	// health port, listed in AutomanagedPeers).
	Provider         string   `toml:"provider"`
	EtcdEndpoints    []string `toml:"etcd_endpoints"`
	EtcdPrefix       string   `toml:"etcd_prefix"`
	AutomanagedPort  int      `toml:"automanaged_port"`
	AutomanagedPeers []string `toml:"automanaged_peers"`
}

func defaultCluster() ClusterConfig {
	return ClusterConfig{Name: "xmppd", Bind: "127.0.0.1:7946", Provider: "etcd",
		EtcdEndpoints: []string{"127.0.0.1:2379"}, EtcdPrefix: "/xmppd", AutomanagedPort: 6330,
		AutomanagedPeers: []string{}}
}

// AdvertisedAddr is the address the other nodes reach this one at, as configured (the bound address once the
// remote listens: actors/cluster.go).
func (c *ClusterConfig) AdvertisedAddr() string {
	if c.Advertise != "" {
		return c.Advertise
	}
	return c.Bind
}

func (c *Config) validateCluster() error {
	cl := &c.Cluster
	if !cl.Enabled {
		return nil
	}
	if c.Storage.Driver != "postgres" {
		// The nodes hand users between them: every node must read what another wrote.
		return fmt.Errorf("config: cluster.enabled needs storage.driver = \"postgres\" (the nodes share one database)")
	}
	if cl.Name == "" {
		return fmt.Errorf("config: cluster.name must not be empty")
	}
	// bind may name port 0 (any free port: the membership provider publishes the one chosen); what is
	// advertised, when given, is dialled as it is.
	for key, addr := range map[string]string{"bind": cl.Bind, "advertise": cl.Advertise} {
		if addr == "" && key == "advertise" {
			continue
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host == "" {
			return fmt.Errorf("config: cluster.%s %q must be host:port", key, addr)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 || p == 0 && key == "advertise" {
			return fmt.Errorf("config: cluster.%s %q: the port must be 1-65535 (the other nodes dial it)", key, addr)
		}
	}
	if ip := net.ParseIP(mustHost(cl.AdvertisedAddr())); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("config: cluster.advertise must be an address the other nodes can dial, not %s", ip)
	}
	switch cl.Provider {
	case "etcd":
		if len(cl.EtcdEndpoints) == 0 {
			return fmt.Errorf("config: cluster.etcd_endpoints must list at least one etcd server")
		}
		if cl.EtcdPrefix == "" {
			return fmt.Errorf("config: cluster.etcd_prefix must not be empty")
		}
	case "automanaged":
		if cl.AutomanagedPort <= 0 || cl.AutomanagedPort > 65535 {
			return fmt.Errorf("config: cluster.automanaged_port must be 1-65535")
		}
	default:
		return fmt.Errorf("config: cluster.provider %q is not supported (etcd, automanaged)", cl.Provider)
	}
	return nil
}

func mustHost(hostport string) string {
	h, _, _ := net.SplitHostPort(hostport)
	return h
}
