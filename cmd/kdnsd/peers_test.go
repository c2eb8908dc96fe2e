package main

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/kdnsd/kdnsd/admin"
	"github.com/kdnsd/kdnsd/fsm"
)

func TestPeersList(t *testing.T) {
	g := newAdminTestGroup(t)
	out, stderr, err := runAdminCLI(t, append([]string{"peers", "list"}, g.flagsFor("b")...)...)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a header and 3 rows:\n%s", out)
	}
	header := regexp.MustCompile(`^ID +ADDRESS +VOTER +STATE +LEADER +LAST CONTACT +APPLIED +ADMISSION +FORMAT +HEALTHY$`)
	if !header.MatchString(lines[0]) {
		t.Errorf("header %q", lines[0])
	}
	// Columns line up: every row starts its ADDRESS where the header does.
	col := strings.Index(lines[0], "ADDRESS")
	for _, l := range lines[1:] {
		if len(l) < col || l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("row %q not aligned with the header", l)
		}
	}
	format := strconv.Itoa(fsm.MaxCommandVersion)
	for i, re := range []string{
		`^a +10\.0\.0\.1:7000 +yes +Leader +\* +- +0 +admitted +` + format + ` +yes$`,
		`^b +10\.0\.0\.2:7000 +yes +Follower +\d+ms +0 +admitted +` + format + ` +yes$`,
		`^c +10\.0\.0\.3:7000 +no +Follower +\d+ms +0 +staged +` + format + ` +yes$`,
	} {
		if !regexp.MustCompile(re).MatchString(lines[i+1]) {
			t.Errorf("row %q does not match %s", lines[i+1], re)
		}
	}
	if !regexp.MustCompile(`^commit index \d+ \(as \w+ knows it\)\n$`).MatchString(stderr) {
		t.Errorf("stderr %q", stderr)
	}

	// An unreachable peer: unhealthy, with the reason on stderr.
	g.addrs["c"] = freeLoopbackAddr(t)
	out, stderr, err = runAdminCLI(t, append([]string{"peers", "list"}, g.flags...)...)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^c +10\.0\.0\.3:7000 +no +- +- +- +- +- +no$`).MatchString(out) {
		t.Errorf("unreachable peer row:\n%s", out)
	}
	if !strings.Contains(stderr, "c: unreachable") || !strings.Contains(stderr, g.addrs["c"]) {
		t.Errorf("stderr %q", stderr)
	}

	out, _, err = runAdminCLI(t, append([]string{"peers", "list", "-o", "json"}, g.flags...)...)
	if err != nil {
		t.Fatal(err)
	}
	var resp admin.PeersResponse
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if resp.ReportedBy != "a" || resp.LeaderID != "a" || len(resp.Peers) != 3 || !resp.Peers[0].Leader || resp.Peers[2].Healthy {
		t.Errorf("json %+v", resp)
	}
}

func TestPeersChanges(t *testing.T) {
	g := newAdminTestGroup(t)
	// Through a follower: forwarded to the leader a.
	follower := g.flagsFor("b")

	out, _, err := runAdminCLI(t, append([]string{"peers", "add", "d", "10.0.0.4:7000", "--non-voter"}, follower...)...)
	if err != nil {
		t.Fatal(err)
	}
	if out != "added d (10.0.0.4:7000) as a non-voter; the configuration has 4 servers\n" {
		t.Errorf("add: %q", out)
	}
	out, _, err = runAdminCLI(t, append([]string{"peers", "remove", "d", "-o", "json"}, follower...)...)
	if err != nil {
		t.Fatal(err)
	}
	var conf admin.Configuration
	if err := json.Unmarshal([]byte(out), &conf); err != nil || len(conf.Servers) != 3 {
		t.Errorf("remove json %q: %v", out, err)
	}
	out, _, err = runAdminCLI(t, append([]string{"peers", "transfer-leader", "b"}, follower...)...)
	if err != nil {
		t.Fatal(err)
	}
	if out != "leadership moved from a to b\n" {
		t.Errorf("transfer: %q", out)
	}
	out, _, err = runAdminCLI(t, append([]string{"peers", "transfer-leader", "b"}, g.flagsFor("c")...)...)
	if err != nil || out != "b already leads\n" {
		t.Errorf("transfer to the leader: %q, %v", out, err)
	}
	_, _, err = runAdminCLI(t, append([]string{"peers", "transfer-leader", "c"}, follower...)...)
	wantCLIError(t, err, `"c" is a non-voter and cannot lead`, "HTTP 400")
}
