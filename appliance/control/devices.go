package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// The device bridge's operations (`hearth devices ...`). They only make sense while the server
// runs (the registry lives in memory), so there is no offline implementation.
const (
	opDevicesList   = "devices.list"
	opDevicesForget = "devices.forget"
	opDevicesPair   = "devices.pair-hue" // Name is the bridge address ("" = discover)
)

// DeviceInfo is one device with its state, as JSON (devices.Entry): the control package does
// not import the device model.
type DeviceInfo = json.RawMessage

// DeviceAdmin is what `hearth devices` can do; the running appliance's Admin implements it.
type DeviceAdmin interface {
	ListDevices(ctx context.Context) ([]DeviceInfo, error)
	ForgetDevice(ctx context.Context, id string) error
	// PairHue waits for the link button of the Hue bridge at addr, stores the pairing and
	// starts its adapter; it returns the bridge's address.
	PairHue(ctx context.Context, addr string) (string, error)
}

// ErrNoDevices is returned when the server has no device support at all.
var ErrNoDevices = errors.New("this server has no device bridge")

func (s *Server) dispatchDevices(ctx context.Context, req request) (any, error) {
	d, ok := s.admin.(DeviceAdmin)
	if !ok {
		return nil, ErrNoDevices
	}
	switch req.Op {
	case opDevicesList:
		list, err := d.ListDevices(ctx)
		if list == nil {
			list = []DeviceInfo{}
		}
		return list, err
	case opDevicesForget:
		return nil, d.ForgetDevice(ctx, req.Name)
	case opDevicesPair:
		addr, err := d.PairHue(ctx, req.Name)
		return map[string]string{"address": addr}, err
	}
	return nil, fmt.Errorf("unknown op %q", req.Op)
}

// DialDevices is Dial for the device operations.
func DialDevices(path string) (DeviceAdmin, error) {
	a, err := Dial(path)
	if err != nil {
		return nil, err
	}
	return a.(*client), nil
}

func (c *client) ListDevices(ctx context.Context) ([]DeviceInfo, error) {
	var out []DeviceInfo
	err := c.call(ctx, request{Op: opDevicesList}, &out)
	return out, err
}

func (c *client) ForgetDevice(ctx context.Context, id string) error {
	return c.call(ctx, request{Op: opDevicesForget, Name: id}, nil)
}

func (c *client) PairHue(ctx context.Context, addr string) (string, error) {
	var out struct {
		Address string `json:"address"`
	}
	err := c.call(ctx, request{Op: opDevicesPair, Name: addr}, &out)
	return out.Address, err
}
