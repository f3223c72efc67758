//! SASL client mechanisms, sans-IO: PLAIN (RFC 4616), SCRAM-SHA-256 / SCRAM-SHA-512
//! (RFC 5802, RFC 7677) and OAUTHBEARER (RFC 7628), as Kafka speaks them inside
//! SaslAuthenticate.
//!
//! OAUTHBEARER's token comes from a [`TokenSource`] the application supplies (a file
//! read at each authentication, or an unsecured JWT made by [`unsecured_jwt`]), asked
//! for every time a connection authenticates, so a renewed token is used at the next
//! re-authentication.
//!
//! An [`Authenticator`] produces the client's messages and checks the broker's
//! answers; the connection layer carries them ([`crate::messages::sasl`]). Everything
//! the broker sends is untrusted: a server-first message that does not extend the
//! client's nonce, names an iteration count outside Kafka's range (4096-16384; a
//! hostile count would otherwise buy seconds of CPU per connection), carries a
//! mandatory extension, or a server signature that does not verify, is a typed
//! [`AuthError`], never a panic.
//!
//! Secrets: the password is held in a [`Secret`], whose `Debug` and `Display` print
//! nothing of it, and no error message here quotes it.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256, Sha512};

/// A SASL mechanism weir speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// `PLAIN`: the username and password in one message (use it over TLS).
    Plain,
    /// `SCRAM-SHA-256`.
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
    /// `OAUTHBEARER`: a bearer token (use it over TLS).
    OAuthBearer,
}

