//! Progress of a long command (reindex now; backup, restore, import and
//! export as they come): a bar on a terminal (indicatif), and on anything
//! else, such as a log file or journald, a line at most every 5 seconds
//! and at the end, so a log shows how far it got without a line per item.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How often a log gets a progress line.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// One task's progress.
pub struct Progress {
    what: &'static str,
    bar: Option<indicatif::ProgressBar>,
    last_line: Instant,
}

impl Progress {
    /// Progress of `what` ("messages"), drawn as a bar when standard error
    /// is a terminal.
    pub fn new(what: &'static str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(0);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "[{bar:30}] {percent:>3}%  {pos}/{len} {msg} ({eta} left)",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("#>-"),
            );
            b.set_message(what);
            b
        });
        Self {
            what,
            bar,
            last_line: Instant::now(),
        }
    }

    /// `done` of `total` so far.
    pub fn set(&mut self, done: u64, total: u64) {
        match &self.bar {
            Some(b) => {
                b.set_length(total);
                b.set_position(done);
            }
            None => {
                if self.last_line.elapsed() >= LOG_EVERY {
                    self.last_line = Instant::now();
                    let pct = (done * 100).checked_div(total).unwrap_or(100);
                    tracing::info!("{pct}%: {done} of {total} {}", self.what);
                }
            }
        }
    }

    /// The end: the bar is cleared, the log gets its last line.
    pub fn finish(self, done: u64) {
        match self.bar {
            Some(b) => b.finish_and_clear(),
            None => tracing::info!("done: {done} {}", self.what),
        }
    }
}
