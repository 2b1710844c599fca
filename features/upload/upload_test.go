package upload

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/feature/featuretest"
	"github.com/xmppd/xmppd/features/upload/uploadhttp"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/upload"
	"github.com/xmppd/xmppd/protocol/xmlstream"
)

const svcJID = "upload.localhost"

type fixture struct {
	t   *testing.T
	srv *featuretest.Server
	svc *featuretest.Service
}

func setup(t *testing.T, tweak func(c *featuretest.Server)) *fixture {
	srv := featuretest.NewServer(t, Feature)
	srv.Cfg.Upload.Listen = "127.0.0.1:0"
	srv.Cfg.Upload.BaseURL = "https://files.example.org/up/"
	srv.Cfg.Upload.MaxFileSize = 1000
	srv.Cfg.Upload.QuotaPerUser = 1500
	srv.Cfg.Upload.DailyLimit = 0
	if tweak != nil {
		tweak(srv)
	}
	return &fixture{t: t, srv: srv, svc: featuretest.NewService(t, srv, Feature.Service)}
}

// slot requests a slot from alice and returns the answer.
func (f *fixture) slot(from, name, size, ct string) *stanza.Routed {
	f.t.Helper()
	f.svc.Send(featuretest.Stanza(f.t, "<iq xmlns='jabber:client' from='"+from+"' to='"+svcJID+"' type='get' id='s'><request xmlns='"+upload.NS+"' filename='"+name+"' size='"+size+"' content-type='"+ct+"'/></iq>"))
	out := f.svc.Take()
	if len(out) != 1 {
		f.t.Fatalf("%d answers", len(out))
	}
	return out[0]
}

type granted struct{ id, url, token string }

func mustGrant(t *testing.T, st *stanza.Routed) granted {
	t.Helper()
	n, err := st.Node()
	if err != nil || st.Head.Type != "result" {
		t.Fatalf("want a slot: %s", st.Raw)
	}
	sl := n.Child(upload.NS, "slot")
	put, get := sl.Child(upload.NS, "put"), sl.Child(upload.NS, "get")
	h := put.Child(upload.NS, "header")
	if h.Attr("name") != "Authorization" || !strings.HasPrefix(h.TextContent(), "Bearer ") || put.Attr("url") != get.Attr("url") {
		t.Fatalf("slot: %s", st.Raw)
	}
	rest := strings.TrimPrefix(put.Attr("url"), "https://files.example.org/up/")
	id, _, _ := strings.Cut(rest, "/")
	if !upload.ValidID(id) {
		t.Fatalf("url %s", put.Attr("url"))
	}
	return granted{id: id, url: put.Attr("url"), token: strings.TrimPrefix(h.TextContent(), "Bearer ")}
}

func (f *fixture) answer(q any) any { return f.svc.Part.(feature.Answerer).Answer(q) }

// put runs a PUT the way the HTTP side does: Begin, write the temporary file, Finish.
func (f *fixture) put(g granted, size int64, ct string, body string) int {
	f.t.Helper()
	v := f.answer(uploadhttp.Begin{ID: g.id, Size: size, ContentType: ct, Token: g.token}).(uploadhttp.Verdict)
	if v.Status != 0 {
		return v.Status
	}
	if err := os.WriteFile(v.Temp, []byte(body), 0o600); err != nil {
		f.t.Fatal(err)
	}
	return f.answer(uploadhttp.Finish{ID: g.id, Temp: v.Temp, OK: true}).(uploadhttp.Finished).Status
}

func errorOf(t *testing.T, st *stanza.Routed) (typ, cond string, n *xmlstream.Node) {
	t.Helper()
	root, err := st.Node()
	if err != nil || st.Head.Type != "error" {
		t.Fatalf("want an error: %s", st.Raw)
	}
	e := root.Child(stanza.NSClient, "error")
	for _, k := range e.Elements() {
		if k.Name.Space == stanza.NSStanzas && k.Name.Local != "text" {
			cond = k.Name.Local
		}
	}
	return e.Attr("type"), cond, e
}

