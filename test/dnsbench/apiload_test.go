package main

import "testing"

func TestParseWatches(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       watches
		wantErr    bool
	}{
		{name: "empty", body: "", want: watches{}},
		{name: "sums over resources, WATCH only", body: `# HELP apiserver_longrunning_requests [ALPHA] Gauge of all active long-running apiserver requests
# TYPE apiserver_longrunning_requests gauge
apiserver_longrunning_requests{component="apiserver",group="",resource="services",scope="cluster",subresource="",verb="WATCH",version="v1"} 3
apiserver_longrunning_requests{component="apiserver",group="discovery.k8s.io",resource="endpointslices",scope="cluster",subresource="",verb="WATCH",version="v1"} 2
apiserver_longrunning_requests{component="apiserver",group="",resource="pods",scope="namespace",subresource="log",verb="CONNECT",version="v1"} 7
apiserver_registered_watchers{group="",kind="Service",version="v1"} 4
apiserver_registered_watchers{group="discovery.k8s.io",kind="EndpointSlice",version="v1"} 1
apiserver_registered_watchers_total 99
`, want: watches{requests: 5, registered: 5}},
		{name: "bad value", body: `apiserver_registered_watchers{kind="Service"} x` + "\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseWatches([]byte(tc.body))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
