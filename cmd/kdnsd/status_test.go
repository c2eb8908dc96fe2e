package main

import (
	"encoding/json"
	"net/netip"
	"regexp"
	"testing"

	"github.com/kdnsd/kdnsd/admin"
	"github.com/kdnsd/kdnsd/fsm"
)

func TestStatusCommand(t *testing.T) {
	g := newAdminTestGroup(t)
	g.fc.SetView(fsm.NewView(42, []*fsm.Service{
		{Namespace: "default", Name: "web", Type: fsm.TypeClusterIP, ClusterIPs: []netip.Addr{netip.MustParseAddr("10.96.0.10")}},
	}, nil))

	out, _, err := runAdminCLI(t, append([]string{"status"}, g.flagsFor("b")...)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{
		`(?m)^ID +b$`, `(?m)^STATE +Follower$`, `(?m)^LEADER +a \(10\.0\.0\.1:7000\)$`, `(?m)^LAST CONTACT +\d+ms$`,
		`(?m)^APPLIED INDEX +42$`, `(?m)^SERVICES +1$`, `(?m)^ENDPOINT SLICES +0$`, `(?m)^WATCHER +watching$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("status output does not match %s:\n%s", re, out)
		}
	}

	out, _, err = runAdminCLI(t, append([]string{"status", "-o", "json"}, g.flagsFor("a")...)...)
	if err != nil {
		t.Fatal(err)
	}
	var st admin.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if st.ID != "a" || st.State != "Leader" || st.AppliedIndex != 42 || st.Services != 1 || st.LastContactMS != nil {
		t.Errorf("status %+v", st)
	}
}
