//! `sasl`: the broker's side of a SCRAM exchange (server-first, then server-final),
//! or of an OAUTHBEARER one (the verdict on the token and what follows it), and
//! base64 as SCRAM uses it. Byte 0 modulo 3 picks SCRAM-SHA-256 (0), SCRAM-SHA-512
//! (1) or OAUTHBEARER (2); the rest is the server's messages, separated by 0 bytes.
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
    if which % 3 == 2 {
        // OAUTHBEARER: the broker's verdict on a token, and whatever follows it.
        let cfg = SaslConfig {
            mechanism: Mechanism::OAuthBearer,
            username: String::new(),
            password: Secret::default(),
            token: Some(weir_protocol::auth::TokenSource::new(
                "fuzz",
                vec![],
                || Ok(Secret::new("h.p.")),
            )),
        };
        let Ok((mut auth, first)) = Authenticator::start(&cfg, NONCE) else {
            unreachable!("a static token source always has a token");
        };
        assert!(first.starts_with(b"n,,\x01auth=Bearer h.p."));
        for part in rest.split(|&b| b == 0).take(3) {
            if let Err(e) = auth.step(part) {
                let _ = e.to_string();
                break;
            }
        }
        return;
    }
    let mechanism = if which % 3 == 0 {
        Mechanism::ScramSha256
    } else {
        Mechanism::ScramSha512
    };
    let cfg = SaslConfig {
        mechanism,
        username: "user".into(),
        password: Secret::new("pencil"),
        token: None,
    };
    let Ok((mut auth, first)) = Authenticator::start(&cfg, NONCE) else {
        unreachable!("SCRAM's start cannot fail");
    };
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
