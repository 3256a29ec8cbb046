package bridge_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"maunium.net/go/mautrix/id"

	"github.com/hearth-home/hearth/appliance/config"
	"github.com/hearth-home/hearth/devices/mqtt"
)

// mqttDevice is the test's MQTT client playing a Home Assistant device and Zigbee2MQTT.
type mqttDevice struct {
	c    paho.Client
	mu   sync.Mutex
	msgs []string // "topic payload"
}

func connectDevice(t *testing.T, url, username, password string, subscribe ...string) *mqttDevice {
	t.Helper()
	d := &mqttDevice{}
	opts := paho.NewClientOptions().AddBroker(url).SetUsername(username).SetPassword(password).
		SetClientID(fmt.Sprintf("test-device-%d", time.Now().UnixNano())).SetConnectRetry(false)
	d.c = paho.NewClient(opts)
	if tok := d.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("device connect to %s: %v", url, tok.Error())
	}
	t.Cleanup(func() { d.c.Disconnect(100) })
	for _, topic := range subscribe {
		tok := d.c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
			d.mu.Lock()
			d.msgs = append(d.msgs, m.Topic()+" "+string(m.Payload()))
			d.mu.Unlock()
		})
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", topic, tok.Error())
		}
	}
	return d
}

func (d *mqttDevice) pub(t *testing.T, topic, payload string, retained bool) {
	t.Helper()
	tok := d.c.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// waitMsg waits for a message on topic whose payload contains every part.
func (d *mqttDevice) waitMsg(t *testing.T, topic string, parts ...string) {
	t.Helper()
	eventually(t, "MQTT "+topic+" "+strings.Join(parts, " "), func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
	next:
		for _, m := range d.msgs {
			if !strings.HasPrefix(m, topic+" ") {
				continue
			}
			for _, p := range parts {
				if !strings.Contains(m, p) {
					continue next
				}
			}
			return true
		}
		return false
	})
}

const haCeiling = `{"schema":"json","name":"Ceiling","uniq_id":"kitchen-ceiling","stat_t":"test/kitchen/state",
 "cmd_t":"test/kitchen/set","brightness":true,"sup_clrm":["color_temp"],"dev":{"ids":"k1","name":"Kitchen","sa":"Kitchen"}}`

const z2mDevices = `[
 {"ieee_address":"0x00124b0000000001","type":"Coordinator","friendly_name":"Coordinator","definition":null},
 {"ieee_address":"0x0017880100000042","type":"Router","friendly_name":"lounge_light","supported":true,
  "description":"area: Lounge","disabled":false,
  "definition":{"model":"LED1545G12","vendor":"IKEA","description":"TRADFRI bulb",
   "exposes":[{"type":"light","features":[
      {"type":"binary","name":"state","property":"state","access":7,"value_on":"ON","value_off":"OFF"},
      {"type":"numeric","name":"brightness","property":"brightness","access":7,"value_min":0,"value_max":254}]}]}}
]`

// TestBridgeMQTTEndToEnd runs the bridge with the real MQTT adapter against the embedded
// broker and against Mosquitto: a Home Assistant discovery light and a Zigbee2MQTT light
// become room members with state; "kitchen ceiling 50%" publishes the light's command; state
// messages update the room.
func TestBridgeMQTTEndToEnd(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		mqttEndToEnd(t, func(c *config.Config) {
			c.Devices.MQTT = config.DevicesMQTT{Enabled: true, Listen: "127.0.0.1:0", Username: "device", Password: "device-secret",
				DiscoveryPrefix: "homeassistant", Z2MBaseTopic: "zigbee2mqtt"}
		}, "")
	})
	t.Run("mosquitto", func(t *testing.T) {
		url := startMosquitto(t)
		mqttEndToEnd(t, func(c *config.Config) {
			c.Devices.MQTT = config.DevicesMQTT{Enabled: true, Broker: url, Username: "hearth", Password: "adapter-secret",
				DiscoveryPrefix: "homeassistant", Z2MBaseTopic: "zigbee2mqtt"}
		}, url)
	})
}

func mqttEndToEnd(t *testing.T, adjust func(*config.Config), url string) {
	h := startHouse(t, adjust)
	alice := h.user(t, "alice", true)
	if url == "" { // embedded: the broker's port is known once the adapter runs
		eventually(t, "embedded broker", func() bool {
			a, ok := h.a.Devices().Adapter("mqtt")
			if ok {
				url = a.(*mqtt.Adapter).BrokerURL()
			}
			return url != ""
		})
	}
	dev := connectDevice(t, url, "device", "device-secret", "test/kitchen/set", "zigbee2mqtt/+/set")
	dev.pub(t, "homeassistant/light/kitchen/config", haCeiling, true)
	dev.pub(t, "test/kitchen/state", `{"state":"OFF","brightness":255}`, true)
	dev.pub(t, "zigbee2mqtt/bridge/state", `{"state":"online"}`, true)
	dev.pub(t, "zigbee2mqtt/bridge/devices", z2mDevices, true)
	dev.pub(t, "zigbee2mqtt/lounge_light", `{"state":"ON","brightness":254}`, true)
	dev.pub(t, "zigbee2mqtt/lounge_light/availability", `{"state":"online"}`, true)

	const haID, z2mID = "mqtt:ha/kitchen-ceiling", "mqtt:z2m/0x0017880100000042"
	br := h.a.DeviceBridge()
	var kitchen, lounge id.RoomID
	eventually(t, "kitchen and lounge rooms", func() bool {
		kitchen, lounge = br.AreaRoom("kitchen"), br.AreaRoom("lounge")
		return kitchen != "" && lounge != ""
	})
	join(t, alice, kitchen)
	join(t, alice, lounge)
	stateOf := func(room id.RoomID, devID string) map[string]any {
		s, _ := deviceState(t, alice, room, devID)["state"].(map[string]any)
		return s
	}
	eventually(t, "HA light state in the kitchen", func() bool {
		s := stateOf(kitchen, haID)
		return s != nil && s["on"] == false && s["brightness"] == float64(100)
	})
	eventually(t, "Z2M light state in the lounge", func() bool {
		s := stateOf(lounge, z2mID)
		return s != nil && s["on"] == true && s["available"] == true
	})
	for _, m := range []struct {
		room id.RoomID
		dev  string
	}{{kitchen, haID}, {lounge, z2mID}} {
		members, err := alice.JoinedMembers(t.Context(), m.room)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := members.Joined[id.UserID("@"+bridgePuppet(m.dev)+":"+h.server)]; !ok {
			t.Fatalf("%s is not a member of its room: %v", m.dev, members.Joined)
		}
	}

	cmd := sendText(t, alice, kitchen, "kitchen ceiling 50%")
	dev.waitMsg(t, "test/kitchen/set", `"brightness":128`)
	if body, _ := waitReply(t, alice, kitchen, cmd); !contains(body, "✓") {
		t.Fatalf("reply %q", body)
	}
	cmd = sendText(t, alice, lounge, "turn off the lounge light")
	dev.waitMsg(t, "zigbee2mqtt/lounge_light/set", `"state":"OFF"`)
	if body, _ := waitReply(t, alice, lounge, cmd); !contains(body, "✓") {
		t.Fatalf("reply %q", body)
	}
	// The devices report their new state; the rooms follow.
	dev.pub(t, "test/kitchen/state", `{"state":"ON","brightness":128}`, true)
	dev.pub(t, "zigbee2mqtt/lounge_light", `{"state":"OFF","brightness":254}`, true)
	eventually(t, "kitchen state 50%", func() bool {
		s := stateOf(kitchen, haID)
		return s["on"] == true && s["brightness"] == float64(50)
	})
	eventually(t, "lounge state off", func() bool { return stateOf(lounge, z2mID)["on"] == false })
}

// startMosquitto runs a Mosquitto with password logins for the adapter and the test device,
// installing the Debian package when it is missing (CI installs it with `make deps`).
func startMosquitto(t *testing.T) string {
	t.Helper()
	bin, pw := "/usr/sbin/mosquitto", "mosquitto_passwd"
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" || os.Geteuid() != 0 {
			t.Fatal("mosquitto is not installed: run `make deps` (APT_PACKAGES has mosquitto)")
		}
		if out, err := exec.Command("apt-get", "install", "-y", "-q", "mosquitto").CombinedOutput(); err != nil {
			t.Fatalf("install mosquitto: %v\n%s", err, out)
		}
	}
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "passwd")
	for i, u := range [][2]string{{"hearth", "adapter-secret"}, {"device", "device-secret"}} {
		args := []string{"-b", pwFile, u[0], u[1]}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command(pw, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\npersistence false\n", port, pwFile)
	if os.Geteuid() == 0 { // as root Mosquitto would drop to a user that cannot read the temp dir
		if u, err := user.Current(); err == nil {
			conf += "user " + u.Username + "\n"
		}
	}
	confFile := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", confFile)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	eventually(t, "mosquitto listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return "tcp://" + addr
}
