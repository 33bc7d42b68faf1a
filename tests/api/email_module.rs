//! Integration tests of the email channel against a real Dovecot and the
//! in-process SMTP sink. Needs `/usr/sbin/dovecot` (apt: dovecot-imapd).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::mail_servers::{Dovecot, SmtpSink};
use natter::channels::email::imap::{self, ImapCursor, Sink};
use natter::channels::email::parse::parse;
use natter::channels::email::smtp::{self, OutgoingMail};
use natter::channels::email::{EmailError, EmailSettings};
use tokio::sync::watch;

/// Long enough for a reconnect after the 1 s + 2 s backoff steps on a busy
/// 2-core CI machine; waits end as soon as the condition holds.
const WAIT: Duration = Duration::from_secs(30);

fn settings(imap: Option<&Dovecot>, smtp: Option<&SmtpSink>) -> EmailSettings {
    EmailSettings {
        imap_host: "127.0.0.1".into(),
        imap_port: imap.map_or(1, |d| d.port),
        imap_tls: false,
        smtp_host: "127.0.0.1".into(),
        smtp_port: smtp.map_or(1, |s| s.port),
        smtp_tls: false,
        username: imap.map_or("natter".into(), |d| d.user.clone()),
        password: imap.map_or_else(
            || smtp.map_or(String::new(), |s| s.password.clone()),
            |d| d.password.clone(),
        ),
        from_address: "support@natter.test".into(),
        allow_private: true,
    }
}

fn message(n: u32) -> Vec<u8> {
    format!(
        "From: Customer {n} <customer{n}@example.com>\r\n\
To: support@natter.test\r\n\
Subject: m{n}\r\n\
Message-ID: <m{n}@example.com>\r\n\
Date: Mon, 3 Jun 2024 10:00:00 +0000\r\n\
\r\n\
Body {n}\r\n"
    )
    .into_bytes()
}

fn subject(raw: &[u8]) -> String {
    parse(raw).and_then(|m| m.subject).unwrap_or_default()
}

/// One sink call: the raw message, its cursor, and whether it was accepted.
type Call = (Vec<u8>, ImapCursor, bool);

/// Records every sink call; can refuse the first `fail_first` calls.
#[derive(Clone)]
struct Recorder {
    calls: Arc<Mutex<Vec<Call>>>,
    count: watch::Sender<usize>,
    fail_first: Arc<AtomicUsize>,
}

impl Recorder {
    fn new(fail_first: usize) -> Recorder {
        Recorder {
            calls: Arc::default(),
            count: watch::channel(0).0,
            fail_first: Arc::new(AtomicUsize::new(fail_first)),
        }
    }

    fn sink(&self) -> Sink {
        let me = self.clone();
        Arc::new(move |raw, cursor| {
            let me = me.clone();
            Box::pin(async move {
                let fail = me
                    .fail_first
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                let n = {
                    let mut calls = me.calls.lock().map_err(|e| e.to_string())?;
                    calls.push((raw, cursor, !fail));
                    calls.len()
                };
                me.count.send_replace(n);
                if fail {
                    Err("refused by test".to_string())
                } else {
                    Ok(())
                }
            })
        })
    }

    /// Waits until the sink was called `n` times; returns all calls.
    async fn wait_calls(&self, n: usize) -> Vec<Call> {
        let mut rx = self.count.subscribe();
        let reached = tokio::time::timeout(WAIT, rx.wait_for(|c| *c >= n)).await;
        let calls = self.calls.lock().map(|c| c.clone()).unwrap_or_default();
        assert!(
            reached.is_ok(),
            "sink called {} times, expected {n}: {:?}",
            calls.len(),
            calls
                .iter()
                .map(|c| (subject(&c.0), c.1))
                .collect::<Vec<_>>()
        );
        calls
    }

