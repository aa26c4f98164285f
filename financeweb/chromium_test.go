package financeweb_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/financeweb"
)

// chromium is the browser the page is checked in: $CHROMIUM, else
// Debian's /usr/bin/chromium. Missing, it fails the test: a page nobody
// rendered is not tested.
func chromium(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("CHROMIUM")
	if bin == "" {
		bin = "/usr/bin/chromium"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("Chromium not found at %s (%v): install it with scripts/ensure-chromium.sh (as root: apt-get install chromium), or set CHROMIUM to a Chromium binary", bin, err)
	}
	return bin
}

// runChromium loads url headless with the flags the page is tested with
// plus extra, and returns its stdout.
func runChromium(t *testing.T, bin, url string, extra ...string) []byte {
	t.Helper()
	profile, err := os.MkdirTemp("", "financeweb-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: a browser helper still writing there must not fail the test.
	t.Cleanup(func() { _ = os.RemoveAll(profile) })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=" + profile,
		"--window-size=1280,1600"}, extra...)
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\nstderr:\n%s", strings.Join(extra, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

var (
	tags  = regexp.MustCompile(`<[^>]*>`)
	space = regexp.MustCompile(`\s+`)
)

// text is an element's text content, by id, from a serialised DOM: its
// tags dropped, blanks collapsed.
func text(t *testing.T, dom, id string) string {
	t.Helper()
	start := strings.Index(dom, `id="`+id+`"`)
	if start < 0 {
		t.Fatalf("the rendered DOM has no element with id %q:\n%s", id, dom)
	}
	start = strings.LastIndex(dom[:start], "<")
	name := strings.Fields(dom[start+1:])[0]
	end := strings.Index(dom[start:], "</"+name+">")
	if end < 0 {
		t.Fatalf("element %q is not closed", id)
	}
	s := tags.ReplaceAllString(dom[start:start+end], " ")
	return strings.TrimSpace(space.ReplaceAllString(s, " "))
}

// TestInChromium renders June's page in headless Chromium, logged in with
// the finance key in the URL (Basic auth): the DOM holds the roll-forward's
// figures, the identity check and the chart's labels, and the screenshot
// shows both series drawn inside the chart's plot areas, each spanning
// most of its width and moving up and down as the points did.
func TestInChromium(t *testing.T) {
	bin := chromium(t)
	f := newFixture(t)
	url := strings.Replace(f.url, "http://", "http://finance:"+f.finance+"@", 1) + "/finance/?from=2026-06-01&to=2026-07-01"

	dom := string(runChromium(t, bin, url, "--dump-dom"))
	table := text(t, dom, "roll-forward")
	for _, want := range []string{
		"Opening 12,000 120.00",
		"Movement issued stay 5,000 54.00 2",
		"Movement issued partner_award 1,000 12.00 1",
		"Movement redeemed travel_kit -4,000 -40.00 1",
		"Movement penalty no_show -500 -5.00 1",
		"Movement adjustment debit -300 -3.60 1",
		"Movements 1,200 17.40",
		"Revaluation 21.00",
		"Closing 13,200 158.40",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("the roll-forward table lacks %q:\n%s", want, table)
		}
	}
	identity := text(t, dom, "identity")
	for _, want := range []string{
		"Points: 12,000 opening + 1,200 movements = 13,200; closing 13,200 holds",
		"Money: 120.00 opening + 17.40 movements + 21.00 revaluation = 158.40; closing 158.40",
		"Balanced",
	} {
		if !strings.Contains(identity, want) {
			t.Errorf("the identity check lacks %q:\n%s", want, identity)
		}
	}
	if strings.Contains(identity, "NOT") {
		t.Errorf("the identity check fails: %s", identity)
	}
	// Daily samples: at least 10,500 points (June 12 to 15) and at most
	// 15,000 (June 5 to 10); the liability between 105.00 (10,500 x 0.01)
	// and 162.00 (13,500 x 0.012, June 22 to 25).
	for id, want := range map[string][]string{
		"panel-points":    {"max 15,000", "min 10,500"},
		"panel-liability": {"max 162.00 CNY", "min 105.00 CNY"},
	} {
		got := text(t, dom, id)
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("chart panel %s lacks %q: %s", id, w, got)
			}
		}
	}
	links := text(t, dom, "downloads")
	for _, want := range []string{"Trial balance", "Roll-forward by source", "Roll-forward by property", "Roll-forward by partner",
		"Partner settlement statements", "Book values of a point"} {
		if !strings.Contains(links, want) {
			t.Errorf("the downloads lack %q: %s", want, links)
		}
	}

	dir := t.TempDir()
	shot := filepath.Join(dir, "page.png")
	runChromium(t, bin, url, "--screenshot="+shot)
	if dst := os.Getenv("FINANCEWEB_SCREENSHOT"); dst != "" {
		if b, err := os.ReadFile(shot); err == nil {
			_ = os.WriteFile(dst, b, 0o644)
		}
	}
	img := readPNG(t, shot)
	plot, ok := boundingBox(img, image.Rectangle{}, func(r, g, b uint8) bool { return hexIs(financeweb.PlotColour, r, g, b, 0) })
	if !ok {
		t.Fatalf("no plot area (%s) in the screenshot %s", financeweb.PlotColour, shot)
	}
	// The plot areas are 800 px wide; each series crosses its own.
	if plot.Dx() < 700 || plot.Dy() < 300 {
		t.Fatalf("the plot areas cover %v, want two panels about 800 x 150 px", plot)
	}
	for _, s := range []struct {
		name, colour string
	}{{"points", financeweb.PointsColour}, {"liability", financeweb.LiabilityColour}} {
		is := func(r, g, b uint8) bool { return hexIs(s.colour, r, g, b, 40) }
		n := count(img, plot, is)
		box, _ := boundingBox(img, plot, is)
		t.Logf("%s series: %d pixels of %s in the plot areas %v, spanning %v", s.name, n, s.colour, plot, box)
		// A 3 px line across about 800 px is well over 1,500 pixels.
		if n < 1500 || box.Dx() < 700 || box.Dy() < 60 {
			t.Errorf("the %s series is not drawn: %d pixels of %s spanning %v (want >= 1500 pixels, >= 700 px wide, >= 60 px high); screenshot %s",
				s.name, n, s.colour, box, keep(t, shot))
		}
	}
}

