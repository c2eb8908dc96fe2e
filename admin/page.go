package admin

import (
	"bytes"
	"fmt"
	"html"
	"net/http"
	"time"
)

// The status page: GET / on the admin listeners, an HTML page (no script)
// with what `kdnsd status`, `peers list` and `config show` print for the
// replica that serves it. It needs the same credentials as the rest of the
// API; it refreshes itself every refreshSeconds (a meta tag), and forbids
// scripts and framing (Content-Security-Policy).
//
// The page is written out here rather than executed from an html/template:
// text/template calls methods by name through reflect, and once any
// template can execute, the linker keeps every exported method of every
// type in the binary. Without it kdnsd's binary is 54 MB instead of 94 MB,
// and an idle replica holds 9.5 MB less of it in memory (BENCHMARKS.md);
// TestBinaryKeepsDeadCodeElimination in cmd/kdnsd keeps it so.

const refreshSeconds = 5

const pageStyle = `body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { text-align: left; padding: 0.2em 0.8em; border-bottom: 1px solid #ddd; vertical-align: top; }
th { background: #f4f4f4; }
.bad { color: #a00; }
.ok { color: #070; }
pre { margin: 0; white-space: pre-wrap; }`

// page is the status page being written: raw writes markup, text a value,
// escaped.
type page struct{ bytes.Buffer }

func (p *page) raw(markup ...string) {
	for _, m := range markup {
		p.WriteString(m)
	}
}

func (p *page) text(v any) { p.WriteString(html.EscapeString(fmt.Sprint(v))) }

// cells writes a td cell of each value, escaped.
func (p *page) cells(values ...any) {
	for _, v := range values {
		p.raw("<td>")
		p.text(v)
		p.raw("</td>")
	}
}

// field writes a row of the replica's table: a heading and a value.
func (p *page) field(name string, v any) {
	p.raw("<tr><th>", name, "</th><td>")
	p.text(v)
	p.raw("</td></tr>\n")
}

// YesNo is how the status page and the CLI's tables show a flag.
func YesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// LastContact is how the status page and the CLI's tables show a peer's
// time since it heard from the leader (Peer.LastContactMS): "-" when unknown.
func LastContact(ms *int64) string {
	if ms == nil {
		return "-"
	}
	return (time.Duration(*ms) * time.Millisecond).String()
}

// writePage writes the page of a replica in status st, whose peers are
// peers (or peersErr where they could not be gathered), and whose DNS
// configuration is cfg.
func writePage(p *page, st Status, peers PeersResponse, peersErr error, cfg DNSConfigResponse, generated string) {
	p.raw("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
	p.raw(fmt.Sprintf("<meta http-equiv=\"refresh\" content=\"%d\">\n", refreshSeconds))
	p.raw("<title>kdnsd ")
	p.text(st.ID)
	p.raw("</title>\n<style>\n", pageStyle, "\n</style>\n</head>\n<body>\n<h1>kdnsd ")
	p.text(st.ID)
	p.raw("</h1>\n<p>")
	p.text(st.State)
	p.raw(", term ")
	p.text(st.Term)
	p.raw("; leader ")
	if st.LeaderID != "" {
		p.text(st.LeaderID)
		p.raw(" (")
		p.text(st.LeaderAddress)
		p.raw(")")
	} else {
		p.raw(`<span class="bad">none</span>`)
	}
	p.raw(". Generated ")
	p.text(generated)
	p.raw(fmt.Sprintf(", refreshed every %d s.</p>\n", refreshSeconds))

	p.raw("\n<h2>This replica</h2>\n<table id=\"status\">\n")
	p.field("voter", YesNo(st.Voter))
	p.field("admission", st.Admission)
	p.field("last contact", LastContact(st.LastContactMS))
	p.field("commit index", st.CommitIndex)
	p.field("applied index", st.AppliedIndex)
	p.field("served index", st.ServedIndex)
	p.field("services", st.Services)
	p.field("endpoint slices", st.EndpointSlices)
	p.field("watcher", st.Watcher)
	p.field("max command format", st.MaxCommandVersion)
	if st.ApplyBlocked != "" {
		p.raw(`<tr><th>applying</th><td class="bad">`)
		p.text(st.ApplyBlocked)
		p.raw("</td></tr>\n")
	}
	p.raw("</table>\n\n<h2>Peers</h2>\n")
	if peersErr != nil {
		p.raw(`<p class="bad">`)
		p.text(peersErr)
		p.raw("</p>\n")
	} else {
		p.raw("<table id=\"peers\">\n<tr><th>id</th><th>raft address</th><th>voter</th><th>leader</th><th>state</th>" +
			"<th>term</th><th>applied</th><th>served</th><th>format</th><th>health</th></tr>\n")
		for _, peer := range peers.Peers {
			p.raw("<tr>")
			p.cells(peer.ID, peer.Address, YesNo(peer.Voter), YesNo(peer.Leader), peer.State, peer.Term,
				peer.AppliedIndex, peer.ServedIndex, peer.MaxCommandVersion)
			switch {
			case peer.Healthy:
				p.raw(`<td><span class="ok">healthy</span></td>`)
			case peer.Problem != "":
				p.raw(`<td><span class="bad">`)
				p.text(peer.Problem)
				p.raw("</span></td>")
			default:
				p.raw(`<td><span class="bad">?</span></td>`)
			}
			p.raw("</tr>\n")
		}
		p.raw("</table>\n")
	}

	p.raw("\n<h2>DNS configuration</h2>\n<p>In force: ")
	p.text(cfg.Source)
	if cfg.Index != 0 {
		p.raw(", committed at raft index ")
		p.text(cfg.Index)
	}
	p.raw(".</p>\n<table id=\"config\">\n<tr><th>key</th><th>value</th><th>from</th></tr>\n")
	for _, s := range cfg.Settings {
		p.raw("<tr>")
		p.cells(s.Key, s.Value, s.From)
		p.raw("</tr>\n")
	}
	p.raw("</table>\n")
	if len(cfg.Records) > 0 {
		p.raw("<h3>Custom records</h3>\n<pre id=\"records\">")
		for _, r := range cfg.Records {
			p.text(r)
			p.raw("\n")
		}
		p.raw("</pre>\n")
	}
	if cfg.Error != "" {
		p.raw(`<h3 class="bad">Refused: `)
		p.text(cfg.Rejected)
		p.raw("</h3>\n<pre class=\"bad\" id=\"refused\">")
		p.text(cfg.Error)
		p.raw("</pre>\n<p>The configuration above stays in force.</p>\n")
	}
	p.raw("</body>\n</html>\n")
}

func (s *Server) handlePage(w http.ResponseWriter, r *http.Request) {
	cfg := NewDNSConfigResponse(s.id, s.cfg.FlagDNSConfig, s.cfg.Views.View().Config())
	peers, err := s.gatherPeers(r.Context())
	var p page
	writePage(&p, s.status(), peers, err, cfg, time.Now().UTC().Format(time.RFC3339))
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.Write(p.Bytes())
}
