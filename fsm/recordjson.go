package fsm

import (
	gojson "github.com/goccy/go-json"
)

// The store holds each service and endpoint slice as json.Marshal writes
// it, and a restart reads every one of them before it can serve:
// encoding/json's reflection took most of that time at 100k services.
// goccy/go-json decodes the same JSON into the same values several times
// faster (TestUnmarshalRecordsAsEncodingJSON holds it to encoding/json).

// unmarshalService decodes raw into s as json.Unmarshal does.
func unmarshalService(raw []byte, s *Service) error { return gojson.Unmarshal(raw, s) }

// unmarshalSlice decodes raw into e as json.Unmarshal does.
func unmarshalSlice(raw []byte, e *EndpointSlice) error { return gojson.Unmarshal(raw, e) }
