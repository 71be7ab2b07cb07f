#!/usr/bin/env bash
# The relay's pages and the files they load: an allow-list served from the
# --www directory with the right Content-Type, Content-Length and
# Cache-Control; nothing else of the file system, whatever the path says
# (.., %2e%2e, absolute, NUL); without the npm packages the relay still runs
# and says what is missing.
. "$(dirname "$0")/lib.sh"
need curl jq cmp /usr/bin/python3
D=$(cd "$(dirname "$0")" && pwd)
WWW=$(cd "$D/../www" && pwd)
[ -f "$WWW/node_modules/mpegts.js/dist/mpegts.js" ] && [ -f "$WWW/node_modules/uplot/dist/uPlot.iife.min.js" ] ||
	die "the npm packages are not installed in $WWW/node_modules: run scripts/quickstart.sh (npm ci there)"

start_relay --listen 127.0.0.1:0 --ingest 127.0.0.1:0 --www "$WWW"
B="http://127.0.0.1:$LPORT"

# URL  FILE (under the data dir)  Content-Type  Cache-Control
while read -r url file ctype cache; do
	curl -sS -D "$W/h" -o "$W/body" "$B$url" || { fail "GET $url"; continue; }
	st=$(head -n1 "$W/h" | cut -d' ' -f2)
	hct=$(sed -n 's/^Content-Type: \(.*\)\r$/\1/p' "$W/h")
	hcl=$(sed -n 's/^Content-Length: \(.*\)\r$/\1/p' "$W/h")
	hcc=$(sed -n 's/^Cache-Control: \(.*\)\r$/\1/p' "$W/h")
	check "GET $url: 200 $ctype, Cache-Control $cache, the bytes of $file" \
		test "$st|$hct|$hcc|$hcl" = "200|$ctype; charset=utf-8|$cache|$(stat -c %s "$WWW/$file")"
	check "GET $url: body equals $file" cmp -s "$W/body" "$WWW/$file"
done <<'LIST'
/watch/tv watch.html text/html no-cache
/messages/chat.room-1_x messages.html text/html no-cache
/dashboard dashboard.html text/html no-cache
/www/relay.css relay.css text/css no-cache
/www/pages.js pages.js text/javascript no-cache
/www/watch.js watch.js text/javascript no-cache
/www/messages.js messages.js text/javascript no-cache
/www/dashboard.js dashboard.js text/javascript no-cache
/www/lib/mpegts.js node_modules/mpegts.js/dist/mpegts.js text/javascript public, max-age=3600
/www/lib/uPlot.iife.min.js node_modules/uplot/dist/uPlot.iife.min.js text/javascript public, max-age=3600
/www/lib/uPlot.min.css node_modules/uplot/dist/uPlot.min.css text/css public, max-age=3600
LIST

# The pages carry a Content-Security-Policy: only the relay's own files and
# connections (what they break is a console error in relay_browser_*).
for p in /watch/tv /messages/chat /dashboard; do
	curl -sS -D "$W/h" -o /dev/null "$B$p"
	check "GET $p: Content-Security-Policy default-src 'none', script-src 'self', connect-src 'self'" \
		bash -c "grep -q \"^Content-Security-Policy: default-src 'none'; script-src 'self';.* connect-src 'self';\" '$W/h'"
done

# HEAD: the same head, no body.
curl -sS -I -o "$W/hh" "$B/dashboard"
check "HEAD /dashboard: 200 with the page's Content-Length" \
	grep -q "^Content-Length: $(stat -c %s "$WWW/dashboard.html")"$'\r'"\$" "$W/hh"

# Nothing but the list: every path that names another file, or escapes the
# directory, is a 404 (or 400 for a bad topic name), never a file.
code() { curl -sS --path-as-is -o "$W/body" -w '%{http_code}' "$B$1"; }
for p in /www/ /www /www/lib/ /www/lib/mpegts.js.map /www/node_modules/mpegts.js/package.json \
	/www/package.json /watch.html /www/watch.html /www/../CMakeLists.txt /www/../../relay.c \
	/www/%2e%2e/relay.c /www/%2E%2E/%2E%2E/CMakeLists.txt /www/lib/..%2f..%2fpackage.json \
	//etc/passwd /www//etc/passwd /etc/passwd /www/relay.css%00 /www/relay.css%00.html \
	/www/relay.css/ /www/relay.css/. /www/./relay.css /dashboard/ /dashboard/x /dashboard.html \
	/www/RELAY.CSS /favicon.ico; do
	c=$(code "$p")
	check "GET $p: 404 ($c)" test "$c" = 404
