// Package stateres resolves forks in a room's state: state resolution v1 (room version 1, v1.go),
// v2 (room versions 2 to 11) and v2.1 (room version 12, MSC4297), as the spec's room version
// pages define them.
//
// It is pure: no store, no network, no globals. The caller passes the state maps to merge and a
// Fetcher that loads events by ID; everything else (auth chains, auth difference, the v2.1
// conflicted state subgraph, power and mainline orderings, iterative auth checks) happens here,
// with one event cache per Resolve call. The auth rules themselves are mautrix's
// federation/eventauth, called with auth events selected from the partially resolved state.
//
// Events of room versions 1 and 2 (the v1 event format) arrive converted to *pdu.PDU by
// matrix/events, which keeps their server-chosen IDs; nothing here depends on the format.
//
// What a resolution loads: the whole of every conflicted event, the auth links (ID list and
// depth, not the event) of each state event of every set, and then only the part of the auth
// graph under the fork: both the auth difference walk and the v2.1 subgraph walk stop once
// depth shows nothing further down can matter, and the mainline is loaded only down to the
// power levels events the sorted events cite. Depth is unchecked by the auth rules, so any
// walked auth link that does not go down in depth makes the walks exhaustive (exact on any
// graph, at the price of the whole auth history); depths lying below the point where a walk
// stopped are the one thing trusted. Whole events are kept only for the full conflicted set
// and the auth events consulted while sorting and authorising it. Resolve never modifies the
// maps or events it is given and may run concurrently with itself (given a safe Fetcher).
//
// Choices where the spec's text leaves room, each following Synapse and Ruma so that servers
// converge:
//   - The auth chain of a state set counts the set's own events as reachable, so an unconflicted
//     event is never part of the auth difference.
//   - m.room.create is treated as a power event (it can only be conflicted in a broken room).
//   - The graph sorted by reverse topological power ordering holds the power events of the full
//     conflicted set plus the events reached from them through auth_events links that stay
//     inside the full conflicted set; its edges are those direct links.
//   - During iterative auth checks a rejected event is never used as an auth event, whether it
//     comes from the partially resolved state or from the event's own auth_events.
package stateres
