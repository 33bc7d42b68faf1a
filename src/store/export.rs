//! `natter export` and `natter import`: every record as a line of JSON, for
//! moving to another machine (or, later, into the PostgreSQL backend),
//! where a backup is sled's bytes for putting the same folder back.
//!
//! The archive is a gzip'd tar like a backup's (`format` is
//! `natter-export <n>`), holding `records.jsonl`, the attachments under
//! `files/` and the manifest. Each line is one stored value:
//! `{"kind":"message","key":"<hex>","record":{...}}` for a record (the
//! stored JSON as it is), or `{"kind":"...","key":"<hex>","value":"<base64>"}`
//! for the bytes of an index entry or a setting. Derived trees (inbox
//! lists, counters, indexes by contact, ordinal, file, email and team name:
//! everything `natter doctor` can rebuild) are not exported; an import
//! rebuilds them from the records, and the search index is built at the
//! first start.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

use base64::Engine;
use sha2::{Digest, Sha256};

use super::backup::{
    header, io, open_stopped_db, partial_path, read_archive, BackupError, Counts, Entry, Manifest,
    Progress, Source,
};
use super::{doctor, Store, StoreError, StoreOptions, Tree};
use crate::domain::time;

/// The export format this natter writes and the newest it imports.
pub const FORMAT: u32 = 1;

/// The friendlier kind of a record tree's lines; other trees keep their
/// tree name.
const KINDS: &[(Tree, &str)] = &[
    (Tree::Meta, "setting"),
    (Tree::AgentidAgent, "agent"),
    (Tree::TokenhashAgenttoken, "agent_token"),
    (Tree::InboxidInbox, "inbox"),
    (Tree::InboxidAgentid, "inbox_member"),
    (Tree::ContactidContact, "contact"),
    (Tree::TokenhashContacttoken, "contact_token"),
    (Tree::ConversationidConversation, "conversation"),
    (Tree::ConversationseqMessage, "message"),
    (Tree::EventidEvent, "event"),
    (Tree::ResumehashResume, "resume_link"),
    (Tree::CannedidCanned, "canned_response"),
    (Tree::JobdueJob, "job"),
    (Tree::WebhookidWebhook, "webhook"),
    (Tree::WebhookidattemptAttempt, "webhook_attempt"),
    (Tree::AgentidPush, "push_subscription"),
    (Tree::TeamidTeam, "team"),
];

fn kind_of(tree: &str) -> String {
    KINDS
        .iter()
        .find(|(t, _)| t.name() == tree)
        .map_or_else(|| tree.to_owned(), |(_, k)| (*k).to_owned())
}

fn tree_of(kind: &str) -> Option<&'static str> {
    KINDS
        .iter()
        .find(|(_, k)| *k == kind)
        .map(|(t, _)| t.name())
        .or_else(|| {
            Tree::ALL
                .iter()
                .find(|t| t.name() == kind)
                .map(|t| t.name())
        })
}

