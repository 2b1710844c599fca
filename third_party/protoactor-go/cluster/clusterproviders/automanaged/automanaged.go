package automanaged

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/context"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/labstack/echo"
	"golang.org/x/sync/errgroup"
)

type AutoManagedProvider struct {
	// xmppd patch: the mutexes belong to the provider instance. Upstream they were package globals, so
	// every provider in a process (the members of an in-process test cluster) contended for them, and
	// monitorStatuses held one across its poll and its sleep.
	clusterTTLErrorMutex       sync.Mutex
	clusterMonitorErrorMutex   sync.Mutex
	shutdownMutex              sync.Mutex
	deregisteredMutex          sync.Mutex
	activeProviderMutex        sync.Mutex // guards activeProvider
	activeProviderRunningMutex sync.Mutex
	bindHost                   string // the health listener's host: the remote's bind host
	deregistered               bool
	shutdown                   bool
	activeProvider             *echo.Echo
	activeProviderRunning      bool
	activeProviderTesting      bool
	httpClient                 *http.Client
	monitoringStatus           bool
	clusterName                string
	address                    string
	autoManagePort             int
	memberPort                 int
	knownKinds                 []string
	knownNodes                 []*NodeModel
	hosts                      []string
	refreshTTL                 time.Duration
	clusterTTLError            error
	clusterMonitorError        error
	cluster                    *cluster.Cluster
}

// New creates a AutoManagedProvider that connects locally
func New() *AutoManagedProvider {
	return NewWithConfig(
		2*time.Second,
		6330,
		"localhost:6330",
	)
}

// NewWithConfig creates an Automanaged Provider that connects to an all the hosts
func NewWithConfig(refreshTTL time.Duration, autoManPort int, hosts ...string) *AutoManagedProvider {
	transport := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 5 * time.Second,
		}).DialContext,
		MaxIdleConns:          10,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
		MaxConnsPerHost:       10,
	}

	httpClient := &http.Client{
		Transport: transport,
		Timeout:   2 * time.Second,
	}

	p := &AutoManagedProvider{
		hosts:                 hosts,
		httpClient:            httpClient,
		refreshTTL:            refreshTTL,
		autoManagePort:        autoManPort,
		activeProviderRunning: false,
		monitoringStatus:      false,
	}

	return p
}

// NewWithTesting creates a testable provider
func NewWithTesting(refreshTTL time.Duration, autoManPort int, activeProvider *echo.Echo, hosts ...string) *AutoManagedProvider {
	p := NewWithConfig(refreshTTL, autoManPort, hosts...)
	p.activeProviderTesting = true
	p.activeProvider = activeProvider
	return p
}

func (p *AutoManagedProvider) init(cluster *cluster.Cluster) error {
	host, port, err := cluster.ActorSystem.GetHostPort()
	if err != nil {
		return err
	}

	p.clusterName = cluster.Config.Name
	p.address = host
	// xmppd patch: the health endpoint listens on the host the remote listens on (upstream: always
	// 0.0.0.0, whatever the remote was configured with).
	p.bindHost = cluster.Config.RemoteConfig.Host
	p.memberPort = port
	p.knownKinds = cluster.GetClusterKinds()
	p.deregistered = false
	p.shutdown = false
	p.cluster = cluster
	return nil
}

func (p *AutoManagedProvider) StartMember(cluster *cluster.Cluster) error {
	if err := p.init(cluster); err != nil {
		return err
	}
	// xmppd patch: the health listener is bound here, so that a port that is taken is StartMember's
	// error (upstream: an error logged by a goroutine, and a member that no peer can see).
	if err := p.startActiveProvider(); err != nil {
		return err
	}
	p.monitorMemberStatusChanges()
	return nil
}

func (p *AutoManagedProvider) StartClient(cluster *cluster.Cluster) error {
	if err := p.init(cluster); err != nil {
		return err
	}
	// p.UpdateTTL()
	p.monitorMemberStatusChanges()
	return nil
}

// DeregisterMember set the shutdown to true preventing anymore TTL updates
func (p *AutoManagedProvider) DeregisterMember() error {
	p.deregisteredMutex.Lock()
	defer p.deregisteredMutex.Unlock()

	p.deregistered = true
	return nil
}

