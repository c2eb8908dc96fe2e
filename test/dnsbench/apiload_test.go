package main

import "testing"

func TestParseWatches(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       int
		wantErr    bool
	}{
		{name: "empty", body: "", want: 0},
		{name: "sums over resources, WATCH only", body: `# HELP apiserver_longrunning_requests [ALPHA] Gauge of all active long-running apiserver requests
# TYPE apiserver_longrunning_requests gauge
apiserver_longrunning_requests{component="apiserver",group="",resource="services",scope="cluster",subresource="",verb="WATCH",version="v1"} 3
apiserver_longrunning_requests{component="apiserver",group="discovery.k8s.io",resource="endpointslices",scope="cluster",subresource="",verb="WATCH",version="v1"} 2
apiserver_longrunning_requests{component="apiserver",group="",resource="pods",scope="namespace",subresource="log",verb="CONNECT",version="v1"} 7
apiserver_longrunning_requests_total{verb="WATCH"} 99
`, want: 5},
		{name: "bad value", body: `apiserver_longrunning_requests{resource="services",verb="WATCH"} x` + "\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseWatches([]byte(tc.body))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}
