// Package uploadhttp is the HTTP side of the XEP-0363 upload service: an http.Handler for PUT (the upload,
// checked against the slot's signed token), GET and HEAD (the download, with Range) and OPTIONS (CORS
// preflight) under one path prefix. The public HTTP listener mounts it (mux.Handle("/upload/", h)); until
// there is one, the upload feature serves it on its own listener ([upload] listen).
//
// The handler holds no mutable state. Everything it needs to decide comes from the upload service actor, which
// owns the slots, the quota and the directory, through the service's feature.Mailbox: Begin (may this PUT
// write, and where), Finish (the bytes are in the temporary file: make it the file), Lookup (where is the file
// of this id). The request's goroutine only streams bytes between the socket and a file: a PUT's body goes
// through http.MaxBytesReader with the slot's size into a temporary file (never into memory), then the actor
// renames it into place.
//
// Paths: <prefix><id>/<name>. Only the id, 32 hex digits (protocol/upload.ValidID), says which file; the name
// is the sanitised file name, for the client's benefit. A path on disk is built by the actor from the id alone,
// so nothing in a request can name another file (no traversal), and there is no listing of anything.
package uploadhttp

import (
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/protocol/upload"
)

// Messages to the upload service part (its Answerer): each is answered with the matching reply value.
type (
	// Begin asks whether a PUT of Size bytes of ContentType (as the request says, sanitised) with Token may
	// write the file ID; answered with Verdict.
	Begin struct {
		ID, ContentType, Token string
		Size                   int64
	}
	// Verdict: Status 0 lets the PUT write to Temp; otherwise it is the HTTP status to answer.
	Verdict struct {
		Status int
		Temp   string
	}
	// Finish reports the end of a PUT that Begin allowed: OK with the whole body in Temp (synced), or not (the
	// actor removes Temp and frees the slot for another attempt); answered with Finished.
	Finish struct {
		ID, Temp string
		OK       bool
	}
	Finished struct{ Status int }
	// Lookup asks for the file ID; answered with File (Path "" when there is none).
	Lookup struct{ ID string }
	File   struct {
		Path, ContentType, Name string
		Size                    int64
		Modified                time.Time
	}
)

// Counter names (the feature's Counters).
const (
	CounterRequests = "upload_http_requests_total"
	CounterBytes    = "upload_bytes_stored_total"
)

// askTimeout bounds a question to the service actor (it answers from its mailbox; storage is the slow part).
const askTimeout = 15 * time.Second

// Handler serves the upload paths.
type Handler struct {
	prefix string
	mb     feature.Mailbox
	count  func(name string, delta float64)
	log    zerolog.Logger
}

// New is the handler of the paths under prefix ("/upload/"); count adds to the feature's counters.
func New(prefix string, mb feature.Mailbox, count func(string, float64), log zerolog.Logger) *Handler {
	return &Handler{prefix: prefix, mb: mb, count: count, log: log}
}

