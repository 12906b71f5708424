package core

// Declared is a deploy of what compose files already declare: a commit of
// a git source, checked out in tidewatch's clone. The deploying trigger
// brings Service up as Files say (creating it when it does not run yet),
// with its usual pull, health gate and smoke checks, and on failure puts
// each Previous file back before bringing back what ran before. A Service
// that Files do not declare (or no Files at all: the project's files are
// gone) is brought down as compose brings down an orphan: the containers of
// the service that the project's folder deployed are stopped and removed,
// never their volumes.
type Declared struct {
	// Source and Commit name the git source and the commit.
	Source string `json:"source"`
	Commit string `json:"commit"`
	// Previous is the commit deployed before ("" at the first deploy).
	Previous string `json:"previous,omitempty"`
	// Project is the compose project's name; WorkingDir its folder; Files
	// its compose files (absolute paths, in compose order).
	Project    string   `json:"project"`
	WorkingDir string   `json:"working_dir"`
	Files      []string `json:"files,omitempty"`
	// Service is the service to bring up (or down).
	Service string `json:"service"`
	// PreviousFiles are the files the deploy changes: Path the file, Backup
	// a copy of its previous bytes ("" when the file did not exist before:
	// a rollback removes it).
	PreviousFiles []FileChange `json:"previous_files,omitempty"`
}

// Target is the declared service as the history names it: project/service.
func (d Declared) Target() string { return d.Project + "/" + d.Service }

// KindGit is the kind of a declared deploy's update: a commit, no image
// jump. It passes every THRESHOLD (a threshold says which image updates a
// trigger acts on by itself; a commit is no image update).
const KindGit UpdateKind = "git"
