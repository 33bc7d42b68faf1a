//! Attachment bytes: typed by their content (magic bytes), never by the
//! name or type the client claimed; stored under the data folder by random
//! id, written to a temporary name, fsynced and renamed so a crash never
//! leaves half a file under a real id.

use std::io::Write;
use std::path::Path;

use crate::service::auth::random_string;
use crate::store::AttachmentRecord;

/// Most files one message may carry.
pub const MAX_FILES: usize = 5;

/// The content type the bytes really have. Anything not recognised
/// (SVG and HTML included) is `application/octet-stream`, which is only
/// ever served as a download.
pub fn sniff(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]) {
        "image/png"
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        "image/jpeg"
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        "image/gif"
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        "image/webp"
    } else if bytes.starts_with(b"%PDF-") {
        "application/pdf"
    } else {
        "application/octet-stream"
    }
}

/// Whether a type may be shown inline (images only).
pub fn is_inline_image(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    )
}

/// A display name without paths, control characters or quotes, at most
/// 200 characters.
pub fn clean_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(200)
        .collect();
    let cleaned = cleaned.trim().to_owned();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        "file".to_owned()
    } else {
        cleaned
    }
}

/// Writes `bytes` durably under `dir` and returns the record for it.
pub fn save(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<AttachmentRecord> {
    let id = random_string(16);
    let tmp = dir.join(format!(".{id}.part"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(&id))?;
    Ok(AttachmentRecord {
        id,
        name: clean_name(name),
        content_type: sniff(bytes).to_owned(),
        size: bytes.len() as u64,
    })
}

/// Whether `id` has the shape of our ids (so it can name a file safely).
pub fn valid_id(id: &str) -> bool {
    id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), "image/png");
        assert_eq!(sniff(b"\xff\xd8\xff\xe0"), "image/jpeg");
        assert_eq!(sniff(b"GIF89a..."), "image/gif");
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), "image/webp");
        assert_eq!(sniff(b"%PDF-1.7"), "application/pdf");
        assert_eq!(
            sniff(b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
            "application/octet-stream"
        );
        assert_eq!(sniff(b"<html><script>"), "application/octet-stream");
        assert!(is_inline_image("image/gif") && !is_inline_image("application/pdf"));
    }

    #[test]
    fn names_lose_paths_and_control_characters() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\Users\\x\\photo.png"), "photo.png");
        assert_eq!(clean_name("a\"b\n.png"), "ab.png");
        assert_eq!(clean_name(".."), "file");
        assert_eq!(clean_name(""), "file");
    }

    #[test]
    fn saved_files_are_whole_and_typed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let rec = save(dir.path(), "x.svg", b"GIF89a-data").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rec.content_type, "image/gif");
        assert_eq!(rec.name, "x.svg");
        assert!(valid_id(&rec.id));
        assert_eq!(
            std::fs::read(dir.path().join(&rec.id)).ok(),
            Some(b"GIF89a-data".to_vec())
        );
    }
}
