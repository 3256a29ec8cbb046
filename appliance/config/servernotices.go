package config

import (
	"fmt"
	"regexp"
	"strings"
)

// ServerNotices configures server notices (matrix/servernotices): messages from the server
// to one user, sent with the admin API's send_server_notice into a per-user room. The key
// names are Synapse's.
type ServerNotices struct {
	// SystemMXIDLocalpart is the localpart of the user notices come from (for example
	// "server"); empty disables server notices. The account is created without a password.
	SystemMXIDLocalpart string `yaml:"system_mxid_localpart"`
	// SystemMXIDDisplayName and SystemMXIDAvatarURL are that user's profile.
	SystemMXIDDisplayName string `yaml:"system_mxid_display_name"`
	SystemMXIDAvatarURL   string `yaml:"system_mxid_avatar_url"`
	// RoomName, RoomTopic and RoomAvatarURL are given to each notices room when it is made.
	RoomName      string `yaml:"room_name"`
	RoomTopic     string `yaml:"room_topic"`
	RoomAvatarURL string `yaml:"room_avatar_url"`
}

// DefaultServerNotices is the server_notices section of Default: off, with Synapse's names
// ready for when a localpart is set.
func DefaultServerNotices() ServerNotices {
	return ServerNotices{SystemMXIDDisplayName: "Server Notices", RoomName: "Server Notices"}
}

// noticeLocalpartRE is the user ID localpart grammar registration accepts.
var noticeLocalpartRE = regexp.MustCompile(`^[a-z0-9._=\-/+]+$`)

// problems reports server notices settings that cannot work.
func (n ServerNotices) problems() []error {
	var errs []error
	if lp := n.SystemMXIDLocalpart; lp != "" && !noticeLocalpartRE.MatchString(lp) {
		errs = append(errs, fmt.Errorf("server_notices.system_mxid_localpart %q may only contain a-z, 0-9 and . _ = - / +", lp))
	}
	for _, u := range []struct{ key, v string }{{"system_mxid_avatar_url", n.SystemMXIDAvatarURL}, {"room_avatar_url", n.RoomAvatarURL}} {
		if u.v != "" && !strings.HasPrefix(u.v, "mxc://") {
			errs = append(errs, fmt.Errorf("server_notices.%s must be an mxc:// URI, got %q", u.key, u.v))
		}
	}
	return errs
}
