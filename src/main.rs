//! The `weir` command-line program. See `weir --help` and [`weir::cli`].
//!
//! Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.
//!
//! Signals: the first SIGINT or SIGTERM asks the consumer to stop gracefully (the sink
//! is checkpointed and closed, the summary printed); a second one exits at once with
//! status 1. An abrupt exit never corrupts the `--sink` directory: its recovery on the
//! next start handles a stop at any instant, as it does for `kill -9`.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Parser;
use weir::cli::{self, Cli, CliError, Command, EXIT_OK, EXIT_RUNTIME, GroupsCommand};

fn main() -> ExitCode {
    // clap exits with 2 on usage errors and 0 for --help / --version.
    let cli = Cli::parse();
    // Before anything connects, so the library's warnings (a broker that cannot be
    // reached, say) are seen from the first attempt.
    let installed = cli.log_filter().and_then(|f| {
        weir::logger::StderrLogger::install(f)
            .map_err(|e| CliError::runtime(format!("cannot install the logger: {e}")))
    });
    match installed.and_then(|()| run(cli)) {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("weir: error: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

fn install_signal_handlers(stop: &Arc<AtomicBool>) -> Result<(), CliError> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for sig in [SIGINT, SIGTERM] {
        // Registered first, so it sees the flag as it was before this signal: a
        // second signal (flag already set) exits immediately.
        signal_hook::flag::register_conditional_shutdown(
            sig,
            i32::from(EXIT_RUNTIME),
            Arc::clone(stop),
        )
        .and_then(|_| signal_hook::flag::register(sig, Arc::clone(stop)))
        .map_err(|e| CliError::runtime(format!("cannot install signal handlers: {e}")))?;
    }
    Ok(())
}

fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Consume(opts) => {
            if opts.help_properties || opts.x_command() == Some("list") {
                print!("{}", cli::properties_help());
                return Ok(());
            }
            if opts.x_command() == Some("dump") {
                print!("{}", opts.config_builder()?.dump());
                return Ok(());
            }
            let plan = opts.plan()?;
            for w in &plan.config.warnings {
                eprintln!("weir: warning: {w}");
            }
            let stop = Arc::new(AtomicBool::new(false));
            install_signal_handlers(&stop)?;
            // Group mode (-G), with or without --sink: commits follow the flushed or
            // durable output.
            let summary = match plan.mode {
                weir_consumer::config::Mode::Group => weir::consume_group::run(&plan, &stop)?,
                weir_consumer::config::Mode::Assign => weir::consume::run(&plan, &stop)?,
            };
            if !plan.quiet {
                eprintln!("{}", summary.line());
            }
            Ok(())
        }
        Command::Groups {
            command: GroupsCommand::ResetOffsets(r),
        } => {
            let (scope, spec) = r.scope_and_spec()?;
            let config = r
                .conn
                .builder(&[])?
                .build(weir_consumer::config::Mode::Assign)?;
            for w in &config.warnings {
                eprintln!("weir: warning: {w}");
            }
            let admin_err = |e: weir::admin::AdminError| CliError {
                code: e.exit_code(),
                message: e.to_string(),
            };
            let plan = weir::reset::plan(&config, &r.group, &scope, &spec).map_err(admin_err)?;
            for n in &plan.notes {
                eprintln!("weir: warning: {n}");
            }
            if r.execute {
                weir::reset::execute(&config, &plan).map_err(admin_err)?;
            } else if !r.dry_run {
                eprintln!(
                    "weir: dry run (nothing was changed): add --execute to commit these offsets"
                );
            }
            print!("{}", if r.export { plan.csv() } else { plan.render() });
            Ok(())
        }
        Command::Groups {
            command: GroupsCommand::Delete { groups, conn },
        } => {
            let config = conn
                .builder(&[])?
                .build(weir_consumer::config::Mode::Assign)?;
            for g in &groups {
                weir::delete::delete_group(&config, g).map_err(|e| CliError {
                    code: e.exit_code(),
                    message: e.to_string(),
                })?;
            }
            let names: Vec<String> = groups.iter().map(|g| format!("'{g}'")).collect();
            println!(
                "Deletion of requested consumer groups ({}) was successful.",
                names.join(", ")
            );
            Ok(())
        }
        Command::Groups {
            command:
                GroupsCommand::DeleteOffsets {
                    group,
                    topics,
                    conn,
                },
        } => {
            let topics = topics
                .iter()
                .map(|t| weir::reset::parse_topic(t))
                .collect::<Result<Vec<_>, _>>()
                .map_err(CliError::usage)?;
            let config = conn
                .builder(&[])?
                .build(weir_consumer::config::Mode::Assign)?;
            let rows =
                weir::delete::delete_offsets(&config, &group, &topics).map_err(|e| CliError {
                    code: e.exit_code(),
                    message: e.to_string(),
                })?;
            print!("{}", weir::delete::render_deleted(&rows));
            let failed = rows.iter().filter(|r| r.error.is_some()).count();
            if failed > 0 {
                return Err(CliError::runtime(format!(
                    "{failed} partition(s) kept their offsets (see STATUS): offsets of a topic the group's members subscribe to can only be deleted once they stop"
                )));
            }
            Ok(())
        }
        Command::Groups { command } => {
            let (group, conn) = match command {
                GroupsCommand::List { conn } => (None, conn),
                GroupsCommand::Describe { group, conn } => (Some(group), conn),
                GroupsCommand::ResetOffsets(_)
                | GroupsCommand::Delete { .. }
                | GroupsCommand::DeleteOffsets { .. } => unreachable!("handled above"),
            };
            // Configuration errors exit 2 before anything connects.
            let config = conn
                .builder(&[])?
                .build(weir_consumer::config::Mode::Assign)?;
            let admin_err = |e: weir::admin::AdminError| CliError {
                code: e.exit_code(),
                message: e.to_string(),
            };
            let text = match group {
                None => {
                    weir::admin::render_list(&weir::admin::list_groups(&config).map_err(admin_err)?)
                }
                Some(g) => weir::admin::describe_group(&config, &g)
                    .map_err(admin_err)?
                    .render(),
            };
            print!("{text}");
            Ok(())
        }
        Command::Lag(l) => run_lag(l),
        Command::Metadata(m) => {
            let config = m
                .conn
                .builder(&[])?
                .build(weir_consumer::config::Mode::Assign)?;
            for w in &config.warnings {
                eprintln!("weir: warning: {w}");
            }
            let md = weir::admin::cluster_metadata(&config, &m.topics).map_err(|e| CliError {
                code: e.exit_code(),
                message: e.to_string(),
            })?;
            print!(
                "{}",
                if m.json {
                    md.render_json()
                } else {
                    md.render_text()
                }
            );
            let failed: Vec<String> = md
                .failed_topics()
                .iter()
                .map(|t| {
                    format!(
                        "{} ({})",
                        t.name,
                        t.error.map(|e| e.to_string()).unwrap_or_default()
                    )
                })
                .collect();
            if !failed.is_empty() {
                return Err(CliError::runtime(format!(
                    "the cluster has no usable metadata for {}: check the topic name(s) (weir metadata without -t lists them all)",
                    failed.join(", ")
                )));
            }
            Ok(())
        }
    }
}

