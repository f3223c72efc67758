//! A real Apache Kafka broker for integration tests: KRaft combined mode, one node, on
//! free loopback ports.
//!
//! `scripts/install-kafka.sh` (once per machine) fetches Kafka's jars with Maven;
//! `scripts/kafka-config.sh` writes a broker's configuration into a fresh directory and
//! formats its log dir (the same script `scripts/start-kafka.sh` uses, so tests, demo
//! and benchmarks run one configuration). This module then runs the JVM itself, as a
//! child with PR_SET_PDEATHSIG, so no broker outlives the test process, and waits
//! (bounded) until it answers ApiVersions and lists itself in Metadata.
//!
//! With [`KafkaOptions::security`] the broker also listens for SASL_PLAINTEXT, SSL and
//! SASL_SSL; [`Kafka::listeners`] says where, and [`Kafka::tls_dir`] holds the CA, the
//! broker's and a client's certificates (see `scripts/kafka-config.sh`).

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use kafka_protocol::messages::MetadataRequest;

use super::{free_port, repo_root, scratch_dir, wire};

/// How long `start` and `restart` wait for the broker to answer. A JVM broker starts in
/// 5-10 s on an idle 2-core machine; a machine busy with builds takes longer.
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// How a test wants its broker.
#[derive(Debug, Clone, Default)]
pub struct KafkaOptions {
    /// Also listen for SASL_PLAINTEXT, SSL and SASL_SSL.
    pub security: bool,
    /// Extra `server.properties` lines (`key`, `value`), appended last so they win.
    pub properties: Vec<(String, String)>,
    /// Another Kafka install (`WEIR_KAFKA_HOME`) than the default one.
    pub home: Option<PathBuf>,
}

impl KafkaOptions {
    /// Whether a plain broker (PLAINTEXT only, default settings) does.
    pub fn is_plain(&self) -> bool {
        !self.security && self.properties.is_empty() && self.home.is_none()
    }

    pub fn home(mut self, home: impl Into<PathBuf>) -> Self {
        self.home = Some(home.into());
        self
    }

    pub fn security(mut self) -> Self {
        self.security = true;
        self
    }

    pub fn property(mut self, key: &str, value: impl ToString) -> Self {
        self.properties.push((key.to_string(), value.to_string()));
        self
    }
}

/// The broker's listener ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listeners {
    pub plaintext: u16,
    pub controller: u16,
    pub sasl_plaintext: Option<u16>,
    pub ssl: Option<u16>,
    pub sasl_ssl: Option<u16>,
    /// An SSL listener whose certificate has expired.
    pub expired_ssl: Option<u16>,
}

impl Listeners {
    fn pick(security: bool) -> Listeners {
        let opt = |on: bool| on.then(free_port);
        Listeners {
            plaintext: free_port(),
            controller: free_port(),
            sasl_plaintext: opt(security),
            ssl: opt(security),
            sasl_ssl: opt(security),
            expired_ssl: opt(security),
        }
    }
}

/// A running Apache Kafka broker on 127.0.0.1.
#[derive(Debug)]
pub struct Kafka {
    dir: PathBuf,
    child: Option<Child>,
    listeners: Listeners,
    options: KafkaOptions,
}

impl Kafka {
    /// Configures, formats and starts a broker, and waits until it answers.
    ///
    /// Panics (failing the test) when Kafka is not installed, with the command that
    /// installs it, or when it does not answer within [`READY_TIMEOUT`].
    pub fn start(options: KafkaOptions) -> Kafka {
        let mut last_error = String::new();
        for _attempt in 0..3 {
            let mut kafka = Kafka {
                dir: scratch_dir("kafka"),
                child: None,
                listeners: Listeners::pick(options.security),
                options: options.clone(),
            };
            let started = kafka.configure().and_then(|()| kafka.spawn_and_wait());
            match started {
                Ok(()) => return kafka,
                // Another process may have taken a port between pick and bind: try
                // again with fresh ports and a fresh directory.
                Err(e) => {
                    kafka.kill();
                    last_error = e;
                }
            }
        }
        panic!("Kafka did not start: {last_error}");
    }

