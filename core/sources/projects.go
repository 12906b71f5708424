package sources

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tidewatch/tidewatch/core/gitsync"
)

// Project is one compose project of a deploy: a folder of the source
// holding compose files.
type Project struct {
	// Name is the project's name: the files' top-level name, else the
	// folder's name as compose makes it (lower case; letters, digits, "_"
	// and "-").
	Name string
	// Dir is the folder (absolute); Files its compose files (absolute):
	// compose.yaml (or docker-compose.yml, …) first, then the others, sorted.
	Dir   string
	Files []string
	// Up are the services to bring up (added and changed), sorted; Removed
	// those the commit removed, which are left as they run.
	Up, Removed []string
	// Previous are the compose and .env files of the folder, now or before
	// (Path), each with its copy from before the deploy (Backup; "" when it
	// did not exist). nil when what ran before is unknown (Deploy.Backups "").
	Previous []Previous
}

// Previous is a file a deploy may change, and its copy from before.
type Previous struct {
	// Path is the file (absolute); Backup its copy from before the deploy,
	// "" when it did not exist.
	Path, Backup string
}

// baseNames are compose's default file names, in its order of preference.
var baseNames = []string{"compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"}

var projectChars = regexp.MustCompile(`[^a-z0-9_-]+`)

// Projects groups the deploy's changed files by folder into compose
// projects, reading the folders in Dir and Backups. A folder whose compose
// files are all gone yields a project with only Removed services.
func (d Deploy) Projects() ([]Project, error) {
	byFolder := map[string]*Project{}
	var folders []string
	for _, f := range d.Files {
		folder := path.Dir(f.Path)
		p := byFolder[folder]
		if p == nil {
			p = &Project{Dir: filepath.Join(d.Dir, filepath.FromSlash(folder))}
			byFolder[folder] = p
			folders = append(folders, folder)
		}
		p.Up = append(p.Up, f.Added...)
		p.Up = append(p.Up, f.Changed...)
		p.Removed = append(p.Removed, f.Removed...)
	}
	slices.Sort(folders)
	var out []Project
	for _, folder := range folders {
		p := byFolder[folder]
		p.Up, p.Removed = sortedUnique(p.Up), sortedUnique(p.Removed)
		p.Removed = slices.DeleteFunc(p.Removed, func(s string) bool { return slices.Contains(p.Up, s) })
		now, err := composeFiles(p.Dir)
		if err != nil {
			return nil, err
		}
		var before []string // the folder's compose files before
		if d.Backups != "" {
			if before, err = composeFiles(filepath.Join(d.Backups, filepath.FromSlash(folder))); err != nil {
				return nil, err
			}
		}
		for _, f := range now {
			p.Files = append(p.Files, filepath.Join(p.Dir, f))
		}
		p.Name = projectName(p.Files, p.Dir)
		if d.Backups == "" {
			out = append(out, *p) // what ran before is unknown: nothing to put back
			continue
		}
		backups := filepath.Join(d.Backups, filepath.FromSlash(folder))
		names := slices.Concat(now, before, envFile(p.Dir), envFile(backups))
		for _, f := range sortedUnique(names) {
			prev := Previous{Path: filepath.Join(p.Dir, f)}
			if isFile(filepath.Join(backups, f)) {
				prev.Backup = filepath.Join(backups, f)
			}
			p.Previous = append(p.Previous, prev)
		}
		out = append(out, *p)
	}
	return out, nil
}

// composeFiles lists the compose files of a folder (names), base first.
func composeFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && gitsync.IsComposeFile(e.Name()) {
			names = append(names, e.Name())
		}
	}
	slices.SortFunc(names, func(a, b string) int {
		ia, ib := slices.Index(baseNames, a), slices.Index(baseNames, b)
		switch {
		case ia >= 0 && ib >= 0:
			return ia - ib
		case ia >= 0:
			return -1
		case ib >= 0:
			return 1
		}
		return strings.Compare(a, b)
	})
	// One base file: compose refuses a folder holding two.
	for len(names) > 1 && slices.Contains(baseNames, names[1]) {
		names = slices.Delete(names, 1, 2)
	}
	return names, nil
}

func envFile(dir string) []string {
	if isFile(filepath.Join(dir, ".env")) {
		return []string{".env"}
	}
	return nil
}

func isFile(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.Mode().IsRegular()
}

// projectName is the name compose gives the project of files in dir.
func projectName(files []string, dir string) string {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || len(b) > gitsync.MaxComposeSize {
			continue
		}
		var doc struct {
			Name string `yaml:"name"`
		}
		if yaml.Unmarshal(b, &doc) == nil && doc.Name != "" && !strings.Contains(doc.Name, "$") {
			if n := projectChars.ReplaceAllString(strings.ToLower(doc.Name), ""); n != "" {
				return n
			}
		}
	}
	return projectChars.ReplaceAllString(strings.ToLower(filepath.Base(dir)), "")
}

func sortedUnique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// The labels compose puts on a service's containers, which a declared
// deploy carries for the trigger's policy and its one-rollout-per-project
// rule.
const (
	labelProject    = "com.docker.compose.project"
	labelService    = "com.docker.compose.service"
	labelWorkingDir = "com.docker.compose.project.working_dir"
)

// serviceOf returns the image and the labels that files declare for
// service (labels as a map or a list of key=value; a later file's value
// wins), as written: the labels are what the trigger's policy reads
// (tidewatch.watch, tidewatch.trigger.include, tidewatch.trigger.exclude);
// the image names the registry whose credentials the pull takes and the
// history shows, "" when it interpolates a variable (the trigger reads it
// as compose does). nil labels when none.
func serviceOf(files []string, service string) (image string, labels map[string]string) {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || len(b) > gitsync.MaxComposeSize {
			continue
		}
		var doc struct {
			Services map[string]struct {
				Image  string    `yaml:"image"`
				Labels yaml.Node `yaml:"labels"`
			} `yaml:"services"`
		}
		if yaml.Unmarshal(b, &doc) != nil {
			continue
		}
		svc := doc.Services[service]
		if svc.Image != "" {
			image = svc.Image
		}
		n := svc.Labels
		set := func(k, v string) {
			if labels == nil {
				labels = map[string]string{}
			}
			labels[k] = v
		}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				set(n.Content[i].Value, n.Content[i+1].Value)
			}
		case yaml.SequenceNode:
			for _, e := range n.Content {
				k, v, _ := strings.Cut(e.Value, "=")
				set(k, v)
			}
		}
	}
	if strings.Contains(image, "$") {
		image = ""
	}
	return image, labels
}