impl Mechanism {
    /// The mechanism's name on the wire and in `sasl.mechanism`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// The mechanism named `name` (case-insensitive), if weir speaks it.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Mechanism::Plain,
            Mechanism::ScramSha256,
            Mechanism::ScramSha512,
            Mechanism::OAuthBearer,
        ]
        .into_iter()
        .find(|m| m.name().eq_ignore_ascii_case(name.trim()))
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A password (or any secret): printed as `***` by `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps `s`.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for the mechanism only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where OAUTHBEARER tokens come from: a function called at every authentication
/// (it may read a file or build a fresh unsecured token), and the SASL extensions
/// sent with the token.
#[derive(Clone)]
pub struct TokenSource {
    get: std::sync::Arc<dyn Fn() -> Result<Secret, String> + Send + Sync>,
    /// What the source is, for messages (never the token).
    pub what: String,
    /// SASL extensions (`key=value` pairs sent beside the token).
    pub extensions: Vec<(String, String)>,
}

impl TokenSource {
    /// A source described by `what` whose tokens `get` returns.
    pub fn new(
        what: impl Into<String>,
        extensions: Vec<(String, String)>,
        get: impl Fn() -> Result<Secret, String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            get: std::sync::Arc::new(get),
            what: what.into(),
            extensions,
        }
    }

    /// A token now.
    pub fn token(&self) -> Result<Secret, String> {
        (self.get)()
    }
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("what", &self.what)
            .field("extensions", &self.extensions)
            .finish_non_exhaustive()
    }
}

impl PartialEq for TokenSource {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.get, &other.get)
            && self.what == other.what
            && self.extensions == other.extensions
    }
}

impl Eq for TokenSource {}

/// An unsecured JWT (`alg: none`, no signature), as Kafka's
/// `OAuthBearerUnsecuredLoginCallbackHandler` and librdkafka's
/// `enable.sasl.oauthbearer.unsecure.jwt` make them for tests and development:
/// `claims` are JSON members already encoded (`"sub":"admin"`), `now_s` the issue
/// time, `lifetime_s` how long it lives.
pub fn unsecured_jwt(claims: &[(String, String)], now_s: u64, lifetime_s: u64) -> String {
    let mut body = format!(
        "{{\"iat\":{now_s},\"exp\":{}",
        now_s.saturating_add(lifetime_s)
    );
    for (k, v) in claims {
        body.push_str(&format!(",{}:{v}", json_string(k)));
    }
    body.push('}');
    format!(
        "{}.{}.",
        base64url(br#"{"alg":"none"}"#),
        base64url(body.as_bytes())
    )
}

/// `s` as a JSON string literal.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn base64url(data: &[u8]) -> String {
    base64_encode(data)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}

/// SASL credentials: a mechanism, a username and a password (PLAIN, SCRAM), or a
/// token source (OAUTHBEARER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslConfig {
    /// The mechanism (`sasl.mechanism`).
    pub mechanism: Mechanism,
    /// The username.
    pub username: String,
    /// The password.
    pub password: Secret,
    /// OAUTHBEARER's tokens.
    pub token: Option<TokenSource>,
}

/// Why an exchange failed on the client's side.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// A broker message that is not what the mechanism defines (the text says what).
    Malformed(&'static str),
    /// The server's nonce does not start with the client's.
    NonceMismatch,
    /// An iteration count outside Kafka's range for SCRAM credentials.
    Iterations(u32),
    /// The server's final message carries an error (`e=...`).
    Server(String),
    /// The server's signature does not verify: it does not know the password, or
    /// something in between changed the exchange.
    BadServerSignature,
    /// A message arrived after the exchange finished.
    Finished,
    /// No OAUTHBEARER token could be had (the text says why).
    Token(String),
    /// The broker rejected the OAUTHBEARER token (its JSON error).
    TokenRejected(String),
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Malformed(what) => write!(f, "malformed SCRAM message from the broker: {what}"),
            AuthError::NonceMismatch => {
                f.write_str("the broker's SCRAM nonce does not extend ours (a replayed or forged answer)")
            }
            AuthError::Iterations(i) => write!(
                f,
                "the broker asked for {i} SCRAM iterations, outside Kafka's 4096-16384"
            ),
            AuthError::Server(e) => write!(f, "the broker ended the SCRAM exchange: {e}"),
            AuthError::BadServerSignature => f.write_str(
                "the broker's SCRAM signature does not verify: it does not hold this user's credentials (or the exchange was tampered with)",
            ),
            AuthError::Finished => f.write_str("a SASL message after the exchange finished"),
            AuthError::Token(why) => write!(f, "no OAUTHBEARER token: {why}"),
            AuthError::TokenRejected(json) => {
                write!(f, "the broker rejected the OAUTHBEARER token: {json}")
            }
        }
    }
}

impl std::error::Error for AuthError {}

/// The least and most SCRAM iterations Kafka allows for a credential.
pub const SCRAM_ITERATIONS: std::ops::RangeInclusive<u32> = 4096..=16384;

/// What the client does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes in the next SaslAuthenticate.
    Send(Vec<u8>),
    /// The exchange is complete and verified.
    Done,
}

/// One client side of a SASL exchange.
#[derive(Debug)]
pub struct Authenticator {
    state: State,
}

#[derive(Debug)]
enum State {
    /// PLAIN: the one message is out; any answer without an error completes it.
    PlainSent,
    /// SCRAM: the client-first message is out.
    ScramFirst(Scram),
    /// SCRAM: the client-final message is out; the server signature is expected.
    ScramFinal {
        server_signature: Vec<u8>,
    },
    /// OAUTHBEARER: the token is out; an empty answer accepts it.
    OAuthSent,
    /// OAUTHBEARER: the broker sent its error and got the `\x01` that ends the
    /// exchange; it answers with an authentication error next.
    OAuthRejected(String),
    Done,
}

#[derive(Debug)]
struct Scram {
    sha512: bool,
    password: Secret,
    client_nonce: String,
    client_first_bare: String,
}

impl Authenticator {
    /// Starts an exchange for `cfg`; `nonce` is the client nonce (random, printable,
    /// without commas; [`random_nonce`] makes one). Returns the authenticator and the
    /// first message to send. Fails only when OAUTHBEARER's token source has no
    /// token.
    pub fn start(cfg: &SaslConfig, nonce: &str) -> Result<(Self, Vec<u8>), AuthError> {
        Ok(match cfg.mechanism {
            Mechanism::OAuthBearer => {
                let source = cfg
                    .token
                    .as_ref()
                    .ok_or_else(|| AuthError::Token("no token source is configured".into()))?;
                let token = source.token().map_err(AuthError::Token)?;
                let mut msg = format!("n,,\x01auth=Bearer {}", token.expose());
                for (k, v) in &source.extensions {
                    msg.push_str(&format!("\x01{k}={v}"));
                }
                msg.push_str("\x01\x01");
                (
                    Authenticator {
                        state: State::OAuthSent,
                    },
                    msg.into_bytes(),
                )
            }
            Mechanism::Plain => {
                let msg =
                    crate::messages::sasl::plain_auth_bytes(&cfg.username, cfg.password.expose());
                (
                    Authenticator {
                        state: State::PlainSent,
                    },
                    msg,
                )
            }
            Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
                let bare = format!("n={},r={nonce}", sasl_name(&cfg.username));
                let first = format!("n,,{bare}");
                let scram = Scram {
                    sha512: cfg.mechanism == Mechanism::ScramSha512,
                    password: cfg.password.clone(),
                    client_nonce: nonce.to_owned(),
                    client_first_bare: bare,
                };
                (
                    Authenticator {
                        state: State::ScramFirst(scram),
                    },
                    first.into_bytes(),
                )
            }
        })
    }

    /// The broker's answer (the `auth_bytes` of a SaslAuthenticate response without
    /// an error): what to send next, or done.
    pub fn step(&mut self, server: &[u8]) -> Result<Step, AuthError> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::PlainSent => Ok(Step::Done),
            State::OAuthSent if server.is_empty() => Ok(Step::Done),
            State::OAuthSent => {
                // RFC 7628 §3.2.2: the error is a challenge; the client ends the
                // exchange with a lone %x01 and the server then fails it.
                let json: String = String::from_utf8_lossy(server).chars().take(512).collect();
                self.state = State::OAuthRejected(json);
                Ok(Step::Send(vec![0x01]))
            }
            State::OAuthRejected(json) => Err(AuthError::TokenRejected(json)),
            State::ScramFirst(s) => {
                let (reply, server_signature) = s.client_final(server)?;
                self.state = State::ScramFinal { server_signature };
                Ok(Step::Send(reply))
            }
            State::ScramFinal { server_signature } => {
                verify_server_final(server, &server_signature)?;
                Ok(Step::Done)
            }
            State::Done => Err(AuthError::Finished),
        }
    }
}

/// A client nonce: 24 random bytes, base64 (printable, no commas).
pub fn random_nonce() -> Result<String, getrandom::Error> {
    let mut b = [0u8; 24];
    getrandom::getrandom(&mut b)?;
    Ok(base64_encode(&b))
}

/// `saslname` (RFC 5802 §5.1): `=` and `,` escaped.
fn sasl_name(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

impl Scram {
    /// The client-final message for `server_first`, and the server signature the
    /// server-final message must carry.
    fn client_final(&self, server_first: &[u8]) -> Result<(Vec<u8>, Vec<u8>), AuthError> {
        let text = std::str::from_utf8(server_first)
            .map_err(|_| AuthError::Malformed("server-first is not UTF-8"))?;
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for (i, attr) in text.split(',').enumerate() {
            let (k, v) = attr
                .split_once('=')
                .ok_or(AuthError::Malformed("server-first attribute without '='"))?;
            match (i, k) {
                (0, "m") => return Err(AuthError::Malformed("a mandatory extension (m=)")),
                (0, "r") => nonce = Some(v),
                (1, "s") => salt = Some(v),
                (2, "i") => iterations = Some(v),
                (0..=2, _) => {
                    return Err(AuthError::Malformed(
                        "server-first is not r=...,s=...,i=...",
                    ));
                }
                // Optional extensions after the three are ignored, as RFC 5802 allows.
                _ => {}
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err(AuthError::Malformed("server-first lacks r, s or i"));
        };
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err(AuthError::NonceMismatch);
        }
        let salt = base64_decode(salt).ok_or(AuthError::Malformed("the salt is not base64"))?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| AuthError::Malformed("the iteration count is not a number"))?;
        if !SCRAM_ITERATIONS.contains(&iterations) {
            return Err(AuthError::Iterations(iterations));
        }
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let (proof, server_signature) = if self.sha512 {
            keys::<Sha512, Hmac<Sha512>>(
                self.password.expose().as_bytes(),
                &salt,
                iterations,
                auth_message.as_bytes(),
            )
        } else {
            keys::<Sha256, Hmac<Sha256>>(
                self.password.expose().as_bytes(),
                &salt,
                iterations,
                auth_message.as_bytes(),
            )
        };
        let reply = format!("{without_proof},p={}", base64_encode(&proof));
        Ok((reply.into_bytes(), server_signature))
    }
}

/// RFC 5802 §3: the client proof and the expected server signature.
fn keys<D: Digest, M: Mac + KeyInit + Clone>(
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    auth_message: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    let hmac = |key: &[u8], data: &[u8]| -> Vec<u8> {
        // HMAC takes keys of any length: new_from_slice cannot fail for it.
        let mut m = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
        m.update(data);
        m.finalize().into_bytes().to_vec()
    };
    // Hi(password, salt, i): PBKDF2 with HMAC, one block.
    let mut u = {
        let mut first = salt.to_vec();
        first.extend_from_slice(&1u32.to_be_bytes());
        hmac(password, &first)
    };
    let mut salted = u.clone();
    let keyed = <M as KeyInit>::new_from_slice(password).expect("HMAC accepts any key length");
    for _ in 1..iterations {
        let mut m = keyed.clone();
        m.update(&u);
        u = m.finalize().into_bytes().to_vec();
        for (s, x) in salted.iter_mut().zip(&u) {
            *s ^= x;
        }
    }
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = D::digest(&client_key);
    let client_signature = hmac(&stored_key, auth_message);
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&client_signature)
        .map(|(a, b)| a ^ b)
        .collect();
    let server_key = hmac(&salted, b"Server Key");
    (proof, hmac(&server_key, auth_message))
}

fn verify_server_final(server: &[u8], expected: &[u8]) -> Result<(), AuthError> {
    let text = std::str::from_utf8(server)
        .map_err(|_| AuthError::Malformed("server-final is not UTF-8"))?;
    let first = text.split(',').next().unwrap_or_default();
    if let Some(e) = first.strip_prefix("e=") {
        // A server error name, from a fixed list in RFC 5802; keep it short.
        return Err(AuthError::Server(e.chars().take(64).collect()));
    }
    let Some(v) = first.strip_prefix("v=") else {
        return Err(AuthError::Malformed("server-final is neither v= nor e="));
    };
    let got = base64_decode(v).ok_or(AuthError::Malformed("the server signature is not base64"))?;
    // Not secret-dependent timing: the expected value is already the broker's to know.
    if got != expected {
        return Err(AuthError::BadServerSignature);
    }
    Ok(())
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Strict standard base64 with padding; `None` for anything else.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let val = |c: u8| -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    };
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    let quads = bytes.len() / 4;
    for (q, chunk) in bytes.chunks(4).enumerate() {
        let last = q + 1 == quads;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | val(c)?;
        }
        n <<= 6 * pad as u32;
        let b = n.to_be_bytes();
        out.extend_from_slice(&b[1..4 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauthbearer_sends_the_token_and_reads_the_brokers_verdict() {
        let mut c = cfg(Mechanism::OAuthBearer, "", "");
        assert_eq!(
            Authenticator::start(&c, "n").unwrap_err(),
            AuthError::Token("no token source is configured".into())
        );
        c.token = Some(TokenSource::new(
            "test",
            vec![("traceId".into(), "7".into())],
            || Ok(Secret::new("tok.en.")),
        ));
        let (mut a, first) = Authenticator::start(&c, "n").unwrap();
        assert_eq!(first, b"n,,\x01auth=Bearer tok.en.\x01traceId=7\x01\x01");
        assert_eq!(a.step(b"").unwrap(), Step::Done);
        // A rejection: the JSON challenge, the lone 0x01, then the broker's error.
        let (mut a, _) = Authenticator::start(&c, "n").unwrap();
        assert_eq!(
            a.step(br#"{"status":"invalid_token"}"#).unwrap(),
            Step::Send(vec![1])
        );
        assert_eq!(
            a.step(b"").unwrap_err(),
            AuthError::TokenRejected(r#"{"status":"invalid_token"}"#.into())
        );
        // A source that fails says why.
        c.token = Some(TokenSource::new("file", vec![], || Err("gone".into())));
        assert_eq!(
            Authenticator::start(&c, "n").unwrap_err().to_string(),
            "no OAUTHBEARER token: gone"
        );
    }

    #[test]
    fn unsecured_jwts_are_alg_none_with_the_claims() {
        let t = unsecured_jwt(&[("sub".into(), json_string("ad\"min"))], 100, 3600);
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2], "");
        let dec = |p: &str| {
            let mut b = p.replace('-', "+").replace('_', "/");
            while !b.len().is_multiple_of(4) {
                b.push('=');
            }
            String::from_utf8(base64_decode(&b).unwrap()).unwrap()
        };
        assert_eq!(dec(parts[0]), r#"{"alg":"none"}"#);
        assert_eq!(dec(parts[1]), r#"{"iat":100,"exp":3700,"sub":"ad\"min"}"#);
    }

    fn cfg(m: Mechanism, user: &str, pass: &str) -> SaslConfig {
        SaslConfig {
            mechanism: m,
            token: None,
            username: user.into(),
            password: Secret::new(pass),
        }
    }

    /// RFC 7677 §3, the SCRAM-SHA-256 example exchange.
    #[test]
    fn scram_sha_256_matches_rfc_7677() {
        let (mut a, first) = Authenticator::start(
            &cfg(Mechanism::ScramSha256, "user", "pencil"),
            "rOprNGfwEbeRWgbNEkqO",
        )
        .unwrap();
        assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first =
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let Step::Send(fin) = a.step(server_first).unwrap() else {
            panic!("expected a client-final message");
        };
        assert_eq!(
            String::from_utf8(fin).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(
            a.step(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
                .unwrap(),
            Step::Done
        );
        assert_eq!(a.step(b"v=x").unwrap_err(), AuthError::Finished);
    }

    #[test]
    fn a_wrong_server_signature_or_a_server_error_fails() {
        let start = || {
            let (mut a, _) = Authenticator::start(
                &cfg(Mechanism::ScramSha256, "user", "pencil"),
                "rOprNGfwEbeRWgbNEkqO",
            )
            .unwrap();
            a.step(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
                .unwrap();
            a
        };
        assert_eq!(
            start()
                .step(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
                .unwrap_err(),
            AuthError::BadServerSignature
        );
        assert_eq!(
            start().step(b"e=invalid-proof").unwrap_err(),
            AuthError::Server("invalid-proof".into())
        );
        assert!(matches!(
            start().step(b"nonsense").unwrap_err(),
            AuthError::Malformed(_)
        ));
    }

    #[test]
    fn hostile_server_first_messages_are_typed_errors() {
        let start = || {
            Authenticator::start(&cfg(Mechanism::ScramSha512, "u", "p"), "abc")
                .unwrap()
                .0
        };
        let cases: &[(&[u8], AuthError)] = &[
            (b"r=xyz123,s=c2FsdA==,i=4096", AuthError::NonceMismatch),
            // The nonce must be extended, not just echoed.
            (b"r=abc,s=c2FsdA==,i=4096", AuthError::NonceMismatch),
            (b"r=abcdef,s=c2FsdA==,i=4095", AuthError::Iterations(4095)),
            (
                b"r=abcdef,s=c2FsdA==,i=4294967295",
                AuthError::Iterations(u32::MAX),
            ),
            (
                b"m=ext,r=abcdef,s=c2FsdA==,i=4096",
                AuthError::Malformed("a mandatory extension (m=)"),
            ),
            (
                b"r=abcdef,s=%%%%,i=4096",
                AuthError::Malformed("the salt is not base64"),
            ),
            (
                b"r=abcdef,i=4096,s=c2FsdA==",
                AuthError::Malformed("server-first is not r=...,s=...,i=..."),
            ),
            (
                b"r=abcdef,s=c2FsdA==",
                AuthError::Malformed("server-first lacks r, s or i"),
            ),
            (
                b"r=abcdef,s=c2FsdA==,i=-1",
                AuthError::Malformed("the iteration count is not a number"),
            ),
            (
                b"\xff\xfe",
                AuthError::Malformed("server-first is not UTF-8"),
            ),
        ];
        for (msg, want) in cases {
            assert_eq!(
                &start().step(msg).unwrap_err(),
                want,
                "{:?}",
                String::from_utf8_lossy(msg)
            );
        }
        // Extensions after i= are allowed.
        assert!(matches!(
            start().step(b"r=abcdef,s=c2FsdA==,i=4096,x=y").unwrap(),
            Step::Send(_)
        ));
    }

    #[test]
    fn usernames_are_escaped_and_plain_is_one_message() {
        let (_, first) =
            Authenticator::start(&cfg(Mechanism::ScramSha256, "a=b,c", "p"), "n").unwrap();
        assert_eq!(first, b"n,,n=a=3Db=2Cc,r=n");
        let (mut a, msg) =
            Authenticator::start(&cfg(Mechanism::Plain, "weir", "s3cret"), "n").unwrap();
        assert_eq!(msg, b"\0weir\0s3cret");
        assert_eq!(a.step(b"").unwrap(), Step::Done);
    }

    #[test]
    fn secrets_do_not_print() {
        let c = cfg(Mechanism::Plain, "weir", "s3cret");
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(c.password.to_string(), "***");
    }

    #[test]
    fn base64_round_trips_and_refuses_junk() {
        for n in 0..40 {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(base64_decode(&base64_encode(&data)).unwrap(), data, "{n}");
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        for bad in ["Zm9", "Zm9v!mFy", "Z===", "Zm==Zm9v", "===="] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
        assert!(random_nonce().unwrap().len() >= 32);
        assert_eq!(
            Mechanism::from_name("scram-sha-512"),
            Some(Mechanism::ScramSha512)
        );
        assert_eq!(Mechanism::from_name("GSSAPI"), None);
    }
}