// Shutdown set the shutdown to true preventing anymore TTL updates
func (p *AutoManagedProvider) Shutdown(graceful bool) error {
	p.shutdownMutex.Lock()
	p.shutdown = true
	p.shutdownMutex.Unlock()
	p.stopActiveProvider()
	return nil
}

// UpdateTTL sets up an endpoint to respond to other members
func (p *AutoManagedProvider) UpdateTTL() {
	if p.isShutdown() || p.isDeregistered() {
		// (upstream started the endpoint again when it was shut down and not running)
		if p.isActiveProviderRunning() {
			p.stopActiveProvider()
		}
		return
	}
	// it's not shutdown or de-registered; startActiveProvider does nothing if it runs
	if err := p.startActiveProvider(); err != nil {
		p.cluster.Logger().Error("Automanaged server not started", slog.Any("error", err))
	}
}

// MonitorMemberStatusChanges creates a go routine that continuously checks other members
func (p *AutoManagedProvider) monitorMemberStatusChanges() {
	if !p.monitoringStatus {
		go func() {
			for !p.isShutdown() && !p.isDeregistered() {
				p.monitorStatuses()
			}
		}()
	}
	p.monitoringStatus = true
}

// GetHealthStatus returns an error if the cluster health status has problems
func (p *AutoManagedProvider) GetHealthStatus() error {
	var err error
	p.clusterTTLErrorMutex.Lock()
	p.clusterMonitorErrorMutex.Lock()
	defer p.clusterMonitorErrorMutex.Unlock()
	defer p.clusterTTLErrorMutex.Unlock()

	if p.clusterTTLError != nil {
		err = fmt.Errorf("TTL: %s", p.clusterTTLError.Error())
	}

	if p.clusterMonitorError != nil {
		if err != nil {
			err = fmt.Errorf("%s - Monitor: %s", err.Error(), p.clusterMonitorError.Error())
		} else {
			err = fmt.Errorf("monitor: %s", p.clusterMonitorError.Error())
		}
	}

	return err
}

//
// Private methods
//

// monitorStatuses checks for node changes in the cluster
func (p *AutoManagedProvider) monitorStatuses() {
	// xmppd patch: the mutex guards clusterMonitorError only; upstream held it across the poll and the
	// sleep.
	autoManagedNodes, err := p.checkNodes()
	if err != nil && len(autoManagedNodes) == 0 {
		p.cluster.Logger().Error("Failure reaching nodes", slog.Any("error", err))
		p.clusterMonitorErrorMutex.Lock()
		p.clusterMonitorError = err
		p.clusterMonitorErrorMutex.Unlock()
		time.Sleep(p.refreshTTL)
		return
	}
	// we should probably check if the cluster needs to be updated.
	var members []*cluster.Member
	var newNodes []*NodeModel
	for _, node := range autoManagedNodes {
		if node == nil || node.ClusterName != p.clusterName {
			continue
		}
		ms := &cluster.Member{
			Id:    node.ID,
			Host:  node.Address,
			Port:  int32(node.Port),
			Kinds: node.Kinds,
		}
		members = append(members, ms)
		newNodes = append(newNodes, node)
	}

	p.knownNodes = newNodes
	p.clusterMonitorErrorMutex.Lock()
	p.clusterMonitorError = nil
	p.clusterMonitorErrorMutex.Unlock()
	// publish the current cluster topology onto the event stream
	p.cluster.MemberList.UpdateClusterTopology(members)
	time.Sleep(p.refreshTTL)
}

