// Command kube-apiserver is the upstream Kubernetes API server at the version
// pinned in this module's go.mod: the control plane of the e2e node.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
