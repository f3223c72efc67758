//! The broker the integration tests talk to: Apache Kafka by default, tansu when
//! `WEIR_TEST_BROKER=tansu`.
//!
//! - [`Broker::shared`]: one broker per test binary, started on first use and shared by
//!   every test of that binary (fresh topics and groups per test keep them apart). It is
//!   owned by a thread that lives as long as the test process, so the broker gets
//!   SIGKILL (PR_SET_PDEATHSIG) when the process exits, also after a panic or a kill.
//! - [`Broker::dedicated`]: a broker of the calling test's own, for tests that kill,
//!   restart or reconfigure it. Durable storage (Kafka's log dirs; tansu's sqlite), so
//!   `restart` keeps the data. Killed on drop; start and drop it in the same thread.
//!
//! `WEIR_TEST_BOOTSTRAP=host:port` points the shared broker at an existing cluster
//! instead (tests that need a dedicated broker still start their own).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::mpsc;
use std::thread;

use super::kafka::{Kafka, KafkaOptions, Listeners};
use super::tansu::{Storage, Tansu};

/// Which broker implementation the tests run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    /// Apache Kafka (the reference), from `scripts/install-kafka.sh`.
    Kafka,
    /// tansu, a Kafka-compatible broker in Rust, from `scripts/install-tansu.sh`.
    Tansu,
}

impl Impl {
    /// `WEIR_TEST_BROKER` (`kafka`, the default, or `tansu`).
    pub fn from_env() -> Impl {
        match std::env::var("WEIR_TEST_BROKER").as_deref() {
            Err(_) | Ok("") | Ok("kafka") => Impl::Kafka,
            Ok("tansu") => Impl::Tansu,
            Ok(other) => panic!("WEIR_TEST_BROKER={other:?}: use kafka (default) or tansu"),
        }
    }
}

/// A broker started by this test, killed on drop.
#[derive(Debug)]
pub enum Broker {
    Kafka(Kafka),
    Tansu(Tansu),
}

impl Broker {
    /// A broker of the calling test's own (see the module docs).
    pub fn dedicated() -> Broker {
        Self::dedicated_with(KafkaOptions::default())
    }

    /// [`Broker::dedicated`] with Kafka options (security listeners, broker settings).
    /// Panics when the implementation is tansu and the options ask for more than
    /// plaintext.
    pub fn dedicated_with(options: KafkaOptions) -> Broker {
        match Impl::from_env() {
            Impl::Kafka => Broker::Kafka(Kafka::start(options)),
            Impl::Tansu => {
                assert!(
                    options.is_plain(),
                    "this test needs Apache Kafka (security listeners or broker settings)"
                );
                let dir = super::scratch_dir("tansu-dedicated");
                Broker::Tansu(Tansu::start(Storage::Sqlite(dir.join("tansu.db"))))
            }
        }
    }

    /// The broker every test of this binary shares.
    pub fn shared() -> &'static Shared {
        static SHARED: OnceLock<Result<Shared, String>> = OnceLock::new();
        match SHARED.get_or_init(|| start_shared(false)) {
            Ok(shared) => shared,
            Err(e) => panic!("the shared test broker did not start: {e}"),
        }
    }

    /// An Apache Kafka shared by the tests of this binary that listens for
    /// SASL_PLAINTEXT, SSL and SASL_SSL besides PLAINTEXT ([`KafkaOptions::security`]);
    /// [`Shared::listeners`] has the ports. Always Kafka, also with
    /// `WEIR_TEST_BROKER=tansu`: tansu has no security listeners.
    pub fn shared_security() -> &'static Shared {
        static SHARED: OnceLock<Result<Shared, String>> = OnceLock::new();
        match SHARED.get_or_init(|| start_shared(true)) {
            Ok(shared) => shared,
            Err(e) => panic!("the shared security broker did not start: {e}"),
        }
    }

    pub fn bootstrap(&self) -> String {
        match self {
            Broker::Kafka(k) => k.bootstrap(),
            Broker::Tansu(t) => t.bootstrap(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        match self {
            Broker::Kafka(k) => k.addr(),
            Broker::Tansu(t) => t.addr(),
        }
    }

    pub fn implementation(&self) -> Impl {
        match self {
            Broker::Kafka(_) => Impl::Kafka,
            Broker::Tansu(_) => Impl::Tansu,
        }
    }

    /// The broker's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        match self {
            Broker::Kafka(k) => k.pid(),
            Broker::Tansu(t) => t.pid(),
        }
    }

    /// SIGKILL, as a crash would. Idempotent.
    pub fn kill(&mut self) {
        match self {
            Broker::Kafka(k) => k.kill(),
            Broker::Tansu(t) => t.kill(),
        }
    }

    /// A controlled shutdown (SIGTERM, bounded). Idempotent.
    pub fn stop(&mut self) {
        match self {
            Broker::Kafka(k) => k.stop(),
            Broker::Tansu(t) => t.stop(),
        }
    }

    /// Starts the broker again (after `stop` or `kill`, or stops it first) on the same
    /// ports with the same data.
    pub fn restart(&mut self) {
        match self {
            Broker::Kafka(k) => k.restart(),
            Broker::Tansu(t) => t.restart(),
        }
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        match self {
            Broker::Kafka(k) => k.log(),
            Broker::Tansu(t) => t.log(),
        }
    }
}

