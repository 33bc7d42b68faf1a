//! Every input in `fuzz/regressions/` (crashes the fuzzers found, and
//! seeds) goes through every parser of outside input, on every test run.

#[tokio::test]
async fn fuzz_regressions_never_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let _ = natter::web::extract::parse_json::<serde_json::Value>(&data);
        let _ = natter::store::keys::decode_inbox_status_activity(&data);
        let text = String::from_utf8_lossy(&data);
        for (part, _) in natter::service::index::split_query(&text) {
            let _ = natter::service::index::tokenizer::tokens(&part);
        }
        assert!(!natter::web::workspace::linkify::linkify(&text).contains("<script"));
        if let Some(mail) = natter::channels::email::parse::parse(&data) {
            let _ = natter::channels::clean_text(&mail.text);
        }
        let _ = natter::web::upload::parse_multipart_bytes(
            "multipart/form-data; boundary=XyZ",
            data.clone(),
            64 * 1024,
        )
        .await;
        n += 1;
    }
    assert!(n >= 4, "the regression corpus is missing");
}