/// `weir lag`: snapshots every `--interval-ms`, served at `--metrics-addr` until
/// SIGINT or SIGTERM (or one snapshot on stdout with `--once`). A failed snapshot is
/// a warning and the previous one stays served; settings the cluster refuses end it.
fn run_lag(l: cli::LagOpts) -> Result<(), CliError> {
    use std::sync::atomic::Ordering;
    use weir::lag::{Exported, ExporterStats, Selector};
    let selector = match (&l.group_regex, l.groups.is_empty()) {
        (Some(re), _) => Selector::Regex(regex_lite::Regex::new(re).map_err(|e| {
            CliError::usage(format!(
                "--group-regex {re}: not a regular expression ({e})"
            ))
        })?),
        (None, false) => Selector::Names(l.groups.clone()),
        (None, true) => {
            return Err(CliError::usage(
                "which groups? give --group GROUP (repeatable) or --group-regex REGEX",
            ));
        }
    };
    if l.interval_ms == 0 {
        return Err(CliError::usage("--interval-ms must be at least 1"));
    }
    let config = l
        .conn
        .builder(&[])?
        .build(weir_consumer::config::Mode::Assign)?;
    for w in &config.warnings {
        eprintln!("weir: warning: {w}");
    }
    let admin_err = |e: weir::admin::AdminError| CliError {
        code: e.exit_code(),
        message: e.to_string(),
    };
    let stats = ExporterStats::default();
    if l.once {
        let groups = weir::lag::collect(&config, &selector).map_err(admin_err)?;
        stats.polls.fetch_add(1, Ordering::Relaxed);
        let text = weir::lag::render(&groups, weir::lag::now_ms(), &stats);
        print!("{}", weir::metrics::with_process_metrics(text));
        return Ok(());
    }
    let exported = Arc::new(Exported::default());
    let addr = l.metrics_addr.clone().unwrap_or_default();
    let server = weir::metrics::MetricsServer::start(&addr, Arc::clone(&exported))
        .map_err(|e| CliError::usage(e.to_string()))?;
    eprintln!(
        "weir: serving lag metrics at http://{}/metrics",
        server.addr()
    );
    let stop = Arc::new(AtomicBool::new(false));
    install_signal_handlers(&stop)?;
    let interval = std::time::Duration::from_millis(l.interval_ms);
    while !stop.load(Ordering::Relaxed) {
        let started = std::time::Instant::now();
        match weir::lag::collect(&config, &selector) {
            Ok(groups) => {
                stats.polls.fetch_add(1, Ordering::Relaxed);
                exported.set(weir::lag::render(&groups, weir::lag::now_ms(), &stats));
                log::debug!(target: "weir::lag", "{}", weir::lag::summary(&groups));
            }
            Err(e)
                if e.exit_code() == 2
                    || matches!(&e, weir::admin::AdminError::Fetch(f) if f.is_settings()) =>
            {
                return Err(admin_err(e));
            }
            Err(e) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                eprintln!(
                    "weir: warning: lag snapshot failed (the previous one is still served): {e}"
                );
            }
        }
        // Sleep out the interval in short steps, so a signal ends the run promptly.
        while !stop.load(Ordering::Relaxed) && started.elapsed() < interval {
            std::thread::sleep(std::time::Duration::from_millis(50).min(interval));
        }
    }
    drop(server);
    Ok(())
}
