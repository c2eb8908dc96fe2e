package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "kdnsd",
		Short:         "Highly available cluster DNS for Kubernetes, replicated with Raft",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCommand(), newPeersCommand(), newStatusCommand(), newSnapshotCommand(), newCertsCommand(), newConfigCommand())
	return root
}

// envPrefix prefixes the environment variable of every flag: --raft-addr is
// also read from KDNSD_RAFT_ADDR. A flag given on the command line wins.
const envPrefix = "KDNSD_"

func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag not given on the command line from its
// environment variable.
func applyEnv(flags *pflag.FlagSet) error {
	var err error
	flags.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := flags.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", envName(f.Name), v, e)
			}
		}
	})
	return err
}

// documentEnv appends each flag's environment variable to its usage.
func documentEnv(flags *pflag.FlagSet) {
	flags.VisitAll(func(f *pflag.Flag) {
		f.Usage += fmt.Sprintf(" [$%s]", envName(f.Name))
	})
}
