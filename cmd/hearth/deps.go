package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"

	"golang.org/x/term"

	"github.com/hearth-home/hearth/appliance"
	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/control"
)

// deps is everything the commands use from outside the process; tests build their own.
type deps struct {
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	environ []string // "KEY=value", as os.Environ returns
	term    terminal

	// dial reaches a running server's control socket (control.Dial).
	dial func(path string) (control.Admin, error)
	// openOffline opens the store directly when no server runs (appliance.OpenOffline).
	openOffline func(cfg config.Config, log *slog.Logger) (control.Admin, func() error, error)
	// runServer runs the appliance until ctx is cancelled.
	runServer func(ctx context.Context, cfg config.Config, log *slog.Logger) error

	http    *http.Client
	version string
}

// terminal is the part of golang.org/x/term the password prompt needs.
type terminal interface {
	IsTerminal() bool
	ReadPassword() ([]byte, error) // one line, not echoed
}

func systemDeps() *deps {
	return &deps{
		stdin:       os.Stdin,
		stdout:      os.Stdout,
		stderr:      os.Stderr,
		environ:     os.Environ(),
		term:        fdTerminal(os.Stdin.Fd()),
		dial:        control.Dial,
		openOffline: appliance.OpenOffline,
		runServer:   runAppliance,
		// A zero Transport uses no proxy: a health check probes this machine, and an
		// HTTP_PROXY inherited by the container must not turn it into a request elsewhere.
		http:    &http.Client{Transport: &http.Transport{}},
		version: appliance.Version(),
	}
}

func runAppliance(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	a, err := appliance.New(cfg, log)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// fdTerminal is a terminal on a file descriptor.
type fdTerminal uintptr

func (fd fdTerminal) IsTerminal() bool { return term.IsTerminal(int(fd)) }

func (fd fdTerminal) ReadPassword() ([]byte, error) { return term.ReadPassword(int(fd)) }
