package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xmppd/xmppd/test/harness"
	"github.com/xmppd/xmppd/test/xmppclient"
)

// XEP-0363 HTTP file upload against the real server: slots over XMPP (mellium), PUT and GET with net/http.

const nsUpload = "urn:xmpp:http:upload:0"

// slot is a granted upload slot.
type slot struct{ put, get, auth string }

func requestSlot(c *xmppclient.Client, domain, name string, size int64, ct string) *xmppclient.Elem {
	c.T().Helper()
	return c.IQ(fmt.Sprintf("<iq type='get' to='upload.%s' id='slot%d'><request xmlns='%s' filename='%s' size='%d' content-type='%s'/></iq>",
		domain, time.Now().UnixNano(), nsUpload, xmlEscape(name), size, xmlEscape(ct)))
}

func mustSlot(t testing.TB, r *xmppclient.Elem) slot {
	t.Helper()
	s := r.Child(nsUpload, "slot")
	if r.Get("type") != "result" || s == nil || s.Child(nsUpload, "put") == nil || s.Child(nsUpload, "get") == nil {
		t.Fatalf("want a slot, got %s", r)
	}
	p := s.Child(nsUpload, "put")
	var auth string
	for _, h := range p.Children(nsUpload, "header") {
		if h.Get("name") == "Authorization" {
			auth = h.Text
		}
	}
	if auth == "" {
		t.Fatalf("slot without an Authorization header: %s", r)
	}
	return slot{put: p.Get("url"), get: s.Child(nsUpload, "get").Get("url"), auth: auth}
}

