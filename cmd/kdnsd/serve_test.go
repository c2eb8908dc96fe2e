package main

import (
	"strings"
	"testing"
)

// TestServeRejectsBadInput: every bad flag or environment value is refused
// with an error naming it, before anything is opened or listened on.
func TestServeRejectsBadInput(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{"unknown flag", []string{"--nope"}, nil, "unknown flag: --nope"},
		{"positional argument", []string{"extra"}, nil, `unknown command "extra"`},
		{"peer without address", []string{"--peers", "a"}, nil, `peer "a": want id=host:port`},
		{"peer without port", []string{"--peers", "a=10.0.0.1"}, nil, "missing port"},
		{"duplicate peer", []string{"--peers", "a=1.1.1.1:1,a=1.1.1.2:1"}, nil, "appears twice"},
		{"dns address without port", []string{"--dns-addr", "127.0.0.1"}, nil, "--dns-addr"},
		{"raft address without port", []string{"--raft-addr", "x"}, nil, "--raft-addr"},
		{"bad log format", []string{"--log-format", "xml"}, nil, "--log-format"},
		{"bad log level", []string{"--log-level", "loud"}, nil, "--log-level"},
		{"bad ttl", []string{"--ttl", "-1"}, nil, "--ttl"},
		{"empty data dir", []string{"--data-dir", ""}, nil, "--data-dir is required"},
		{"raft TLS without key and CA", []string{"--raft-tls-cert", "/nonexistent.pem"}, nil, "needs a certificate, a key and a CA"},
		{"raft TLS files missing", []string{"--raft-tls-cert", "/x.pem", "--raft-tls-key", "/x.key", "--raft-tls-ca", "/ca.pem"}, nil, "no such file"},
		{"upstream that is not an IP", []string{"--upstream", "dns.example"}, nil, "--upstream"},
		{"stub domain without servers", []string{"--upstream", "127.0.0.1:5353", "--stub-domain", "corp.example"}, nil, "--stub-domain"},
		{"unreadable resolv.conf", []string{"--resolv-conf", "/nonexistent/resolv.conf"}, nil, "/nonexistent/resolv.conf"},
		{"bad pod mode", []string{"--upstream", "127.0.0.1:5353", "--pod-mode", "trusting"}, nil, "--pod-mode"},
		{"bad zone", []string{"--upstream", "127.0.0.1:5353", "--zone", "a..b"}, nil, "--zone"},
		{"bad ns address", []string{"--ns-addr", "ns.example"}, nil, "--ns-addr"},
		{"bad discovery", []string{"--discovery", "dns"}, nil, "--discovery"},
		{"peers with kubernetes discovery", []string{"--discovery", "kubernetes", "--id", "a", "--peers", "a=1.1.1.1:1"}, nil, "--peers is for --discovery=static"},
		{"kubernetes discovery without pod IP", []string{"--discovery", "kubernetes", "--id", "kdnsd-0", "--raft-addr", "0.0.0.0:7000"}, nil, "--raft-advertise"},
		{"kubernetes discovery without statefulset", []string{"--discovery", "kubernetes", "--id", "laptop"}, nil, "--statefulset is required"},
		{"read replica with peers", []string{"--voter=false", "--id", "a", "--peers", "a=1.1.1.1:1"}, nil, "--voter=false"},
		{"admin flags without address", []string{"--admin-token-file", "/t"}, nil, "without --admin-addr"},
		{"admin API off loopback without auth", []string{"--admin-addr", "0.0.0.0:8443"}, nil, "--admin-addr"},
		{"admin socket path too long", []string{"--data-dir", "/" + strings.Repeat("d", 100)}, nil, "--admin-socket admin.sock: admin socket /ddd"},
		{"peers without this replica", []string{"--id", "c", "--peers", "a=127.0.0.1:1,b=127.0.0.1:2"}, nil, `does not name this replica's --id "c"`},
		{"negative lameduck", []string{"--lameduck", "-1s"}, nil, "--lameduck"},
		{"raft off loopback without TLS", []string{"--raft-addr", "10.0.0.1:7000"}, nil, "without authentication"},
		{"raft bound to every address without TLS", []string{"--raft-addr", "0.0.0.0:7000", "--raft-advertise", "127.0.0.1:7000"}, nil, "without authentication"},
		{"raft CA key without CA", []string{"--raft-addr", "10.0.0.1:7000", "--raft-tls-ca-key", "/ca.key"}, nil, "needs --raft-tls-ca"},
		{"raft CA key and certificate", []string{"--raft-addr", "10.0.0.1:7000", "--raft-tls-ca", "/ca.crt", "--raft-tls-ca-key", "/ca.key", "--raft-tls-cert", "/x.pem"}, nil, "do not also give"},
		{"raft insecure and TLS", []string{"--raft-addr", "10.0.0.1:7000", "--raft-tls-ca", "/ca.crt", "--raft-tls-ca-key", "/ca.key", "--raft-insecure"}, nil, "choose one"},
		{"raft CA files missing", []string{"--raft-addr", "10.0.0.1:7000", "--raft-tls-ca", "/nonexistent/ca.crt", "--raft-tls-ca-key", "/nonexistent/ca.key"}, nil, "no such file"},
		{"unspecified raft address without advertise", []string{"--raft-addr", "0.0.0.0:7000"}, nil, "--raft-advertise"},
		{"bad raft log level", []string{"--raft-addr", "127.0.0.1:7000", "--raft-log-level", "chatty"}, nil, "--raft-log-level"},
		{"stub domain twice", []string{"--raft-addr", "127.0.0.1:7000", "--upstream", "127.0.0.1:5353", "--stub-domain", "corp.example=127.0.0.2", "--stub-domain", "Corp.Example.=127.0.0.3"}, nil, "given twice"},
		{"stub domain inside the zone", []string{"--raft-addr", "127.0.0.1:7000", "--upstream", "127.0.0.1:5353", "--stub-domain", "svc.cluster.local=127.0.0.2"}, nil, "inside the cluster zone"},
		{"kubernetes discovery with a bad selector", []string{"--discovery", "kubernetes", "--id", "kdnsd-0", "--raft-addr", "10.0.0.1:7000", "--selector", "a in (b"}, nil, "--selector"},
		{"kubernetes discovery with port 0", []string{"--discovery", "kubernetes", "--id", "kdnsd-0", "--raft-addr", "10.0.0.1:0"}, nil, "fixed port"},
		{"kubernetes discovery with a negative timeout", []string{"--discovery", "kubernetes", "--id", "kdnsd-0", "--raft-addr", "10.0.0.1:7000", "--dead-server-timeout", "-1s"}, nil, "--dead-server-timeout"},
		{"upstream that is kdnsd itself", []string{"--dns-addr", "127.0.0.1:1053", "--upstream", "127.0.0.1:1053"}, nil, "no upstreams left"},
		{"bad value from environment", nil, map[string]string{"KDNSD_HTTP_ADDR": "nowhere"}, "--http-addr"},
		{"unparsable environment value", nil, map[string]string{"KDNSD_TTL": "soon"}, "KDNSD_TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cmd := newRootCommand()
			// A valid Raft address first: a case's own flags come later and win.
			cmd.SetArgs(append([]string{"serve", "--raft-addr", "127.0.0.1:7000"}, tt.args...))
			cmd.SetOut(new(strings.Builder))
			cmd.SetErr(new(strings.Builder))
			err := cmd.Execute()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestFlagWinsOverEnvironment(t *testing.T) {
	t.Setenv("KDNSD_DNS_ADDR", "bad")
	cmd := newRootCommand()
	// The command line's good --dns-addr wins; the bad --log-format then
	// stops it before it serves.
	cmd.SetArgs([]string{"serve", "--raft-addr", "127.0.0.1:7000", "--dns-addr", "127.0.0.1:53", "--log-format", "xml"})
	err := cmd.Execute()
	if err == nil || !strings.Contains(err.Error(), "--log-format") {
		t.Fatalf("error %v, want the --log-format one", err)
	}
}
