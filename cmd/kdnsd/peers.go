package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kdnsd/kdnsd/admin"
)

func newPeersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "peers",
		Short: "List and change the replicas of the Raft group through the admin API",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newPeersListCommand(), newPeersAddCommand(), newPeersRemoveCommand(), newPeersTransferCommand())
	return cmd
}

func newPeersListCommand() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the Raft configuration with each peer's state and health",
		Args:  cobra.NoArgs,
	}
	cmd.RunE = o.run(func(ctx context.Context, cmd *cobra.Command, c *admin.Client, _ []string) error {
		resp, err := c.Peers(ctx)
		if err != nil {
			return err
		}
		if o.output == "json" {
			return printJSON(cmd.OutOrStdout(), resp)
		}
		tw := newTable(cmd.OutOrStdout())
		fmt.Fprintln(tw, "ID\tADDRESS\tVOTER\tSTATE\tLEADER\tLAST CONTACT\tAPPLIED\tADMISSION\tFORMAT\tHEALTHY")
		for _, p := range resp.Peers {
			state, applied, admission, format, mark, healthy := "-", "-", "-", "-", "", admin.YesNo(p.Healthy)
			if p.Reachable {
				state, applied, format = string(p.State), fmt.Sprint(p.AppliedIndex), fmt.Sprint(p.MaxCommandVersion)
				if p.Admission != "" {
					admission = string(p.Admission)
				}
			}
			if !p.Reachable && p.AdminAddress == "" {
				healthy = "?" // not asked; the reason follows the table
			}
			if p.Leader {
				mark = "*"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
				p.ID, p.Address, admin.YesNo(p.Voter), state, mark, admin.LastContact(p.LastContactMS), applied, admission, format, healthy)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		// Reasons go to stderr, so that the table stays a table.
		fmt.Fprintf(cmd.ErrOrStderr(), "commit index %d (as %s knows it)\n", resp.CommitIndex, resp.ReportedBy)
		for _, p := range resp.Peers {
			if p.Problem != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s\n", p.ID, p.Problem)
			}
		}
		if resp.LeaderID == "" {
			fmt.Fprintf(cmd.ErrOrStderr(), "no leader (as %s sees it)\n", resp.ReportedBy)
		}
		return nil
	})
	o.register(cmd)
	return cmd
}

func newPeersAddCommand() *cobra.Command {
	var o clientOptions
	var nonVoter bool
	cmd := &cobra.Command{
		Use:   "add ID ADDRESS",
		Short: "Add a replica to the Raft configuration (ADDRESS is its Raft host:port)",
		Args:  cobra.ExactArgs(2),
	}
	cmd.RunE = o.run(func(ctx context.Context, cmd *cobra.Command, c *admin.Client, args []string) error {
		conf, err := c.AddPeer(ctx, args[0], args[1], !nonVoter)
		if err != nil {
			return err
		}
		if o.output == "json" {
			return printJSON(cmd.OutOrStdout(), conf)
		}
		kind := "a voter"
		if nonVoter {
			kind = "a non-voter"
		}
		fmt.Fprintf(cmd.OutOrStdout(), "added %s (%s) as %s; the configuration has %d servers\n", args[0], args[1], kind, len(conf.Servers))
		return nil
	})
	o.register(cmd)
	cmd.Flags().BoolVar(&nonVoter, "non-voter", false, "add as a non-voter: it replicates and serves, but does not vote or lead")
	return cmd
}

func newPeersRemoveCommand() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a replica from the Raft configuration",
		Args:  cobra.ExactArgs(1),
	}
	cmd.RunE = o.run(func(ctx context.Context, cmd *cobra.Command, c *admin.Client, args []string) error {
		conf, err := c.RemovePeer(ctx, args[0])
		if err != nil {
			return err
		}
		if o.output == "json" {
			return printJSON(cmd.OutOrStdout(), conf)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "removed %s; the configuration has %d servers\n", args[0], len(conf.Servers))
		return nil
	})
	o.register(cmd)
	return cmd
}

func newPeersTransferCommand() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{
		Use:   "transfer-leader [ID]",
		Short: "Hand leadership to the voter ID, or to the most up-to-date voter",
		Args:  cobra.MaximumNArgs(1),
	}
	cmd.RunE = o.run(func(ctx context.Context, cmd *cobra.Command, c *admin.Client, args []string) error {
		id := ""
		if len(args) == 1 {
			id = args[0]
		}
		resp, err := c.TransferLeader(ctx, id)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		switch {
		case o.output == "json":
			return printJSON(out, resp)
		case resp.LeaderID == resp.PreviousLeader:
			fmt.Fprintf(out, "%s already leads\n", resp.LeaderID)
		case resp.LeaderID == "":
			fmt.Fprintf(out, "%s handed over leadership; the new leader is not known yet\n", resp.PreviousLeader)
		default:
			fmt.Fprintf(out, "leadership moved from %s to %s\n", resp.PreviousLeader, resp.LeaderID)
		}
		return nil
	})
	o.register(cmd)
	return cmd
}