// forged is tok with one character of its signature changed (never to itself: "…AA" replacing the last two
// characters was tok itself once in a thousand runs).
func forged(tok string) string {
	i := len(tok) - 3
	c := byte('A')
	if tok[i] == c {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}

func TestSlotPutLookup(t *testing.T) {
	f := setup(t, nil)
	g := mustGrant(t, f.slot("alice@localhost/a", "my photo.png", "5", "IMAGE/PNG"))
	if !strings.HasSuffix(g.url, "/my_photo.png") {
		t.Errorf("url %s", g.url)
	}
	for _, tc := range []struct {
		name   string
		size   int64
		ct     string
		token  string
		status int
	}{
		{"bigger", 6, "image/png", g.token, http.StatusRequestEntityTooLarge},
		{"smaller", 4, "image/png", g.token, http.StatusBadRequest},
		{"type", 5, "image/gif", g.token, http.StatusUnsupportedMediaType},
		{"token", 5, "image/png", forged(g.token), http.StatusForbidden},
	} {
		if v := f.answer(uploadhttp.Begin{ID: g.id, Size: tc.size, ContentType: tc.ct, Token: tc.token}).(uploadhttp.Verdict); v.Status != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, v.Status, tc.status)
		}
	}
	// After slot_lifetime (default 5 min) the PUT URL is no longer valid.
	if v := f.svc.Part.(*service).begin(uploadhttp.Begin{ID: g.id, Size: 5, ContentType: "image/png", Token: g.token}, time.Now().Add(6*time.Minute)); v.Status != http.StatusForbidden {
		t.Errorf("expired PUT URL: status %d", v.Status)
	}
	if v := f.answer(uploadhttp.Begin{ID: strings.Repeat("0", 32), Size: 5, ContentType: "image/png", Token: g.token}).(uploadhttp.Verdict); v.Status != http.StatusNotFound {
		t.Errorf("unknown id: %d", v.Status)
	}
	if f := f.answer(uploadhttp.Lookup{ID: g.id}).(uploadhttp.File); f.Path != "" {
		t.Errorf("lookup before the PUT: %+v", f)
	}
	// While a PUT is under way a second one is refused.
	v := f.answer(uploadhttp.Begin{ID: g.id, Size: 5, ContentType: "image/png", Token: g.token}).(uploadhttp.Verdict)
	if v.Status != 0 || filepath.Dir(v.Temp) != filepath.Join(f.srv.Cfg.UploadDir(), "tmp") {
		t.Fatalf("begin: %+v", v)
	}
	if v2 := f.answer(uploadhttp.Begin{ID: g.id, Size: 5, ContentType: "image/png", Token: g.token}).(uploadhttp.Verdict); v2.Status != http.StatusConflict {
		t.Errorf("concurrent PUT: %d", v2.Status)
	}
	// A failed PUT frees the slot and leaves nothing behind.
	_ = os.WriteFile(v.Temp, []byte("ab"), 0o600)
	f.answer(uploadhttp.Finish{ID: g.id, Temp: v.Temp, OK: false})
	if _, err := os.Stat(v.Temp); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
	if st := f.put(g, 5, "image/png", "hello"); st != http.StatusCreated {
		t.Fatalf("PUT: %d", st)
	}
	if st := f.put(g, 5, "image/png", "again"); st != http.StatusConflict {
		t.Errorf("second PUT: %d", st)
	}
	file := f.answer(uploadhttp.Lookup{ID: g.id}).(uploadhttp.File)
	b, err := os.ReadFile(file.Path)
	if err != nil || string(b) != "hello" || file.ContentType != "image/png" || file.Name != "my_photo.png" || file.Size != 5 || filepath.Base(file.Path) != g.id {
		t.Fatalf("lookup: %+v, %q, %v", file, b, err)
	}
}

