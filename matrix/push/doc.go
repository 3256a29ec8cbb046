// Package push is server-side push: each user's push rules (the spec's server-default ruleset
// plus the user's own rules and the enabled/actions overrides of defaults, kept in one record per
// user and mirrored to the m.push_rules account data), the evaluation of new room events against
// the rules of every local member except the users an application service holds exclusively
// (as in Synapse; SkipUsers) (mautrix pushrules), the per-room notification and highlight
// counts since the user's read receipt that /sync reports, the /notifications list (at most
// MaxNotifications per user), and pushers with HTTP delivery to push gateways
// (/_matrix/push/v1/notify) from a bounded queue with retries and exponential backoff.
//
// Evaluation runs off the bus (a queue subscription, so publishing never blocks): on every
// change it evaluates every event position up to the store's watermark that it has not seen, so
// a dropped message costs nothing but latency. A /sync calls AwaitCounts, which waits (briefly)
// until evaluation has reached the sync's position, then reads the counts with UnreadIn in its
// own transaction, so counts and timeline agree. Evaluation caches the room view it needs
// (members, power levels, name) by state snapshot, since a /sync waits for it.
package push
