//! Consumer configuration: Kafka's property names, defaults and validation.
//!
//! weir reads the same properties the Java consumer reads, so an existing
//! `consumer.properties` file works unchanged. Values come from four layers, each
//! overriding the one before it:
//!
//! 1. the defaults in [`PROPERTIES`] (Kafka's own defaults, or weir's for `weir.*` keys);
//! 2. a preset chosen with `--profile` ([`Profile`]);
//! 3. a Java `.properties` file given with `-F` ([`parse_properties`]);
//! 4. `-X name=value` pairs ([`parse_pair`]).
//!
//! [`ConfigBuilder`] collects the layers and [`ConfigBuilder::build`] checks every
//! value and every cross-property rule before anything connects, returning a typed
//! [`ConsumerConfig`] or a [`ConfigError`] whose message names the property and says
//! what to do next.
//!
//! ## Security
//! `security.protocol` is `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`.
//!
//! With SASL, `sasl.mechanism` is `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`, and the
//! credentials come from librdkafka's `sasl.username` / `sasl.password` or Java's
//! `sasl.jaas.config` ([`crate::jaas`]), one way or the other. `GSSAPI` (Kafka's
//! default mechanism) and `OAUTHBEARER` are refused by name
//! ([`ConfigError::Unsupported`]).
//!
//! With TLS ([`weir_fetch::tls`]), the trusted CAs come from librdkafka's
//! `ssl.ca.location` (a file, a directory, or `probe` for the system's; several,
//! comma-separated) or `ssl.ca.pem`, or from Java's PEM trust store
//! (`ssl.truststore.type=PEM` with `ssl.truststore.location` or
//! `ssl.truststore.certificates`); with none of them, from the system's trust store.
//! A client certificate (mTLS) is librdkafka's `ssl.certificate.location` +
//! `ssl.key.location` (or the `.pem` text forms) or Java's PEM key store
//! (`ssl.keystore.type=PEM` with `ssl.keystore.location`, or
//! `ssl.keystore.certificate.chain` + `ssl.keystore.key`); an encrypted PKCS#8 key
//! takes `ssl.key.password`. JKS and PKCS12 stores are refused with the command that
//! converts them to PEM. `ssl.endpoint.identification.algorithm=none` skips the
//! host-name check and `enable.ssl.certificate.verification=false` every certificate
//! check; both are warned about. The files are read while the configuration is
//! checked, so a missing or unusable one is a [`ConfigError::Tls`] before anything
//! connects. No error message quotes a password or a key.
//!
//! ## Properties weir recognises but does not implement
//! `key.deserializer` and `value.deserializer` are accepted and ignored, because weir
//! hands out bytes.
//!
//! `allow.auto.create.topics`, `connections.max.idle.ms`, `receive.buffer.bytes` and
//! `send.buffer.bytes` are refused too, except at the value that says what weir does
//! (`false`, `-1`, `-1`, `-1`), which is therefore their default here although Kafka's
//! differs: a setting accepted and silently not acted on would mislead (issue 10,
//! defect 13). `exclude.internal.topics` applies to pattern subscriptions
//! ([`crate::group::GroupConsumer::subscribe_pattern`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use weir_fetch::tls::{CaSource, ClientCert, Pem, TlsConfig};
use weir_protocol::auth::{Mechanism, SaslConfig, Secret};

/// The type of a property's value, and the rule its value must satisfy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Free text (possibly empty).
    Str,
    /// A signed integer in `min..=max`.
    Int {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// `true` or `false` (ASCII case-insensitive, as Java's `ConfigDef` reads them).
    Bool,
    /// One of a fixed set of words (compared case-insensitively, stored as listed).
    Enum(&'static [&'static str]),
    /// A comma-separated list of words.
    List,
}

/// Whether weir acts on a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// weir implements the property's meaning.
    Yes,
    /// Accepted for compatibility with existing files and ignored; the text says why.
    Ignored(&'static str),
    /// Recognised, but any value other than the default is refused; the text says why.
    Unsupported(&'static str),
}

/// One property weir accepts.
#[derive(Debug, Clone, Copy)]
pub struct PropertySpec {
    /// Kafka's name for it (or `weir.*` for weir's own).
    pub name: &'static str,
    /// The default, as text, or `None` when the property has no default.
    pub default: Option<&'static str>,
    /// The type and range of its value.
    pub kind: Kind,
    /// Whether weir implements it.
    pub support: Support,
    /// One line on what it does.
    pub doc: &'static str,
}

const I32: i64 = i32::MAX as i64;
const MS_MAX: i64 = i32::MAX as i64;
const SOCKET_BUFFERS_UNSUPPORTED: &str = "weir leaves socket buffer sizes to the operating system (Linux autotunes them to the connection); setting SO_RCVBUF/SO_SNDBUF is not implemented, leave it at -1";

const fn p(
    name: &'static str,
    default: Option<&'static str>,
    kind: Kind,
    doc: &'static str,
) -> PropertySpec {
    PropertySpec {
        name,
        default,
        kind,
        support: Support::Yes,
        doc,
    }
}

const fn int(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}

/// Properties whose values are secrets: never printed (`-X dump`, errors, logs).
pub const SECRET_PROPERTIES: &[&str] = &[
    "sasl.jaas.config",
    "sasl.password",
    "ssl.key.password",
    "ssl.key.pem",
    "ssl.keystore.key",
    "ssl.keystore.password",
    "ssl.truststore.password",
];

/// Every property weir accepts, with Kafka's defaults. Sorted by name.
pub static PROPERTIES: &[PropertySpec] = &[
    PropertySpec {
        name: "allow.auto.create.topics",
        // Kafka's default is true; weir's behaviour is false, so that is its default.
        default: Some("false"),
        kind: Kind::Bool,
        support: Support::Unsupported(
            "weir never asks a broker to create a topic (a mistyped -t or -G topic fails instead of creating one); create topics with kafka-topics.sh --create",
        ),
        doc: "Let the broker create a subscribed topic that does not exist (weir: false only).",
    },
    p(
        "auto.commit.interval.ms",
        Some("5000"),
        int(0, MS_MAX),
        "How often offsets are committed when enable.auto.commit=true.",
    ),
    p(
        "auto.offset.reset",
        Some("latest"),
        Kind::Enum(&["earliest", "latest", "none"]),
        "Where to start when there is no committed offset (or it is out of range).",
    ),
    p(
        "bootstrap.servers",
        None,
        Kind::List,
        "Comma-separated host:port list used to discover the cluster.",
    ),
    p(
        "check.crcs",
        Some("true"),
        Kind::Bool,
        "Verify the CRC32C of every record batch.",
    ),
    p(
        "client.id",
        Some("weir"),
        Kind::Str,
        "Name sent with every request, for broker logs and quotas.",
    ),
    p(
        "client.rack",
        Some(""),
        Kind::Str,
        "Rack of this consumer, for fetching from the closest replica (KIP-392).",
    ),
    PropertySpec {
        name: "connections.max.idle.ms",
        // -1 is Kafka's "never close idle connections", which is what weir does.
        default: Some("-1"),
        kind: int(-1, i64::MAX),
        support: Support::Unsupported(
            "weir keeps its broker connections open (fetches long-poll, the coordinator connection heartbeats) and does not close idle ones; leave it at -1",
        ),
        doc: "Close connections idle for longer than this (weir: -1, never, only).",
    },
    p(
        "default.api.timeout.ms",
        Some("60000"),
        int(0, MS_MAX),
        "Timeout for blocking calls that take no explicit timeout.",
    ),
    p(
        "enable.auto.commit",
        Some("true"),
        Kind::Bool,
        "Commit consumed offsets periodically in the background (needs group.id).",
    ),
    p(
        "enable.sasl.oauthbearer.unsecure.jwt",
        Some("false"),
        Kind::Bool,
        "librdkafka: make unsecured OAUTHBEARER tokens (alg none) from sasl.oauthbearer.config, for brokers that accept them (tests, development).",
    ),
    p(
        "enable.ssl.certificate.verification",
        Some("true"),
        Kind::Bool,
        "librdkafka's switch for checking the broker's certificate at all; false is insecure and warned about.",
    ),
    p(
        "exclude.internal.topics",
        Some("true"),
        Kind::Bool,
        "Never match internal topics (such as __consumer_offsets) in pattern subscriptions (-G GROUP ^regex); an internal topic named explicitly is read, as in Kafka.",
    ),
    p(
        "fetch.max.bytes",
        Some("52428800"),
        int(0, I32),
        "Most data a fetch response may return (must fit in weir.ring.bytes).",
    ),
    p(
        "fetch.max.wait.ms",
        Some("500"),
        int(0, MS_MAX),
        "How long the broker may hold a fetch waiting for fetch.min.bytes.",
    ),
    p(
        "fetch.min.bytes",
        Some("1"),
        int(0, I32),
        "Least data the broker should gather before answering a fetch.",
    ),
    p(
        "group.id",
        None,
        Kind::Str,
        "Consumer group this consumer joins; needed for subscriptions and offset commits.",
    ),
    p(
        "group.instance.id",
        None,
        Kind::Str,
        "Static membership id (KIP-345): restarts within session.timeout.ms cause no rebalance.",
    ),
    p(
        "group.protocol",
        Some("classic"),
        Kind::Enum(&["classic", "consumer"]),
        "classic: JoinGroup/SyncGroup, a member assigns; consumer (KIP-848, Kafka 4.0+): the broker assigns and rebalances incrementally.",
    ),
    p(
        "group.remote.assignor",
        None,
        Kind::Str,
        "With group.protocol=consumer: the broker-side assignor (uniform, range); unset lets the broker choose.",
    ),
    p(
        "heartbeat.interval.ms",
        Some("3000"),
        int(1, MS_MAX),
        "Interval between heartbeats to the group coordinator; keep below session.timeout.ms / 3.",
    ),
    p(
        "isolation.level",
        Some("read_uncommitted"),
        Kind::Enum(&["read_uncommitted", "read_committed"]),
        "read_committed hides records of aborted transactions and stops at the last stable offset.",
    ),
    PropertySpec {
        name: "key.deserializer",
        default: None,
        kind: Kind::Str,
        support: Support::Ignored("weir hands out keys as bytes"),
        doc: "Java deserializer class for keys (ignored).",
    },
    p(
        "max.partition.fetch.bytes",
        Some("1048576"),
        int(0, I32),
        "Most data returned per partition in one fetch.",
    ),
    p(
        "max.poll.interval.ms",
        Some("300000"),
        int(1, MS_MAX),
        "Longest allowed gap between polls before the member leaves the group.",
    ),
    p(
        "max.poll.records",
        Some("500"),
        int(1, I32),
        "Most records handed to the application by one poll.",
    ),
    p(
        "metadata.max.age.ms",
        Some("300000"),
        int(0, MS_MAX),
        "Refresh metadata at least this often even without errors.",
    ),
    p(
        "metadata.recovery.rebootstrap.trigger.ms",
        Some("300000"),
        int(0, MS_MAX),
        "With metadata.recovery.strategy=rebootstrap: after this long with no broker reachable, dial bootstrap.servers again.",
    ),
    p(
        "metadata.recovery.strategy",
        Some("rebootstrap"),
        Kind::Enum(&["none", "rebootstrap"]),
        "KIP-1102: rebootstrap goes back to bootstrap.servers when every known broker is unreachable; none keeps to the advertised ones.",
    ),
    p(
        "partition.assignment.strategy",
        Some("range,cooperative-sticky"),
        Kind::List,
        "Assignors offered to the group, in preference order (Java class names or range, roundrobin, sticky, cooperative-sticky).",
    ),
    PropertySpec {
        name: "receive.buffer.bytes",
        // -1 is Kafka's "the OS default", which is what weir uses.
        default: Some("-1"),
        kind: int(-1, I32),
        support: Support::Unsupported(SOCKET_BUFFERS_UNSUPPORTED),
        doc: "Socket receive buffer (SO_RCVBUF); -1 uses the OS default (weir: -1 only).",
    },
    p(
        "reconnect.backoff.max.ms",
        Some("1000"),
        int(0, MS_MAX),
        "Ceiling of the exponential reconnect backoff.",
    ),
    p(
        "reconnect.backoff.ms",
        Some("50"),
        int(0, MS_MAX),
        "First wait before reconnecting to a broker.",
    ),
    p(
        "request.timeout.ms",
        Some("30000"),
        int(0, MS_MAX),
        "How long to wait for a broker's answer; must exceed fetch.max.wait.ms.",
    ),
    p(
        "retry.backoff.max.ms",
        Some("1000"),
        int(0, MS_MAX),
        "Ceiling of the exponential retry backoff.",
    ),
    p(
        "retry.backoff.ms",
        Some("100"),
        int(0, MS_MAX),
        "First wait before retrying a failed request.",
    ),
    PropertySpec {
        name: "sasl.jaas.config",
        default: None,
        kind: Kind::Str,
        support: Support::Yes,
        doc: "Java's SASL login configuration: PlainLoginModule or ScramLoginModule with username and password.",
    },
    p(
        "sasl.login.callback.handler.class",
        None,
        Kind::Str,
        "Java's token source class: only Kafka's OAuthBearerLoginCallbackHandler, which sasl.oauthbearer.token.endpoint.url configures.",
    ),
    PropertySpec {
        name: "sasl.mechanism",
        default: Some("GSSAPI"),
        kind: Kind::Enum(&[
            "GSSAPI",
            "PLAIN",
            "SCRAM-SHA-256",
            "SCRAM-SHA-512",
            "OAUTHBEARER",
        ]),
        support: Support::Yes,
        doc: "SASL mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (Kafka's default GSSAPI is not implemented).",
    },
    p(
        "sasl.oauthbearer.config",
        None,
        Kind::Str,
        "librdkafka's unsecured-token settings: principal=NAME [scope=A,B] [lifeSeconds=N] [principalClaimName=C] [extension_KEY=VALUE] (with enable.sasl.oauthbearer.unsecure.jwt=true).",
    ),
    p(
        "sasl.oauthbearer.token.endpoint.url",
        None,
        Kind::Str,
        "Where OAUTHBEARER tokens come from: file:///path reads the token from the file at every authentication (an OIDC endpoint over https is not implemented).",
    ),
    PropertySpec {
        name: "sasl.password",
        default: None,
        kind: Kind::Str,
        support: Support::Yes,
        doc: "SASL password (librdkafka's name; Java uses sasl.jaas.config).",
    },
    PropertySpec {
        name: "sasl.username",
        default: None,
        kind: Kind::Str,
        support: Support::Yes,
        doc: "SASL user name (librdkafka's name; Java uses sasl.jaas.config).",
    },
    PropertySpec {
        name: "security.protocol",
        default: Some("PLAINTEXT"),
        kind: Kind::Enum(&["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]),
        support: Support::Yes,
        doc: "Transport and authentication: PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or SASL_SSL (SASL over TLS).",
    },
    PropertySpec {
        name: "send.buffer.bytes",
        // -1 is Kafka's "the OS default", which is what weir uses.
        default: Some("-1"),
        kind: int(-1, I32),
        support: Support::Unsupported(SOCKET_BUFFERS_UNSUPPORTED),
        doc: "Socket send buffer (SO_SNDBUF); -1 uses the OS default (weir: -1 only).",
    },
    p(
        "session.timeout.ms",
        Some("45000"),
        int(1, MS_MAX),
        "A member silent for this long is evicted from the group.",
    ),
    p(
        "ssl.ca.location",
        None,
        Kind::Str,
        "CA certificates (PEM) that sign the brokers' certificates: a file, a directory of files, or probe for the system's; comma-separated for several. Default: the system's.",
    ),
    p(
        "ssl.ca.pem",
        None,
        Kind::Str,
        "CA certificates as PEM text (librdkafka).",
    ),
    p(
        "ssl.certificate.location",
        None,
        Kind::Str,
        "Client certificate chain (PEM file) for brokers that require one (mTLS).",
    ),
    p(
        "ssl.certificate.pem",
        None,
        Kind::Str,
        "Client certificate chain as PEM text (librdkafka).",
    ),
    p(
        "ssl.endpoint.identification.algorithm",
        Some("https"),
        Kind::Enum(&["https", "none"]),
        "https checks that the broker's certificate names the host dialled; none skips that check (insecure).",
    ),
    p(
        "ssl.key.location",
        None,
        Kind::Str,
        "The client certificate's private key (PEM file; encrypted PKCS#8 with ssl.key.password).",
    ),
    p(
        "ssl.key.password",
        None,
        Kind::Str,
        "Password of an encrypted private key (ssl.key.location, ssl.key.pem, ssl.keystore.key or the PEM keystore).",
    ),
    p(
        "ssl.key.pem",
        None,
        Kind::Str,
        "The client certificate's private key as PEM text (librdkafka).",
    ),
    p(
        "ssl.keystore.certificate.chain",
        None,
        Kind::Str,
        "Java's PEM form: the client certificate chain as PEM text (ssl.keystore.type=PEM).",
    ),
    p(
        "ssl.keystore.key",
        None,
        Kind::Str,
        "Java's PEM form: the client private key as PEM text (ssl.keystore.type=PEM).",
    ),
    p(
        "ssl.keystore.location",
        None,
        Kind::Str,
        "Java's client key store; weir reads ssl.keystore.type=PEM files (private key and certificate chain in one file).",
    ),
    PropertySpec {
        name: "ssl.keystore.password",
        default: None,
        kind: Kind::Str,
        support: Support::Ignored(
            "a PEM key store has no store password; an encrypted key's password is ssl.key.password",
        ),
        doc: "Java's key store password (JKS and PKCS12 stores, which weir does not read).",
    },
    p(
        "ssl.keystore.type",
        Some("JKS"),
        Kind::Enum(&["JKS", "PKCS12", "PEM"]),
        "Format of ssl.keystore.location: weir reads PEM (JKS and PKCS12 are refused with the openssl command that converts them).",
    ),
    p(
        "ssl.truststore.certificates",
        None,
        Kind::Str,
        "Java's PEM form: trusted CA certificates as PEM text (ssl.truststore.type=PEM).",
    ),
    p(
        "ssl.truststore.location",
        None,
        Kind::Str,
        "Java's trust store; weir reads ssl.truststore.type=PEM files of CA certificates.",
    ),
    PropertySpec {
        name: "ssl.truststore.password",
        default: None,
        kind: Kind::Str,
        support: Support::Ignored("a PEM trust store has no password"),
        doc: "Java's trust store password (JKS and PKCS12 stores, which weir does not read).",
    },
    p(
        "ssl.truststore.type",
        Some("JKS"),
        Kind::Enum(&["JKS", "PKCS12", "PEM"]),
        "Format of ssl.truststore.location: weir reads PEM (JKS and PKCS12 are refused with the command that converts them).",
    ),
    PropertySpec {
        name: "value.deserializer",
        default: None,
        kind: Kind::Str,
        support: Support::Ignored("weir hands out values as bytes"),
        doc: "Java deserializer class for values (ignored).",
    },
    p(
        "weir.coordinator.ring.bytes",
        Some("8388608"),
        int(1 << 16, 1 << 32),
        "Receive buffer of the group coordinator's connection, apart from the fetch ring, \
         so fetched data waiting for slow handlers never delays a heartbeat answer.",
    ),
    p(
        "weir.max.decompressed.batch.bytes",
        Some("33554432"),
        int(1024, I32),
        "Largest decompressed record batch a worker will inflate; larger batches are an error.",
    ),
    p(
        "weir.ring.bytes",
        Some("67108864"),
        int(1 << 16, 1 << 40),
        "The fetch ring buffer: weir's memory budget for undelivered fetch data.",
    ),
    p(
        "weir.sink.allow.reset",
        Some("false"),
        Kind::Bool,
        "--sink: when the sink's position is no longer in the log (OFFSET_OUT_OF_RANGE: \
         retention deleted records it never wrote, or the log was truncated), apply \
         auto.offset.reset and leave the gap in the files; false stops with an error.",
    ),
    p(
        "weir.sink.checkpoint.ms",
        Some("1000"),
        int(1, MS_MAX),
        "--sink: fsync and checkpoint at least this often.",
    ),
    p(
        "weir.sink.segment.bytes",
        Some("268435456"),
        int(1, 1 << 40),
        "--sink: start a new segment file once the open one reaches this size.",
    ),
    p(
        "weir.sink.segment.ms",
        Some("600000"),
        int(0, MS_MAX),
        "--sink: start a new segment file once the open one is this old (0: never by age).",
    ),
    p(
        "weir.worker.threads",
        Some("0"),
        int(0, 1024),
        "Partition worker threads for the library's Consumer::run_workers (0: one per \
         available core); `weir consume` itself runs on one thread and does not use it.",
    ),
];

/// Looks a property up by its exact name.
pub fn spec(name: &str) -> Option<&'static PropertySpec> {
    PROPERTIES.iter().find(|s| s.name == name)
}

/// The known name closest to `name` by edit distance, if any is reasonably close.
pub fn nearest_property(name: &str) -> Option<&'static str> {
    nearest(name, PROPERTIES.iter().map(|s| s.name))
}

fn nearest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lowered = name.to_ascii_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        let d = edit_distance(&lowered, c);
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    // Suggest only when at most about half of the name would have to change.
    best.filter(|&(d, c)| d <= name.len().max(c.len()).div_ceil(2))
        .map(|(_, c)| c)
}