done
for p in /watch/ /watch/.. /watch/. /watch/../../etc/passwd /watch/%2e%2e /watch/..%2f..%2fetc%2fpasswd \
	/messages/.. /messages/a/b /messages/%00 "/watch/a%20b" /watch/$(printf 'x%.0s' $(seq 129)); do
	c=$(code "$p")
	check "GET $p: 400 ($c)" test "$c" = 400
done
# A query string is not part of the path.
check "GET /dashboard?x=../../etc/passwd: the dashboard" \
	test "$(code '/dashboard?x=../../etc/passwd')" = 200
cmp -s "$W/body" "$WWW/dashboard.html" || fail "the dashboard with a query string is not the page"
# Absolute-form targets and raw bytes the request line may not hold.
raw() { # raw REQUEST-BYTES (printf format) -> the status line's code
	/usr/bin/python3 - "$LPORT" "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
data = b""
while b"\r\n" not in data:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(data.split(b" ")[1].decode() if data.count(b" ") else "none")
PY
}
check "absolute-form http://x/../../etc/passwd: 404" \
	test "$(raw 'GET http://x/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n')" = 404
check "absolute-form http://x/www/relay.css: served" \
	test "$(raw 'GET http://x/www/relay.css HTTP/1.1\r\nHost: x\r\n\r\n')" = 200
check "a NUL byte in the path: 400" \
	test "$(raw 'GET /www/relay.css\x00.html HTTP/1.1\r\nHost: x\r\n\r\n')" = 400
check "a raw ../ in the path: 404" \
	test "$(raw 'GET /www/lib/../../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n')" = 404
for m in POST PUT DELETE; do
	c=$(curl -sS -o /dev/null -w '%{http_code}' -X "$m" "$B/dashboard")
	check "$m /dashboard: 405 ($c)" test "$c" = 405
done
check "stats: the relay still answers" test "$(stat_field subscribers)" = 0
stop_relay

# A data directory with our pages but no npm packages: the relay runs, the
# pages are served, the packages' files are a 404 that says what is missing,
# and the relay's log says it at start.
mkdir "$W/bare"
cp "$WWW"/*.html "$WWW"/*.js "$WWW"/*.css "$W/bare/"
start_relay --listen 127.0.0.1:0 --ingest 127.0.0.1:0 --www "$W/bare"
B="http://127.0.0.1:$LPORT"
check "without the packages: GET /watch/tv is the page" test "$(code /watch/tv)" = 200
c=$(code /www/lib/mpegts.js)
check "without the packages: /www/lib/mpegts.js is a 404 ($c)" test "$c" = 404
check "... saying that npm package mpegts.js is not installed" \
	grep -q 'npm package mpegts.js is not installed' "$W/body"
check "without the packages: /www/lib/uPlot.iife.min.js is a 404" test "$(code /www/lib/uPlot.iife.min.js)" = 404
check "the relay's log names the missing packages" \
	bash -c "grep -q 'npm package mpegts.js is not installed' '$W/relay.log' && grep -q 'npm package uplot is not installed' '$W/relay.log'"
# (what the pages then say, in a browser: relay_browser_*, browser.py --missing)
stop_relay

# A --www that does not exist: the relay runs; the pages say where it looked.
start_relay --listen 127.0.0.1:0 --ingest 127.0.0.1:0 --www "$W/nowhere"
B="http://127.0.0.1:$LPORT"
check "--www DIR missing: GET /dashboard is a 404" test "$(code /dashboard)" = 404
check "... saying where the page was looked for" grep -q "dashboard.html is not in $W/nowhere" "$W/body"
check "--www DIR missing: /stats works" test "$(stat_field subscribers)" = 0
stop_relay
finish
