package fsm

import (
	"encoding/json"
	"reflect"
	"testing"
)

// recordCases are stored records: what json.Marshal writes, and what it
// does not but json.Unmarshal reads (or refuses), which unmarshalService and
// unmarshalSlice must read (or refuse) as encoding/json does.
var recordCases = []string{
	`{"ns":"default","name":"web","type":"ClusterIP","ips":["10.96.0.10","fd00::10"],"ports":[{"name":"http","protocol":"TCP","port":80}]}`,
	`{"ns":"default","name":"web","type":"ClusterIP","headless":true,"ports":[{"protocol":"UDP","port":53},{"name":"b","protocol":"TCP","port":65535}],"publishNotReady":true}`,
	`{"ns":"default","name":"ext","type":"ExternalName","externalName":"example.com."}`,
	`{"ns":"default","name":"web-abc","service":"web","ports":[{"name":"http","protocol":"TCP","port":8080}],"endpoints":[{"addrs":["10.0.0.1"],"hostname":"h","ready":true,"pod":"web-0","node":"n1"},{"addrs":["fe80::1%eth0",""]}]}`,
	`{"ns":"default","name":"web-abc","service":"web","endpoints":[{"addrs":null},{"addrs":[]}]}`,
	`{"ns":"ünï","name":"wéb","type":"ClusterIP","ips":[],"ports":[]}`,
	`{}`,
	`null`,
	// Not json.Marshal's form.
	` {"ns":"a","name":"b"}`,
	`{"ns":"a","name":"b"} `,
	`{"ns": "a","name":"b"}`,
	`{"ns":"a\u0062","name":"b\"c"}`,
	`{"NS":"a","Name":"b"}`,
	`{"ns":"a","name":"b","extra":1}`,
	`{"ns":"a","ns":"b","name":"c"}`,
	`{"ns":null,"name":"b","ips":null,"ports":null}`,
	`{"ns":"a","name":"b","ips":[null]}`,
	`{"ns":"a","name":"b","ports":[{"port":0}]}`,
	`{"ns":"a","name":"b","ports":[{"port":080}]}`,
	`{"ns":"a","name":"b","ports":[{"port":65536}]}`,
	`{"ns":"a","name":"b","ports":[{"port":99999999999999999999}]}`,
	`{"ns":"a","name":"b","ports":[{"port":80.0}]}`,
	`{"ns":"a","name":"b","ports":[{"port":8e1}]}`,
	`{"ns":"a","name":"b","ports":[{"port":-1}]}`,
	`{"ns":"a","name":"b","ports":[{"port":"80"}]}`,
	`{"ns":"a","name":"b","headless":1}`,
	`{"ns":"a","name":"b","headless":tru}`,
	`{"ns":"a","name":"b","ips":["300.1.1.1"]}`,
	`{"ns":"a","name":"b","endpoints":[{"addrs":["10.0.0.1"],"ready":false}]}`,
	`{"ns":"a","name":"\xff"}`,
	"{\"ns\":\"a\",\"name\":\"b\tc\"}",
	`{"ns":"a","name":"b"`,
	`{"ns":"a","name":"b",}`,
	`{"ns":"a","name":"b"}{}`,
	`{"ns":"a","name":"b","ports":[{"name":"x"},]}`,
	`[]`,
	``,
}

// TestUnmarshalRecordsAsEncodingJSON: a record decodes to what
// encoding/json gives, or fails where it fails (a record that fails makes
// Open fail, so what a failed decode left behind does not matter).
func TestUnmarshalRecordsAsEncodingJSON(t *testing.T) {
	check := func(t *testing.T, raw string, got, want any, gotErr, wantErr error) {
		t.Helper()
		if (gotErr != nil) != (wantErr != nil) || gotErr == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v (err %v), encoding/json gives %+v (err %v)", raw, got, gotErr, want, wantErr)
		}
	}
	for _, raw := range recordCases {
		var s, wantS Service
		check(t, raw, s, wantS, unmarshalService([]byte(raw), &s), json.Unmarshal([]byte(raw), &wantS))
		var e, wantE EndpointSlice
		check(t, raw, e, wantE, unmarshalSlice([]byte(raw), &e), json.Unmarshal([]byte(raw), &wantE))
	}
}

func FuzzUnmarshalRecords(f *testing.F) {
	for _, raw := range recordCases {
		f.Add([]byte(raw))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var s, wantS Service
		err, wantErr := unmarshalService(raw, &s), json.Unmarshal(raw, &wantS)
		if (err != nil) != (wantErr != nil) || err == nil && !reflect.DeepEqual(s, wantS) {
			t.Fatalf("service %q: %+v (%v), encoding/json %+v (%v)", raw, s, err, wantS, wantErr)
		}
		var e, wantE EndpointSlice
		err, wantErr = unmarshalSlice(raw, &e), json.Unmarshal(raw, &wantE)
		if (err != nil) != (wantErr != nil) || err == nil && !reflect.DeepEqual(e, wantE) {
			t.Fatalf("slice %q: %+v (%v), encoding/json %+v (%v)", raw, e, err, wantE, wantErr)
		}
	})
}
