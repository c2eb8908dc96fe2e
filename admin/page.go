package admin

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
	"time"
)

// The status page: GET / on the admin listeners, an HTML page (html/template,
// no script) with what `kdnsd status`, `peers list` and `config show` print
// for the replica that serves it. It needs the same credentials as the rest
// of the API; it refreshes itself every refreshSeconds (a meta tag), and
// forbids scripts and framing (Content-Security-Policy).

//go:embed page.html.tmpl
var pageSource string

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"yesNo": func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	},
	"ms": func(p *int64) string {
		if p == nil {
			return "-"
		}
		return (time.Duration(*p) * time.Millisecond).String()
	},
}).Parse(pageSource))

const refreshSeconds = 5

type pageData struct {
	Status    Status
	Peers     PeersResponse
	PeersErr  string
	Config    DNSConfigResponse
	Refresh   int
	Generated string
}

func (s *Server) handlePage(w http.ResponseWriter, r *http.Request) {
	d := pageData{Status: s.status(), Refresh: refreshSeconds, Generated: time.Now().UTC().Format(time.RFC3339)}
	d.Config = NewDNSConfigResponse(s.id, s.cfg.FlagDNSConfig, s.cfg.Views.View().Config())
	var err error
	if d.Peers, err = s.gatherPeers(r.Context()); err != nil {
		d.PeersErr = err.Error()
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, &d); err != nil {
		writeError(w, http.StatusInternalServerError, "status page: %v", err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}
