//! A real broker for integration tests: tansu, started on a free loopback port.
//!
//! `Tansu::start(Storage::Memory)` spawns `~/.cargo/bin/tansu` (or `$TANSU_BIN`) with
//! every listener on 127.0.0.1, waits (bounded) until it answers ApiVersions and
//! Metadata, and kills it when the value is dropped, also when the test panics. The
//! child also gets SIGKILL if the thread that started it dies without dropping it
//! (PR_SET_PDEATHSIG), so a killed test binary leaves no broker behind: start and drop a
//! `Tansu` in the same test thread.
//!
//! tansu 0.6.0 facts the tests must respect: no topic auto-creation (create topics
//! through the Admin API: `Producer` does); no EndTxn (a librdkafka transaction can be
//! opened, never committed or aborted); Fetch carries an empty aborted-transactions
//! list; ListOffsets(latest) answers the base offset of the last batch, so trust the
//! high watermark of a Fetch response for the end of a partition; a group's first join
//! waits about half of `session.timeout.ms`.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use kafka_protocol::messages::MetadataRequest;

use super::{free_port, scratch_dir, wire};

/// How long `start` and `restart` wait for the broker to answer.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Where tansu keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// `memory://tansu/`: fast, lost when the broker stops.
    Memory,
    /// `sqlite://` in this file (created when missing): survives `restart`.
    Sqlite(PathBuf),
}

/// A running tansu broker on 127.0.0.1.
#[derive(Debug)]
pub struct Tansu {
    bin: PathBuf,
    child: Option<Child>,
    port: u16,
    storage: Storage,
    /// Working directory of the broker (its log file, and the sqlite file's folder).
    dir: PathBuf,
    /// Whether `dir` is ours to delete on drop.
    owns_dir: bool,
    log: PathBuf,
}

/// The tansu binary: `$TANSU_BIN`, else `~/.cargo/bin/tansu`.
pub fn tansu_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("TANSU_BIN") {
        return PathBuf::from(bin);
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"));
    cargo_home.join("bin").join("tansu")
}

impl Tansu {
    /// Starts a broker with `storage` on a free port and waits until it answers.
    ///
    /// Panics (failing the test) when tansu is not installed, with the command that
    /// installs it, or when it does not answer within [`READY_TIMEOUT`].
    pub fn start(storage: Storage) -> Tansu {
        Self::start_with_bin(tansu_bin(), storage)
    }

    /// [`Tansu::start`] with a given binary.
    pub fn start_with_bin(bin: PathBuf, storage: Storage) -> Tansu {
        assert!(
            bin.is_file(),
            "tansu not found at {}: run scripts/install-tansu.sh (or set TANSU_BIN)",
            bin.display()
        );
        let (dir, owns_dir) = match &storage {
            Storage::Memory => (scratch_dir("tansu"), true),
            Storage::Sqlite(file) => {
                let parent = match file.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                fs::create_dir_all(&parent)
                    .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
                let parent = parent
                    .canonicalize()
                    .unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
                (parent, false)
            }
        };
        let log = match &storage {
            Storage::Memory => dir.join("tansu.log"),
            Storage::Sqlite(file) => {
                let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
                dir.join(format!("{}.tansu.log", name.unwrap_or_default()))
            }
        };
        let mut tansu = Tansu {
            bin,
            child: None,
            port: 0,
            storage,
            dir,
            owns_dir,
            log,
        };
        let mut last_error = String::new();
        for _attempt in 0..3 {
            tansu.port = free_port();
            match tansu.spawn_and_wait() {
                Ok(()) => return tansu,
                Err(e) => {
                    tansu.kill();
                    last_error = e;
                }
            }
        }
        panic!("tansu did not start: {last_error}");
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The listener's socket address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The broker's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Whether the broker process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn log_path(&self) -> PathBuf {
        self.log.clone()
    }

    /// The broker's output so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the broker gracefully (SIGTERM, then SIGKILL after 10 s). Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                _ => break,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Kills the broker at once (SIGKILL), as a crash would. Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the broker (if running) and starts it again on the same port with the
    /// same storage; with `Storage::Sqlite` the data survives.
    pub fn restart(&mut self) {
        self.stop();
        // The port was ours a moment ago; tansu binds with SO_REUSEADDR, but retry a
        // few times in case the kernel needs a moment.
        let mut last_error = String::new();
        for _attempt in 0..5 {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(e) => {
                    self.kill();
                    last_error = e;
                    thread::sleep(Duration::from_millis(200));
                }
            }
        }
        panic!("tansu did not restart on port {}: {last_error}", self.port);
    }

    fn engine_url(&self) -> String {
        match &self.storage {
            Storage::Memory => "memory://tansu/".to_string(),
            // tansu resolves a sqlite URL's path against its working directory.
            Storage::Sqlite(file) => {
                let name = file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| panic!("sqlite path {} has no file name", file.display()));
                assert!(
                    name.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
                    "sqlite file name {name:?}: use only letters, digits, '.', '_' and '-'"
                );
                format!("sqlite:///{name}")
            }
        }
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("cannot open {}: {e}", self.log.display()))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("cannot clone the log handle: {e}"))?;
        let mut command = Command::new(&self.bin);
        command
            .arg("broker")
            .args(["--cluster-id", "weir-test"])
            .args(["--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", &self.engine_url()])
            // tansu reads a .env file from its working directory: the scratch/sqlite dir.
            .current_dir(&self.dir)
            .env_remove("CLUSTER_ID")
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .env_remove("STORAGE_ENGINE")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err));
        // SAFETY: prctl is async-signal-safe; the closure allocates nothing.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last = String::from("no attempt");
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(format!(
                    "tansu exited ({status}) on port {}; its log:\n{}",
                    self.port,
                    tail(&self.log(), 30)
                ));
            }
            match self.probe() {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
            thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "no answer on {} within {READY_TIMEOUT:?} (last: {last}); its log:\n{}",
            self.addr(),
            tail(&self.log(), 30)
        ))
    }

    /// Ready means an ApiVersions and a Metadata round trip succeed.
    fn probe(&self) -> Result<(), String> {
        let timeout = Duration::from_secs(2);
        let versions = wire::api_versions(self.addr(), timeout).map_err(|e| e.to_string())?;
        if versions.error_code != 0 {
            return Err(format!("ApiVersions error {}", versions.error_code));
        }
        let mut stream = wire::connect(self.addr(), timeout).map_err(|e| e.to_string())?;
        let metadata = wire::roundtrip(&mut stream, 2, 12, &MetadataRequest::default())
            .map_err(|e| e.to_string())?;
        if metadata.brokers.is_empty() {
            return Err("Metadata lists no broker".into());
        }
        Ok(())
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.kill();
        if self.owns_dir && !thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        } else if thread::panicking() {
            eprintln!("tansu log kept at {}", self.log.display());
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
