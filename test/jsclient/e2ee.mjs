// End-to-end encryption against a homeserver with matrix-js-sdk and its Rust crypto
// (@matrix-org/matrix-sdk-crypto-wasm), the stack inside Element Web.
//
//   node e2ee.mjs URL ALICE ALICE_PASSWORD BOB BOB_PASSWORD
//
// Two clients (alice's first device and bob's) with initRustCrypto():
//   1. alice bootstraps cross-signing and then resets it (the reset needs user-interactive auth,
//      answered with her password), checks her master key in bob's /keys/query, sets up secret
//      storage with a fresh recovery key and creates a key backup (resetKeyBackup, then
//      checkKeyBackupAndEnable);
//   2. alice creates a room with m.room.encryption (m.megolm.v1.aes-sha2) and invites bob; each
//      sends a message and each decrypts the other's;
//   3. once alice's device has uploaded both room keys to the backup, it stops, and alice logs in
//      a new device: it reads the backup key from secret storage with the recovery key,
//      restores the backup and decrypts both earlier messages.
//
// On success it prints one JSON line {"ok":true,...} on stdout and exits 0; on failure the error
// goes to stderr, {"ok":false,"stage":...,"error":...} to stdout, and the exit code is 1. The
// whole run is bounded by E2EE_TIMEOUT_MS (default 55000). Everything the SDK logs goes to stderr.

const hardTimeoutMs = Number(process.env.E2EE_TIMEOUT_MS || 55000);

for (const m of ["log", "info", "debug", "trace", "warn", "error"]) {
  console[m] = (...args) => process.stderr.write(args.map(String).join(" ") + "\n");
}

const clients = [];
let finished = false;

function finish(code, result) {
  if (finished) return;
  finished = true;
  for (const c of clients) {
    try {
      c.stopClient();
    } catch {
      // best effort: the process exits next
    }
  }
  process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(code));
}

function describe(err) {
  if (err?.errcode || err?.httpStatus) {
    const detail = err.data?.error ?? err.message;
    return `HTTP ${err.httpStatus ?? "?"} ${err.errcode ?? ""}: ${detail} [${err.url ?? "?"}]`;
  }
  const cause = err?.cause?.cause ?? err?.cause;
  const msg = err?.message ?? String(err);
  return cause?.message || cause?.code ? `${msg} (${cause.code ?? ""} ${cause.message ?? ""})` : msg;
}

let stage = "start";

function fail(where, err) {
  const msg = `${where}: ${describe(err)}`;
  process.stderr.write(`e2ee: FAIL ${msg}\n`);
  if (err?.stack && !err?.errcode) process.stderr.write(`${err.stack}\n`);
  finish(1, { ok: false, stage: where, error: msg });
}

function note(msg) {
  process.stderr.write(`e2ee: [${stage}] ${msg}\n`);
}

const timer = setTimeout(() => fail(stage, new Error(`timeout: no result after ${hardTimeoutMs} ms`)), hardTimeoutMs);
process.on("unhandledRejection", (err) => fail(`${stage} (unhandled rejection)`, err));
process.on("uncaughtException", (err) => fail(`${stage} (uncaught exception)`, err));

const [baseUrl, aliceUser, alicePassword, bobUser, bobPassword] = process.argv.slice(2);
if (!baseUrl || !aliceUser || !alicePassword || !bobUser || !bobPassword) {
  process.stderr.write("usage: node e2ee.mjs URL ALICE ALICE_PASSWORD BOB BOB_PASSWORD\n");
  clearTimeout(timer);
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// waitFor polls fn until it returns a truthy value; it throws after ms.
async function waitFor(what, fn, ms = 20000, every = 100) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}

