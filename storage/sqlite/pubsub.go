package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/xmppd/xmppd/storage"
)

// PubSubNodes implements storage.PubSub.
func (db *DB) PubSubNodes(ctx context.Context, service string) ([]storage.PubSubNode, error) {
	rows, err := db.query(ctx, `SELECT node, config, created FROM pubsub_nodes WHERE service = ? ORDER BY node`, service)
	if err != nil {
		return nil, wrap("pubsub nodes", err)
	}
	defer rows.Close()
	out := []storage.PubSubNode{}
	for rows.Next() {
		var n storage.PubSubNode
		var created int64
		if err := rows.Scan(&n.Node, &n.Config, &created); err != nil {
			return nil, wrap("pubsub nodes", err)
		}
		n.Created = fromMicro(created)
		out = append(out, n)
	}
	return out, wrap("pubsub nodes", rows.Err())
}

// PubSubNode implements storage.PubSub.
func (db *DB) PubSubNode(ctx context.Context, service, node string) (storage.PubSubNode, error) {
	n := storage.PubSubNode{Node: node}
	var created int64
	err := db.queryRow(ctx, `SELECT config, created FROM pubsub_nodes WHERE service = ? AND node = ?`, service, node).
		Scan(&n.Config, &created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return storage.PubSubNode{}, fmt.Errorf("%w: pubsub node %s %s", storage.ErrNotFound, service, node)
	case err != nil:
		return storage.PubSubNode{}, wrap("pubsub node", err)
	}
	n.Created = fromMicro(created)
	return n, nil
}

// PutPubSubNode implements storage.PubSub.
func (db *DB) PutPubSubNode(ctx context.Context, service string, n storage.PubSubNode) error {
	_, err := db.w.ExecContext(ctx,
		`INSERT INTO pubsub_nodes (service, node, config, created) VALUES (?, ?, ?, ?)
		ON CONFLICT (service, node) DO UPDATE SET config = excluded.config`,
		service, n.Node, n.Config, micro(n.Created))
	return wrap("put pubsub node", err)
}

// DeletePubSubNode implements storage.PubSub.
func (db *DB) DeletePubSubNode(ctx context.Context, service, node string) error {
	_, err := db.w.ExecContext(ctx, `DELETE FROM pubsub_nodes WHERE service = ? AND node = ?`, service, node)
	return wrap("delete pubsub node", err)
}

// DeletePubSubService implements storage.PubSub.
func (db *DB) DeletePubSubService(ctx context.Context, service string) error {
	_, err := db.w.ExecContext(ctx, `DELETE FROM pubsub_nodes WHERE service = ?`, service)
	return wrap("delete pubsub service", err)
}

