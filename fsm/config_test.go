package fsm

import (
	"bytes"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func testConfig(source string) *DNSConfig {
	return &DNSConfig{
		Source:      source,
		Upstreams:   []string{"10.0.0.53", "10.0.0.54:5353"},
		StubDomains: []StubDomain{{Domain: "corp.example.", Servers: []string{"10.1.0.53"}}},
		Records:     []Record{{Name: "db.corp.example.", Type: "A", TTL: 60, Data: "10.1.2.3"}},
		TTL:         5, PodMode: "verified", NegativeTTL: 10, CacheSize: -1,
	}
}

// TestApplyConfigCommands: set-config puts a configuration in force at its
// entry's index and clears a rejection; reject-config records the refusal and
// keeps the configuration in force; an empty configuration means the flags;
// the store's file holds the same state after a reopen.
func TestApplyConfigCommands(t *testing.T) {
	a, b := testConfig("kube-system/kdnsd@1"), testConfig("kube-system/kdnsd@2")
	b.TTL = 7
	rej := ConfigRejection{Source: "kube-system/kdnsd@3", Error: `key "ttl": "x" is not a number`}
	tests := []struct {
		name    string
		entries [][]Command // entry i+1 holds entries[i]
		want    ConfigState
	}{
		{"none", nil, ConfigState{}},
		{"set", [][]Command{{SetConfig(a)}}, ConfigState{Config: a, Index: 1}},
		{"replace", [][]Command{{SetConfig(a)}, {UpsertService(svc("default", "web"))}, {SetConfig(b)}},
			ConfigState{Config: b, Index: 3}},
		{"rejection keeps the config", [][]Command{{SetConfig(a)}, {RejectConfig(rej)}},
			ConfigState{Config: a, Index: 1, Rejected: &rej, RejectedIndex: 2}},
		{"a new config clears the rejection", [][]Command{{SetConfig(a)}, {RejectConfig(rej)}, {SetConfig(b)}},
			ConfigState{Config: b, Index: 3}},
		{"empty means the flags", [][]Command{{SetConfig(a)}, {SetConfig(nil)}}, ConfigState{Index: 2}},
		{"last of one entry wins", [][]Command{{SetConfig(a), SetConfig(b)}}, ConfigState{Config: b, Index: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "fsm.db")
			s := openStore(t, path)
			for i, cmds := range tt.entries {
				mustApply(t, s, entryV2(t, uint64(i+1), cmds...))
			}
			if got := *s.View().Config(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("config state %+v, want %+v", got, tt.want)
			}
			s.Close()
			if got := *openStore(t, path).View().Config(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("after reopen: config state %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestConfigCommandsNeedFormat2: like namespaces and pods, the configuration
// travels only in a format every replica decodes.
func TestConfigCommandsNeedFormat2(t *testing.T) {
	for _, cmd := range []Command{SetConfig(testConfig("x")), RejectConfig(ConfigRejection{Error: "bad"})} {
		if _, err := Encode([]Command{cmd}); err == nil || !strings.Contains(err.Error(), "needs format 2") {
			t.Errorf("%s encoded in format 1: %v", cmd.Op, err)
		}
		data, err := EncodeVersion([]Command{cmd}, 2)
		if err != nil {
			t.Fatalf("%s in format 2: %v", cmd.Op, err)
		}
		got, err := Decode(data)
		if err != nil || !reflect.DeepEqual(got, []Command{cmd}) {
			t.Errorf("%s: decoded %+v, %v", cmd.Op, got, err)
		}
	}
}

func TestEncodeRejectsInvalidConfigCommands(t *testing.T) {
	for name, cmd := range map[string]Command{
		"set without config":         {Op: OpSetConfig},
		"record without data":        SetConfig(&DNSConfig{Records: []Record{{Name: "a.", Type: "A"}}}),
		"stub domain without server": SetConfig(&DNSConfig{StubDomains: []StubDomain{{Domain: "a."}}}),
		"reject without error":       RejectConfig(ConfigRejection{Source: "x"}),
		"reject without body":        {Op: OpRejectConfig},
	} {
		if _, err := EncodeVersion([]Command{cmd}, 2); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}

// TestSnapshotCarriesConfig: a snapshot holds the configuration with the
// indexes it was committed at (snapshot format 2), and a restore installs
// it durably.
func TestSnapshotCarriesConfig(t *testing.T) {
	src := openStore(t, filepath.Join(t.TempDir(), "a.db"))
	rej := ConfigRejection{Source: "kube-system/kdnsd@9", Error: "bad"}
	mustApply(t, src, entry(t, 1, UpsertService(svc("default", "web", "10.96.0.10"))),
		entryV2(t, 2, SetConfig(testConfig("kube-system/kdnsd@8"))), entryV2(t, 3, RejectConfig(rej)))
	var buf bytes.Buffer
	if err := WriteSnapshot(&buf, src.View()); err != nil {
		t.Fatal(err)
	}
	if buf.Bytes()[0] != snapshotFormatV2 {
		t.Fatalf("snapshot format %d, want 2", buf.Bytes()[0])
	}
	dstPath := filepath.Join(t.TempDir(), "b.db")
	dst := openStore(t, dstPath)
	mustApply(t, dst, entryV2(t, 1, SetConfig(testConfig("elsewhere"))))
	if err := dst.Restore(bytes.NewReader(buf.Bytes()), 10); err != nil {
		t.Fatal(err)
	}
	want := *src.View().Config()
	if got := *dst.View().Config(); !reflect.DeepEqual(got, want) || !dst.View().SameRecords(src.View()) {
		t.Fatalf("restored config state %+v, want %+v", got, want)
	}
	dst.Close()
	if got := *openStore(t, dstPath).View().Config(); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen: config state %+v, want %+v", got, want)
	}
}
