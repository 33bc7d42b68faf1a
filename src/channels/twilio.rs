//! SMS through Twilio: form webhooks signed with `X-Twilio-Signature`
//! (HMAC-SHA1 of the URL plus the sorted form fields, keyed by the auth
//! token), the Messages REST call, and status callbacks.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};

use super::settings::{get, Setting};
use super::{
    header, status_error, transport_error, BoxFuture, Channel, HookError, HookReply, HookRequest,
    Inbound, Media, Outgoing, Parsed, SendError, Sent, StatusUpdate,
};
use crate::store::{DeliveryStatus, InboxRecord, MediaRef};

/// The Twilio adapter.
pub struct Twilio;

const SETTINGS: &[Setting] = &[
    Setting::text("account_sid", "Account SID"),
    Setting::secret("auth_token", "Auth token"),
    Setting::text("from", "From number").optional(),
    Setting::text("messaging_service_sid", "Messaging service SID").optional(),
    Setting::api_base("https://api.twilio.com"),
];

/// Twilio's signature: base64(HMAC-SHA1(auth_token, url + k1 + v1 + k2 + v2 ...))
/// with the form fields sorted by name.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()) else {
        return String::new();
    };
    mac.update(data.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

fn field<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn map_status(s: &str) -> Option<DeliveryStatus> {
    Some(match s {
        "queued" | "accepted" | "scheduled" => DeliveryStatus::Queued,
        "sending" | "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "failed" | "undelivered" | "canceled" => DeliveryStatus::Failed,
        _ => return None,
    })
}

impl Channel for Twilio {
    fn kind(&self) -> super::ChannelKind {
        super::ChannelKind::Sms
    }

    fn addresses_are_phone_numbers(&self) -> bool {
        true
    }

    fn status_callbacks(&self) -> bool {
        true
    }

    fn carries_reply_notifications(&self) -> bool {
        true
    }

    fn check_settings(
        &self,
        settings: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(), crate::domain::Invalid> {
        if get(settings, "from").is_empty() && get(settings, "messaging_service_sid").is_empty() {
            return Err(crate::domain::Invalid::new(
                "settings",
                "settings.from or settings.messaging_service_sid is required",
            ));
        }
        Ok(())
    }

    fn hook(&self) -> Option<&'static str> {
        Some("twilio")
    }

    fn settings(&self) -> &'static [Setting] {
        SETTINGS
    }

    fn parse_hook(&self, inbox: &InboxRecord, req: &HookRequest<'_>) -> Result<Parsed, HookError> {
        if req.method != "POST" {
            return Err(HookError::BadRequest("Twilio webhooks are POSTs".into()));
        }
        let params: Vec<(String, String)> = serde_urlencoded::from_bytes(req.body)
            .map_err(|_| HookError::BadRequest("the body is not a form".into()))?;
        let given = header(req.headers, "x-twilio-signature").unwrap_or("");
        let expected = signature(get(&inbox.settings, "auth_token"), &req.url, &params);
        if given.is_empty() || expected.is_empty() || !super::secret_eq(given, &expected) {
            return Err(HookError::Unauthorized(
                "X-Twilio-Signature does not verify".into(),
            ));
        }
        let twiml = HookReply::Body(
            "text/xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>".into(),
        );
        let mut out = Parsed::reply(twiml);
        let sid = field(&params, "MessageSid").or_else(|| field(&params, "SmsSid"));
        if req.sub == "status" {
            if let (Some(sid), Some(st)) = (
                sid,
                field(&params, "MessageStatus").or_else(|| field(&params, "SmsStatus")),
            ) {
                if let Some(status) = map_status(st) {
                    let error = (status == DeliveryStatus::Failed).then(|| {
                        match (field(&params, "ErrorCode"), field(&params, "ErrorMessage")) {
                            (Some(c), Some(m)) => format!("Twilio error {c}: {m}"),
                            (Some(c), None) => format!("Twilio error {c}"),
                            _ => format!("Twilio reports {st}"),
                        }
                    });
                    out.statuses.push(StatusUpdate {
                        provider_id: sid.to_owned(),
                        status,
                        error,
                    });
                }
            }
            return Ok(out);
        }
        let (Some(sid), Some(from)) = (sid, field(&params, "From")) else {
            return Err(HookError::BadRequest(
                "MessageSid and From are required".into(),
            ));
        };
        let n: usize = field(&params, "NumMedia")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
            .min(10);
        let media = (0..n)
            .filter_map(|i| field(&params, &format!("MediaUrl{i}")))
            .map(|u| MediaRef {
                url: u.to_owned(),
                name: None,
            })
            .collect();
        out.messages.push(Inbound {
            identity: from.to_owned(),
            name: field(&params, "ProfileName").map(str::to_owned),
            body: field(&params, "Body").unwrap_or("").to_owned(),
            provider_id: Some(sid.to_owned()),
            media,
            ..Inbound::default()
        });
        Ok(out)
    }

    fn send<'a>(
        &'a self,
        http: &'a super::http::Http,
        inbox: &'a InboxRecord,
        out: Outgoing<'a>,
    ) -> BoxFuture<'a, Result<Sent, SendError>> {
        Box::pin(async move {
            let s = &inbox.settings;
            let sid = get(s, "account_sid");
            let url = format!(
                "{}/2010-04-01/Accounts/{sid}/Messages.json",
                get(s, "api_base")
            );
            let mut form = vec![
                ("To".to_owned(), out.to.to_owned()),
                ("Body".to_owned(), out.body.to_owned()),
                (
                    "StatusCallback".to_owned(),
                    format!("{}/hooks/twilio/{}/status", out.base_url, out.inbox_id),
                ),
            ];
            match (get(s, "messaging_service_sid"), get(s, "from")) {
                ("", from) => form.push(("From".into(), from.to_owned())),
                (ms, _) => form.push(("MessagingServiceSid".into(), ms.to_owned())),
            }
            for (u, _) in &out.media {
                form.push(("MediaUrl".into(), u.clone()));
            }
            let resp = http
                .client
                .post(url)
                .basic_auth(sid, Some(get(s, "auth_token")))
                .header(
                    "I-Twilio-Idempotency-Token",
                    format!("natter-{}", out.message_id),
                )
                .form(&form)
                .send()
                .await
                .map_err(transport_error)?;
            let status = resp.status();
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            if !status.is_success() {
                let detail = body["message"].as_str().unwrap_or("no details");
                return Err(status_error(status, detail));
            }
            Ok(Sent {
                provider_id: body["sid"].as_str().map(str::to_owned),
                status: DeliveryStatus::Sent,
            })
        })
    }

    fn fetch_media<'a>(
        &'a self,
        http: &'a super::http::Http,
        inbox: &'a InboxRecord,
        media: &'a MediaRef,
    ) -> BoxFuture<'a, Result<Media, SendError>> {
        Box::pin(async move {
            let s = &inbox.settings;
            super::plain_download(
                http,
                &media.url,
                Some(super::Auth::Basic(
                    get(s, "account_sid"),
                    get(s, "auth_token"),
                )),
                media.name.clone(),
            )
            .await
        })
    }

    fn connect<'a>(
        &'a self,
        http: &'a super::http::Http,
        inbox: &'a InboxRecord,
        _base_url: &'a str,
    ) -> BoxFuture<'a, Result<String, SendError>> {
        Box::pin(async move {
            let s = &inbox.settings;
            let sid = get(s, "account_sid");
            let req = http
                .client
                .get(format!(
                    "{}/2010-04-01/Accounts/{sid}.json",
                    get(s, "api_base")
                ))
                .basic_auth(sid, Some(get(s, "auth_token")));
            super::probe(
                req,
                "Twilio accepted the account SID and auth token",
                "check the account SID and auth token",
            )
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Twilio's documented example ("Validating Signatures from Twilio").
    #[test]
    fn reproduces_twilios_documented_signature() {
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            signature(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }
}
