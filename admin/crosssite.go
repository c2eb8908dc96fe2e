package admin

import (
	"fmt"
	"mime"
	"net"
	"net/http"
)

// refuseCrossSite refuses what a web page in an operator's browser could
// send to the admin API of another site, such as a loopback address or a
// kubectl port-forward, where no credential stops it (a client certificate
// is sent by a browser on its own, too):
//
//   - a request of a method that changes state (not GET, HEAD or OPTIONS)
//     that the browser marks cross-origin (Sec-Fetch-Site, or an Origin
//     other than the Host), as http.CrossOriginProtection judges;
//   - such a request without Content-Type: application/json and without
//     HeaderClient. A page can send neither to another site without a CORS
//     preflight, which this API never allows; this also covers browsers
//     that send neither Sec-Fetch-Site nor Origin.
func (s *Server) refuseCrossSite(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := cop.Check(r); err != nil {
			s.refuse(w, r, http.StatusForbidden, "cross-site request refused: "+err.Error())
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if !isJSON(r.Header.Get("Content-Type")) && r.Header.Get(HeaderClient) == "" {
				s.refuse(w, r, http.StatusForbidden, fmt.Sprintf(
					"a %s request needs Content-Type: application/json or the %s header (which a web page cannot send to another site)", r.Method, HeaderClient))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func isJSON(contentType string) bool {
	media, _, err := mime.ParseMediaType(contentType)
	return err == nil && media == "application/json"
}

// checkHost refuses, over plain HTTP, a request addressed to anything but a
// loopback address. A web page can reach a loopback port through a name of
// its own site that it points there (DNS rebinding): the browser then sees
// the same origin and sends anything, but names that site in Host. Over
// HTTPS the certificate does not match such a name, and the token is not
// sent by a browser on its own.
func (s *Server) checkHost(r *http.Request) (int, string) {
	if s.scheme != "http" {
		return 0, ""
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if !IsLoopback(host) {
		return http.StatusForbidden, fmt.Sprintf("request for host %q refused: over plain HTTP the admin API answers only requests addressed to localhost or a loopback IP", r.Host)
	}
	return 0, ""
}
