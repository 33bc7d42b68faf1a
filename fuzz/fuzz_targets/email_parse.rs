//! Inbound mail is outside input: any bytes parse to a mail or to nothing,
//! never a panic, and the clean text never grows past the original.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(mail) = natter::channels::email::parse::parse(data) {
        let _ = natter::channels::clean_text(&mail.text);
        let _ = natter::channels::email::plus_token(&mail.from_address, "support@example.com");
        for r in &mail.recipients {
            let _ = natter::channels::email::plus_token(r, "support@example.com");
        }
    }
});
