package chaos

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReport: a passing and a failing hand-made scenario give a CHAOS.md
// with a PASS/FAIL cell per property, a chaos.json that reads back, and a
// PNG timeline each.
func TestReport(t *testing.T) {
	dir := t.TempDir()
	good, bad := healthy(), healthy()
	bad.Scenario = "broken"
	bad.Answers = append(bad.Answers, answer("r2", "a", 16, 8, 0, "10.6.6.6"))
	var reports []ScenarioReport
	for _, h := range []*History{good, bad} {
		png, err := Timeline(h, dir)
		if err != nil {
			t.Fatal(err)
		}
		reports = append(reports, ScenarioReport{Result: Check(h, testBounds), About: "hand-made", Hold: "10s", Timeline: png, Events: relative(h)})
	}
	if err := WriteReport(filepath.Join(dir, "CHAOS.md"), dir, Run{Profile: "short", Command: localCommand("short", 3), Setting: localSetting}, testBounds, reports); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "CHAOS.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| hand-made | PASS | PASS | PASS | PASS | PASS | PASS |",
		"| broken | PASS | **FAIL** | PASS | PASS | PASS | PASS |",
		"![broken](./broken.png)",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("CHAOS.md lacks %q:\n%s", want, md)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "chaos.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back struct{ Scenarios []ScenarioReport }
	if err := json.Unmarshal(raw, &back); err != nil || len(back.Scenarios) != 2 || back.Scenarios[1].Passed() {
		t.Fatalf("chaos.json: %v %+v", err, back)
	}
	for _, r := range reports {
		f, err := os.Open(filepath.Join(dir, r.Timeline))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Dx() < 500 {
			t.Fatalf("%s: %v %v", r.Timeline, err, img)
		}
	}
}
