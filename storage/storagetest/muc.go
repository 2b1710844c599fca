package storagetest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/xmppd/xmppd/storage"
)

// Two MUC services sharing a room name on purpose.
const (
	mucSvc   = "conference.example.org"
	mucOther = "chat.example.net"
)

func testMUCRooms(t *testing.T, s storage.Store) {
	list, err := s.MUCRooms(ctx(t), mucSvc)
	must(t, err)
	if list == nil || len(list) != 0 {
		t.Fatalf("empty service: %#v, want an empty non-nil list", list)
	}
	if _, err := s.MUCRoom(ctx(t), mucSvc, "coven"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("missing room: %v, want ErrNotFound", err)
	}
	must(t, s.PutMUCRoom(ctx(t), mucSvc, storage.MUCRoom{Room: "coven", Config: `{"v":1}`, Created: stamp}))
	must(t, s.PutMUCRoom(ctx(t), mucSvc, storage.MUCRoom{Room: "アニメ", Config: `{"v":"u"}`, Created: stamp}))
	must(t, s.PutMUCRoom(ctx(t), mucSvc, storage.MUCRoom{Room: "attic", Config: `{}`, Created: stamp}))
	must(t, s.PutMUCRoom(ctx(t), mucOther, storage.MUCRoom{Room: "coven", Config: `other`, Created: stamp}))
	// Replacing keeps Created.
	must(t, s.PutMUCRoom(ctx(t), mucSvc, storage.MUCRoom{Room: "coven", Config: `{"v":2}`, Created: stamp.Add(time.Hour)}))
	r, err := s.MUCRoom(ctx(t), mucSvc, "coven")
	must(t, err)
	if r.Config != `{"v":2}` || !r.Created.Equal(stamp) || r.Created.Location() != time.UTC {
		t.Fatalf("room after replace: %+v", r)
	}
	list, err = s.MUCRooms(ctx(t), mucSvc)
	must(t, err)
	var names []string
	for _, r := range list {
		names = append(names, r.Room)
	}
	if !reflect.DeepEqual(names, []string{"attic", "coven", "アニメ"}) {
		t.Fatalf("rooms = %v, want attic, coven, アニメ (bytewise order, this service only)", names)
	}
	must(t, s.DeleteMUCRoom(ctx(t), mucSvc, "coven"))
	must(t, s.DeleteMUCRoom(ctx(t), mucSvc, "coven")) // absent: no error
	if _, err := s.MUCRoom(ctx(t), mucSvc, "coven"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleted room: %v", err)
	}
	if r, err := s.MUCRoom(ctx(t), mucOther, "coven"); err != nil || r.Config != "other" {
		t.Fatalf("the other service's room: %+v %v", r, err)
	}
}

func testMUCAffiliations(t *testing.T, s storage.Store) {
	if err := s.PutMUCAffiliation(ctx(t), mucSvc, "coven", storage.MUCAffiliation{JID: "a@x", Affiliation: "owner"}); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("affiliation in a missing room: %v, want ErrNotFound", err)
	}
	must(t, s.PutMUCRoom(ctx(t), mucSvc, storage.MUCRoom{Room: "coven", Config: `{}`, Created: stamp}))
	must(t, s.PutMUCRoom(ctx(t), mucOther, storage.MUCRoom{Room: "coven", Config: `{}`, Created: stamp}))
	put := func(svc string, a storage.MUCAffiliation) {
		t.Helper()
		must(t, s.PutMUCAffiliation(ctx(t), svc, "coven", a))
	}
	put(mucSvc, storage.MUCAffiliation{JID: "crone@example.org", Affiliation: "owner"})
	put(mucSvc, storage.MUCAffiliation{JID: "hag@example.org", Affiliation: "member", Nick: "thirdwitch"})
	put(mucSvc, storage.MUCAffiliation{JID: "bad@example.org", Affiliation: "outcast", Reason: "spam"})
	put(mucSvc, storage.MUCAffiliation{JID: "nick@example.org", Affiliation: "none", Nick: "only-a-nick"})
	put(mucOther, storage.MUCAffiliation{JID: "crone@example.org", Affiliation: "member"})
	// Replace.
	put(mucSvc, storage.MUCAffiliation{JID: "crone@example.org", Affiliation: "admin"})
	got, err := s.MUCAffiliations(ctx(t), mucSvc, "coven")
	must(t, err)
	want := []storage.MUCAffiliation{
		{JID: "bad@example.org", Affiliation: "outcast", Reason: "spam"},
		{JID: "crone@example.org", Affiliation: "admin"},
		{JID: "hag@example.org", Affiliation: "member", Nick: "thirdwitch"},
		{JID: "nick@example.org", Affiliation: "none", Nick: "only-a-nick"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("affiliations = %+v\nwant %+v", got, want)
	}
	// none without a nick deletes; "" too.
	put(mucSvc, storage.MUCAffiliation{JID: "bad@example.org", Affiliation: "none"})
	put(mucSvc, storage.MUCAffiliation{JID: "hag@example.org"})
	got, err = s.MUCAffiliations(ctx(t), mucSvc, "coven")
	must(t, err)
	if len(got) != 2 || got[0].JID != "crone@example.org" || got[1].JID != "nick@example.org" {
		t.Fatalf("after removals: %+v", got)
	}
	other, err := s.MUCAffiliations(ctx(t), mucOther, "coven")
	must(t, err)
	if len(other) != 1 || other[0].Affiliation != "member" {
		t.Fatalf("the other service's affiliations: %+v", other)
	}
	empty, err := s.MUCAffiliations(ctx(t), mucSvc, "nowhere")
	must(t, err)
	if empty == nil || len(empty) != 0 {
		t.Fatalf("affiliations of a missing room: %#v, want empty non-nil", empty)
	}
}

func testMUCDeleteCascade(t *testing.T, s storage.Store) {
	must(t, s.PutMUCRoom(ctx(t), mucSvc, storage.MUCRoom{Room: "coven", Config: `{}`, Created: stamp}))
	must(t, s.PutMUCAffiliation(ctx(t), mucSvc, "coven", storage.MUCAffiliation{JID: "crone@example.org", Affiliation: "owner"}))
	must(t, s.DeleteMUCRoom(ctx(t), mucSvc, "coven"))
	must(t, s.PutMUCRoom(ctx(t), mucSvc, storage.MUCRoom{Room: "coven", Config: `{}`, Created: stamp}))
	got, err := s.MUCAffiliations(ctx(t), mucSvc, "coven")
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("a room created again has the old affiliations: %+v", got)
	}
}
