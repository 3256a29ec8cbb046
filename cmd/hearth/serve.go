package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/hearth-home/hearth/appliance/config"
)

func cmdServe(ctx context.Context, d *deps, args []string) error {
	fs := newFlagSet(d, "serve", "[flags]",
		"Run the homeserver until SIGINT or SIGTERM. Settings come from, lowest first: defaults,\n"+
			"the config file, HEARTH_* environment variables (e.g. HEARTH_LIMITS_RATE_LIMIT), flags.")
	cf := addConfigFlags(fs)
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	cfg, err := cf.loadValid(d)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, d.stderr, slog.LevelDebug)
	log.Info("starting hearth", "version", d.version, "server_name", cfg.ServerName,
		"listen", cfg.Listen, "data_dir", cfg.DataDir, "memory_limit", memoryLimit())

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, give the default behaviour back: a second Ctrl-C during a slow
	// shutdown then kills the process instead of being swallowed.
	context.AfterFunc(ctx, func() { stop() })

	if err := d.runServer(ctx, cfg, log); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// memoryLimit describes the soft memory limit the runtime took from GOMEMLIMIT; passing a
// negative value to SetMemoryLimit reads the limit without changing it.
func memoryLimit() string {
	limit := debug.SetMemoryLimit(-1)
	if limit == math.MaxInt64 {
		return "none (set GOMEMLIMIT on small boards)"
	}
	return fmt.Sprintf("%d MiB", limit>>20)
}

// newLogger builds a logger from the configuration. floor raises the level: the admin commands
// write to a person's terminal, where the store's info chatter is noise.
func newLogger(c config.Log, w io.Writer, floor slog.Level) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // Validate has rejected unknown levels
	opts := &slog.HandlerOptions{Level: max(level, floor)}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
