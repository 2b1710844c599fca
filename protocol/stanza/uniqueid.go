package stanza

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// idEncoding is base64 with its alphabet in ASCII order, so that ids sort as their bytes do.
var idEncoding = base64.NewEncoding("-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz").WithPadding(base64.NoPadding)

// UniqueID is a fresh 128-bit id, 22 characters: the time in microseconds (big-endian) then 64 random bits, so
// it is never handed out twice (XEP-0313 §7.2 for an archive id; a cluster's idempotency key, Routed.Once) and
// cannot be guessed, and later ids sort after earlier ones. That order is what makes an archive append cheap: the
// storage's id index leads with the id (storage/sqlite's and storage/postgres's migration 8), so every user's new
// ids land at its end, the page written last, where a random id
// would dirty another leaf page of the index for nearly every message (each one written to the WAL at the
// commit, then again at the checkpoint). The time it reveals is the archive's stamp, which a result carries
// anyway.
func UniqueID() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixMicro()))
	_, _ = rand.Read(b[8:])
	return idEncoding.EncodeToString(b[:])
}
