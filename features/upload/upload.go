// Package upload is XEP-0363 HTTP File Upload: a service at a domain of its own ([upload] host, upload.<first
// domain> by default), listed in the server's disco#items, that hands out upload slots over XMPP and takes the
// files over HTTP (package uploadhttp).
//
// The service part, in the service actor (services/upload.<domain>), owns everything that changes: the slots
// and the files' metadata (storage.Uploads: it is their only writer), the per-user quota and daily limit (read
// from storage at each request, where every slot is recorded before it is handed out), the key that signs PUT
// URLs, the PUTs in progress, and the directory of files (it alone renames a finished upload into place and
// deletes expired files, on a timer). The HTTP handler's goroutines ask it by messages (uploadhttp.Begin,
// Finish, Lookup) and only stream bytes between a socket and a file it named.
//
// Slots (XEP-0363 §4): <request filename size content-type/> → <slot><put url><header name='Authorization'>
// Bearer <token></header></put><get url/></slot>. The token (protocol/upload) is an HMAC-SHA256 over the file
// id, size, sanitised content type and expiry, so the PUT must carry exactly that size and content type before
// slot_lifetime passes. PUT and GET URLs are the same: <base_url>/<id>/<sanitised name>.
package upload

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/features/upload/uploadhttp"
	"github.com/xmppd/xmppd/protocol/dataform"
	"github.com/xmppd/xmppd/protocol/upload"
)

// HTTPPath is where the handler is mounted on an HTTP listener.
const HTTPPath = "/upload/"

// Counters in /metrics (xmppd_<name>).
const (
	CounterSlots   = "upload_slots_total"
	CounterExpired = "upload_files_expired_total"
)

// Limits counted in xmppd_limit_hits_total.
const (
	LimitFileSize = "upload_max_file_size"
	LimitQuota    = "upload_quota_per_user"
	LimitDaily    = "upload_daily_limit"
)

// Feature is the XEP-0363 service.
var Feature = &feature.Feature{
	Name:   "upload",
	Limits: []string{LimitFileSize, LimitQuota, LimitDaily},
	Counters: []feature.Counter{
		{Name: CounterSlots, Help: "XEP-0363 upload slots handed out."},
		{Name: uploadhttp.CounterRequests, Help: "HTTP requests to the upload service (PUT, GET, HEAD, OPTIONS)."},
		{Name: uploadhttp.CounterBytes, Help: "Bytes of files stored by completed uploads."},
		{Name: CounterExpired, Help: "Uploaded files (and unused slots) deleted after expiry."},
	},
	Service: &feature.ServiceSpec{
		Host:       host,
		Name:       "HTTP File Upload",
		Identities: []string{"<identity category='store' type='file' name='HTTP File Upload'/>"},
		Vars:       []string{"http://jabber.org/protocol/disco#info", upload.NS},
		// XEP-0363 §2: the largest file, in an XEP-0128 form of FORM_TYPE urn:xmpp:http:upload:0.
		ExtendedInfo: func(cfg *config.Config) string {
			return dataform.New("result", upload.NS).Field("max-file-size", "", "", strconv.FormatInt(cfg.Upload.MaxFileSize, 10)).String()
		},
		New:      func(h feature.ServiceHost) any { return newService(h) },
		Outside:  outside,
		HTTPPath: HTTPPath,
		HTTP: func(srv feature.Server, mb feature.Mailbox) http.Handler {
			return uploadhttp.New(HTTPPath, mb, srv.Count, zerolog.Nop())
		},
		InCluster: inCluster,
	},
	// In a cluster the service part runs on its home and the HTTP side on every node: the HTTP side's questions
	// cross to the home, and their answers back (feature.Mailbox).
	Wire: []feature.WireType{
		feature.WireJSON("begin", func(m uploadhttp.Begin) error { return validID(m.ID) }),
		feature.WireJSON[uploadhttp.Verdict]("verdict", nil),
		feature.WireJSON("finish", func(m uploadhttp.Finish) error { return validID(m.ID) }),
		feature.WireJSON[uploadhttp.Finished]("finished", nil),
		feature.WireJSON("lookup", func(m uploadhttp.Lookup) error { return validID(m.ID) }),
		feature.WireJSON[uploadhttp.File]("file", nil),
	},
}

