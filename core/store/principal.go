package store

import "context"

type principalKey struct{}

// WithPrincipal returns ctx carrying principal, who asked for what is done
// with it ("user:alice", "token:ci"): the history events written with that
// context (AddEvent without a Principal, Dismiss, Snooze) record it. A
// delivery's principal is its own (NewDelivery.Principal).
func WithPrincipal(ctx context.Context, principal string) context.Context {
	return context.WithValue(ctx, principalKey{}, principal)
}

// PrincipalFrom returns the principal ctx carries, "" for none.
func PrincipalFrom(ctx context.Context) string {
	p, _ := ctx.Value(principalKey{}).(string)
	return p
}
