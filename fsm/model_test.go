package fsm

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestCompact: compact keeps a record's values, nil and empty slices
// apart, and leaves no slice with spare room; an endpoint's addresses
// cannot be appended to over the next endpoint's.
func TestCompact(t *testing.T) {
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	spare := func(addrs ...netip.Addr) []netip.Addr { return append(make([]netip.Addr, 0, 4), addrs...) }
	tests := []struct {
		name   string
		record interface{ compact() }
	}{
		{"service with room in its slices", &Service{Namespace: "ns", Name: "web", Type: TypeClusterIP,
			ClusterIPs: spare(a("10.96.0.1")), Ports: append(make([]Port, 0, 4), Port{Name: "http", Protocol: "TCP", Port: 80})}},
		{"headless service: nil addresses, empty ports", &Service{Namespace: "ns", Name: "h", Type: TypeClusterIP, Headless: true, Ports: []Port{}}},
		{"slice", &EndpointSlice{Namespace: "ns", Name: "web-x", Service: "web",
			Ports: append(make([]Port, 0, 4), Port{Protocol: "TCP", Port: 8080}),
			Endpoints: append(make([]Endpoint, 0, 4),
				Endpoint{Addresses: spare(a("10.0.0.1")), Ready: true, Hostname: "a"},
				Endpoint{Addresses: nil},
				Endpoint{Addresses: []netip.Addr{}},
				Endpoint{Addresses: spare(a("10.0.0.2"), a("fd00::2"))})}},
		{"slice without endpoints", &EndpointSlice{Namespace: "ns", Name: "e", Service: "web", Endpoints: []Endpoint{}}},
		{"pod", &Pod{Namespace: "ns", Name: "p", IPs: spare(a("10.0.0.3"))}},
		{"pod without addresses", &Pod{Namespace: "ns", Name: "q"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := deepCopy(t, tt.record)
			tt.record.compact()
			if !reflect.DeepEqual(tt.record, want) {
				t.Fatalf("compact changed the record:\n got %#v\nwant %#v", tt.record, want)
			}
			assertExact(t, tt.record)
			if e, ok := tt.record.(*EndpointSlice); ok && len(e.Endpoints) == 4 {
				e.Endpoints[0].Addresses = append(e.Endpoints[0].Addresses, a("10.9.9.9"))
				if got := e.Endpoints[3].Addresses[0]; got != a("10.0.0.2") {
					t.Fatalf("appending to one endpoint's addresses changed the next one's to %v", got)
				}
			}
		})
	}
}

// TestRecordsAreCompact: the records a store serves, whichever way they came
// in (a command, a snapshot restored, the store read again at start), have
// no spare room in their slices.
func TestRecordsAreCompact(t *testing.T) {
	web := svc("default", "web", "10.96.0.10", "fd00::10")
	webSlice := slice("default", "web-a", "web", "10.0.0.1", "10.0.0.2", "10.0.0.3")
	pod := &Pod{Namespace: "default", Name: "p", IPs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}
	path := filepath.Join(t.TempDir(), "a.db")
	s := openStore(t, path)
	mustApply(t, s, entryV2(t, 1, SetTracked(Tracked{Pods: true}), UpsertService(web), UpsertSlice(webSlice), UpsertPod(pod)))
	assertViewExact(t, "applied from commands", s.View())

	var buf bytes.Buffer
	if err := WriteSnapshot(&buf, s.View()); err != nil {
		t.Fatal(err)
	}
	restored := openStore(t, filepath.Join(t.TempDir(), "b.db"))
	if err := restored.Restore(&buf, 1); err != nil {
		t.Fatal(err)
	}
	assertViewExact(t, "restored from a snapshot", restored.View())

	s.Close()
	assertViewExact(t, "read from the store at start", openStore(t, path).View())
}

func assertViewExact(t *testing.T, how string, v *View) {
	t.Helper()
	n := 0
	for s := range v.Services() {
		assertExact(t, s)
		n++
	}
	for e := range v.Slices() {
		assertExact(t, e)
		n++
	}
	for p := range v.Pods() {
		assertExact(t, p)
		n++
	}
	if n != 3 {
		t.Fatalf("%s: %d records, want 3", how, n)
	}
}

