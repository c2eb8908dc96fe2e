package chaos

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// A slow disk, made honestly: every replica's data dir is on an ext4
// filesystem on a loop device of its own, and the replica runs in a blkio
// cgroup (v1) of its own. Throttling caps the write requests its process
// issues to its device (bbolt's fdatasync, the record store's), as a slow or
// saturated disk does; reads and the other replicas are untouched.
const blkioRoot = "/sys/fs/cgroup/blkio"

// diskSize is each replica's filesystem: room for the Raft log and
// snapshots of a scenario.
const diskSize = 256 << 20

// disksUnavailable says why slow disks cannot be made here, or "".
func disksUnavailable() string {
	if _, err := os.Stat(filepath.Join(blkioRoot, "cgroup.procs")); err != nil {
		return "no blkio cgroup (v1) hierarchy at " + blkioRoot + " to throttle a replica's writes"
	}
	for _, tool := range []string{"losetup", "mkfs.ext4", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "slow disks need " + tool + ", which is not installed"
		}
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		return "no loop devices here (/dev/loop-control)"
	}
	return ""
}

// disks are the replicas' loop devices, mounts and cgroups.
type disks struct {
	loops, mounts, cgroups []string
}

// newDisks makes n disks under dir; close undoes whatever it made.
func newDisks(dir string, n int) (*disks, error) {
	ds := &disks{}
	for i := range n {
		img := filepath.Join(dir, fmt.Sprintf("disk%d.img", i))
		f, err := os.Create(img)
		if err == nil {
			err = errors.Join(f.Truncate(diskSize), f.Close())
		}
		if err != nil {
			ds.close()
			return nil, err
		}
		out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
		if err != nil {
			ds.close()
			return nil, fmt.Errorf("losetup %s: %v: %s", img, err, out)
		}
		loop := strings.TrimSpace(string(out))
		ds.loops = append(ds.loops, loop)
		mnt := filepath.Join(dir, fmt.Sprintf("disk%d", i))
		if err := os.Mkdir(mnt, 0o755); err != nil {
			ds.close()
			return nil, err
		}
		if err := runAll([][]string{{"mkfs.ext4", "-q", loop}, {"mount", loop, mnt}}); err != nil {
			ds.close()
			return nil, err
		}
		ds.mounts = append(ds.mounts, mnt)
		cg := filepath.Join(blkioRoot, fmt.Sprintf("kdnsd-chaos-%d-%d", os.Getpid(), i))
		if err := os.Mkdir(cg, 0o755); err != nil {
			ds.close()
			return nil, err
		}
		ds.cgroups = append(ds.cgroups, cg)
	}
	return ds, nil
}

// dataDir is where replica i keeps its data: on its disk.
func (ds *disks) dataDir(i int, id string) string { return filepath.Join(ds.mounts[i], id) }

// throttle caps the writes of replica i's process to its disk at iops
// requests a second; 0 lifts the cap.
func (ds *disks) throttle(i, iops int) error {
	dev, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(ds.loops[i]), "dev"))
	if err != nil {
		return err
	}
	rule := fmt.Sprintf("%s %d", strings.TrimSpace(string(dev)), iops)
	return os.WriteFile(filepath.Join(ds.cgroups[i], "blkio.throttle.write_iops_device"), []byte(rule), 0o644)
}

// close unmounts and detaches the disks and removes the cgroups; the
// replicas must have exited.
func (ds *disks) close() {
	for _, m := range ds.mounts {
		exec.Command("umount", m).Run()
	}
	for _, l := range ds.loops {
		exec.Command("losetup", "--detach", l).Run()
	}
	for _, cg := range ds.cgroups {
		os.Remove(cg)
	}
}
