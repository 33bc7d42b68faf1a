//! Link detection in message text: any text, escaped output.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let html = natter::web::workspace::linkify::linkify(text);
        assert!(!html.contains("<script"), "unescaped output");
    }
});
