#!/usr/bin/env bash
# Installs the system packages smollab uses: a small TeX (paper.pdf), bubblewrap and util-linux's
# prlimit (the code sandbox).
# Without root or apt it says what to install and carries on: the study then skips the PDF.
set -u
TEX_PKGS="latexmk texlive-latex-base texlive-latex-recommended texlive-fonts-recommended"
PKGS="$TEX_PKGS bubblewrap util-linux"
missing=""
command -v latexmk >/dev/null 2>&1 || missing="$missing tex"
command -v bwrap >/dev/null 2>&1 || missing="$missing bwrap"
[ -x /usr/bin/prlimit ] || missing="$missing prlimit"
if [ -z "$missing" ]; then
  echo "system packages: TeX, bubblewrap and prlimit present"
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "system packages: installing $PKGS (apt-get, a few minutes the first time)"
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq >/dev/null && \
     apt-get install -y -qq --no-install-recommends $PKGS >/dev/null; then
    echo "system packages: installed"
  else
    echo "system packages: apt-get failed; continuing without them (no paper.pdf)" >&2
  fi
else
  echo "system packages: not root or no apt-get; install these yourself for paper.pdf and" \
       "the sandbox: $PKGS (Debian/Ubuntu names). Continuing without them." >&2
fi
exit 0
