package store

// Accessors of the device bridge (devices/bridge; prefixes 0x88-0x8F in keys.go). Values are
// opaque bytes owned by the bridge: the store only keeps them, so the device model can change
// without a store migration.

// DeviceBridgeState returns a named bridge record (nil, ErrNotFound when absent).
func (t *Txn) DeviceBridgeState(name string) ([]byte, error) { return t.get(deviceBridgeKey(name)) }

// SetDeviceBridgeState writes a named bridge record.
func (t *Txn) SetDeviceBridgeState(name string, v []byte) error {
	return t.set(deviceBridgeKey(name), v)
}

// DeviceCrypto returns the bridge bot's named crypto record (nil, ErrNotFound when absent).
func (t *Txn) DeviceCrypto(name string) ([]byte, error) { return t.get(deviceCryptoKey(name)) }

// SetDeviceCrypto writes the bridge bot's named crypto record.
func (t *Txn) SetDeviceCrypto(name string, v []byte) error { return t.set(deviceCryptoKey(name), v) }

// PutKnownDevice remembers a device's last description (JSON), so a device that is offline at
// start keeps its room membership and `hearth devices list` can show it.
func (t *Txn) PutKnownDevice(id string, v []byte) error { return t.set(deviceKnownKey(id), v) }

// DeleteKnownDevice forgets a device.
func (t *Txn) DeleteKnownDevice(id string) error { return t.del(deviceKnownKey(id)) }

// KnownDevices calls fn for every remembered device, in ID order.
func (t *Txn) KnownDevices(fn func(id string, v []byte) (bool, error)) error {
	return t.scan([]byte{pDeviceKnown}, nil, false, true, func(k, v []byte) (bool, error) {
		return fn(string(k[1:]), v)
	})
}