// assertExact fails t if a slice of the record has spare room.
func assertExact(t *testing.T, record any) {
	t.Helper()
	var walk func(path string, v reflect.Value)
	walk = func(path string, v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			walk(path, v.Elem())
		case reflect.Struct:
			for i := range v.NumField() {
				if f := v.Type().Field(i); f.IsExported() {
					walk(path+"."+f.Name, v.Field(i))
				}
			}
		case reflect.Slice:
			if v.Cap() != v.Len() {
				t.Errorf("%s: length %d, capacity %d", path, v.Len(), v.Cap())
			}
			for i := range v.Len() {
				walk(path, v.Index(i))
			}
		}
	}
	walk(reflect.TypeOf(record).String(), reflect.ValueOf(record))
}

// deepCopy copies a record's slices, so that compact cannot change the
// copy; nil stays nil. Unexported fields (an address's) are values.
func deepCopy(t *testing.T, record any) any {
	t.Helper()
	var cp func(v reflect.Value) reflect.Value
	cp = func(v reflect.Value) reflect.Value {
		switch v.Kind() {
		case reflect.Pointer:
			out := reflect.New(v.Type().Elem())
			out.Elem().Set(cp(v.Elem()))
			return out
		case reflect.Struct:
			out := reflect.New(v.Type()).Elem()
			out.Set(v)
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() {
					out.Field(i).Set(cp(v.Field(i)))
				}
			}
			return out
		case reflect.Slice:
			if v.IsNil() {
				return v
			}
			out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
			for i := range v.Len() {
				out.Index(i).Set(cp(v.Index(i)))
			}
			return out
		}
		return v
	}
	return cp(reflect.ValueOf(record)).Interface()
}

// TestEndpointPodAndNodeAreReadAndDropped: a log entry, a snapshot and a
// store record that an older release wrote with an endpoint's pod and node
// names decode, without them, and this build writes them no more; a pod
// or node name that is not a string is refused as it was.
func TestEndpointPodAndNodeAreReadAndDropped(t *testing.T) {
	const (
		old    = `{"ns":"default","name":"web-a","service":"web","endpoints":[{"addrs":["10.0.0.1"],"hostname":"web-0","ready":true,"pod":"web-0","node":"n1"},{"addrs":["10.0.0.2"],"pod":null}]}`
		notStr = `{"ns":"default","name":"web-a","service":"web","endpoints":[{"addrs":["10.0.0.1"],"pod":5}]}`
	)
	want := &EndpointSlice{Namespace: "default", Name: "web-a", Service: "web", Endpoints: []Endpoint{
		{Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.1")}, Hostname: "web-0", Ready: true},
		{Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.2")}},
	}}
	decoders := []struct {
		name   string
		decode func(raw string) (*EndpointSlice, error)
	}{
		{"log entry", func(raw string) (*EndpointSlice, error) {
			cmds, err := Decode(append([]byte{formatV1}, `[{"op":3,"slice":`+raw+`}]`...))
			if err != nil {
				return nil, err
			}
			return cmds[0].Slice, nil
		}},
		{"snapshot", func(raw string) (*EndpointSlice, error) {
			v, err := ReadSnapshot(strings.NewReader("\x01" + `{"index":1,"services":[],"slices":[` + raw + `]}`))
			if err != nil {
				return nil, err
			}
			return v.Slice(SliceKey{"default", "web-a"}), nil
		}},
		{"store record", func(raw string) (*EndpointSlice, error) {
			var e EndpointSlice
			return &e, decodeRecord([]byte(raw), &e)
		}},
	}
	for _, d := range decoders {
		t.Run(d.name, func(t *testing.T) {
			got, err := d.decode(old)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded %+v, want %+v", got, want)
			}
			if _, err := d.decode(notStr); err == nil {
				t.Error("a pod name that is a number decoded")
			}
		})
	}
	raw, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), `"pod"`) || strings.Contains(string(raw), `"node"`) {
		t.Errorf("written as %s", raw)
	}
}
