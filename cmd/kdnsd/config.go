package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kdnsd/kdnsd/admin"
)

func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "The cluster DNS configuration (ConfigMap --config-map, replicated through Raft)",
	}
	var o clientOptions
	show := &cobra.Command{
		Use:   "show",
		Short: "Show the DNS configuration one replica serves (--server, else this machine's): each value, where it came from, and the Raft index it was committed at",
		Args:  cobra.NoArgs,
	}
	show.RunE = o.run(func(ctx context.Context, cmd *cobra.Command, c *admin.Client, _ []string) error {
		d, err := c.DNSConfig(ctx)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if o.output == "json" {
			return printJSON(out, d)
		}
		fmt.Fprintf(out, "replica %s serves %s\n\n", d.ReportedBy, configInForce(d.Source, d.Index))
		tw := newTable(out)
		fmt.Fprintln(tw, "KEY\tVALUE\tFROM")
		for _, s := range d.Settings {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Key, s.Value, s.From)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if len(d.Records) > 0 {
			fmt.Fprintln(out, "\nrecords:")
			for _, r := range d.Records {
				fmt.Fprintf(out, "  %s\n", r)
			}
		}
		if d.Error != "" {
			fmt.Fprintf(out, "\nrefused %s (the configuration above stays in force):\n  %s\n", d.Rejected,
				strings.ReplaceAll(d.Error, "\n", "\n  "))
		}
		return nil
	})
	o.register(show)
	cmd.AddCommand(show)
	return cmd
}
