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

// E2EE prefixes (matrix/keys; records and accessors in e2ee.go). The range 0x30-0x3F is
// reserved for them.
const (
	pDeviceKeys   byte = 0x30 // dk   | user_id 0x00 device_id                           -> DeviceKeysRecord
	pOneTimeKey   byte = 0x31 // otk  | user_id 0x00 device_id 0x00 algorithm 0x00 <seq> key_id -> key object (queue in upload order)
	pOTKIndex     byte = 0x32 // otki | user_id 0x00 device_id 0x00 algorithm 0x00 key_id -> <seq> (find a queued key by ID)
	pOTKCount     byte = 0x33 // otkc | user_id 0x00 device_id                           -> OTKCountRecord (counts per algorithm, next seq)
	pFallbackKey  byte = 0x34 // fbk  | user_id 0x00 device_id 0x00 algorithm            -> FallbackKeyRecord
	pCrossSigning byte = 0x35 // xsk  | user_id 0x00 usage                               -> cross-signing key object
	pKeySig       byte = 0x36 // ksig | user_id 0x00 key_id 0x00 signer_user 0x00 signer_key_id -> signature (uploaded via /keys/signatures/upload)
	pDevListS     byte = 0x37 // dls  | <pos>                                            -> user_id (device-list change stream)
	pDevListUser  byte = 0x38 // dlu  | user_id                                          -> <pos> of the user's one dls entry
	pToDevice     byte = 0x39 // td   | user_id 0x00 device_id 0x00 <pos>                -> ToDeviceRecord (inbox in stream order)
	pToDeviceTxn  byte = 0x3A // tdt  | user_id 0x00 device_id 0x00 event_type 0x00 txn_id -> empty (sendToDevice idempotency)
	pBackupVer    byte = 0x3B // bkv  | user_id 0x00 <version>                           -> BackupVersionRecord
	pBackupKey    byte = 0x3C // bkk  | user_id 0x00 <version> room_id 0x00 session_id   -> key backup data object
	pBackupSeq    byte = 0x3D // bks  | user_id                                          -> <last backup version allocated>
)

func deviceKeysKey(user, device string) []byte { return key(pDeviceKeys, str0(user), []byte(device)) }
func deviceKeysPrefix(user string) []byte      { return key(pDeviceKeys, str0(user)) }
func oneTimeKeyKey(user, device, alg string, seq uint64, keyID string) []byte {
	return key(pOneTimeKey, str0(user), str0(device), str0(alg), be64(seq), []byte(keyID))
}
func oneTimeKeyAlgPrefix(user, device, alg string) []byte {
	return key(pOneTimeKey, str0(user), str0(device), str0(alg))
}
func oneTimeKeyDevPrefix(user, device string) []byte {
	return key(pOneTimeKey, str0(user), str0(device))
}
func otkIndexKey(user, device, alg, keyID string) []byte {
	return key(pOTKIndex, str0(user), str0(device), str0(alg), []byte(keyID))
}
func otkIndexDevPrefix(user, device string) []byte { return key(pOTKIndex, str0(user), str0(device)) }
func otkCountKey(user, device string) []byte       { return key(pOTKCount, str0(user), []byte(device)) }
func fallbackKeyKey(user, device, alg string) []byte {
	return key(pFallbackKey, str0(user), str0(device), []byte(alg))
}
func fallbackKeyDevPrefix(user, device string) []byte {
	return key(pFallbackKey, str0(user), str0(device))
}
func crossSigningKey(user, usage string) []byte { return key(pCrossSigning, str0(user), []byte(usage)) }
func keySigKey(user, keyID, signer, signerKeyID string) []byte {
	return key(pKeySig, str0(user), str0(keyID), str0(signer), []byte(signerKeyID))
}
func keySigPrefix(user, keyID string) []byte { return key(pKeySig, str0(user), str0(keyID)) }
func devListStreamKey(pos uint64) []byte     { return key(pDevListS, be64(pos)) }
func devListUserKey(user string) []byte      { return key(pDevListUser, []byte(user)) }
func toDeviceKey(user, device string, pos uint64) []byte {
	return key(pToDevice, str0(user), str0(device), be64(pos))
}
func toDevicePrefix(user, device string) []byte { return key(pToDevice, str0(user), str0(device)) }
func toDeviceTxnKey(user, device, typ, txn string) []byte {
	return key(pToDeviceTxn, str0(user), str0(device), str0(typ), []byte(txn))
}
func toDeviceTxnDevPrefix(user, device string) []byte {
	return key(pToDeviceTxn, str0(user), str0(device))
}
func backupVersionKey(user string, ver uint64) []byte { return key(pBackupVer, str0(user), be64(ver)) }
func backupVersionPrefix(user string) []byte          { return key(pBackupVer, str0(user)) }
func backupKeyKey(user string, ver uint64, room, session string) []byte {
	return key(pBackupKey, str0(user), be64(ver), str0(room), []byte(session))
}
func backupKeyPrefix(user string, ver uint64, room string) []byte {
	if room == "" {
		return key(pBackupKey, str0(user), be64(ver))
	}
	return key(pBackupKey, str0(user), be64(ver), str0(room))
}
func backupSeqKey(user string) []byte { return key(pBackupSeq, []byte(user)) }

