package upload

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/feature"
	"github.com/xmppd/xmppd/features/upload/uploadhttp"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/protocol/upload"
	"github.com/xmppd/xmppd/protocol/xmlstream"
	"github.com/xmppd/xmppd/storage"
)

var bg = context.Background()

// putWindow bounds how long a PUT may stay in progress before its slot counts as free again (a Finish that
// never came: the HTTP side's question timed out, or its connection died without the handler finishing).
const putWindow = 6 * time.Hour

// sweepBatch is how many expired uploads one storage query returns.
const sweepBatch = 100

// service is the upload service part.
type service struct {
	h   feature.ServiceHost
	cfg *config.Config
	// secret signs PUT URLs; nil when it could not be read or made (slots are refused).
	secret []byte
	// base is the URL prefix of the PUT and GET URLs ("" until the listener is bound, when base_url is unset).
	base string
	// dir holds the files (<id>), dir/tmp the PUTs in progress.
	dir string
	// putting are the ids with a PUT in progress and until when that holds.
	putting map[string]time.Time
	seq     uint64
}

func newService(h feature.ServiceHost) *service {
	cfg := h.Server().Config()
	s := &service{h: h, cfg: cfg, dir: cfg.UploadDir(), base: baseURL(cfg, ""), putting: map[string]time.Time{}}
	s.clearTmp(time.Now())
	if err := os.MkdirAll(filepath.Join(s.dir, "tmp"), 0o700); err != nil {
		h.Log().Error().Err(err).Str("dir", s.dir).Msg("upload: cannot create the upload directory")
		return s
	}
	sec, err := loadSecret(cfg)
	if err != nil {
		h.Log().Error().Err(err).Msg("upload: no signing key; slots are refused")
		return s
	}
	s.secret = sec
	return s
}

// clearTmp deletes what PUTs left in dir/tmp. On one node a fresh actor has no PUT in progress: everything there
// is from a crash. In a cluster the directory is shared and this actor may be the new home of a service that
// moved while PUTs the old home allowed are still being written: only what is older than putWindow goes.
func (s *service) clearTmp(now time.Time) {
	tmp := filepath.Join(s.dir, "tmp")
	if !s.cfg.Cluster.Enabled {
		_ = os.RemoveAll(tmp)
		return
	}
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) > putWindow {
			_ = os.Remove(filepath.Join(tmp, e.Name()))
		}
	}
}

