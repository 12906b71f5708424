package docker

import (
	"context"
	"fmt"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"

	"github.com/tidewatch/tidewatch/core"
)

// PullAuth pulls ref through the engine with auth, the credentials of its
// registry (the zero value pulls anonymously), reading the progress stream
// to its end: an error the registry reports midway (an unknown tag, a
// refused login) is returned. The credentials never appear in the error.
func (c *Client) PullAuth(ctx context.Context, ref string, auth core.RegistryAuth) error {
	var opts image.PullOptions
	if !auth.Anonymous() {
		enc, err := registry.EncodeAuthConfig(registry.AuthConfig{
			Username: auth.Username, Password: auth.Password.Reveal(), ServerAddress: auth.Server,
			IdentityToken: auth.IdentityToken.Reveal(), RegistryToken: auth.RegistryToken.Reveal(),
		})
		if err != nil {
			return fmt.Errorf("pulling %s on %s: encoding the credentials for %s: %w", ref, c.host, auth.Server, err)
		}
		opts.RegistryAuth = enc
	}
	rc, err := c.api.ImagePull(ctx, ref, opts)
	if err != nil {
		return fmt.Errorf("pulling %s on %s: %w", ref, c.host, err)
	}
	defer rc.Close()
	if err := readProgress(rc); err != nil {
		return fmt.Errorf("pulling %s on %s: %w", ref, c.host, err)
	}
	return nil
}
