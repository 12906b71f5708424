// Command testplugin is a trigger plugin for the tests of plugins/host. It
// imports only plugins/sdk, as an outside plugin would. What it does is set
// by its options, and per update by the label testplugin.mode:
//
//	MODE        ok (default), retry, fail, crash (exit mid-fire), hang
//	            (ignore the context), crash-once (crash unless STATE_FILE
//	            says it already did)
//	STATE_FILE  a file it appends to: "configure <name> <pid>", "fire <key> <pid>", "crashed"
//	ENV         a variable's name: OK results' detail is "env=<its value>"
//	COUNT       an integer from 1 to 9, only checked
//	TOKEN       a secret, never used
//
// It logs at several levels through sdk.Logger: "configured" (info, made
// before Serve), "firing" (debug) and "fire result" (warn, through a logger
// made after Serve, whose lines go through go-plugin's stdio stream), and
// "bad options" (error).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/tidewatch/tidewatch/plugins/sdk"
)

var options = []sdk.Option{
	{Name: "MODE", Description: "what Fire does: ok, retry, fail, crash, hang or crash-once", Default: "ok"},
	{Name: "STATE_FILE", Description: "a file to record calls in"},
	{Name: "ENV", Description: "a variable whose value OK results report"},
	{Name: "COUNT", Description: "an integer from 1 to 9"},
	{Name: "TOKEN", Description: "a secret", Secret: true},
}

type trigger struct {
	log   *slog.Logger
	name  string
	mode  string
	state string
	env   string
}

func (t *trigger) Describe(context.Context) sdk.Description {
	return sdk.Description{Type: "test", Description: "a trigger for tests", Options: options}
}

func (t *trigger) Configure(_ context.Context, name string, values map[string]string) error {
	o := sdk.NewOptions(values, options)
	t.name, t.mode, t.state, t.env = name, o.String("MODE"), o.String("STATE_FILE"), o.String("ENV")
	if !validMode(t.mode) {
		o.Add("MODE", "%q is not a mode; expected ok, retry, fail, crash, hang or crash-once", t.mode)
	}
	o.Int("COUNT", 1, 9)
	if err := o.Err(); err != nil {
		t.log.Error("bad options", "count", len(sdk.OptionErrors(err)))
		return err
	}
	t.record("configure %s %d", name, os.Getpid())
	t.log.Info("configured", "name", name, "mode", t.mode)
	return nil
}

func validMode(m string) bool {
	switch m {
	case "ok", "retry", "fail", "crash", "hang", "crash-once":
		return true
	}
	return false
}

func (t *trigger) Fire(ctx context.Context, updates []sdk.Update) []sdk.Result {
	late := sdk.Logger() // made after Serve: written through go-plugin's stdio stream
	out := make([]sdk.Result, len(updates))
	for i, u := range updates {
		mode := t.mode
		if m := u.Labels["testplugin.mode"]; m != "" {
			mode = m
		}
		t.log.Debug("firing", "key", u.Key, "mode", mode)
		t.record("fire %s %d", u.Key, os.Getpid())
		switch mode {
		case "ok":
			out[i] = sdk.OK("env=" + os.Getenv(t.env))
		case "retry":
			out[i] = sdk.Retry(errors.New("peer busy"))
		case "fail":
			out[i] = sdk.Fail(errors.New("peer refused"))
		case "crash":
			os.Exit(3)
		case "crash-once":
			if b, _ := os.ReadFile(t.state); strings.Contains(string(b), "crashed\n") {
				out[i] = sdk.OK("after crash")
				break
			}
			t.record("crashed")
			os.Exit(3)
		case "hang":
			select {}
		}
		late.Warn("fire result", "key", u.Key, "ok", out[i].Err == nil)
	}
	return out
}

func (t *trigger) record(format string, args ...any) {
	if t.state == "" {
		return
	}
	f, err := os.OpenFile(t.state, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.log.Error("recording", "error", err)
		return
	}
	defer f.Close()
	fmt.Fprintf(f, format+"\n", args...)
}

func main() {
	sdk.Serve(&trigger{log: sdk.Logger()})
}
