// Package e2e runs kdnsd as the cluster DNS of a real single-node Kubernetes:
// `make e2e` (run.sh) builds the node's components (build.sh), brings the
// node up in a private network namespace (node.sh), and runs this package's
// tests, which carry the build tag e2e so that `go test ./...` never starts
// them. The tests install deploy/statefulset with `kubectl apply -k` as an
// operator does and measure what a pod's DNS client sees while kdnsd is
// rolled, killed, scaled and cut off from the API server.
package e2e
