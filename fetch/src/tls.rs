//! TLS for broker connections: rustls with the `ring` crypto provider.
//!
//! [`TlsConfig`] is plain data (where the CA, the client certificate and the key
//! come from, and what to verify), filled from Kafka's `ssl.*` properties by the
//! consumer crate. [`TlsConnector::new`] reads the files once and builds the rustls
//! client configuration every connection shares; every connection (fetch, group
//! coordinator, admin) then runs its handshake without blocking inside the reactor
//! ([`crate::conn`]).
//!
//! Why `ring` and not `aws-lc-rs` (rustls's default): measured on these machines
//! (BENCHMARKS.md, "TLS"), both decrypt AES-GCM at 3-4 GB/s, within noise of each
//! other, while `aws-lc-rs` doubles the clean build of the TLS stack (a C library
//! compiled from source). Decryption is a small share of a TLS consumer's CPU next
//! to the kernel's socket copy, so the lean build wins.
//!
//! What is verified: the broker's chain against the configured CAs (or the
//! system's), its validity dates, and its host name against the name weir dialled
//! (a bootstrap address or the host the broker advertises), as Kafka's default
//! `ssl.endpoint.identification.algorithm=https` does. `none` turns the host-name
//! check off (and only that); `enable.ssl.certificate.verification=false` turns all
//! of it off. Handshake signatures are checked in every case.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct,
    RootCertStore, SignatureScheme,
};
use weir_protocol::auth::Secret;

/// Where PEM text comes from: a file, or the text itself (a property's value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pem {
    /// A file (for CAs, also a directory of files).
    File(PathBuf),
    /// PEM text given inline.
    Text(String),
}

/// One source of trusted CA certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaSource {
    /// The operating system's trust store (librdkafka's `ssl.ca.location=probe`).
    System,
    /// PEM certificates, with the property they were given in (for messages).
    Pem {
        /// The property (`ssl.ca.location`, `ssl.truststore.location`, ...).
        property: &'static str,
        /// The file, directory or text.
        pem: Pem,
    },
}

/// A client certificate (mTLS): the chain and its private key.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// The certificate chain, leaf first, and the property that named it.
    pub chain: (&'static str, Pem),
    /// The private key (PKCS#8, PKCS#1 or SEC1 PEM; or encrypted PKCS#8), and the
    /// property that named it.
    pub key: (&'static str, Pem),
    /// The password of an encrypted key (`ssl.key.password`).
    pub key_password: Option<Secret>,
}

impl fmt::Debug for ClientCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Inline key text is a secret.
        let key = match &self.key.1 {
            Pem::File(p) => format!("{}", p.display()),
            Pem::Text(_) => "(inline, not shown)".to_owned(),
        };
        f.debug_struct("ClientCert")
            .field("chain", &self.chain)
            .field("key", &key)
            .field("key_password", &self.key_password)
            .finish()
    }
}

/// TLS settings (`security.protocol=SSL` or `SASL_SSL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// Trusted CAs; empty means the system's trust store.
    pub ca: Vec<CaSource>,
    /// Check the broker's host name (`ssl.endpoint.identification.algorithm=https`,
    /// the default).
    pub verify_hostname: bool,
    /// Check the broker's certificate at all (`enable.ssl.certificate.verification`,
    /// default true).
    pub verify_certificate: bool,
    /// A client certificate for brokers that require one (`ssl.client.auth`).
    pub client: Option<ClientCert>,
}

impl TlsConfig {
    /// Where the trusted CAs come from, in words (for messages).
    pub fn ca_origin(&self) -> String {
        if self.ca.is_empty() {
            return "the system's trust store".to_owned();
        }
        let parts: Vec<String> = self
            .ca
            .iter()
            .map(|s| match s {
                CaSource::System => "the system's trust store".to_owned(),
                CaSource::Pem {
                    property,
                    pem: Pem::File(p),
                } => format!("{property}={}", p.display()),
                CaSource::Pem { property, .. } => (*property).to_owned(),
            })
            .collect();
        parts.join(" and ")
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            ca: Vec::new(),
            verify_hostname: true,
            verify_certificate: true,
            client: None,
        }
    }
}

/// The settings could not be turned into a TLS client: a file is missing or holds
/// no usable certificate or key. The message names the property and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSetupError(pub String);

impl fmt::Display for TlsSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsSetupError {}

/// A loaded TLS client configuration, shared by every connection (cheap to clone).
#[derive(Clone)]
pub struct TlsConnector {
    config: Arc<ClientConfig>,
    /// For messages: where the trusted CAs came from.
    ca_origin: String,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("ca", &self.ca_origin)
            .finish_non_exhaustive()
    }
}

