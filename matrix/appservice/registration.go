package appservice

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	mas "maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/id"
)

// AppService is one loaded registration with its namespaces compiled.
type AppService struct {
	Reg     *mas.Registration
	Sender  id.UserID
	users   []namespace
	aliases []namespace
	rooms   []namespace
}

type namespace struct {
	re        *regexp.Regexp
	exclusive bool
}

// ID is the registration's id.
func (a *AppService) ID() string { return a.Reg.ID }

func compile(list mas.NamespaceList) ([]namespace, error) {
	out := make([]namespace, 0, len(list))
	for _, n := range list {
		// Registrations are written as full matches ("^@irc_.*:example.org$"); anchoring both
		// ends makes an unanchored one mean the same thing.
		re, err := regexp.Compile("^(?:" + n.Regex + ")$")
		if err != nil {
			return nil, fmt.Errorf("namespace regex %q: %w", n.Regex, err)
		}
		out = append(out, namespace{re: re, exclusive: n.Exclusive})
	}
	return out, nil
}

func match(list []namespace, s string, exclusiveOnly bool) bool {
	for _, n := range list {
		if (!exclusiveOnly || n.exclusive) && n.re.MatchString(s) {
			return true
		}
	}
	return false
}

// OwnsUser reports whether a user ID is the service's sender or in its user namespaces.
func (a *AppService) OwnsUser(u string) bool {
	return u == a.Sender.String() || match(a.users, u, false)
}

// ExclusiveUser reports whether a user ID is in one of its exclusive user namespaces.
func (a *AppService) ExclusiveUser(u string) bool {
	return u == a.Sender.String() || match(a.users, u, true)
}

// OwnsAlias reports whether an alias is in its alias namespaces.
func (a *AppService) OwnsAlias(al string) bool { return match(a.aliases, al, false) }

// ExclusiveAlias reports whether an alias is in one of its exclusive alias namespaces.
func (a *AppService) ExclusiveAlias(al string) bool { return match(a.aliases, al, true) }

// OwnsRoom reports whether a room ID is in its room namespaces.
func (a *AppService) OwnsRoom(r string) bool { return match(a.rooms, r, false) }

// Parse checks one registration and compiles it.
func Parse(reg *mas.Registration, serverName string) (*AppService, error) {
	switch {
	case reg.ID == "":
		return nil, fmt.Errorf("missing id")
	case reg.AppToken == "" || reg.ServerToken == "":
		return nil, fmt.Errorf("appservice %s: as_token and hs_token are required", reg.ID)
	case reg.AppToken == reg.ServerToken:
		return nil, fmt.Errorf("appservice %s: as_token and hs_token must differ", reg.ID)
	case reg.SenderLocalpart == "":
		return nil, fmt.Errorf("appservice %s: missing sender_localpart", reg.ID)
	}
	a := &AppService{Reg: reg, Sender: id.NewUserID(reg.SenderLocalpart, serverName)}
	var err error
	if a.users, err = compile(reg.Namespaces.UserIDs); err != nil {
		return nil, fmt.Errorf("appservice %s: %w", reg.ID, err)
	}
	if a.aliases, err = compile(reg.Namespaces.RoomAliases); err != nil {
		return nil, fmt.Errorf("appservice %s: %w", reg.ID, err)
	}
	if a.rooms, err = compile(reg.Namespaces.RoomIDs); err != nil {
		return nil, fmt.Errorf("appservice %s: %w", reg.ID, err)
	}
	return a, nil
}

// LoadDir reads every *.yaml and *.yml registration in dir ("" = none). IDs, as_tokens and
// hs_tokens must be unique.
func LoadDir(dir, serverName string) ([]*AppService, error) {
	if dir == "" {
		return nil, nil
	}
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("appservice_dir: %w", err)
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() && (strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	seen := map[string]string{}
	var out []*AppService
	for _, n := range names {
		p := filepath.Join(dir, n)
		reg, err := mas.LoadRegistration(p)
		if err != nil {
			return nil, fmt.Errorf("appservice registration %s: %w", p, err)
		}
		a, err := Parse(reg, serverName)
		if err != nil {
			return nil, fmt.Errorf("appservice registration %s: %w", p, err)
		}
		for _, k := range []string{"id:" + reg.ID, "token:" + reg.AppToken, "token:" + reg.ServerToken} {
			if prev, dup := seen[k]; dup {
				return nil, fmt.Errorf("appservice registration %s: %s duplicates one in %s", p, strings.SplitN(k, ":", 2)[0], prev)
			}
			seen[k] = p
		}
		out = append(out, a)
	}
	return out, nil
}
