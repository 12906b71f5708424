// Package composefile finds where a compose service's image is set and rewrites its tag, changing
// nothing else, and writes the file so that a crash leaves either the old or the new version.
//
// It is the file half of the compose trigger (triggers/compose): pure Go and file I/O, no Docker.
//
// # Finding the value: Locate
//
// The project's files come from the container's labels: com.docker.compose.project.config_files
// (comma-separated, in -f order; compose v2 writes absolute paths, docker-compose 1.29 paths relative
// to com.docker.compose.project.working_dir), mapped through PATH_MAP ("host-prefix:local-prefix"
// pairs, longest prefix wins) for when tidewatch sees the host's folder under another path; or from
// the FILE option (local paths, not mapped). The service is com.docker.compose.service. As compose
// merges files, the file that sets the image is the last one whose service has an image: key.
// Inside a file, image: is looked up as YAML does: through aliases (image: *img) and merge keys
// (<<: *base, <<: [*a, *b]; the service's own keys first, then the merged mappings in order).
// Each look-up visits a merged mapping once, however many merges reach it, and the look-ups in one
// file visit at most 10,000 mappings in all; a file that needs more (a "merge bomb", whose paths
// through nested merges grow as width^depth) is refused with ErrTooComplex.
// A service with build: and no image: anywhere is refused with ErrBuilt; a service or image that is
// not found (including one inherited through extends:, which is not followed) with ErrNoImage.
//
// # What is edited
//
// Only the bytes of the tag, or of tag@digest, inside the one scalar that holds the image. The scalar
// is found with go.yaml.in/yaml/v3's Node API (line and column) and the bytes are spliced into the
// original text, so comments, key order, blank lines, indentation, quoting style (plain, 'single',
// "double"), anchors, CRLF or lone-CR line endings, a missing final newline and a UTF-8 BOM all stay.
// Values written with escapes, folded over several lines or as block scalars (| >) are refused.
//
//   - "repo:1.0.0" → "repo:1.1.0"; "127.0.0.1:5000/app:1.0.0" → "127.0.0.1:5000/app:1.1.0" (the
//     registry's port is not a tag: the tag is after the last ":" that follows the last "/").
//   - An untagged "repo" (which means latest) gets ":newtag".
//   - Digests: Plan(tag, digest) writes "repo:tag@digest"; Plan("", digest) keeps the tag and
//     changes or adds only "@digest". A value pinned by digest needs a new digest (keeping the old one
//     would keep the old image).
//   - An anchored value (image: &img repo:1.0 / image: *img) is edited where the anchor is; the
//     other services that alias it, or that merge the mapping holding it, share the change and are
//     listed in Target.Shared and Change.Shared. They run the same repository by construction. The
//     change is refused when the anchor is also used anywhere that is not a service's image (outside
//     top-level x- fields, where anchors are usually defined), since that would change something else.
//   - Variables: when the tag is exactly one interpolation — "repo:${TAG}", "repo:$TAG",
//     "repo:${TAG:-1.0.0}", "repo:${TAG-1.0.0}", "repo:${TAG:?msg}" — the variable is edited where it is
//     set: in the project's env file (LocateOptions.EnvFile, default <working dir>/.env; its last
//     assignment, keeping its quoting, export prefix, comments and the rest of the file), or, when no
//     env file sets it (or sets it empty under ":-"), in the default inside the compose file. tidewatch
//     does not see the shell environment compose ran in. A variable covering the whole image
//     ("${IMAGE}"), a tag mixing text and variables ("v${X}"), "${X:+alt}", a variable digest, and
//     pinning a variable tag by digest are refused with ErrUnsupported.
//   - Variables in the repository part ("${REGISTRY:-r.example}/app:1.0") are resolved for
//     Target.Repository; the literal tag is edited.
//
// Plan re-parses the result and proves the change: for YAML, the new node tree equals the old one in
// kind, style, tag, anchor, alias, comments, line, order and value, except the one value, which must
// be the expected one; for env files, every assignment is the same except the one variable. Plan
// writes nothing. CheckRepository compares the target's repository with an update's.
//
// # Writing: Apply and Restore
//
// Apply refuses with ErrChanged when the file is no longer the bytes Plan read. It writes a backup
// beside the file first, <file>.tidewatch-<UTC timestamp>.bak (20060102T150405.000000000Z), keeping
// the newest N (at least 1), then the new bytes to a temp file in the same folder,
// .<file>.tidewatch-tmp-<random> (hidden, not ending in .yml/.yaml/.env; leftovers from a crash are
// removed by the next Apply or Restore), fsyncs it, renames it over the file and fsyncs the folder.
// Where rename cannot work — EBUSY or EXDEV, as for a single file bind-mounted into tidewatch's
// container (mount the folder instead) — or the temp file cannot be given the file's owner, the file
// is written in place (write, truncate, fsync) once the backup is safe. Mode and owner are kept (as
// root, the temp file is chowned to the file's owner). Restore writes the backup's bytes back the same
// way, byte for byte.
package composefile