// Client-server extras (issue 3: reports, OpenID, login and refresh tokens; records and
// accessors in extras.go). The range 0x48-0x4F is reserved for them.
const (
	pReport       byte = 0x48 // rep  | <report nid>                                   -> ReportRecord
	pOpenID       byte = 0x49 // oid  | sha256(OpenID access token)                    -> ExpiringTokenRecord
	pLoginToken   byte = 0x4A // ltok | sha256(m.login.token token)                    -> ExpiringTokenRecord
	pRefreshToken byte = 0x4B // rft  | sha256(refresh token)                          -> RefreshTokenRecord
)

// seqReport numbers reports (kept under pSeq like the other NID sequences).
const seqReport = "report"

func reportKey(nid uint64) []byte        { return key(pReport, be64(nid)) }
func openIDKey(hash []byte) []byte       { return key(pOpenID, hash) }
func loginTokenKey(hash []byte) []byte   { return key(pLoginToken, hash) }
func refreshTokenKey(hash []byte) []byte { return key(pRefreshToken, hash) }

// Relations and threads (matrix/rooms/relations*.go; accessors in relations.go). The range
// 0x40-0x47 is reserved for them.
const (
	pRelation    byte = 0x40 // rel  | <room nid> parent_event_id 0x00 rel_type 0x00 <child pos> -> event_type 0x00 sender
	pRelationRev byte = 0x41 // relr | <child pos>                                       -> <room nid> parent 0x00 rel_type 0x00 event_type 0x00 sender
	pThread      byte = 0x42 // thr  | <room nid> <latest pos> root_event_id               -> empty (threads by latest activity)
	pThreadRoot  byte = 0x43 // thrr | <room nid> root_event_id                            -> ThreadRecord
	pThreadUser  byte = 0x44 // thru | <room nid> root_event_id 0x00 user_id               -> <count of the user's events in the thread>
)

func relationKey(room uint64, parent, relType string, pos uint64) []byte {
	return key(pRelation, be64(room), str0(parent), str0(relType), be64(pos))
}
func relationPrefix(room uint64, parent, relType string) []byte {
	return key(pRelation, be64(room), str0(parent), str0(relType))
}
func relationParentPrefix(room uint64, parent string) []byte {
	return key(pRelation, be64(room), str0(parent))
}
func relationRevKey(pos uint64) []byte { return key(pRelationRev, be64(pos)) }
func threadListKey(room, latest uint64, root string) []byte {
	return key(pThread, be64(room), be64(latest), []byte(root))
}
func threadListPrefix(room uint64) []byte           { return key(pThread, be64(room)) }
func threadListPrefixAt(room, latest uint64) []byte { return key(pThread, be64(room), be64(latest)) }
func threadRootKey(room uint64, root string) []byte {
	return key(pThreadRoot, be64(room), []byte(root))
}
func threadUserKey(room uint64, root, user string) []byte {
	return key(pThreadUser, be64(room), str0(root), []byte(user))
}

