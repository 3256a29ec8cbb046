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

// DeleteDeviceCrypto removes one of the bridge bot's crypto records.
func (t *Txn) DeleteDeviceCrypto(name string) error { return t.del(deviceCryptoKey(name)) }
