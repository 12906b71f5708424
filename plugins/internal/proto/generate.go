// Package proto holds the gRPC protocol between tidewatch and trigger
// plugins: trigger.proto and the code generated from it, committed.
// Regenerate with `go generate ./plugins/internal/proto` (needs protoc from
// Debian's protobuf-compiler and the generators installed with
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
//
// on PATH).
package proto

//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative trigger.proto