func nodeExists(ctx context.Context, tx *sql.Tx, service, node string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM pubsub_nodes WHERE service = ? AND node = ?`, service, node).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: pubsub node %s %s", storage.ErrNotFound, service, node)
	}
	return err
}

const (
	sqlPubSubNode       = `SELECT 1 FROM pubsub_nodes WHERE service = ? AND node = ?`
	sqlPubSubDeleteItem = `DELETE FROM pubsub_items WHERE service = ? AND node = ? AND id = ?`
	sqlPubSubInsertItem = `INSERT INTO pubsub_items (service, node, id, publisher, payload, published) VALUES (?, ?, ?, ?, ?, ?)`
	sqlPubSubTrim       = `DELETE FROM pubsub_items WHERE service = ?1 AND node = ?2 AND seq NOT IN
				(SELECT seq FROM pubsub_items WHERE service = ?1 AND node = ?2 ORDER BY seq DESC LIMIT ?3)`
)

// PublishPubSubItem implements storage.PubSub: replace, insert and trim in one transaction, with statements
// prepared once (a publish is on the path of every notification it fans out to).
func (db *DB) PublishPubSubItem(ctx context.Context, service, node string, it storage.PubSubItem, max int) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.StmtContext(ctx, db.pubsubNode).QueryRowContext(ctx, service, node).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			err = fmt.Errorf("%w: pubsub node %s %s", storage.ErrNotFound, service, node)
		}
		if err != nil {
			return wrap("publish pubsub item", err)
		}
		if _, err := tx.StmtContext(ctx, db.pubsubDelete).ExecContext(ctx, service, node, it.ID); err != nil {
			return wrap("publish pubsub item", err)
		}
		if _, err := tx.StmtContext(ctx, db.pubsubInsert).ExecContext(ctx,
			service, node, it.ID, it.Publisher, it.Payload, micro(it.Published)); err != nil {
			return wrap("publish pubsub item", err)
		}
		if max > 0 {
			if _, err := tx.StmtContext(ctx, db.pubsubTrim).ExecContext(ctx, service, node, max); err != nil {
				return wrap("publish pubsub item", err)
			}
		}
		return nil
	})
}

// PubSubItems implements storage.PubSub.
func (db *DB) PubSubItems(ctx context.Context, service, node string, max int) ([]storage.PubSubItem, error) {
	limit := -1 // SQLite: no limit
	if max > 0 {
		limit = max
	}
	rows, err := db.query(ctx,
		`SELECT id, publisher, payload, published FROM pubsub_items WHERE service = ? AND node = ? ORDER BY seq DESC LIMIT ?`,
		service, node, limit)
	if err != nil {
		return nil, wrap("pubsub items", err)
	}
	defer rows.Close()
	out := []storage.PubSubItem{}
	for rows.Next() {
		var it storage.PubSubItem
		var at int64
		if err := rows.Scan(&it.ID, &it.Publisher, &it.Payload, &at); err != nil {
			return nil, wrap("pubsub items", err)
		}
		it.Published = fromMicro(at)
		out = append(out, it)
	}
	return out, wrap("pubsub items", rows.Err())
}

// PubSubItem implements storage.PubSub.
func (db *DB) PubSubItem(ctx context.Context, service, node, id string) (storage.PubSubItem, error) {
	it := storage.PubSubItem{ID: id}
	var at int64
	err := db.queryRow(ctx,
		`SELECT publisher, payload, published FROM pubsub_items WHERE service = ? AND node = ? AND id = ?`,
		service, node, id).Scan(&it.Publisher, &it.Payload, &at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return storage.PubSubItem{}, fmt.Errorf("%w: pubsub item %s %s %s", storage.ErrNotFound, service, node, id)
	case err != nil:
		return storage.PubSubItem{}, wrap("pubsub item", err)
	}
	it.Published = fromMicro(at)
	return it, nil
}

// RetractPubSubItem implements storage.PubSub.
func (db *DB) RetractPubSubItem(ctx context.Context, service, node, id string) (bool, error) {
	res, err := db.w.ExecContext(ctx, `DELETE FROM pubsub_items WHERE service = ? AND node = ? AND id = ?`, service, node, id)
	if err != nil {
		return false, wrap("retract pubsub item", err)
	}
	n, err := res.RowsAffected()
	return n > 0, wrap("retract pubsub item", err)
}

// PurgePubSubNode implements storage.PubSub.
func (db *DB) PurgePubSubNode(ctx context.Context, service, node string) error {
	_, err := db.w.ExecContext(ctx, `DELETE FROM pubsub_items WHERE service = ? AND node = ?`, service, node)
	return wrap("purge pubsub node", err)
}

// PubSubMembers implements storage.PubSub.
func (db *DB) PubSubMembers(ctx context.Context, service, node string) ([]storage.PubSubMember, error) {
	rows, err := db.query(ctx,
		`SELECT jid, affiliation, subscription, subid, options FROM pubsub_members WHERE service = ? AND node = ? ORDER BY jid`,
		service, node)
	if err != nil {
		return nil, wrap("pubsub members", err)
	}
	defer rows.Close()
	out := []storage.PubSubMember{}
	for rows.Next() {
		var m storage.PubSubMember
		if err := rows.Scan(&m.JID, &m.Affiliation, &m.Subscription, &m.SubID, &m.Options); err != nil {
			return nil, wrap("pubsub members", err)
		}
		out = append(out, m)
	}
	return out, wrap("pubsub members", rows.Err())
}

// PutPubSubMember implements storage.PubSub.
func (db *DB) PutPubSubMember(ctx context.Context, service, node string, m storage.PubSubMember) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		if err := nodeExists(ctx, tx, service, node); err != nil {
			return wrap("put pubsub member", err)
		}
		var err error
		if m.Affiliation == "" && m.Subscription == "" {
			_, err = tx.ExecContext(ctx, `DELETE FROM pubsub_members WHERE service = ? AND node = ? AND jid = ?`, service, node, m.JID)
		} else {
			_, err = tx.ExecContext(ctx,
				`INSERT INTO pubsub_members (service, node, jid, affiliation, subscription, subid, options) VALUES (?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (service, node, jid) DO UPDATE SET affiliation = excluded.affiliation,
				subscription = excluded.subscription, subid = excluded.subid, options = excluded.options`,
				service, node, m.JID, m.Affiliation, m.Subscription, m.SubID, m.Options)
		}
		return wrap("put pubsub member", err)
	})
}