func validID(id string) error {
	if !upload.ValidID(id) {
		return errors.New("not a file id")
	}
	return nil
}

// inCluster: in a cluster the node that takes a PUT or a GET is any node, and the service's home (which names
// the files and signs the URLs) may move to another node. So every node must see the same files at the same
// path ([upload] dir on a filesystem they share, mounted at the same place) and verify with the same key
// ([upload] secret): a node's own <data_dir> would hold its files only, and its own generated key.
func inCluster(cfg *config.Config) error {
	var missing []string
	if cfg.Upload.Dir == "" {
		missing = append(missing, "upload.dir (a directory every node shares, at the same path)")
	}
	if cfg.Upload.Secret == "" {
		missing = append(missing, "upload.secret (the same on every node)")
	}
	if len(missing) > 0 {
		return errors.New("in a cluster the upload service needs " + strings.Join(missing, " and "))
	}
	return nil
}

// host is the service's domain: on when enabled and it has an HTTP side (its own listener until the server
// has a shared one).
func host(cfg *config.Config) string {
	if !cfg.Upload.Enabled || (cfg.Upload.Listen == "" && cfg.HTTP.Listen == "") {
		return "" // no HTTP listener to take the files
	}
	return cfg.ServiceHost(cfg.Upload.Host)
}

// Messages from the outside to the service part.
type (
	// listening: the upload's own HTTP listener is bound (the base URL of a listen address with port 0).
	listening struct{ addr string }
	// sweep: time to delete what expired (with the listener's address again, for a service actor spawned anew
	// after a failure).
	sweep struct{ addr string }
)

// outside runs the upload's own HTTP listener ([upload] listen, when set) and the sweep timer.
func outside(srv feature.Server, mb feature.Mailbox, log zerolog.Logger) (func(), error) {
	cfg := srv.Config()
	var hs *http.Server
	addr := ""
	if cfg.Upload.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Upload.Listen)
		if err != nil {
			return nil, err
		}
		addr = ln.Addr().String()
		mb.Tell(listening{addr: addr})
		mux := http.NewServeMux()
		mux.Handle(HTTPPath, uploadhttp.New(HTTPPath, mb, srv.Count, log))
		hs = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		go func() {
			if err := hs.Serve(ln); err != nil && err != http.ErrServerClosed {
				log.Error().Err(err).Msg("upload: http listener")
			}
		}()
		log.Info().Str("listen", addr).Msg("upload http listening")
	}
	tick := time.NewTicker(cfg.Upload.SweepInterval.Duration)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-tick.C:
				mb.Tell(sweep{addr: addr})
			case <-done:
				return
			}
		}
	}()
	return func() {
		tick.Stop()
		close(done)
		if hs != nil {
			_ = hs.Close()
		}
	}, nil
}

// baseURL is [upload] base_url without a trailing slash; or http://<addr>/upload for the upload's own listener;
// or, on the public HTTP listener ([http]), its public_url, else its scheme, listen host (the first domain when
// the listen address has none) and port, plus /upload.
func baseURL(cfg *config.Config, addr string) string {
	if cfg.Upload.BaseURL != "" {
		return strings.TrimRight(cfg.Upload.BaseURL, "/")
	}
	path := strings.TrimRight(HTTPPath, "/")
	switch {
	case addr != "":
		return "http://" + addr + path
	case cfg.Upload.Listen != "" || cfg.HTTP.Listen == "":
		return ""
	case cfg.HTTP.PublicURL != "":
		return strings.TrimRight(cfg.HTTP.PublicURL, "/") + path
	}
	host, port, err := net.SplitHostPort(cfg.HTTP.Listen)
	if err != nil {
		return ""
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = cfg.Domains[0]
	}
	scheme := "http"
	if cfg.HTTP.TLS {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + path
}