func putFile(t testing.TB, s slot, body []byte, ct string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, s.put, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", s.auth)
	req.Header.Set("Content-Type", ct)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

func httpDo(t testing.TB, method, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func wantStanzaError(t testing.TB, what string, r *xmppclient.Elem, typ, cond string) *xmppclient.Elem {
	t.Helper()
	gt, gc := r.StanzaError()
	if gt != typ || gc != cond {
		t.Fatalf("%s: want %s/%s, got %s", what, typ, cond, r)
	}
	return r.Child("", "error")
}

// The service is listed in the domain's disco#items and says what it is: store/file, the namespace, and
// max-file-size in an XEP-0128 form (XEP-0363 §2).
func TestUploadDisco(t *testing.T) {
	srv := shared(t)
	local, pw := srv.user(t, "updisco")
	c := xmppclient.MustLoginTo(t, srv.Server, local, pw, xmppclient.Options{})
	items := c.IQ("<iq type='get' to='" + srv.Domain + "' id='i1'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	var listed []string
	for _, it := range items.Child("", "query").Children("", "item") {
		listed = append(listed, it.Get("jid"))
	}
	if !strings.Contains(strings.Join(listed, " "), "upload."+srv.Domain) || !strings.Contains(strings.Join(listed, " "), "proxy."+srv.Domain) {
		t.Fatalf("disco#items of %s lists %v, want upload. and proxy.", srv.Domain, listed)
	}
	info := c.IQ("<iq type='get' to='upload." + srv.Domain + "' id='i2'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	q := info.Child("", "query")
	if id := q.Child("", "identity"); id == nil || id.Get("category") != "store" || id.Get("type") != "file" {
		t.Fatalf("identity: %s", info)
	}
	hasNS := false
	for _, f := range q.Children("", "feature") {
		hasNS = hasNS || f.Get("var") == nsUpload
	}
	max := ""
	for _, x := range q.Children("jabber:x:data", "x") {
		ft := ""
		for _, f := range x.Children("", "field") {
			switch f.Get("var") {
			case "FORM_TYPE":
				ft = f.ChildText("value")
			case "max-file-size":
				max = f.ChildText("value")
			}
		}
		if ft != nsUpload {
			max = ""
		}
	}
	if !hasNS || max != strconv.Itoa(sharedMaxUpload) {
		t.Fatalf("disco#info of the upload service: feature %v, max-file-size %q: %s", hasNS, max, info)
	}
}

// Slot, PUT, GET with the headers XEP-0363 §5 and HTTP caching want, Range, conditional GET, HEAD; a second
// PUT and PUTs that do not match the slot are refused.
func TestUploadPutGet(t *testing.T) {
	srv := shared(t)
	local, pw := srv.user(t, "upput")
	c := xmppclient.MustLoginTo(t, srv.Server, local, pw, xmppclient.Options{})
	body := randomBytes(t, 100_000)
	s := mustSlot(t, requestSlot(c, srv.Domain, "très cool.jpg", int64(len(body)), "image/jpeg"))
	if s.put != s.get || !strings.HasSuffix(s.get, "/tr%C3%A8s_cool.jpg") {
		t.Fatalf("urls: put %s get %s", s.put, s.get)
	}

	// Before the PUT there is nothing to GET.
	if res, _ := httpDo(t, http.MethodGet, s.get, nil); res.StatusCode != http.StatusNotFound {
		t.Fatalf("GET before PUT: %s", res.Status)
	}
	// PUTs that do not match what was signed.
	bad := []struct {
		name   string
		body   []byte
		ct     string
		auth   string
		status int
	}{
		{"no token", body, "image/jpeg", "", http.StatusForbidden},
		{"forged token", body, "image/jpeg", s.auth[:len(s.auth)-4] + "AAAA", http.StatusForbidden},
		{"other content type", body, "text/html", s.auth, http.StatusUnsupportedMediaType},
		{"more bytes than the slot", append(body, 1), "image/jpeg", s.auth, http.StatusRequestEntityTooLarge},
		{"fewer bytes", body[:10], "image/jpeg", s.auth, http.StatusBadRequest},
	}
	for _, b := range bad {
		sl := s
		sl.auth = b.auth
		if res := putFile(t, sl, b.body, b.ct); res.StatusCode != b.status {
			t.Errorf("PUT %s: %s, want %d", b.name, res.Status, b.status)
		}
	}
	res := putFile(t, s, body, "image/jpeg")
	if res.StatusCode != http.StatusCreated || res.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("PUT: %s %v", res.Status, res.Header)
	}
	if res := putFile(t, s, body, "image/jpeg"); res.StatusCode != http.StatusConflict {
		t.Fatalf("second PUT: %s, want 409", res.Status)
	}

	res, got := httpDo(t, http.MethodGet, s.get, nil)
	if res.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
		t.Fatalf("GET: %s, %d bytes (want %d)", res.Status, len(got), len(body))
	}
	for h, want := range map[string]string{
		"Content-Type":                "image/jpeg",
		"Content-Length":              strconv.Itoa(len(body)),
		"Access-Control-Allow-Origin": "*",
		"X-Content-Type-Options":      "nosniff",
	} {
		if res.Header.Get(h) != want {
			t.Errorf("GET %s = %q, want %q", h, res.Header.Get(h), want)
		}
	}
	etag := res.Header.Get("ETag")
	if etag == "" || !strings.Contains(res.Header.Get("Cache-Control"), "max-age") {
		t.Errorf("GET without ETag or Cache-Control: %v", res.Header)
	}
	res, got = httpDo(t, http.MethodGet, s.get, map[string]string{"Range": "bytes=1000-1999"})
	if res.StatusCode != http.StatusPartialContent || !bytes.Equal(got, body[1000:2000]) ||
		res.Header.Get("Content-Range") != fmt.Sprintf("bytes 1000-1999/%d", len(body)) {
		t.Fatalf("Range GET: %s %q, %d bytes", res.Status, res.Header.Get("Content-Range"), len(got))
	}
	if res, _ := httpDo(t, http.MethodGet, s.get, map[string]string{"Range": "bytes=200000-"}); res.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("unsatisfiable Range: %s", res.Status)
	}
	if res, _ := httpDo(t, http.MethodGet, s.get, map[string]string{"If-None-Match": etag}); res.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET: %s, want 304", res.Status)
	}
	if res, got := httpDo(t, http.MethodHead, s.get, nil); res.StatusCode != http.StatusOK || len(got) != 0 || res.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
		t.Errorf("HEAD: %s, %d bytes, length %s", res.Status, len(got), res.Header.Get("Content-Length"))
	}
	if res, _ := httpDo(t, http.MethodDelete, s.get, nil); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %s", res.Status)
	}
}

