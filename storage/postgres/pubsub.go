package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/xmppd/xmppd/storage"
)

// PubSubNodes implements storage.PubSub.
func (db *DB) PubSubNodes(ctx context.Context, service string) ([]storage.PubSubNode, error) {
	rows, err := db.pool.Query(ctx, `SELECT node, config, created FROM pubsub_nodes WHERE service = $1 ORDER BY node`, service)
	if err != nil {
		return nil, wrap("pubsub nodes", err)
	}
	defer rows.Close()
	out := []storage.PubSubNode{}
	for rows.Next() {
		var n storage.PubSubNode
		if err := rows.Scan(&n.Node, &n.Config, &n.Created); err != nil {
			return nil, wrap("pubsub nodes", err)
		}
		n.Created = utc(n.Created)
		out = append(out, n)
	}
	return out, wrap("pubsub nodes", rows.Err())
}

// PubSubNode implements storage.PubSub.
func (db *DB) PubSubNode(ctx context.Context, service, node string) (storage.PubSubNode, error) {
	n := storage.PubSubNode{Node: node}
	err := db.pool.QueryRow(ctx, `SELECT config, created FROM pubsub_nodes WHERE service = $1 AND node = $2`, service, node).
		Scan(&n.Config, &n.Created)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return storage.PubSubNode{}, fmt.Errorf("%w: pubsub node %s %s", storage.ErrNotFound, service, node)
	case err != nil:
		return storage.PubSubNode{}, wrap("pubsub node", err)
	}
	n.Created = utc(n.Created)
	return n, nil
}

// PutPubSubNode implements storage.PubSub.
func (db *DB) PutPubSubNode(ctx context.Context, service string, n storage.PubSubNode) error {
	_, err := db.pool.Exec(ctx,
		`INSERT INTO pubsub_nodes (service, node, config, created) VALUES ($1, $2, $3, $4)
		ON CONFLICT (service, node) DO UPDATE SET config = excluded.config`,
		service, n.Node, n.Config, n.Created)
	return wrap("put pubsub node", err)
}

// DeletePubSubNode implements storage.PubSub.
func (db *DB) DeletePubSubNode(ctx context.Context, service, node string) error {
	_, err := db.pool.Exec(ctx, `DELETE FROM pubsub_nodes WHERE service = $1 AND node = $2`, service, node)
	return wrap("delete pubsub node", err)
}

// DeletePubSubService implements storage.PubSub.
func (db *DB) DeletePubSubService(ctx context.Context, service string) error {
	_, err := db.pool.Exec(ctx, `DELETE FROM pubsub_nodes WHERE service = $1`, service)
	return wrap("delete pubsub service", err)
}

// lockNode locks the node's row (mode "FOR UPDATE" or "FOR SHARE") until the end of the transaction;
// ErrNotFound if the node does not exist.
func lockNode(ctx context.Context, tx pgx.Tx, service, node, mode string) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM pubsub_nodes WHERE service = $1 AND node = $2 `+mode, service, node).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: pubsub node %s %s", storage.ErrNotFound, service, node)
	}
	return err
}

// PublishPubSubItem implements storage.PubSub: replace, insert and trim in one transaction. The node's row is
// locked FOR UPDATE first: publishers of one node (on any node of the cluster) take turns, so seq follows
// commit order and the trim keeps exactly the newest max.
func (db *DB) PublishPubSubItem(ctx context.Context, service, node string, it storage.PubSubItem, max int) error {
	return db.write(ctx, func(tx pgx.Tx) error {
		if err := lockNode(ctx, tx, service, node, "FOR UPDATE"); err != nil {
			return wrap("publish pubsub item", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM pubsub_items WHERE service = $1 AND node = $2 AND id = $3`, service, node, it.ID); err != nil {
			return wrap("publish pubsub item", err)
		}
		if _, err := tx.Exec(ctx,
			`INSERT INTO pubsub_items (service, node, id, publisher, payload, published) VALUES ($1, $2, $3, $4, $5, $6)`,
			service, node, it.ID, it.Publisher, it.Payload, it.Published); err != nil {
			return wrap("publish pubsub item", err)
		}
		if max > 0 {
			if _, err := tx.Exec(ctx,
				`DELETE FROM pubsub_items WHERE service = $1 AND node = $2 AND seq NOT IN
				(SELECT seq FROM pubsub_items WHERE service = $1 AND node = $2 ORDER BY seq DESC LIMIT $3)`,
				service, node, max); err != nil {
				return wrap("publish pubsub item", err)
			}
		}
		return nil
	})
}

