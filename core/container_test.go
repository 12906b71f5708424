package core

import (
	"slices"
	"testing"
)

// TestSetImage: a container takes its image's digests and platform; a Swarm
// service keeps the digest its spec pins first, the image's following each
// once, and the slice it was listed with is not written through.
func TestSetImage(t *testing.T) {
	linux := Platform{OS: "linux", Architecture: "amd64"}
	tests := []struct {
		name string
		ctr  Container
		img  LocalImage
		want []string
	}{
		{"container", Container{RepoDigests: []string{"r@sha256:old"}}, LocalImage{RepoDigests: []string{"r@sha256:a"}, Platform: linux}, []string{"r@sha256:a"}},
		{"container, image gone", Container{RepoDigests: []string{"r@sha256:old"}}, LocalImage{}, nil},
		{"service, image of a task", Container{Kind: ObjectService, RepoDigests: []string{"r@sha256:pin"}},
			LocalImage{RepoDigests: []string{"r@sha256:other", "r@sha256:pin"}, Platform: linux}, []string{"r@sha256:pin", "r@sha256:other"}},
		{"service, no task here", Container{Kind: ObjectService, RepoDigests: []string{"r@sha256:pin"}}, LocalImage{}, []string{"r@sha256:pin"}},
		{"service, not pinned", Container{Kind: ObjectService}, LocalImage{RepoDigests: []string{"r@sha256:a"}, Platform: linux}, []string{"r@sha256:a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			listed := append(make([]string, 0, 4), tt.ctr.RepoDigests...) // room to append into
			tt.ctr.RepoDigests = listed
			before := slices.Clone(listed)
			tt.ctr.SetImage(tt.img)
			if !slices.Equal(tt.ctr.RepoDigests, tt.want) || tt.ctr.Platform != tt.img.Platform {
				t.Errorf("SetImage: digests %v platform %+v, want %v %+v", tt.ctr.RepoDigests, tt.ctr.Platform, tt.want, tt.img.Platform)
			}
			if !slices.Equal(listed, before) || !slices.Equal(listed[len(listed):cap(listed)], make([]string, cap(listed)-len(listed))) {
				t.Errorf("SetImage wrote through the listed slice: %v", listed[:cap(listed)])
			}
		})
	}
}
