package appliance

import (
	"github.com/hearth-home/hearth/matrix/appservice"
)

// openAppServices loads the application-service registrations from the config's
// appservice_dir and starts their transaction workers.
func (a *Appliance) openAppServices() error {
	list, err := appservice.LoadDir(a.cfg.AppServiceDir, a.cfg.ServerName)
	if err != nil {
		return err
	}
	own, err := a.deviceRegistrations() // devices.go: the device bridge is an appservice too
	if err != nil {
		return err
	}
	list = append(list, own...)
	if a.appsvc, err = appservice.New(a.st, a.accounts, list, a.log); err != nil {
		return err
	}
	a.appsvc.Watch(a.bus)
	if a.push != nil { // application-service users get no push evaluation (push/evalroom.go)
		a.push.SkipUsers(func(u string) bool { return a.appsvc.ExclusiveUser(u) != nil })
	}
	if len(list) > 0 {
		a.log.Info("application services loaded", "count", len(list))
	}
	return nil
}
