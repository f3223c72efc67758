//! `sasl`: the broker's side of a SCRAM exchange (server-first, then server-final),
//! and base64 as SCRAM uses it. Byte 0 picks SCRAM-SHA-256 (even) or SCRAM-SHA-512
//! (odd); the rest is the server-first message, a 0 byte, and the server-final one.
//! Any bytes must give a typed error or a verified end, never a panic, and the
//! iteration count a broker may ask for is bounded (Kafka's 4096-16384), so no input
//! buys more than a bounded amount of hashing.

use weir_protocol::auth::{
    Authenticator, Mechanism, SaslConfig, Secret, Step, base64_decode, base64_encode,
};

/// The client nonce every exchange starts with: RFC 7677's, so its example exchange is a seed that verifies.
pub const NONCE: &str = "rOprNGfwEbeRWgbNEkqO";

pub fn sasl(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let mechanism = if which % 2 == 0 {
        Mechanism::ScramSha256
    } else {
        Mechanism::ScramSha512
    };
    let cfg = SaslConfig {
        mechanism,
        username: "user".into(),
        password: Secret::new("pencil"),
    };
    let (mut auth, first) = Authenticator::start(&cfg, NONCE);
    assert!(first.starts_with(b"n,,n=user,r="));
    let (server_first, server_final) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    match auth.step(server_first) {
        Ok(Step::Send(reply)) => {
            // The reply always carries the channel binding, the nonce and a proof.
            assert!(reply.starts_with(b"c=biws,r="));
            let _ = auth.step(server_final);
        }
        Ok(Step::Done) => unreachable!("SCRAM cannot finish on its first server message"),
        Err(e) => {
            let _ = e.to_string();
        }
    }
    if let Ok(text) = std::str::from_utf8(rest)
        && let Some(bytes) = base64_decode(text)
    {
        // Decoding then encoding gives back text of the same length.
        assert_eq!(base64_encode(&bytes).len(), text.len());
    }
}