// A body announced longer than the slot is refused from its headers, before a byte of it is read; one without a
// length (chunked) is refused too: the server never holds more than the slot allows.
func TestUploadRefusesUnannouncedBytes(t *testing.T) {
	srv := shared(t)
	local, pw := srv.user(t, "upbig")
	c := xmppclient.MustLoginTo(t, srv.Server, local, pw, xmppclient.Options{})
	s := mustSlot(t, requestSlot(c, srv.Domain, "a.bin", 1000, "application/octet-stream"))
	for _, tc := range []struct {
		name, hdr string
		status    int
	}{
		{"announced 1 GB", "Content-Length: 1000000000\r\n", http.StatusRequestEntityTooLarge},
		{"chunked", "Transfer-Encoding: chunked\r\n", http.StatusLengthRequired},
	} {
		host := strings.TrimPrefix(s.put, "http://")
		host, path, _ := strings.Cut(host, "/")
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(conn, "PUT /%s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nContent-Type: application/octet-stream\r\n%s\r\n", path, host, s.auth, tc.hdr)
		// Only the headers were sent: the answer must come without the body.
		line := make([]byte, 12)
		if _, err := io.ReadFull(conn, line); err != nil || string(line) != "HTTP/1.1 "+strconv.Itoa(tc.status) {
			t.Errorf("%s: got %q, %v; want HTTP/1.1 %d", tc.name, line, err, tc.status)
		}
		conn.Close()
	}
}

// XEP-0363 §4 errors: file-too-large with max-file-size; unacceptable names; not a positive size.
func TestUploadSlotErrors(t *testing.T) {
	srv := shared(t)
	local, pw := srv.user(t, "uperr")
	c := xmppclient.MustLoginTo(t, srv.Server, local, pw, xmppclient.Options{})
	e := wantStanzaError(t, "too large", requestSlot(c, srv.Domain, "big.iso", sharedMaxUpload+1, "application/x-iso9660-image"), "modify", "not-acceptable")
	if ftl := e.Child(nsUpload, "file-too-large"); ftl == nil || ftl.ChildText("max-file-size") != strconv.Itoa(sharedMaxUpload) {
		t.Fatalf("too large: no <file-too-large><max-file-size>%d: %s", sharedMaxUpload, e)
	}
	for _, name := range []string{"../../etc/passwd", "..", "a/b.txt", "c\\d.txt", "evil\u202egpj.exe", ""} {
		wantStanzaError(t, "name "+name, requestSlot(c, srv.Domain, name, 10, "text/plain"), "modify", "not-acceptable")
	}
	wantStanzaError(t, "size 0", requestSlot(c, srv.Domain, "x.txt", 0, "text/plain"), "modify", "bad-request")
	wantStanzaError(t, "size -5", requestSlot(c, srv.Domain, "x.txt", -5, "text/plain"), "modify", "bad-request")
	// A content type that is no media type is stored as application/octet-stream: the PUT must say that.
	s := mustSlot(t, requestSlot(c, srv.Domain, "y.bin", 3, "nonsense"))
	if res := putFile(t, s, []byte("abc"), "application/octet-stream"); res.StatusCode != http.StatusCreated {
		t.Fatalf("PUT with the sanitised type: %s", res.Status)
	}
}

