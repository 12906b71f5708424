package gittest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHServer serves a Server's repositories over SSH on 127.0.0.1, running
// Debian's git-upload-pack and git-receive-pack for one client key.
type SSHServer struct {
	// Addr is "127.0.0.1:port"; a repository named "app" is cloned from
	// URL("app").
	Addr string
	// ClientKey is the PEM private key the server accepts.
	ClientKey []byte
	// KnownHosts is a known_hosts file holding the server's host key.
	KnownHosts string
	// OtherKnownHosts is a known_hosts file holding another key for the
	// same address, as a spoofed server would present.
	OtherKnownHosts string

	root string
}

// URL returns the ssh URL of repository name.
func (s *SSHServer) URL(name string) string { return "ssh://git@" + s.Addr + "/" + name + ".git" }

// ServeSSH starts an SSH server for s's repositories; it stops at the test's end.
func (s *Server) ServeSSH(t testing.TB) *SSHServer {
	t.Helper()
	hostSigner, hostPub := newKey(t)
	_, otherPub := newKey(t)
	clientPriv, clientPub := newKeyPEM(t)
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if string(k.Marshal()) == string(clientPub.Marshal()) {
			return nil, nil
		}
		return nil, fmt.Errorf("unknown key")
	}}
	cfg.AddHostKey(hostSigner)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	srv := &SSHServer{Addr: l.Addr().String(), ClientKey: clientPriv, root: s.Root}
	dir := t.TempDir()
	srv.KnownHosts = filepath.Join(dir, "known_hosts")
	srv.OtherKnownHosts = filepath.Join(dir, "other_known_hosts")
	host := knownhosts.Normalize(srv.Addr)
	os.WriteFile(srv.KnownHosts, []byte(knownhosts.Line([]string{host}, hostPub)+"\n"), 0o600)
	os.WriteFile(srv.OtherKnownHosts, []byte(knownhosts.Line([]string{host}, otherPub)+"\n"), 0o600)
	var wg sync.WaitGroup
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				srv.serve(c, cfg)
			}()
		}
	}()
	t.Cleanup(func() { l.Close(); wg.Wait() })
	return srv
}

func newKey(t testing.TB) (ssh.Signer, ssh.PublicKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer, signer.PublicKey()
}

func newKeyPEM(t testing.TB) ([]byte, ssh.PublicKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block), signer.PublicKey()
}

func (s *SSHServer) serve(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	conn, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	defer conn.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			return
		}
		go s.session(ch, chReqs)
	}
}

// session runs the one git command a session asks for.
func (s *SSHServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			req.Reply(req.Type == "env", nil)
			continue
		}
		if len(req.Payload) < 4 {
			req.Reply(false, nil)
			return
		}
		n := binary.BigEndian.Uint32(req.Payload)
		command := string(req.Payload[4 : 4+min(int(n), len(req.Payload)-4)])
		prog, arg, _ := strings.Cut(command, " ")
		repo := filepath.Join(s.root, filepath.Clean("/"+strings.Trim(arg, "'\"")))
		if prog != "git-upload-pack" && prog != "git-receive-pack" {
			req.Reply(false, nil)
			return
		}
		req.Reply(true, nil)
		cmd := exec.Command("git", strings.TrimPrefix(prog, "git-"), repo)
		cmd.Env = Env(s.root)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
		status := uint32(0)
		if err := cmd.Run(); err != nil {
			status = 1
			io.WriteString(ch.Stderr(), err.Error())
		}
		ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, status))
		return
	}
}
