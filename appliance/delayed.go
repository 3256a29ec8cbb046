package appliance

import (
	"github.com/hearth-home/hearth/matrix/delayed"
)

// openDelayed builds the delayed events service (MSC4140) when the config enables it. It
// watches the bus from the start so that no overwriting state event is missed; its timers
// only run once Run starts them (startDelayed), so offline administration sends nothing.
func (a *Appliance) openDelayed() error {
	d := a.cfg.DelayedEvents
	if !d.Enabled {
		return nil
	}
	svc, err := delayed.New(a.st, a.rooms, delayed.Options{MaxDelay: d.MaxDelay, MaxPerUser: d.MaxPerUser}, a.log)
	if err != nil {
		return err
	}
	svc.Watch(a.bus)
	a.delayed = svc
	return nil
}

// startDelayed arms the timers: events that fell due while the server was down go out now.
func (a *Appliance) startDelayed() {
	if a.delayed != nil {
		a.delayed.Start()
	}
}
