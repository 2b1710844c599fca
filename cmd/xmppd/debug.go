package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/xmppd/xmppd/config"

	"github.com/xmppd/xmppd/actors"
)

// debugCmd: xmppd debug actors [--kind K] [--jid J] [--limit N] [--json] [-c config]. It reads the running
// server's /debug/actors at [debug] listen (with [debug] token when set) and prints an indented text tree.
func debugCmd(args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "actors" {
		return fmt.Errorf("debug needs a subcommand: actors\n%s", usage)
	}
	fs := flag.NewFlagSet("debug actors", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgPath := fs.String("c", "", "configuration file (TOML)")
	kind := fs.String("kind", "", "only actors of these kinds (comma-separated), with their ancestors")
	jidF := fs.String("jid", "", "only actors serving this JID (a bare JID also matches its full JIDs)")
	limit := fs.Int("limit", 0, "at most this many nodes (server default 10000)")
	raw := fs.Bool("json", false, "print the server's JSON instead of the text tree")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%v\n%s", err, usage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("debug actors takes no arguments\n%s", usage)
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	q := url.Values{}
	if *kind != "" {
		q.Set("kind", *kind)
	}
	if *jidF != "" {
		q.Set("jid", *jidF)
	}
	if *limit > 0 {
		q.Set("limit", strconv.Itoa(*limit))
	}
	body, err := fetchActors(&cfg, q, 40*time.Second)
	if err != nil {
		return err
	}
	if *raw {
		_, err := out.Write(body)
		return err
	}
	var snap actors.Snapshot
	if err := json.Unmarshal(body, &snap); err != nil {
		return fmt.Errorf("decoding the tree: %w", err)
	}
	printTree(out, &snap)
	return nil
}

// fetchActors asks the running server's /debug/actors (at [debug] listen, with [debug] token when set) for the
// JSON tree with the filter q.
func fetchActors(cfg *config.Config, q url.Values, timeout time.Duration) ([]byte, error) {
	q.Set("format", "json")
	return fetchDebug(cfg, "/debug/actors?"+q.Encode(), timeout)
}

// fetchDebug GETs path (with its query) from the running server's debug endpoint.
func fetchDebug(cfg *config.Config, path string, timeout time.Duration) ([]byte, error) {
	if cfg.Debug.Listen == "" {
		return nil, fmt.Errorf("the debug endpoint is disabled ([debug] listen is empty)")
	}
	host, port, err := net.SplitHostPort(cfg.Debug.Listen)
	if err != nil {
		return nil, fmt.Errorf("debug.listen: %w", err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1" // listening on every address: ask on loopback
	}
	u := "http://" + net.JoinHostPort(host, port) + path
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if cfg.Debug.Token != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.Debug.Token)
	}
	res, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("is xmppd running? %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", res.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

func printTree(w io.Writer, snap *actors.Snapshot) {
	kinds := make([]string, 0, len(snap.Counts))
	for k := range snap.Counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var counts []string
	for _, k := range kinds {
		counts = append(counts, fmt.Sprintf("%s %d", k, snap.Counts[k]))
	}
	fmt.Fprintf(w, "%d actors (%s) in %.1f ms", snap.Nodes, strings.Join(counts, ", "), snap.ElapsedMS)
	if snap.Truncated {
		fmt.Fprintf(w, "; truncated at limit %d", snap.Filter.Limit)
	}
	if snap.Unanswered > 0 {
		fmt.Fprintf(w, "; %d did not answer in time", snap.Unanswered)
	}
	fmt.Fprintln(w)
	if snap.Root == nil {
		return
	}
	for _, c := range snap.Root.Children {
		printNode(w, c, 0)
	}
}

func printNode(w io.Writer, n *actors.ActorInfo, depth int) {
	var b strings.Builder
	b.WriteString(strings.Repeat("  ", depth))
	b.WriteString(n.ID)
	b.WriteString(" [" + n.Kind + "]")
	if n.JID != "" {
		b.WriteString(" " + n.JID)
	}
	if n.Remote != "" {
		b.WriteString(" remote=" + n.Remote)
	}
	if n.State != "" {
		b.WriteString(" state=" + n.State)
	}
	if n.TLS != nil {
		b.WriteString(" tls=" + strconv.FormatBool(*n.TLS))
	}
	if n.Mechanism != "" {
		b.WriteString(" mechanism=" + n.Mechanism)
	}
	keys := make([]string, 0, len(n.Attrs))
	for k := range n.Attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(" " + k + "=" + n.Attrs[k])
	}
	fmt.Fprintf(&b, " mailbox=%d processed=%d age=%s", n.Mailbox, n.Processed,
		(time.Duration(n.AgeSecs * float64(time.Second))).Round(time.Millisecond))
	if len(n.Children) < n.ChildCount {
		fmt.Fprintf(&b, " (%d of %d children shown)", len(n.Children), n.ChildCount)
	}
	fmt.Fprintln(w, b.String())
	for _, c := range n.Children {
		printNode(w, c, depth+1)
	}
}
