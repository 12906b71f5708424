package sdk

import (
	"context"
	"fmt"

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

// Plugins is the plugin set tidewatch's plugin host starts a plugin process
// with: dispensing PluginName from it gives a *Client. Plugin authors do not
// need it.
func Plugins() plugin.PluginSet { return plugin.PluginSet{PluginName: &grpcPlugin{}} }

// grpcPlugin is both sides of go-plugin's GRPCPlugin: the plugin serves
// impl, tidewatch gets a Client.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl Trigger
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	proto.RegisterTriggerServer(s, &server{impl: p.impl})
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (any, error) {
	return &Client{rpc: proto.NewTriggerClient(conn)}, nil
}

// server adapts a Trigger to the generated gRPC service.
type server struct {
	proto.UnimplementedTriggerServer
	impl Trigger
}

func (s *server) Describe(ctx context.Context, _ *proto.DescribeRequest) (*proto.DescribeResponse, error) {
	return describeToWire(s.impl.Describe(ctx)), nil
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
		updates[i] = updateFromWire(u)
	}
	results := s.impl.Fire(ctx, updates)
	resp := &proto.FireResponse{Results: make([]*proto.Result, len(updates))}
	for i, u := range updates {
		r := Result{Err: fmt.Errorf("the trigger returned %d results for %d updates", len(results), len(updates))}
		if i < len(results) {
			r = results[i]
		}
		resp.Results[i] = resultToWire(u.Key, r)
	}
	return resp, nil
}

// Client is tidewatch's side of the protocol: what its plugin host calls a
// plugin process through. Its errors are those of the call (gRPC statuses);
// a trigger's own answers come back as values. Plugin authors do not need it.
type Client struct {
	rpc proto.TriggerClient
}

// Describe asks the plugin what it is.
func (c *Client) Describe(ctx context.Context) (Description, error) {
	resp, err := c.rpc.Describe(ctx, &proto.DescribeRequest{})
	if err != nil {
		return Description{}, err
	}
	return describeFromWire(resp), nil
}

// Configure gives the plugin its options; the plugin's objections come back
// as option errors, the call's failure as the error.
func (c *Client) Configure(ctx context.Context, name string, options map[string]string) ([]*OptionError, error) {
	resp, err := c.rpc.Configure(ctx, &proto.ConfigureRequest{Name: name, Options: options})
	if err != nil {
		return nil, err
	}
	var out []*OptionError
	for _, e := range resp.GetErrors() {
		out = append(out, &OptionError{Option: e.GetOption(), Message: e.GetMessage()})
	}
	return out, nil
}

// Fire hands the plugin updates and returns what it answered, one Result
// per update it answered for (the caller checks the count).
func (c *Client) Fire(ctx context.Context, updates []Update) ([]Result, error) {
	req := &proto.FireRequest{Updates: make([]*proto.Update, len(updates))}
	for i, u := range updates {
		req.Updates[i] = updateToWire(u)
	}
	resp, err := c.rpc.Fire(ctx, req)
	if err != nil {
		return nil, err
	}
	out := make([]Result, len(resp.GetResults()))
	for i, r := range resp.GetResults() {
		out[i] = resultFromWire(r)
	}
	return out, nil
}