func TestSlotErrors(t *testing.T) {
	f := setup(t, func(s *featuretest.Server) { s.Cfg.Upload.DailyLimit = 1200 })
	typ, cond, e := errorOf(t, f.slot("alice@localhost/a", "a.bin", "1001", "application/octet-stream"))
	if typ != "modify" || cond != "not-acceptable" || e.Child(upload.NS, "file-too-large").Child(upload.NS, "max-file-size").TextContent() != "1000" {
		t.Fatalf("too large: %s %s", typ, cond)
	}
	for _, name := range []string{"../x", "..", "a/b"} {
		if typ, cond, _ := errorOf(t, f.slot("alice@localhost/a", name, "10", "text/plain")); typ != "modify" || cond != "not-acceptable" {
			t.Errorf("name %q: %s/%s", name, typ, cond)
		}
	}
	if _, cond, _ := errorOf(t, f.slot("alice@localhost/a", "a", "x", "text/plain")); cond != "bad-request" {
		t.Errorf("size x: %s", cond)
	}
	if _, cond, _ := errorOf(t, f.slot("mallory@elsewhere.example/a", "a", "1", "text/plain")); cond != "not-allowed" {
		t.Errorf("remote user: %s", cond)
	}
	// Quota 1500, daily limit 1200: 1000 then 300 fit; 300 more passes the daily limit.
	mustGrant(t, f.slot("alice@localhost/a", "a", "1000", "text/plain"))
	mustGrant(t, f.slot("alice@localhost/a", "b", "200", "text/plain"))
	typ, cond, e = errorOf(t, f.slot("alice@localhost/a", "c", "300", "text/plain"))
	if typ != "wait" || cond != "resource-constraint" || e.Child(upload.NS, "retry") == nil {
		t.Fatalf("daily: %s/%s", typ, cond)
	}
	if f.srv.LimitHits[LimitDaily] != 1 || f.srv.LimitHits[LimitFileSize] != 1 {
		t.Errorf("limit hits %v", f.srv.LimitHits)
	}
	// Another user has a quota of their own.
	mustGrant(t, f.slot("bob@localhost/b", "c", "1000", "text/plain"))
	if f.srv.Counted(CounterSlots) != 3 {
		t.Errorf("slots counted %v", f.srv.Counted(CounterSlots))
	}
}

func TestSweep(t *testing.T) {
	f := setup(t, func(s *featuretest.Server) {
		s.Cfg.Upload.ExpireAfter.Duration = time.Hour
		s.Cfg.Upload.SlotLifetime.Duration = time.Minute
	})
	s := f.svc.Part.(*service)
	used := mustGrant(t, f.slot("alice@localhost/a", "used", "2", "text/plain"))
	unused := mustGrant(t, f.slot("alice@localhost/a", "unused", "2", "text/plain"))
	if st := f.put(used, 2, "text/plain", "hi"); st != http.StatusCreated {
		t.Fatal(st)
	}
	now := time.Now()
	s.sweep(now.Add(30 * time.Second)) // nothing due yet
	if _, err := os.Stat(s.path(used.id)); err != nil {
		t.Fatal(err)
	}
	s.sweep(now.Add(2 * time.Minute)) // the unused slot's URL expired; the file stays
	if _, err := f.srv.DB.UploadSlot(t.Context(), unused.id); err == nil {
		t.Error("the unused slot is still there")
	}
	if file := s.lookup(used.id, now.Add(2*time.Minute)); file.Path == "" {
		t.Error("the file is gone too early")
	}
	if file := s.lookup(used.id, now.Add(2*time.Hour)); file.Path != "" {
		t.Error("an expired file is served before the sweep")
	}
	s.sweep(now.Add(2 * time.Hour))
	if _, err := os.Stat(s.path(used.id)); !os.IsNotExist(err) {
		t.Errorf("expired file still on disk: %v", err)
	}
	if f.srv.Counted(CounterExpired) != 2 {
		t.Errorf("expired counted %v", f.srv.Counted(CounterExpired))
	}
}

// The generated key is kept: a slot handed out before a restart of the service still takes its PUT after it.
func TestSecretPersists(t *testing.T) {
	f := setup(t, nil)
	g := mustGrant(t, f.slot("alice@localhost/a", "a", "2", "text/plain"))
	st, err := os.Stat(filepath.Join(f.srv.Cfg.DataDir, "upload.secret"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("upload.secret: %v %v", st, err)
	}
	f.svc.Restart()
	if s := f.put(g, 2, "text/plain", "ok"); s != http.StatusCreated {
		t.Fatalf("PUT after restart: %d", s)
	}
}

func TestDiscoForm(t *testing.T) {
	srv := featuretest.NewServer(t, Feature)
	form := Feature.Service.ExtendedInfo(&srv.Cfg)
	if !strings.Contains(form, "<value>"+upload.NS+"</value>") || !strings.Contains(form, "<field var='max-file-size'><value>104857600</value></field>") {
		t.Fatalf("form %s", form)
	}
	if Feature.Service.Host(&srv.Cfg) == "" {
		t.Error("the service is off though the public HTTP listener is on (the default)")
	}
	srv.Cfg.HTTP.Listen = ""
	if Feature.Service.Host(&srv.Cfg) != "" {
		t.Error("the service is on without an HTTP side")
	}
}
