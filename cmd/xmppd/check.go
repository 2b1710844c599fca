package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/xmppd/xmppd/check"
	"github.com/xmppd/xmppd/config"
)

// checkCmd is `xmppd check`: it prints what package check finds, one line each with its fix, and fails (exit 3)
// when something is an error.
func checkCmd(args []string) error {
	cfgPath, _, _, rest, err := flags("check", args, false)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return usageError{fmt.Errorf("check takes no arguments\n%s", usage)}
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		fmt.Printf("error  configuration: %v\n", err)
		return fmt.Errorf("the configuration is invalid")
	}
	fmt.Println("ok     configuration")
	var d net.Dialer
	fs := check.Run(context.Background(), &cfg, check.Options{Resolver: net.DefaultResolver, Dial: d.DialContext, Now: time.Now()})
	for _, f := range fs {
		fmt.Printf("%-6s %s\n", f.Level, f.What)
		if f.Fix != "" {
			fmt.Printf("       fix: %s\n", f.Fix)
		}
	}
	if n := check.Errors(fs); n > 0 {
		return fmt.Errorf("%d problem(s) to fix", n)
	}
	return nil
}
