package events

import "encoding/base64"

func encodeKey(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }
