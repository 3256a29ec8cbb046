// Package mqtt is Hearth's MQTT device adapter. It runs an embedded MQTT broker (mochi-mqtt,
// password auth) or connects to an external one, and turns two MQTT conventions into
// devices.Device values:
//
//   - Home Assistant MQTT discovery: retained configs under <prefix>/<component>/[<node>/]<object>/config
//     and the device-based <prefix>/device/<id>/config with "cmps"; abbreviations and "~" are
//     expanded, availability is tracked, and the small template subset that devices really use
//     ({{ value_json.x | float }} ...) is evaluated by a safe evaluator of its own (template*.go).
//   - Zigbee2MQTT: <base>/bridge/devices lists the devices and their "exposes"; each device's state
//     JSON and availability are followed and commands go to <base>/<friendly_name>/set.
//
// One adapter produces IDs "<name>:ha/<unique_id>" and "<name>:z2m/<ieee>[/<sub>]" so the
// registry can route every command back to it by the "<name>:" prefix. Commands are published
// with QoS 1 and Command returns once the broker acknowledged them.
//
// Files: adapter.go (Run, Command, the paho connection), registry.go (entities, dynamic
// subscriptions, last-payload replay), ha*.go (discovery parsing and the HA platforms),
// z2m.go, abbrev.go, availability.go, template*.go, color.go, payload.go, broker.go (embedded
// mochi broker with password auth) and retained.go (the broker's retained discovery configs
// kept in a file across restarts).
//
// The connection uses a clean session and resubscribes everything in OnConnect, so a broker
// restart without persistence is survived and every retained message is delivered again. The
// adapter subscribes with QoS 0 (as Home Assistant does by default); see subscribeQoS for why
// that also matters for the embedded broker.
package mqtt
