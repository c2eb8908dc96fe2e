package fsm

import (
	"encoding/json"
	"reflect"
	"testing"
)

// recordCases are stored records: what json.Marshal writes, and what it
// does not but json.Unmarshal reads (or refuses), which decodeRecord must
// read (or refuse) as encoding/json does.
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

// TestDecodeRecordAsEncodingJSON: a record decodes to what encoding/json
// gives, or fails where it fails (a record that fails makes Open fail, so
// what a failed decode left behind does not matter).
func TestDecodeRecordAsEncodingJSON(t *testing.T) {
	for _, raw := range recordCases {
		decodesAsEncodingJSON[Service](t, []byte(raw))
		decodesAsEncodingJSON[EndpointSlice](t, []byte(raw))
		decodesAsEncodingJSON[Pod](t, []byte(raw))
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, raw := range recordCases {
		f.Add([]byte(raw))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		decodesAsEncodingJSON[Service](t, raw)
		decodesAsEncodingJSON[EndpointSlice](t, raw)
		decodesAsEncodingJSON[Pod](t, raw)
	})
}

// decodesAsEncodingJSON fails t unless decodeRecord and json.Unmarshal
// both fail on raw, or both give the same T.
func decodesAsEncodingJSON[T any](t *testing.T, raw []byte) {
	t.Helper()
	var got, want T
	err, wantErr := decodeRecord(raw, &got), json.Unmarshal(raw, &want)
	if (err != nil) != (wantErr != nil) || err == nil && !reflect.DeepEqual(got, want) {
		t.Errorf("%T %q: %+v (err %v), encoding/json gives %+v (err %v)", got, raw, got, err, want, wantErr)
	}
}
