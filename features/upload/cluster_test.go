package upload

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/features/upload/uploadhttp"
)

// In a cluster the service needs a shared directory and key: without either it says what is missing.
func TestInCluster(t *testing.T) {
	for _, c := range []struct {
		dir, secret string
		missing     []string
	}{
		{"", "", []string{"upload.dir", "upload.secret"}},
		{"/srv/shared/upload", "", []string{"upload.secret"}},
		{"", "k", []string{"upload.dir"}},
		{"/srv/shared/upload", "k", nil},
	} {
		cfg := config.Default()
		cfg.Upload.Dir, cfg.Upload.Secret = c.dir, c.secret
		err := inCluster(&cfg)
		if (err == nil) != (c.missing == nil) {
			t.Fatalf("dir %q secret %q: %v", c.dir, c.secret, err)
		}
		for _, m := range c.missing {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("dir %q secret %q: %v does not name %s", c.dir, c.secret, err, m)
			}
		}
	}
}

// The HTTP side's questions and the answers cross nodes as the same values; a question for what is not a file
// id is refused where it arrives.
func TestWire(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	for _, m := range []any{
		uploadhttp.Begin{ID: id, ContentType: "image/png", Token: "t", Size: 7},
		uploadhttp.Verdict{Temp: "/srv/up/tmp/" + id + ".1.part"},
		uploadhttp.Verdict{Status: 403},
		uploadhttp.Finish{ID: id, Temp: "/srv/up/tmp/" + id + ".1.part", OK: true},
		uploadhttp.Finished{Status: 201},
		uploadhttp.Lookup{ID: id},
		uploadhttp.File{Path: "/srv/up/" + id, ContentType: "image/png", Name: "a.png", Size: 7, Modified: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
	} {
		name, data, ok := Feature.EncodeWire(m)
		if !ok {
			t.Fatalf("%T does not cross", m)
		}
		back, err := Feature.DecodeWire(name, data)
		if err != nil || back != m {
			t.Fatalf("%T: %#v, %v", m, back, err)
		}
	}
	for _, m := range []any{uploadhttp.Begin{ID: "../etc"}, uploadhttp.Finish{ID: ""}, uploadhttp.Lookup{ID: "x"}} {
		name, data, _ := Feature.EncodeWire(m)
		if _, err := Feature.DecodeWire(name, data); err == nil {
			t.Errorf("%#v was taken", m)
		}
	}
	if _, _, ok := Feature.EncodeWire(sweep{}); ok {
		t.Error("the sweep of one node's timer crosses (every node would sweep at the home)")
	}
}

// A fresh service actor in a cluster (the service moved to this node) leaves the PUTs another node is writing
// into the shared directory alone, and deletes only what is older than any PUT may take; on one node it deletes
// everything there.
func TestClearTmp(t *testing.T) {
	for _, cluster := range []bool{true, false} {
		dir := t.TempDir()
		tmp := filepath.Join(dir, "tmp")
		if err := os.MkdirAll(tmp, 0o700); err != nil {
			t.Fatal(err)
		}
		fresh, stale := filepath.Join(tmp, "a.1.part"), filepath.Join(tmp, "b.2.part")
		for _, p := range []string{fresh, stale} {
			if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		old := time.Now().Add(-putWindow - time.Hour)
		if err := os.Chtimes(stale, old, old); err != nil {
			t.Fatal(err)
		}
		cfg := config.Default()
		cfg.Cluster.Enabled = cluster
		s := &service{cfg: &cfg, dir: dir}
		s.clearTmp(time.Now())
		_, errFresh := os.Stat(fresh)
		_, errStale := os.Stat(stale)
		if !os.IsNotExist(errStale) {
			t.Errorf("cluster %v: the stale part is still there", cluster)
		}
		if cluster && errFresh != nil {
			t.Errorf("cluster: a PUT in progress was deleted: %v", errFresh)
		}
		if !cluster && !os.IsNotExist(errFresh) {
			t.Errorf("one node: a part left by a crash is still there")
		}
	}
}