fn provider() -> Arc<CryptoProvider> {
    // `ring` is chosen over aws-lc-rs for build cost (see the module docs); rustls
    // marks its default provider deprecated only because it has no post-quantum
    // key exchange, which Kafka's JVM brokers do not offer either.
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_file(property: &str, path: &Path) -> Result<Vec<u8>, TlsSetupError> {
    std::fs::read(path).map_err(|e| {
        TlsSetupError(format!(
            "{property}: cannot read {}: {e}; check the path and its permissions",
            path.display()
        ))
    })
}

fn certs_in(
    property: &str,
    what: &str,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut out = Vec::new();
    for c in CertificateDer::pem_slice_iter(bytes) {
        match c {
            Ok(c) => out.push(c),
            Err(e) => return Err(format!("{property}: {what} is not valid PEM ({e})")),
        }
    }
    Ok(out)
}

/// The certificates in a PEM file, a directory of them, or PEM text.
fn load_certs(property: &str, pem: &Pem) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let certs = match pem {
        Pem::Text(t) => certs_in(property, "the value", t.as_bytes()).map_err(TlsSetupError)?,
        Pem::File(p) if p.is_dir() => {
            let entries = std::fs::read_dir(p).map_err(|e| {
                TlsSetupError(format!("{property}: cannot list {}: {e}", p.display()))
            })?;
            let mut names: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            names.sort();
            let mut out = Vec::new();
            for f in names {
                // A CA directory holds other files too (hash links, CRLs): take
                // the certificates of the files that parse and skip the rest.
                if let Ok(bytes) = std::fs::read(&f) {
                    out.extend(certs_in(property, "", &bytes).unwrap_or_default());
                }
            }
            out
        }
        Pem::File(p) => {
            let bytes = read_file(property, p)?;
            certs_in(property, &p.display().to_string(), &bytes).map_err(TlsSetupError)?
        }
    };
    if certs.is_empty() {
        let what = match pem {
            Pem::Text(_) => "its value".to_owned(),
            Pem::File(p) => p.display().to_string(),
        };
        return Err(TlsSetupError(format!(
            "{property}: no PEM certificate (-----BEGIN CERTIFICATE-----) in {what}"
        )));
    }
    Ok(certs)
}

fn load_key(
    property: &str,
    pem: &Pem,
    password: Option<&Secret>,
) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    let (bytes, what) = match pem {
        Pem::Text(t) => (t.as_bytes().to_vec(), "its value".to_owned()),
        Pem::File(p) => (read_file(property, p)?, p.display().to_string()),
    };
    if let Some(der) = pem_section(&bytes, "ENCRYPTED PRIVATE KEY") {
        let Some(password) = password else {
            return Err(TlsSetupError(format!(
                "{property}: the private key in {what} is encrypted: set ssl.key.password"
            )));
        };
        let der = der.ok_or_else(|| {
            TlsSetupError(format!(
                "{property}: the encrypted private key in {what} is not valid base64"
            ))
        })?;
        let info = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der.as_slice()).map_err(|e| {
            TlsSetupError(format!(
                "{property}: the encrypted private key in {what} cannot be read ({e})"
            ))
        })?;
        let plain = info.decrypt(password.expose().as_bytes()).map_err(|e| {
            TlsSetupError(format!(
                "{property}: the private key in {what} does not decrypt with ssl.key.password \
                 ({e}): check the password (weir reads PBES2 keys, as openssl and keytool write \
                 them)"
            ))
        })?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            plain.as_bytes().to_vec(),
        )));
    }
    if memchr::memmem::find(&bytes, b"Proc-Type: 4,ENCRYPTED").is_some() {
        return Err(TlsSetupError(format!(
            "{property}: the private key in {what} is encrypted in OpenSSL's legacy format; \
             convert it once to PKCS#8 with `openssl pkcs8 -topk8 -in KEY -out key.pem` (keep \
             ssl.key.password for its new password)"
        )));
    }
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        TlsSetupError(format!(
            "{property}: no usable private key in {what} ({e}); weir reads PEM keys \
             (BEGIN PRIVATE KEY, BEGIN ENCRYPTED PRIVATE KEY, BEGIN RSA PRIVATE KEY or BEGIN \
             EC PRIVATE KEY)"
        ))
    })
}

