#!/usr/bin/env bash
# ensure-statement-tools.sh makes sure what the member statement's PDF needs
# is installed. `make test` calls it first, like ensure-chromium.sh:
#
#   - the CJK font loyaltyd embeds in PDF statements (Debian's
#     fonts-droid-fallback: DroidSansFallbackFull.ttf, Apache 2.0), where
#     the test and loyaltyd look for it: $LOYALTY_STATEMENT_FONT, else
#     /usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf;
#   - pdftotext and pdftoppm (Debian's poppler-utils), which the statements
#     test reads and renders the PDF with.
#
# If both are there it prints nothing and exits 0. If not, it installs the
# missing Debian packages when it can (root with apt-get), and otherwise
# says what to install and exits 1. With --font-only (make run) it sees to
# the font alone: the service runs without it, answering PDF exports with
# what to install.
set -euo pipefail

font_only=false
if [[ "${1:-}" == "--font-only" ]]; then
	font_only=true
fi

me="ensure-statement-tools"
font="${LOYALTY_STATEMENT_FONT:-/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf}"

missing=()
if [[ ! -f "$font" ]]; then
	if [[ -n "${LOYALTY_STATEMENT_FONT:-}" ]]; then
		# Like loyaltyd: an explicit font is used as is, never second-guessed.
		echo "$me: LOYALTY_STATEMENT_FONT=$font is not a file: set it to a TrueType font with CJK glyphs, or unset it." >&2
		exit 1
	fi
	missing+=(fonts-droid-fallback)
fi
if ! $font_only && { ! command -v pdftotext >/dev/null 2>&1 || ! command -v pdftoppm >/dev/null 2>&1; }; then
	missing+=(poppler-utils)
fi
if [[ ${#missing[@]} -eq 0 ]]; then
	exit 0
fi

if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
	echo "$me: installing ${missing[*]} with apt-get..." >&2
	export DEBIAN_FRONTEND=noninteractive
	# apt output goes to stderr so that stdout stays clean for callers.
	# Wait for the dpkg lock rather than failing if another apt is running.
	apt-get -q -o DPkg::Lock::Timeout=300 update >&2 ||
		echo "$me: apt-get update failed; trying the install anyway" >&2
	apt-get -q -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${missing[@]}" >&2 ||
		echo "$me: apt-get install reported an error; checking whether the files arrived anyway" >&2
	if [[ -f "$font" ]] && { $font_only || { command -v pdftotext >/dev/null 2>&1 && command -v pdftoppm >/dev/null 2>&1; }; }; then
		echo "$me: ${missing[*]} installed." >&2
		exit 0
	fi
	echo "$me: installed ${missing[*]}, but $font, pdftotext or pdftoppm is still missing." >&2
	exit 1
fi

cat >&2 <<EOT
$me: missing ${missing[*]} (the font $font, pdftotext, pdftoppm).
Install them with:

    sudo apt-get install ${missing[*]}        # Debian

or set LOYALTY_STATEMENT_FONT to a TrueType font with CJK glyphs.
EOT
exit 1
