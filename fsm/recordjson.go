package fsm

import (
	gojson "github.com/goccy/go-json"
)

// decodeRecord decodes a stored service, endpoint slice or pod into v as
// json.Unmarshal does. The store holds each as json.Marshal writes it, and
// a restart reads every one before it can serve: encoding/json's
// reflection took most of that time at 100k services, and goccy/go-json
// decodes the same JSON into the same values several times faster
// (TestDecodeRecordAsEncodingJSON holds it to encoding/json).
func decodeRecord[T any](raw []byte, v *T) error { return gojson.Unmarshal(raw, v) }