/// The shared broker of a test binary (see [`Broker::shared`]).
#[derive(Debug, Clone)]
pub struct Shared {
    bootstrap: String,
    addr: SocketAddr,
    implementation: Option<Impl>,
    log: Option<PathBuf>,
    pid: Option<u32>,
    listeners: Option<Listeners>,
    tls_dir: Option<PathBuf>,
}

impl Shared {
    /// The listener ports (a Kafka started here).
    pub fn listeners(&self) -> Option<Listeners> {
        self.listeners
    }

    /// Where the TLS material is (a security broker started here).
    pub fn tls_dir(&self) -> Option<PathBuf> {
        self.tls_dir.clone()
    }

    pub fn bootstrap(&self) -> String {
        self.bootstrap.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `None` for an external cluster (`WEIR_TEST_BOOTSTRAP`).
    pub fn implementation(&self) -> Option<Impl> {
        self.implementation
    }

    /// Whether this is Apache Kafka started here (or an external cluster, assumed to
    /// be Kafka).
    pub fn is_kafka(&self) -> bool {
        self.implementation != Some(Impl::Tansu)
    }

    /// The broker's process id (`None` for an external cluster).
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The broker's log so far (empty for an external cluster).
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }
}

fn start_shared(security: bool) -> Result<Shared, String> {
    if let Ok(bootstrap) = std::env::var("WEIR_TEST_BOOTSTRAP")
        && !bootstrap.is_empty()
        && !security
    {
        let first = bootstrap.split(',').next().unwrap_or_default().to_string();
        let addr = first
            .to_socket_addrs()
            .map_err(|e| format!("WEIR_TEST_BOOTSTRAP={bootstrap}: {e}"))?
            .next()
            .ok_or_else(|| format!("WEIR_TEST_BOOTSTRAP={bootstrap}: no address"))?;
        return Ok(Shared {
            bootstrap,
            addr,
            implementation: None,
            log: None,
            pid: None,
            listeners: None,
            tls_dir: None,
        });
    }
    // The owner thread never returns: PR_SET_PDEATHSIG fires when the thread that
    // spawned the broker dies, which for this thread is when the process exits.
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name("shared-broker".into())
        .spawn(move || {
            let started = std::panic::catch_unwind(|| match (security, Impl::from_env()) {
                (true, _) => Broker::Kafka(Kafka::start(KafkaOptions::default().security())),
                (false, Impl::Kafka) => Broker::Kafka(Kafka::start(KafkaOptions::default())),
                (false, Impl::Tansu) => Broker::Tansu(Tansu::start(Storage::Memory)),
            });
            match started {
                Ok(broker) => {
                    let log = match &broker {
                        Broker::Kafka(k) => Some(k.log_path()),
                        Broker::Tansu(t) => Some(t.log_path()),
                    };
                    let _ = tx.send(Ok(Shared {
                        bootstrap: broker.bootstrap(),
                        addr: broker.addr(),
                        implementation: Some(broker.implementation()),
                        log,
                        pid: broker.pid(),
                        listeners: match &broker {
                            Broker::Kafka(k) => Some(k.listeners()),
                            Broker::Tansu(_) => None,
                        },
                        tls_dir: match &broker {
                            Broker::Kafka(k) if security => Some(k.tls_dir()),
                            _ => None,
                        },
                    }));
                    loop {
                        thread::park();
                    }
                }
                Err(panic) => {
                    let msg = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "panicked".into());
                    let _ = tx.send(Err(msg));
                }
            }
        })
        .map_err(|e| format!("cannot spawn the broker's owner thread: {e}"))?;
    rx.recv()
        .map_err(|_| "the broker's owner thread died".to_string())?
}