/// Levenshtein distance over bytes (property names are ASCII).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Where a value came from, so errors can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// A `--profile` preset.
    Profile(Profile),
    /// A `.properties` file, with the 1-based line the entry started on.
    File {
        /// The file.
        path: PathBuf,
        /// The line the entry started on.
        line: usize,
    },
    /// A `-X name=value` flag.
    Flag,
    /// Set by a command-line option other than -X (such as `-b` or `-G`).
    Option(&'static str),
    /// Set by the embedding application ([`ConfigBuilder::property`]).
    Application,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::Profile(p) => write!(f, "--profile {}", p.name()),
            Source::File { path, line } => write!(f, "{}:{}", path.display(), line),
            Source::Flag => f.write_str("-X"),
            Source::Option(o) => f.write_str(o),
            Source::Application => f.write_str("the application"),
        }
    }
}

/// A configuration problem found before connecting. Every message names the property
/// (and where its value came from) and says what to do next.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// A property name weir does not know.
    UnknownProperty {
        /// The name as given.
        name: String,
        /// The closest known name, if any is close.
        suggestion: Option<&'static str>,
        /// Where the name appeared.
        source: Source,
    },
    /// A value of the wrong type or out of range.
    InvalidValue {
        /// The property.
        name: &'static str,
        /// The value as given.
        value: String,
        /// What would be accepted.
        expected: String,
        /// Where the value came from.
        source: Source,
    },
    /// A property weir recognises but cannot honour yet.
    Unsupported {
        /// The property.
        name: &'static str,
        /// The value as given.
        value: String,
        /// Why, and what to do instead.
        reason: &'static str,
    },
    /// A required property was not set.
    Missing {
        /// The property.
        name: &'static str,
        /// Why it is needed here.
        why: &'static str,
    },
    /// A `bootstrap.servers` entry that is not `host:port`.
    BadBroker {
        /// The entry as given.
        entry: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two properties that contradict each other.
    Conflict {
        /// What is wrong, naming both properties and their values.
        message: String,
        /// What to change.
        fix: &'static str,
    },
    /// A fetch size that cannot fit in the memory budget.
    OverBudget {
        /// The property asking for too much.
        name: &'static str,
        /// Its value.
        value: i64,
        /// The budget property.
        budget_name: &'static str,
        /// The budget.
        budget: i64,
    },
    /// TLS settings that cannot be used (a file missing, no certificate or key in
    /// it, a key store format weir does not read); the message names the property.
    Tls(String),
    /// A `-X` argument without `=`.
    MalformedPair(String),
    /// A `.properties` line that could not be read.
    MalformedLine {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A `--profile` name that does not exist.
    UnknownProfile {
        /// The name as given.
        name: String,
        /// The closest preset name, if any.
        suggestion: Option<&'static str>,
    },
    /// A file that could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Tls(m) => f.write_str(m),
            ConfigError::UnknownProperty {
                name,
                suggestion,
                source,
            } => {
                write!(f, "unknown property `{name}` (from {source})")?;
                match suggestion {
                    Some(s) => write!(f, "; did you mean `{s}`?"),
                    None => f.write_str("; run `weir consume --help-properties` to list the properties weir accepts"),
                }
            }
            ConfigError::InvalidValue {
                name,
                value,
                expected,
                source,
            } => {
                write!(
                    f,
                    "invalid value `{value}` for `{name}` (from {source}): expected {expected}"
                )
            }
            ConfigError::Unsupported {
                name,
                value,
                reason,
            } => {
                write!(f, "`{name}={value}` is not supported: {reason}")
            }
            ConfigError::Missing { name, why } => write!(f, "`{name}` is not set: {why}"),
            ConfigError::BadBroker { entry, reason } => write!(
                f,
                "bad broker address `{entry}` in bootstrap.servers: {reason}; give host:port, for example localhost:9092 (IPv6 as [::1]:9092)"
            ),
            ConfigError::Conflict { message, fix } => write!(f, "{message}; {fix}"),
            ConfigError::OverBudget {
                name,
                value,
                budget_name,
                budget,
            } => write!(
                f,
                "`{name}={value}` exceeds the memory budget `{budget_name}={budget}`: a whole fetch response (plus 64 KiB for its headers) must fit in the ring buffer; lower `{name}` or raise `{budget_name}`"
            ),
            ConfigError::MalformedPair(arg) => {
                write!(
                    f,
                    "malformed -X argument `{arg}`: expected name=value, for example -X fetch.min.bytes=1024"
                )
            }
            ConfigError::MalformedLine { path, line, reason } => {
                write!(f, "{}:{line}: {reason}", path.display())
            }
            ConfigError::UnknownProfile { name, suggestion } => {
                write!(f, "unknown profile `{name}`")?;
                if let Some(s) = suggestion {
                    write!(f, "; did you mean `{s}`?")?;
                }
                write!(f, " (profiles: {})", Profile::NAMES.join(", "))
            }
            ConfigError::Io { path, error } => write!(f, "cannot read {}: {error}", path.display()),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// The presets of `--profile`, with the values of the seed's production guide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Log ingestion: big fetches, long waits, large polls, frequent auto commits.
    HighThroughput,
    /// Answer at once with whatever is there; small polls; manual commits.
    LowLatency,
    /// Moderate fetches, read_committed, CRC checks, manual commits.
    Reliable,
    /// Stream processing: medium fetches, short waits, long poll interval for heavy
    /// processing, manual commits, read_committed.
    ///
    /// The seed gives no YAML for this preset. The values come from the stream
    /// processing branch of its Go sketch (`fetch.min.bytes=1`, `fetch.max.bytes=5MiB`,
    /// `fetch.max.wait.ms=100`, `max.poll.records=1000`, `enable.auto.commit=false`,
    /// `max.poll.interval.ms=600000`); weir adds `isolation.level=read_committed`,
    /// because the seed's stream processing commits offsets together with results and
    /// must therefore not see aborted transactions.
    StreamProcessing,
    /// Across data centres (high latency): long request, session and heartbeat
    /// timings within the seed's bounds, range assignment (the seed warns against
    /// sticky strategies here), start from the latest offset without a commit.
    CrossDatacenter,
}

impl Profile {
    /// The names `--profile` accepts.
    pub const NAMES: [&'static str; 5] = [
        "high-throughput",
        "low-latency",
        "reliable",
        "stream-processing",
        "cross-datacenter",
    ];

    /// The preset's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Profile::HighThroughput => Self::NAMES[0],
            Profile::LowLatency => Self::NAMES[1],
            Profile::Reliable => Self::NAMES[2],
            Profile::StreamProcessing => Self::NAMES[3],
            Profile::CrossDatacenter => Self::NAMES[4],
        }
    }

    /// The properties the preset sets.
    pub fn values(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Profile::HighThroughput => &[
                ("fetch.min.bytes", "1048576"),
                ("fetch.max.bytes", "52428800"),
                ("fetch.max.wait.ms", "1000"),
                ("max.poll.records", "2000"),
                ("enable.auto.commit", "true"),
                ("auto.commit.interval.ms", "1000"),
            ],
            Profile::LowLatency => &[
                ("fetch.min.bytes", "1"),
                ("fetch.max.bytes", "1048576"),
                ("fetch.max.wait.ms", "10"),
                ("max.poll.records", "100"),
                ("enable.auto.commit", "false"),
            ],
            Profile::Reliable => &[
                ("fetch.min.bytes", "1024"),
                ("fetch.max.bytes", "10485760"),
                ("fetch.max.wait.ms", "500"),
                ("max.poll.records", "500"),
                ("enable.auto.commit", "false"),
                ("isolation.level", "read_committed"),
                ("check.crcs", "true"),
            ],
            Profile::StreamProcessing => &[
                ("fetch.min.bytes", "1"),
                ("fetch.max.bytes", "5242880"),
                ("fetch.max.wait.ms", "100"),
                ("max.poll.records", "1000"),
                ("enable.auto.commit", "false"),
                ("max.poll.interval.ms", "600000"),
                ("isolation.level", "read_committed"),
            ],
            // The seed's scenario 4: request.timeout.ms 60000-120000, session.timeout.ms
            // 30000-60000, heartbeat.interval.ms 5000-10000, latest without a commit.
            Profile::CrossDatacenter => &[
                ("request.timeout.ms", "90000"),
                ("default.api.timeout.ms", "120000"),
                ("session.timeout.ms", "60000"),
                ("heartbeat.interval.ms", "10000"),
                ("partition.assignment.strategy", "range"),
                ("auto.offset.reset", "latest"),
                ("reconnect.backoff.max.ms", "10000"),
            ],
        }
    }
}

