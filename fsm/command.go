package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Op says what a Command does.
type Op uint8

// The operations. Their numbers are part of the log format: never renumber.
const (
	OpUpsertService Op = 1
	OpDeleteService Op = 2
	OpUpsertSlice   Op = 3
	OpDeleteSlice   Op = 4
)

func (o Op) String() string {
	switch o {
	case OpUpsertService:
		return "upsert-service"
	case OpDeleteService:
		return "delete-service"
	case OpUpsertSlice:
		return "upsert-slice"
	case OpDeleteSlice:
		return "delete-slice"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Command is one change to the record set. Upserts carry the whole object;
// deletes carry only Namespace and Name.
type Command struct {
	Op        Op             `json:"op"`
	Service   *Service       `json:"svc,omitempty"`
	Slice     *EndpointSlice `json:"slice,omitempty"`
	Namespace string         `json:"ns,omitempty"`
	Name      string         `json:"name,omitempty"`
}

// UpsertService returns a command that creates or replaces s.
func UpsertService(s *Service) Command { return Command{Op: OpUpsertService, Service: s} }

// DeleteService returns a command that removes a service.
func DeleteService(k ServiceKey) Command {
	return Command{Op: OpDeleteService, Namespace: k.Namespace, Name: k.Name}
}

// UpsertSlice returns a command that creates or replaces e.
func UpsertSlice(e *EndpointSlice) Command { return Command{Op: OpUpsertSlice, Slice: e} }

// DeleteSlice returns a command that removes an endpoint slice.
func DeleteSlice(k SliceKey) Command {
	return Command{Op: OpDeleteSlice, Namespace: k.Namespace, Name: k.Name}
}

func (c *Command) validate() error {
	switch c.Op {
	case OpUpsertService:
		if c.Service == nil || c.Service.Namespace == "" || c.Service.Name == "" {
			return errors.New("upsert-service without a named service")
		}
	case OpUpsertSlice:
		if c.Slice == nil || c.Slice.Namespace == "" || c.Slice.Name == "" || c.Slice.Service == "" {
			return errors.New("upsert-slice without a named slice of a service")
		}
	case OpDeleteService, OpDeleteSlice:
		if c.Namespace == "" || c.Name == "" {
			return fmt.Errorf("%s without namespace and name", c.Op)
		}
	default:
		return fmt.Errorf("unknown operation %d", uint8(c.Op))
	}
	return nil
}

// formatV1 is the first byte of every encoded batch: a JSON array of Commands
// follows. A later format gets a new byte; old entries stay readable.
const formatV1 byte = 1

// Encode turns a batch of commands into one Raft log entry.
func Encode(cmds []Command) ([]byte, error) {
	for i := range cmds {
		if err := cmds[i].validate(); err != nil {
			return nil, fmt.Errorf("command %d: %w", i, err)
		}
	}
	body, err := json.Marshal(cmds)
	if err != nil {
		return nil, err
	}
	return append([]byte{formatV1}, body...), nil
}

// ErrUnknownFormat is returned by Decode for an entry written by a newer or
// foreign format.
var ErrUnknownFormat = errors.New("unknown command format")

// Decode reads a log entry written by Encode. A corrupt or unknown entry
// gives an error, never a panic.
func Decode(data []byte) ([]Command, error) {
	if len(data) == 0 {
		return nil, errors.New("empty command entry")
	}
	if data[0] != formatV1 {
		return nil, fmt.Errorf("%w: version byte %d", ErrUnknownFormat, data[0])
	}
	var cmds []Command
	if err := json.Unmarshal(data[1:], &cmds); err != nil {
		return nil, fmt.Errorf("corrupt command entry: %w", err)
	}
	for i := range cmds {
		if err := cmds[i].validate(); err != nil {
			return nil, fmt.Errorf("corrupt command entry: command %d: %w", i, err)
		}
	}
	return cmds, nil
}
