package store

import "context"

type actorKey struct{}

// WithActor returns ctx carrying actor, who asked for what is done with it
// ("user:alice", "token:ci"): the history events written with that context
// (AddEvent, Dismiss, Snooze) record it.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the actor ctx carries, "" for none.
func ActorFrom(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string)
	return a
}