// CORS preflight (XEP-0363 §8): OPTIONS answers what a browser asks before a cross-origin PUT.
func TestUploadCORSPreflight(t *testing.T) {
	srv := shared(t)
	local, pw := srv.user(t, "upcors")
	c := xmppclient.MustLoginTo(t, srv.Server, local, pw, xmppclient.Options{})
	s := mustSlot(t, requestSlot(c, srv.Domain, "c.png", 5, "image/png"))
	res, _ := httpDo(t, http.MethodOptions, s.put, map[string]string{"Origin": "https://web.example.org",
		"Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "authorization,content-type"})
	if res.StatusCode != http.StatusNoContent && res.StatusCode != http.StatusOK {
		t.Fatalf("OPTIONS: %s", res.Status)
	}
	if res.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(res.Header.Get("Access-Control-Allow-Methods"), "PUT") ||
		!strings.Contains(strings.ToLower(res.Header.Get("Access-Control-Allow-Headers")), "authorization") ||
		!strings.Contains(strings.ToLower(res.Header.Get("Access-Control-Allow-Headers")), "content-type") {
		t.Fatalf("preflight headers: %v", res.Header)
	}
}

// Nothing but an uploaded file's id reaches a file: traversal attempts, listing, other ids are 404 and never
// show the database or the secret.
func TestUploadTraversal(t *testing.T) {
	srv := shared(t)
	local, pw := srv.user(t, "uptrav")
	c := xmppclient.MustLoginTo(t, srv.Server, local, pw, xmppclient.Options{})
	s := mustSlot(t, requestSlot(c, srv.Domain, "t.txt", 2, "text/plain"))
	if res := putFile(t, s, []byte("ok"), "text/plain"); res.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %s", res.Status)
	}
	base := s.get[:strings.Index(s.get, "/upload/")]
	id := strings.Split(strings.TrimPrefix(s.get, base+"/upload/"), "/")[0]
	for _, p := range []string{
		"/upload/", "/upload", "/", "/upload/../xmppd.db", "/upload/%2e%2e/xmppd.db", "/upload/..%2fxmppd.db",
		"/upload/" + id + "/../../upload.secret", "/upload/" + id + "%2f..%2f..%2fupload.secret",
		"/upload/tmp/", "/upload/" + strings.ToUpper(id) + "/t.txt", "/upload/" + id[:31] + "/t.txt",
		"/upload/....//....//xmppd.db", "/upload.secret", "/xmppd.db",
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		// Raw, so that no client library cleans the path first.
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", p)
		out, _ := io.ReadAll(conn)
		conn.Close()
		// A 404, a redirect to the cleaned path (net/http's ServeMux), or the uploaded file itself (the id is
		// all that counts); never anything else.
		status := string(out[:min(len(out), 12)])
		_, body, _ := strings.Cut(string(out), "\r\n\r\n")
		switch {
		case strings.Contains(string(out), "SQLite format") || strings.Contains(string(out), secretHex(t, srv)):
			t.Errorf("GET %s shows the database or the key", p)
		case status == "HTTP/1.1 404" || status == "HTTP/1.1 301" || status == "HTTP/1.1 307" || status == "HTTP/1.1 400":
		case status == "HTTP/1.1 200" && body == "ok":
		default:
			t.Errorf("GET %s: %q", p, out[:min(len(out), 200)])
		}
	}
	// The file itself, under any name (only the id counts).
	if res, got := httpDo(t, http.MethodGet, base+"/upload/"+id+"/other-name", nil); res.StatusCode != http.StatusOK || string(got) != "ok" {
		t.Fatalf("GET by id: %s %q", res.Status, got)
	}
}

// secretHex is the upload service's signing key as kept on disk.
func secretHex(t testing.TB, srv *testServer) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(srv.DataDir, "upload.secret"))
	if err != nil || len(strings.TrimSpace(string(b))) < 32 {
		t.Fatalf("upload.secret: %q, %v", b, err)
	}
	return strings.TrimSpace(string(b))
}

