package fsm

import (
	"errors"
	"slices"
)

// DNSConfig is the cluster-wide DNS configuration an operator gives in one
// ConfigMap, as parsed and validated by the leader (package dnsconfig).
// Every field is optional: a zero value leaves the replica's flag in force.
// It is plain data: the resolver and the forwarder interpret it.
type DNSConfig struct {
	// Source says where the configuration was read: namespace/name and
	// the resourceVersion of the ConfigMap.
	Source string `json:"source,omitempty"`
	// Upstreams are the default upstream servers, ip[:port].
	Upstreams []string `json:"upstreams,omitempty"`
	// StubDomains send names in a domain to their own servers, sorted by
	// domain.
	StubDomains []StubDomain `json:"stubDomains,omitempty"`
	// Records are custom static records, in the order given.
	Records []Record `json:"records,omitempty"`
	// TTL of cluster records, in seconds.
	TTL uint32 `json:"ttl,omitempty"`
	// PodMode: insecure, verified or disabled.
	PodMode string `json:"podMode,omitempty"`
	// NegativeTTL caps the TTL of cached negative answers from upstreams,
	// in seconds.
	NegativeTTL uint32 `json:"negativeTTL,omitempty"`
	// CacheSize is the forwarder's number of cached answers; negative: no
	// cache.
	CacheSize int `json:"cacheSize,omitempty"`
}

// StubDomain is a domain and the servers (ip[:port]) that answer for it.
type StubDomain struct {
	Domain  string   `json:"domain"`
	Servers []string `json:"servers"`
}

// Record is one custom resource record in master-file (zone file)
// presentation: Name is fully qualified, Data is the record data as it
// follows the type in a zone file.
type Record struct {
	Name string `json:"name"`
	Type string `json:"type"`
	TTL  uint32 `json:"ttl"`
	Data string `json:"data"`
}

// Equal reports whether two configurations are the same, Source included.
func (c *DNSConfig) Equal(o *DNSConfig) bool {
	if c == nil || o == nil {
		return c == o
	}
	return c.Source == o.Source && slices.Equal(c.Upstreams, o.Upstreams) &&
		slices.EqualFunc(c.StubDomains, o.StubDomains, func(a, b StubDomain) bool {
			return a.Domain == b.Domain && slices.Equal(a.Servers, b.Servers)
		}) &&
		slices.Equal(c.Records, o.Records) && c.TTL == o.TTL && c.PodMode == o.PodMode &&
		c.NegativeTTL == o.NegativeTTL && c.CacheSize == o.CacheSize
}

// ConfigRejection records a configuration the leader refused: where it was
// read and why. The configuration in force stays what it was.
type ConfigRejection struct {
	Source string `json:"source"`
	Error  string `json:"error"`
}

// ConfigState is the configuration part of a View.
type ConfigState struct {
	// Config is the configuration in force; nil when none was ever
	// committed, or the ConfigMap was deleted (the flags are in force).
	Config *DNSConfig `json:"config,omitempty"`
	// Index is the log index Config was committed at (also when nil: the
	// index of the entry that cleared it), 0 if never.
	Index uint64 `json:"index,omitempty"`
	// Rejected is the last configuration refused since Config was
	// committed, nil if none.
	Rejected *ConfigRejection `json:"rejected,omitempty"`
	// RejectedIndex is the log index Rejected was committed at.
	RejectedIndex uint64 `json:"rejectedIndex,omitempty"`
}

// SetConfig returns a command that puts cfg in force (nil: the flags)
// and clears any rejection.
func SetConfig(cfg *DNSConfig) Command {
	if cfg == nil {
		cfg = &DNSConfig{}
	}
	return Command{Op: OpSetConfig, Config: cfg}
}

// RejectConfig returns a command that records a refused configuration; the
// configuration in force does not change.
func RejectConfig(r ConfigRejection) Command { return Command{Op: OpRejectConfig, Rejection: &r} }

// isEmpty reports whether cfg sets nothing, so that the flags are in force.
func (c *DNSConfig) isEmpty() bool { return c.Equal(&DNSConfig{}) }

func (c *Command) validateConfig() error {
	switch c.Op {
	case OpSetConfig:
		if c.Config == nil {
			return errors.New("set-config without a configuration")
		}
		for _, r := range c.Config.Records {
			if r.Name == "" || r.Type == "" || r.Data == "" {
				return errors.New("set-config with a record without name, type or data")
			}
		}
		for _, s := range c.Config.StubDomains {
			if s.Domain == "" || len(s.Servers) == 0 {
				return errors.New("set-config with a stub domain without domain or servers")
			}
		}
	case OpRejectConfig:
		if c.Rejection == nil || c.Rejection.Error == "" {
			return errors.New("reject-config without an error")
		}
	}
	return nil
}

// applyConfig applies a set-config or reject-config command at index.
func (v *View) applyConfig(cmd *Command, index uint64) {
	st := *v.config
	switch cmd.Op {
	case OpSetConfig:
		st = ConfigState{Config: cmd.Config, Index: index}
		if cmd.Config.isEmpty() {
			st.Config = nil
		}
	case OpRejectConfig:
		st.Rejected, st.RejectedIndex = cmd.Rejection, index
	}
	v.config = &st
}

// Config returns the configuration part of the View. The caller must not
// modify it.
func (v *View) Config() *ConfigState { return v.config }
