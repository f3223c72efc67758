//! Bulk TLS 1.3 decrypt and encrypt speed of one rustls crypto provider, per cipher
//! suite: a server encrypts 64 MiB of application data once, then a client reads it
//! back (read_tls, process_new_packets, plaintext out), timed. Certificates come from
//! the directory given as the first argument (ca.pem, cert.pem, key.pem).

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Instant;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[cfg(feature = "ring")]
#[allow(deprecated)] // ring's provider lacks post-quantum key exchange; irrelevant here
fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

#[cfg(all(feature = "aws", not(feature = "ring")))]
fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let dir = std::env::args().nth(1).ok_or("usage: tls-provider CERT_DIR")?;
    let at = |f: &str| format!("{dir}/{f}");
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(at("cert.pem"))?.collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_file(at("key.pem"))?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(at("ca.pem"))?)?;
    let base = provider();
    let suites: Vec<_> = base
        .cipher_suites
        .iter()
        .copied()
        .filter(|s| s.version() == &rustls::version::TLS13)
        .collect();
    for suite in suites {
        let mut p = base.clone();
        p.cipher_suites = vec![suite];
        let p = Arc::new(p);
        let server = Arc::new(
            rustls::ServerConfig::builder_with_provider(p.clone())
                .with_protocol_versions(&[&rustls::version::TLS13])?
                .with_no_client_auth()
                .with_single_cert(certs.clone(), key.clone_key())?,
        );
        let client = Arc::new(
            rustls::ClientConfig::builder_with_provider(p)
                .with_protocol_versions(&[&rustls::version::TLS13])?
                .with_root_certificates(roots.clone())
                .with_no_client_auth(),
        );
        let mut c = rustls::ClientConnection::new(client, "localhost".try_into()?)?;
        let mut s = rustls::ServerConnection::new(server)?;
        let mut buf = Vec::new();
        for _ in 0..10 {
            buf.clear();
            while c.wants_write() {
                c.write_tls(&mut buf)?;
            }
            let mut r = &buf[..];
            while !r.is_empty() {
                s.read_tls(&mut r)?;
                s.process_new_packets()?;
            }
            buf.clear();
            while s.wants_write() {
                s.write_tls(&mut buf)?;
            }
            let mut r = &buf[..];
            while !r.is_empty() {
                c.read_tls(&mut r)?;
                c.process_new_packets()?;
            }
        }
        if c.is_handshaking() {
            return Err("the handshake did not finish".into());
        }
        s.set_buffer_limit(None);
        let chunk = vec![7u8; 1 << 20];
        let mut wire = Vec::with_capacity(70 << 20);
        let t = Instant::now();
        for _ in 0..64 {
            s.writer().write_all(&chunk)?;
            while s.wants_write() {
                s.write_tls(&mut wire)?;
            }
        }
        let encrypt = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut out = vec![0u8; 1 << 20];
        let mut total = 0usize;
        let mut r = &wire[..];
        while !r.is_empty() {
            c.read_tls(&mut r)?;
            c.process_new_packets()?;
            loop {
                match c.reader().read(&mut out) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n,
                }
            }
        }
        let decrypt = t.elapsed().as_secs_f64();
        println!(
            "{:?}: decrypt {:.2} GB/s, encrypt {:.2} GB/s ({} MiB)",
            suite.suite(),
            total as f64 / decrypt / 1e9,
            (64u64 << 20) as f64 / encrypt / 1e9,
            total >> 20
        );
    }
    Ok(())
}
