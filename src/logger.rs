//! The `weir` binary's logger: the library's `log` records as plain lines on stderr.
//!
//! The library crates only emit through the `log` facade (an embedding application
//! routes them where it likes); without a logger installed nothing reached the user,
//! so an unreachable broker looked exactly like an idle topic. The CLI therefore
//! installs this one: warnings and errors always (errors only under `-q`), and debug
//! records for the contexts named with `-d`, kcat's flag and context names.
//!
//! Lines look like weir's own messages: `weir: warning: ...`, `weir: error: ...`, and
//! `weir: debug: TARGET: ...` (the target says which part of weir is talking).

use std::io::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// The `-d` context names and the `log` targets each turns on. A target matches a
/// prefix when it equals it or continues it with `::`, so `weir::consume` does not
/// catch `weir::consume_group`.
pub const CONTEXTS: &[(&str, &[&str])] = &[
    // Connections: connect, handshake, failures and reconnects.
    ("broker", &["weir_fetch::broker", "weir_fetch::conn"]),
    // The fetch path: requests, throttling, records that make no progress.
    (
        "fetch",
        &[
            "weir_fetch::fetch",
            "weir_fetch::reactor",
            "weir_fetch::process",
            "weir_fetch::workers",
            "weir_fetch::ring",
            "weir::consume",
        ],
    ),
    // The consumer group: membership, rebalances, commits.
    (
        "cgrp",
        &[
            "weir_coordinator",
            "weir_consumer::group",
            "weir::consume_group",
        ],
    ),
    (
        "consumer",
        &[
            "weir_coordinator",
            "weir_consumer::group",
            "weir::consume_group",
        ],
    ),
    // Cluster metadata: leaders, partitions, topics.
    ("metadata", &["weir_fetch::metadata"]),
    // The wire protocol: framing and decoding.
    ("protocol", &["weir_protocol"]),
];

/// Which records the logger prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Records at this level or more severe are printed whatever their target.
    base: LevelFilter,
    /// Debug records whose target has one of these prefixes are printed too.
    debug: Vec<&'static str>,
    /// `-d all`: every debug record.
    all: bool,
}

impl Filter {
    /// The filter for `-d CONTEXTS` (comma-separated; `None` without `-d`) and `-q`.
    ///
    /// An unknown context is an error naming the valid ones, as librdkafka refuses
    /// an unknown `debug` value, rather than a flag that silently does nothing.
    pub fn new(contexts: Option<&str>, quiet: bool) -> Result<Self, String> {
        let mut f = Filter {
            base: if quiet {
                LevelFilter::Error
            } else {
                LevelFilter::Warn
            },
            debug: Vec::new(),
            all: false,
        };
        for name in contexts
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if name == "all" {
                f.all = true;
                continue;
            }
            match CONTEXTS.iter().find(|(n, _)| *n == name) {
                Some((_, targets)) => f.debug.extend_from_slice(targets),
                None => {
                    let names: Vec<&str> = CONTEXTS.iter().map(|(n, _)| *n).collect();
                    return Err(format!(
                        "unknown -d context `{name}`: expected all or a comma-separated list of {}",
                        names.join(", ")
                    ));
                }
            }
        }
        Ok(f)
    }

    /// The most verbose level any record can pass with (for `log::set_max_level`, so
    /// disabled debug calls cost one comparison).
    pub fn max_level(&self) -> LevelFilter {
        if self.all || !self.debug.is_empty() {
            LevelFilter::Debug
        } else {
            self.base
        }
    }

    /// Whether a record at `level` from `target` is printed.
    pub fn enabled(&self, level: Level, target: &str) -> bool {
        if level <= self.base {
            return true;
        }
        if level > Level::Debug {
            return false;
        }
        self.all
            || self.debug.iter().any(|p| {
                target == *p
                    || target
                        .strip_prefix(p)
                        .is_some_and(|rest| rest.starts_with("::"))
            })
    }
}

/// The one line printed for a record.
pub fn line(level: Level, target: &str, message: &std::fmt::Arguments<'_>) -> String {
    match level {
        Level::Error => format!("weir: error: {message}\n"),
        Level::Warn => format!("weir: warning: {message}\n"),
        Level::Info => format!("weir: info: {message}\n"),
        Level::Debug | Level::Trace => format!("weir: debug: {target}: {message}\n"),
    }
}

/// Prints records that pass its [`Filter`] to stderr.
#[derive(Debug)]
pub struct StderrLogger {
    filter: Filter,
}

impl StderrLogger {
    /// Installs a logger with `filter` as the process's `log` logger. Fails only if
    /// one is installed already.
    pub fn install(filter: Filter) -> Result<(), log::SetLoggerError> {
        let max = filter.max_level();
        // Leaked on purpose: the `log` facade needs a logger that lives as long as the
        // process, and this is done once, in main.
        let logger: &'static StderrLogger = Box::leak(Box::new(StderrLogger { filter }));
        log::set_logger(logger)?;
        log::set_max_level(max);
        Ok(())
    }
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.filter.enabled(metadata.level(), metadata.target())
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let text = line(record.level(), record.target(), record.args());
        // One write of the whole line, so lines from the reactor and the workers do
        // not interleave. A failed write to stderr has nowhere to be reported.
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().lock().flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_by_default_debug_by_context() {
        let f = Filter::new(None, false).unwrap();
        assert!(f.enabled(Level::Warn, "weir_fetch::broker"));
        assert!(f.enabled(Level::Error, "anything"));
        assert!(!f.enabled(Level::Debug, "weir_fetch::broker"));
        assert_eq!(f.max_level(), LevelFilter::Warn);

        let f = Filter::new(Some("broker,cgrp"), false).unwrap();
        assert!(f.enabled(Level::Debug, "weir_fetch::broker"));
        assert!(f.enabled(Level::Debug, "weir_coordinator::member"));
        assert!(f.enabled(Level::Debug, "weir_consumer::group"));
        assert!(!f.enabled(Level::Debug, "weir_fetch::reactor"));
        assert!(!f.enabled(Level::Trace, "weir_fetch::broker"));
        assert_eq!(f.max_level(), LevelFilter::Debug);

        // A prefix stops at a `::` boundary.
        let f = Filter::new(Some("fetch"), false).unwrap();
        assert!(f.enabled(Level::Debug, "weir::consume"));
        assert!(!f.enabled(Level::Debug, "weir::consume_group"));

        let f = Filter::new(Some("all"), false).unwrap();
        assert!(f.enabled(Level::Debug, "tiny_http"));
    }

    #[test]
    fn quiet_keeps_errors_only() {
        let f = Filter::new(None, true).unwrap();
        assert!(f.enabled(Level::Error, "weir_fetch::broker"));
        assert!(!f.enabled(Level::Warn, "weir_fetch::broker"));
    }

    #[test]
    fn unknown_context_is_refused() {
        let e = Filter::new(Some("broker,nope"), false).unwrap_err();
        assert!(e.contains("unknown -d context `nope`"), "{e}");
        assert!(e.contains("metadata"), "{e}");
    }

    #[test]
    fn lines() {
        assert_eq!(
            line(Level::Warn, "t", &format_args!("a: b")),
            "weir: warning: a: b\n"
        );
        assert_eq!(
            line(Level::Debug, "weir_fetch::broker", &format_args!("x")),
            "weir: debug: weir_fetch::broker: x\n"
        );
    }
}
