// Command xmppd is the XMPP server. With no arguments it serves the embedded default: domain localhost, data in
// ./data, a self-signed certificate generated on first start.
//
//	xmppd [serve] [-c config.toml]
//	xmppd user add|delete|passwd JID [--password PW] [-c config.toml]
//	xmppd user list [domain] [-c config.toml]
//	xmppd export [--domain D] FILE [-c config.toml]
//	xmppd import [--dry-run] [--continue-on-error] FILE [-c config.toml]
//	xmppd version
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/xmppd/xmppd/accounts"
	"github.com/xmppd/xmppd/config"

	"github.com/xmppd/xmppd/actors"
	"github.com/xmppd/xmppd/storage"
)

// Exit codes scripts can rely on.
const (
	exitOK       = 0
	exitNotFound = 1 // the account (or other named thing) does not exist
	exitUsage    = 2 // bad command line
	exitFailure  = 3 // anything else: configuration, storage, a refused import file
	exitLocked   = 4 // the storage is in use (import while a server runs)
)

// usageError and notFoundError pick the exit code.
type usageError struct{ error }
type notFoundError struct{ error }

func (e usageError) Unwrap() error    { return e.error }
func (e notFoundError) Unwrap() error { return e.error }

func exitCode(err error) int {
	var ue usageError
	var nf notFoundError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &nf):
		return exitNotFound
	case errors.Is(err, storage.ErrLocked):
		return exitLocked
	}
	return exitFailure
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "xmppd:", err)
		os.Exit(exitCode(err))
	}
}

const usage = `usage:
  xmppd [serve] [-c config.toml]
  xmppd user add JID [--password PW] [-c config.toml]      (password from stdin when --password is absent)
  xmppd user passwd JID [--password PW] [-c config.toml]
  xmppd user delete JID [-c config.toml]
  xmppd user list [domain] [--json] [-c config.toml]
  xmppd user show JID [--json] [-c config.toml]   (roster size, last seen, sessions online if the server runs)
  xmppd export [--domain D] FILE [-c config.toml]                (XEP-0227; FILE "-" is stdout)
  xmppd import [--dry-run] [--continue-on-error] FILE... [-c config.toml]   (XEP-0227; the server must be stopped)
  xmppd debug actors [--kind K] [--jid J] [--limit N] [--json] [-c config.toml]   (the running server's actor tree)
  xmppd cluster status [--jid J] [--json] [-c config.toml]   (the members this node sees, what each hosts, where J lives)
  xmppd check [-c config.toml]   (configuration, certificate, DNS records, listeners: what to fix)
  xmppd version
exit codes: 0 ok, 1 not found (no such account), 2 usage, 3 other failure (configuration, storage, a refused
import file), 4 the storage is in use (import while a server runs: the data directory on SQLite, the database
on PostgreSQL)`

func run(args []string) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args)
	case "user":
		return user(args)
	case "export":
		return exportCmd(args)
	case "import":
		return importCmd(args)
	case "debug":
		return debugCmd(args, os.Stdout)
	case "cluster":
		return clusterCmd(args, os.Stdout)
	case "check":
		return checkCmd(args)
	case "version":
		fmt.Println("xmppd", actors.Version)
		return nil
	case "help":
		fmt.Println(usage)
		return nil
	}
	return usageError{fmt.Errorf("unknown command %q\n%s", cmd, usage)}
}

// flags parses -c and, when wanted, --password, allowing them before or after positional arguments.
func flags(name string, args []string, withPassword bool) (cfgPath, password string, hasPassword bool, rest []string, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfgPath, "c", "", "configuration file (TOML)")
	var pw *string
	if withPassword {
		pw = fs.String("password", "", "password (else read from one line of stdin)")
	}
	for {
		if err = fs.Parse(args); err != nil {
			return "", "", false, nil, usageError{fmt.Errorf("%v\n%s", err, usage)}
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if pw != nil {
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "password" {
				hasPassword = true
			}
		})
		password = *pw
	}
	return cfgPath, password, hasPassword, rest, nil
}

func serve(args []string) error {
	cfgPath, _, _, rest, err := flags("serve", args, false)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("serve takes no arguments\n%s", usage)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	log := config.NewLogger(cfg.Log, os.Stderr)
	// A shared lock (the data directory's on SQLite, the database's on PostgreSQL): `xmppd import` takes it
	// exclusively and so never runs beside us.
	release, err := actors.LockStorage(&cfg, false)
	if err != nil {
		return fmt.Errorf("storage lock: %w (is an import running?)", err)
	}
	defer release()
	// Signals are caught from before the listeners open: a SIGTERM that arrives while Start is still running
	// (the port already accepts) waits in the channel and ends the server cleanly right after.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	srv, err := actors.Start(cfg, log)
	if err != nil {
		return err
	}
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				if err := srv.ReloadTLS(); err != nil {
					log.Error().Err(err).Msg("certificate reload failed; keeping the old one")
				} else {
					log.Info().Msg("certificate reloaded")
				}
				continue
			}
			log.Info().Str("signal", sig.String()).Msg("shutting down")
			srv.Shutdown(10 * time.Second)
			log.Info().Msg("stopped")
			return nil
		case restart := <-srv.ShutdownRequests():
			// XEP-0133 shutdown or restart by an admin: the same graceful end as SIGTERM; a restart then
			// replaces this process with a fresh one of the same binary and arguments.
			log.Info().Bool("restart", restart).Msg("shutting down at an admin's request")
			srv.Shutdown(10 * time.Second)
			if !restart {
				log.Info().Msg("stopped")
				return nil
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			log.Info().Msg("restarting")
			return syscall.Exec(exe, os.Args, os.Environ())
		}
	}
}

func user(args []string) error {
	if len(args) == 0 {
		return usageError{fmt.Errorf("user needs a subcommand\n%s", usage)}
	}
	sub := args[0]
	if sub == "list" || sub == "show" {
		return userInfo(sub, args[1:], os.Stdout)
	}
	cfgPath, password, hasPassword, rest, err := flags("user "+sub, args[1:], sub == "add" || sub == "passwd")
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
	ctx := context.Background()
	switch sub {
	case "add", "passwd", "delete":
	default:
		return usageError{fmt.Errorf("unknown user subcommand %q\n%s", sub, usage)}
	}
	if len(rest) != 1 {
		return usageError{fmt.Errorf("user %s needs exactly one JID\n%s", sub, usage)}
	}
	account, err := accounts.ParseAccount(&cfg, rest[0])
	if err != nil {
		return err
	}
	if sub == "delete" {
		if err := store.DeleteAccount(ctx, account.String()); errors.Is(err, storage.ErrNotFound) {
			return notFoundError{fmt.Errorf("no account %s", account)}
		} else if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "deleted %s\n", account)
		return nil
	}
	if !hasPassword {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return fmt.Errorf("reading the password from stdin: %v", err)
		}
		password = strings.TrimRight(line, "\r\n")
	}
	if sub == "add" {
		err = accounts.AddUser(ctx, &cfg, store, account, password)
		if errors.Is(err, storage.ErrExists) {
			return fmt.Errorf("account %s already exists", account)
		}
	} else {
		err = accounts.SetPassword(ctx, &cfg, store, account, password)
		if errors.Is(err, storage.ErrNotFound) {
			return notFoundError{fmt.Errorf("no account %s", account)}
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%s %s\n", map[string]string{"add": "created", "passwd": "password changed for"}[sub], account)
	return nil
}
