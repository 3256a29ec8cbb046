// Package media is the content repository: uploads (direct and asynchronous via
// /_matrix/media/v1/create), downloads, thumbnails and URL previews.
//
// Files are stored content-addressed on disk under <data_dir>/media/ab/cd/<sha256> (the first
// two byte pairs of the hex hash as directories), so identical uploads share one file. What a
// media ID means (hash, content type, filename, size, uploader, times) is a store.MediaRecord in
// Badger. Thumbnails are generated with golang.org/x/image for JPEG, PNG, GIF (first frame) and
// WebP sources, snapped to a fixed set of sizes (as Synapse does, so that disk use per media is
// bounded) and cached under <data_dir>/media/thumbnails/ab/cd/<sha256>-<w>x<h>-<method>.
//
// URL previews fetch the page through an HTTP client whose dialer refuses loopback, private,
// link-local and other non-public addresses (checked on the resolved address of every
// connection, so redirects and DNS rebinding are covered) unless the configuration allows them.
//
// Remote media (another server's mxc:// URIs) is fetched from its origin over federation
// (remote_federation.go: the authenticated multipart endpoint, a Location part followed, the
// legacy /_matrix/media/v3/download only on 404 M_UNRECOGNIZED), stored content-addressed like
// local media with a store.RemoteMediaRecord, and served from that cache; concurrent requests
// share one fetch. A sweeper (remote_sweep.go) evicts least recently used files beyond the
// byte budget and files unused past the retention; they are fetched again on demand.
//
// The package knows nothing about HTTP serving; matrix/clientapi/media.go maps requests to it and
// uses the helpers in serving.go for the safe-serving headers.
package media