impl std::str::FromStr for Profile {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let all = [
            Profile::HighThroughput,
            Profile::LowLatency,
            Profile::Reliable,
            Profile::StreamProcessing,
            Profile::CrossDatacenter,
        ];
        all.into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| ConfigError::UnknownProfile {
                name: s.to_owned(),
                suggestion: nearest(s, Profile::NAMES.into_iter()),
            })
    }
}

/// Splits one `-X name=value` argument.
pub fn parse_pair(arg: &str) -> Result<(String, String), ConfigError> {
    match arg.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(ConfigError::MalformedPair(arg.to_owned())),
    }
}

/// One `key=value` entry of a `.properties` file, with the line it started on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyEntry {
    /// The key, unescaped.
    pub key: String,
    /// The value, unescaped.
    pub value: String,
    /// The 1-based line the entry started on.
    pub line: usize,
}

/// Parses Java `.properties` text (`java.util.Properties.load` rules).
///
/// Lines starting (after blanks) with `#` or `!` are comments. The key ends at the
/// first unescaped `=`, `:` or blank; blanks and one `=`/`:` after it are skipped. A
/// line ending in an odd number of backslashes continues on the next line, whose
/// leading blanks are dropped. Escapes: `\t \n \r \f \uXXXX`, and `\x` is `x` for any
/// other `x`. `path` is used only in error messages.
pub fn parse_properties(text: &str, path: &Path) -> Result<Vec<PropertyEntry>, ConfigError> {
    let mut entries = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((idx, raw)) = lines.next() {
        let first_line = idx + 1;
        let trimmed = raw.trim_start_matches([' ', '\t', '\x0c']);
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            continue;
        }
        // Join continuation lines into one logical line.
        let mut logical = String::from(trimmed);
        while ends_with_odd_backslashes(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start_matches([' ', '\t', '\x0c'])),
                None => break,
            }
        }
        let (key, value) = split_logical(&logical);
        let key = unescape(key).map_err(|reason| ConfigError::MalformedLine {
            path: path.to_owned(),
            line: first_line,
            reason,
        })?;
        let value = unescape(value).map_err(|reason| ConfigError::MalformedLine {
            path: path.to_owned(),
            line: first_line,
            reason,
        })?;
        entries.push(PropertyEntry {
            key,
            value,
            line: first_line,
        });
    }
    Ok(entries)
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// Splits a logical line into its raw (still escaped) key and value.
fn split_logical(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut i = 0;
    let mut key_end = bytes.len();
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' | b':' | b' ' | b'\t' | b'\x0c' => {
                key_end = i;
                break;
            }
            _ => i += 1,
        }
    }
    let key_end = key_end.min(bytes.len());
    let mut j = key_end;
    while j < bytes.len() && matches!(bytes[j], b' ' | b'\t' | b'\x0c') {
        j += 1;
    }
    if j < bytes.len() && matches!(bytes[j], b'=' | b':') {
        j += 1;
        while j < bytes.len() && matches!(bytes[j], b' ' | b'\t' | b'\x0c') {
            j += 1;
        }
    }
    // key_end and j sit on ASCII bytes or the end, so both are char boundaries.
    (&line[..key_end], &line[j..])
}

fn unescape(s: &str) -> Result<String, &'static str> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = (hex.len() == 4)
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .ok_or("malformed \\uXXXX escape: expected four hex digits")?;
                out.push(
                    char::from_u32(code).ok_or("\\u escape names a surrogate, not a character")?,
                );
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

/// One `bootstrap.servers` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddr {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for BrokerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl BrokerAddr {
    /// Parses `host:port` or `[v6]:port`. A `PLAINTEXT://` prefix is accepted, as
    /// Kafka's listener syntax allows.
    pub fn parse(entry: &str) -> Result<Self, ConfigError> {
        let bad = |reason| ConfigError::BadBroker {
            entry: entry.to_owned(),
            reason,
        };
        let s = entry.trim();
        let s = s.strip_prefix("PLAINTEXT://").unwrap_or(s);
        if s.contains("://") {
            return Err(bad(
                "give host:port without a scheme (only PLAINTEXT:// is stripped); security.protocol chooses TLS and SASL",
            ));
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, after) = rest
                .split_once(']')
                .ok_or_else(|| bad("missing `]` after the IPv6 address"))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| bad("missing :port after the IPv6 address"))?;
            (h, port)
        } else {
            let (h, port) = s.rsplit_once(':').ok_or_else(|| bad("missing :port"))?;
            if h.contains(':') {
                return Err(bad("IPv6 addresses need brackets"));
            }
            (h, port)
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b))
        {
            return Err(bad(
                "the host contains characters not allowed in a host name",
            ));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| bad("the port is not a number from 1 to 65535"))?;
        if port == 0 {
            return Err(bad("the port is not a number from 1 to 65535"));
        }
        Ok(BrokerAddr {
            host: host.to_owned(),
            port,
        })
    }
}

/// `isolation.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationLevel {
    /// Deliver every record, including those of open and aborted transactions.
    ReadUncommitted,
    /// Deliver only committed records, up to the last stable offset.
    ReadCommitted,
}

/// `auto.offset.reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// Start from the log start.
    Earliest,
    /// Start from the log end.
    Latest,
    /// Fail instead of resetting.
    None,
}

/// One entry of `partition.assignment.strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignor {
    /// Kafka's RangeAssignor.
    Range,
    /// Kafka's RoundRobinAssignor.
    RoundRobin,
    /// Kafka's StickyAssignor (eager).
    Sticky,
    /// Kafka's CooperativeStickyAssignor (incremental rebalances).
    CooperativeSticky,
}

impl Assignor {
    fn parse(word: &str) -> Option<Self> {
        let short = word
            .trim()
            .rsplit('.')
            .next()
            .unwrap_or(word)
            .to_ascii_lowercase();
        match short.as_str() {
            "range" | "rangeassignor" => Some(Assignor::Range),
            "roundrobin" | "roundrobinassignor" => Some(Assignor::RoundRobin),
            "sticky" | "stickyassignor" => Some(Assignor::Sticky),
            "cooperative-sticky" | "cooperativestickyassignor" => Some(Assignor::CooperativeSticky),
            _ => None,
        }
    }

    /// The protocol name the assignor uses in JoinGroup.
    pub fn protocol_name(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::RoundRobin => "roundrobin",
            Assignor::Sticky => "sticky",
            Assignor::CooperativeSticky => "cooperative-sticky",
        }
    }
}

/// How the consumer will run; some rules depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Manual assignment (`-t`/`-p`), no group needed unless offsets are committed.
    Assign,
    /// Group subscription (`-G`): `group.id` is required.
    Group,
}

/// A source of unsecured tokens, made fresh (with the current time) at every
/// authentication.
fn unsecured_source(
    what: &str,
    claims: Vec<(String, String)>,
    lifetime_s: u64,
    extensions: Vec<(String, String)>,
) -> weir_protocol::auth::TokenSource {
    weir_protocol::auth::TokenSource::new(what, extensions, move || {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| "the system clock is before 1970".to_owned())?
            .as_secs();
        Ok(Secret::new(weir_protocol::auth::unsecured_jwt(
            &claims, now, lifetime_s,
        )))
    })
}

/// The command that turns a Java key store into the PEM weir reads.
fn store_command(kind: &str, path: &str, with_key: bool) -> String {
    match (kind, with_key) {
        ("PKCS12", false) => format!("openssl pkcs12 -in {path} -nokeys -out ca.pem"),
        ("PKCS12", true) => format!("openssl pkcs12 -in {path} -nodes -out client.pem"),
        (_, false) => {
            format!("keytool -exportcert -rfc -keystore {path} -alias ALIAS -file ca.pem")
        }
        (_, true) => format!(
            "keytool -importkeystore -srckeystore {path} -destkeystore client.p12 -deststoretype PKCS12, then openssl pkcs12 -in client.p12 -nodes -out client.pem"
        ),
    }
}

