package main

import (
	"sort"

	"github.com/tidewatch/tidewatch/plugins/sdk"
	"github.com/tidewatch/tidewatch/triggers/command"
	"github.com/tidewatch/tidewatch/triggers/compose"
	"github.com/tidewatch/tidewatch/triggers/docker"
	"github.com/tidewatch/tidewatch/triggers/email"
	"github.com/tidewatch/tidewatch/triggers/mqtt"
	"github.com/tidewatch/tidewatch/triggers/notify"
	"github.com/tidewatch/tidewatch/triggers/sms"
	"github.com/tidewatch/tidewatch/triggers/swarm"
	"github.com/tidewatch/tidewatch/triggers/webhook"
)

// builtins are the trigger types tidewatch serves itself, by re-executing
// its own binary as `tidewatch trigger serve <type>`. This table is the one
// place where tidewatch names its triggers: everything else knows them by
// what they describe (their options, whether they deploy).
var builtins = map[string]func() sdk.Trigger{
	"command": func() sdk.Trigger { return command.New() },
	"compose": func() sdk.Trigger { return compose.New() },
	"docker":  func() sdk.Trigger { return docker.New() },
	"email":   func() sdk.Trigger { return email.New() },
	"mqtt":    func() sdk.Trigger { return mqtt.New() },
	"notify":  func() sdk.Trigger { return notify.New() },
	"sms":     func() sdk.Trigger { return sms.New() },
	"swarm":   func() sdk.Trigger { return swarm.New() },
	"webhook": func() sdk.Trigger { return webhook.New() },
}

func builtinTypes() []string {
	types := make([]string, 0, len(builtins))
	for t := range builtins {
		types = append(types, t)
	}
	sort.Strings(types)
	return types
}
