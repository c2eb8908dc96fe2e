package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kdnsd/kdnsd/admin"
)

// clientOptions are the flags of every command that calls the admin API.
type clientOptions struct {
	server, tokenFile, caCert, cert, key, serverName, output string
	dataDir, socket                                          string
	timeout                                                  time.Duration
}

// clientFlags are the flags register defines; only they are read from the
// environment ($KDNSD_SERVER, $KDNSD_TOKEN_FILE, …), not a command's own
// flags such as --force. $KDNSD_DATA_DIR and $KDNSD_ADMIN_SOCKET are also
// serve's: in a pod, the CLI finds the socket its replica serves.
var clientFlags = []string{"server", "token-file", "cacert", "cert", "key", "tls-server-name", "output", "timeout", "data-dir", "admin-socket"}

// register defines the client flags; call it before defining a command's own
// flags, which are then not documented as read from the environment.
func (o *clientOptions) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.server, "server", "", "admin API of a kdnsd replica: https://host:port (http:// only for loopback) (default: the admin socket of the replica on this machine, see --data-dir)")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the admin bearer token")
	f.StringVar(&o.caCert, "cacert", "", "CA file to verify the server's certificate (default: the system roots)")
	f.StringVar(&o.cert, "cert", "", "client certificate file, for a server that requires one")
	f.StringVar(&o.key, "key", "", "key file of --cert")
	f.StringVar(&o.serverName, "tls-server-name", "", "name to check the server's certificate against (default: the host of --server)")
	f.StringVar(&o.dataDir, "data-dir", defaultDataDir, "data dir of the replica whose admin socket to use without --server, as given to kdnsd serve")
	f.StringVar(&o.socket, "admin-socket", defaultAdminSocket, "admin socket to use without --server, as given to kdnsd serve (relative to --data-dir)")
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
		c, err := o.client()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
		defer cancel()
		return o.explain(fn(ctx, cmd, c, args))
	}
}

// client calls --server, or else the admin socket.
func (o *clientOptions) client() (*admin.Client, error) {
	if o.server != "" {
		c, err := admin.NewClient(admin.ClientConfig{
			Server: o.server, TokenFile: o.tokenFile, CACert: o.caCert, Cert: o.cert, Key: o.key, ServerName: o.serverName,
		})
		if err != nil {
			return nil, fmt.Errorf("--server %s: %w", o.server, err)
		}
		return c, nil
	}
	socket := adminSocketPath(o.dataDir, o.socket)
	if socket == "" {
		return nil, errors.New("no --server given, and no admin socket (--admin-socket is empty)")
	}
	if o.tokenFile != "" || o.caCert != "" || o.cert != "" || o.key != "" || o.serverName != "" {
		return nil, fmt.Errorf("--token-file, --cacert, --cert, --key and --tls-server-name are for --server; the admin socket %s needs none", socket)
	}
	return admin.NewClient(admin.ClientConfig{Socket: socket})
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
		case apiErr.StatusCode == http.StatusForbidden && strings.Contains(apiErr.Message, "client certificate"):
			return fmt.Errorf("forbidden: the server does not accept the client certificate: check --cert and --key (%w)", err)
		}
	case errors.As(err, &verify):
		return fmt.Errorf("cannot verify the certificate of %s: %v: check --cacert (and --tls-server-name)", o.server, verify.Err)
	case errors.As(err, &unreachable) && strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("%s serves plain HTTP: use --server http://… (%w)", o.server, err)
	case errors.As(err, &unreachable) && o.server == "":
		return o.explainSocket(unreachable)
	}
	return err
}

// explainSocket says why the admin socket does not answer.
func (o *clientOptions) explainSocket(err *admin.UnreachableError) error {
	socket := adminSocketPath(o.dataDir, o.socket)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("no admin socket at %s: is kdnsd serve running here with --data-dir %s? Give the CLI the data dir serve uses (--data-dir or $KDNSD_DATA_DIR), or --server", socket, o.dataDir)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("permission denied on the admin socket %s: only the user kdnsd serve runs as may use it; run the CLI as that user (kubectl exec into the pod does), or use --server (%w)", socket, err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("nothing answers on the admin socket %s: kdnsd serve is not running (the file is left from an earlier run) (%w)", socket, err)
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