/// The validated configuration, with typed values.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)] // Each field is the property of the same name; see PROPERTIES.
pub struct ConsumerConfig {
    pub bootstrap_servers: Vec<BrokerAddr>,
    pub group_id: Option<String>,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_rack: String,
    pub session_timeout_ms: u32,
    pub heartbeat_interval_ms: u32,
    pub max_poll_interval_ms: u32,
    pub max_poll_records: u32,
    pub fetch_min_bytes: u32,
    pub fetch_max_bytes: u32,
    pub fetch_max_wait_ms: u32,
    pub max_partition_fetch_bytes: u32,
    pub request_timeout_ms: u32,
    pub default_api_timeout_ms: u32,
    pub retry_backoff_ms: u32,
    pub retry_backoff_max_ms: u32,
    pub reconnect_backoff_ms: u32,
    pub reconnect_backoff_max_ms: u32,
    pub metadata_max_age_ms: u32,
    /// `exclude.internal.topics`: pattern subscriptions never match internal topics.
    pub exclude_internal_topics: bool,
    /// `metadata.recovery.strategy=rebootstrap`: `metadata.recovery.rebootstrap.trigger.ms`;
    /// `None` for `strategy=none`.
    pub rebootstrap_trigger_ms: Option<u32>,
    pub isolation_level: IsolationLevel,
    pub auto_offset_reset: OffsetReset,
    pub enable_auto_commit: bool,
    pub auto_commit_interval_ms: u32,
    pub check_crcs: bool,
    pub partition_assignment_strategy: Vec<Assignor>,
    /// `group.protocol`.
    pub group_protocol: weir_coordinator::GroupProtocol,
    /// `group.remote.assignor` (only with `group.protocol=consumer`).
    pub group_remote_assignor: Option<String>,
    pub ring_bytes: u64,
    pub coordinator_ring_bytes: u64,
    pub worker_threads: u32,
    pub max_decompressed_batch_bytes: u32,
    pub sink_segment_bytes: u64,
    pub sink_segment_ms: u32,
    pub sink_checkpoint_ms: u32,
    pub sink_allow_reset: bool,
    /// `security.protocol=SASL_PLAINTEXT`: the mechanism and credentials (from
    /// `sasl.username`/`sasl.password` or `sasl.jaas.config`). `None`: PLAINTEXT.
    pub sasl: Option<SaslConfig>,
    /// `security.protocol=SSL` or `SASL_SSL`: where the CAs and the client
    /// certificate come from, and what is verified. `None`: no TLS.
    pub tls: Option<TlsConfig>,
    /// Advice that does not stop the consumer (printed unless `-q`).
    pub warnings: Vec<String>,
}

/// Collects property values layer by layer; later values override earlier ones.
#[derive(Debug, Clone, Default)]
pub struct ConfigBuilder {
    values: BTreeMap<&'static str, (String, Source)>,
}

impl ConfigBuilder {
    /// An empty builder: every property at its default.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets one property. An unknown name is an error naming the closest known one.
    pub fn set(
        &mut self,
        name: &str,
        value: &str,
        source: Source,
    ) -> Result<&mut Self, ConfigError> {
        let name = name.trim();
        let spec = spec(name).ok_or_else(|| ConfigError::UnknownProperty {
            name: name.to_owned(),
            suggestion: nearest_property(name),
            source: source.clone(),
        })?;
        self.values
            .insert(spec.name, (value.trim().to_owned(), source));
        Ok(self)
    }

    /// Sets one property on behalf of the embedding application (errors name the
    /// application as the value's source).
    pub fn property(&mut self, name: &str, value: &str) -> Result<&mut Self, ConfigError> {
        self.set(name, value, Source::Application)
    }

    /// Applies a preset's values.
    pub fn profile(&mut self, profile: Profile) -> &mut Self {
        for (k, v) in profile.values() {
            if let Some(spec) = spec(k) {
                self.values
                    .insert(spec.name, ((*v).to_owned(), Source::Profile(profile)));
            }
        }
        self
    }

