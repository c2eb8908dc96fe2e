// Command kubelet is the upstream node agent: it runs the e2e pods through
// containerd and writes their resolv.conf from its clusterDNS setting.
package main

import (
	"context"
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	os.Exit(cli.Run(app.NewKubeletCommand(context.Background())))
}
