// Command hearth-bench measures Hearth side by side with Dendrite on this machine, checks the
// memory budget and soaks the durability promise.
//
// `make bench` (quick mode, a few minutes) and `BENCH_MODE=full make bench` (the workload of
// issue 8) build Hearth, install Dendrite v0.13.8 into a cache folder, and drive both servers
// with the same plain net/http client:
//
//   - idle RSS after start; register users; create rooms and join members; send messages from
//     concurrent senders (throughput, send latency); long-polling syncers (wake latency from a
//     send's response to each syncer receiving the event); initial sync of a user in every room;
//     RSS peak (VmHWM) and after; store size on disk; cold start with that data; binary size;
//   - after every phase the harness waits until the server's CPU is idle and reports the wait,
//     since Dendrite acknowledges sends before it has processed them;
//   - the same workload again against Hearth with GOMEMLIMIT=96MiB;
//   - a floor: Badger's own durable transaction rate for the same value size on the same disk.
//
// Results go to docs/bench/results.md, results.json and latency.png.
//
// `make soak` (the -soak flag) runs 20 cycles of SIGKILL under write load against Hearth and
// checks after every restart that every acknowledged event is there, the store opened cleanly
// and the client's ledger matches the room's timeline; it ends with "N passed, M failed".
//
// The -profile flag runs the Hearth workload against an in-process appliance and writes CPU and
// heap profiles (the served binary has no pprof endpoint).
//
// Files: main.go (flags, orchestration), client.go (the Matrix client both servers share),
// hearth.go and dendrite.go (build or install, configure, start), workload.go (the phases),
// measure.go (/proc readings, CPU-idle waits, disk usage), floor.go, soak.go, profile.go,
// report.go (markdown and JSON), plot.go (the PNG).
package main
