-- wrk: Twilio retrying one signed webhook over and over (the duplicate
-- path: verify the signature, find the MessageSid, answer 200).
wrk.method = "POST"
wrk.body = os.getenv("NATTER_TWILIO_BODY")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["X-Twilio-Signature"] = os.getenv("NATTER_TWILIO_SIGNATURE")
