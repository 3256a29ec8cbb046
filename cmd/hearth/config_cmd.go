package main

import (
	"context"
	"fmt"
)

func cmdConfigCheck(_ context.Context, d *deps, args []string) error {
	fs := newFlagSet(d, "config check", "[flags]",
		"Load the configuration exactly as serve would and report every problem.")
	cf := addConfigFlags(fs)
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	cfg, err := cf.load(d)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(d.stderr, "config has problems:")
		for _, problem := range unjoin(err) {
			fmt.Fprintf(d.stderr, "  - %v\n", problem)
		}
		return errReported
	}
	fmt.Fprintln(d.stdout, "config ok")
	return nil
}

// unjoin lists the errors inside an errors.Join result, or err itself.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