// Search, application services and admin (issue 6; accessors in search.go and appservice.go).
// The range 0x60-0x6F is reserved for them.
const (
	pSearchPosting byte = 0x60 // sp  | token 0x00 <pos>                -> <room nid> field byte, term count byte (inverted index)
	pSearchMeta    byte = 0x61 // sm  | name                            -> value (index high-water position)
	pASState       byte = 0x62 // ass | appservice_id 0x00 name         -> value (transaction position, next txn ID)
	pPurge         byte = 0x63 // pur | purge_id                        -> PurgeRecord (admin purge_history outcome; purge.go)
)

func purgeKey(purgeID string) []byte { return key(pPurge, []byte(purgeID)) }

func searchPostingKey(tok string, pos uint64) []byte {
	return key(pSearchPosting, str0(tok), be64(pos))
}
func searchTokenPrefix(tok string, exact bool) []byte {
	if exact {
		return key(pSearchPosting, str0(tok))
	}
	return key(pSearchPosting, []byte(tok))
}
func searchMetaKey(name string) []byte          { return key(pSearchMeta, []byte(name)) }
func asStateKey(appservice, name string) []byte { return key(pASState, str0(appservice), []byte(name)) }

// Media (matrix/media; records and accessors in media.go). The range 0x50-0x57 is reserved.
const (
	pMedia     byte = 0x50 // med  | media_id                        -> MediaRecord (local media; the file is <data>/media/ab/cd/<sha256>)
	pMediaUser byte = 0x51 // medu | user_id 0x00 media_id           -> empty (media by uploader)
	pMediaPend byte = 0x52 // medp | user_id 0x00 media_id           -> empty (IDs from /create still without content)
	pMediaQuar byte = 0x53 // medq | media_id                        -> QuarantineRecord (admin quarantine: kept, never served; media_admin.go)

	// Remote media cache (media_remote.go); 0x54 is left to the admin media records.
	pMediaRemote     byte = 0x55 // medr | origin 0x00 media_id                     -> RemoteMediaRecord (cached copy of another server's media)
	pMediaRemoteLRU  byte = 0x56 // medl | be64(last_access_ms) origin 0x00 media_id -> be64(size) (eviction order, oldest first)
	pMediaRemoteHash byte = 0x57 // medh | sha256 0x00 origin 0x00 media_id         -> empty (is a file still used by the cache)
)

func mediaQuarKey(mediaID string) []byte { return key(pMediaQuar, []byte(mediaID)) }

func mediaPendKey(user, mediaID string) []byte { return key(pMediaPend, str0(user), []byte(mediaID)) }
func mediaPendPrefix(user string) []byte       { return key(pMediaPend, str0(user)) }

func mediaKey(mediaID string) []byte           { return key(pMedia, []byte(mediaID)) }
func mediaUserKey(user, mediaID string) []byte { return key(pMediaUser, str0(user), []byte(mediaID)) }
func mediaUserPrefix(user string) []byte       { return key(pMediaUser, str0(user)) }

func mediaRemoteKey(origin, mediaID string) []byte {
	return key(pMediaRemote, str0(origin), []byte(mediaID))
}
func mediaRemoteLRUKey(accessMS int64, origin, mediaID string) []byte {
	return key(pMediaRemoteLRU, be64(uint64(accessMS)), str0(origin), []byte(mediaID))
}
func mediaRemoteHashKey(hash, origin, mediaID string) []byte {
	return key(pMediaRemoteHash, str0(hash), str0(origin), []byte(mediaID))
}
func mediaRemoteHashPrefix(hash string) []byte { return key(pMediaRemoteHash, str0(hash)) }

