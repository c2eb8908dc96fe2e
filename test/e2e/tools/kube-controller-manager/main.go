// Command kube-controller-manager is the upstream controller manager: on the
// e2e node it runs the StatefulSet, EndpointSlice and PV controllers kdnsd's
// manifest depends on.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