/// The first PEM section labelled `label`: `None` if there is none, `Some(None)`
/// if its base64 does not decode.
fn pem_section(bytes: &[u8], label: &str) -> Option<Option<Vec<u8>>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = memchr::memmem::find(bytes, begin.as_bytes())? + begin.len();
    let len = memchr::memmem::find(&bytes[start..], end.as_bytes())?;
    let body: String = String::from_utf8_lossy(&bytes[start..start + len])
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    Some(weir_protocol::auth::base64_decode(&body))
}

impl TlsConnector {
    /// Read the files `cfg` names and build the TLS client every connection uses.
    pub fn new(cfg: &TlsConfig) -> Result<Self, TlsSetupError> {
        let provider = provider();
        let mut roots = RootCertStore::empty();
        let sources: Vec<CaSource> = if cfg.ca.is_empty() {
            vec![CaSource::System]
        } else {
            cfg.ca.clone()
        };
        for src in &sources {
            match src {
                CaSource::System => {
                    let found = rustls_native_certs::load_native_certs();
                    let mut added = 0;
                    for c in found.certs {
                        if roots.add(c).is_ok() {
                            added += 1;
                        }
                    }
                    if added == 0 && cfg.verify_certificate {
                        let why = found
                            .errors
                            .first()
                            .map(|e| format!(" ({e})"))
                            .unwrap_or_default();
                        return Err(TlsSetupError(format!(
                            "no CA certificates found in the system's trust store{why}: set \
                             ssl.ca.location to the CA file that signed the brokers' \
                             certificates"
                        )));
                    }
                }
                CaSource::Pem { property, pem } => {
                    for c in load_certs(property, pem)? {
                        roots.add(c).map_err(|e| {
                            TlsSetupError(format!(
                                "{property}: a certificate cannot be used as a CA ({e})"
                            ))
                        })?;
                    }
                }
            }
        }
        let roots = Arc::new(roots);
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError(format!("TLS setup failed: {e}")))?;
        let verifier: Arc<dyn ServerCertVerifier> = if !cfg.verify_certificate {
            Arc::new(AcceptAnyCertificate(Arc::clone(&provider)))
        } else {
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
                .build()
                .map_err(|e| TlsSetupError(format!("TLS setup failed: {e}")))?;
            if cfg.verify_hostname {
                webpki
            } else {
                Arc::new(AnyHostName(webpki))
            }
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match &cfg.client {
            None => builder.with_no_client_auth(),
            Some(cc) => {
                let chain = load_certs(cc.chain.0, &cc.chain.1)?;
                let key = load_key(cc.key.0, &cc.key.1, cc.key_password.as_ref())?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    TlsSetupError(format!(
                        "{} and {}: the client certificate and key cannot be used together \
                         ({e}); check that the key belongs to the certificate",
                        cc.chain.0, cc.key.0
                    ))
                })?
            }
        };
        Ok(Self {
            config: Arc::new(config),
            ca_origin: cfg.ca_origin(),
        })
    }

    /// A client session for a connection to `host` (the name dialled: it is sent
    /// as SNI and checked against the broker's certificate).
    pub(crate) fn session(&self, host: &str) -> Result<ClientConnection, String> {
        let name = ServerName::try_from(host.to_owned()).map_err(|_| {
            format!("{host} is not a host name or IP address a TLS certificate can name")
        })?;
        ClientConnection::new(Arc::clone(&self.config), name)
            .map_err(|e| format!("TLS setup for {host} failed: {e}"))
    }

    /// Where the trusted CAs came from (for messages).
    pub fn ca_origin(&self) -> &str {
        &self.ca_origin
    }
}

/// The chain is verified; the host name is not (`ssl.endpoint.identification.algorithm=none`).
#[derive(Debug)]
struct AnyHostName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain (and dates) before the name, so a name error
        // means everything else passed.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// No certificate check at all (`enable.ssl.certificate.verification=false`);
