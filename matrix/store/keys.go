package store

import (
	"encoding/binary"
)

// Key prefixes. One byte each; the layout of the rest of each key is given beside it.
// <pos> and <nid> are 8-byte big-endian unsigned integers; strings end with a 0x00 byte where
// another component follows them.
const (
	pMeta         byte = 0x01 // meta | name                          -> value (schema version, server key)
	pStreamLog    byte = 0x02 // slog | <pos>                          -> kind byte + reference (restart high-water)
	pEvent        byte = 0x03 // ev   | <pos>                          -> EventRecord (event NID == its stream position)
	pEventID      byte = 0x04 // eid  | event_id                       -> <pos>
	pRoomID       byte = 0x05 // rid  | room_id                        -> <room nid>
	pRoom         byte = 0x06 // room | <room nid>                     -> RoomRecord
	pTimeline     byte = 0x07 // tl   | <room nid> <pos>               -> empty (room timeline in stream order)
	pStateKey     byte = 0x08 // sk   | type 0x00 state_key            -> <state-key nid>
	pStateKeyRev  byte = 0x09 // skr  | <state-key nid>                -> type 0x00 state_key
	pSnapshot     byte = 0x0A // ss   | <snapshot nid>                 -> snapshot (parent + delta, or full)
	pCurState     byte = 0x0B // cs   | <room nid> <state-key nid>     -> <pos> of the current state event
	pMembership   byte = 0x0C // um   | user_id 0x00 <room nid>        -> membership byte + <pos>
	pUser         byte = 0x0D // u    | localpart                      -> UserRecord
	pDevice       byte = 0x0E // dev  | user_id 0x00 device_id         -> DeviceRecord
	pToken        byte = 0x0F // tok  | sha256(access token)           -> TokenRecord
	pAccountData  byte = 0x10 // ad   | user_id 0x00 <room nid> type   -> AccountDataRecord (room nid 0 = global)
	pAccountDataS byte = 0x11 // ads  | user_id 0x00 <pos>             -> <room nid> type (per-user change stream)
	pFilter       byte = 0x12 // flt  | user_id 0x00 filter_id         -> filter JSON
	pRegToken     byte = 0x13 // rtok | token                          -> RegTokenRecord
	pTxn          byte = 0x14 // txn  | user_id 0x00 device_id 0x00 txn_id -> event_id
	pReceipt      byte = 0x15 // rc   | <room nid> type 0x00 user_id 0x00 thread -> ReceiptRecord
	pReceiptS     byte = 0x16 // rcs  | <room nid> <pos>               -> receipt key suffix (per-room change stream)
	pAlias        byte = 0x17 // al   | alias                          -> AliasRecord
	pRoomAlias    byte = 0x18 // ral  | <room nid> alias               -> empty (aliases of a room)
	pForgotten    byte = 0x19 // fg   | user_id 0x00 <room nid>        -> empty
	pSeq          byte = 0x1A // seq  | name                           -> Badger sequence state (NID counters)
	pDirectory    byte = 0x1B // dir  | <room nid>                     -> empty (room published in the directory)
)

// Names of the NID sequences kept under pSeq.
const (
	seqRoom     = "room"
	seqStateKey = "statekey"
	seqSnapshot = "snapshot"
)

func be64(n uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return b[:]
}

// U64 decodes a big-endian integer written by this package.
func U64(b []byte) uint64 {
	if len(b) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func key(prefix byte, parts ...[]byte) []byte {
	n := 1
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n)
	k = append(k, prefix)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func str0(s string) []byte { return append([]byte(s), 0) }

func metaKey(name string) []byte          { return key(pMeta, []byte(name)) }
func streamLogKey(pos uint64) []byte      { return key(pStreamLog, be64(pos)) }
func eventKey(pos uint64) []byte          { return key(pEvent, be64(pos)) }
func eventIDKey(eventID string) []byte    { return key(pEventID, []byte(eventID)) }
func roomIDKey(roomID string) []byte      { return key(pRoomID, []byte(roomID)) }
func roomKey(nid uint64) []byte           { return key(pRoom, be64(nid)) }
func timelineKey(room, pos uint64) []byte { return key(pTimeline, be64(room), be64(pos)) }
func timelinePrefix(room uint64) []byte   { return key(pTimeline, be64(room)) }
func stateKeyKey(typ, sk string) []byte   { return key(pStateKey, str0(typ), []byte(sk)) }
func stateKeyRevKey(nid uint64) []byte    { return key(pStateKeyRev, be64(nid)) }
func snapshotKey(nid uint64) []byte       { return key(pSnapshot, be64(nid)) }
func curStateKey(room, sk uint64) []byte  { return key(pCurState, be64(room), be64(sk)) }
func curStatePrefix(room uint64) []byte   { return key(pCurState, be64(room)) }
func membershipKey(user string, room uint64) []byte {
	return key(pMembership, str0(user), be64(room))
}
func membershipPrefix(user string) []byte { return key(pMembership, str0(user)) }
func userKey(localpart string) []byte     { return key(pUser, []byte(localpart)) }
func deviceKey(user, device string) []byte {
	return key(pDevice, str0(user), []byte(device))
}
func devicePrefix(user string) []byte { return key(pDevice, str0(user)) }
func tokenKey(hash []byte) []byte     { return key(pToken, hash) }
func accountDataKey(user string, room uint64, typ string) []byte {
	return key(pAccountData, str0(user), be64(room), []byte(typ))
}
func accountDataPrefix(user string) []byte { return key(pAccountData, str0(user)) }
func accountDataStreamKey(user string, pos uint64) []byte {
	return key(pAccountDataS, str0(user), be64(pos))
}
func accountDataStreamPrefix(user string) []byte { return key(pAccountDataS, str0(user)) }
func filterKey(user, id string) []byte           { return key(pFilter, str0(user), []byte(id)) }
func regTokenKey(tok string) []byte              { return key(pRegToken, []byte(tok)) }
func regTokenPrefix() []byte                     { return []byte{pRegToken} }
func txnKey(user, device, txn string) []byte {
	return key(pTxn, str0(user), str0(device), []byte(txn))
}
func receiptKey(room uint64, typ, user, thread string) []byte {
	return key(pReceipt, be64(room), str0(typ), str0(user), []byte(thread))
}
func receiptPrefix(room uint64) []byte         { return key(pReceipt, be64(room)) }
func receiptStreamKey(room, pos uint64) []byte { return key(pReceiptS, be64(room), be64(pos)) }
func receiptStreamPrefix(room uint64) []byte   { return key(pReceiptS, be64(room)) }
func aliasKey(alias string) []byte             { return key(pAlias, []byte(alias)) }
func roomAliasKey(room uint64, alias string) []byte {
	return key(pRoomAlias, be64(room), []byte(alias))
}
func roomAliasPrefix(room uint64) []byte           { return key(pRoomAlias, be64(room)) }
func forgottenKey(user string, room uint64) []byte { return key(pForgotten, str0(user), be64(room)) }
func seqKey(name string) []byte                    { return key(pSeq, []byte(name)) }
func directoryKey(room uint64) []byte              { return key(pDirectory, be64(room)) }
