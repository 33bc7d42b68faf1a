//! The search query language: splitting and tokenizing any text.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        for (part, _) in natter::service::index::split_query(text) {
            let _ = natter::service::index::tokenizer::tokens(&part);
        }
    }
});
