package fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Op says what a Command does.
type Op uint8

// The operations. Their numbers are part of the log format: never renumber.
const (
	OpUpsertService Op = 1
	OpDeleteService Op = 2
	OpUpsertSlice   Op = 3
	OpDeleteSlice   Op = 4
	// Format 2 and later only.
	OpUpsertNamespace Op = 5
	OpDeleteNamespace Op = 6
	OpUpsertPod       Op = 7
	OpDeletePod       Op = 8
	OpSetTracked      Op = 9
	OpSetConfig       Op = 10
	OpRejectConfig    Op = 11
)

// minVersion is the oldest command format that carries o: a build that
// knows only older formats cannot apply it.
func (o Op) minVersion() int {
	switch {
	case o >= OpSetConfig:
		return ConfigCommandVersion
	case o >= OpUpsertNamespace:
		return PodsCommandVersion
	}
	return int(formatV1)
}

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
	case OpUpsertNamespace:
		return "upsert-namespace"
	case OpDeleteNamespace:
		return "delete-namespace"
	case OpUpsertPod:
		return "upsert-pod"
	case OpDeletePod:
		return "delete-pod"
	case OpSetTracked:
		return "set-tracked"
	case OpSetConfig:
		return "set-config"
	case OpRejectConfig:
		return "reject-config"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Command is one change to the record set or the configuration. Upserts
// carry the whole object; deletes carry only Namespace and Name. A namespace
// is its Name alone.
type Command struct {
	Op        Op               `json:"op"`
	Service   *Service         `json:"svc,omitempty"`
	Slice     *EndpointSlice   `json:"slice,omitempty"`
	Pod       *Pod             `json:"pod,omitempty"`
	Tracked   *Tracked         `json:"tracked,omitempty"`
	Config    *DNSConfig       `json:"config,omitempty"`
	Rejection *ConfigRejection `json:"rejection,omitempty"`
	Namespace string           `json:"ns,omitempty"`
	Name      string           `json:"name,omitempty"`
}

