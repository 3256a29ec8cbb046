package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/hearth-home/hearth/appliance/control"
)

const nameHelp = "NAME is the localpart (alice) or the full user ID (@alice:example.org)."

func cmdUserAdd(ctx context.Context, d *deps, args []string) error {
	fs := newFlagSet(d, "user add", "NAME [flags]",
		"Create an account and print its user ID. "+nameHelp+"\n"+
			"The password is prompted for twice on a terminal, else read as one line from stdin.")
	cf := addConfigFlags(fs, "data")
	isAdmin := fs.Bool("admin", false, "make the account a server admin")
	fromStdin := fs.Bool("password-stdin", false, "read the password as one line from standard input")
	pos, err := parseArgs(fs, args, "NAME")
	if err != nil {
		return err
	}
	cfg, err := cf.loadValid(d)
	if err != nil {
		return err
	}
	password, err := readNewPassword(d, *fromStdin)
	if err != nil {
		return err
	}
	return withAdmin(ctx, d, cfg, func(ctx context.Context, a control.Admin) error {
		userID, err := a.AddUser(ctx, pos[0], password, *isAdmin)
		if err != nil {
			return err
		}
		fmt.Fprintln(d.stdout, userID)
		return nil
	})
}

func cmdUserList(ctx context.Context, d *deps, args []string) error {
	fs := newFlagSet(d, "user list", "[flags]", "List accounts.")
	cf := addConfigFlags(fs, "data")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	cfg, err := cf.loadValid(d)
	if err != nil {
		return err
	}
	return withAdmin(ctx, d, cfg, func(ctx context.Context, a control.Admin) error {
		users, err := a.ListUsers(ctx)
		if err != nil {
			return err
		}
		slices.SortFunc(users, func(a, b control.UserInfo) int { return strings.Compare(a.UserID, b.UserID) })
		tw := tabwriter.NewWriter(d.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USER ID\tADMIN\tDEACTIVATED")
		for _, u := range users {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", u.UserID, yesNo(u.Admin), yesNo(u.Deactivated))
		}
		return tw.Flush()
	})
}

func cmdUserPasswd(ctx context.Context, d *deps, args []string) error {
	fs := newFlagSet(d, "user passwd", "NAME [flags]",
		"Set an account's password. "+nameHelp+"\n"+
			"The password is prompted for twice on a terminal, else read as one line from stdin.")
	cf := addConfigFlags(fs, "data")
	fromStdin := fs.Bool("password-stdin", false, "read the password as one line from standard input")
	pos, err := parseArgs(fs, args, "NAME")
	if err != nil {
		return err
	}
	cfg, err := cf.loadValid(d)
	if err != nil {
		return err
	}
	password, err := readNewPassword(d, *fromStdin)
	if err != nil {
		return err
	}
	return withAdmin(ctx, d, cfg, func(ctx context.Context, a control.Admin) error {
		if err := a.SetPassword(ctx, pos[0], password); err != nil {
			return err
		}
		fmt.Fprintf(d.stdout, "password changed for %s\n", pos[0])
		return nil
	})
}

func cmdUserDeactivate(ctx context.Context, d *deps, args []string) error {
	fs := newFlagSet(d, "user deactivate", "NAME [flags]",
		"Deactivate an account: it can no longer log in. "+nameHelp)
	cf := addConfigFlags(fs, "data")
	pos, err := parseArgs(fs, args, "NAME")
	if err != nil {
		return err
	}
	cfg, err := cf.loadValid(d)
	if err != nil {
		return err
	}
	return withAdmin(ctx, d, cfg, func(ctx context.Context, a control.Admin) error {
		if err := a.Deactivate(ctx, pos[0]); err != nil {
			return err
		}
		fmt.Fprintf(d.stdout, "deactivated %s\n", pos[0])
		return nil
	})
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