    /// Reads a Java `.properties` file and applies its entries.
    pub fn properties_file(&mut self, path: &Path) -> Result<&mut Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Io {
            path: path.to_owned(),
            error,
        })?;
        for e in parse_properties(&text, path)? {
            self.set(
                &e.key,
                &e.value,
                Source::File {
                    path: path.to_owned(),
                    line: e.line,
                },
            )?;
        }
        Ok(self)
    }

    /// Applies one `-X name=value` argument.
    pub fn flag(&mut self, arg: &str) -> Result<&mut Self, ConfigError> {
        let (k, v) = parse_pair(arg)?;
        self.set(&k, &v, Source::Flag)
    }

    /// The raw value a property has now (set or default), and where it came from.
    pub fn get(&self, name: &str) -> Option<(&str, Source)> {
        if let Some((v, s)) = self.values.get(name) {
            return Some((v.as_str(), s.clone()));
        }
        spec(name)
            .and_then(|s| s.default)
            .map(|d| (d, Source::Default))
    }

    fn explicitly_set(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// `group.protocol` and `group.remote.assignor`. Under `consumer` the broker
    /// owns the session, the heartbeat interval and the assignor, so the classic
    /// settings for them are refused when the user set them (as the Java client
    /// does), and a profile's values for them are dropped with a note.
    fn group_protocol(
        &self,
        warnings: &mut Vec<String>,
    ) -> Result<(weir_coordinator::GroupProtocol, Option<String>), ConfigError> {
        use weir_coordinator::GroupProtocol;
        let protocol = match self.enum_value("group.protocol")?.as_str() {
            "consumer" => GroupProtocol::Consumer,
            _ => GroupProtocol::Classic,
        };
        let assignor = self
            .string("group.remote.assignor")
            .filter(|a| !a.is_empty());
        match protocol {
            GroupProtocol::Classic => {
                if assignor.is_some() {
                    return Err(ConfigError::Conflict {
                        message: "group.remote.assignor is set, but it applies only to group.protocol=consumer".to_owned(),
                        fix: "set group.protocol=consumer, or unset group.remote.assignor (classic groups use partition.assignment.strategy)",
                    });
                }
            }
            GroupProtocol::Consumer => {
                for (name, broker) in [
                    (
                        "partition.assignment.strategy",
                        "group.remote.assignor (or the broker's group.consumer.assignors)",
                    ),
                    (
                        "session.timeout.ms",
                        "the broker's group.consumer.session.timeout.ms",
                    ),
                    (
                        "heartbeat.interval.ms",
                        "the broker's group.consumer.heartbeat.interval.ms",
                    ),
                ] {
                    match self.values.get(name) {
                        Some((_, Source::Profile(p))) => warnings.push(format!(
                            "group.protocol=consumer: the {p:?} profile's {name} does not apply; {broker} decides"
                        )),
                        Some(_) => {
                            return Err(ConfigError::Conflict {
                                message: format!(
                                    "{name} is a group.protocol=classic setting; under group.protocol=consumer {broker} decides"
                                ),
                                fix: "remove it, or set group.protocol=classic",
                            });
                        }
                        None => {}
                    }
                }
            }
        }
        Ok((protocol, assignor))
    }

    fn raw(&self, spec: &'static PropertySpec) -> Result<Option<(&str, Source)>, ConfigError> {
        let Some((value, source)) = self.get(spec.name) else {
            return Ok(None);
        };
        let invalid = |expected: String| ConfigError::InvalidValue {
            name: spec.name,
            value: value.to_owned(),
            expected,
            source: source.clone(),
        };
        match spec.kind {
            Kind::Str | Kind::List => {}
            Kind::Int { min, max } => match value.parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => {}
                Ok(_) => return Err(invalid(format!("an integer from {min} to {max}"))),
                Err(_) => return Err(invalid(format!("an integer from {min} to {max}"))),
            },
            Kind::Bool => {
                if !value.eq_ignore_ascii_case("true") && !value.eq_ignore_ascii_case("false") {
                    return Err(invalid("true or false".to_owned()));
                }
            }
            Kind::Enum(words) => {
                if !words.iter().any(|w| w.eq_ignore_ascii_case(value)) {
                    return Err(invalid(format!("one of {}", words.join(", "))));
                }
            }
        }
        Ok(Some((value, source)))
    }

    fn int(&self, name: &'static str) -> Result<i64, ConfigError> {
        let spec = spec(name).ok_or(ConfigError::Missing {
            name,
            why: "internal: not in the table",
        })?;
        match self.raw(spec)? {
            // raw() has checked that the value parses and is in range.
            Some((v, _)) => v.parse::<i64>().map_err(|_| ConfigError::Missing {
                name,
                why: "internal",
            }),
            None => Err(ConfigError::Missing {
                name,
                why: "it has no default",
            }),
        }
    }

    fn u32(&self, name: &'static str) -> Result<u32, ConfigError> {
        let n = self.int(name)?;
        u32::try_from(n).map_err(|_| ConfigError::InvalidValue {
            name,
            value: n.to_string(),
            expected: format!("an integer from 0 to {}", u32::MAX),
            source: self.get(name).map_or(Source::Default, |(_, s)| s),
        })
    }

    fn bool(&self, name: &'static str) -> Result<bool, ConfigError> {
        let spec = spec(name).ok_or(ConfigError::Missing {
            name,
            why: "internal: not in the table",
        })?;
        Ok(self
            .raw(spec)?
            .is_some_and(|(v, _)| v.eq_ignore_ascii_case("true")))
    }

    fn enum_value(&self, name: &'static str) -> Result<String, ConfigError> {
        let spec = spec(name).ok_or(ConfigError::Missing {
            name,
            why: "internal: not in the table",
        })?;
        Ok(self
            .raw(spec)?
            .map(|(v, _)| v.to_ascii_lowercase())
            .unwrap_or_default())
    }

    fn string(&self, name: &'static str) -> Option<String> {
        self.get(name)
            .map(|(v, _)| v.to_owned())
            .filter(|v| !v.is_empty())
    }

    /// `security.protocol`, the `sasl.*` and the `ssl.*` settings.
    fn security(
        &self,
        warnings: &mut Vec<String>,
    ) -> Result<(Option<SaslConfig>, Option<TlsConfig>), ConfigError> {
        let protocol = self
            .string("security.protocol")
            .unwrap_or_else(|| "PLAINTEXT".to_owned())
            .to_ascii_uppercase();
        let (sasl_on, tls_on) = match protocol.as_str() {
            "PLAINTEXT" => (false, false),
            "SSL" => (false, true),
            "SASL_PLAINTEXT" => (true, false),
            _ => (true, true),
        };
        let sasl = if sasl_on {
            Some(self.sasl(&protocol, tls_on, warnings)?)
        } else {
            let creds_set = ["sasl.username", "sasl.password", "sasl.jaas.config"]
                .into_iter()
                .filter(|n| self.explicitly_set(n))
                .collect::<Vec<_>>();
            if !creds_set.is_empty() {
                let want = if tls_on { "SASL_SSL" } else { "SASL_PLAINTEXT" };
                warnings.push(format!(
                    "{} set but security.protocol={protocol}: no SASL authentication happens; set security.protocol={want} to use them",
                    creds_set.join(", ")
                ));
            }
            None
        };
        let tls = if tls_on {
            Some(self.tls(warnings)?)
        } else {
            let ssl_set = PROPERTIES
                .iter()
                .map(|p| p.name)
                .filter(|n| {
                    (n.starts_with("ssl.") || *n == "enable.ssl.certificate.verification")
                        && self.explicitly_set(n)
                })
                .collect::<Vec<_>>();
            if !ssl_set.is_empty() {
                let want = if sasl_on { "SASL_SSL" } else { "SSL" };
                warnings.push(format!(
                    "{} set but security.protocol={protocol}: no TLS is used; set security.protocol={want} to use them",
                    ssl_set.join(", ")
                ));
            }
            None
        };
        Ok((sasl, tls))
    }

    /// The `ssl.*` settings (librdkafka's names and Java's PEM forms).
    fn tls(&self, warnings: &mut Vec<String>) -> Result<TlsConfig, ConfigError> {
        let mut cfg = TlsConfig::default();
        if let Some(list) = self.string("ssl.ca.location") {
            for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                cfg.ca.push(if item.eq_ignore_ascii_case("probe") {
                    CaSource::System
                } else {
                    CaSource::Pem {
                        property: "ssl.ca.location",
                        pem: Pem::File(item.into()),
                    }
                });
            }
        }
        if let Some(text) = self.string("ssl.ca.pem") {
            cfg.ca.push(CaSource::Pem {
                property: "ssl.ca.pem",
                pem: Pem::Text(text),
            });
        }
        let store_type = |name: &'static str| {
            self.string(name)
                .unwrap_or_else(|| "JKS".to_owned())
                .to_ascii_uppercase()
        };
        let truststore = self.string("ssl.truststore.location");
        let trust_text = self.string("ssl.truststore.certificates");
        if truststore.is_some() || trust_text.is_some() {
            let t = store_type("ssl.truststore.type");
            if t != "PEM" {
                return Err(ConfigError::Tls(format!(
                    "ssl.truststore.type={t} is not readable by weir: it reads PEM. Export the CA \
                     once ({}) and set ssl.truststore.type=PEM with \
                     ssl.truststore.location=ca.pem (or ssl.ca.location=ca.pem)",
                    store_command(&t, truststore.as_deref().unwrap_or("STORE"), false)
                )));
            }
            if let Some(path) = truststore {
                cfg.ca.push(CaSource::Pem {
                    property: "ssl.truststore.location",
                    pem: Pem::File(path.into()),
                });
            }
            if let Some(text) = trust_text {
                cfg.ca.push(CaSource::Pem {
                    property: "ssl.truststore.certificates",
                    pem: Pem::Text(text),
                });
            }
        }
        cfg.verify_hostname = !self
            .string("ssl.endpoint.identification.algorithm")
            .is_some_and(|v| v.eq_ignore_ascii_case("none"));
        cfg.verify_certificate = self.bool("enable.ssl.certificate.verification")?;
        if !cfg.verify_certificate {
            warnings.push(
                "enable.ssl.certificate.verification=false: the broker's certificate is not checked at all, so anyone on the network path can pose as the cluster; set ssl.ca.location instead".into(),
            );
        } else if !cfg.verify_hostname {
            warnings.push(
                "ssl.endpoint.identification.algorithm=none: the broker's certificate is not checked against its host name, so any certificate the CA signed is accepted for any broker".into(),
            );
        }
        // The client certificate: librdkafka's pair, or Java's PEM key store.
        let password = self.string("ssl.key.password").map(Secret::new);
        let chain = self
            .string("ssl.certificate.location")
            .map(|p| ("ssl.certificate.location", Pem::File(p.into())))
            .or_else(|| {
                self.string("ssl.certificate.pem")
                    .map(|t| ("ssl.certificate.pem", Pem::Text(t)))
            });
        let key = self
            .string("ssl.key.location")
            .map(|p| ("ssl.key.location", Pem::File(p.into())))
            .or_else(|| {
                self.string("ssl.key.pem")
                    .map(|t| ("ssl.key.pem", Pem::Text(t)))
            });
        let keystore = self.string("ssl.keystore.location");
        let ks_chain = self.string("ssl.keystore.certificate.chain");
        let ks_key = self.string("ssl.keystore.key");
        let java = keystore.is_some() || ks_chain.is_some() || ks_key.is_some();
        if java && (chain.is_some() || key.is_some()) {
            return Err(ConfigError::Conflict {
                message: "both ssl.keystore.* and ssl.certificate.*/ssl.key.* are set".into(),
                fix: "give the client certificate one way: ssl.certificate.location and ssl.key.location (librdkafka) or ssl.keystore.type=PEM with ssl.keystore.location (Java)",
            });
        }
        let pair = if java {
            let t = store_type("ssl.keystore.type");
            if t != "PEM" {
                return Err(ConfigError::Tls(format!(
                    "ssl.keystore.type={t} is not readable by weir: it reads PEM. Convert the \
                     key store once ({}) and set ssl.keystore.type=PEM with \
                     ssl.keystore.location=client.pem",
                    store_command(&t, keystore.as_deref().unwrap_or("STORE"), true)
                )));
            }
            match (keystore, ks_chain, ks_key) {
                (Some(path), None, None) => Some((
                    ("ssl.keystore.location", Pem::File(path.clone().into())),
                    ("ssl.keystore.location", Pem::File(path.into())),
                )),
                (None, Some(c), Some(k)) => Some((
                    ("ssl.keystore.certificate.chain", Pem::Text(c)),
                    ("ssl.keystore.key", Pem::Text(k)),
                )),
                (Some(_), _, _) => {
                    return Err(ConfigError::Conflict {
                        message: "ssl.keystore.location and ssl.keystore.certificate.chain/ssl.keystore.key are both set".into(),
                        fix: "give the PEM key store as a file (ssl.keystore.location) or as text (ssl.keystore.certificate.chain and ssl.keystore.key), not both",
                    });
                }
                (None, Some(_), None) => {
                    return Err(ConfigError::Missing {
                        name: "ssl.keystore.key",
                        why: "ssl.keystore.certificate.chain needs its private key",
                    });
                }
                (None, _, _) => {
                    return Err(ConfigError::Missing {
                        name: "ssl.keystore.certificate.chain",
                        why: "ssl.keystore.key needs its certificate chain",
                    });
                }
            }
        } else {
            match (chain, key) {
                (Some(c), Some(k)) => Some((c, k)),
                (None, None) => None,
                (Some((name, _)), None) => {
                    return Err(ConfigError::Missing {
                        name: "ssl.key.location",
                        why: if name == "ssl.certificate.pem" {
                            "ssl.certificate.pem needs its private key (ssl.key.location or ssl.key.pem)"
                        } else {
                            "ssl.certificate.location needs its private key (ssl.key.location or ssl.key.pem)"
                        },
                    });
                }
                (None, Some(_)) => {
                    return Err(ConfigError::Missing {
                        name: "ssl.certificate.location",
                        why: "a private key needs its certificate (ssl.certificate.location or ssl.certificate.pem)",
                    });
                }
            }
        };
        if let Some((chain, key)) = pair {
            cfg.client = Some(ClientCert {
                chain,
                key,
                key_password: password,
            });
        } else if password.is_some() {
            warnings
                .push("ssl.key.password set without a client certificate: it is not used".into());
        }
        // Read the files now, so a missing CA or an unreadable key is a
        // configuration error at start-up, not a connection failure later.
        weir_fetch::tls::TlsConnector::new(&cfg).map_err(|e| ConfigError::Tls(e.0))?;
        Ok(cfg)
    }

    /// The `sasl.*` settings.
    fn sasl(
        &self,
        protocol: &str,
        tls: bool,
        warnings: &mut Vec<String>,
    ) -> Result<SaslConfig, ConfigError> {
        let mech_name = self
            .string("sasl.mechanism")
            .unwrap_or_else(|| "GSSAPI".to_owned());
        let Some(mechanism) = Mechanism::from_name(&mech_name) else {
            return Err(ConfigError::Unsupported {
                name: "sasl.mechanism",
                value: mech_name,
                reason: "weir speaks PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER (GSSAPI, Kafka's default, is not implemented); set sasl.mechanism",
            });
        };
        if mechanism == Mechanism::OAuthBearer {
            return self.oauthbearer(tls, warnings);
        }
        let jaas = self.string("sasl.jaas.config");
        let (username, password) = match jaas {
            Some(text) => {
                if self.explicitly_set("sasl.username") || self.explicitly_set("sasl.password") {
                    return Err(ConfigError::Conflict {
                        message: "both sasl.jaas.config and sasl.username/sasl.password are set"
                            .into(),
                        fix: "give the credentials one way: sasl.jaas.config (Java) or sasl.username and sasl.password (librdkafka)",
                    });
                }
                let source = self
                    .get("sasl.jaas.config")
                    .map_or(Source::Default, |(_, s)| s);
                let j = crate::jaas::parse(&text).map_err(|why| ConfigError::InvalidValue {
                    name: "sasl.jaas.config",
                    // The text holds a password: never echo it.
                    value: "(not shown)".into(),
                    expected: format!("a JAAS login module entry ({why})"),
                    source,
                })?;
                let module = match mechanism {
                    Mechanism::Plain => crate::jaas::PLAIN_MODULE,
                    Mechanism::ScramSha256 | Mechanism::ScramSha512 => crate::jaas::SCRAM_MODULE,
                    Mechanism::OAuthBearer => crate::jaas::OAUTH_MODULE,
                };
                if j.module != module {
                    return Err(ConfigError::Conflict {
                        message: format!(
                            "sasl.jaas.config names {} but sasl.mechanism={mechanism} needs {module}",
                            j.module
                        ),
                        fix: "make the login module match the mechanism",
                    });
                }
                let opt = |k: &'static str| {
                    j.options.get(k).cloned().ok_or(ConfigError::Missing {
                        name: "sasl.jaas.config",
                        why: if k == "username" {
                            "its login module needs username=\"...\""
                        } else {
                            "its login module needs password=\"...\""
                        },
                    })
                };
                (opt("username")?, opt("password")?)
            }
            None => {
                let why = if tls {
                    "security.protocol=SASL_SSL needs credentials: set sasl.username and sasl.password (or sasl.jaas.config)"
                } else {
                    "security.protocol=SASL_PLAINTEXT needs credentials: set sasl.username and sasl.password (or sasl.jaas.config)"
                };
                let missing = |name: &'static str| ConfigError::Missing { name, why };
                (
                    self.string("sasl.username")
                        .ok_or_else(|| missing("sasl.username"))?,
                    self.string("sasl.password")
                        .ok_or_else(|| missing("sasl.password"))?,
                )
            }
        };
        if mechanism == Mechanism::Plain && !tls {
            warnings.push(format!(
                "sasl.mechanism=PLAIN over {protocol} sends the password in clear text; use security.protocol=SASL_SSL, or prefer SCRAM-SHA-512"
            ));
        }
        Ok(SaslConfig {
            mechanism,
            username,
            password: Secret::new(password),
            token: None,
        })
    }

    /// OAUTHBEARER's token source: a file (`sasl.oauthbearer.token.endpoint.url`),
    /// or an unsecured token from Java's login module options or librdkafka's
    /// `sasl.oauthbearer.config`.
    fn oauthbearer(
        &self,
        tls: bool,
        warnings: &mut Vec<String>,
    ) -> Result<SaslConfig, ConfigError> {
        if let Some(class) = self.string("sasl.login.callback.handler.class") {
            const KNOWN: [&str; 2] = [
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
                "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerLoginCallbackHandler",
            ];
            if !KNOWN.contains(&class.as_str()) {
                return Err(ConfigError::Unsupported {
                    name: "sasl.login.callback.handler.class",
                    value: class,
                    reason: "weir cannot load Java classes: it reads tokens from sasl.oauthbearer.token.endpoint.url=file:///path (Kafka's OAuthBearerLoginCallbackHandler), or makes unsecured ones",
                });
            }
        }
        let jaas = match self.string("sasl.jaas.config") {
            Some(text) => {
                let source = self
                    .get("sasl.jaas.config")
                    .map_or(Source::Default, |(_, s)| s);
                let j = crate::jaas::parse(&text).map_err(|why| ConfigError::InvalidValue {
                    name: "sasl.jaas.config",
                    value: "(not shown)".into(),
                    expected: format!("a JAAS login module entry ({why})"),
                    source,
                })?;
                if j.module != crate::jaas::OAUTH_MODULE {
                    return Err(ConfigError::Conflict {
                        message: format!(
                            "sasl.jaas.config names {} but sasl.mechanism=OAUTHBEARER needs {}",
                            j.module,
                            crate::jaas::OAUTH_MODULE
                        ),
                        fix: "make the login module match the mechanism",
                    });
                }
                Some(j)
            }
            None => None,
        };
        let mut extensions = Vec::new();
        let token = if let Some(url) = self.string("sasl.oauthbearer.token.endpoint.url") {
            let Some(path) = url.strip_prefix("file://") else {
                return Err(ConfigError::Unsupported {
                    name: "sasl.oauthbearer.token.endpoint.url",
                    value: url,
                    reason: "weir does not implement the OIDC client-credentials flow (it would need an HTTP client in the consumer); have your token agent write the token to a file and set sasl.oauthbearer.token.endpoint.url=file:///path/to/token",
                });
            };
            let path = std::path::PathBuf::from(path);
            let what = format!(
                "sasl.oauthbearer.token.endpoint.url=file://{}",
                path.display()
            );
            let read = {
                let path = path.clone();
                move || -> Result<Secret, String> {
                    let text = std::fs::read_to_string(&path).map_err(|e| {
                        format!("cannot read the token file {}: {e}", path.display())
                    })?;
                    let t = text.trim();
                    if t.is_empty() {
                        return Err(format!("the token file {} is empty", path.display()));
                    }
                    Ok(Secret::new(t))
                }
            };
            // Read it once now: a missing file is a configuration error at start-up.
            read().map_err(|why| ConfigError::InvalidValue {
                name: "sasl.oauthbearer.token.endpoint.url",
                value: url.clone(),
                expected: format!("a readable token file ({why})"),
                source: Source::Default,
            })?;
            if let Some(j) = &jaas {
                for (k, v) in &j.options {
                    if let Some(key) = k.strip_prefix("unsecuredLoginExtension_") {
                        extensions.push((key.to_owned(), v.clone()));
                    }
                }
            }
            weir_protocol::auth::TokenSource::new(what, extensions, read)
        } else if let Some(j) = jaas {
            // Java's unsecured login options.
            let mut claims = Vec::new();
            let mut lifetime = 3600u64;
            let mut principal_claim = "sub".to_owned();
            for (k, v) in &j.options {
                if let Some(name) = k.strip_prefix("unsecuredLoginStringClaim_") {
                    claims.push((name.to_owned(), weir_protocol::auth::json_string(v)));
                } else if let Some(name) = k.strip_prefix("unsecuredLoginNumberClaim_") {
                    let n: f64 = v.parse().map_err(|_| ConfigError::InvalidValue {
                        name: "sasl.jaas.config",
                        value: format!("{k}={v}"),
                        expected: "a number".into(),
                        source: Source::Default,
                    })?;
                    claims.push((name.to_owned(), n.to_string()));
                } else if let Some(key) = k.strip_prefix("unsecuredLoginExtension_") {
                    extensions.push((key.to_owned(), v.clone()));
                } else if k == "unsecuredLoginLifetimeSeconds" {
                    lifetime = v.parse().map_err(|_| ConfigError::InvalidValue {
                        name: "sasl.jaas.config",
                        value: format!("{k}={v}"),
                        expected: "a whole number of seconds".into(),
                        source: Source::Default,
                    })?;
                } else if k == "unsecuredLoginPrincipalClaimName" {
                    principal_claim = v.clone();
                } else if k.starts_with("unsecuredLogin") {
                    return Err(ConfigError::Unsupported {
                        name: "sasl.jaas.config",
                        value: k.clone(),
                        reason: "weir reads unsecuredLoginStringClaim_*, unsecuredLoginNumberClaim_*, unsecuredLoginExtension_*, unsecuredLoginLifetimeSeconds and unsecuredLoginPrincipalClaimName",
                    });
                }
            }
            if !claims.iter().any(|(k, _)| *k == principal_claim) {
                return Err(ConfigError::Missing {
                    name: "sasl.jaas.config",
                    why: "OAuthBearerLoginModule needs a token source: unsecuredLoginStringClaim_sub=\"principal\" for an unsecured token, or sasl.oauthbearer.token.endpoint.url=file:///path",
                });
            }
            unsecured_source(
                "sasl.jaas.config (unsecured token)",
                claims,
                lifetime,
                extensions,
            )
        } else if let Some(conf) = self.string("sasl.oauthbearer.config") {
            if !self.bool("enable.sasl.oauthbearer.unsecure.jwt")? {
                return Err(ConfigError::Missing {
                    name: "enable.sasl.oauthbearer.unsecure.jwt",
                    why: "sasl.oauthbearer.config makes unsecured tokens only with enable.sasl.oauthbearer.unsecure.jwt=true (for tokens from an identity provider, use sasl.oauthbearer.token.endpoint.url=file:///path)",
                });
            }
            let mut principal = None;
            let mut principal_claim = "sub".to_owned();
            let mut scope = Vec::new();
            let mut lifetime = 3600u64;
            for item in conf.split_whitespace() {
                let Some((k, v)) = item.split_once('=') else {
                    return Err(ConfigError::InvalidValue {
                        name: "sasl.oauthbearer.config",
                        value: item.to_owned(),
                        expected: "space-separated key=value pairs".into(),
                        source: Source::Default,
                    });
                };
                match k {
                    "principal" => principal = Some(v.to_owned()),
                    "principalClaimName" => principal_claim = v.to_owned(),
                    "scope" => scope = v.split(',').map(str::to_owned).collect(),
                    "lifeSeconds" => {
                        lifetime = v.parse().map_err(|_| ConfigError::InvalidValue {
                            name: "sasl.oauthbearer.config",
                            value: item.to_owned(),
                            expected: "lifeSeconds=a whole number".into(),
                            source: Source::Default,
                        })?;
                    }
                    _ => match k.strip_prefix("extension_") {
                        Some(key) => extensions.push((key.to_owned(), v.to_owned())),
                        None => {
                            return Err(ConfigError::InvalidValue {
                                name: "sasl.oauthbearer.config",
                                value: item.to_owned(),
                                expected: "principal, principalClaimName, scope, lifeSeconds or extension_KEY".into(),
                                source: Source::Default,
                            });
                        }
                    },
                }
            }
            let principal = principal.ok_or(ConfigError::Missing {
                name: "sasl.oauthbearer.config",
                why: "an unsecured token needs principal=NAME",
            })?;
            let mut claims = vec![(
                principal_claim,
                weir_protocol::auth::json_string(&principal),
            )];
            if !scope.is_empty() {
                let list: Vec<String> = scope
                    .iter()
                    .map(|s| weir_protocol::auth::json_string(s))
                    .collect();
                claims.push(("scope".into(), format!("[{}]", list.join(","))));
            }
            unsecured_source(
                "sasl.oauthbearer.config (unsecured token)",
                claims,
                lifetime,
                extensions,
            )
        } else {
            return Err(ConfigError::Missing {
                name: "sasl.oauthbearer.token.endpoint.url",
                why: "sasl.mechanism=OAUTHBEARER needs a token: sasl.oauthbearer.token.endpoint.url=file:///path, or an unsecured token (sasl.jaas.config with unsecuredLoginStringClaim_sub, or sasl.oauthbearer.config with enable.sasl.oauthbearer.unsecure.jwt=true)",
            });
        };
        if !tls {
            warnings.push(
                "sasl.mechanism=OAUTHBEARER over SASL_PLAINTEXT sends the token in clear text; use security.protocol=SASL_SSL".into(),
            );
        }
        Ok(SaslConfig {
            mechanism: Mechanism::OAuthBearer,
            username: String::new(),
            password: Secret::default(),
            token: Some(token),
        })
    }

    /// The effective value of every property, as a `.properties` file that `-F`
    /// reads back (kcat's `-X dump`): one `name=value` line each, with a comment
    /// naming where a non-default value came from; unset properties are commented
    /// out. Secrets ([`SECRET_PROPERTIES`]) are never shown.
    pub fn dump(&self) -> String {
        let mut out = String::from(
            "# weir's effective configuration (-X dump); secrets are shown as [hidden]\n",
        );
        for spec in PROPERTIES {
            let set = self.get(spec.name);
            let value = set
                .as_ref()
                .map(|(v, _)| (*v).to_owned())
                .or(spec.default.map(str::to_owned));
            let shown = |v: &str| {
                if SECRET_PROPERTIES.contains(&spec.name) {
                    "[hidden]".to_owned()
                } else {
                    // A value spanning lines (inline PEM) continues with `\`.
                    v.replace('\n', "\\n\\\n")
                }
            };
            match (value, set) {
                (Some(v), Some((_, source))) if !matches!(source, Source::Default) => {
                    out.push_str(&format!("# from {source}\n{}={}\n", spec.name, shown(&v)));
                }
                (Some(v), _) => out.push_str(&format!("{}={}\n", spec.name, shown(&v))),
                (None, _) => out.push_str(&format!("#{}=\n", spec.name)),
            }
        }
        out
    }

    /// Checks every value and every cross-property rule, and returns the typed
    /// configuration. `mode` adds the rules of group mode (a `group.id` is required).
    pub fn build(&self, mode: Mode) -> Result<ConsumerConfig, ConfigError> {
        // Type and range of every property that is set, in table order, so the first
        // error reported is stable.
        for spec in PROPERTIES {
            self.raw(spec)?;
        }
        // Recognised-but-unsupported properties: refuse anything but the default.
        for spec in PROPERTIES {
            if let Support::Unsupported(reason) = spec.support {
                if let Some((v, _)) = self.values.get(spec.name) {
                    let is_default = spec.default.is_some_and(|d| d.eq_ignore_ascii_case(v));
                    if !is_default {
                        return Err(ConfigError::Unsupported {
                            name: spec.name,
                            value: v.clone(),
                            reason,
                        });
                    }
                }
            }
        }

        let servers = self
            .get("bootstrap.servers")
            .map(|(v, _)| v.to_owned())
            .unwrap_or_default();
        let bootstrap_servers = servers
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(BrokerAddr::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if bootstrap_servers.is_empty() {
            return Err(ConfigError::Missing {
                name: "bootstrap.servers",
                why: "give the brokers with -b host:port[,host:port...] or -X bootstrap.servers=...",
            });
        }

        let group_id = self.string("group.id");
        let group_instance_id = match self.get("group.instance.id") {
            Some((v, source)) if v.is_empty() && self.explicitly_set("group.instance.id") => {
                return Err(ConfigError::InvalidValue {
                    name: "group.instance.id",
                    value: String::new(),
                    expected: "a non-empty id (or leave it unset for dynamic membership)"
                        .to_owned(),
                    source,
                });
            }
            Some((v, _)) => Some(v.to_owned()),
            None => None,
        };
        let enable_auto_commit = self.bool("enable.auto.commit")? && group_id.is_some();
        if group_id.is_none() {
            // As the Java client: asking for auto commit without a group is an error;
            // a profile's auto commit simply does not apply without a group.
            if let Some((v, source @ (Source::Flag | Source::File { .. }))) =
                self.values.get("enable.auto.commit")
            {
                if v.eq_ignore_ascii_case("true") {
                    return Err(ConfigError::Missing {
                        name: "group.id",
                        why: match source {
                            Source::Flag => {
                                "enable.auto.commit=true (from -X) commits offsets to a group; set -X group.id=NAME or -X enable.auto.commit=false"
                            }
                            _ => {
                                "enable.auto.commit=true (from the -F file) commits offsets to a group; set group.id or enable.auto.commit=false"
                            }
                        },
                    });
                }
            }
            if mode == Mode::Group {
                return Err(ConfigError::Missing {
                    name: "group.id",
                    why: "group mode needs a consumer group; give it with -G GROUP TOPIC... or -X group.id=NAME",
                });
            }
            if group_instance_id.is_some() {
                return Err(ConfigError::Missing {
                    name: "group.id",
                    why: "group.instance.id is set, and static membership needs a group; set -X group.id=NAME or drop group.instance.id",
                });
            }
        }

        let session_timeout_ms = self.u32("session.timeout.ms")?;
        let heartbeat_interval_ms = self.u32("heartbeat.interval.ms")?;
        let mut warnings = Vec::new();
        if heartbeat_interval_ms >= session_timeout_ms {
            return Err(ConfigError::Conflict {
                message: format!(
                    "heartbeat.interval.ms={heartbeat_interval_ms} is not below session.timeout.ms={session_timeout_ms}, so the member would be evicted between heartbeats"
                ),
                fix: "set heartbeat.interval.ms to at most a third of session.timeout.ms",
            });
        }
        if u64::from(heartbeat_interval_ms) * 3 > u64::from(session_timeout_ms) {
            warnings.push(format!(
                "heartbeat.interval.ms={heartbeat_interval_ms} is more than a third of session.timeout.ms={session_timeout_ms}; one lost heartbeat may cause a rebalance (Kafka recommends at most a third)"
            ));
        }

        let fetch_min_bytes = self.u32("fetch.min.bytes")?;
        let fetch_max_bytes = self.u32("fetch.max.bytes")?;
        let max_partition_fetch_bytes = self.u32("max.partition.fetch.bytes")?;
        let fetch_max_wait_ms = self.u32("fetch.max.wait.ms")?;
        let request_timeout_ms = self.u32("request.timeout.ms")?;
        let ring_bytes = self.int("weir.ring.bytes")?;
        for name in ["fetch.max.bytes", "max.partition.fetch.bytes"] {
            let value = self.int(name)?;
            // A response carries the records plus its headers (up to the fetch
            // engine's fixed allowance), and must fit in the ring as a whole.
            let overhead = i64::try_from(weir_fetch::config::RESPONSE_OVERHEAD).unwrap_or(i64::MAX);
            if value.saturating_add(overhead) > ring_bytes {
                return Err(ConfigError::OverBudget {
                    name,
                    value,
                    budget_name: "weir.ring.bytes",
                    budget: ring_bytes,
                });
            }
        }
        if fetch_min_bytes > fetch_max_bytes {
            return Err(ConfigError::Conflict {
                message: format!(
                    "fetch.min.bytes={fetch_min_bytes} is larger than fetch.max.bytes={fetch_max_bytes}, so every fetch would wait the full fetch.max.wait.ms"
                ),
                fix: "lower fetch.min.bytes or raise fetch.max.bytes",
            });
        }
        if request_timeout_ms <= fetch_max_wait_ms {
            return Err(ConfigError::Conflict {
                message: format!(
                    "request.timeout.ms={request_timeout_ms} is not above fetch.max.wait.ms={fetch_max_wait_ms}, so long-polling fetches would time out"
                ),
                fix: "raise request.timeout.ms or lower fetch.max.wait.ms",
            });
        }
        let max_decompressed_batch_bytes = self.u32("weir.max.decompressed.batch.bytes")?;

        let reconnect_backoff_ms = self.u32("reconnect.backoff.ms")?;
        let reconnect_backoff_max_ms = self.u32("reconnect.backoff.max.ms")?;
        let retry_backoff_ms = self.u32("retry.backoff.ms")?;
        let retry_backoff_max_ms = self.u32("retry.backoff.max.ms")?;

        let isolation_level = match self.enum_value("isolation.level")?.as_str() {
            "read_committed" => IsolationLevel::ReadCommitted,
            _ => IsolationLevel::ReadUncommitted,
        };
        let auto_offset_reset = match self.enum_value("auto.offset.reset")?.as_str() {
            "earliest" => OffsetReset::Earliest,
            "none" => OffsetReset::None,
            _ => OffsetReset::Latest,
        };

        let (strategies, strategy_source) = self
            .get("partition.assignment.strategy")
            .map(|(v, s)| (v.to_owned(), s))
            .unwrap_or_default_pair();
        let mut partition_assignment_strategy = Vec::new();
        for word in strategies.split(',').filter(|w| !w.trim().is_empty()) {
            let a = Assignor::parse(word).ok_or_else(|| ConfigError::InvalidValue {
                name: "partition.assignment.strategy",
                value: word.trim().to_owned(),
                expected: "range, roundrobin, sticky or cooperative-sticky (or Kafka's assignor class names)".to_owned(),
                source: strategy_source.clone(),
            })?;
            if !partition_assignment_strategy.contains(&a) {
                partition_assignment_strategy.push(a);
            }
        }
        if partition_assignment_strategy.is_empty() {
            return Err(ConfigError::InvalidValue {
                name: "partition.assignment.strategy",
                value: strategies,
                expected: "at least one assignor".to_owned(),
                source: strategy_source,
            });
        }

        let (group_protocol, group_remote_assignor) = self.group_protocol(&mut warnings)?;

        let (sasl, tls) = self.security(&mut warnings)?;

        for spec in PROPERTIES {
            if let (Support::Ignored(why), true) = (spec.support, self.explicitly_set(spec.name)) {
                warnings.push(format!("{} is ignored: {why}", spec.name));
            }
        }

        Ok(ConsumerConfig {
            bootstrap_servers,
            group_id,
            group_instance_id,
            client_id: self.string("client.id").unwrap_or_default(),
            client_rack: self.string("client.rack").unwrap_or_default(),
            session_timeout_ms,
            heartbeat_interval_ms,
            max_poll_interval_ms: self.u32("max.poll.interval.ms")?,
            max_poll_records: self.u32("max.poll.records")?,
            fetch_min_bytes,
            fetch_max_bytes,
            fetch_max_wait_ms,
            max_partition_fetch_bytes,
            request_timeout_ms,
            default_api_timeout_ms: self.u32("default.api.timeout.ms")?,
            retry_backoff_ms,
            retry_backoff_max_ms,
            reconnect_backoff_ms,
            reconnect_backoff_max_ms,
            metadata_max_age_ms: self.u32("metadata.max.age.ms")?,
            exclude_internal_topics: self.bool("exclude.internal.topics")?,
            rebootstrap_trigger_ms: match self.string("metadata.recovery.strategy").as_deref() {
                Some(s) if s.eq_ignore_ascii_case("none") => None,
                _ => Some(self.u32("metadata.recovery.rebootstrap.trigger.ms")?),
            },
            isolation_level,
            auto_offset_reset,
            enable_auto_commit,
            auto_commit_interval_ms: self.u32("auto.commit.interval.ms")?,
            check_crcs: self.bool("check.crcs")?,
            partition_assignment_strategy,
            group_protocol,
            group_remote_assignor,
            ring_bytes: u64::try_from(ring_bytes).unwrap_or(0),
            coordinator_ring_bytes: u64::try_from(self.int("weir.coordinator.ring.bytes")?)
                .unwrap_or(1 << 23),
            worker_threads: self.u32("weir.worker.threads")?,
            max_decompressed_batch_bytes,
            sink_segment_bytes: u64::try_from(self.int("weir.sink.segment.bytes")?).unwrap_or(1),
            sink_segment_ms: self.u32("weir.sink.segment.ms")?,
            sink_checkpoint_ms: self.u32("weir.sink.checkpoint.ms")?,
            sink_allow_reset: self.bool("weir.sink.allow.reset")?,
            sasl,
            tls,
            warnings,
        })
    }
}

