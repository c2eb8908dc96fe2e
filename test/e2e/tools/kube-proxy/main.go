// Command kube-proxy is the upstream service proxy (iptables mode): it sends
// the kube-dns ClusterIP to the ready kdnsd pods.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-proxy/app"
)

func main() {
	os.Exit(cli.Run(app.NewProxyCommand()))
}
