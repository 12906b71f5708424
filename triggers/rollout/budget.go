package rollout

import (
	"context"
	"time"
)

// Margin is the time kept at the end of a Fire's deadline to return the
// result before tidewatch cuts the plugin off.
const Margin = 500 * time.Millisecond

// Split divides ctx's deadline between a rollout's forward steps and what
// must run after them whatever happened (a rollback, the cleanup): fwd ends
// reserve before ctx's deadline (at most half of the time left), and each
// context after returns runs to ctx's deadline less Margin, even once ctx
// is canceled. Without a deadline, fwd is ctx and after gives reserve.
// Call cancel when the forward steps are done.
func Split(ctx context.Context, reserve time.Duration) (fwd context.Context, cancel context.CancelFunc, after func() (context.Context, context.CancelFunc)) {
	dl, ok := ctx.Deadline()
	if !ok {
		fwd, cancel = context.WithCancel(ctx)
		return fwd, cancel, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.WithoutCancel(ctx), reserve)
		}
	}
	reserve = min(reserve, time.Until(dl)/2)
	fwd, cancel = context.WithDeadline(ctx, dl.Add(-reserve))
	return fwd, cancel, func() (context.Context, context.CancelFunc) {
		return context.WithDeadline(context.WithoutCancel(ctx), dl.Add(-Margin))
	}
}
