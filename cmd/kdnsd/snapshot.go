package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kdnsd/kdnsd/admin"
	"github.com/kdnsd/kdnsd/fsm"
)

func newSnapshotCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Back up the records to a file, or restore the whole cluster from one",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newSnapshotSaveCommand(), newSnapshotRestoreCommand())
	return cmd
}

// snapshotResult is the JSON output of both snapshot commands.
type snapshotResult struct {
	File           string `json:"file"`
	Peer           string `json:"peer"`
	Index          uint64 `json:"index"`
	Services       int    `json:"services"`
	EndpointSlices int    `json:"endpoint_slices"`
	Bytes          int64  `json:"bytes,omitempty"`
}

func newSnapshotSaveCommand() *cobra.Command {
	var o clientOptions
	var force bool
	cmd := &cobra.Command{
		Use:   "save FILE",
		Short: "Save the records of one replica (--server, else this machine's) to FILE",
		Long: "Save the records of the replica asked to FILE. The replica answers\n" +
			"from its own copy, so a backup works without quorum; the index printed says\n" +
			"how recent it is. FILE is written only once the whole snapshot has arrived and\n" +
			"reads back; an existing FILE is kept unless --force is given.",
		Args: cobra.ExactArgs(1),
	}
	cmd.RunE = o.run(func(ctx context.Context, cmd *cobra.Command, c *admin.Client, args []string) error {
		path := args[0]
		if !force {
			if _, err := os.Lstat(path); err == nil {
				return fmt.Errorf("%s exists; pass --force to overwrite it", path)
			}
		}
		body, info, err := c.Snapshot(ctx)
		if err != nil {
			return err
		}
		defer body.Close()
		res, err := saveSnapshot(path, body, force)
		if err != nil {
			return err
		}
		res.Peer, res.Index = info.Peer, info.Index
		if o.output == "json" {
			return printJSON(cmd.OutOrStdout(), res)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "saved the records of %s at index %d to %s: %d services, %d endpoint slices, %d bytes\n",
			res.Peer, res.Index, res.File, res.Services, res.EndpointSlices, res.Bytes)
		return nil
	})
	o.register(cmd)
	cmd.Flags().BoolVar(&force, "force", false, "overwrite FILE if it exists")
	return cmd
}

// saveSnapshot writes body to a temporary file next to path, checks that it
// reads as a snapshot, and only then puts it in place: path never holds a
// partial snapshot. Without force an existing path is never replaced, also
// if it appeared meanwhile.
func saveSnapshot(path string, body io.Reader, force bool) (*snapshotResult, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name()) // after a rename or link, there is nothing there
	n, err := io.Copy(tmp, body)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("receive snapshot: %w", err)
	}
	f, err := os.Open(tmp.Name())
	if err != nil {
		return nil, err
	}
	v, err := fsm.ReadSnapshot(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("the snapshot received does not read (cut short?); %s is untouched: %w", path, err)
	}
	if force {
		err = os.Rename(tmp.Name(), path)
	} else if err = os.Link(tmp.Name(), path); errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%s exists; pass --force to overwrite it", path)
	}
	if err != nil {
		return nil, err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	services, slices := v.Counts()
	return &snapshotResult{File: path, Services: services, EndpointSlices: slices, Bytes: n}, nil
}

func newSnapshotRestoreCommand() *cobra.Command {
	var o clientOptions
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Replace the records of the whole cluster with the snapshot in FILE",
		Long: "Replace the records of the whole cluster with the snapshot in FILE (disaster\n" +
			"recovery). The file is checked before it is sent; the leader restores it and\n" +
			"replicates it to every replica. While the API server is reachable, the\n" +
			"leader's watcher then brings the records back in line with it.",
		Args: cobra.ExactArgs(1),
	}
	cmd.RunE = o.run(func(ctx context.Context, cmd *cobra.Command, c *admin.Client, args []string) error {
		path := args[0]
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if _, err := fsm.ReadSnapshot(bytes.NewReader(data)); err != nil {
			return fmt.Errorf("%s is not a valid kdnsd snapshot; nothing was sent: %w", path, err)
		}
		resp, err := c.Restore(ctx, data)
		if err != nil {
			return err
		}
		res := snapshotResult{File: path, Peer: resp.LeaderID, Index: resp.Index, Services: resp.Services, EndpointSlices: resp.EndpointSlices}
		if o.output == "json" {
			return printJSON(cmd.OutOrStdout(), res)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "restored %s into the cluster through the leader %s (now at index %d): %d services, %d endpoint slices\n",
			path, res.Peer, res.Index, res.Services, res.EndpointSlices)
		return nil
	})
	o.register(cmd)
	return cmd
}
