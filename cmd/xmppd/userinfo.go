package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/xmppd/xmppd/accounts"
	"github.com/xmppd/xmppd/actors"
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/storage"
)

// userInfo: xmppd user list [domain] [--json] and xmppd user show JID [--json].
func userInfo(sub string, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("user "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgPath := fs.String("c", "", "configuration file (TOML)")
	asJSON := fs.Bool("json", false, "JSON output")
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return usageError{fmt.Errorf("%v\n%s", err, usage)}
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if sub == "list" && len(rest) > 1 {
		return usageError{fmt.Errorf("user list takes at most one domain\n%s", usage)}
	}
	if sub == "show" && len(rest) != 1 {
		return usageError{fmt.Errorf("user show needs exactly one JID\n%s", usage)}
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	store, err := actors.OpenStorage(&cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	ctx := context.Background()
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	if sub == "list" {
		domain := ""
		if len(rest) == 1 {
			domain = rest[0]
		}
		users, err := store.ListAccounts(ctx, domain)
		if err != nil {
			return err
		}
		if !*asJSON {
			for _, u := range users {
				fmt.Fprintln(out, u)
			}
			return nil
		}
		list := make([]accounts.Info, 0, len(users))
		for _, u := range users {
			in, err := accounts.AccountInfo(ctx, store, u)
			if errors.Is(err, storage.ErrNotFound) {
				continue // deleted meanwhile
			}
			if err != nil {
				return err
			}
			list = append(list, in)
		}
		return enc.Encode(list)
	}
	account, err := accounts.ParseAccount(&cfg, rest[0])
	if err != nil {
		return usageError{err}
	}
	in, err := accounts.AccountInfo(ctx, store, account.String())
	if errors.Is(err, storage.ErrNotFound) {
		return notFoundError{fmt.Errorf("no account %s", account)}
	}
	if err != nil {
		return err
	}
	show := struct {
		accounts.Info
		// Sessions are the resources online now, from the running server's debug endpoint; null when it could not
		// be asked (SessionsError says why).
		Sessions      []string `json:"sessions"`
		SessionsError string   `json:"sessions_error,omitempty"`
	}{Info: in}
	show.Sessions, err = onlineSessions(&cfg, account.String())
	if err != nil {
		show.SessionsError = err.Error()
	}
	if *asJSON {
		return enc.Encode(show)
	}
	var mechs []string
	for _, c := range in.Credentials {
		mechs = append(mechs, fmt.Sprintf("%s (%d iterations)", c.Mechanism, c.Iterations))
	}
	fmt.Fprintf(out, "jid: %s\ncredentials: %s\nroster items: %d\npending subscription requests: %d\noffline messages: %d\nPEP nodes: %d\n",
		in.JID, strings.Join(mechs, ", "), in.RosterItems, in.PendingRequests, in.OfflineMessages, in.PEPNodes)
	if in.LastSeen != nil {
		fmt.Fprintf(out, "last seen: %s\n", in.LastSeen.Format(time.RFC3339))
	} else {
		fmt.Fprintln(out, "last seen: never (no session has ended since the account was created)")
	}
	if show.SessionsError != "" {
		fmt.Fprintf(out, "sessions online: unknown (%s)\n", show.SessionsError)
	} else {
		fmt.Fprintf(out, "sessions online: %d %s\n", len(show.Sessions), strings.Join(show.Sessions, " "))
	}
	return nil
}

// onlineSessions asks the running server which sessions of bare are bound (the session actors under its user
// actor in /debug/actors).
func onlineSessions(cfg *config.Config, bare string) ([]string, error) {
	body, err := fetchActors(cfg, url.Values{"kind": {"session"}, "jid": {bare}}, 5*time.Second)
	if err != nil {
		return nil, err
	}
	var snap actors.Snapshot
	if err := json.Unmarshal(body, &snap); err != nil {
		return nil, err
	}
	out := []string{}
	var walk func(n *actors.ActorInfo)
	walk = func(n *actors.ActorInfo) {
		if n == nil {
			return
		}
		if n.Kind == "session" && n.Matched && n.JID != "" {
			out = append(out, n.JID)
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(snap.Root)
	return out, nil
}
