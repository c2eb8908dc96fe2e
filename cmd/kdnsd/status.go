package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kdnsd/kdnsd/admin"
)

func newStatusCommand() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the Raft and record status of one replica (--server, else this machine's)",
		Args:  cobra.NoArgs,
	}
	cmd.RunE = o.run(func(ctx context.Context, cmd *cobra.Command, c *admin.Client, _ []string) error {
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if o.output == "json" {
			return printJSON(out, st)
		}
		leader := "none"
		if st.LeaderID != "" {
			leader = fmt.Sprintf("%s (%s)", st.LeaderID, st.LeaderAddress)
		}
		tw := newTable(out)
		for _, row := range [][2]any{
			{"ID", st.ID},
			{"STATE", st.State},
			{"VOTER", admin.YesNo(st.Voter)},
			{"ADMISSION", st.Admission},
			{"TERM", st.Term},
			{"LEADER", leader},
			{"LAST CONTACT", admin.LastContact(st.LastContactMS)},
			{"COMMIT INDEX", st.CommitIndex},
			{"APPLIED INDEX", st.AppliedIndex},
			{"SERVED INDEX", st.ServedIndex},
			{"SERVICES", st.Services},
			{"ENDPOINT SLICES", st.EndpointSlices},
			{"WATCHER", st.Watcher},
			{"MAX COMMAND FORMAT", st.MaxCommandVersion},
			{"CONFIG", configInForce(st.ConfigSource, st.ConfigIndex)},
		} {
			fmt.Fprintf(tw, "%s\t%v\n", row[0], row[1])
		}
		if st.ConfigError != "" {
			fmt.Fprintf(tw, "CONFIG REFUSED\t%s\n", st.ConfigRejected)
			for _, line := range strings.Split(st.ConfigError, "\n") {
				fmt.Fprintf(tw, "\t%s\n", line)
			}
		}
		return tw.Flush()
	})
	o.register(cmd)
	return cmd
}

// configInForce names the configuration in force and where it was
// committed.
func configInForce(source string, index uint64) string {
	switch {
	case source == "":
		return "flags (a replica of an older release)"
	case index == 0:
		return source
	}
	return fmt.Sprintf("%s (raft index %d)", source, index)
}
