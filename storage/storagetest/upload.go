package storagetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/xmppd/xmppd/storage"
)

func uploadSlot(id, owner string, size int64, created time.Time) storage.UploadSlot {
	return storage.UploadSlot{ID: id, Service: "upload.example.org", Owner: owner, Filename: "très cool.jpg",
		ContentType: "image/jpeg", Size: size, Created: created, SlotExpires: created.Add(5 * time.Minute)}
}

func testUploadSlots(t *testing.T, s storage.Store) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	a := uploadSlot("a1", "alice@example.org", 100, t0)
	must(t, s.CreateUploadSlot(ctx(t), a))
	wantErr(t, s.CreateUploadSlot(ctx(t), a), storage.ErrExists)
	wantErr(t, s.CreateUploadSlot(ctx(t), uploadSlot("", "alice@example.org", 1, t0)), storage.ErrInvalid)
	wantErr(t, s.CreateUploadSlot(ctx(t), uploadSlot("x", "nobody", 1, t0)), storage.ErrInvalid)
	got, err := s.UploadSlot(ctx(t), "a1")
	must(t, err)
	if got != a {
		t.Fatalf("UploadSlot = %+v, want %+v", got, a)
	}
	_, err = s.UploadSlot(ctx(t), "nope")
	wantErr(t, err, storage.ErrNotFound)

	up := t0.Add(time.Minute)
	must(t, s.MarkUploaded(ctx(t), "a1", up))
	wantErr(t, s.MarkUploaded(ctx(t), "a1", up), storage.ErrExists)
	wantErr(t, s.MarkUploaded(ctx(t), "nope", up), storage.ErrNotFound)
	got, err = s.UploadSlot(ctx(t), "a1")
	must(t, err)
	if !got.Uploaded.Equal(up) || got.Uploaded.Location() != time.UTC {
		t.Fatalf("Uploaded = %v, want %v in UTC", got.Uploaded, up)
	}

	must(t, s.DeleteUpload(ctx(t), "a1"))
	must(t, s.DeleteUpload(ctx(t), "a1")) // absent: no error
	_, err = s.UploadSlot(ctx(t), "a1")
	wantErr(t, err, storage.ErrNotFound)
}

func testUploadUsage(t *testing.T, s storage.Store) {
	t0 := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	u, err := s.UploadUsage(ctx(t), "upload.example.org", "alice@example.org", t0)
	must(t, err)
	if u != (storage.UploadUsage{}) {
		t.Fatalf("usage of nobody = %+v", u)
	}
	for i, sz := range []int64{10, 20, 40} {
		must(t, s.CreateUploadSlot(ctx(t), uploadSlot(fmt.Sprint("s", i), "alice@example.org", sz, t0.Add(time.Duration(i)*time.Hour))))
	}
	must(t, s.CreateUploadSlot(ctx(t), uploadSlot("bob", "bob@example.org", 1000, t0)))
	other := uploadSlot("other", "alice@example.org", 5000, t0)
	other.Service = "upload.other.org"
	must(t, s.CreateUploadSlot(ctx(t), other))
	must(t, s.MarkUploaded(ctx(t), "s0", t0.Add(time.Minute)))

	u, err = s.UploadUsage(ctx(t), "upload.example.org", "alice@example.org", t0.Add(time.Hour))
	must(t, err)
	want := storage.UploadUsage{Total: 70, Oldest: t0, Recent: 60, OldestRecent: t0.Add(time.Hour)}
	if u != want {
		t.Fatalf("UploadUsage = %+v, want %+v", u, want)
	}
	u, err = s.UploadUsage(ctx(t), "upload.example.org", "alice@example.org", t0.Add(5*time.Hour))
	must(t, err)
	if u.Total != 70 || u.Recent != 0 || !u.OldestRecent.IsZero() {
		t.Fatalf("UploadUsage with nothing recent = %+v", u)
	}
}

func testUploadExpired(t *testing.T, s storage.Store) {
	t0 := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	// f1, f2: files uploaded at t0+1m and t0+2h; p: a slot never used (its PUT URL expires at t0+5m); q: a slot
	// still valid.
	must(t, s.CreateUploadSlot(ctx(t), uploadSlot("f1", "alice@example.org", 1, t0)))
	must(t, s.MarkUploaded(ctx(t), "f1", t0.Add(time.Minute)))
	must(t, s.CreateUploadSlot(ctx(t), uploadSlot("f2", "alice@example.org", 1, t0.Add(2*time.Hour))))
	must(t, s.MarkUploaded(ctx(t), "f2", t0.Add(2*time.Hour)))
	must(t, s.CreateUploadSlot(ctx(t), uploadSlot("p", "bob@example.org", 1, t0.Add(time.Second))))
	must(t, s.CreateUploadSlot(ctx(t), uploadSlot("q", "bob@example.org", 1, t0.Add(3*time.Hour))))
	other := uploadSlot("o", "alice@example.org", 1, t0)
	other.Service = "upload.other.org"
	must(t, s.CreateUploadSlot(ctx(t), other))

	ids := func(l []storage.UploadSlot) []string {
		var out []string
		for _, x := range l {
			out = append(out, x.ID)
		}
		return out
	}
	got, err := s.ExpiredUploads(ctx(t), "upload.example.org", t0.Add(time.Hour), t0.Add(time.Hour), 10)
	must(t, err)
	if fmt.Sprint(ids(got)) != "[f1 p]" {
		t.Fatalf("ExpiredUploads = %v, want [f1 p]", ids(got))
	}
	got, err = s.ExpiredUploads(ctx(t), "upload.example.org", t0.Add(time.Hour), t0.Add(time.Hour), 1)
	must(t, err)
	if fmt.Sprint(ids(got)) != "[f1]" {
		t.Fatalf("ExpiredUploads limit 1 = %v, want [f1]", ids(got))
	}
	got, err = s.ExpiredUploads(ctx(t), "upload.example.org", t0.Add(10*time.Hour), t0.Add(time.Minute), 10)
	must(t, err)
	if fmt.Sprint(ids(got)) != "[f1 f2]" {
		t.Fatalf("ExpiredUploads (files only) = %v, want [f1 f2]", ids(got))
	}
}
