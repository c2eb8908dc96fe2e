package fsm

import (
	"bytes"
	"testing"
)

func TestEncodeRejectsInvalidCommands(t *testing.T) {
	for name, cmd := range map[string]Command{
		"unknown op":          {Op: 99},
		"upsert without body": {Op: OpUpsertService},
		"slice without svc":   UpsertSlice(&EndpointSlice{Namespace: "a", Name: "b"}),
		"delete without name": DeleteService(ServiceKey{Namespace: "a"}),
	} {
		if _, err := Encode([]Command{cmd}); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	in := []Command{
		UpsertService(svc("default", "web", "10.96.0.10", "fd00::10")),
		UpsertSlice(slice("default", "web-a", "web", "10.0.0.1")),
		DeleteService(ServiceKey{"default", "old"}),
		DeleteSlice(SliceKey{"default", "old-a"}),
	}
	data, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) || !out[0].Service.Equal(in[0].Service) || !out[1].Slice.Equal(in[1].Slice) ||
		out[2] != in[2] || out[3] != in[3] {
		t.Fatalf("round trip: %+v", out)
	}
}

// FuzzDecode checks that no input makes Decode panic, and that whatever it
// accepts encodes back to something it accepts the same way.
func FuzzDecode(f *testing.F) {
	seed, _ := Encode([]Command{
		UpsertService(svc("default", "web", "10.96.0.10", "fd00::10")),
		UpsertSlice(slice("default", "web-a", "web", "10.0.0.1")),
		DeleteService(ServiceKey{"default", "old"}),
	})
	f.Add(seed)
	f.Add([]byte{})
	f.Add([]byte{formatV1})
	f.Add([]byte{formatV1, '[', ']'})
	f.Add([]byte{formatV1, 'n', 'u', 'l', 'l'})
	f.Add(append([]byte{formatV1}, `[{"op":1,"svc":{"ns":"a","name":"b","ips":["300.1.1.1"]}}]`...))
	f.Add([]byte{2, '[', ']'})
	v2, _ := EncodeVersion([]Command{
		UpsertNamespace("default"), UpsertPod(&Pod{Namespace: "default", Name: "a"}),
		DeletePod(PodKey{"default", "b"}), SetTracked(Tracked{Pods: true}),
	}, int(formatV2))
	f.Add(v2)
	f.Fuzz(func(t *testing.T, data []byte) {
		cmds, err := Decode(data)
		if err != nil {
			return
		}
		again, err := EncodeVersion(cmds, int(data[0]))
		if err != nil {
			t.Fatalf("decoded commands do not encode: %v", err)
		}
		cmds2, err := Decode(again)
		if err != nil || len(cmds2) != len(cmds) {
			t.Fatalf("re-decode: %v", err)
		}
		third, _ := EncodeVersion(cmds2, int(data[0]))
		if !bytes.Equal(again, third) {
			t.Fatal("encoding is not stable")
		}
	})
}
