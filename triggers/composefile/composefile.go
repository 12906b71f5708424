package composefile

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// Compose labels that Locate reads from a container.
const (
	LabelProject     = "com.docker.compose.project"
	LabelService     = "com.docker.compose.service"
	LabelWorkingDir  = "com.docker.compose.project.working_dir"
	LabelConfigFiles = "com.docker.compose.project.config_files"
)

// Errors callers branch on. Every error Locate and Plan return wraps one of them (or an I/O error),
// with the reason in words.
var (
	// ErrBuilt: the service is built from source (build: without image:), so there is no image to change.
	ErrBuilt = errors.New("service is built, not pulled")
	// ErrNoImage: the service, or an image: for it, was not found in the project's files.
	ErrNoImage = errors.New("service image not found")
	// ErrUnsupported: the image value is set in a way that cannot be changed safely (a variable covering
	// the whole image, a block scalar, an anchor also used outside services' images, ...).
	ErrUnsupported = errors.New("image value cannot be rewritten")
	// ErrOtherRepository: the update is for another repository than the one the file names.
	ErrOtherRepository = errors.New("image repository differs")
	// ErrInvalidRef: the new tag or digest is not valid.
	ErrInvalidRef = errors.New("invalid tag or digest")
	// ErrNoChange: the file already says what the update asks for; nothing to write.
	ErrNoChange = errors.New("image already at the requested tag")
	// ErrChanged: the file changed on disk since Plan read it; nothing was written.
	ErrChanged = errors.New("file changed since it was read")
	// ErrTooComplex: following the file's merge keys (<<) would take more work than any real compose
	// file needs (over 10,000 mappings visited); the file is refused rather than followed.
	ErrTooComplex = errors.New("compose file too complex to follow")
)

// PathMapping maps a host path prefix (as written in compose labels) to the path under which tidewatch
// sees the same folder.
type PathMapping struct {
	Host  string // prefix on the Docker host, e.g. /srv/stacks
	Local string // the same folder as tidewatch sees it, e.g. /stacks
}

// ParsePathMap parses the PATH_MAP option: comma-separated "host-prefix:local-prefix" pairs, both
// absolute. An empty string gives no mapping.
func ParsePathMap(s string) ([]PathMapping, error) {
	var out []PathMapping
	var errs []error
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		host, local, ok := strings.Cut(p, ":")
		host, local = strings.TrimSpace(host), strings.TrimSpace(local)
		if !ok || !filepath.IsAbs(host) || !filepath.IsAbs(local) {
			errs = append(errs, fmt.Errorf("path mapping %q: want host-prefix:local-prefix, both absolute", p))
			continue
		}
		out = append(out, PathMapping{Host: filepath.Clean(host), Local: filepath.Clean(local)})
	}
	return out, errors.Join(errs...)
}

// Map returns path with the longest matching host prefix replaced by its local prefix; paths that no
// mapping covers are returned cleaned but otherwise unchanged. Prefixes match whole path elements.
func Map(maps []PathMapping, path string) string {
	path = filepath.Clean(path)
	best := -1
	for i, m := range maps {
		if path == m.Host || strings.HasPrefix(path, strings.TrimSuffix(m.Host, "/")+"/") {
			if best < 0 || len(m.Host) > len(maps[best].Host) {
				best = i
			}
		}
	}
	if best < 0 {
		return path
	}
	m := maps[best]
	return filepath.Join(m.Local, strings.TrimPrefix(path, m.Host))
}

// LocateOptions says where to look besides the container's labels.
type LocateOptions struct {
	// File overrides the config_files label: the compose file(s), comma-separated in compose order, as
	// paths tidewatch can open (PathMap is not applied). Relative paths are taken from WorkingDir.
	File string
	// Service overrides the com.docker.compose.service label.
	Service string
	// PathMap maps host paths from the labels (config_files, working_dir) to local ones.
	PathMap []PathMapping
	// EnvFile is the file compose reads variables from (a local path). Default: <working dir>/.env.
	EnvFile string
}

// EnvVar describes the variable an image's tag is interpolated from: "${NAME}", "${NAME:-default}",
// "${NAME-default}" or "$NAME" (and the "?" forms, without default).
type EnvVar struct {
	Name       string
	Default    string // the default written in the compose file, when HasDefault
	HasDefault bool
	// EnvFile and Line say where the variable is set: the env file's path and the 1-based line of the
	// (last) assignment. Empty and 0 when no env file sets it and the default applies.
	EnvFile string
	Line    int
	Value   string // the value in effect: the env file's, or the default
}

// Target is where a service's image is set, as Locate found it.
type Target struct {
	Project    string
	Service    string
	WorkingDir string   // local path
	Files      []string // all the project's files, in compose order (local paths)
	File       string   // the one that sets the service's image: the last that does, as compose merges
	// Image is the value as written, e.g. "registry/app:${APP_TAG:-1.0.0}" or "127.0.0.1:5000/app:1.0.0".
	Image string
	// Var is non-nil when the tag comes from a variable; Plan then edits the env file (or the default).
	Var *EnvVar
	// Repository, Tag and Digest are Image's parts after interpolation (Tag is "" for an untagged
	// image, which means latest; Digest "" when the image is not pinned).
	Repository, Tag, Digest string
	// Shared names the other services whose image is the same YAML node (an anchor they alias, or a
	// mapping they merge with <<): changing the value changes theirs in the file too.
	Shared []string

	src     []byte // File's bytes as read by Locate
	env     []byte // the env file's bytes as read by Locate (nil when none)
	envPath string
	val     valueRef // where the image value's bytes are in src
}

// Change is the planned rewrite of one file: Path's bytes go from Old to New. Nothing is written until
// Apply.
type Change struct {
	Path     string
	Old, New []byte
	// Diff shows the changed line in a unified-diff style, for dry runs.
	Diff string
	// OldImage and NewImage are the image before and after, interpolated.
	OldImage, NewImage string
	// Shared lists the other services whose image the change also rewrites (see Target.Shared).
	Shared []string

	varValue string // the variable's new value, when Path is the env file
}

// Backup is the copy Apply kept of a file before writing it.
type Backup struct {
	File string // the file that was changed
	Path string // the copy of its previous bytes: <File>.tidewatch-<UTC timestamp>.bak
}