// cors are the headers every answer carries (XEP-0363 §8 "CORS": web clients upload and download from another
// origin). Files are public to whoever has the URL, and nothing here uses cookies, so any origin may.
func cors(h http.Header) {
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, PUT, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
	h.Set("Access-Control-Expose-Headers", "Content-Length, Content-Range, ETag")
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.count(CounterRequests, 1)
	cors(w.Header())
	rest, ok := strings.CutPrefix(r.URL.Path, h.prefix)
	id, _, _ := strings.Cut(rest, "/")
	if !ok || !upload.ValidID(id) {
		http.NotFound(w, r) // no listing, no other paths
		return
	}
	switch r.Method {
	case http.MethodOptions:
		w.Header().Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPut:
		h.put(w, r, id)
	case http.MethodGet, http.MethodHead:
		h.get(w, r, id)
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (h *Handler) put(w http.ResponseWriter, r *http.Request, id string) {
	// A refused PUT ends the connection: net/http would otherwise read (and discard) up to 256 KiB of a body
	// nobody wants before answering, waiting on a client that sends only after the answer (Expect: 100-continue
	// aside) or never.
	refuse := func(msg string, status int) {
		w.Header().Set("Connection", "close")
		http.Error(w, msg, status)
	}
	if r.ContentLength < 0 {
		refuse("Content-Length is required", http.StatusLengthRequired)
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		refuse("no upload token", http.StatusForbidden)
		return
	}
	ans, ok := h.mb.Ask(Begin{ID: id, Size: r.ContentLength, ContentType: upload.SanitizeContentType(r.Header.Get("Content-Type")), Token: tok}, askTimeout)
	v, isV := ans.(Verdict)
	if !ok || !isV {
		refuse("upload service unavailable", http.StatusServiceUnavailable)
		return
	}
	if v.Status != 0 {
		refuse(http.StatusText(v.Status), v.Status)
		return
	}
	err := receive(w, r, v.Temp)
	fin, ok := h.mb.Ask(Finish{ID: id, Temp: v.Temp, OK: err == nil}, askTimeout)
	f, isF := fin.(Finished)
	switch {
	case err != nil:
		h.log.Debug().Err(err).Str("id", id).Msg("upload: PUT failed")
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, "more bytes than the slot allows", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "upload incomplete", http.StatusBadRequest)
	case !ok || !isF:
		http.Error(w, "upload service unavailable", http.StatusServiceUnavailable)
	case f.Status != http.StatusCreated:
		http.Error(w, http.StatusText(f.Status), f.Status)
	default:
		h.count(CounterBytes, float64(r.ContentLength))
		w.WriteHeader(http.StatusCreated)
	}
}

// receive streams the body into temp (created, never existing before) and syncs it: exactly ContentLength
// bytes, through a 32 KiB buffer; a body that goes on is cut by MaxBytesReader (and the connection closed).
func receive(w http.ResponseWriter, r *http.Request, temp string) error {
	f, err := os.OpenFile(temp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	body := http.MaxBytesReader(w, r.Body, r.ContentLength)
	n, err := io.CopyBuffer(onlyWriter{f}, body, make([]byte, 32<<10))
	if err == nil && n != r.ContentLength {
		err = io.ErrUnexpectedEOF
	}
	if err == nil {
		// One more byte than announced would be a body longer than Content-Length: net/http never hands it to
		// us (it is the next request on the connection), but MaxBytesReader would say so here.
		var one [1]byte
		if m, e := body.Read(one[:]); m > 0 || (e != nil && e != io.EOF) {
			err = e
			if err == nil {
				err = io.ErrShortWrite
			}
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// onlyWriter hides *os.File's ReadFrom, so the copy uses the given buffer and nothing else.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }

func (h *Handler) get(w http.ResponseWriter, r *http.Request, id string) {
	ans, ok := h.mb.Ask(Lookup{ID: id}, askTimeout)
	file, isF := ans.(File)
	if !ok || !isF {
		http.Error(w, "upload service unavailable", http.StatusServiceUnavailable)
		return
	}
	if file.Path == "" {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(file.Path)
	if err != nil {
		http.NotFound(w, r) // expired between the lookup and now
		return
	}
	defer f.Close()
	hd := w.Header()
	hd.Set("Content-Type", file.ContentType)
	// A file never changes once uploaded: its id is a strong validator and it may be cached for good.
	hd.Set("ETag", `"`+id+`"`)
	hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	// Uploaded content is someone else's: never sniffed, never run as a page of this origin.
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	disp := "attachment"
	if t, _, _ := strings.Cut(file.ContentType, "/"); t == "image" || t == "audio" || t == "video" || strings.HasPrefix(file.ContentType, "text/plain") {
		disp = "inline"
	}
	hd.Set("Content-Disposition", disp+"; filename*=UTF-8''"+pathEscape(file.Name))
	http.ServeContent(w, r, "", file.Modified, f)
}

// pathEscape is RFC 5987 ext-value escaping: attr-char stays, everything else is %XX.
func pathEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
