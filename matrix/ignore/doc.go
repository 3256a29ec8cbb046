// Package ignore is the m.ignored_user_list account-data event (spec: "Ignoring Users"): its
// validation when a client stores it, and the filter that hides ignored users' events from
// /sync, /messages, /context, /relations and the bundled aggregations. State events are never
// hidden; invites from ignored users are (the sync builder asks Hides for the invite event).
package ignore