// Push (matrix/push; records and accessors in push.go). The range 0x58-0x5F is reserved.
const (
	pPushRules byte = 0x58 // pr   | user_id                          -> the user's own rules and default overrides (JSON owned by matrix/push)
	pPushCount byte = 0x59 // pc   | user_id 0x00 <room nid>          -> PushCountRecord (unread counts since the read receipt)
	pPushNotif byte = 0x5A // pn   | user_id 0x00 <event pos>         -> NotificationRecord (/notifications, bounded per user)
	pPusher    byte = 0x5B // psh  | user_id 0x00 app_id 0x00 pushkey -> pusher JSON (owned by matrix/push)
)

func pushRulesKey(user string) []byte              { return key(pPushRules, []byte(user)) }
func pushCountKey(user string, room uint64) []byte { return key(pPushCount, str0(user), be64(room)) }
func pushCountPrefix(user string) []byte           { return key(pPushCount, str0(user)) }
func pushNotifKey(user string, pos uint64) []byte  { return key(pPushNotif, str0(user), be64(pos)) }
func pushNotifPrefix(user string) []byte           { return key(pPushNotif, str0(user)) }
func pusherKey(user, appID, pushkey string) []byte {
	return key(pPusher, str0(user), str0(appID), []byte(pushkey))
}
func pusherPrefix(user string) []byte { return key(pPusher, str0(user)) }

// Federation (matrix/federation). Reserved ranges, each owned by one sub-package's accessors:
//   0x70-0x73 keyring: remote server keys and server-name resolution cache (keyring.go)
//   0x74-0x77 outbound queues per destination (fedqueue.go)
//   0x78-0x7F room DAG: history fetched with /backfill (dag.go)

// Keyring (matrix/federation/keyring; records and accessors in keyring.go).
const (
	pFedKey      byte = 0x70 // fk   | server_name 0x00 key_id          -> RemoteKeyRecord (one verify key of a remote server)
	pFedKeyResp  byte = 0x71 // fkr  | server_name                      -> KeyResponseRecord (newest verified /key/v2/server answer, for notary replies)
	pFedKeyErr   byte = 0x72 // fke  | server_name                      -> FetchErrorRecord (key fetch backoff)
	pFedResolved byte = 0x73 // fres | server_name                      -> ResolutionRecord (server discovery result with expiry)
)

func fedKeyKey(server, keyID string) []byte { return key(pFedKey, str0(server), []byte(keyID)) }
func fedKeyPrefix(server string) []byte     { return key(pFedKey, str0(server)) }
func fedKeyRespKey(server string) []byte    { return key(pFedKeyResp, []byte(server)) }
func fedKeyErrKey(server string) []byte     { return key(pFedKeyErr, []byte(server)) }
func fedResolvedKey(server string) []byte   { return key(pFedResolved, []byte(server)) }

// Outbound federation queues (matrix/federation/sender; records and accessors in fedqueue.go).
const (
	pFedPDU    byte = 0x74 // fqp | <pdu nid>                        -> <refs> PDU JSON (shared by every destination queue holding it)
	pFedEntry  byte = 0x75 // fqe | destination 0x00 <seq>           -> entry kind byte + <pdu nid> or EDU JSON (queue in send order)
	pFedDest   byte = 0x76 // fqd | destination                      -> FedDestRecord (the in-flight transaction, kept until a 200)
	pFedDevSeq byte = 0x77 // fqs | user_id                          -> <last m.device_list_update stream_id sent for the user>
)

// Names of the NID sequences of the outbound queues (kept under pSeq).
const (
	seqFedPDU   = "fedpdu"
	seqFedEntry = "fedentry"
)

func fedPDUKey(nid uint64) []byte { return key(pFedPDU, be64(nid)) }
func fedEntryKey(dest string, seq uint64) []byte {
	return key(pFedEntry, str0(dest), be64(seq))
}
func fedEntryPrefix(dest string) []byte { return key(pFedEntry, str0(dest)) }
func fedDestKey(dest string) []byte     { return key(pFedDest, []byte(dest)) }
func fedDevSeqKey(user string) []byte   { return key(pFedDevSeq, []byte(user)) }