trait DefaultPair {
    fn unwrap_or_default_pair(self) -> (String, Source);
}

impl DefaultPair for Option<(String, Source)> {
    fn unwrap_or_default_pair(self) -> (String, Source) {
        self.unwrap_or((String::new(), Source::Default))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ConfigBuilder {
        let mut b = ConfigBuilder::new();
        b.set("bootstrap.servers", "localhost:9092", Source::Option("-b"))
            .unwrap();
        b
    }

    fn err(b: &ConfigBuilder, mode: Mode) -> String {
        b.build(mode).unwrap_err().to_string()
    }

    #[test]
    fn table_is_sorted_unique_and_defaults_are_valid() {
        for w in PROPERTIES.windows(2) {
            assert!(w[0].name < w[1].name, "{} before {}", w[0].name, w[1].name);
        }
        let cfg = base().build(Mode::Assign).unwrap();
        assert_eq!(cfg.fetch_max_bytes, 52_428_800);
        assert_eq!(cfg.session_timeout_ms, 45_000);
        assert_eq!(cfg.heartbeat_interval_ms, 3_000);
        assert_eq!(cfg.max_poll_records, 500);
        assert_eq!(cfg.auto_offset_reset, OffsetReset::Latest);
        assert_eq!(cfg.isolation_level, IsolationLevel::ReadUncommitted);
        assert_eq!(
            cfg.partition_assignment_strategy,
            vec![Assignor::Range, Assignor::CooperativeSticky]
        );
        // No group: auto commit cannot happen.
        assert!(!cfg.enable_auto_commit);
        assert!(cfg.warnings.is_empty());
    }

    #[test]
    fn group_protocol_consumer_refuses_the_classic_group_settings() {
        let mut b = base();
        b.set("group.id", "g", Source::Flag).unwrap();
        b.set("group.protocol", "CONSUMER", Source::Flag).unwrap();
        b.set("group.remote.assignor", "range", Source::Flag)
            .unwrap();
        let cfg = b.build(Mode::Group).unwrap();
        assert_eq!(
            cfg.group_protocol,
            weir_coordinator::GroupProtocol::Consumer
        );
        assert_eq!(cfg.group_remote_assignor.as_deref(), Some("range"));
        let g = cfg.group_config().unwrap();
        assert_eq!(g.group_protocol, weir_coordinator::GroupProtocol::Consumer);
        assert_eq!(g.remote_assignor.as_deref(), Some("range"));
        for (name, value, broker) in [
            (
                "session.timeout.ms",
                "10000",
                "group.consumer.session.timeout.ms",
            ),
            (
                "heartbeat.interval.ms",
                "1000",
                "group.consumer.heartbeat.interval.ms",
            ),
            (
                "partition.assignment.strategy",
                "range",
                "group.remote.assignor",
            ),
        ] {
            let mut b2 = b.clone();
            b2.set(name, value, Source::Flag).unwrap();
            let e = err(&b2, Mode::Group);
            assert!(e.contains(name) && e.contains(broker), "{e}");
            assert!(e.contains("group.protocol=classic"), "{e}");
        }
        // A profile's session timeout does not apply; it is dropped with a note.
        let mut b3 = b.clone();
        b3.profile(Profile::CrossDatacenter);
        let cfg = b3.build(Mode::Group).unwrap();
        assert!(
            cfg.warnings
                .iter()
                .any(|w| w.contains("session.timeout.ms")),
            "{:?}",
            cfg.warnings
        );
    }

    #[test]
    fn group_remote_assignor_needs_the_consumer_protocol() {
        let mut b = base();
        b.set("group.id", "g", Source::Flag).unwrap();
        b.set("group.remote.assignor", "uniform", Source::Flag)
            .unwrap();
        let e = err(&b, Mode::Group);
        assert!(e.contains("group.protocol=consumer"), "{e}");
        let mut b = base();
        let refused = b.set("group.protocol", "eager", Source::Flag).is_err()
            || b.build(Mode::Assign).is_err();
        assert!(refused, "an unknown group.protocol is refused");
    }

    #[test]
    fn unknown_property_suggests_nearest() {
        let mut b = base();
        let e = b
            .set("fetch.max.byte", "1", Source::Flag)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "unknown property `fetch.max.byte` (from -X); did you mean `fetch.max.bytes`?"
        );
        let e = b
            .set("sesion.timeout.ms", "1", Source::Flag)
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean `session.timeout.ms`?"), "{e}");
        let e = b
            .set("zzzzzzzzzzzzzzzzzzzzzzzzzzzz", "1", Source::Flag)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--help-properties"), "{e}");
    }