/// Exports the stopped data folder `data` to `out`.
pub fn export_stopped(
    data: &Path,
    out: &Path,
    progress: Progress<'_>,
) -> Result<Manifest, BackupError> {
    let (_lock, db) = open_stopped_db(data, 64 << 20)?;
    let source = Source {
        db: &db,
        known: None,
        data,
        files: data.join("files"),
    };
    let partial = partial_path(out);
    let result = write(&source, &partial, progress);
    match result {
        Ok(m) => {
            std::fs::rename(&partial, out).map_err(io("write", out))?;
            Ok(m)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

fn write(
    source: &Source<'_>,
    partial: &Path,
    progress: Progress<'_>,
) -> Result<Manifest, BackupError> {
    let created_at = time::rfc3339(time::now());
    let mut lines_path = partial.as_os_str().to_owned();
    lines_path.push(".jsonl");
    let lines_path = std::path::PathBuf::from(lines_path);
    let result = write_with(source, partial, &lines_path, created_at, progress);
    let _ = std::fs::remove_file(&lines_path);
    result
}

fn write_with(
    source: &Source<'_>,
    partial: &Path,
    lines_path: &Path,
    created_at: String,
    progress: Progress<'_>,
) -> Result<Manifest, BackupError> {
    let derived: Vec<&str> = doctor::DERIVED.iter().map(|t| t.name()).collect();
    let mut names: Vec<String> = source
        .db
        .tree_names()
        .iter()
        .filter_map(|n| String::from_utf8(n.to_vec()).ok())
        .filter(|n| !derived.contains(&n.as_str()) && !n.starts_with("__sled"))
        .collect();
    names.sort();
    let total: u64 = names
        .iter()
        .filter_map(|n| source.db.open_tree(n).ok())
        .map(|t| t.len() as u64)
        .sum();
    let file = File::create(lines_path).map_err(io("create", lines_path))?;
    let mut w = BufWriter::new(file);
    let mut hash = Sha256::new();
    let mut bytes = 0u64;
    let mut lines = 0u64;
    let mut counts = Counts::default();
    let mut schema_version = 0;
    let b64 = base64::engine::general_purpose::STANDARD;
    for name in &names {
        let kind = kind_of(name);
        let kind_json = serde_json::to_string(&kind).unwrap_or_default();
        let record_tree = name != Tree::Meta.name();
        let mut in_tree = 0u64;
        source.each(name.as_bytes(), &mut |k, v| {
            let mut line = Vec::with_capacity(v.len() + 64);
            line.extend_from_slice(b"{\"kind\":");
            line.extend_from_slice(kind_json.as_bytes());
            line.extend_from_slice(b",\"key\":\"");
            line.extend_from_slice(hex::encode(k).as_bytes());
            line.push(b'"');
            // Records are stored as compact JSON: copied as they are.
            let is_record = record_tree
                && v.first() == Some(&b'{')
                && serde_json::from_slice::<serde::de::IgnoredAny>(v).is_ok();
            if is_record {
                line.extend_from_slice(b",\"record\":");
                line.extend_from_slice(v);
            } else {
                line.extend_from_slice(b",\"value\":\"");
                line.extend_from_slice(b64.encode(v).as_bytes());
                line.push(b'"');
            }
            if name == Tree::Meta.name() && k == b"schema_version" {
                if let Ok(b) = <[u8; 4]>::try_from(v) {
                    schema_version = u32::from_be_bytes(b);
                }
            }
            line.extend_from_slice(b"}\n");
            hash.update(&line);
            bytes += line.len() as u64;
            lines += 1;
            in_tree += 1;
            if lines.is_multiple_of(4096) {
                progress(lines, total);
            }
            w.write_all(&line)
        })?;
        match kind.as_str() {
            "agent" => counts.agents = in_tree,
            "inbox" => counts.inboxes = in_tree,
            "contact" => counts.contacts = in_tree,
            "conversation" => counts.conversations = in_tree,
            "message" => counts.messages = in_tree,
            "event" => counts.events = in_tree,
            _ => {}
        }
    }
    let file = w
        .into_inner()
        .map_err(|e| io("write", lines_path)(e.into_error()))?;
    file.sync_all().map_err(io("sync", lines_path))?;
    drop(file);

    let out = File::create(partial).map_err(io("create", partial))?;
    let gz = flate2::write::GzEncoder::new(BufWriter::new(out), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let fail = |e: std::io::Error| BackupError::Io(format!("cannot write the export: {e}"));
    let format = format!("natter-export {FORMAT}\n");
    tar.append_data(
        &mut header(format.len() as u64),
        "format",
        format.as_bytes(),
    )
    .map_err(fail)?;
    let f = File::open(lines_path).map_err(io("read", lines_path))?;
    tar.append_data(&mut header(bytes), "records.jsonl", BufReader::new(f))
        .map_err(fail)?;
    let mut entries = vec![Entry {
        path: "records.jsonl".to_owned(),
        bytes,
        sha256: hex::encode(hash.finalize()),
        records: Some(lines),
    }];
    source.append_files(&mut tar, &mut counts, &mut entries)?;
    let manifest = Manifest {
        format: FORMAT,
        natter_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at,
        schema_version,
        search_index: "built from the event log at the first start".to_owned(),
        counts,
        entries,
    };
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| BackupError::Io(format!("cannot encode the manifest: {e}")))?;
    tar.append_data(
        &mut header(json.len() as u64),
        "manifest.json",
        json.as_slice(),
    )
    .map_err(fail)?;
    let gz = tar.into_inner().map_err(fail)?;
    let file = gz
        .finish()
        .map_err(fail)?
        .into_inner()
        .map_err(|e| fail(e.into_error()))?;
    file.sync_all().map_err(io("sync", partial))?;
    progress(total, total);
    Ok(manifest)
}

/// Imports an export into the new data folder `data` (missing or empty):
/// checks every checksum first, loads the records into a folder beside it,
/// migrates them if they are of an older schema, rebuilds every derived
/// tree from them and moves the folder into place.
pub fn import(
    archive: &Path,
    data: &Path,
    progress: Progress<'_>,
) -> Result<Manifest, BackupError> {
    let occupied = match std::fs::read_dir(data) {
        Ok(mut rd) => rd.next().is_some(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(io("read", data)(e)),
    };
    if occupied {
        return Err(BackupError::NotEmpty(data.to_path_buf()));
    }
    let manifest = read_archive(
        archive,
        ("export", FORMAT),
        &mut |d, t| progress(d, t.saturating_mul(2)),
        |_, _| Ok(()),
    )?;
    super::backup::install(data, ".natter-importing", |staging| {
        fill(archive, staging, &mut |d, t| {
            progress(t + d, t.saturating_mul(2))
        })
    })?;
    Ok(manifest)
}

fn fill(archive: &Path, dir: &Path, progress: Progress<'_>) -> Result<(), BackupError> {
    std::fs::create_dir_all(dir.join("files")).map_err(io("create", dir))?;
    let invalid = |reason: String| BackupError::Invalid {
        path: archive.to_path_buf(),
        reason,
    };
    {
        let db = sled::Config::new()
            .path(dir.join("db"))
            .cache_capacity(64 << 20)
            .open()
            .map_err(StoreError::from)?;
        read_archive(archive, ("export", FORMAT), progress, |path, r| {
            if path == "records.jsonl" {
                load_lines(&db, r).map_err(|e| invalid(format!("records.jsonl: {e}")))?;
                return Ok(());
            }
            super::backup::extract_file(archive, dir, path, r)
        })?;
        db.flush().map_err(StoreError::from)?;
    }
    // The records as a store: migrated if older, every derived tree built.
    let store = Store::open(&StoreOptions {
        path: dir.to_path_buf(),
        cache_bytes: 64 << 20,
        fsync: false,
        event_buffer: 16,
        min_free_bytes: 0,
        backup_before_migration: false,
    })?;
    store.repair_derived()?;
    match std::sync::Arc::try_unwrap(store) {
        Ok(s) => {
            s.close()?;
        }
        Err(s) => s.flush_now()?,
    }
    Ok(())
}

/// Loads `records.jsonl` into the trees it names.
fn load_lines(db: &sled::Db, r: &mut dyn Read) -> Result<(), String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut batches: std::collections::HashMap<&'static str, (sled::Batch, usize)> =
        Default::default();
    let flush = |db: &sled::Db, tree: &str, batch: sled::Batch| -> Result<(), String> {
        db.open_tree(tree)
            .and_then(|t| t.apply_batch(batch))
            .map_err(|e| e.to_string())
    };
    for (n, line) in BufReader::new(r).lines().enumerate() {
        let at = |e: String| format!("line {}: {e}", n + 1);
        let line = line.map_err(|e| at(e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| at(e.to_string()))?;
        let kind = v["kind"].as_str().ok_or_else(|| at("no kind".into()))?;
        let tree = tree_of(kind).ok_or_else(|| at(format!("unknown kind {kind:?}")))?;
        let key = v["key"]
            .as_str()
            .and_then(|k| hex::decode(k).ok())
            .ok_or_else(|| at("no key in hex".into()))?;
        let value = match (&v["record"], v["value"].as_str()) {
            (serde_json::Value::Object(_), _) => {
                serde_json::to_vec(&v["record"]).map_err(|e| at(e.to_string()))?
            }
            (_, Some(b)) => b64.decode(b).map_err(|e| at(e.to_string()))?,
            _ => return Err(at("neither a record nor a value".into())),
        };
        let (batch, len) = batches.entry(tree).or_default();
        batch.insert(key, value);
        *len += 1;
        if *len == 10_000 {
            let full = std::mem::take(batch);
            *len = 0;
            flush(db, tree, full)?;
        }
    }
    for (tree, (batch, _)) in batches {
        flush(db, tree, batch)?;
    }
    Ok(())
}