// TLS (tls/): certmagic storage for ACME accounts and certificates. Range 0x80-0x83 (certs.go).
const (
	pCertFile byte = 0x80 // cf   | certmagic key ("certificates/acme.../x.crt")  -> <modified unix nanos> value
	pCertLock byte = 0x81 // cl   | lock name                                     -> <expiry unix nanos> owner
)

func certFileKey(k string) []byte    { return key(pCertFile, []byte(k)) }
func certLockKey(name string) []byte { return key(pCertLock, []byte(name)) }

// Devices (devices/bridge): device registry, bridge crypto store, puppet users. Range 0x88-0x8F
// (devices.go).
const (
	pDeviceBridge byte = 0x88 // dbr | name                -> JSON (bridge tokens, space and area rooms)
	pDeviceCrypto byte = 0x89 // dcr | name                -> bridge bot's pickled crypto state
)

func deviceBridgeKey(name string) []byte { return key(pDeviceBridge, []byte(name)) }
func deviceCryptoKey(name string) []byte { return key(pDeviceCrypto, []byte(name)) }

const (
	pBackfill byte = 0x78 // bf  | <room nid> <seq>                 -> <event pos> (history older than the room's timeline; seq grows into the past)
	pGap      byte = 0x79 // gap | <room nid> <gap event pos>       -> GapRecord (history missing before a timeline event; dag_gaps.go)
	pGapFill  byte = 0x7A // gf  | <room nid> <gap event pos> <seq> -> <event pos> (history fetched into that gap; seq grows into the past)
)

func gapKey(room, gap uint64) []byte          { return key(pGap, be64(room), be64(gap)) }
func gapFillKey(room, gap, seq uint64) []byte { return key(pGapFill, be64(room), be64(gap), be64(seq)) }
func gapFillPrefix(room, gap uint64) []byte   { return key(pGapFill, be64(room), be64(gap)) }

// Jump to date (tsindex.go): every event of every room by timestamp, built lazily from the
// ev| records up to the stream position kept in meta "tsx_mark".
const (
	pTSIndex byte = 0x7E // tsx | <room nid> <ts + 2^63> <depth> <pos> -> empty
)

func tsIndexKey(room uint64, ts int64, depth, pos uint64) []byte {
	return key(pTSIndex, be64(room), be64(uint64(ts)^1<<63), be64(depth), be64(pos))
}
func tsIndexPrefix(room uint64) []byte { return key(pTSIndex, be64(room)) }

func backfillKey(room, seq uint64) []byte { return key(pBackfill, be64(room), be64(seq)) }
func backfillPrefix(room uint64) []byte   { return key(pBackfill, be64(room)) }

// Delayed events (matrix/delayed, MSC4140; accessors in delayed.go). Range 0x90-0x93.
const (
	pDelayed     byte = 0x90 // dly  | delay_id                                   -> scheduled delayed event (JSON owned by matrix/delayed)
	pDelayedUser byte = 0x91 // dlyu | user_id 0x00 delay_id                      -> empty (a user's scheduled delayed events)
	pDelayedTxn  byte = 0x92 // dlyt | user_id 0x00 device_id 0x00 txn scope      -> delay_id (PUT /send idempotency)
)

func delayedKey(delayID string) []byte { return key(pDelayed, []byte(delayID)) }
func delayedUserKey(user, delayID string) []byte {
	return key(pDelayedUser, str0(user), []byte(delayID))
}
func delayedUserPrefix(user string) []byte { return key(pDelayedUser, str0(user)) }
func delayedTxnKey(user, device, scope string) []byte {
	return key(pDelayedTxn, str0(user), str0(device), []byte(scope))
}

// Thread subscriptions (matrix/threadsubs, MSC4306): 0x98-0x99, declared in threadsubs.go.
