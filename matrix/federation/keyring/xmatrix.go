package keyring

import (
	"errors"
	"fmt"
	"strings"

	"maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/id"
)

// parseXMatrix parses one Authorization value with the X-Matrix scheme, per RFC 9110 11.4 as
// the spec requires: case-insensitive scheme and parameter names, tokens or quoted strings
// with backslash escapes, spaces and tabs around commas, unknown parameters ignored, and
// (for older senders) colons allowed in unquoted values.
//
// mautrix's ParseXMatrixAuth splits on every comma and drops any parameter with a second '='
// in it, so a quoted value containing ',' or '=' or an escape is misread; it also requires the
// exact prefix "X-Matrix ". ok is false when the value is not of the X-Matrix scheme at all.
func parseXMatrix(h string) (auth federation.XMatrixAuth, ok bool, err error) {
	scheme, rest, _ := strings.Cut(strings.TrimLeft(h, " \t"), " ")
	if !strings.EqualFold(scheme, "X-Matrix") {
		return auth, false, nil
	}
	seen := map[string]bool{}
	s := rest
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			break
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return auth, true, errors.New("parameter without a value")
		}
		name := strings.ToLower(strings.TrimRight(s[:eq], " \t"))
		if !isToken(name) {
			return auth, true, fmt.Errorf("bad parameter name %q", name)
		}
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			i, closed := 1, false
			for ; i < len(s); i++ {
				c := s[i]
				if c == '\\' {
					if i+1 >= len(s) {
						return auth, true, errors.New("dangling escape in quoted value")
					}
					i++
					b.WriteByte(s[i])
					continue
				}
				if c == '"' {
					closed = true
					break
				}
				b.WriteByte(c)
			}
			if !closed {
				return auth, true, errors.New("unterminated quoted value")
			}
			val, s = b.String(), s[i+1:]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			val, s = strings.TrimRight(s[:end], " \t"), s[end:]
			if val == "" || !isTokenOrColon(val) {
				return auth, true, fmt.Errorf("bad unquoted value for %s", name)
			}
		}
		if seen[name] {
			return auth, true, fmt.Errorf("parameter %s given twice", name)
		}
		seen[name] = true
		switch name {
		case "origin":
			auth.Origin = val
		case "destination":
			auth.Destination = val
		case "key":
			auth.KeyID = id.KeyID(val)
		case "sig", "signature":
			// Every implementation sends "sig" (the spec's example); the spec's parameter list
			// calls it "signature". Both are read.
			auth.Signature = val
		}
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			break
		}
		if s[0] != ',' {
			return auth, true, errors.New("parameters must be separated by commas")
		}
		s = s[1:]
	}
	if auth.Origin == "" || auth.KeyID == "" || auth.Signature == "" {
		return auth, true, errors.New("origin, key and sig are required")
	}
	return auth, true, nil
}

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func isTokenOrColon(s string) bool {
	return isToken(strings.ReplaceAll(strings.ReplaceAll(s, ":", "a"), "/", "a"))
}