    #[test]
    fn precedence_default_profile_file_flag() {
        let dir = std::env::temp_dir().join(format!("weir-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.properties");
        std::fs::write(&file, "fetch.max.wait.ms=700\nmax.poll.records : 42\n").unwrap();

        let mut b = base();
        assert_eq!(b.get("fetch.max.wait.ms").unwrap().0, "500");
        b.profile(Profile::HighThroughput);
        assert_eq!(b.get("fetch.max.wait.ms").unwrap().0, "1000");
        assert_eq!(b.get("max.poll.records").unwrap().0, "2000");
        b.properties_file(&file).unwrap();
        assert_eq!(b.get("fetch.max.wait.ms").unwrap().0, "700");
        assert_eq!(b.get("max.poll.records").unwrap().0, "42");
        b.flag("max.poll.records=7").unwrap();
        let cfg = b.build(Mode::Assign).unwrap();
        assert_eq!(cfg.max_poll_records, 7);
        assert_eq!(cfg.fetch_max_wait_ms, 700);
        assert_eq!(cfg.fetch_min_bytes, 1_048_576);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn profiles_carry_the_seed_values() {
        let mut b = base();
        b.set("group.id", "g", Source::Flag).unwrap();
        b.profile(Profile::LowLatency);
        let c = b.build(Mode::Group).unwrap();
        assert_eq!(
            (
                c.fetch_min_bytes,
                c.fetch_max_bytes,
                c.fetch_max_wait_ms,
                c.max_poll_records
            ),
            (1, 1_048_576, 10, 100)
        );
        assert!(!c.enable_auto_commit);
        let mut b = base();
        b.profile(Profile::Reliable);
        let c = b.build(Mode::Assign).unwrap();
        assert_eq!(
            (c.fetch_min_bytes, c.fetch_max_bytes, c.max_poll_records),
            (1024, 10_485_760, 500)
        );
        assert_eq!(c.isolation_level, IsolationLevel::ReadCommitted);
        assert!(c.check_crcs);
        let mut b = base();
        b.profile(Profile::StreamProcessing);
        let c = b.build(Mode::Assign).unwrap();
        assert_eq!(
            (
                c.fetch_max_bytes,
                c.fetch_max_wait_ms,
                c.max_poll_interval_ms
            ),
            (5_242_880, 100, 600_000)
        );
        let mut b = base();
        b.set("group.id", "g", Source::Flag).unwrap();
        b.profile(Profile::CrossDatacenter);
        let c = b.build(Mode::Group).unwrap();
        assert_eq!(
            (
                c.request_timeout_ms,
                c.session_timeout_ms,
                c.heartbeat_interval_ms
            ),
            (90_000, 60_000, 10_000)
        );
        assert_eq!(c.partition_assignment_strategy, vec![Assignor::Range]);
        let mut b = base();
        b.set("group.id", "g", Source::Flag).unwrap();
        b.profile(Profile::HighThroughput);
        let c = b.build(Mode::Group).unwrap();
        assert!(c.enable_auto_commit);
        assert_eq!(c.auto_commit_interval_ms, 1000);
    }

    #[test]
    fn unknown_profile_suggests() {
        let e = "high-thruput".parse::<Profile>().unwrap_err().to_string();
        assert!(
            e.starts_with("unknown profile `high-thruput`; did you mean `high-throughput`?"),
            "{e}"
        );
        assert!(e.contains("stream-processing"), "{e}");
    }

    #[test]
    fn invalid_values_say_what_is_expected() {
        let mut b = base();
        b.flag("fetch.min.bytes=lots").unwrap();
        assert_eq!(
            err(&b, Mode::Assign),
            "invalid value `lots` for `fetch.min.bytes` (from -X): expected an integer from 0 to 2147483647"
        );
        let mut b = base();
        b.flag("check.crcs=yes").unwrap();
        assert!(err(&b, Mode::Assign).ends_with("expected true or false"));
        let mut b = base();
        b.flag("isolation.level=serializable").unwrap();
        assert!(
            err(&b, Mode::Assign).ends_with("expected one of read_uncommitted, read_committed")
        );
        let mut b = base();
        b.flag("auto.offset.reset=EARLIEST").unwrap();
        assert_eq!(
            b.build(Mode::Assign).unwrap().auto_offset_reset,
            OffsetReset::Earliest
        );
        let mut b = base();
        b.flag("partition.assignment.strategy=range,magic").unwrap();
        assert!(
            err(&b, Mode::Assign)
                .contains("invalid value `magic` for `partition.assignment.strategy`")
        );
        let mut b = base();
        b.flag(
            "partition.assignment.strategy=org.apache.kafka.clients.consumer.RoundRobinAssignor",
        )
        .unwrap();
        assert_eq!(
            b.build(Mode::Assign).unwrap().partition_assignment_strategy,
            vec![Assignor::RoundRobin]
        );
    }

    #[test]
    fn missing_group_id_in_group_mode() {
        assert_eq!(
            err(&base(), Mode::Group),
            "`group.id` is not set: group mode needs a consumer group; give it with -G GROUP TOPIC... or -X group.id=NAME"
        );
        let mut b = base();
        b.flag("group.instance.id=a").unwrap();
        assert!(err(&b, Mode::Assign).contains("static membership needs a group"));
        let mut b = base();
        b.flag("group.id=g").unwrap();
        b.flag("group.instance.id=").unwrap();
        assert!(err(&b, Mode::Group).contains("invalid value `` for `group.instance.id`"));
        let mut b = base();
        b.flag("enable.auto.commit=true").unwrap();
        assert!(
            err(&b, Mode::Assign)
                .starts_with("`group.id` is not set: enable.auto.commit=true (from -X)")
        );
        let mut b = base();
        b.profile(Profile::HighThroughput);
        assert!(!b.build(Mode::Assign).unwrap().enable_auto_commit);
    }

    #[test]
    fn broker_addresses() {
        assert_eq!(
            BrokerAddr::parse("h:1").unwrap(),
            BrokerAddr {
                host: "h".into(),
                port: 1
            }
        );
        assert_eq!(
            BrokerAddr::parse("[::1]:9092").unwrap().to_string(),
            "[::1]:9092"
        );
        assert_eq!(BrokerAddr::parse("PLAINTEXT://k1:9092").unwrap().port, 9092);
        for (entry, reason) in [
            ("localhost", "missing :port"),
            ("localhost:", "the port is not a number"),
            ("localhost:99999", "the port is not a number"),
            ("localhost:0", "the port is not a number"),
            (":9092", "empty host"),
            ("::1:9092", "IPv6 addresses need brackets"),
            ("[::1]9092", "missing :port after the IPv6"),
            ("SSL://h:9093", "without a scheme"),
            ("bad host:1", "characters not allowed"),
        ] {
            let e = BrokerAddr::parse(entry).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("bad broker address `{entry}`")),
                "{e}"
            );
            assert!(e.contains(reason), "{entry}: {e}");
            assert!(e.contains("give host:port"), "{e}");
        }
        let mut b = ConfigBuilder::new();
        assert!(err(&b, Mode::Assign).starts_with("`bootstrap.servers` is not set"));
        b.flag("bootstrap.servers=a:1,b").unwrap();
        assert!(err(&b, Mode::Assign).starts_with("bad broker address `b`"));
        b.flag("bootstrap.servers= a:1 , b:2 ").unwrap();
        assert_eq!(b.build(Mode::Assign).unwrap().bootstrap_servers.len(), 2);
    }