// compact compacts the record the command carries (see Service.compact).
func (c *Command) compact() {
	switch {
	case c.Service != nil:
		c.Service.compact()
	case c.Slice != nil:
		c.Slice.compact()
	case c.Pod != nil:
		c.Pod.compact()
	}
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

// UpsertNamespace returns a command that records that namespace name
// exists.
func UpsertNamespace(name string) Command { return Command{Op: OpUpsertNamespace, Name: name} }

// DeleteNamespace returns a command that removes a namespace.
func DeleteNamespace(name string) Command { return Command{Op: OpDeleteNamespace, Name: name} }

// UpsertPod returns a command that creates or replaces p.
func UpsertPod(p *Pod) Command { return Command{Op: OpUpsertPod, Pod: p} }

// DeletePod returns a command that removes a pod.
func DeletePod(k PodKey) Command {
	return Command{Op: OpDeletePod, Namespace: k.Namespace, Name: k.Name}
}

// SetTracked returns a command that sets which kinds the View holds in
// full (see Tracked).
func SetTracked(t Tracked) Command { return Command{Op: OpSetTracked, Tracked: &t} }

// validate checks c as a command of an entry in format version.
func (c *Command) validate(version int) error {
	if err := c.validateFields(); err != nil {
		return err
	}
	if v := c.Op.minVersion(); version < v {
		return fmt.Errorf("%s in command format %d: it needs format %d", c.Op, version, v)
	}
	return nil
}

func (c *Command) validateFields() error {
	switch c.Op {
	case OpUpsertService:
		if c.Service == nil || c.Service.Namespace == "" || c.Service.Name == "" {
			return errors.New("upsert-service without a named service")
		}
	case OpUpsertSlice:
		if c.Slice == nil || c.Slice.Namespace == "" || c.Slice.Name == "" || c.Slice.Service == "" {
			return errors.New("upsert-slice without a named slice of a service")
		}
	case OpDeleteService, OpDeleteSlice, OpDeletePod:
		if c.Namespace == "" || c.Name == "" {
			return fmt.Errorf("%s without namespace and name", c.Op)
		}
	case OpUpsertNamespace, OpDeleteNamespace:
		if c.Name == "" || c.Namespace != "" {
			return fmt.Errorf("%s without a name alone", c.Op)
		}
	case OpUpsertPod:
		if c.Pod == nil || c.Pod.Namespace == "" || c.Pod.Name == "" {
			return errors.New("upsert-pod without a named pod")
		}
	case OpSetTracked:
		if c.Tracked == nil {
			return errors.New("set-tracked without what is tracked")
		}
	case OpSetConfig, OpRejectConfig:
		return c.validateConfig()
	default:
		return fmt.Errorf("unknown operation %d", uint8(c.Op))
	}
	return nil
}

// Command formats. The first byte of every encoded batch is its format
// version; a JSON array of Commands follows. Version 1 is the format every
// release decodes, and the one a leader writes until every server of the
// cluster advertises a newer one (raftnode, membership). Version 2 adds the
// operations on namespaces, pods and Tracked, and set-config and
// reject-config (Op.minVersion); an entry of an
// older format that holds one does not decode. MaxCommandVersion, the newest
// format this build decodes and encodes, is set per build (format_release.go;
// format_next.go with the kdnsd_formatnext build tag, for upgrade tests).
const (
	formatV1           byte = 1
	formatV2           byte = 2
	BaseCommandVersion      = int(formatV1)
	// PodsCommandVersion is the oldest format that carries namespaces,
	// pods and tracked kinds: a leader commits them only while it writes
	// this format or a newer one.
	PodsCommandVersion = int(formatV2)
	// ConfigCommandVersion is the oldest format that carries the DNS
	// configuration (set-config, reject-config).
	ConfigCommandVersion = int(formatV2)
)

// Encode turns a batch of commands into one Raft log entry in format 1.
func Encode(cmds []Command) ([]byte, error) { return EncodeVersion(cmds, BaseCommandVersion) }

// EncodeVersion turns a batch of commands into one Raft log entry in the
// given format version, which this build must know.
func EncodeVersion(cmds []Command, version int) ([]byte, error) {
	if version < BaseCommandVersion || version > MaxCommandVersion {
		return nil, fmt.Errorf("command format %d: this build writes formats %d to %d", version, BaseCommandVersion, MaxCommandVersion)
	}
	for i := range cmds {
		if err := cmds[i].validate(version); err != nil {
			return nil, fmt.Errorf("command %d: %w", i, err)
		}
	}
	body, err := json.Marshal(cmds)
	if err != nil {
		return nil, err
	}
	return append([]byte{byte(version)}, body...), nil
}

// ErrUnknownFormat is returned by Decode for an entry written by a newer or
// foreign format.
var ErrUnknownFormat = errors.New("unknown command format")

// Decode reads a log entry written by EncodeVersion. A corrupt or unknown
// entry gives an error, never a panic.
//
// Decoding is strict, because an entry that does not decode stops the store
// (see Store.ApplyEntries) rather than being read in part: a format byte
// newer than MaxCommandVersion, JSON that is not exactly an array of
// Commands (an unknown field, which a newer release may have added, or
// anything after the array), an unknown operation, and a command that fails
// validation are all errors. A leader of this build never writes such an
// entry (EncodeVersion validates the same way), so it comes from a newer
// release, whose rules this build cannot know, or from corruption: applying
// what this build happens to understand of it, or skipping it, could make
// this replica's records differ from those of replicas that read it fully.
// The outcome depends on the entry's bytes alone, so every replica of one
// build decides alike.
func Decode(data []byte) ([]Command, error) { return decode(data, MaxCommandVersion) }

// decode is Decode for a reader of formats up to maxVersion.
func decode(data []byte, maxVersion int) ([]Command, error) {
	if len(data) == 0 {
		return nil, errors.New("empty command entry")
	}
	version := int(data[0])
	if version < BaseCommandVersion || version > maxVersion {
		return nil, fmt.Errorf("%w: version byte %d (this build reads %d to %d)", ErrUnknownFormat, data[0], BaseCommandVersion, maxVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(data[1:]))
	dec.DisallowUnknownFields()
	var cmds []Command
	if err := dec.Decode(&cmds); err != nil {
		return nil, fmt.Errorf("corrupt command entry: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("corrupt command entry: data after the JSON array")
	}
	for i := range cmds {
		if err := cmds[i].validate(version); err != nil {
			return nil, fmt.Errorf("corrupt command entry: command %d: %w", i, err)
		}
		cmds[i].compact()
	}
	return cmds, nil
}
