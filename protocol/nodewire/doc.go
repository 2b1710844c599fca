// Package nodewire is the protobuf schema of the messages between the nodes of an xmppd cluster. Generated code
// only (nodewire.pb.go, from nodewire.proto with `go generate`); what the messages mean is in actors/cluster.go.
package nodewire

//go:generate protoc --go_out=. --go_opt=paths=source_relative nodewire.proto
