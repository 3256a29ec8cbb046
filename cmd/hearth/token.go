package main

import (
	"context"
	"fmt"

	"github.com/hearth-home/hearth/appliance/control"
)

func cmdTokenCreate(ctx context.Context, d *deps, args []string) error {
	fs := newFlagSet(d, "token create", "[flags]",
		"Create a registration token and print it.")
	cf := addConfigFlags(fs, "data")
	uses := fs.Int("uses", 0, "how many registrations the token allows; 0 is unlimited")
	expires := fs.Duration("expires", 0, "lifetime such as 72h; 0 never expires")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	if *uses < 0 {
		return usagef(fs, "--uses must not be negative")
	}
	if *expires < 0 {
		return usagef(fs, "--expires must not be negative")
	}
	cfg, err := cf.loadValid(d)
	if err != nil {
		return err
	}
	return withAdmin(ctx, d, cfg, func(ctx context.Context, a control.Admin) error {
		token, err := a.CreateToken(ctx, *uses, *expires)
		if err != nil {
			return err
		}
		fmt.Fprintln(d.stdout, token)
		return nil
	})
}
