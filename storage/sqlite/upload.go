package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/xmppd/xmppd/storage"
)

// uploadMicro is a time as stored: the zero time is 0 (not uploaded yet).
func uploadMicro(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return micro(t)
}

func uploadTime(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return fromMicro(us)
}

const uploadCols = `id, service, owner, filename, content_type, size, created, slot_expires, uploaded`

func scanUpload(sc interface{ Scan(...any) error }) (storage.UploadSlot, error) {
	var s storage.UploadSlot
	var created, exp, up int64
	err := sc.Scan(&s.ID, &s.Service, &s.Owner, &s.Filename, &s.ContentType, &s.Size, &created, &exp, &up)
	s.Created, s.SlotExpires, s.Uploaded = fromMicro(created), fromMicro(exp), uploadTime(up)
	return s, err
}

// CreateUploadSlot implements storage.Uploads.
func (db *DB) CreateUploadSlot(ctx context.Context, s storage.UploadSlot) error {
	if s.ID == "" || s.Service == "" || !strings.Contains(s.Owner, "@") || s.Size < 0 {
		return fmt.Errorf("%w: upload slot %q", storage.ErrInvalid, s.ID)
	}
	res, err := db.w.ExecContext(ctx, `INSERT INTO upload_slots (`+uploadCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)
		ON CONFLICT (id) DO NOTHING`,
		s.ID, s.Service, s.Owner, s.Filename, s.ContentType, s.Size, micro(s.Created), micro(s.SlotExpires))
	if err != nil {
		return wrap("create upload slot", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: upload slot %s", storage.ErrExists, s.ID)
	}
	return nil
}

// UploadSlot implements storage.Uploads.
func (db *DB) UploadSlot(ctx context.Context, id string) (storage.UploadSlot, error) {
	s, err := scanUpload(db.queryRow(ctx, `SELECT `+uploadCols+` FROM upload_slots WHERE id = ?`, id))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return storage.UploadSlot{}, fmt.Errorf("%w: upload slot %s", storage.ErrNotFound, id)
	case err != nil:
		return storage.UploadSlot{}, wrap("upload slot", err)
	}
	return s, nil
}

// MarkUploaded implements storage.Uploads.
func (db *DB) MarkUploaded(ctx context.Context, id string, at time.Time) error {
	res, err := db.w.ExecContext(ctx, `UPDATE upload_slots SET uploaded = ? WHERE id = ? AND uploaded = 0`, max(micro(at), 1), id)
	if err != nil {
		return wrap("mark uploaded", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
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
	var oldest, oldestRecent sql.NullInt64
	err := db.queryRow(ctx, `SELECT
			COALESCE(SUM(size), 0), MIN(created),
			COALESCE(SUM(CASE WHEN created >= ?1 THEN size ELSE 0 END), 0),
			MIN(CASE WHEN created >= ?1 THEN created END)
		FROM upload_slots WHERE service = ?2 AND owner = ?3`, micro(since), service, owner).
		Scan(&u.Total, &oldest, &u.Recent, &oldestRecent)
	if err != nil {
		return storage.UploadUsage{}, wrap("upload usage", err)
	}
	if oldest.Valid {
		u.Oldest = fromMicro(oldest.Int64)
	}
	if oldestRecent.Valid {
		u.OldestRecent = fromMicro(oldestRecent.Int64)
	}
	return u, nil
}

// ExpiredUploads implements storage.Uploads.
func (db *DB) ExpiredUploads(ctx context.Context, service string, filesBefore, slotsBefore time.Time, limit int) ([]storage.UploadSlot, error) {
	rows, err := db.query(ctx, `SELECT `+uploadCols+` FROM upload_slots
		WHERE service = ? AND ((uploaded <> 0 AND uploaded < ?) OR (uploaded = 0 AND slot_expires < ?))
		ORDER BY created, id LIMIT ?`, service, micro(filesBefore), micro(slotsBefore), limit)
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
	_, err := db.w.ExecContext(ctx, `DELETE FROM upload_slots WHERE id = ?`, id)
	return wrap("delete upload", err)
}