// keep copies a screenshot that shows a failure where it survives the test.
func keep(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return path
	}
	out, err := os.CreateTemp("", "financeweb-*.png")
	if err != nil {
		return path
	}
	defer out.Close()
	if _, err := out.Write(b); err != nil {
		return path
	}
	return out.Name()
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	img, err := png.Decode(fh)
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	return img
}

// hexIs says whether r, g, b is within tol of the colour #rrggbb on every
// channel.
func hexIs(hex string, r, g, b uint8, tol int) bool {
	var want [3]int
	if _, err := fmt.Sscanf(hex, "#%02x%02x%02x", &want[0], &want[1], &want[2]); err != nil {
		panic(errors.New("bad colour " + hex))
	}
	for i, v := range []uint8{r, g, b} {
		if d := int(v) - want[i]; d > tol || d < -tol {
			return false
		}
	}
	return true
}

func rgb(img image.Image, x, y int) (uint8, uint8, uint8) {
	r, g, b, _ := img.At(x, y).RGBA()
	return uint8(r >> 8), uint8(g >> 8), uint8(b >> 8)
}

// boundingBox is the smallest rectangle, within in (empty: the whole
// image), holding every pixel that matches.
func boundingBox(img image.Image, in image.Rectangle, match func(r, g, b uint8) bool) (image.Rectangle, bool) {
	if in.Empty() {
		in = img.Bounds()
	}
	box, found := image.Rectangle{}, false
	for y := in.Min.Y; y < in.Max.Y; y++ {
		for x := in.Min.X; x < in.Max.X; x++ {
			if match(rgb(img, x, y)) {
				p := image.Rect(x, y, x+1, y+1)
				if !found {
					box, found = p, true
				} else {
					box = box.Union(p)
				}
			}
		}
	}
	return box, found
}

func count(img image.Image, in image.Rectangle, match func(r, g, b uint8) bool) int {
	n := 0
	for y := in.Min.Y; y < in.Max.Y; y++ {
		for x := in.Min.X; x < in.Max.X; x++ {
			if match(rgb(img, x, y)) {
				n++
			}
		}
	}
	return n
}
