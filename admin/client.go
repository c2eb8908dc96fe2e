package admin

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kdnsd/kdnsd/internal/filewatch"
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// Server is the base URL of a replica's admin API: https://host:port,
	// or http://host:port for a loopback server without TLS. A bare
	// host:port means https.
	Server string
	// Socket is the path of a replica's admin unix socket, instead of
	// Server. It takes no token or TLS files.
	Socket string
	// TokenFile holds the bearer token (its first token line).
	TokenFile string
	// CACert verifies the server's certificate; the system roots when empty.
	CACert string
	// Cert and Key are the client certificate, for servers with a client CA.
	Cert, Key string
	// ServerName overrides the host name the server's certificate is checked
	// against (for a loopback or port-forwarded address).
	ServerName string
}

// Client calls a replica's admin API.
type Client struct {
	base  *url.URL
	where string // the server or socket, for messages
	http  *http.Client
	token string
}

// NewClient reads the files cfg names and returns a Client.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Socket != "" {
		return newSocketClient(cfg)
	}
	raw := cfg.Server
	if raw == "" {
		return nil, errors.New("no server given")
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	base, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("server %q: %w", cfg.Server, err)
	}
	if (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("server %q: want https://host:port", cfg.Server)
	}
	base.Path, base.RawQuery, base.Fragment = strings.TrimSuffix(base.Path, "/"), "", ""
	c := &Client{base: base, where: base.String()}
	if cfg.TokenFile != "" {
		if c.token, err = ReadTokenFile(cfg.TokenFile); err != nil {
			return nil, err
		}
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.ServerName}
	if base.Scheme == "http" {
		if !IsLoopback(base.Hostname()) {
			return nil, fmt.Errorf("server %s: plain HTTP is only for a loopback address; use https://", base)
		}
		if cfg.Cert != "" || cfg.CACert != "" {
			return nil, fmt.Errorf("server %s: TLS files given for a plain HTTP server; use https://", base)
		}
	}
	if cfg.CACert != "" {
		pool, err := filewatch.CAPool("admin", cfg.CACert)()
		if err != nil {
			return nil, err
		}
		tlsConfig.RootCAs = pool
	}
	if (cfg.Cert == "") != (cfg.Key == "") {
		return nil, errors.New("a client certificate needs both a certificate and a key file")
	}
	if cfg.Cert != "" {
		cert, err := filewatch.KeyPair("admin client", cfg.Cert, cfg.Key)()
		if err != nil {
			return nil, err
		}
		tlsConfig.Certificates = []tls.Certificate{*cert}
	}
	c.http = &http.Client{Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSClientConfig:     tlsConfig,
		TLSHandshakeTimeout: 10 * time.Second,
	}}
	return c, nil
}

// newSocketClient is a Client of the unix socket cfg.Socket.
func newSocketClient(cfg ClientConfig) (*Client, error) {
	if cfg.Server != "" {
		return nil, errors.New("both a server and a socket given")
	}
	if cfg.TokenFile != "" || cfg.CACert != "" || cfg.Cert != "" || cfg.Key != "" || cfg.ServerName != "" {
		return nil, fmt.Errorf("admin socket %s: a token or TLS files given; the socket's file permission is its authentication", cfg.Socket)
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	return &Client{
		// The host is never looked up; the server does not check it.
		base:  &url.URL{Scheme: "http", Host: "localhost"},
		where: "unix:" + cfg.Socket,
		http: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, "unix", cfg.Socket)
			},
		}},
	}, nil
}

// Server is the base URL the client calls (http://localhost for a socket).
func (c *Client) Server() string { return c.base.String() }

// Error is an error answer of the API.
type Error struct {
	Server     string // base URL, or unix: and the socket path
	StatusCode int
	Message    string
	Peer       string // the replica that answered, when it said
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (HTTP %d from %s)", e.Message, e.StatusCode, e.Server)
}

// UnreachableError is a request that got no HTTP answer at all.
type UnreachableError struct {
	Server string // as in Error
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the kdnsd admin API at %s: %v", e.Server, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, contentType string) (*http.Response, error) {
	u := *c.base
	u.Path += path
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set(HeaderClient, "kdnsd")
	resp, err := c.http.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, &UnreachableError{Server: c.where, Err: err}
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, &Error{Server: c.where, StatusCode: resp.StatusCode, Message: errorMessage(data), Peer: resp.Header.Get(HeaderPeer)}
	}
	return resp, nil
}

func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ct = bytes.NewReader(data), "application/json"
	}
	resp, err := c.do(ctx, method, path, body, ct)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("bad answer from %s: %w", c.where, err)
	}
	return nil
}

// Status returns the status of the replica the client calls.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	return &st, c.call(ctx, http.MethodGet, "/v1/status", nil, &st)
}

// DNSConfig returns the DNS configuration the replica serves.
func (c *Client) DNSConfig(ctx context.Context) (*DNSConfigResponse, error) {
	var d DNSConfigResponse
	return &d, c.call(ctx, http.MethodGet, "/v1/config", nil, &d)
}

// Peers returns the Raft configuration with each peer's health.
func (c *Client) Peers(ctx context.Context) (*PeersResponse, error) {
	var p PeersResponse
	return &p, c.call(ctx, http.MethodGet, "/v1/peers", nil, &p)
}

// AddPeer adds a server to the Raft configuration.
func (c *Client) AddPeer(ctx context.Context, id, address string, voter bool) (*Configuration, error) {
	var conf Configuration
	return &conf, c.call(ctx, http.MethodPost, "/v1/peers", AddPeerRequest{ID: id, Address: address, Voter: &voter}, &conf)
}

// RemovePeer removes a server from the Raft configuration.
func (c *Client) RemovePeer(ctx context.Context, id string) (*Configuration, error) {
	var conf Configuration
	return &conf, c.call(ctx, http.MethodDelete, "/v1/peers/"+url.PathEscape(id), nil, &conf)
}

// TransferLeader hands leadership to the voter id, or to any when id is "".
func (c *Client) TransferLeader(ctx context.Context, id string) (*TransferResponse, error) {
	var t TransferResponse
	return &t, c.call(ctx, http.MethodPost, "/v1/leader/transfer", TransferRequest{ID: id}, &t)
}

// SnapshotInfo describes a snapshot being downloaded.
type SnapshotInfo struct {
	Peer  string // the replica it comes from
	Index uint64 // its Raft index there
}

// Snapshot downloads the answering replica's records. The caller reads and
// closes the stream; a stream cut short does not pass fsm.ReadSnapshot.
func (c *Client) Snapshot(ctx context.Context) (io.ReadCloser, SnapshotInfo, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/snapshot", nil, "")
	if err != nil {
		return nil, SnapshotInfo{}, err
	}
	info := SnapshotInfo{Peer: resp.Header.Get(HeaderPeer)}
	info.Index, _ = strconv.ParseUint(resp.Header.Get(HeaderSnapshotIndex), 10, 64)
	return resp.Body, info, nil
}

// Restore replaces the state of the whole cluster with a snapshot.
func (c *Client) Restore(ctx context.Context, snapshot []byte) (*RestoreResponse, error) {
	resp, err := c.do(ctx, http.MethodPost, "/v1/snapshot", bytes.NewReader(snapshot), "application/octet-stream")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out RestoreResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("bad answer from %s: %w", c.where, err)
	}
	return &out, nil
}
