// Package mamquery runs a parsed XEP-0313 query against one archive of storage.Archive: the selection of the
// form (with, start, end, after-id, before-id, ids), the XEP-0059 page within it (<after/>, <before/>, <max/>
// capped by the server's page size), the count and <fin/>. Every archive the server keeps answers through it:
// the accounts' (features/mam, the user actor) and the MUC rooms' (features/muc, the room actor). It runs on
// the owning actor's goroutine and keeps no state.
package mamquery

import (
	"context"
	"errors"

	wire "github.com/xmppd/xmppd/protocol/mam"
	"github.com/xmppd/xmppd/protocol/stanza"
	"github.com/xmppd/xmppd/storage"
)

// Page is the answer to one query: the messages in the order to send them (newest first with <flip-page/>) and
// the <fin/> of the IQ result.
type Page struct {
	Messages []storage.ArchivedMessage
	Fin      wire.Fin
}

// Selection is the storage selection of req's form: with as the client wrote it (a bare JID matches every
// resource, §4.1.1), the time bounds (§4.1.2) and the extended id fields (§4.1.3).
func Selection(req wire.Query) storage.ArchiveQuery {
	sel := storage.ArchiveQuery{Start: req.Start, End: req.End, IDs: req.IDs}
	if !req.With.IsZero() {
		sel.With = req.With.String()
	}
	if req.AfterID != "" {
		sel.AfterIDs = []string{req.AfterID}
	}
	if req.BeforeID != "" {
		sel.BeforeIDs = []string{req.BeforeID}
	}
	return sel
}

// Run answers req over sel (Selection(req), possibly narrowed by the caller) in owner's archive: the page of
// the RSM request within the selection, at most maxPage messages. An id of the request not in the archive is
// storage.ErrNotFound (§4.1.3, §4.3.2: item-not-found).
func Run(ctx context.Context, a storage.Archive, owner string, req wire.Query, sel storage.ArchiveQuery, maxPage int) (Page, error) {
	count, err := a.CountArchive(ctx, owner, sel)
	if err != nil {
		return Page{}, err
	}
	// The page: RSM <after/> and <before/> (empty: the last page) within the selection, at most maxPage.
	page := sel
	page.Limit = maxPage
	if req.RSM.Max >= 0 && req.RSM.Max < page.Limit {
		page.Limit = req.RSM.Max
	}
	if req.RSM.HasAfter {
		page.AfterIDs = append(append([]string(nil), sel.AfterIDs...), req.RSM.After)
	}
	if req.RSM.HasBefore {
		page.Last = true
		if req.RSM.Before != "" {
			page.BeforeIDs = append(append([]string(nil), sel.BeforeIDs...), req.RSM.Before)
		}
	}
	var msgs []storage.ArchivedMessage
	more := count > 0
	if page.Limit > 0 {
		if msgs, more, err = a.QueryArchive(ctx, owner, page); err != nil {
			return Page{}, err
		}
	} else if req.RSM.HasAfter || req.RSM.Before != "" {
		// <max>0</max> only counts, but an unknown id is still item-not-found (§4.3.2).
		probe := page
		probe.Limit = 1
		if _, _, err = a.QueryArchive(ctx, owner, probe); err != nil {
			return Page{}, err
		}
	}
	fin := wire.Fin{Complete: !more, Count: count, NS: req.NS} // answered in the namespace asked in
	if len(msgs) > 0 {
		fin.First, fin.Last = msgs[0].ID, msgs[len(msgs)-1].ID
	}
	if req.Flip {
		for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
			msgs[i], msgs[j] = msgs[j], msgs[i]
		}
	}
	return Page{Messages: msgs, Fin: fin}, nil
}

// Refusal is the stanza error answering a failed ParseQuery or Run; ok false for an internal error (the caller
// logs it and answers internal-server-error).
func Refusal(err error) (e stanza.Error, ok bool) {
	var we *wire.Error
	switch {
	case errors.As(err, &we):
		return we.Stanza(), true
	case errors.Is(err, storage.ErrNotFound):
		return stanza.NewError(stanza.ItemNotFound).WithText("no such message in the archive"), true
	}
	return stanza.NewError(stanza.InternalServerError), false
}
