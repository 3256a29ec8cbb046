// Simplified Sliding Sync (MSC4186) with matrix-js-sdk's SlidingSync class, which speaks it at
// /_matrix/client/unstable/org.matrix.simplified_msc3575/sync since matrix-js-sdk 34.
//
//   SLIDING_EXPECT='[{"room_id":"!a:hs","name":"Attic","last":"..."}, ...]' node sliding.mjs URL USER PASSWORD
//
// SLIDING_EXPECT lists the user's rooms, most recently active first, with their name and last
// message. The script logs in with a password, starts the client with a SlidingSync (one list,
// ranges [[0,19]], lazy members), and checks that:
//   1. the first response counts every room and sends them all, in recency order (bump_stamp);
//   2. the rooms appear in the client's store with their names and last messages;
//   3. a message sent to the least recent room arrives through the long-poll and moves that
//      room to the top (bump_stamp).
// It prints one JSON line {"ok":true,...} on stdout and exits 0, or {"ok":false,"error":...} and
// exits 1. Bounded by SLIDING_TIMEOUT_MS (default 60000). SDK logging goes to stderr.

const hardTimeoutMs = Number(process.env.SLIDING_TIMEOUT_MS || 60000);

for (const m of ["log", "info", "debug", "trace", "warn", "error"]) {
  console[m] = (...args) => process.stderr.write(args.map(String).join(" ") + "\n");
}

let client = null;
let sliding = null;
let finished = false;

function finish(code, result) {
  if (finished) return;
  finished = true;
  try {
    sliding?.stop();
    client?.stopClient();
  } catch {
    // best effort: the process exits next
  }
  process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(code));
}

function describe(err) {
  if (err?.errcode || err?.httpStatus) {
    return `HTTP ${err.httpStatus ?? "?"} ${err.errcode ?? ""}: ${err.data?.error ?? err.message} [${err.url ?? "?"}]`;
  }
  return err?.message ?? String(err);
}

let stage = "start";
function fail(where, err) {
  const msg = `${where}: ${describe(err)}`;
  process.stderr.write(`sliding: FAIL ${msg}\n`);
  if (err?.stack && !err?.errcode) process.stderr.write(`${err.stack}\n`);
  finish(1, { ok: false, stage: where, error: msg });
}

const timer = setTimeout(() => fail(stage, new Error(`no result after ${hardTimeoutMs} ms`)), hardTimeoutMs);
process.on("unhandledRejection", (err) => fail("unhandled rejection", err));
process.on("uncaughtException", (err) => fail("uncaught exception", err));

const [baseUrl, user, password] = process.argv.slice(2);
let expect;
try {
  expect = JSON.parse(process.env.SLIDING_EXPECT || "");
} catch {
  expect = null;
}
if (!baseUrl || !user || !password || !Array.isArray(expect) || expect.length < 2) {
  process.stderr.write("usage: SLIDING_EXPECT='[...]' node sliding.mjs URL USER PASSWORD\n");
  clearTimeout(timer);
  process.exit(2);
}

// waitFor polls a condition (the SDK processes responses asynchronously).
function waitFor(what, cond, ms = 20000) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => {
      let v;
      try {
        v = cond();
      } catch (e) {
        reject(e);
        return;
      }
      if (v) resolve(v);
      else if (Date.now() - t0 > ms) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(tick, 50);
    };
    tick();
  });
}

try {
  stage = "load matrix-js-sdk";
  const sdk = await import("matrix-js-sdk");
  const { SlidingSync, SlidingSyncEvent, SlidingSyncState } = await import("matrix-js-sdk/lib/sliding-sync.js");
  try {
    const { logger } = await import("matrix-js-sdk/lib/logger.js");
    logger.setLevel(process.env.SLIDING_DEBUG ? "debug" : "warn");
  } catch {
    // the console redirect above keeps stdout clean anyway
  }

  stage = "login";
  const anon = sdk.createClient({ baseUrl });
  const login = await anon.loginRequest({
    type: "m.login.password",
    identifier: { type: "m.id.user", user },
    password,
    initial_device_display_name: "hearth js sliding sync",
  });
  client = sdk.createClient({ baseUrl, accessToken: login.access_token, userId: login.user_id, deviceId: login.device_id });

  stage = "versions";
  const versions = await client.getVersions();
  if (versions.unstable_features?.["org.matrix.simplified_msc3575"] !== true) {
    throw new Error(`/versions does not advertise org.matrix.simplified_msc3575: ${JSON.stringify(versions.unstable_features)}`);
  }

  stage = "first response";
  const responses = [];
  const list = {
    ranges: [[0, 19]],
    timeline_limit: 3,
    required_state: [
      ["m.room.name", ""],
      ["m.room.create", ""],
      ["m.room.member", "$LAZY"],
      ["m.room.member", "$ME"],
    ],
  };
  sliding = new SlidingSync(baseUrl, new Map([["all", list]]), { timeline_limit: 10, required_state: [["*", "*"]] }, client, 30000);
  sliding.on(SlidingSyncEvent.Lifecycle, (state, resp, err) => {
    if (err) process.stderr.write(`sliding: request error (the SDK retries): ${describe(err)}\n`);
    if (state === SlidingSyncState.RequestFinished && resp) responses.push(resp);
  });
  await client.startClient({ slidingSync: sliding });

  const first = await waitFor("the first sliding sync response", () => responses[0]);
  const count = first.lists?.all?.count;
  if (count !== expect.length) throw new Error(`list count ${count}, want ${expect.length}`);
  const order = Object.entries(first.rooms || {})
    .sort(([, a], [, b]) => (b.bump_stamp ?? 0) - (a.bump_stamp ?? 0))
    .map(([id]) => id);
  const want = expect.map((r) => r.room_id);
  if (JSON.stringify(order) !== JSON.stringify(want)) {
    throw new Error(`rooms by bump_stamp ${JSON.stringify(order)}, want ${JSON.stringify(want)}`);
  }

  stage = "rooms in the store";
  for (const r of expect) {
    await waitFor(`room ${r.name}`, () => {
      const room = client.getRoom(r.room_id);
      if (!room || room.name !== r.name) return false;
      const evs = room.getLiveTimeline().getEvents().filter((e) => e.getType() === "m.room.message");
      return evs.length > 0 && evs[evs.length - 1].getContent().body === r.last;
    });
  }

  stage = "live message";
  const oldest = expect[expect.length - 1].room_id;
  const body = `live from matrix-js-sdk ${Date.now()}`;
  const before = responses.length;
  const { event_id: eventId } = await client.sendTextMessage(oldest, body);
  const live = await waitFor("the message through sliding sync", () =>
    responses.slice(before).find((r) => r.rooms?.[oldest]?.timeline?.some((e) => e.event_id === eventId)),
  );
  const bump = live.rooms[oldest].bump_stamp ?? 0;
  const topBump = first.rooms[want[0]].bump_stamp ?? 0;
  if (!(bump > topBump)) throw new Error(`bump_stamp ${bump} of the room with the new message is not above ${topBump}`);
  await waitFor("the event in the room's live timeline", () =>
    client.getRoom(oldest)?.getLiveTimeline().getEvents().some((e) => e.getId() === eventId && e.getContent().body === body),
  );

  clearTimeout(timer);
  finish(0, { ok: true, user_id: login.user_id, count, order, event_id: eventId, responses: responses.length });
} catch (err) {
  fail(stage, err);
}
