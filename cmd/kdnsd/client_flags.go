package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kdnsd/kdnsd/admin"
)

// defaultAdminServer is where the client commands look for the admin API:
// the replica in the same pod, for kubectl exec.
const defaultAdminServer = "https://127.0.0.1:8443"

// clientOptions are the flags of every command that calls the admin API.
type clientOptions struct {
	server, tokenFile, caCert, cert, key, serverName, output string
	timeout                                                  time.Duration
}

// clientFlags are the flags register defines; only they are read from the
// environment ($KDNSD_SERVER, $KDNSD_TOKEN_FILE, …), not a command's own
// flags such as --force.
var clientFlags = []string{"server", "token-file", "cacert", "cert", "key", "tls-server-name", "output", "timeout"}

// register defines the client flags; call it before defining a command's own
// flags, which are then not documented as read from the environment.
func (o *clientOptions) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.server, "server", defaultAdminServer, "admin API of a kdnsd replica: https://host:port (http:// only for loopback)")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the admin bearer token")
	f.StringVar(&o.caCert, "cacert", "", "CA file to verify the server's certificate (default: the system roots)")
	f.StringVar(&o.cert, "cert", "", "client certificate file, for a server that requires one")
	f.StringVar(&o.key, "key", "", "key file of --cert")
	f.StringVar(&o.serverName, "tls-server-name", "", "name to check the server's certificate against (default: the host of --server)")
	f.StringVarP(&o.output, "output", "o", "table", "output format: table or json")
	f.DurationVar(&o.timeout, "timeout", time.Minute, "time allowed for the request")
	documentEnv(f)
}

// run wraps a client command: flags from the environment, a client, a
// deadline, and errors explained in terms of the flags.
func (o *clientOptions) run(fn func(ctx context.Context, cmd *cobra.Command, c *admin.Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := applyClientEnv(cmd.Flags()); err != nil {
			return err
		}
		switch o.output {
		case "table", "json":
		default:
			return fmt.Errorf("--output %q: want table or json", o.output)
		}
		c, err := admin.NewClient(admin.ClientConfig{
			Server: o.server, TokenFile: o.tokenFile, CACert: o.caCert, Cert: o.cert, Key: o.key, ServerName: o.serverName,
		})
		if err != nil {
			return fmt.Errorf("--server %s: %w", o.server, err)
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
		defer cancel()
		return o.explain(fn(ctx, cmd, c, args))
	}
}

// applyClientEnv sets each client flag not given on the command line from
// its environment variable.
func applyClientEnv(flags *pflag.FlagSet) error {
	for _, name := range clientFlags {
		if f := flags.Lookup(name); f == nil || f.Changed {
			continue
		}
		if v, ok := os.LookupEnv(envName(name)); ok {
			if err := flags.Set(name, v); err != nil {
				return fmt.Errorf("%s=%q: %w", envName(name), v, err)
			}
		}
	}
	return nil
}

// explain turns API and connection errors into advice about the flags.
func (o *clientOptions) explain(err error) error {
	var apiErr *admin.Error
	var unreachable *admin.UnreachableError
	var verify *tls.CertificateVerificationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &apiErr):
		switch {
		case apiErr.StatusCode == http.StatusUnauthorized && strings.Contains(apiErr.Message, "client certificate"):
			return fmt.Errorf("unauthorized: the server requires a client certificate: check --cert and --key (%w)", err)
		case apiErr.StatusCode == http.StatusUnauthorized && o.tokenFile == "":
			return fmt.Errorf("unauthorized: the server requires a token: pass --token-file (%w)", err)
		case apiErr.StatusCode == http.StatusUnauthorized:
			return fmt.Errorf("unauthorized: check --token-file (%w)", err)
		case apiErr.StatusCode == http.StatusForbidden:
			return fmt.Errorf("forbidden: the server does not accept the client certificate: check --cert and --key (%w)", err)
		}
	case errors.As(err, &verify):
		return fmt.Errorf("cannot verify the certificate of %s: %v: check --cacert (and --tls-server-name)", o.server, verify.Err)
	case errors.As(err, &unreachable) && strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("%s serves plain HTTP: use --server http://… (%w)", o.server, err)
	}
	return err
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// lastContact formats a peer's time since it heard from the leader.
func lastContact(ms *int64) string {
	if ms == nil {
		return "-"
	}
	return (time.Duration(*ms) * time.Millisecond).String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
