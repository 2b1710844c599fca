package web

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/xmppd/xmppd/protocol/xmlstream"
)

// XEP-0156 §3 link relations of the alternative connection methods.
const (
	RelWebSocket = "urn:xmpp:alt-connections:websocket"
	RelBOSH      = "urn:xmpp:alt-connections:xbosh"
)

type link struct {
	rel, path string
	websocket bool // ws:// or wss:// instead of http(s)://
}

// Advertise names path (a mounted endpoint) in host-meta under rel. Call it before Serve.
func (s *Server) Advertise(rel, path string) {
	s.links = append(s.links, link{rel: rel, path: path, websocket: rel == RelWebSocket})
}

// hostMeta serves XEP-0156 §3: /.well-known/host-meta as an XRD document (RFC 6415) and
// /.well-known/host-meta.json as JRD, both readable from any origin (§3.2: Access-Control-Allow-Origin: *,
// or a web client on another domain could not read it).
func (s *Server) hostMeta(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		h.Set("Allow", "GET, HEAD, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	base := s.BaseURL(r)
	type jlink struct {
		Rel  string `json:"rel"`
		Href string `json:"href"`
	}
	links := make([]jlink, 0, len(s.links))
	for _, l := range s.links {
		href := base + l.path
		if l.websocket {
			href = "ws" + strings.TrimPrefix(href, "http")
		}
		links = append(links, jlink{l.rel, href})
	}
	h.Set("Cache-Control", "max-age=300")
	if strings.HasSuffix(r.URL.Path, ".json") {
		h.Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			Links []jlink `json:"links"`
		}{links})
		return
	}
	b := []byte("<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n")
	for _, l := range links {
		b = append(b, "  <Link rel='"...)
		b = xmlstream.AppendEscapedAttr(b, l.Rel)
		b = append(b, "' href='"...)
		b = xmlstream.AppendEscapedAttr(b, l.Href)
		b = append(b, "'/>\n"...)
	}
	b = append(b, "</XRD>\n"...)
	h.Set("Content-Type", "application/xrd+xml; charset=utf-8")
	_, _ = w.Write(b)
}
