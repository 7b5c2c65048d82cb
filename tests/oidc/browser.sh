#!/bin/sh
# $BROWSER for kube-dc's login tests: a real headless Chromium signs in.
# Runs in the background, as a desktop browser would, so kube-dc keeps
# listening for the callback.
dir=$(dirname "$0")
node "$dir/browser.mjs" "$1" >>"${BROWSER_LOG:-/dev/null}" 2>&1 &
