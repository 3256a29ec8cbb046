package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/appliance/control"
	"github.com/hearth-home/hearth/devices"
)

// The device commands talk to the running server only: the registry of devices lives in the
// bridge's memory (adapters rediscover devices at every start), so there is nothing useful to
// read from the store while the server is down.

// withDevices runs fn against the running server's device bridge.
func withDevices(ctx context.Context, d *deps, cfg config.Config, fn func(context.Context, control.DeviceAdmin) error) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := d.dial(control.SocketPath(cfg.DataDir))
	if errors.Is(err, control.ErrNotRunning) {
		return fmt.Errorf("%w: the device commands need the running server (hearth serve)", err)
	}
	if err != nil {
		return err
	}
	da, ok := a.(control.DeviceAdmin)
	if !ok {
		return control.ErrNoDevices
	}
	return fn(ctx, da)
}

func cmdDevicesList(ctx context.Context, d *deps, args []string) error {
	fs := newFlagSet(d, "devices list", "[flags]", "List the devices the bridge knows, with their state.")
	cf := addConfigFlags(fs, "data")
	asJSON := fs.Bool("json", false, "print JSON (one object per device: device and state)")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	cfg, err := cf.loadValid(d)
	if err != nil {
		return err
	}
	return withDevices(ctx, d, cfg, func(ctx context.Context, a control.DeviceAdmin) error {
		list, err := a.ListDevices(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(d.stdout)
			for _, raw := range list {
				if err := enc.Encode(raw); err != nil {
					return err
				}
			}
			return nil
		}
		tw := tabwriter.NewWriter(d.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tKIND\tAREA\tAVAILABLE\tLAST SEEN")
		for _, raw := range list {
			var e devices.Entry
			if err := json.Unmarshal(raw, &e); err != nil {
				return fmt.Errorf("bad device from the server: %w", err)
			}
			seen := "-"
			if !e.State.LastSeen.IsZero() {
				seen = e.State.LastSeen.Local().Format(time.DateTime)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Device.ID, e.Device.Name, e.Device.Kind, e.Device.Area, yesNo(e.State.Available), seen)
		}
		return tw.Flush()
	})
}

func cmdDevicesForget(ctx context.Context, d *deps, args []string) error {
	fs := newFlagSet(d, "devices forget", "ID [flags]",
		"Remove a device: its virtual user leaves its room and its state is cleared. A device\n"+
			"that its adapter still announces comes back; unpair or remove it there first.")
	cf := addConfigFlags(fs, "data")
	pos, err := parseArgs(fs, args, "ID")
	if err != nil {
		return err
	}
	cfg, err := cf.loadValid(d)
	if err != nil {
		return err
	}
	return withDevices(ctx, d, cfg, func(ctx context.Context, a control.DeviceAdmin) error {
		return a.ForgetDevice(ctx, pos[0])
	})
}

func cmdDevicesPairHue(ctx context.Context, d *deps, args []string) error {
	fs := newFlagSet(d, "devices pair-hue", "[flags]",
		"Pair a Philips Hue bridge: press its link button when asked. The pairing is kept in\n"+
			"the store and the bridge's lights appear at once.")
	cf := addConfigFlags(fs, "data")
	addr := fs.String("address", "", "the Hue bridge's host or host:port (default: the first bridge found by mDNS)")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	cfg, err := cf.loadValid(d)
	if err != nil {
		return err
	}
	fmt.Fprintln(d.stderr, "Press the link button on the Hue bridge now (waiting up to a minute)...")
	return withDevices(ctx, d, cfg, func(ctx context.Context, a control.DeviceAdmin) error {
		got, err := a.PairHue(ctx, *addr)
		if err != nil {
			return err
		}
		fmt.Fprintf(d.stdout, "paired with the Hue bridge at %s\n", got)
		return nil
	})
}
