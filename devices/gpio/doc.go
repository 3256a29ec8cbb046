// Package gpio is the devices.Adapter for the board's own GPIO pins, through periph.io: pins
// configured as switches (outputs driving a relay or LED) and binary sensors (inputs from a
// door contact, PIR or button), with names and areas from the configuration.
//
// Switches are driven to "off" when Run starts, since an output's level before that is not
// known; active-low switches (most relay boards) are on when the pin is low. Sensors wait for
// edges in hardware, then debounce in software: after an edge the pin must stay quiet for the
// debounce time before its level is read, so a bouncing contact yields one report. The Edge
// option chooses which settled transitions are reported (both by default; "rising" or
// "falling" report only the transitions to high or to low); both are always watched, so the
// adapter knows the level either way.
//
// The adapter depends on gpio.PinIO only: HostPins looks real pins up by name after
// host.Init, and tests hand in periph's gpiotest pins.
package gpio
