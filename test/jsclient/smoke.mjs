// Smoke test of a homeserver with matrix-js-sdk, the SDK behind Element Web.
//
//   node smoke.mjs URL USER PASSWORD
//   SMOKE_HS_URL=... SMOKE_USER=... SMOKE_PASSWORD=... node smoke.mjs
//
// Logs in with a password, creates a room, sends a text message, starts the client (a real /sync
// loop) and waits until the message arrives in the room's timeline through sync. On success it
// prints one JSON line {"ok":true,"room_id":...,"event_id":...} on stdout and exits 0; on any
// failure it prints the error on stderr, {"ok":false,"error":...} on stdout, and exits 1. The
// whole run is bounded by a hard timeout (SMOKE_TIMEOUT_MS, default 60000).
//
// stdout carries only the result line: everything the SDK logs goes to stderr.

const hardTimeoutMs = Number(process.env.SMOKE_TIMEOUT_MS || 60000);

// Route every console method to stderr before the SDK is loaded, so that its logging can never
// be mistaken for the result line.
for (const m of ["log", "info", "debug", "trace", "warn", "error"]) {
  console[m] = (...args) => process.stderr.write(args.map(String).join(" ") + "\n");
}

let client = null;
let finished = false;

function finish(code, result) {
  if (finished) return;
  finished = true;
  try {
    client?.stopClient();
  } catch {
    // stopping is best effort: the process exits next
  }
  process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(code));
}

function describe(err) {
  // A MatrixError (HTTP error with a Matrix body) carries errcode, httpStatus, data and url.
  if (err?.errcode || err?.httpStatus) {
    const detail = err.data?.error ?? err.message;
    return `HTTP ${err.httpStatus ?? "?"} ${err.errcode ?? ""}: ${detail} [${err.url ?? "?"}]`;
  }
  const cause = err?.cause?.cause ?? err?.cause; // a raw fetch TypeError keeps the reason here
  const msg = err?.message ?? String(err);
  return cause?.message || cause?.code ? `${msg} (${cause.code ?? ""} ${cause.message ?? ""})` : msg;
}

function fail(stage, err) {
  const msg = `${stage}: ${describe(err)}`;
  process.stderr.write(`smoke: FAIL ${msg}\n`);
  if (err?.stack && !err?.errcode) process.stderr.write(`${err.stack}\n`);
  finish(1, { ok: false, stage, error: msg });
}

const timer = setTimeout(() => fail("timeout", new Error(`no result after ${hardTimeoutMs} ms`)), hardTimeoutMs);
process.on("unhandledRejection", (err) => fail("unhandled rejection", err));
process.on("uncaughtException", (err) => fail("uncaught exception", err));

const [argUrl, argUser, argPassword] = process.argv.slice(2);
const baseUrl = argUrl || process.env.SMOKE_HS_URL;
const user = argUser || process.env.SMOKE_USER;
const password = argPassword || process.env.SMOKE_PASSWORD;
if (!baseUrl || !user || !password) {
  process.stderr.write("usage: node smoke.mjs URL USER PASSWORD (or SMOKE_HS_URL, SMOKE_USER, SMOKE_PASSWORD)\n");
  clearTimeout(timer);
  process.exit(2);
}

let stage = "load matrix-js-sdk";
try {
  const sdk = await import("matrix-js-sdk");
  try {
    const { logger } = await import("matrix-js-sdk/lib/logger.js");
    logger.setLevel(process.env.SMOKE_DEBUG ? "debug" : "warn");
  } catch {
    // older or newer layouts: the console redirect above still keeps stdout clean
  }

  stage = "login";
  const anon = sdk.createClient({ baseUrl });
  const login = await anon.loginRequest({
    type: "m.login.password",
    identifier: { type: "m.id.user", user },
    password,
    initial_device_display_name: "hearth js smoke",
  });
  if (!login?.access_token || !login?.user_id || !login?.device_id) {
    throw new Error(`login response lacks access_token, user_id or device_id: ${JSON.stringify(login)}`);
  }
  client = sdk.createClient({
    baseUrl,
    accessToken: login.access_token,
    userId: login.user_id,
    deviceId: login.device_id,
  });

  stage = "createRoom";
  const { room_id: roomId } = await client.createRoom({ name: "js smoke", preset: "private_chat" });
  if (!roomId) throw new Error("createRoom returned no room_id");

  stage = "send";
  const body = `hello from matrix-js-sdk ${Date.now()}`;
  const { event_id: eventId } = await client.sendTextMessage(roomId, body);
  if (!eventId) throw new Error("send returned no event_id");

  stage = "sync";
  // Checks the room's live timeline for the sent event: it may arrive in the initial sync or
  // in a later incremental one.
  const check = () => {
    const room = client.getRoom(roomId);
    const ev = room?.getLiveTimeline().getEvents().find((e) => e.getId() === eventId);
    if (!ev) return;
    if (ev.getType() !== "m.room.message" || ev.getContent().body !== body || ev.getSender() !== login.user_id) {
      fail("sync", new Error(`event ${eventId} came back altered: ${JSON.stringify(ev.event)}`));
      return;
    }
    clearTimeout(timer);
    finish(0, { ok: true, user_id: login.user_id, room_id: roomId, event_id: eventId });
  };
  client.on(sdk.RoomEvent.Timeline, (ev, room) => {
    if (room?.roomId === roomId && ev.getId() === eventId) check();
  });
  client.on(sdk.ClientEvent.Sync, (state, _prev, data) => {
    if (state === "ERROR") {
      process.stderr.write(`smoke: sync error (the SDK retries): ${describe(data?.error)}\n`);
    }
    if (state === "PREPARED" || state === "SYNCING") check();
  });
  await client.startClient({ initialSyncLimit: 10, lazyLoadMembers: false });
} catch (err) {
  fail(stage, err);
}
