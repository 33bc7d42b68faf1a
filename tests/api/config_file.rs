//! The settings file (`--config FILE` / `NATTER_CONFIG`) and
//! `natter config show`: precedence flag > environment > file > default,
//! unknown keys refused by name, secrets masked, and `serve` running with
//! what the file says. These spawn the built executable.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::cli::{serve, BIN};

/// Runs the binary with only the given `NATTER_*` variables (none of the
/// test process's own): (exit code, stdout, stderr).
async fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("NATTER_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .expect("exits")
        .expect("output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The line of `key` in `config show`'s output.
fn line<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} in\n{out}"))
}

#[tokio::test]
async fn config_show_names_each_settings_source_and_masks_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("natter.toml");
    std::fs::write(
        &file,
        r#"
# Three settings the flag, the environment and nobody override.
cache-mb = 8
token-ttl-days = 9
login_max_failures = 3
trusted-proxies = ["10.0.0.1", "10.0.0.2"]
smtp-password = "hunter2-hunter2"
metrics-token = "0123456789abcdef-secret"
"#,
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let (code, out, err) = run(
        &["config", "show", "--config", path, "--cache-mb", "32"],
        &[("NATTER_TOKEN_TTL_DAYS", "7")],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(line(&out, "cache-mb"), "cache-mb = 32  # flag --cache-mb");
    assert_eq!(
        line(&out, "token-ttl-days"),
        "token-ttl-days = 7  # environment NATTER_TOKEN_TTL_DAYS"
    );
    assert_eq!(
        line(&out, "login-max-failures"),
        "login-max-failures = 3  # file"
    );
    assert_eq!(
        line(&out, "trusted-proxies"),
        "trusted-proxies = [\"10.0.0.1\", \"10.0.0.2\"]  # file"
    );
    assert_eq!(
        line(&out, "contacts-per-minute"),
        "contacts-per-minute = 30  # default"
    );
    assert_eq!(line(&out, "bind"), "bind = \"127.0.0.1:8080\"  # default");
    assert_eq!(
        line(&out, "smtp-password"),
        "smtp-password = \"********\"  # file"
    );
    assert_eq!(
        line(&out, "metrics-token"),
        "metrics-token = \"********\"  # file"
    );
    assert!(out.contains("# base-url is not set"), "{out}");
    assert!(
        !out.contains("hunter2") && !out.contains("abcdef-secret"),
        "{out}"
    );
    // Nor does --help show the file's secrets as defaults.
    let (code, help, _) = run(&["serve", "--help", "--config", path], &[]).await;
    assert_eq!(code, 0);
    assert!(
        help.contains("[default: 8]"),
        "the file's defaults show: {help}"
    );
    assert!(
        !help.contains("hunter2") && !help.contains("abcdef-secret"),
        "{help}"
    );

    // The same file named by the environment.
    let (code, out, _) = run(&["config", "show"], &[("NATTER_CONFIG", path)]).await;
    assert_eq!(code, 0);
    assert_eq!(line(&out, "cache-mb"), "cache-mb = 8  # file");
}

#[tokio::test]
async fn a_bad_settings_file_ends_with_one_line_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("natter.toml");
    for (text, expected) in [
        ("bnid = \"127.0.0.1:9000\"\n", "unknown setting `bnid`"),
        ("config = \"other.toml\"\n", "unknown setting `config`"),
        ("bind = \n", "is not TOML"),
        ("[server]\nbind = \"x\"\n", "unknown setting `server`"),
        ("bind = { host = \"x\" }\n", "setting `bind` must be"),
        ("cache-mb = \"lots\"\n", "lots"),
        ("cache-mb = 8\ncache_mb = 9\n", "`cache-mb` is given twice"),
    ] {
        std::fs::write(&file, text).unwrap();
        for args in [
            vec!["serve", "--config", file.to_str().unwrap()],
            vec!["config", "show", "--config", file.to_str().unwrap()],
        ] {
            let (code, _, err) = run(&args, &[]).await;
            assert_eq!(code, 2, "{text}: {err}");
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
    let (code, _, err) = run(
        &[
            "serve",
            "--config",
            dir.path().join("missing.toml").to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot read the settings file"), "{err}");
}

/// `serve` runs with the file's settings: its public URL is in the setup
/// link it logs.
#[tokio::test]
async fn serve_takes_its_settings_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("natter.toml");
    std::fs::write(
        &file,
        "base-url = \"https://support.example.com\"\nworkers = 1\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let s = serve(&data, &[("NATTER_CONFIG", file.to_str().unwrap())]).await;
    let setup = s
        .log
        .iter()
        .find(|l| l.contains("/setup?token="))
        .expect("setup line");
    assert!(
        setup.contains("https://support.example.com/setup?token="),
        "{setup}"
    );
}
