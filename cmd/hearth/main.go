package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], systemDeps()))
}

// Exit codes, the contract scripts and container health checks rely on.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // the command line was wrong
)

// errUsage marks a command-line mistake whose message and usage text are already printed.
var errUsage = errors.New("usage error")

// errReported marks a failure the command has already explained on stderr.
var errReported = errors.New("failure already reported")

// command is one node of the command tree: a leaf with run, or a group with sub.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, d *deps, args []string) error
	sub     []command
}

func commands() []command {
	return []command{
		{name: "serve", summary: "run the homeserver", run: cmdServe},
		{name: "user", summary: "manage accounts", sub: []command{
			{name: "add", summary: "create an account", run: cmdUserAdd},
			{name: "list", summary: "list accounts", run: cmdUserList},
			{name: "passwd", summary: "set an account's password", run: cmdUserPasswd},
			{name: "deactivate", summary: "deactivate an account", run: cmdUserDeactivate},
		}},
		{name: "token", summary: "manage registration tokens", sub: []command{
			{name: "create", summary: "create a registration token", run: cmdTokenCreate},
		}},
		{name: "devices", summary: "the device bridge (server must run)", sub: []command{
			{name: "list", summary: "list devices and their state", run: cmdDevicesList},
			{name: "pair-hue", summary: "pair a Philips Hue bridge", run: cmdDevicesPairHue},
			{name: "forget", summary: "remove a device from its room", run: cmdDevicesForget},
		}},
		{name: "config", summary: "inspect the configuration", sub: []command{
			{name: "check", summary: "validate the configuration", run: cmdConfigCheck},
		}},
		{name: "healthcheck", summary: "probe the client API (for container health checks)", run: cmdHealthcheck},
		{name: "version", summary: "print the version", run: cmdVersion},
	}
}

// run executes one command line and returns the process exit code.
func run(ctx context.Context, args []string, d *deps) int {
	err := dispatch(ctx, d, commands(), "hearth", args)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errUsage):
		return exitUsage
	case errors.Is(err, errReported):
		return exitFailure
	default:
		fmt.Fprintf(d.stderr, "hearth: %v\n", err)
		return exitFailure
	}
}

// dispatch walks the command tree along args and runs the leaf it reaches. A leaf's own errors
// are prefixed with its path ("user add: ...") so the message says which command failed.
func dispatch(ctx context.Context, d *deps, cmds []command, path string, args []string) error {
	if len(args) == 0 {
		printCommands(d.stderr, path, cmds)
		return errUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		printCommands(d.stdout, path, cmds)
		return nil
	}
	for _, c := range cmds {
		if c.name != args[0] {
			continue
		}
		if c.sub != nil {
			return dispatch(ctx, d, c.sub, path+" "+c.name, args[1:])
		}
		err := c.run(ctx, d, args[1:])
		if err == nil || errors.Is(err, errUsage) || errors.Is(err, errReported) || errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%s: %w", strings.TrimPrefix(path+" "+c.name, "hearth "), err)
	}
	fmt.Fprintf(d.stderr, "%s: unknown command %q\n\n", path, args[0])
	printCommands(d.stderr, path, cmds)
	return errUsage
}

func printCommands(w io.Writer, path string, cmds []command) {
	fmt.Fprintf(w, "Usage: %s <command> [arguments] [flags]\n\nCommands:\n", path)
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun '%s <command> -h' for a command's flags.\n", path)
}

func cmdVersion(_ context.Context, d *deps, args []string) error {
	fs := newFlagSet(d, "version", "", "Print the version.")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(d.stdout, "hearth %s\n", d.version)
	return nil
}
