package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"

	mas "maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/control"
	"github.com/hearth-home/hearth/devices"
	"github.com/hearth-home/hearth/devices/bridge"
	"github.com/hearth-home/hearth/devices/drone"
	"github.com/hearth-home/hearth/devices/gpio"
	"github.com/hearth-home/hearth/devices/hue"
	"github.com/hearth-home/hearth/devices/mqtt"
	"github.com/hearth-home/hearth/matrix/appservice"
	"github.com/hearth-home/hearth/matrix/store"
)

// deviceSys is the device bridge: the registry the adapters report into and the bridge that
// mirrors it into rooms. The bridge is registered as an application service like any other
// (see deviceRegistrations); its transactions come over a loopback listener bound here.
type deviceSys struct {
	reg    *devices.Registry
	ln     net.Listener
	as     *mas.Registration
	bridge *bridge.Bridge
	wg     sync.WaitGroup
}

// deviceRegistrations binds the bridge's transaction listener and returns its registration,
// which openAppServices adds to those loaded from appservice_dir. Nil when devices are off.
func (a *Appliance) deviceRegistrations() ([]*appservice.AppService, error) {
	if !a.cfg.Devices.Enabled {
		return nil, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("device bridge listener: %w", err)
	}
	reg, err := bridge.LoadRegistration(a.st, a.cfg.ServerName, "http://"+ln.Addr().String())
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	parsed, err := appservice.Parse(reg, a.cfg.ServerName)
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("device bridge registration: %w", err)
	}
	a.devices = &deviceSys{reg: devices.NewRegistry(a.log.With("component", "devices")), ln: ln, as: reg}
	return []*appservice.AppService{parsed}, nil
}

// openDevices builds the adapters and the bridge once the client API address is known.
func (a *Appliance) openDevices() error {
	d := a.devices
	if d == nil {
		return nil
	}
	adapters, err := a.deviceAdapters()
	if err != nil {
		return err
	}
	for _, adp := range adapters {
		if err := d.reg.Add(adp); err != nil {
			return err
		}
	}
	opt := bridge.Options{
		ServerName:        a.cfg.ServerName,
		HomeserverURL:     "http://" + loopback(a.ClientAddr()),
		Registration:      d.as,
		Listener:          d.ln,
		Store:             a.st,
		Registry:          d.reg,
		Admins:            a.adminUsers,
		CommandPowerLevel: a.cfg.Devices.CommandPowerLevel,
		AllowRemote:       a.cfg.Devices.AllowRemote,
		MinInterval:       a.cfg.Devices.MinInterval,
		MinDelta:          a.cfg.Devices.MinDelta,
		StateInterval:     a.cfg.Devices.StateInterval,
		Log:               a.log.With("component", "device-bridge"),
	}
	if a.cfg.Devices.Encryption {
		// The bot's device is made here, by the composition root, because the homeserver does
		// not offer m.login.application_service on /login; everything after this goes over
		// the client-server API like any client's device.
		tok, dev, err := a.accounts.Login(context.Background(), bridge.BotLocalpart, "HEARTHBRIDGE", "Hearth device bridge")
		if err != nil {
			return fmt.Errorf("device bridge: bot device: %w", err)
		}
		opt.Crypto = &bridge.CryptoOptions{DeviceID: id.DeviceID(dev), AccessToken: tok}
	}
	b, err := bridge.New(opt)
	if err != nil {
		return err
	}
	d.bridge = b
	return nil
}

// deviceAdapters builds the configured adapters. The Hue bridges are those of the config and
// those paired with `hearth devices pair-hue` (kept in the store).
func (a *Appliance) deviceAdapters() ([]devices.Adapter, error) {
	var out []devices.Adapter
	if m := a.cfg.Devices.MQTT; m.Enabled {
		mc := mqtt.Config{
			DiscoveryPrefix: m.DiscoveryPrefix,
			Z2MBaseTopic:    m.Z2MBaseTopic,
			Logger:          a.log.With("adapter", "mqtt"),
		}
		if m.Listen != "" {
			// Embedded broker: the configured login is the one devices and Zigbee2MQTT use.
			mc.Listen = m.Listen
			if m.Username != "" {
				mc.Users = []mqtt.User{{Username: m.Username, Password: m.Password}}
			}
		} else {
			mc.BrokerURL, mc.Username, mc.Password = m.Broker, m.Username, m.Password
		}
		ad, err := mqtt.New(mc)
		if err != nil {
			return nil, fmt.Errorf("devices.mqtt: %w", err)
		}
		out = append(out, ad)
	}
	if g := a.cfg.Devices.GPIO; len(g.Switches)+len(g.Sensors) > 0 {
		var gc gpio.Config
		for _, p := range g.Switches {
			gc.Switches = append(gc.Switches, gpio.SwitchConfig{Pin: p.Pin, ID: p.ID, Name: p.Name, Area: p.Area, ActiveLow: p.ActiveLow})
		}
		for _, p := range g.Sensors {
			gc.Sensors = append(gc.Sensors, gpio.SensorConfig{Pin: p.Pin, ID: p.ID, Name: p.Name, Area: p.Area, ActiveLow: p.ActiveLow,
				DeviceClass: p.DeviceClass, Pull: p.Pull, Debounce: p.Debounce, Edge: p.Edge})
		}
		ad, err := gpio.New(gc, gpio.HostPins(), a.log.With("adapter", "gpio"))
		if err != nil {
			return nil, fmt.Errorf("devices.gpio: %w", err)
		}
		out = append(out, ad)
	}
	for i, dr := range a.cfg.Devices.Drones {
		name := "tello" // adapter names are ID prefixes and must be unique: tello, tello2 ...
		if i > 0 {
			name = fmt.Sprintf("tello%d", i+1)
		}
		ad, err := drone.New(drone.Config{Adapter: name, Name: dr.Name, Area: dr.Area, Addr: dr.Address}, a.log.With("adapter", name))
		if err != nil {
			return nil, fmt.Errorf("devices.drones[%d]: %w", i, err)
		}
		out = append(out, ad)
	}
	creds := a.pairedHue()
	for _, h := range a.cfg.Devices.Hue {
		creds = append(creds, hue.Credentials{Address: h.Address, AppKey: h.AppKey, Fingerprint: h.Fingerprint})
	}
	if len(creds) > 0 {
		// One Hue adapter: the adapter's name is its ID prefix, so a second bridge would need
		// a second prefix; households with two Hue bridges are rare enough to wait for it.
		ad, err := hue.New(hue.Config{Credentials: creds[0], Log: a.log.With("adapter", "hue")})
		if err != nil {
			return nil, fmt.Errorf("devices.hue: %w", err)
		}
		out = append(out, ad)
	}
	return out, nil
}