// loadSecret is [upload] secret, or the key kept in <data_dir>/upload.secret, made at the first start.
func loadSecret(cfg *config.Config) ([]byte, error) {
	if cfg.Upload.Secret != "" {
		return []byte(cfg.Upload.Secret), nil
	}
	path := filepath.Join(cfg.DataDir, "upload.secret")
	if b, err := os.ReadFile(path); err == nil {
		sec, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(sec) < 16 {
			return nil, errors.New(path + " does not hold a hex key of at least 16 bytes")
		}
		return sec, nil
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	sec := make([]byte, 32)
	if _, err := rand.Read(sec); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	_, err = f.WriteString(hex.EncodeToString(sec) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return sec, err
}

func (s *service) name() string { return s.h.JID().String() }

// path is where the file id is kept: built from the id alone (ids are checked by upload.ValidID first).
func (s *service) path(id string) string { return filepath.Join(s.dir, id) }

// Handle takes the outside's messages (the bound listener, the sweep timer).
func (s *service) Handle(msg any) {
	switch m := msg.(type) {
	case listening:
		if s.cfg.Upload.BaseURL == "" {
			s.base = baseURL(s.cfg, m.addr)
		}
	case sweep:
		if s.cfg.Upload.BaseURL == "" && m.addr != "" {
			s.base = baseURL(s.cfg, m.addr)
		}
		s.sweep(time.Now())
	}
}

// Answer answers the HTTP side's questions.
func (s *service) Answer(q any) any {
	switch m := q.(type) {
	case uploadhttp.Begin:
		return s.begin(m, time.Now())
	case uploadhttp.Finish:
		return s.finish(m, time.Now())
	case uploadhttp.Lookup:
		return s.lookup(m.ID, time.Now())
	}
	return nil
}

// Stanza (feature.ServiceStanza): slot requests; disco#items (no items); everything else is unsupported.
func (s *service) Stanza(st *stanza.Routed) {
	q := feature.ServiceQuery(s.h.Bounce, st)
	switch {
	case q == nil:
	case st.To.Local() != "" || st.To.Resource() != "":
		s.h.Bounce(st, stanza.NewError(stanza.ServiceUnavailable))
	case q.Name == xmlstream.Name{Space: stanza.NSDiscoIt, Local: "query"} && st.Head.Type == "get" && q.Attr("node") == "":
		s.h.Route(feature.Answered(st, "<query xmlns='"+stanza.NSDiscoIt+"'/>"))
	case q.Name == xmlstream.Name{Space: upload.NS, Local: "request"} && st.Head.Type == "get":
		s.slot(st, q, time.Now())
	default:
		s.h.Bounce(st, stanza.NewError(stanza.ServiceUnavailable))
	}
}

// stamp is an XEP-0082 DateTime.
func stamp(t time.Time) string { return t.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05Z") }

// slot answers a slot request (XEP-0363 §4).
func (s *service) slot(st *stanza.Routed, req *xmlstream.Node, now time.Time) {
	cfg := &s.cfg.Upload
	if !s.cfg.Serves(st.From.Domain()) {
		// Quotas are per account: only the server's own users may upload.
		s.h.Bounce(st, stanza.NewError(stanza.NotAllowed).WithText("Only local users may upload files"))
		return
	}
	size, err := strconv.ParseInt(req.Attr("size"), 10, 64)
	if err != nil || size < 1 {
		s.h.Bounce(st, stanza.NewError(stanza.BadRequest).WithText("size must be a positive number of bytes"))
		return
	}
	name, err := upload.SanitizeFilename(req.Attr("filename"))
	if err != nil {
		s.h.Bounce(st, stanza.NewError(stanza.NotAcceptable).WithText("The file name is not acceptable"))
		return
	}
	if size > cfg.MaxFileSize {
		s.h.Server().LimitHit(LimitFileSize)
		e := stanza.NewError(stanza.NotAcceptable).WithText("File too large. The maximum file size is " +
			strconv.FormatInt(cfg.MaxFileSize, 10) + " bytes")
		e.Extra = "<file-too-large xmlns='" + upload.NS + "'><max-file-size>" + strconv.FormatInt(cfg.MaxFileSize, 10) + "</max-file-size></file-too-large>"
		s.h.Bounce(st, e)
		return
	}
	if s.secret == nil || s.base == "" {
		s.h.Bounce(st, stanza.NewError(stanza.InternalServerError))
		return
	}
	owner := st.From.Bare().String()
	store := s.h.Server().Store()
	use, err := store.UploadUsage(bg, s.name(), owner, now.Add(-24*time.Hour))
	if err != nil {
		s.internal(st, err, "usage")
		return
	}
	if cfg.QuotaPerUser > 0 && use.Total+size > cfg.QuotaPerUser {
		s.h.Server().LimitHit(LimitQuota)
		// The quota frees up as files expire: the oldest one goes first.
		var retry time.Time
		if s.cfg.Upload.ExpireAfter.Duration > 0 && !use.Oldest.IsZero() && size <= cfg.QuotaPerUser {
			retry = use.Oldest.Add(s.cfg.Upload.ExpireAfter.Duration)
		}
		s.h.Bounce(st, constraint("Quota reached: you may keep "+strconv.FormatInt(cfg.QuotaPerUser, 10)+" bytes of files", retry))
		return
	}
	if cfg.DailyLimit > 0 && use.Recent+size > cfg.DailyLimit {
		s.h.Server().LimitHit(LimitDaily)
		var retry time.Time
		if !use.OldestRecent.IsZero() && size <= cfg.DailyLimit {
			retry = use.OldestRecent.Add(24 * time.Hour)
		}
		s.h.Bounce(st, constraint("Daily limit reached: you may upload "+strconv.FormatInt(cfg.DailyLimit, 10)+" bytes in 24 hours", retry))
		return
	}
	var raw [upload.IDLen / 2]byte
	if _, err := rand.Read(raw[:]); err != nil {
		s.internal(st, err, "id")
		return
	}
	ct := upload.SanitizeContentType(req.Attr("content-type"))
	sl := storage.UploadSlot{ID: hex.EncodeToString(raw[:]), Service: s.name(), Owner: owner, Filename: name,
		ContentType: ct, Size: size, Created: now, SlotExpires: now.Add(cfg.SlotLifetime.Duration)}
	if err := store.CreateUploadSlot(bg, sl); err != nil {
		s.internal(st, err, "create slot")
		return
	}
	tok := upload.Sign(s.secret, upload.Claims{ID: sl.ID, Size: size, ContentType: ct, Expires: sl.SlotExpires})
	u := s.base + "/" + sl.ID + "/" + url.PathEscape(name)
	b := []byte("<slot xmlns='" + upload.NS + "'><put url='")
	b = xmlstream.AppendEscapedAttr(b, u)
	b = append(b, "'><header name='Authorization'>Bearer "...)
	b = xmlstream.AppendEscapedText(b, tok)
	b = append(b, "</header></put><get url='"...)
	b = xmlstream.AppendEscapedAttr(b, u)
	b = append(b, "'/></slot>"...)
	s.h.Server().Count(CounterSlots, 1)
	s.h.Log().Debug().Str("id", sl.ID).Str("owner", owner).Int64("size", size).Msg("upload: slot")
	s.h.Route(feature.Answered(st, string(b)))
}

// constraint is XEP-0363 §4's quota error: resource-constraint (wait), with <retry stamp/> when known.
func constraint(text string, retry time.Time) stanza.Error {
	e := stanza.NewError(stanza.ResourceConstraint).WithText(text)
	if !retry.IsZero() {
		e.Extra = "<retry xmlns='" + upload.NS + "' stamp='" + stamp(retry) + "'/>"
	}
	return e
}

func (s *service) internal(st *stanza.Routed, err error, what string) {
	s.h.Log().Error().Err(err).Msg("upload: " + what)
	s.h.Bounce(st, stanza.NewError(stanza.InternalServerError))
}

// begin decides whether a PUT may write (uploadhttp.Begin).
func (s *service) begin(m uploadhttp.Begin, now time.Time) uploadhttp.Verdict {
	if !upload.ValidID(m.ID) || s.secret == nil {
		return uploadhttp.Verdict{Status: http.StatusNotFound}
	}
	sl, err := s.h.Server().Store().UploadSlot(bg, m.ID)
	switch {
	case errors.Is(err, storage.ErrNotFound) || (err == nil && sl.Service != s.name()):
		return uploadhttp.Verdict{Status: http.StatusNotFound}
	case err != nil:
		s.h.Log().Error().Err(err).Msg("upload: slot")
		return uploadhttp.Verdict{Status: http.StatusInternalServerError}
	case !sl.Uploaded.IsZero():
		return uploadhttp.Verdict{Status: http.StatusConflict} // a file never changes
	case m.Size > sl.Size:
		return uploadhttp.Verdict{Status: http.StatusRequestEntityTooLarge}
	case m.Size != sl.Size:
		return uploadhttp.Verdict{Status: http.StatusBadRequest}
	case m.ContentType != sl.ContentType:
		return uploadhttp.Verdict{Status: http.StatusUnsupportedMediaType}
	}
	if err := upload.Verify(s.secret, m.ID, m.Size, m.ContentType, m.Token, now); err != nil {
		return uploadhttp.Verdict{Status: http.StatusForbidden}
	}
	if until, busy := s.putting[m.ID]; busy && now.Before(until) {
		return uploadhttp.Verdict{Status: http.StatusConflict}
	}
	s.putting[m.ID] = now.Add(putWindow)
	s.seq++
	return uploadhttp.Verdict{Temp: filepath.Join(s.dir, "tmp", m.ID+"."+strconv.FormatUint(s.seq, 10)+".part")}
}

// finish makes a received file the file of its slot (uploadhttp.Finish).
func (s *service) finish(m uploadhttp.Finish, now time.Time) uploadhttp.Finished {
	_, was := s.putting[m.ID]
	delete(s.putting, m.ID)
	inTmp := filepath.Dir(m.Temp) == filepath.Join(s.dir, "tmp")
	if !m.OK || !was || !inTmp || !upload.ValidID(m.ID) {
		if inTmp {
			_ = os.Remove(m.Temp)
		}
		return uploadhttp.Finished{Status: http.StatusBadRequest}
	}
	if err := os.Rename(m.Temp, s.path(m.ID)); err != nil {
		s.h.Log().Error().Err(err).Msg("upload: rename")
		_ = os.Remove(m.Temp)
		return uploadhttp.Finished{Status: http.StatusInternalServerError}
	}
	if err := s.h.Server().Store().MarkUploaded(bg, m.ID, now); err != nil {
		s.h.Log().Error().Err(err).Str("id", m.ID).Msg("upload: mark uploaded")
		_ = os.Remove(s.path(m.ID))
		return uploadhttp.Finished{Status: http.StatusInternalServerError}
	}
	s.h.Log().Debug().Str("id", m.ID).Msg("upload: stored")
	return uploadhttp.Finished{Status: http.StatusCreated}
}

// lookup is the file of id, if it was uploaded and has not expired.
func (s *service) lookup(id string, now time.Time) uploadhttp.File {
	if !upload.ValidID(id) {
		return uploadhttp.File{}
	}
	sl, err := s.h.Server().Store().UploadSlot(bg, id)
	if err != nil || sl.Service != s.name() || sl.Uploaded.IsZero() {
		return uploadhttp.File{}
	}
	if exp := s.cfg.Upload.ExpireAfter.Duration; exp > 0 && !now.Before(sl.Uploaded.Add(exp)) {
		return uploadhttp.File{} // expired, not swept yet
	}
	return uploadhttp.File{Path: s.path(id), ContentType: sl.ContentType, Name: sl.Filename, Size: sl.Size, Modified: sl.Uploaded}
}

// sweep deletes expired files and unused slots whose PUT URL expired.
func (s *service) sweep(now time.Time) {
	for id, until := range s.putting {
		if !now.Before(until) {
			delete(s.putting, id)
		}
	}
	filesBefore := time.Time{}
	if exp := s.cfg.Upload.ExpireAfter.Duration; exp > 0 {
		filesBefore = now.Add(-exp)
	}
	store := s.h.Server().Store()
	deleted := 0
	for {
		list, err := store.ExpiredUploads(bg, s.name(), filesBefore, now, sweepBatch)
		if err != nil {
			s.h.Log().Error().Err(err).Msg("upload: sweep")
			return
		}
		n := 0
		for _, sl := range list {
			if _, busy := s.putting[sl.ID]; busy {
				continue // its PUT is under way: the slot stays until it ends
			}
			if err := os.Remove(s.path(sl.ID)); err != nil && !os.IsNotExist(err) {
				s.h.Log().Error().Err(err).Str("id", sl.ID).Msg("upload: delete file")
				continue
			}
			if err := store.DeleteUpload(bg, sl.ID); err != nil {
				s.h.Log().Error().Err(err).Msg("upload: delete slot")
				return
			}
			n++
		}
		deleted += n
		if len(list) < sweepBatch || n == 0 {
			break
		}
	}
	if deleted > 0 {
		s.h.Server().Count(CounterExpired, float64(deleted))
		s.h.Log().Debug().Int("deleted", deleted).Msg("upload: swept")
	}
}
