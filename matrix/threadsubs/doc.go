// Package threadsubs keeps users' thread subscriptions (MSC4306, unstable prefix
// io.element.msc4306): a user subscribes to a thread by hand or a client subscribes
// automatically on the user's behalf, naming the event that caused it (a mention in the
// thread, say). An unsubscription is remembered with the stream position at which it happened,
// so an automatic subscription caused by an older event (a client catching up on history) is
// refused with M_CONFLICTING_UNSUBSCRIPTION instead of undoing the user's choice.
//
// The records live in the store (store.ThreadSubRecord, a change stream per user); sliding
// sync's io.element.msc4308.thread_subscriptions extension reads that stream.
package threadsubs
