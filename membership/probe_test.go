package membership

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// TestHTTPProbe runs the default probe against a loopback server answering
// as kdnsd's /status does, and as things that are not kdnsd.
func TestHTTPProbe(t *testing.T) {
	var body string
	var code int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(code)
		w.Write([]byte(body))
	}))
	defer srv.Close()
	host, portStr, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)
	probe := HTTPProbe(port)

	for _, tc := range []struct {
		name, body string
		code       int
		state      bool
		err        string // substring of the error; "" for none
	}{
		{name: "has state", code: 200, state: true,
			body: `{"id":"kdnsd-0","state":"Follower","servers":[{"id":"kdnsd-0","address":"10.0.0.1:7000","voter":true}],"served_index":3}`},
		{name: "no state (null)", code: 200, body: `{"id":"kdnsd-0","state":"Follower","servers":null}`},
		{name: "no state (empty)", code: 200, body: `{"id":"kdnsd-0","servers":[]}`},
		{name: "no id field", code: 200, state: true, body: `{"servers":[{"id":"x"}]}`},
		{name: "another pod at the IP", code: 200, body: `{"id":"kdnsd-7","servers":[]}`, err: `answered by "kdnsd-7", not "kdnsd-0"`},
		{name: "not a status page", code: 200, body: `{"hello":"world"}`, err: `no "servers" field`},
		{name: "not JSON", code: 200, body: `<html>`, err: "invalid character"},
		{name: "error status", code: 503, body: `{"servers":[]}`, err: "503"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, code = tc.body, tc.code
			st, err := probe(context.Background(), "kdnsd-0", host)
			state := len(st.Servers) > 0
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || state != tc.state {
				t.Fatalf("got %v, %v; want %v", state, err, tc.state)
			}
		})
	}

	srv.Close()
	if _, err := probe(context.Background(), "kdnsd-0", host); err == nil {
		t.Error("no error from a closed port")
	}
}
