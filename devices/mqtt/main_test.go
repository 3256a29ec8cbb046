package mqtt

import (
	"log"
	"os"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// TestMain turns on paho's own logging with PAHO_DEBUG=1, which is how connection trouble in
// these tests is diagnosed (paho logs through package-level loggers only).
func TestMain(m *testing.M) {
	if os.Getenv("PAHO_DEBUG") != "" {
		paho.ERROR = log.New(os.Stderr, "[ERROR] ", 0)
		paho.CRITICAL = log.New(os.Stderr, "[CRIT] ", 0)
		paho.WARN = log.New(os.Stderr, "[WARN] ", 0)
	}
	os.Exit(m.Run())
}
