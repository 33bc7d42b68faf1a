//! Settings from a TOML file (`--config FILE` or `NATTER_CONFIG`), one key
//! per flag name of `serve` (`bind = "0.0.0.0:8080"`, `cache-mb = 32`,
//! `trusted-proxies = ["10.0.0.1"]`; `cache_mb` is the same key).
//!
//! Precedence is flag, environment, file, default. clap already orders the
//! first two over a default, so the file's values become the defaults of
//! the command line before it is parsed: one parser, one set of checks, and
//! a bad value in the file gets the same message as on the command line.
//! A key that names no setting is refused with its name, so a typo never
//! silently leaves a setting at its default.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use super::Cli;

/// Why the command line could not be read.
#[derive(Debug)]
pub enum CliError {
    /// clap's own (usage, `--help`, `--version`): it prints and exits.
    Clap(clap::Error),
    /// The settings file: unreadable, not TOML, or an unknown key.
    File(String),
}

/// The parsed command line and where each setting came from.
#[derive(Debug)]
pub struct Parsed {
    /// The command.
    pub cli: Cli,
    /// What clap matched (for [`Parsed::show`]).
    matches: ArgMatches,
    /// Ids of the settings whose default the file replaced.
    from_file: BTreeSet<String>,
}

/// The subcommands whose flags a file may set: `serve` and `config show`.
const TAKES_A_FILE: [&[&str]; 2] = [&["serve"], &["config", "show"]];

/// Parses `args` (the program name first), with the settings file named
/// by `--config` among them or by `env_config` (`NATTER_CONFIG`).
pub fn parse<I, T>(args: I, env_config: Option<OsString>) -> Result<Parsed, CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let mut command = Cli::command();
    let mut from_file = BTreeSet::new();
    if let Some(path) = config_path(&args).or(env_config.map(PathBuf::from)) {
        let values = read(&path, &command)?;
        for path in TAKES_A_FILE {
            command = with_defaults(command, path, &values);
        }
        from_file = values.into_keys().collect();
    }
    let matches = command.try_get_matches_from(args).map_err(CliError::Clap)?;
    let cli = Cli::from_arg_matches(&matches).map_err(CliError::Clap)?;
    Ok(Parsed {
        cli,
        matches,
        from_file,
    })
}

/// The value of `--config FILE` or `--config=FILE`, if given.
fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let Some(a) = a.to_str() else { continue };
        if a == "--" {
            break;
        }
        if a == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(v) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(v));
        }
    }
    None
}

/// The file's settings: arg id -> values.
fn read(path: &Path, command: &clap::Command) -> Result<BTreeMap<String, Vec<String>>, CliError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::File(format!("cannot read the settings file {shown}: {e}")))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| CliError::File(format!("the settings file {shown} is not TOML: {e}")))?;
    let serve = command
        .find_subcommand("serve")
        .ok_or_else(|| CliError::File("no serve command".into()))?;
    let mut out = BTreeMap::new();
    for (key, value) in table {
        let long = key.replace('_', "-");
        let arg = serve
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()) && long != "config")
            .ok_or_else(|| {
                CliError::File(format!(
                    "{shown}: unknown setting `{key}` (keys are the flag names of `natter serve --help`)"
                ))
            })?;
        let values = match value {
            toml::Value::Array(items) => items
                .into_iter()
                .map(|v| scalar(&key, v, &shown))
                .collect::<Result<Vec<_>, _>>()?,
            v => vec![scalar(&key, v, &shown)?],
        };
        let id = arg.get_id().to_string();
        if out.contains_key(&id) {
            return Err(CliError::File(format!(
                "{shown}: setting `{long}` is given twice"
            )));
        }
        out.insert(id, values);
    }
    Ok(out)
}

/// One TOML value as the command line would spell it.
fn scalar(key: &str, v: toml::Value, shown: &std::path::Display<'_>) -> Result<String, CliError> {
    match v {
        toml::Value::String(s) => Ok(s),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        _ => Err(CliError::File(format!(
            "{shown}: setting `{key}` must be a string, number, boolean or a list of them"
        ))),
    }
}

/// `command` with the file's values as the defaults of the subcommand at
/// `path` (only the settings that subcommand has).
fn with_defaults(
    command: clap::Command,
    path: &[&str],
    values: &BTreeMap<String, Vec<String>>,
) -> clap::Command {
    match path.split_first() {
        None => values.iter().fold(command, |c, (id, v)| {
            if c.get_arguments().any(|a| a.get_id() == id.as_str()) {
                // A secret from the file must not show up in --help as the
                // default.
                c.mut_arg(id, |a| {
                    let hide = a.is_hide_env_values_set();
                    a.default_values(v.clone()).hide_default_value(hide)
                })
            } else {
                c
            }
        }),
        Some((name, rest)) => command.mut_subcommand(name, |sc| with_defaults(sc, rest, values)),
    }
}

impl Parsed {
    /// `natter config show`: each setting of `serve` as a line of TOML
    /// (so it can be pasted into a file) with where its value came from;
    /// secrets masked. `None` unless the command is `config show`.
    pub fn show(&self) -> Option<String> {
        let shown = self
            .matches
            .subcommand_matches("config")?
            .subcommand_matches("show")?;
        let command = Cli::command();
        let serve = command.find_subcommand("serve")?;
        let mut out = String::new();
        for arg in serve.get_arguments() {
            let id = arg.get_id().as_str();
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "config" | "help" | "version") {
                continue;
            }
            let env = arg
                .get_env()
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_default();
            let raw: Vec<String> = shown
                .get_raw(id)
                .map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            let source = match shown.value_source(id) {
                Some(ValueSource::CommandLine) => format!("flag --{long}"),
                Some(ValueSource::EnvVariable) => format!("environment {env}"),
                Some(ValueSource::DefaultValue) if self.from_file.contains(id) => "file".into(),
                Some(ValueSource::DefaultValue) => "default".into(),
                _ => "default".into(),
            };
            let value = if raw.is_empty() {
                out.push_str(&format!("# {long} is not set\n"));
                continue;
            } else if arg.is_hide_env_values_set() && raw.iter().any(|v| !v.is_empty()) {
                "\"********\"".to_owned()
            } else if raw.len() > 1 || arg.get_value_delimiter().is_some() {
                format!(
                    "[{}]",
                    raw.iter()
                        .map(String::as_str)
                        .map(quoted)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else {
                quoted(&raw[0])
            };
            out.push_str(&format!("{long} = {value}  # {source}\n"));
        }
        Some(out)
    }
}

/// A TOML string (numbers and booleans stay bare).
fn quoted(v: &str) -> String {
    if v.parse::<i64>().is_ok() || v == "true" || v == "false" {
        v.to_owned()
    } else {
        format!("{v:?}")
    }
}