/// handshake signatures are still checked, so the session key belongs to the
/// certificate presented.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// One line for a TLS failure with broker `host`: what went wrong and which setting
/// fixes it. `ca_origin` says where the trusted CAs came from.
pub(crate) fn describe(e: &rustls::Error, host: &str, ca_origin: &str) -> String {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
                "the broker's certificate is not signed by a CA weir trusts ({ca_origin}): set \
                 ssl.ca.location (or ssl.truststore.location with ssl.truststore.type=PEM) to \
                 the CA file that signed it"
            ),
            CertificateError::NotValidForName => format!(
                "the broker's certificate is not valid for the host name {host}: connect by a \
                 name the certificate lists, or set ssl.endpoint.identification.algorithm=none \
                 to skip the host-name check (not recommended)"
            ),
            CertificateError::NotValidForNameContext { presented, .. } => format!(
                "the broker's certificate is not valid for the host name {host} (it names {}): \
                 connect by a name the certificate lists, or set \
                 ssl.endpoint.identification.algorithm=none to skip the host-name check (not \
                 recommended)",
                presented
                    .iter()
                    .map(|n| bare_name(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the broker's certificate has expired: the broker needs a renewed certificate \
                 (or this machine's clock is wrong)"
                    .to_owned()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the broker's certificate is not valid yet: check this machine's clock".to_owned()
            }
            other => format!("the broker's certificate was rejected: {other:?}"),
        },
        E::AlertReceived(a) => match a {
            AlertDescription::CertificateRequired => "the broker requires a client certificate \
                 (ssl.client.auth=required): set ssl.certificate.location and ssl.key.location"
                .to_owned(),
            AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::AccessDenied => format!(
                "the broker rejected the connection (TLS alert {a:?}): when it requires a \
                 client certificate, set ssl.certificate.location and ssl.key.location to one \
                 its truststore trusts"
            ),
            other => format!(
                "the broker refused the TLS handshake (alert {other:?}): check that both sides \
                 share a TLS version and cipher suite, and whether it requires a client \
                 certificate"
            ),
        },
        E::InvalidMessage(_) | E::InappropriateMessage { .. } => format!(
            "the broker did not answer in TLS ({e}): is this port a TLS listener? If not, use \
             security.protocol=PLAINTEXT or SASL_PLAINTEXT"
        ),
        other => format!("the TLS handshake failed: {other}"),
    }
}

/// `DnsName("kafka-1")` or `IpAddress(10.0.0.1)` (how rustls lists a certificate's
/// names) as `kafka-1` or `10.0.0.1`.
fn bare_name(n: &str) -> &str {
    let inner = n
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or(n);
    inner.trim_matches('"')
}

/// Whether `e` (an error of a read on a TLS session) is the peer closing the TCP
/// connection without a TLS close_notify, which Kafka does routinely.
pub(crate) fn is_unclean_eof(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::UnexpectedEof
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_files_name_the_property() {
        let e = TlsConnector::new(&TlsConfig {
            ca: vec![CaSource::Pem {
                property: "ssl.ca.location",
                pem: Pem::File("/nonexistent/ca.pem".into()),
            }],
            ..TlsConfig::default()
        })
        .unwrap_err();
        assert!(
            e.0.starts_with("ssl.ca.location: cannot read /nonexistent/ca.pem"),
            "{e}"
        );
        let e = TlsConnector::new(&TlsConfig {
            ca: vec![CaSource::Pem {
                property: "ssl.truststore.certificates",
                pem: Pem::Text("not pem".into()),
            }],
            ..TlsConfig::default()
        })
        .unwrap_err();
        assert_eq!(
            e.0,
            "ssl.truststore.certificates: no PEM certificate (-----BEGIN CERTIFICATE-----) in its value"
        );
    }

    #[test]
    fn an_encrypted_key_needs_its_password_and_secrets_are_not_shown() {
        let key = Pem::Text(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n"
                .into(),
        );
        let e = load_key("ssl.key.pem", &key, None).unwrap_err();
        assert_eq!(
            e.0,
            "ssl.key.pem: the private key in its value is encrypted: set ssl.key.password"
        );
        let e = load_key("ssl.key.pem", &key, Some(&Secret::new("pw"))).unwrap_err();
        assert!(e.0.contains("cannot be read"), "{e}");
        let cc = ClientCert {
            chain: ("ssl.certificate.pem", Pem::Text("x".into())),
            key: ("ssl.key.pem", Pem::Text("SECRET-KEY-TEXT".into())),
            key_password: Some(Secret::new("SECRET-PASSWORD")),
        };
        let shown = format!("{cc:?}");
        assert!(!shown.contains("SECRET-KEY-TEXT"), "{shown}");
        assert!(!shown.contains("SECRET-PASSWORD"), "{shown}");
    }

    #[test]
    fn messages_name_the_setting_that_fixes_them() {
        let m = describe(
            &rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
            "localhost",
            "ssl.ca.location=/x",
        );
        assert!(m.contains("ssl.ca.location"), "{m}");
        let m = describe(
            &rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
            "kafka-1",
            "",
        );
        assert!(m.contains("kafka-1"), "{m}");
        assert!(
            m.contains("ssl.endpoint.identification.algorithm=none"),
            "{m}"
        );
        let m = describe(
            &rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
            "h",
            "",
        );
        assert!(m.contains("ssl.certificate.location"), "{m}");
    }
}
