package feature

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Messages between cluster nodes. On one node a feature's parts talk with Go values (Session.ToUserOf, Ask,
// Survey and the Answerer's answers). In a cluster the other account's user actor may be placed on another node
// (ARCHITECTURE.md "The cluster"), and only bytes cross: a message crosses when its feature declares its type in
// Feature.Wire, under a name that is the same on every node. The actors carry the feature's Name and the type's
// Name with the bytes, never a registry index (the order of the registry is not part of the wire) and never look
// inside. A message whose type is not declared is dropped where it would cross (logged and counted).

// WireType is one message type of a feature that may cross between cluster nodes.
type WireType struct {
	// Name is the type's name on the wire, unique within the feature. Nodes of different versions talk during a
	// rolling restart: a name is never reused for a different meaning.
	Name string
	// Encode returns msg's bytes; ok false: msg is not of this type.
	Encode func(msg any) (data []byte, ok bool)
	// Decode rebuilds a message of this type from data; an error for data it does not accept.
	Decode func(data []byte) (any, error)
}

// WireJSON is the WireType of T carried as the JSON of T's exported fields (a message type's fields are
// exported for this, the type itself need not be). check, if set, refuses a decoded value that T's fields can
// hold but the feature cannot take. Fields a newer node adds are ignored by an older one, so that the two still
// understand each other during a rolling restart; what is not a JSON object of T is refused.
func WireJSON[T any](name string, check func(T) error) WireType {
	return WireType{
		Name: name,
		Encode: func(msg any) ([]byte, bool) {
			v, ok := msg.(T)
			if !ok {
				return nil, false
			}
			b, err := json.Marshal(v)
			if err != nil {
				// Only a value JSON cannot hold (a channel, a func) fails, which a message type never has.
				return nil, false
			}
			return b, true
		},
		Decode: func(data []byte) (any, error) {
			var v T
			if !bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{")) {
				return nil, fmt.Errorf("%s: not a JSON object", name)
			}
			if err := json.Unmarshal(data, &v); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			if check != nil {
				if err := check(v); err != nil {
					return nil, fmt.Errorf("%s: %w", name, err)
				}
			}
			return v, nil
		},
	}
}

// ErrNotWire: the feature declares no wire type of that name (Feature.DecodeWire).
var ErrNotWire = errors.New("feature: not a wire type of the feature")

// EncodeWire is msg's wire type name and bytes; ok false when msg's type may not cross nodes.
func (f *Feature) EncodeWire(msg any) (name string, data []byte, ok bool) {
	for i := range f.Wire {
		if b, ok := f.Wire[i].Encode(msg); ok {
			return f.Wire[i].Name, b, true
		}
	}
	return "", nil, false
}

// DecodeWire rebuilds a message of the wire type name from data.
func (f *Feature) DecodeWire(name string, data []byte) (any, error) {
	for i := range f.Wire {
		if f.Wire[i].Name == name {
			return f.Wire[i].Decode(data)
		}
	}
	return nil, fmt.Errorf("%w: %s %q", ErrNotWire, f.Name, name)
}

// CheckWire refuses a wire table with a type without a name or codec, or with a name used twice (the actors'
// registry runs it once at start).
func (f *Feature) CheckWire() error {
	seen := make(map[string]bool, len(f.Wire))
	for _, w := range f.Wire {
		switch {
		case w.Name == "" || w.Encode == nil || w.Decode == nil:
			return fmt.Errorf("features: %s: a wire type needs a name, Encode and Decode", f.Name)
		case seen[w.Name]:
			return fmt.Errorf("features: %s: wire type %q is declared twice", f.Name, w.Name)
		}
		seen[w.Name] = true
	}
	return nil
}