    /// `host:port` of the PLAINTEXT listener, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.listeners.plaintext)
    }

    /// The PLAINTEXT listener's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.listeners.plaintext))
    }

    pub fn listeners(&self) -> Listeners {
        self.listeners
    }

    /// Where the TLS material is (with [`KafkaOptions::security`]).
    pub fn tls_dir(&self) -> PathBuf {
        self.dir.join("tls")
    }

    /// The broker's working directory (configuration, data, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the broker process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("kafka.log")
    }

    /// The broker's log (and the JVM's own output) so far.
    pub fn log(&self) -> String {
        let mut text = fs::read_to_string(self.dir.join("kafka.out")).unwrap_or_default();
        text.push_str(&fs::read_to_string(self.log_path()).unwrap_or_default());
        text
    }

    /// A controlled shutdown (SIGTERM), then SIGKILL after 30 s. Idempotent.
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
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
                _ => break,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// SIGKILL at once, as a crash would. Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the broker if it runs, then starts it again on the same ports and data.
    pub fn restart(&mut self) {
        self.stop();
        let mut last_error = String::new();
        for _attempt in 0..5 {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(e) => {
                    self.kill();
                    last_error = e;
                    thread::sleep(Duration::from_millis(500));
                }
            }
        }
        panic!(
            "Kafka did not restart on port {}: {last_error}",
            self.listeners.plaintext
        );
    }

    fn configure(&self) -> Result<(), String> {
        let script = repo_root().join("scripts/kafka-config.sh");
        let l = self.listeners;
        let mut command = Command::new("bash");
        command
            .arg(&script)
            .arg("--dir")
            .arg(&self.dir)
            .args(["--port", &l.plaintext.to_string()])
            .args(["--controller-port", &l.controller.to_string()]);
        for (flag, port) in [
            ("--sasl-port", l.sasl_plaintext),
            ("--ssl-port", l.ssl),
            ("--sasl-ssl-port", l.sasl_ssl),
            ("--expired-ssl-port", l.expired_ssl),
        ] {
            if let Some(port) = port {
                command.args([flag, &port.to_string()]);
            }
        }
        if let Some(home) = &self.options.home {
            command.env("WEIR_KAFKA_HOME", home);
        }
        let output = command
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            if stderr.contains("install-kafka.sh") {
                panic!("{}", stderr.trim());
            }
            return Err(format!(
                "{} failed ({}):\n{stderr}",
                script.display(),
                output.status
            ));
        }
        if !self.options.properties.is_empty() {
            let path = self.dir.join("server.properties");
            let mut text = fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            text.push_str("\n# set by the test\n");
            for (key, value) in &self.options.properties {
                text.push_str(&format!("{key}={value}\n"));
            }
            fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// The JVM's arguments, one per line, as `scripts/kafka-config.sh` wrote them.
    fn java_args(&self) -> Result<Vec<String>, String> {
        let path = self.dir.join("java.args");
        let text = fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect())
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let out_path = self.dir.join("kafka.out");
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&out_path)
            .map_err(|e| format!("cannot open {}: {e}", out_path.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("cannot clone the log handle: {e}"))?;
        let mut command = Command::new("java");
        command
            .args(self.java_args()?)
            .current_dir(&self.dir)
            .env_remove("KAFKA_OPTS")
            .env_remove("JAVA_TOOL_OPTIONS")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
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
            .map_err(|e| format!("cannot run java (Java 17+ is needed): {e}"))?;
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
                    "Kafka exited ({status}) on port {}; its log:\n{}",
                    self.listeners.plaintext,
                    tail(&self.log(), 40)
                ));
            }
            match self.probe() {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
            thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "no answer on {} within {READY_TIMEOUT:?} (last: {last}); its log:\n{}",
            self.addr(),
            tail(&self.log(), 40)
        ))
    }

    /// Ready means ApiVersions answers and Metadata lists this broker.
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
            return Err("Metadata lists no broker yet".into());
        }
        Ok(())
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() {
            eprintln!("Kafka's directory kept at {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
