#!/usr/bin/env bash
# Channel webhooks under load (issue 8): how fast natter answers a provider.
#   bash benches/channels.sh [SECONDS]
# Builds the release binary, starts it on a fresh data folder and drives it
# with wrk (Debian's wrk): new customer messages through the API channel
# (one durable write each) and a Twilio webhook retried over and over (the
# signature check and the duplicate path). Prints wrk's latency tables.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
command -v wrk >/dev/null || { echo "wrk is required (apt install wrk)" >&2; exit 1; }
cargo build --release --quiet
data=$(mktemp -d)
log=$(mktemp)
NATTER_ADMIN_EMAIL=bench@example.com NATTER_ADMIN_PASSWORD=bench-password \
NATTER_WEBHOOKS_ALLOW_PRIVATE=1 NATTER_CONTACT_MESSAGES_PER_MINUTE=0 \
NATTER_CONNECTIONS_PER_ADDRESS=0 RUST_LOG=warn,natter=info \
NATTER_METRICS_TOKEN=bench-metrics-token-0123 \
    target/release/natter serve --data "$data" --bind 127.0.0.1:0 >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data" "$log"' EXIT
for _ in $(seq 1 100); do grep -q "listening on" "$log" && break; sleep 0.1; done
base=$(grep -o 'listening on http://[0-9.:]*' "$log" | head -1 | sed 's/listening on //')
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
token=$(curl -s "$base/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"email":"bench@example.com","password":"bench-password"}' | json '["token"]')
api=$(curl -s "$base/api/v1/inboxes" -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"name":"Bench app","channel":"api","settings":{}}')
api_id=$(echo "$api" | json '["id"]')
export NATTER_API_TOKEN=$(echo "$api" | json '["api_token"]')
sms_id=$(curl -s "$base/api/v1/inboxes" -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"name":"Bench SMS","channel":"sms","settings":{"account_sid":"AC1","auth_token":"tok","from":"+15550000","api_base":"http://127.0.0.1:9"}}' | json '["id"]')
export NATTER_TWILIO_BODY="MessageSid=SMbench&From=%2B15551234567&Body=hello"
export NATTER_TWILIO_SIGNATURE=$(python3 - "$base/hooks/twilio/$sms_id" <<'PY'
import base64, hashlib, hmac, sys
url = sys.argv[1]
params = sorted([("MessageSid", "SMbench"), ("From", "+15551234567"), ("Body", "hello")])
data = url + "".join(k + v for k, v in params)
print(base64.b64encode(hmac.new(b"tok", data.encode(), hashlib.sha1).digest()).decode())
PY
)
# The first delivery stores the message; the bench then measures retries.
curl -s -o /dev/null -w "first Twilio delivery: %{http_code}\n" "$base/hooks/twilio/$sms_id" \
    -H "x-twilio-signature: $NATTER_TWILIO_SIGNATURE" --data "$NATTER_TWILIO_BODY"
echo "## API channel: new customer messages (2 threads, 32 connections, ${secs}s)"
wrk -t2 -c32 -d"${secs}s" --latency -s benches/channels/api.lua "$base/api/v1/channels/api/$api_id/messages"
echo "## Twilio webhook retried (2 threads, 32 connections, ${secs}s)"
wrk -t2 -c32 -d"${secs}s" --latency -s benches/channels/twilio.lua "$base/hooks/twilio/$sms_id"
echo "messages stored: $(curl -s -H 'Authorization: Bearer bench-metrics-token-0123' "$base/metrics" | grep 'natter_messages_created_total{author="contact"}')"
