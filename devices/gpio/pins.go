package gpio

import (
	"fmt"
	"sync"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
)

// PinSource finds a pin by name.
type PinSource func(name string) (gpio.PinIO, error)

// HostPins returns the board's real pins: periph's host drivers are loaded on first use
// (host.Init is idempotent), then pins are found by name or number in periph's registry.
func HostPins() PinSource {
	var once sync.Once
	var initErr error
	return func(name string) (gpio.PinIO, error) {
		once.Do(func() {
			if _, err := host.Init(); err != nil {
				initErr = fmt.Errorf("gpio: load host drivers: %w", err)
			}
		})
		if initErr != nil {
			return nil, initErr
		}
		p := gpioreg.ByName(name)
		if p == nil {
			return nil, fmt.Errorf("gpio: this board has no pin %q", name)
		}
		return p, nil
	}
}