// PubSubItems implements storage.PubSub. LIMIT NULL is no limit.
func (db *DB) PubSubItems(ctx context.Context, service, node string, max int) ([]storage.PubSubItem, error) {
	var limit *int
	if max > 0 {
		limit = &max
	}
	rows, err := db.pool.Query(ctx,
		`SELECT id, publisher, payload, published FROM pubsub_items WHERE service = $1 AND node = $2 ORDER BY seq DESC LIMIT $3`,
		service, node, limit)
	if err != nil {
		return nil, wrap("pubsub items", err)
	}
	defer rows.Close()
	out := []storage.PubSubItem{}
	for rows.Next() {
		var it storage.PubSubItem
		if err := rows.Scan(&it.ID, &it.Publisher, &it.Payload, &it.Published); err != nil {
			return nil, wrap("pubsub items", err)
		}
		it.Published = utc(it.Published)
		out = append(out, it)
	}
	return out, wrap("pubsub items", rows.Err())
}

// PubSubItem implements storage.PubSub.
func (db *DB) PubSubItem(ctx context.Context, service, node, id string) (storage.PubSubItem, error) {
	it := storage.PubSubItem{ID: id}
	err := db.pool.QueryRow(ctx,
		`SELECT publisher, payload, published FROM pubsub_items WHERE service = $1 AND node = $2 AND id = $3`,
		service, node, id).Scan(&it.Publisher, &it.Payload, &it.Published)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return storage.PubSubItem{}, fmt.Errorf("%w: pubsub item %s %s %s", storage.ErrNotFound, service, node, id)
	case err != nil:
		return storage.PubSubItem{}, wrap("pubsub item", err)
	}
	it.Published = utc(it.Published)
	return it, nil
}

// RetractPubSubItem implements storage.PubSub.
func (db *DB) RetractPubSubItem(ctx context.Context, service, node, id string) (bool, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM pubsub_items WHERE service = $1 AND node = $2 AND id = $3`, service, node, id)
	if err != nil {
		return false, wrap("retract pubsub item", err)
	}
	return tag.RowsAffected() > 0, nil
}

// PurgePubSubNode implements storage.PubSub.
func (db *DB) PurgePubSubNode(ctx context.Context, service, node string) error {
	_, err := db.pool.Exec(ctx, `DELETE FROM pubsub_items WHERE service = $1 AND node = $2`, service, node)
	return wrap("purge pubsub node", err)
}

// PubSubMembers implements storage.PubSub.
func (db *DB) PubSubMembers(ctx context.Context, service, node string) ([]storage.PubSubMember, error) {
	rows, err := db.pool.Query(ctx,
		`SELECT jid, affiliation, subscription, subid, options FROM pubsub_members WHERE service = $1 AND node = $2 ORDER BY jid`,
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

// PutPubSubMember implements storage.PubSub. FOR SHARE on the node: members may be written concurrently, but
// not beside a DeletePubSubNode.
func (db *DB) PutPubSubMember(ctx context.Context, service, node string, m storage.PubSubMember) error {
	return db.write(ctx, func(tx pgx.Tx) error {
		if err := lockNode(ctx, tx, service, node, "FOR SHARE"); err != nil {
			return wrap("put pubsub member", err)
		}
		var err error
		if m.Affiliation == "" && m.Subscription == "" {
			_, err = tx.Exec(ctx, `DELETE FROM pubsub_members WHERE service = $1 AND node = $2 AND jid = $3`, service, node, m.JID)
		} else {
			_, err = tx.Exec(ctx,
				`INSERT INTO pubsub_members (service, node, jid, affiliation, subscription, subid, options) VALUES ($1, $2, $3, $4, $5, $6, $7)
				ON CONFLICT (service, node, jid) DO UPDATE SET affiliation = excluded.affiliation,
				subscription = excluded.subscription, subid = excluded.subid, options = excluded.options`,
				service, node, m.JID, m.Affiliation, m.Subscription, m.SubID, m.Options)
		}
		return wrap("put pubsub member", err)
	})
}