// Concurrent uploads by several users: every file arrives intact and under its own URL.
func TestUploadConcurrent(t *testing.T) {
	srv := shared(t)
	const n = 6
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		local, pw := srv.user(t, "upconc")
		c := xmppclient.MustLoginTo(t, srv.Server, local, pw, xmppclient.Options{})
		body := randomBytes(t, 300_000+i)
		s := mustSlot(t, requestSlot(c, srv.Domain, fmt.Sprintf("f%d.bin", i), int64(len(body)), "application/octet-stream"))
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPut, s.put, bytes.NewReader(body))
			req.Header.Set("Authorization", s.auth)
			req.Header.Set("Content-Type", "application/octet-stream")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			res.Body.Close()
			if res.StatusCode != http.StatusCreated {
				errs <- fmt.Errorf("PUT %s: %s", s.put, res.Status)
				return
			}
			res, err = http.Get(s.get)
			if err != nil {
				errs <- err
				return
			}
			got, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || !bytes.Equal(got, body) {
				errs <- fmt.Errorf("GET %s: %d bytes, %v", s.get, len(got), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Quota, daily limit (resource-constraint with <retry stamp/>, XEP-0363 §4) and expiry: a file is deleted,
// from disk too, once expire_after has passed, which frees the quota. The signing key was generated and kept.
func TestUploadQuotaDailyExpiry(t *testing.T) {
	srv := own(t, harness.Options{Sections: map[string]string{
		"upload": "listen = \"127.0.0.1:0\"\nmax_file_size = 4000\nquota_per_user = 5000\ndaily_limit = 4000\nexpire_after = \"3s\"\nsweep_interval = \"200ms\"",
	}})
	u1, pw1 := srv.user(t, "quota")
	u2, pw2 := srv.user(t, "daily")
	c1 := xmppclient.MustLoginTo(t, srv.Server, u1, pw1, xmppclient.Options{})
	c2 := xmppclient.MustLoginTo(t, srv.Server, u2, pw2, xmppclient.Options{})

	st, err := os.Stat(filepath.Join(srv.DataDir, "upload.secret"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("upload.secret: %v, %v", st, err)
	}

	// Daily limit: 3000 + 1500 > 4000 within 24 hours (the quota, 5000, is not reached).
	mustSlot(t, requestSlot(c2, srv.Domain, "d1.bin", 3000, "application/octet-stream"))
	e := wantStanzaError(t, "daily limit", requestSlot(c2, srv.Domain, "d2.bin", 1500, "application/octet-stream"), "wait", "resource-constraint")
	retry := e.Child(nsUpload, "retry")
	if retry == nil {
		t.Fatalf("daily limit without <retry/>: %s", e)
	}
	if at, err := time.Parse(time.RFC3339, retry.Get("stamp")); err != nil || at.Before(time.Now().Add(23*time.Hour)) || at.After(time.Now().Add(25*time.Hour)) {
		t.Fatalf("daily limit retry stamp %q, want about 24h from now", retry.Get("stamp"))
	}

	// Quota: 4000 stored, 1500 more would exceed 5000; the retry is when the oldest file expires.
	body := randomBytes(t, 4000)
	s := mustSlot(t, requestSlot(c1, srv.Domain, "q1.bin", 4000, "application/octet-stream"))
	if res := putFile(t, s, body, "application/octet-stream"); res.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %s", res.Status)
	}
	e = wantStanzaError(t, "quota", requestSlot(c1, srv.Domain, "q2.bin", 1500, "application/octet-stream"), "wait", "resource-constraint")
	if r := e.Child(nsUpload, "retry"); r == nil {
		t.Fatalf("quota without <retry/>: %s", e)
	} else if at, err := time.Parse(time.RFC3339, r.Get("stamp")); err != nil || at.After(time.Now().Add(10*time.Second)) {
		t.Fatalf("quota retry stamp %q, want within expire_after", r.Get("stamp"))
	}
	id := strings.Split(s.get[strings.Index(s.get, "/upload/")+len("/upload/"):], "/")[0]
	onDisk := filepath.Join(srv.DataDir, "upload", id)
	if _, err := os.Stat(onDisk); err != nil {
		t.Fatalf("the file is not at %s: %v", onDisk, err)
	}
	// Expiry: after 3 s the file is gone (GET 404, not on disk) and the quota is free again.
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, _ := httpDo(t, http.MethodGet, s.get, nil)
		_, statErr := os.Stat(onDisk)
		if res.StatusCode == http.StatusNotFound && os.IsNotExist(statErr) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("file not expired: GET %s, stat %v", res.Status, statErr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	mustSlot(t, requestSlot(c1, srv.Domain, "q3.bin", 3000, "application/octet-stream"))
	metrics := scrape(t, srv.DebugAddr)
	for _, m := range []string{"xmppd_upload_slots_total 3", "xmppd_upload_bytes_stored_total 4000", "xmppd_upload_files_expired_total", `xmppd_limit_hits_total{limit="upload_quota_per_user"} 1`, `xmppd_limit_hits_total{limit="upload_daily_limit"} 1`} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics has no %q", m)
		}
	}
}

// scrape returns the /metrics text of the debug listener.
func scrape(t testing.TB, debugAddr string) string {
	t.Helper()
	res, b := httpDo(t, http.MethodGet, "http://"+debugAddr+"/metrics", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", res.Status)
	}
	return string(b)
}
