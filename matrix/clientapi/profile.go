package clientapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/matrix/merr"
)

// Profiles: the whole profile and the per-field endpoints (v1.16 generalised them to any key;
// this server stores displayname and avatar_url only). A change is propagated to the user's
// member events in every joined room before the request returns.

const (
	profileDisplayName = "displayname"
	profileAvatarURL   = "avatar_url"
	// maxDisplayNameLen bounds a display name (as Synapse); maxAvatarURLLen an avatar URL.
	maxDisplayNameLen = 256
	maxAvatarURLLen   = 1024
	// maxProfileKeyLen is the spec's limit on a profile key (M_KEY_TOO_LARGE).
	maxProfileKeyLen = 255
)

// profileKeyRE is the spec's grammar for profile keys.
var profileKeyRE = regexp.MustCompile(`^(avatar_url|displayname|m\.tz|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+)$`)

func (a *API) routesProfile(g *echo.Group) {
	a.both(g, http.MethodGet, "/profile/:userId", a.getProfile)
	a.both(g, http.MethodGet, "/profile/:userId/:keyName", a.getProfileField)
	a.both(g, http.MethodPut, "/profile/:userId/:keyName", a.putProfileField, a.auth, a.rateLimited)
	a.both(g, http.MethodDelete, "/profile/:userId/:keyName", a.deleteProfileField, a.auth, a.rateLimited)
}

// profileUser reads and checks the {userId} path parameter.
func profileUser(c echo.Context) (id.UserID, error) {
	s, err := accountPathParam(c, "userId")
	if err != nil {
		return "", err
	}
	u := id.UserID(s)
	if _, _, err := u.ParseAndValidateRelaxed(); err != nil {
		return "", merr.InvalidParam("invalid user ID %q", s)
	}
	return u, nil
}

// profileKey reads and checks the {keyName} path parameter.
func profileKey(c echo.Context) (string, error) {
	k, err := accountPathParam(c, "keyName")
	if err != nil {
		return "", err
	}
	if len(k) > maxProfileKeyLen {
		return "", &merr.Error{Status: http.StatusBadRequest, Code: "M_KEY_TOO_LARGE", Message: "profile key is longer than 255 bytes"}
	}
	if !profileKeyRE.MatchString(k) {
		return "", merr.InvalidParam("invalid profile key %q", k)
	}
	return k, nil
}

func (a *API) getProfile(c echo.Context) error {
	u, err := profileUser(c)
	if err != nil {
		return err
	}
	dn, av, err := a.anyProfile(c.Request().Context(), u)
	if err != nil {
		return err
	}
	out := map[string]string{}
	if dn != "" {
		out[profileDisplayName] = dn
	}
	if av != "" {
		out[profileAvatarURL] = av
	}
	return c.JSON(http.StatusOK, out)
}

func (a *API) getProfileField(c echo.Context) error {
	u, err := profileUser(c)
	if err != nil {
		return err
	}
	key, err := profileKey(c)
	if err != nil {
		return err
	}
	dn, av, err := a.anyProfile(c.Request().Context(), u)
	if err != nil {
		return err
	}
	var v string
	switch key {
	case profileDisplayName:
		v = dn
	case profileAvatarURL:
		v = av
	}
	if v == "" {
		return merr.NotFound("the user has no %s", key)
	}
	return c.JSON(http.StatusOK, map[string]string{key: v})
}

// ownProfileField checks a write to a profile field: the caller's own profile, a valid key.
// stored is false for a valid key this server does not keep.
func ownProfileField(c echo.Context) (u id.UserID, key string, stored bool, err error) {
	if u, err = profileUser(c); err != nil {
		return
	}
	if key, err = profileKey(c); err != nil {
		return
	}
	if u != session(c).User {
		err = merr.Forbidden("you may only change your own profile")
		return
	}
	stored = key == profileDisplayName || key == profileAvatarURL
	return
}

func (a *API) putProfileField(c echo.Context) error {
	u, key, stored, err := ownProfileField(c)
	if err != nil {
		return err
	}
	var body map[string]json.RawMessage
	if err := readJSON(c, &body); err != nil {
		return err
	}
	if body == nil {
		return merr.BadJSON("request body must be a JSON object")
	}
	raw, ok := body[key]
	if !ok {
		return merr.MissingParam("the body has no %q property", key)
	}
	if !stored {
		return merr.Forbidden("this server does not store the profile field %q", key)
	}
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return merr.BadJSON("%s must be a string; use DELETE to remove it", key)
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return merr.BadJSON("%s must be a string", key)
	}
	if err := checkProfileValue(key, v); err != nil {
		return err
	}
	return a.setProfileField(c, u, key, v)
}

func checkProfileValue(key, v string) error {
	switch key {
	case profileDisplayName:
		if utf8.RuneCountInString(v) > maxDisplayNameLen {
			return merr.InvalidParam("displayname is longer than %d characters", maxDisplayNameLen)
		}
	case profileAvatarURL:
		if len(v) > maxAvatarURLLen {
			return merr.InvalidParam("avatar_url is longer than %d bytes", maxAvatarURLLen)
		}
		// Any URI string is kept as given: the spec types it as a URI and clients (and
		// Complement) set other schemes; media resolution only follows mxc:// ones.
	}
	return nil
}

func (a *API) deleteProfileField(c echo.Context) error {
	u, key, stored, err := ownProfileField(c)
	if err != nil {
		return err
	}
	if !stored {
		return noContent(c) // a field that does not exist is deleted already
	}
	return a.setProfileField(c, u, key, "")
}

// setProfileField stores one field and propagates it to the user's member events.
func (a *API) setProfileField(c echo.Context, u id.UserID, key, v string) error {
	ctx := c.Request().Context()
	var dn, av *string
	if key == profileDisplayName {
		dn = &v
	} else {
		av = &v
	}
	if err := a.accounts.SetProfile(ctx, u, dn, av); err != nil {
		return err
	}
	if err := a.rooms.UpdateProfile(ctx, u); err != nil {
		return err
	}
	return noContent(c)
}