try {
  stage = "load matrix-js-sdk";
  const sdk = await import("matrix-js-sdk");
  try {
    const { logger } = await import("matrix-js-sdk/lib/logger.js");
    logger.setLevel(process.env.E2EE_DEBUG ? "debug" : "warn");
  } catch {
    // the console redirect above still keeps stdout clean
  }

  // The recovery (secret storage) key, created by alice's first device; every client answers
  // getSecretStorageKey with it.
  let recoveryKey = null;
  const cryptoCallbacks = {
    getSecretStorageKey: async ({ keys }) => {
      if (!recoveryKey) return null;
      const keyId = Object.keys(keys)[0];
      return [keyId, recoveryKey.privateKey];
    },
  };

  // login logs a new device in and starts it with Rust crypto (in-memory store) and a sync loop.
  // beforeSync, if given, runs after initRustCrypto and before the sync loop starts.
  async function login(user, password, name, beforeSync) {
    stage = `login ${name}`;
    const anon = sdk.createClient({ baseUrl });
    const res = await anon.loginRequest({
      type: "m.login.password",
      identifier: { type: "m.id.user", user },
      password,
      initial_device_display_name: name,
    });
    const client = sdk.createClient({
      baseUrl,
      accessToken: res.access_token,
      userId: res.user_id,
      deviceId: res.device_id,
      cryptoCallbacks,
    });
    clients.push(client);
    stage = `initRustCrypto ${name}`;
    await client.initRustCrypto({ useIndexedDB: false });
    if (beforeSync) await beforeSync(client);
    stage = `sync ${name}`;
    const prepared = new Promise((resolve) => {
      client.on(sdk.ClientEvent.Sync, (state, _prev, data) => {
        if (state === "PREPARED") resolve();
        if (state === "ERROR") note(`${name} sync error (the SDK retries): ${describe(data?.error)}`);
      });
    });
    await client.startClient({ initialSyncLimit: 30, lazyLoadMembers: false });
    await prepared;
    return client;
  }

  // decrypted waits until client has event eventId in roomId decrypted to an m.room.message and
  // returns its body.
  async function decrypted(client, roomId, eventId, ms = 20000) {
    let retried = 0;
    return waitFor(
      `${client.getUserId()}/${client.getDeviceId()} to decrypt ${eventId}`,
      async () => {
        const room = client.getRoom(roomId);
        const ev = room?.getLiveTimeline().getEvents().find((e) => e.getId() === eventId);
        if (!ev) return null;
        if (!ev.isEncrypted()) throw new Error(`event ${eventId} was not encrypted: ${JSON.stringify(ev.event)}`);
        if (ev.isBeingDecrypted()) return null;
        if (ev.isDecryptionFailure()) {
          // The SDK retries by itself when keys arrive; nudge it every second anyway.
          if (++retried % 10 === 0) await client.decryptEventIfNeeded(ev, { isRetry: true });
          return null;
        }
        if (ev.getType() !== "m.room.message") return null;
        return ev.getContent().body;
      },
      ms,
    );
  }

  // Alice's first device bootstraps cross-signing twice: the first upload of a user's keys needs
  // no user-interactive auth (spec v1.11), replacing them does, which the SDK gets through the
  // authUploadDeviceSigningKeys callback with alice's password. Both run before the device's
  // sync loop starts: with it running, the reset races a /keys/query the loop sends for alice,
  // which can still return the old keys and make the Rust crypto drop the new private keys.
  //
  // The callback first tries without auth, as Element does, and answers a 401 challenge that
  // offers m.login.password with the password and the challenge's session.
  let uiaPasswordAuths = 0;
  const authUploadDeviceSigningKeys = async (makeRequest) => {
    try {
      await makeRequest(null);
      return;
    } catch (err) {
      const flows = err?.data?.flows;
      if (err?.httpStatus !== 401 || !flows?.some((f) => f.stages?.includes("m.login.password"))) throw err;
      uiaPasswordAuths++;
      await makeRequest({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: aliceUser },
        password: alicePassword,
        session: err.data.session,
      });
    }
  };
  const bootstrapCrossSigning = (client) =>
    client.getCrypto().bootstrapCrossSigning({ setupNewCrossSigning: true, authUploadDeviceSigningKeys });
  let firstMasterKey = null;
  const bootstrapTwice = async (client) => {
    stage = "bootstrapCrossSigning";
    await bootstrapCrossSigning(client);
    firstMasterKey = await client.getCrypto().getCrossSigningKeyId();
    if (!firstMasterKey) throw new Error("no master cross-signing key after bootstrapCrossSigning");
    stage = "bootstrapCrossSigning (reset, with UIA)";
    await bootstrapCrossSigning(client);
    if (uiaPasswordAuths !== 1) {
      throw new Error(`${uiaPasswordAuths} password UIA stages for two cross-signing uploads, want 1 (the reset)`);
    }
  };
  const alice = await login(aliceUser, alicePassword, "alice device 1", bootstrapTwice);
  const bob = await login(bobUser, bobPassword, "bob device 1");
  const aliceId = alice.getUserId();
  const bobId = bob.getUserId();
  const aliceCrypto = alice.getCrypto();
  stage = "cross-signing";

  const masterKey = await aliceCrypto.getCrossSigningKeyId();
  if (!masterKey) throw new Error("no master cross-signing key after the cross-signing reset");
  if (masterKey === firstMasterKey) throw new Error(`master key ${masterKey} unchanged by the reset`);
  const status = await aliceCrypto.getCrossSigningStatus();
  if (!status.publicKeysOnDevice || !status.privateKeysCachedLocally.masterKey) {
    throw new Error(`cross-signing status after bootstrap: ${JSON.stringify(status)}`);
  }
  // keys/query as bob sees it: alice's master key, and her device signed by her self-signing key.
  const query = await bob.http.authedRequest(sdk.Method.Post, "/keys/query", undefined, {
    device_keys: { [aliceId]: [] },
  });
  const qMaster = query.master_keys?.[aliceId];
  if (!qMaster || !Object.values(qMaster.keys ?? {}).includes(masterKey)) {
    throw new Error(`keys/query master_keys for ${aliceId} is ${JSON.stringify(qMaster)}, want key ${masterKey}`);
  }
  if (!query.self_signing_keys?.[aliceId]) throw new Error(`keys/query has no self_signing_keys: ${JSON.stringify(query)}`);
  const devSigs = query.device_keys?.[aliceId]?.[alice.getDeviceId()]?.signatures?.[aliceId] ?? {};
  if (Object.keys(devSigs).length < 2) {
    throw new Error(`alice's device is not cross-signed in keys/query: ${JSON.stringify(devSigs)}`);
  }
  if (!(await aliceCrypto.isCrossSigningReady())) throw new Error("isCrossSigningReady is false after bootstrap");

  stage = "bootstrapSecretStorage";
  await aliceCrypto.bootstrapSecretStorage({
    setupNewSecretStorage: true,
    createSecretStorageKey: async () => {
      recoveryKey = await aliceCrypto.createRecoveryKeyFromPassphrase();
      return recoveryKey;
    },
  });
  if (!(await aliceCrypto.isSecretStorageReady())) throw new Error("isSecretStorageReady is false after bootstrap");

  stage = "resetKeyBackup";
  await aliceCrypto.resetKeyBackup();
  stage = "checkKeyBackupAndEnable";
  const check = await aliceCrypto.checkKeyBackupAndEnable();
  const backupVersion = check?.backupInfo?.version;
  if (!backupVersion) throw new Error(`checkKeyBackupAndEnable found no backup: ${JSON.stringify(check)}`);
  if (!check.trustInfo?.trusted || !check.trustInfo?.matchesDecryptionKey) {
    throw new Error(`backup ${backupVersion} not trusted: ${JSON.stringify(check.trustInfo)}`);
  }
  await waitFor("the backup to be active", async () => (await aliceCrypto.getActiveSessionBackupVersion()) === backupVersion);

  stage = "create encrypted room";
  const { room_id: roomId } = await alice.createRoom({
    name: "e2ee",
    preset: "private_chat",
    invite: [bobId],
    initial_state: [
      { type: "m.room.encryption", state_key: "", content: { algorithm: "m.megolm.v1.aes-sha2" } },
    ],
  });
  stage = "bob joins";
  await waitFor("bob's invite", () => bob.getRoom(roomId)?.getMyMembership() === "invite");
  await bob.joinRoom(roomId);
  await waitFor("alice to see bob joined", () => alice.getRoom(roomId)?.getMember(bobId)?.membership === "join");
  await waitFor("bob to see the room joined", () => bob.getRoom(roomId)?.getMyMembership() === "join");
  for (const c of [alice, bob]) {
    await waitFor(`${c.getUserId()} to see the room encrypted`, () => c.getCrypto().isEncryptionEnabledInRoom(roomId));
  }

  stage = "alice sends";
  const aliceBody = `secret from alice ${Date.now()}`;
  const { event_id: aliceEvent } = await alice.sendTextMessage(roomId, aliceBody);
  stage = "bob decrypts";
  const gotByBob = await decrypted(bob, roomId, aliceEvent);
  if (gotByBob !== aliceBody) throw new Error(`bob decrypted ${JSON.stringify(gotByBob)}, want ${JSON.stringify(aliceBody)}`);

  stage = "bob sends";
  const bobBody = `secret from bob ${Date.now()}`;
  const { event_id: bobEvent } = await bob.sendTextMessage(roomId, bobBody);
  stage = "alice decrypts";
  const gotByAlice = await decrypted(alice, roomId, bobEvent);
  if (gotByAlice !== bobBody) throw new Error(`alice decrypted ${JSON.stringify(gotByAlice)}, want ${JSON.stringify(bobBody)}`);

  // Both megolm sessions (alice's outbound one and bob's, received) must reach the backup. The
  // SDK's backup loop waits a random 0-10 s before uploading.
  stage = "backup upload";
  let backedUp = 0;
  await waitFor(
    "both room keys in the server's backup",
    async () => {
      const keys = await alice.http.authedRequest(sdk.Method.Get, "/room_keys/keys", { version: backupVersion });
      backedUp = Object.keys(keys?.rooms?.[roomId]?.sessions ?? {}).length;
      return backedUp >= 2;
    },
    30000,
    500,
  );

  // Alice's first device goes away, so that her new device can only get the keys from backup.
  alice.stopClient();

  stage = "alice device 3";
  const alice3 = await login(aliceUser, alicePassword, "alice device 3");
  const crypto3 = alice3.getCrypto();
  await waitFor("alice's new device to see the room", () => alice3.getRoom(roomId)?.getMyMembership() === "join");
  stage = "loadSessionBackupPrivateKeyFromSecretStorage";
  await crypto3.loadSessionBackupPrivateKeyFromSecretStorage();
  stage = "restoreKeyBackup";
  const restored = await crypto3.restoreKeyBackup();
  if (!restored || restored.imported < 2) throw new Error(`restoreKeyBackup: ${JSON.stringify(restored)}, want >= 2 imported`);
  stage = "alice device 3 decrypts";
  const old1 = await decrypted(alice3, roomId, aliceEvent);
  const old2 = await decrypted(alice3, roomId, bobEvent);
  if (old1 !== aliceBody || old2 !== bobBody) {
    throw new Error(`new device decrypted ${JSON.stringify([old1, old2])}, want ${JSON.stringify([aliceBody, bobBody])}`);
  }

  clearTimeout(timer);
  finish(0, {
    ok: true,
    alice: aliceId,
    bob: bobId,
    alice_device: alice.getDeviceId(),
    alice_new_device: alice3.getDeviceId(),
    room_id: roomId,
    alice_event: aliceEvent,
    bob_event: bobEvent,
    master_key: masterKey,
    uia_password_auths: uiaPasswordAuths,
    backup_version: backupVersion,
    backed_up: backedUp,
    restored_total: restored.total,
    restored_imported: restored.imported,
  });
} catch (err) {
  fail(stage, err);
}
