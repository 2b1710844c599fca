package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/xmppd/xmppd/actors"
	"github.com/xmppd/xmppd/config"
	"github.com/xmppd/xmppd/portable"
)

// portableFlags parses the flags of export and import, before or after the file.
func portableFlags(name string, args []string, many bool, setup func(fs *flag.FlagSet)) (cfgPath string, rest []string, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfgPath, "c", "", "configuration file (TOML)")
	setup(fs)
	for {
		if err = fs.Parse(args); err != nil {
			return "", nil, usageError{fmt.Errorf("%v\n%s", err, usage)}
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(rest) == 0 || len(rest) > 1 && !many {
		return "", nil, usageError{fmt.Errorf("%s needs exactly one FILE\n%s", name, usage)}
	}
	return cfgPath, rest, nil
}

func exportCmd(args []string) error {
	var domain string
	cfgPath, rest, err := portableFlags("export", args, false, func(fs *flag.FlagSet) {
		fs.StringVar(&domain, "domain", "", "only the accounts of this domain")
	})
	if err != nil {
		return err
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	store, err := actors.OpenStorage(&cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	var w io.Writer = os.Stdout
	var f *os.File
	if rest[0] != "-" {
		// XEP-0227 §8: the file holds credentials; only its owner may read it.
		if f, err = os.OpenFile(rest[0], os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
			return err
		}
		w = f
	}
	s, err := portable.Export(context.Background(), store, w, domain)
	if err == nil && f != nil {
		err = f.Close()
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "exported %d users: %d roster items, %d pending requests, %d vCards, %d private XML, %d blocked JIDs, %d offline messages, %d PEP nodes with %d items\n",
		s.Users, s.RosterItems, s.Pending, s.VCards, s.Private, s.Blocked, s.Offline, s.PEPNodes, s.PEPItems)
	fmt.Fprintln(os.Stderr, "not exported: MAM archives and MUC rooms (not supported by the export yet)")
	return nil
}

func importCmd(args []string) error {
	var dry, cont bool
	cfgPath, rest, err := portableFlags("import", args, true, func(fs *flag.FlagSet) {
		fs.BoolVar(&dry, "dry-run", false, "check and count, write nothing")
		fs.BoolVar(&cont, "continue-on-error", false, "skip the users that fail instead of importing nothing")
	})
	if err != nil {
		return err
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	release, err := actors.LockStorage(&cfg, true)
	if err != nil {
		return fmt.Errorf("%w: stop the server before importing", err)
	}
	defer release()
	store, err := actors.OpenStorage(&cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	s, err := portable.Import(context.Background(), store, rest, portable.Options{
		DryRun: dry, ContinueOnError: cont, Serves: cfg.Serves, Iterations: cfg.Auth.ScramIterations,
	})
	if s != nil {
		if dry {
			fmt.Print("dry run, nothing written; would import:\n")
		}
		fmt.Print(s.String())
	}
	if err != nil {
		return err
	}
	if len(s.Failed) > 0 {
		return fmt.Errorf("%d users were not imported (see failed: above)", len(s.Failed))
	}
	return nil
}
