package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthTimeout is the whole probe's budget; container runtimes count a hang as a failure anyway.
const healthTimeout = 5 * time.Second

func cmdHealthcheck(ctx context.Context, d *deps, args []string) error {
	fs := newFlagSet(d, "healthcheck", "[flags]",
		"Exit 0 if the client API answers GET /_matrix/client/versions with 200 within 5 s, else 1.")
	url := fs.String("url", "", "`URL` to probe (default: /_matrix/client/versions on the configured listen address)")
	cf := addConfigFlags(fs, "listen")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	target := *url
	if target == "" {
		// Not validated: the probe only needs the listen address, and a health check that
		// fails over an unrelated setting would restart a working server.
		cfg, err := cf.load(d)
		if err != nil {
			return err
		}
		if target, err = versionsURL(cfg.Listen); err != nil {
			return err
		}
	}
	return probe(ctx, d.http, target)
}

// versionsURL is the probe URL for a listen address. A wildcard address is probed on
// loopback: the health check runs on the same machine (or in the same container).
func versionsURL(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return "http://" + net.JoinHostPort(host, port) + "/_matrix/client/versions", nil
}

func probe(ctx context.Context, client *http.Client, url string) error {
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Drain a little so the server does not log a reset connection.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}
