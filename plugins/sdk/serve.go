package sdk

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/tidewatch/tidewatch/plugins/internal/proto"
)

// Handshake is what tidewatch and a plugin agree on before talking. A plugin
// started by hand, not by tidewatch, says so and exits.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "TIDEWATCH_PLUGIN",
	MagicCookieValue: "trigger-v1-5f3c1b0e",
}

// PluginName is the name under which the trigger is served in go-plugin's plugin set.
const PluginName = "trigger"

// Serve serves t as a trigger plugin until tidewatch stops it. Call it from
// main; it does not return while tidewatch talks to the plugin.
func Serve(t Trigger) {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugin.PluginSet{PluginName: &grpcPlugin{impl: t}},
		GRPCServer:      plugin.DefaultGRPCServer,
	})
}

// grpcPlugin is the plugin side of go-plugin's GRPCPlugin.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl Trigger
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	proto.RegisterTriggerServer(s, &server{impl: p.impl})
	return nil
}

func (p *grpcPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, fmt.Errorf("the sdk serves triggers; the client side is tidewatch's")
}

// server adapts a Trigger to the generated gRPC service.
type server struct {
	proto.UnimplementedTriggerServer
	impl Trigger
}

func (s *server) Describe(ctx context.Context, _ *proto.DescribeRequest) (*proto.DescribeResponse, error) {
	d := s.impl.Describe()
	resp := &proto.DescribeResponse{Type: d.Type, Description: d.Description}
	for _, o := range d.Options {
		resp.Options = append(resp.Options, &proto.Option{Name: o.Name, Description: o.Description, Required: o.Required, Secret: o.Secret, Default: o.Default})
	}
	return resp, nil
}

func (s *server) Configure(ctx context.Context, req *proto.ConfigureRequest) (*proto.ConfigureResponse, error) {
	resp := &proto.ConfigureResponse{}
	for _, e := range OptionErrors(s.impl.Configure(ctx, req.GetName(), req.GetOptions())) {
		resp.Errors = append(resp.Errors, &proto.OptionError{Option: e.Option, Message: e.Message})
	}
	return resp, nil
}

func (s *server) Fire(ctx context.Context, req *proto.FireRequest) (*proto.FireResponse, error) {
	updates := make([]Update, len(req.GetUpdates()))
	for i, u := range req.GetUpdates() {
		updates[i] = UpdateFromProto(u)
	}
	results := s.impl.Fire(ctx, updates)
	resp := &proto.FireResponse{Results: make([]*proto.Result, len(updates))}
	for i, u := range updates {
		r := Result{Err: fmt.Errorf("the trigger returned %d results for %d updates", len(results), len(updates))}
		if i < len(results) {
			r = results[i]
		}
		pr := &proto.Result{Key: u.Key, Status: proto.Result_STATUS_OK, Detail: r.Detail, Event: r.Event}
		if r.Err != nil {
			pr.Message = r.Err.Error()
			pr.Status = proto.Result_STATUS_RETRY
			if IsPermanent(r.Err) {
				pr.Status = proto.Result_STATUS_FAIL
			}
		}
		resp.Results[i] = pr
	}
	return resp, nil
}

// UpdateFromProto converts the wire form of an update. It is for tidewatch's
// own plugin host; plugin authors never see the wire form.
func UpdateFromProto(u *proto.Update) Update {
	var at time.Time
	if n := u.GetDetectedAtUnixNano(); n != 0 {
		at = time.Unix(0, n).UTC()
	}
	return Update{
		Key: u.GetKey(), Event: u.GetEvent(), Host: u.GetHost(), Container: u.GetContainer(), ContainerID: u.GetContainerId(),
		Image: u.GetImage(), Current: u.GetCurrent(), CurrentDigest: u.GetCurrentDigest(), Candidate: u.GetCandidate(),
		CandidateDigest: u.GetCandidateDigest(), Kind: u.GetKind(), Link: u.GetLink(), DetectedAt: at, Labels: u.GetLabels(), Detail: u.GetDetail(),
	}
}

// UpdateToProto converts an update to its wire form, for tidewatch's plugin host.
func UpdateToProto(u Update) *proto.Update {
	var at int64
	if !u.DetectedAt.IsZero() {
		at = u.DetectedAt.UnixNano()
	}
	return &proto.Update{
		Key: u.Key, Event: u.Event, Host: u.Host, Container: u.Container, ContainerId: u.ContainerID,
		Image: u.Image, Current: u.Current, CurrentDigest: u.CurrentDigest, Candidate: u.Candidate,
		CandidateDigest: u.CandidateDigest, Kind: u.Kind, Link: u.Link, DetectedAtUnixNano: at, Labels: u.Labels, Detail: u.Detail,
	}
}
