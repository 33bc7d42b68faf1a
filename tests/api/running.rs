//! Running as a service: `natter healthcheck`, systemd's notify protocol
//! (READY, WATCHDOG, STOPPING on a socket the test listens on, as systemd
//! does) and `dist/natter.service` checked by `systemd-analyze verify`.

use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::cli::{serve, BIN};

/// Runs `natter healthcheck` with `args`: (exit code, stdout + stderr).
async fn healthcheck(args: &[&str]) -> (i32, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new(BIN)
            .arg("healthcheck")
            .args(args)
            .env_remove("NATTER_BIND")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output(),
    )
    .await
    .expect("exits")
    .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn healthcheck_exits_zero_only_when_healthz_answers_200() {
    let data = tempfile::tempdir().unwrap();
    let s = serve(data.path(), &[]).await;
    let (code, out) = healthcheck(&["--url", &format!("{}/healthz", s.base)]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("answered 200"), "{out}");
    // Any other answer, and no answer at all, is unhealthy.
    let (code, out) = healthcheck(&["--url", &format!("{}/no-such-page", s.base)]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("404"), "{out}");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (code, out) = healthcheck(&["--url", &format!("http://127.0.0.1:{port}/healthz")]).await;
    assert_eq!(code, 1, "{out}");
    // The address comes from NATTER_BIND when no URL is given.
    let addr = s.base.trim_start_matches("http://").to_owned();
    let out = Command::new(BIN)
        .arg("healthcheck")
        .env("NATTER_BIND", &addr)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // Listening everywhere (0.0.0.0) is asked on loopback.
    let bound = addr.rsplit(':').next().unwrap();
    let out = Command::new(BIN)
        .arg("healthcheck")
        .env("NATTER_BIND", format!("0.0.0.0:{bound}"))
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // A bracketed IPv6 literal is dialled, not refused as a bad address.
    let (code, out) = healthcheck(&["--url", &format!("http://[::1]:{port}/healthz")]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        !out.contains("no address") && !out.contains("bad --url"),
        "{out}"
    );
    let (code, out) = healthcheck(&["--url", "ftp://example.com/"]).await;
    assert_eq!(code, 2, "{out}");
}

#[tokio::test]
async fn under_systemd_it_says_ready_pings_the_watchdog_and_says_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let data = dir.path().join("data");
    let s = serve(
        &data,
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "200000"),
        ],
    )
    .await;
    let socket = std::sync::Arc::new(socket);
    let recv = |socket: std::sync::Arc<UnixDatagram>| {
        tokio::task::spawn_blocking(move || {
            let mut buf = [0u8; 512];
            let n = socket.recv(&mut buf).expect("a notification");
            String::from_utf8_lossy(&buf[..n]).into_owned()
        })
    };
    let first = recv(socket.clone()).await.unwrap();
    assert!(first.starts_with("READY=1\n"), "{first}");
    let port = s.base.rsplit(':').next().unwrap();
    assert!(
        first.contains(&format!("STATUS=listening on port {port}")),
        "{first}"
    );
    // Pings at half of WATCHDOG_USEC.
    for _ in 0..2 {
        assert_eq!(recv(socket.clone()).await.unwrap(), "WATCHDOG=1");
    }
    let pid = s.child.id().unwrap() as i32;
    // SAFETY: a signal to our own child.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    loop {
        let m = recv(socket.clone()).await.unwrap();
        if m == "STOPPING=1" {
            break;
        }
        assert_eq!(m, "WATCHDOG=1");
    }
    let mut child = s.child;
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

/// The unit file as systemd reads it, with ExecStart pointed at the built
/// binary (verify checks that it exists). Skipped where systemd-analyze is
/// not installed.
#[tokio::test]
async fn the_systemd_unit_verifies() {
    let Ok(found) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        eprintln!("systemd-analyze is not installed: not checked");
        return;
    };
    assert!(found.status.success());
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/dist/natter.service"))
        .unwrap();
    for needed in [
        "Type=notify",
        "WatchdogSec=",
        "User=natter",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/natter",
        "NoNewPrivileges=true",
    ] {
        assert!(unit.contains(needed), "the unit has {needed}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("natter.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/natter", BIN)).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.trim().is_empty(), "warnings: {stderr}");
}