    #[test]
    fn cross_property_rules() {
        let mut b = base();
        b.flag("heartbeat.interval.ms=50000").unwrap();
        assert_eq!(
            err(&b, Mode::Assign),
            "heartbeat.interval.ms=50000 is not below session.timeout.ms=45000, so the member would be evicted between heartbeats; set heartbeat.interval.ms to at most a third of session.timeout.ms"
        );
        let mut b = base();
        b.flag("heartbeat.interval.ms=20000").unwrap();
        let c = b.build(Mode::Assign).unwrap();
        assert_eq!(c.warnings.len(), 1);
        assert!(c.warnings[0].contains("more than a third"));

        let mut b = base();
        b.flag("fetch.max.bytes=104857600").unwrap();
        assert_eq!(
            err(&b, Mode::Assign),
            "`fetch.max.bytes=104857600` exceeds the memory budget `weir.ring.bytes=67108864`: a whole fetch response (plus 64 KiB for its headers) must fit in the ring buffer; lower `fetch.max.bytes` or raise `weir.ring.bytes`"
        );
        b.flag("weir.ring.bytes=134217728").unwrap();
        assert!(b.build(Mode::Assign).is_ok());
        let mut b = base();
        b.flag("weir.ring.bytes=1048576").unwrap();
        assert!(err(&b, Mode::Assign).starts_with("`fetch.max.bytes=52428800` exceeds"));
        b.flag("fetch.max.bytes=900000").unwrap();
        b.flag("max.partition.fetch.bytes=2000000").unwrap();
        assert!(err(&b, Mode::Assign).starts_with("`max.partition.fetch.bytes=2000000` exceeds"));
        // The boundary: the records plus the 64 KiB header allowance fill the ring.
        let mut b = base();
        b.flag("weir.ring.bytes=1048576").unwrap();
        b.flag("fetch.max.bytes=983040").unwrap();
        b.flag("max.partition.fetch.bytes=983040").unwrap();
        assert!(b.build(Mode::Assign).is_ok());
        b.flag("fetch.max.bytes=983041").unwrap();
        assert!(err(&b, Mode::Assign).starts_with("`fetch.max.bytes=983041` exceeds"));

        let mut b = base();
        b.flag("fetch.min.bytes=2000000").unwrap();
        b.flag("fetch.max.bytes=900000").unwrap();
        assert!(
            err(&b, Mode::Assign)
                .starts_with("fetch.min.bytes=2000000 is larger than fetch.max.bytes=900000")
        );

        let mut b = base();
        b.flag("fetch.max.wait.ms=30000").unwrap();
        assert!(
            err(&b, Mode::Assign)
                .starts_with("request.timeout.ms=30000 is not above fetch.max.wait.ms=30000")
        );
    }

    #[test]
    fn unsupported_and_ignored() {
        let mut b = base();
        b.flag("security.protocol=SASL_SSL").unwrap();
        b.flag("sasl.mechanism=PLAIN").unwrap();
        assert_eq!(
            err(&b, Mode::Assign),
            "`sasl.username` is not set: security.protocol=SASL_SSL needs credentials: set sasl.username and sasl.password (or sasl.jaas.config)"
        );
        // TLS settings without TLS are not used: said, not silently dropped.
        let mut b = base();
        b.flag("ssl.ca.location=/etc/kafka/ca.pem").unwrap();
        let c = b.build(Mode::Assign).unwrap();
        assert_eq!(c.tls, None);
        assert_eq!(
            c.warnings,
            vec!["ssl.ca.location set but security.protocol=PLAINTEXT: no TLS is used; set security.protocol=SSL to use them".to_owned()]
        );
        // With TLS the files are read while the configuration is checked.
        let mut b = base();
        b.flag("security.protocol=ssl").unwrap();
        b.flag("ssl.ca.location=/nonexistent/ca.pem").unwrap();
        assert!(
            err(&b, Mode::Assign).starts_with("ssl.ca.location: cannot read /nonexistent/ca.pem"),
            "{}",
            err(&b, Mode::Assign)
        );
        let mut b = base();
        b.flag("security.protocol=plaintext").unwrap();
        assert!(b.build(Mode::Assign).is_ok());
        // Credentials without SASL are not used: said, not silently dropped.
        let mut b = base();
        b.flag("sasl.username=u").unwrap();
        let c = b.build(Mode::Assign).unwrap();
        assert_eq!(c.sasl, None);
        assert!(c.warnings[0].starts_with("sasl.username set but security.protocol=PLAINTEXT"));
        let mut b = base();
        b.flag("value.deserializer=org.apache.kafka.common.serialization.StringDeserializer")
            .unwrap();
        let c = b.build(Mode::Assign).unwrap();
        assert_eq!(
            c.warnings,
            vec!["value.deserializer is ignored: weir hands out values as bytes".to_owned()]
        );
    }

    /// Properties weir cannot honour are refused by name, with why, instead of
    /// being accepted and doing nothing (issue 10, defect 13); their defaults are
    /// what weir does, so files that spell those out still work.
    #[test]
    fn properties_weir_does_not_implement_are_refused_or_warned() {
        for (pair, name) in [
            ("allow.auto.create.topics=true", "allow.auto.create.topics"),
            ("connections.max.idle.ms=540000", "connections.max.idle.ms"),
            ("receive.buffer.bytes=65536", "receive.buffer.bytes"),
            ("send.buffer.bytes=131072", "send.buffer.bytes"),
        ] {
            let mut b = base();
            b.flag(pair).unwrap();
            let e = err(&b, Mode::Assign);
            assert!(
                e.starts_with(&format!("`{pair}` is not supported: weir ")),
                "{name}: {e}"
            );
        }
        for pair in [
            "allow.auto.create.topics=false",
            "connections.max.idle.ms=-1",
            "receive.buffer.bytes=-1",
            "send.buffer.bytes=-1",
        ] {
            let mut b = base();
            b.flag(pair).unwrap();
            let c = b.build(Mode::Assign).unwrap();
            assert!(c.warnings.is_empty(), "{pair}: {:?}", c.warnings);
        }
        let mut b = base();
        b.flag("exclude.internal.topics=false").unwrap();
        let c = b.build(Mode::Assign).unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert!(!c.exclude_internal_topics);
    }

    #[test]
    fn malformed_pair() {
        let mut b = base();
        assert_eq!(
            b.flag("fetch.min.bytes").unwrap_err().to_string(),
            "malformed -X argument `fetch.min.bytes`: expected name=value, for example -X fetch.min.bytes=1024"
        );
        assert!(b.flag("=3").is_err());
        assert_eq!(
            parse_pair("client.id=a=b").unwrap(),
            ("client.id".into(), "a=b".into())
        );
    }

    #[test]
    fn properties_syntax() {
        let text = "# comment\n! also a comment\n   \nbootstrap.servers = a:1,\\\n    b:2\nclient.id:weir\\:x\ngroup.id  g1\nkey\\ with\\=odd = v\\tw\\u0041\nempty=\ntrailing=x\\\\\nlast\\\n";
        let got = parse_properties(text, Path::new("t.properties")).unwrap();
        let pairs: Vec<(&str, &str, usize)> = got
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.line))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("bootstrap.servers", "a:1,b:2", 4),
                ("client.id", "weir:x", 6),
                ("group.id", "g1", 7),
                ("key with=odd", "v\twA", 8),
                ("empty", "", 9),
                ("trailing", "x\\", 10),
                ("last", "", 11),
            ]
        );
        let e = parse_properties("a=\\u00zz\n", Path::new("f.properties"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "f.properties:1: malformed \\uXXXX escape: expected four hex digits"
        );
    }

    #[test]
    fn file_errors_name_file_and_line() {
        let dir = std::env::temp_dir().join(format!("weir-cfg2-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.properties");
        std::fs::write(&file, "# x\nfetch.min.byte=3\n").unwrap();
        let e = ConfigBuilder::new()
            .properties_file(&file)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "unknown property `fetch.min.byte` (from {}:2); did you mean `fetch.min.bytes`?",
                file.display()
            )
        );
        std::fs::write(&file, "fetch.min.bytes=-3\n").unwrap();
        let mut b = base();
        b.properties_file(&file).unwrap();
        assert!(err(&b, Mode::Assign).contains(&format!("(from {}:1)", file.display())));
        let missing = dir.join("nope.properties");
        let e = ConfigBuilder::new()
            .properties_file(&missing)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("cannot read {}", missing.display())),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    fn sasl(pairs: &[&str]) -> Result<ConsumerConfig, ConfigError> {
        let mut b = base();
        b.flag("security.protocol=SASL_PLAINTEXT").unwrap();
        for p in pairs {
            b.flag(p).unwrap();
        }
        b.build(Mode::Assign)
    }

    #[test]
    fn sasl_credentials_come_from_librdkafka_or_java_properties() {
        let c = sasl(&[
            "sasl.mechanism=SCRAM-SHA-512",
            "sasl.username=weir",
            "sasl.password=weir-secret",
        ])
        .unwrap();
        let s = c.sasl.unwrap();
        assert_eq!(
            (s.mechanism, s.username.as_str()),
            (Mechanism::ScramSha512, "weir")
        );
        assert_eq!(s.password.expose(), "weir-secret");
        let c = sasl(&[
            "sasl.mechanism=scram-sha-256",
            r#"sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="weir" password="weir-secret";"#,
        ])
        .unwrap();
        let s = c.sasl.unwrap();
        assert_eq!(
            (s.mechanism, s.username.as_str()),
            (Mechanism::ScramSha256, "weir")
        );
        assert_eq!(s.password.expose(), "weir-secret");
        assert!(!format!("{s:?}").contains("weir-secret"));
    }

    #[test]
    fn sasl_mistakes_are_clear_and_never_show_the_password() {
        let e = |pairs: &[&str]| sasl(pairs).unwrap_err().to_string();
        // Kafka's default mechanism is GSSAPI, which weir does not speak.
        assert!(
            e(&["sasl.username=u", "sasl.password=hunter2"])
                .starts_with("`sasl.mechanism=GSSAPI` is not supported"),
        );
        assert_eq!(
            e(&["sasl.mechanism=PLAIN", "sasl.username=u"]),
            "`sasl.password` is not set: security.protocol=SASL_PLAINTEXT needs credentials: set sasl.username and sasl.password (or sasl.jaas.config)"
        );
        let bad_jaas = e(&[
            "sasl.mechanism=PLAIN",
            r#"sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="hunter2""#,
        ]);
        assert!(
            bad_jaas.contains("the entry must end with `;`"),
            "{bad_jaas}"
        );
        assert!(!bad_jaas.contains("hunter2"), "{bad_jaas}");
        let wrong_module = e(&[
            "sasl.mechanism=SCRAM-SHA-512",
            r#"sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="hunter2";"#,
        ]);
        assert!(
            wrong_module.contains("needs org.apache.kafka.common.security.scram.ScramLoginModule"),
            "{wrong_module}"
        );
        assert!(!wrong_module.contains("hunter2"));
        let both = e(&[
            "sasl.mechanism=PLAIN",
            "sasl.username=u",
            r#"sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="hunter2";"#,
        ]);
        assert!(
            both.starts_with("both sasl.jaas.config and sasl.username/sasl.password are set"),
            "{both}"
        );
        // PLAIN without TLS works, with a warning.
        let c = sasl(&[
            "sasl.mechanism=PLAIN",
            "sasl.username=u",
            "sasl.password=hunter2",
        ])
        .unwrap();
        assert!(c.warnings.iter().any(|w| w.contains("clear text")));
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
