package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/xmppd/xmppd/storage"
)

const uploadCols = `id, service, owner, filename, content_type, size, created, slot_expires, uploaded`

func scanUpload(sc interface{ Scan(...any) error }) (storage.UploadSlot, error) {
	var s storage.UploadSlot
	var up *time.Time // NULL until the PUT completed
	err := sc.Scan(&s.ID, &s.Service, &s.Owner, &s.Filename, &s.ContentType, &s.Size, &s.Created, &s.SlotExpires, &up)
	s.Created, s.SlotExpires = utc(s.Created), utc(s.SlotExpires)
	if up != nil {
		s.Uploaded = utc(*up)
	}
	return s, err
}

// CreateUploadSlot implements storage.Uploads.
func (db *DB) CreateUploadSlot(ctx context.Context, s storage.UploadSlot) error {
	if s.ID == "" || s.Service == "" || !strings.Contains(s.Owner, "@") || s.Size < 0 {
		return fmt.Errorf("%w: upload slot %q", storage.ErrInvalid, s.ID)
	}
	tag, err := db.pool.Exec(ctx, `INSERT INTO upload_slots (`+uploadCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)
		ON CONFLICT (id) DO NOTHING`,
		s.ID, s.Service, s.Owner, s.Filename, s.ContentType, s.Size, s.Created, s.SlotExpires)
	if err != nil {
		return wrap("create upload slot", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: upload slot %s", storage.ErrExists, s.ID)
	}
	return nil
}

// UploadSlot implements storage.Uploads.
func (db *DB) UploadSlot(ctx context.Context, id string) (storage.UploadSlot, error) {
	s, err := scanUpload(db.pool.QueryRow(ctx, `SELECT `+uploadCols+` FROM upload_slots WHERE id = $1`, id))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return storage.UploadSlot{}, fmt.Errorf("%w: upload slot %s", storage.ErrNotFound, id)
	case err != nil:
		return storage.UploadSlot{}, wrap("upload slot", err)
	}
	return s, nil
}

// MarkUploaded implements storage.Uploads. "uploaded IS NULL" in the UPDATE makes the check and the write
// one atomic step: of two concurrent marks one updates, the other finds the row already uploaded.
func (db *DB) MarkUploaded(ctx context.Context, id string, at time.Time) error {
	tag, err := db.pool.Exec(ctx, `UPDATE upload_slots SET uploaded = $1 WHERE id = $2 AND uploaded IS NULL`, at, id)
	if err != nil {
		return wrap("mark uploaded", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	if _, err := db.UploadSlot(ctx, id); err != nil {
		return err
	}
	return fmt.Errorf("%w: upload %s was already uploaded", storage.ErrExists, id)
}

// UploadUsage implements storage.Uploads.
func (db *DB) UploadUsage(ctx context.Context, service, owner string, since time.Time) (storage.UploadUsage, error) {
	var u storage.UploadUsage
	var oldest, oldestRecent *time.Time
	err := db.pool.QueryRow(ctx, `SELECT
			COALESCE(SUM(size), 0)::bigint, MIN(created),
			COALESCE(SUM(CASE WHEN created >= $1 THEN size ELSE 0 END), 0)::bigint,
			MIN(CASE WHEN created >= $1 THEN created END)
		FROM upload_slots WHERE service = $2 AND owner = $3`, since, service, owner).
		Scan(&u.Total, &oldest, &u.Recent, &oldestRecent)
	if err != nil {
		return storage.UploadUsage{}, wrap("upload usage", err)
	}
	if oldest != nil {
		u.Oldest = utc(*oldest)
	}
	if oldestRecent != nil {
		u.OldestRecent = utc(*oldestRecent)
	}
	return u, nil
}

// ExpiredUploads implements storage.Uploads.
func (db *DB) ExpiredUploads(ctx context.Context, service string, filesBefore, slotsBefore time.Time, limit int) ([]storage.UploadSlot, error) {
	var lim *int // a negative limit is none, as in SQLite; LIMIT NULL is none in PostgreSQL
	if limit >= 0 {
		lim = &limit
	}
	rows, err := db.pool.Query(ctx, `SELECT `+uploadCols+` FROM upload_slots
		WHERE service = $1 AND ((uploaded IS NOT NULL AND uploaded < $2) OR (uploaded IS NULL AND slot_expires < $3))
		ORDER BY created, id LIMIT $4`, service, filesBefore, slotsBefore, lim)
	if err != nil {
		return nil, wrap("expired uploads", err)
	}
	defer rows.Close()
	var out []storage.UploadSlot
	for rows.Next() {
		s, err := scanUpload(rows)
		if err != nil {
			return nil, wrap("expired uploads", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("expired uploads", err)
	}
	return out, nil
}

// DeleteUpload implements storage.Uploads.
func (db *DB) DeleteUpload(ctx context.Context, id string) error {
	_, err := db.pool.Exec(ctx, `DELETE FROM upload_slots WHERE id = $1`, id)
	return wrap("delete upload", err)
}
