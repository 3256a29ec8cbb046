package mqtt

import (
	"log"
	"os"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"
)

func TestMain(m *testing.M) {
	if os.Getenv("PAHO_DEBUG") != "" {
		paho.ERROR = log.New(os.Stderr, "[ERROR] ", 0)
		paho.CRITICAL = log.New(os.Stderr, "[CRIT] ", 0)
		paho.WARN = log.New(os.Stderr, "[WARN] ", 0)
	}
	os.Exit(m.Run())
}
