// Package gitsync keeps git and the running containers in step, with
// go-git (pure Go: no git binary is needed at run time). It has three parts,
// each usable alone; it starts no goroutines and schedules nothing itself.
//
// # Committing rollouts (Committer)
//
// After a healthy rollout rewrote a compose file or .env, Commit commits
// exactly that edit in the git work tree holding the file, and pushes it to
// the branch's upstream when configured:
//
//   - FindWorkTree tells, with a few stat calls, whether a file lies in a
//     work tree at all (ErrNotWorkTree is the common, cheap case).
//   - The commit is built from the branch's last commit with only the
//     rollout's edit replayed on it: whatever else the user left staged or
//     modified stays so, including their own uncommitted edits of the same
//     file. Only files git tracks are committed (an ignored .env, which may
//     hold secrets, is skipped). git's index.lock is held while the branch
//     and the index are updated (ErrBusy while git holds it). Hooks are not
//     run and commits are not signed.
//   - The push goes to the upstream (branch.<name>.remote/.merge). When the
//     remote moved, the commit is replayed on the remote head if its edit
//     still applies and the work tree brought along (only files the user has
//     not modified); otherwise a *ConflictError says why, the local commit
//     stays, the work tree is clean and the file holds what the rollout
//     wrote. The user's own unpushed commits are never pushed; tidewatch's
//     own earlier commits that could not be pushed go with the next push.
//
// # Deploying from git (Mirror, State)
//
// A Source is a repository, branch and folder; its Mirror is a shallow,
// single-branch clone (one commit deep, so a long history costs nothing)
// that Fetch clones or updates and Checkout sets to a commit. Changes lists
// the compose files under the folder that differ between two commits and,
// per file, the services added, removed and changed: services are compared
// as decoded YAML, so comments, layout, quoting, key order and anchors are
// no change; a changed .env changes the services that interpolate one of
// its changed variables. State remembers, per source, the commit deployed
// and the last commit that failed, so that Next does not try a failed
// commit again until a new one arrives.
//
// # Push webhooks
//
// ParsePush verifies a GitHub (X-Hub-Signature-256), GitLab
// (X-Gitlab-Token), Gitea (X-Gitea-Signature) or Forgejo
// (X-Forgejo-Signature) push webhook in constant time and parses its ref and
// commit; ReadBody bounds the body (DefaultMaxBody); Push.Matches tells
// whether it concerns a source.
//
// # Bounds and secrets
//
// Every network operation takes a context and ends with it: a remote that
// hangs ends at the caller's deadline. Files read from git are bounded
// (DefaultMaxFileSize for commits, MaxComposeSize for diffs), and so are
// history walks and the files a diff or rebase looks at. Credentials go in
// Credentials, never in URLs: errors and messages never show a token, a
// key, or the user information of a URL (RedactURL), and keep only the
// sentinel errors of the go-git errors they wrap. The clone's size is not
// bounded other than by the deadline: a repository with a huge file is
// downloaded whole.
package gitsync
