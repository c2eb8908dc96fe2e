package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kdnsd/kdnsd/raftauth"
)

func newCertsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "certs", Short: "Certificates of the Raft plane"}
	var force bool
	initCmd := &cobra.Command{
		Use:   "init DIR",
		Short: "Create the Raft CA (ca.crt, ca.key) that replicas issue their own certificates from",
		Long: `Writes a new CA certificate and key into DIR (created 0700). Replicas started with
--raft-tls-ca DIR/ca.crt --raft-tls-ca-key DIR/ca.key issue themselves a short-lived
certificate for their server ID and IP. For the shipped manifests:

  kdnsd certs init deploy/statefulset/raft-ca
  kubectl apply -k deploy/statefulset

kustomize turns the two files into the Secret kube-system/kdnsd-raft-ca. Keep ca.key
out of version control. Existing files are never replaced without --force.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cert, key, err := raftauth.InitCA(args[0], force)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s\n", cert, key)
			return nil
		},
	}
	initCmd.Flags().BoolVar(&force, "force", false, "replace an existing CA (every replica must then be given the new one)")
	cmd.AddCommand(initCmd)
	return cmd
}
