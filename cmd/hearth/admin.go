package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/control"
)

// withAdmin runs fn against the running server through its control socket or, when none runs,
// against the store opened directly and closed afterwards, so each command is written once.
// Only ErrNotRunning leads to the store: any other failure to reach the socket may mean a live
// server we cannot talk to, and opening its store beside it is what must never happen (the
// store's directory lock is the last line of defence if a server starts meanwhile).
// SIGINT and SIGTERM cancel fn's context so an offline store is closed rather than killed.
func withAdmin(ctx context.Context, d *deps, cfg config.Config, fn func(context.Context, control.Admin) error) (err error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	admin, err := d.dial(control.SocketPath(cfg.DataDir))
	if err == nil {
		return fn(ctx, admin)
	}
	if !errors.Is(err, control.ErrNotRunning) {
		return err
	}
	log := newLogger(cfg.Log, d.stderr, slog.LevelWarn)
	admin, closeStore, err := d.openOffline(cfg, log)
	if err != nil {
		return fmt.Errorf("no server running; open store in %s: %w", cfg.DataDir, err)
	}
	defer func() {
		if cerr := closeStore(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close store: %w", cerr))
		}
	}()
	return fn(ctx, admin)
}