    /// The successful deliveries as (subject, cursor).
    fn delivered(&self) -> Vec<(String, ImapCursor)> {
        self.calls
            .lock()
            .map(|c| {
                c.iter()
                    .filter(|(_, _, ok)| *ok)
                    .map(|(raw, cur, _)| (subject(raw), *cur))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// With `cursor = None`, run() starts from whatever the box holds when it
/// selects, which the test cannot observe directly. So messages are
/// appended one by one from `first` until one reaches the sink (each wait
/// bounded). Returns (number of the first delivered message, number of the
/// last appended message); everything in between must follow.
async fn append_until_followed(dovecot: &Dovecot, recorder: &Recorder, first: u32) -> (u32, u32) {
    let mut rx = recorder.count.subscribe();
    for n in first..first + 60 {
        dovecot.append(&message(n)).await;
        let waited =
            tokio::time::timeout(Duration::from_millis(500), rx.wait_for(|c| *c >= 1)).await;
        if waited.is_ok() {
            let calls = recorder.calls.lock().map(|c| c.clone()).unwrap_or_default();
            let delivered = subject(&calls[0].0);
            let j = delivered
                .trim_start_matches('m')
                .parse()
                .unwrap_or_else(|_| panic!("unexpected subject {delivered:?}"));
            return (j, n);
        }
    }
    panic!("run() never delivered anything");
}

struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn spawn_run(
    settings: EmailSettings,
    cursor: Option<ImapCursor>,
    recorder: &Recorder,
    poll: Duration,
) -> Running {
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(imap::run(settings, cursor, recorder.sink(), rx, poll));
    Running { stop, task }
}

impl Running {
    async fn shutdown(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("run() ends promptly on shutdown")
            .expect("run() does not panic");
    }
}

fn assert_in_order(delivered: &[(String, ImapCursor)], subjects: &[&str]) {
    let got: Vec<&str> = delivered.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(got, subjects);
    for pair in delivered.windows(2) {
        assert!(pair[0].1.last_uid < pair[1].1.last_uid, "{delivered:?}");
        assert_eq!(pair[0].1.uid_validity, pair[1].1.uid_validity);
    }
}

#[tokio::test]
async fn current_cursor_on_an_empty_box() {
    let dovecot = Dovecot::start();
    let cursor = imap::current_cursor(&settings(Some(&dovecot), None))
        .await
        .expect("cursor");
    assert_eq!(cursor.last_uid, 0);
    assert_ne!(cursor.uid_validity, 0);

    dovecot.append(&message(1)).await;
    let after = imap::current_cursor(&settings(Some(&dovecot), None))
        .await
        .expect("cursor");
    assert_eq!(after.uid_validity, cursor.uid_validity);
    assert_eq!(after.last_uid, 1);
}

#[tokio::test]
async fn wrong_password_is_a_login_error() {
    let dovecot = Dovecot::start();
    let mut s = settings(Some(&dovecot), None);
    s.password = "wrong".into();
    let err = imap::current_cursor(&s).await.expect_err("refused");
    assert!(matches!(err, EmailError::Login(_)), "{err:?}");
    assert!(!err.to_string().contains("wrong"), "{err}");
}

#[tokio::test]
async fn implicit_tls_checks_the_certificate() {
    let dovecot = Dovecot::start_tls();
    let mut s = settings(Some(&dovecot), None);
    s.imap_tls = true;
    s.imap_port = dovecot.tls_port.expect("a TLS port");
    s.imap_host = "localhost".into();
    let err = imap::current_cursor(&s).await.expect_err("untrusted");
    assert!(matches!(err, EmailError::Tls { .. }), "{err:?}");
}

#[tokio::test]
async fn run_delivers_new_mail_in_order_exactly_once() {
    let dovecot = Dovecot::start();
    // Mail from before natter followed the box is not imported.
    dovecot.append(&message(0)).await;
    let recorder = Recorder::new(0);
    let run = spawn_run(
        settings(Some(&dovecot), None),
        None,
        &recorder,
        Duration::from_secs(60),
    );
    let (first, last) = append_until_followed(&dovecot, &recorder, 1).await;
    assert!(first >= 1, "m0 predates run() and must not be delivered");
    for n in last + 1..=last + 3 {
        dovecot.append(&message(n)).await;
    }
    let expected: Vec<String> = (first..=last + 3).map(|n| format!("m{n}")).collect();
    recorder.wait_calls(expected.len()).await;
    // A last message proves nothing was delivered twice in between.
    dovecot.append(&message(last + 4)).await;
    let mut expected = expected;
    expected.push(format!("m{}", last + 4));
    let calls = recorder.wait_calls(expected.len()).await;
    assert_eq!(calls.len(), expected.len());
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    assert_in_order(&recorder.delivered(), &expected);
    run.shutdown().await;
}

#[tokio::test]
async fn run_starts_from_the_current_state_without_a_cursor() {
    let dovecot = Dovecot::start();
    for n in 0..3 {
        dovecot.append(&message(n)).await;
    }
    let start = imap::current_cursor(&settings(Some(&dovecot), None))
        .await
        .expect("cursor");
    assert_eq!(start.last_uid, 3);
    let recorder = Recorder::new(0);
    let run = spawn_run(
        settings(Some(&dovecot), None),
        Some(start),
        &recorder,
        Duration::from_secs(60),
    );
    dovecot.append(&message(3)).await;
    recorder.wait_calls(1).await;
    assert_in_order(&recorder.delivered(), &["m3"]);
    assert_eq!(recorder.delivered()[0].1.last_uid, 4);
    run.shutdown().await;
}

#[tokio::test]
async fn a_stale_uidvalidity_restarts_from_the_current_state() {
    let dovecot = Dovecot::start();
    dovecot.append(&message(0)).await;
    let real = imap::current_cursor(&settings(Some(&dovecot), None))
        .await
        .expect("cursor");
    let stale = ImapCursor {
        uid_validity: real.uid_validity.wrapping_add(1),
        last_uid: 0,
    };
    let recorder = Recorder::new(0);
    let run = spawn_run(
        settings(Some(&dovecot), None),
        Some(stale),
        &recorder,
        Duration::from_secs(60),
    );
    let (first, _) = append_until_followed(&dovecot, &recorder, 1).await;
    assert!(first >= 1, "m0 predates the restart point");
    let delivered = recorder.delivered();
    assert_eq!(delivered[0].1.uid_validity, real.uid_validity);
    run.shutdown().await;
}

#[tokio::test]
async fn backfill_after_an_outage_loses_nothing() {
    let mut dovecot = Dovecot::start();
    let start = imap::current_cursor(&settings(Some(&dovecot), None))
        .await
        .expect("cursor");
    let recorder = Recorder::new(0);
    let run = spawn_run(
        settings(Some(&dovecot), None),
        Some(start),
        &recorder,
        Duration::from_secs(60),
    );
    dovecot.append(&message(1)).await;
    recorder.wait_calls(1).await;

    dovecot.stop();
    for n in 2..=4 {
        dovecot.drop_into_maildir(&message(n));
    }
    dovecot.restart();
    recorder.wait_calls(4).await;
    dovecot.append(&message(5)).await;
    recorder.wait_calls(5).await;
    assert_in_order(&recorder.delivered(), &["m1", "m2", "m3", "m4", "m5"]);
    run.shutdown().await;
}

#[tokio::test]
async fn a_failing_sink_gets_the_same_message_again() {
    let dovecot = Dovecot::start();
    let start = imap::current_cursor(&settings(Some(&dovecot), None))
        .await
        .expect("cursor");
    let recorder = Recorder::new(1);
    let run = spawn_run(
        settings(Some(&dovecot), None),
        Some(start),
        &recorder,
        Duration::from_secs(60),
    );
    dovecot.append(&message(1)).await;
    let calls = recorder.wait_calls(2).await;
    assert!(!calls[0].2 && calls[1].2, "first refused, then accepted");
    assert_eq!(calls[0].0, calls[1].0, "the same bytes are offered again");
    assert_eq!(calls[0].1, calls[1].1, "with the same cursor");
    dovecot.append(&message(2)).await;
    recorder.wait_calls(3).await;
    assert_in_order(&recorder.delivered(), &["m1", "m2"]);
    run.shutdown().await;
}

#[tokio::test]
async fn polling_works_without_idle() {
    let dovecot = Dovecot::start_with("imap_capability = IMAP4rev1 LITERAL+ UIDPLUS");
    let start = imap::current_cursor(&settings(Some(&dovecot), None))
        .await
        .expect("cursor");
    let recorder = Recorder::new(0);
    let run = spawn_run(
        settings(Some(&dovecot), None),
        Some(start),
        &recorder,
        Duration::from_secs(1),
    );
    dovecot.append(&message(1)).await;
    dovecot.append(&message(2)).await;
    recorder.wait_calls(2).await;
    assert_in_order(&recorder.delivered(), &["m1", "m2"]);
    run.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_run_promptly() {
    // While idling on a live server.
    let dovecot = Dovecot::start();
    let recorder = Recorder::new(0);
    let run = spawn_run(
        settings(Some(&dovecot), None),
        None,
        &recorder,
        Duration::from_secs(600),
    );
    append_until_followed(&dovecot, &recorder, 1).await;
    run.shutdown().await;

    // While backing off from a server that is not there.
    let recorder = Recorder::new(0);
    let run = spawn_run(
        settings(None, None),
        None,
        &recorder,
        Duration::from_secs(600),
    );
    tokio::task::yield_now().await;
    run.shutdown().await;
}

#[tokio::test]
async fn test_connection_checks_imap_and_smtp() {
    let dovecot = Dovecot::start();
    let sink = SmtpSink::start(false).await;
    imap::test_connection(&settings(Some(&dovecot), Some(&sink)))
        .await
        .expect("both reachable");
    // Without a sink the SMTP port is 1, where nothing listens.
    let closed = settings(Some(&dovecot), None);
    let err = imap::test_connection(&closed).await.expect_err("no SMTP");
    assert!(matches!(err, EmailError::Smtp(_)), "{err:?}");
}

fn outgoing() -> OutgoingMail {
    OutgoingMail {
        to: "jane@example.com".into(),
        to_name: Some("Jane Doe".into()),
        subject: "Re: Where is my order?".into(),
        text: "Hello Jane,\n\nit ships today.\n.\nA line with a leading dot.\n".into(),
        message_id: "natter-7.abc@natter.test".into(),
        in_reply_to: Some("m1@example.com".into()),
        references: vec!["m0@example.com".into(), "m1@example.com".into()],
        reply_to: Some("support+c42@natter.test".into()),
        list_unsubscribe: None,
        attachments: Vec::new(),
    }
}

fn smtp_settings(sink: &SmtpSink) -> EmailSettings {
    let mut s = settings(None, Some(sink));
    s.username = sink.user.clone();
    s.password = sink.password.clone();
    s
}

fn check_received(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    for header in [
        "Message-ID: <natter-7.abc@natter.test>",
        "In-Reply-To: <m1@example.com>",
        "References: <m0@example.com> <m1@example.com>",
        "Reply-To: support+c42@natter.test",
        "Date: ",
        "From: support@natter.test",
    ] {
        assert!(raw.contains(header), "missing {header:?} in:\n{raw}");
    }
    assert!(!raw.to_ascii_lowercase().contains("auto-submitted"));
    let mail = parse(data).expect("the sent mail parses");
    assert_eq!(mail.message_id.as_deref(), Some("natter-7.abc@natter.test"));
    assert_eq!(mail.in_reply_to, vec!["m1@example.com"]);
    assert_eq!(mail.references, vec!["m0@example.com", "m1@example.com"]);
    assert_eq!(mail.from_address, "support@natter.test");
    assert_eq!(mail.subject.as_deref(), Some("Re: Where is my order?"));
    assert_eq!(
        mail.text,
        "Hello Jane,\n\nit ships today.\n.\nA line with a leading dot."
    );
    assert!(!mail.auto_submitted);
}

#[tokio::test]
async fn send_without_auth() {
    let sink = SmtpSink::start(false).await;
    smtp::send(&smtp_settings(&sink), &outgoing())
        .await
        .expect("sent");
    let got = sink.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].mail_from, "support@natter.test");
    assert_eq!(got[0].rcpt_to, vec!["jane@example.com"]);
    assert_eq!(got[0].authenticated_as, None);
    check_received(&got[0].data);
}

#[tokio::test]
async fn send_with_auth() {
    let sink = SmtpSink::start(true).await;
    smtp::send(&smtp_settings(&sink), &outgoing())
        .await
        .expect("sent");
    let got = sink.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].authenticated_as.as_deref(), Some("natter"));
    check_received(&got[0].data);

    let mut bad = smtp_settings(&sink);
    bad.password = "nope".into();
    let err = smtp::send(&bad, &outgoing()).await.expect_err("refused");
    assert!(err.permanent, "535 is permanent: {err}");
    assert!(!err.message.contains("nope"));
}

#[tokio::test]
async fn temporary_then_permanent_failures() {
    let sink = SmtpSink::start(false).await;
    sink.set_fail_next(1, 451);
    let err = smtp::send(&smtp_settings(&sink), &outgoing())
        .await
        .expect_err("451");
    assert!(!err.permanent, "{err}");
    smtp::send(&smtp_settings(&sink), &outgoing())
        .await
        .expect("second try succeeds");
    assert_eq!(sink.wait_for(1, WAIT).await.len(), 1);

    sink.set_fail_next(1, 550);
    let err = smtp::send(&smtp_settings(&sink), &outgoing())
        .await
        .expect_err("550");
    assert!(err.permanent, "{err}");

    // STARTTLS is required when TLS is on; this sink does not offer it,
    // and falling back to plain text would expose the password.
    let mut tls = smtp_settings(&sink);
    tls.smtp_tls = true;
    let err = smtp::send(&tls, &outgoing())
        .await
        .expect_err("no STARTTLS");
    assert!(err.message.contains("STARTTLS"), "{err}");

    // Port 1 on loopback: nothing listens there.
    let gone = settings(None, None);
    let err = smtp::send(&gone, &outgoing()).await.expect_err("refused");
    assert!(!err.permanent, "connection failures are temporary: {err}");
}
