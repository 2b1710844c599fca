package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/xmppd/xmppd/actors"
	"github.com/xmppd/xmppd/config"
)

// clusterCmd: xmppd cluster status [--jid J] [--json] [-c config]. It reads the running node's /debug/cluster.
func clusterCmd(args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "status" {
		return usageError{fmt.Errorf("cluster needs a subcommand: status\n%s", usage)}
	}
	fs := flag.NewFlagSet("cluster status", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgPath := fs.String("c", "", "configuration file (TOML)")
	raw := fs.Bool("json", false, "print the server's JSON")
	jidF := fs.String("jid", "", "also tell which member this address (an account, a room, a service) is placed on")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		return usageError{fmt.Errorf("cluster status takes only --jid, --json and -c\n%s", usage)}
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	path := "/debug/cluster"
	if *jidF != "" {
		path += "?jid=" + url.QueryEscape(*jidF)
	}
	body, err := fetchDebug(&cfg, path, 10*time.Second)
	if err != nil {
		return err
	}
	if *raw {
		_, err := out.Write(body)
		return err
	}
	var st actors.ClusterStatus
	if err := json.Unmarshal(body, &st); err != nil {
		return fmt.Errorf("decoding the status: %w", err)
	}
	if !st.Enabled {
		fmt.Fprintln(out, "not clustered ([cluster] enabled = false)")
		return nil
	}
	fmt.Fprintf(out, "%d members, seen from %s\n", len(st.Members), st.Self)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tUSERS\tSESSIONS\tCONNECTIONS\tSPLIT HOME\tSPLIT EDGE\tSTANZAS OUT\tSTANZAS IN\t")
	for _, m := range st.Members {
		name := m.Address
		if m.Self {
			name += " (this node)"
		}
		if m.Error != "" {
			fmt.Fprintf(tw, "%s\t%s\t\t\t\t\t\t\t\n", name, "no answer: "+m.Error)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", name, m.Users, m.Sessions, m.Connections, m.SplitHome, m.SplitEdge, m.RoutedOut, m.RoutedIn)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if st.JID != "" {
		fmt.Fprintf(out, "%s is placed on %s\n", st.JID, st.Home)
	}
	return nil
}
