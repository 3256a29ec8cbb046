package hue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// Credentials are what pairing yields and what the adapter needs: the caller persists them.
type Credentials struct {
	// Address is the bridge's host or host:port (an https:// prefix is accepted).
	Address string `json:"address"`
	// AppKey is the "username" the bridge issued; sent as the hue-application-key header.
	AppKey string `json:"app_key"`
	// ClientKey is the entertainment (streaming) key; unused by Hearth, kept so it need not
	// pair again to stream.
	ClientKey string `json:"client_key,omitempty"`
	// Fingerprint is the hex SHA-256 of the bridge's certificate seen while pairing.
	Fingerprint string `json:"cert_sha256"`
}

// errLinkButton is the CLIP v1 error type the bridge answers while its button is not pressed.
const errLinkButton = 101

// ErrPairTimeout is returned when nobody pressed the link button in time.
var ErrPairTimeout = errors.New("hue: link button was not pressed in time")

// Pairer asks a bridge for an application key.
type Pairer struct {
	// Interval between attempts while waiting for the button (default 2s).
	Interval time.Duration
	// Timeout for the whole pairing (default 90s; the button stays armed for 30s once pressed).
	Timeout time.Duration
	// Host names this installation in the bridge's app list (default: os.Hostname()).
	Host string
}

// Pair asks the bridge at addr for an application key with the default Pairer; see
// Pairer.Pair.
func Pair(ctx context.Context, addr string, notify func(msg string)) (Credentials, error) {
	return Pairer{}.Pair(ctx, addr, notify)
}

// Pair asks the bridge at addr for an application key. While the bridge answers "link button
// not pressed", notify is told (once) to ask the user to press it and the request is repeated
// until the bridge agrees, the timeout passes or ctx ends. The bridge certificate seen on the
// first connection is pinned into the returned Credentials.
func (p Pairer) Pair(ctx context.Context, addr string, notify func(msg string)) (Credentials, error) {
	base, err := baseURL(addr)
	if err != nil {
		return Credentials{}, err
	}
	interval, timeout := p.Interval, p.Timeout
	if interval <= 0 {
		interval = 2 * time.Second
	}
	if timeout <= 0 {
		timeout = 90 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	pin := &tofu{}
	hc := newHTTPClient(pin.config())
	defer hc.CloseIdleConnections()
	body, err := json.Marshal(map[string]any{
		"devicetype":        deviceType(p.Host),
		"generateclientkey": true,
	})
	if err != nil {
		return Credentials{}, fmt.Errorf("hue: encode pairing request: %w", err)
	}
	told := false
	for {
		user, clientKey, errType, err := pairOnce(ctx, hc, base, body)
		switch {
		case err != nil && ctx.Err() != nil:
			if errors.Is(ctx.Err(), context.DeadlineExceeded) && told {
				return Credentials{}, ErrPairTimeout
			}
			return Credentials{}, fmt.Errorf("hue: pairing with %s: %w", addr, err)
		case err != nil:
			return Credentials{}, fmt.Errorf("hue: pairing with %s: %w", addr, err)
		case errType == errLinkButton:
			if !told && notify != nil {
				notify(fmt.Sprintf("Press the round link button on the Hue bridge at %s; waiting up to %s.",
					strings.TrimPrefix(base, "https://"), timeout.Round(time.Second)))
			}
			told = true
		default:
			return Credentials{
				Address:     strings.TrimPrefix(base, "https://"),
				AppKey:      user,
				ClientKey:   clientKey,
				Fingerprint: pin.fingerprint(),
			}, nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return Credentials{}, ErrPairTimeout
			}
			return Credentials{}, fmt.Errorf("hue: pairing with %s: %w", addr, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// pairOnce makes one POST /api. It returns the key, or the bridge's error type when that is
// "link button not pressed"; any other bridge error becomes err.
func pairOnce(ctx context.Context, hc *http.Client, base string, body []byte) (user, clientKey string, errType int, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api", bytes.NewReader(body))
	if err != nil {
		return "", "", 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", "", 0, fmt.Errorf("POST /api: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", "", 0, fmt.Errorf("read POST /api: %w", err)
	}
	// The v1 answer is a list of {"success": {...}} or {"error": {...}} objects.
	var items []struct {
		Success *struct {
			Username  string `json:"username"`
			ClientKey string `json:"clientkey"`
		} `json:"success"`
		Error *struct {
			Type        int    `json:"type"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &items); err != nil {
		return "", "", 0, fmt.Errorf("POST /api: %s: decode: %w", resp.Status, err)
	}
	for _, it := range items {
		switch {
		case it.Success != nil && it.Success.Username != "":
			return it.Success.Username, it.Success.ClientKey, 0, nil
		case it.Error != nil && it.Error.Type == errLinkButton:
			return "", "", errLinkButton, nil
		case it.Error != nil:
			return "", "", 0, fmt.Errorf("POST /api: bridge error %d: %s", it.Error.Type, it.Error.Description)
		}
	}
	return "", "", 0, fmt.Errorf("POST /api: %s: no key in answer", resp.Status)
}

// deviceType is "hearth#<host>", within the bridge's limits (20 characters of application
// name, 19 of device name).
func deviceType(host string) string {
	if host == "" {
		host, _ = os.Hostname()
	}
	if host == "" {
		host = "appliance"
	}
	if len(host) > 19 {
		host = host[:19]
	}
	return "hearth#" + host
}
