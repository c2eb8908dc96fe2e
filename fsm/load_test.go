package fsm

import (
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestRecordsViewIsUpsertsInTurn: Records.View, which builds the services'
// and slices' maps at once, gives the View that applying their upserts in
// turn gives, also where a key comes twice.
func TestRecordsViewIsUpsertsInTurn(t *testing.T) {
	web2 := slice("default", "web-b", "web", "10.0.0.2")
	tests := []struct {
		name string
		rec  Records
	}{
		{"empty", Records{}},
		{"slices sorted by name", Records{
			Services: []*Service{svc("default", "web", "10.96.0.1"), svc("other", "web", "10.96.0.2")},
			Slices: []*EndpointSlice{slice("default", "web-c", "web", "10.0.0.3"), web2,
				slice("default", "web-a", "web", "10.0.0.1"), slice("other", "web-a", "web", "10.0.1.1")},
		}},
		{"services' slices interleaved by name", Records{
			Services: []*Service{svc("default", "a", "10.96.0.1"), svc("default", "b", "10.96.0.2")},
			Slices: []*EndpointSlice{slice("default", "c-1", "b", "10.0.0.3"), slice("default", "b-1", "a", "10.0.0.2"),
				slice("default", "a-1", "b", "10.0.0.1"), slice("default", "d-1", "a", "10.0.0.4")},
		}},
		{"slice of no service", Records{Slices: []*EndpointSlice{slice("x", "y-1", "y", "10.0.0.1")}}},
		{"a key twice: the later wins", Records{
			Services: []*Service{svc("default", "web", "10.96.0.1"), svc("default", "web", "10.96.0.9")},
			Slices: []*EndpointSlice{slice("default", "web-a", "web", "10.0.0.1"), slice("default", "web-a", "web", "10.0.0.9"),
				slice("default", "web-a", "other", "10.0.0.8")},
		}},
		{"one slice twice", Records{Slices: []*EndpointSlice{web2, web2}}},
		{"with namespaces, pods and tracked kinds", Records{
			Services:   []*Service{svc("default", "web", "10.96.0.1")},
			Namespaces: []string{"default"}, Pods: []*Pod{pod("default", "p", "10.1.0.1")},
			Tracked: Tracked{Namespaces: true, Pods: true},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, want := tc.rec.View(7), emptyView().Apply(7, slices.Collect(tc.rec.commands())...)
			if !viewsEqual(got, want) {
				t.Fatal("the View differs from the upserts'")
			}
			for list := range want.bySvc.All() {
				if k := list[0].ServiceKey(); !slices.Equal(got.SlicesOf(k), list) {
					t.Errorf("slices of %v: %v, want %v", k, got.SlicesOf(k), list)
				}
			}
		})
	}
}

// TestOpenNamesFirstUndecodableRecord: a record that does not decode fails
// the open, naming the first such record in the file, whichever goroutine
// decoded it.
func TestOpenNamesFirstUndecodableRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fsm.db")
	s := openStore(t, path)
	var cmds []Command
	for i := range 5000 {
		cmds = append(cmds, UpsertService(svc("default", "s"+strconv.Itoa(10000+i), "10.96.0.1")))
	}
	mustApply(t, s, entry(t, 1, cmds...))
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketServices)
		for _, k := range []string{"default/s14000", "default/s12000", "default/s10300"} {
			if err := b.Put([]byte(k), []byte(`{"ns":"default","name":3}`)); err != nil {
				return err
			}
		}
		return nil
	})
	if err := errors.Join(err, db.Close()); err != nil {
		t.Fatal(err)
	}
	_, err = Open(path, nil)
	if err == nil || !strings.Contains(err.Error(), `service "default/s10300"`) {
		t.Fatalf("open: %v, want an error naming default/s10300", err)
	}
}