const recHuePairings = "hue-pairings"

func (a *Appliance) pairedHue() []hue.Credentials {
	var out []hue.Credentials
	_ = a.st.View(func(txn *store.Txn) error {
		raw, err := txn.DeviceBridgeState(recHuePairings)
		if err == nil {
			_ = json.Unmarshal(raw, &out)
		}
		return nil
	})
	return out
}

// adminUsers are invited to the bridge's rooms.
func (a *Appliance) adminUsers(ctx context.Context) ([]id.UserID, error) {
	users, err := a.accounts.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []id.UserID
	for _, u := range users {
		if u.Admin && !u.Deactivated {
			out = append(out, a.accounts.UserID(u.Localpart))
		}
	}
	return out, nil
}

// loopback turns a listen address on all interfaces into one the bridge can dial.
func loopback(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// startDevices runs the adapters and the bridge until ctx ends; the returned function waits
// for them (the bridge writes the store, so it must stop before the store closes).
func (a *Appliance) startDevices(ctx context.Context) func() {
	d := a.devices
	if d == nil || d.bridge == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx) // Run may also return on a listener error
	d.wg.Go(func() { d.reg.Run(ctx) })
	d.wg.Go(func() {
		if err := d.bridge.Run(ctx); err != nil {
			a.log.Error("device bridge stopped", "err", err)
		}
	})
	return func() { cancel(); d.wg.Wait() }
}

// Devices is the device registry (nil when devices are off); tests and the bench add adapters.
func (a *Appliance) Devices() *devices.Registry {
	if a.devices == nil {
		return nil
	}
	return a.devices.reg
}

// DeviceBridge is the running bridge (nil when devices are off).
func (a *Appliance) DeviceBridge() *bridge.Bridge {
	if a.devices == nil {
		return nil
	}
	return a.devices.bridge
}

// ListDevices implements control.DeviceAdmin.
func (d *admin) ListDevices(ctx context.Context) ([]control.DeviceInfo, error) {
	if d.a.devices == nil {
		return nil, errors.New("the device bridge is off (devices.enabled)")
	}
	var out []control.DeviceInfo
	for _, e := range d.a.devices.reg.List() {
		raw, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		out = append(out, control.DeviceInfo(raw))
	}
	return out, nil
}

// ForgetDevice implements control.DeviceAdmin.
func (d *admin) ForgetDevice(ctx context.Context, devID string) error {
	if d.a.devices == nil || d.a.devices.bridge == nil {
		return errors.New("the device bridge is off (devices.enabled)")
	}
	return d.a.devices.bridge.Forget(ctx, devID)
}

// PairHue implements control.DeviceAdmin: it waits for the bridge's link button, stores the
// credentials and starts the adapter.
func (d *admin) PairHue(ctx context.Context, addr string) (string, error) {
	if d.a.devices == nil {
		return "", errors.New("the device bridge is off (devices.enabled)")
	}
	if addr == "" {
		found, err := hue.Discover(ctx)
		if err != nil {
			return "", fmt.Errorf("discover Hue bridges: %w", err)
		}
		if len(found) == 0 {
			return "", errors.New("no Hue bridge found on the network: give its address")
		}
		addr = found[0].Address
	}
	creds, err := hue.Pair(ctx, addr, func(string) {})
	if err != nil {
		return "", err
	}
	paired := d.a.pairedHue()
	paired = slices.DeleteFunc(paired, func(c hue.Credentials) bool { return c.Address == creds.Address })
	paired = append(paired, creds)
	raw, err := json.Marshal(paired)
	if err != nil {
		return "", err
	}
	if err := d.a.st.Update(func(txn *store.Txn) error { return txn.SetDeviceBridgeState(recHuePairings, raw) }); err != nil {
		return "", err
	}
	if _, running := d.a.devices.reg.Adapter(hue.AdapterName); !running {
		ad, err := hue.New(hue.Config{Credentials: creds, Log: d.a.log.With("adapter", "hue")})
		if err != nil {
			return "", err
		}
		if err := d.a.devices.reg.Add(ad); err != nil {
			return "", err
		}
	}
	return creds.Address, nil
}