// checkNodes pings all the nodes and returns the new cluster topology
func (p *AutoManagedProvider) checkNodes() ([]*NodeModel, error) {
	allNodes := make([]*NodeModel, len(p.hosts))
	g, _ := errgroup.WithContext(context.Background())

	for indice, nodeHost := range p.hosts {
		idx, el := indice, nodeHost // https://golang.org/doc/faq#closures_and_goroutines

		// Calling go funcs to execute the node check
		g.Go(func() error {
			url := fmt.Sprintf("http://%s/_health", el)
			req, err := http.NewRequest("GET", url, nil)
			if err != nil {
				p.cluster.Logger().Error("Couldn't request node health status", slog.Any("error", err), slog.String("autoManMemberUrl", url))
				return err
			}

			resp, err := p.httpClient.Do(req)
			if err != nil {
				p.cluster.Logger().Error("Bad connection to the node health status", slog.Any("error", err), slog.String("autoManMemberUrl", url))
				return err
			}

			defer resp.Body.Close() // nolint: errcheck

			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("non 200 status returned: %d - from node: %s", resp.StatusCode, el)
				p.cluster.Logger().Error("Bad response from the node health status", slog.Any("error", err), slog.String("autoManMemberUrl", url))
				return err
			}

			var node *NodeModel
			err = json.NewDecoder(resp.Body).Decode(&node)
			if err != nil {
				err = fmt.Errorf("could not deserialize response: %v - from node: %s", resp, el)
				p.cluster.Logger().Error("Bad data from the node health status", slog.Any("error", err), slog.String("autoManMemberUrl", url))
				return err
			}

			allNodes[idx] = node
			return nil
		})
	}

	// waits until all functions have returned
	err := g.Wait()
	var retNodes []*NodeModel

	// clear out the nil ones
	for _, node := range allNodes {
		if node != nil {
			retNodes = append(retNodes, node)
		}
	}

	return retNodes, err
}

func (p *AutoManagedProvider) deregisterService() {
	p.deregisteredMutex.Lock()
	defer p.deregisteredMutex.Unlock()

	p.deregistered = true
}

// startActiveProvider starts the health endpoint unless it runs. xmppd patch: it listens on bindHost (upstream:
// 0.0.0.0); the listener is bound before it returns, so its error is the caller's; echo prints nothing to
// stdout (upstream: its "http server started" line) and its log lines go to the cluster's logger.
func (p *AutoManagedProvider) startActiveProvider() error {
	p.activeProviderRunningMutex.Lock()
	defer p.activeProviderRunningMutex.Unlock()
	if p.activeProviderRunning {
		return nil
	}

	p.activeProviderMutex.Lock()
	defer p.activeProviderMutex.Unlock()
	if !p.activeProviderTesting {
		p.activeProvider = echo.New()
		p.activeProvider.GET("/_health", func(context echo.Context) error {
			return context.JSON(http.StatusOK, p.getCurrentNode())
		})
	}
	e := p.activeProvider
	e.HideBanner = true
	e.HidePort = true
	logw := slog.NewLogLogger(p.cluster.Logger().With(slog.String("component", "automanaged")).Handler(), slog.LevelWarn)
	e.Logger.SetOutput(logw.Writer())
	e.StdLogger = logw

	appURI := net.JoinHostPort(p.bindHost, strconv.Itoa(p.autoManagePort))
	l, err := net.Listen("tcp", appURI)
	if err != nil {
		return fmt.Errorf("automanaged: health endpoint: %w", err)
	}
	e.Listener = l
	p.activeProviderRunning = true

	go func() {
		err := e.Start(appURI) // serves e.Listener
		if errors.Is(err, http.ErrServerClosed) {
			p.cluster.Logger().Info("Automanaged server stopped", slog.String("address", appURI))
		} else {
			p.cluster.Logger().Error("Automanaged server stopping..!", slog.Any("error", err))
		}

		p.activeProviderRunningMutex.Lock()
		p.activeProviderRunning = false
		p.activeProviderRunningMutex.Unlock()
	}()
	return nil
}

func (p *AutoManagedProvider) stopActiveProvider() {
	p.activeProviderMutex.Lock()
	defer p.activeProviderMutex.Unlock()
	if p.activeProvider != nil {
		_ = p.activeProvider.Close()
	}
}

func (p *AutoManagedProvider) isShutdown() bool {
	p.shutdownMutex.Lock()
	defer p.shutdownMutex.Unlock()
	return p.shutdown
}

func (p *AutoManagedProvider) isDeregistered() bool {
	p.deregisteredMutex.Lock()
	defer p.deregisteredMutex.Unlock()
	return p.deregistered
}

func (p *AutoManagedProvider) isActiveProviderRunning() bool {
	p.activeProviderRunningMutex.Lock()
	defer p.activeProviderRunningMutex.Unlock()
	return p.activeProviderRunning
}

func (p *AutoManagedProvider) getCurrentNode() *NodeModel {
	return NewNode(p.clusterName, p.cluster.ActorSystem.ID, p.address, p.memberPort, p.autoManagePort, p.knownKinds)
}
