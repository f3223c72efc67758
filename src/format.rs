//! Output formats of `weir consume`, compatible with kcat's.
//!
//! * the default: each value followed by a newline (with `-K DELIM`: key, `DELIM`,
//!   value, newline);
//! * `-f FORMAT`: kcat's format string, compiled once into [`Token`]s;
//! * `-J`: one JSON object per record with kcat's envelope.
//!
//! A [`Formatter`] writes into a buffer it keeps between records, so formatting a
//! record allocates nothing once the buffer has grown to the largest record seen. It
//! takes a [`RecordView`], this module's own small borrowed view of a record, so the
//! formats do not depend on the fetch engine's types; the consumer loop fills one in
//! from whatever the engine hands out.
//!
//! ## kcat compatibility
//! `-f` tokens: `%t` topic, `%p` partition, `%o` offset, `%k` key, `%K` key length
//! (-1 for null), `%s` value, `%S` value length (-1 for null), `%R` value length as a
//! big-endian 32-bit integer, `%T` timestamp in ms (-1 when not available), `%h`
//! headers as `name=value` separated by commas, `%%` a percent sign. Escapes in the
//! literal text: `\n`, `\r`, `\t`, `\xHH`, `\NNN` (decimal, or octal with a leading
//! zero, as C's `strtoul`), and `\c` for any other `c`. An absent key or value prints
//! nothing, as kcat without `-Z`.
//!
//! `-J` prints the keys in kcat's order: `topic`, `partition`, `offset`, `tstype`
//! (`create`, `logappend` or `unknown`) and `ts` (both left out when the record has
//! no timestamp), `broker`, `headers` (left out when the record has none; an array
//! alternating names and values, a null value as `null`), `key`, `payload` (`null`
//! when absent). Strings are escaped as kcat's JSON library does: `"`, `\`, `\b`,
//! `\f`, `\n`, `\r`, `\t`, other control bytes as `\u00XX`; every other byte is copied
//! unchanged, so a non-UTF-8 key or value produces the same bytes kcat prints.

use std::fmt;
use std::io::{self, Write};

/// How a record's timestamp was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// The record has no timestamp (message format v0).
    NotAvailable,
    /// Set by the producer.
    CreateTime,
    /// Set by the broker when appending.
    LogAppendTime,
}

impl From<weir_protocol::record::TimestampType> for TimestampType {
    /// The timestamp type of the batch a record came from, as the formats print it.
    fn from(t: weir_protocol::record::TimestampType) -> Self {
        use weir_protocol::record::TimestampType as Wire;
        match t {
            Wire::NoTimestamp => Self::NotAvailable,
            Wire::CreateTime => Self::CreateTime,
            Wire::LogAppendTime => Self::LogAppendTime,
        }
    }
}

/// A borrowed view of one record: everything an output format needs.
///
/// `H` iterates over the headers as `(name, value)`; it is cloned when a format
/// needs to look at the headers twice, so it should be a cheap iterator over a view.
#[derive(Debug, Clone)]
pub struct RecordView<'a, H> {
    /// Topic name.
    pub topic: &'a str,
    /// Partition index.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// How the timestamp was set.
    pub timestamp_type: TimestampType,
    /// Milliseconds since the Unix epoch (ignored when not available).
    pub timestamp: i64,
    /// The broker the record was fetched from (-1 when unknown).
    pub broker: i32,
    /// The key, `None` when null.
    pub key: Option<&'a [u8]>,
    /// The value, `None` when null (a tombstone).
    pub value: Option<&'a [u8]>,
    /// The headers.
    pub headers: H,
}

/// Headers iterator type for records without headers.
pub type NoHeaders<'a> = std::iter::Empty<(&'a [u8], Option<&'a [u8]>)>;

/// One piece of a compiled `-f` format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// Literal bytes (escapes already resolved).
    Literal(Vec<u8>),
    /// `%t`
    Topic,
    /// `%p`
    Partition,
    /// `%o`
    Offset,
    /// `%k`
    Key,
    /// `%K`
    KeyLen,
    /// `%s`
    Value,
    /// `%S`
    ValueLen,
    /// `%R`
    ValueLenBinary,
    /// `%T`
    Timestamp,
    /// `%h`
    Headers,
}

/// A `-f` format string that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// `%` followed by a character that is no token.
    UnknownToken(char),
    /// The format ends with a lone `%`.
    DanglingPercent,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::UnknownToken(c) => write!(
                f,
                "unsupported format token %{c} in -f; use %t %p %o %k %K %s %S %R %T %h or %% for a percent sign"
            ),
            FormatError::DanglingPercent => {
                f.write_str("the -f format ends with a lone %; write %% for a percent sign")
            }
        }
    }
}

impl std::error::Error for FormatError {}

/// Compiles a kcat `-f` format string.
pub fn compile(format: &str) -> Result<Vec<Token>, FormatError> {
    let mut tokens = Vec::new();
    let mut literal = Vec::new();
    let bytes = format.as_bytes();
    let mut i = 0;
    let flush = |literal: &mut Vec<u8>, tokens: &mut Vec<Token>| {
        if !literal.is_empty() {
            tokens.push(Token::Literal(std::mem::take(literal)));
        }
    };
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let Some(&c) = bytes.get(i + 1) else {
                    return Err(FormatError::DanglingPercent);
                };
                i += 2;
                let token = match c {
                    b'%' => {
                        literal.push(b'%');
                        continue;
                    }
                    b't' => Token::Topic,
                    b'p' => Token::Partition,
                    b'o' => Token::Offset,
                    b'k' => Token::Key,
                    b'K' => Token::KeyLen,
                    b's' => Token::Value,
                    b'S' => Token::ValueLen,
                    b'R' => Token::ValueLenBinary,
                    b'T' => Token::Timestamp,
                    b'h' => Token::Headers,
                    _ => {
                        let ch = format[i - 1..].chars().next().unwrap_or('?');
                        return Err(FormatError::UnknownToken(ch));
                    }
                };
                flush(&mut literal, &mut tokens);
                tokens.push(token);
            }
            b'\\' if i + 1 < bytes.len() => {
                i += 1;
                i += unescape_one(&bytes[i..], &mut literal);
            }
            b => {
                literal.push(b);
                i += 1;
            }
        }
    }
    flush(&mut literal, &mut tokens);
    Ok(tokens)
}

/// Resolves the escape starting at `rest[0]` (the byte after the backslash) into
/// `out`; returns how many bytes of `rest` it used (at least one).
fn unescape_one(rest: &[u8], out: &mut Vec<u8>) -> usize {
    let digits = |s: &[u8], radix: u32| {
        s.iter()
            .take_while(|b| (**b as char).is_digit(radix))
            .count()
    };
    let number = |s: &[u8], radix: u32| {
        // Wrapping like C's `(char)strtoul(...)`: keep the low byte.
        s.iter().fold(0u32, |acc, b| {
            acc.wrapping_mul(radix)
                .wrapping_add((*b as char).to_digit(radix).unwrap_or(0))
        }) as u8
    };
    match rest[0] {
        b'n' => out.push(b'\n'),
        b't' => out.push(b'\t'),
        b'r' => out.push(b'\r'),
        b'x' => {
            let n = digits(&rest[1..], 16);
            if n == 0 {
                out.push(b'x');
                return 1;
            }
            out.push(number(&rest[1..=n], 16));
            return 1 + n;
        }
        b'0'..=b'9' => {
            let radix = if rest[0] == b'0' { 8 } else { 10 };
            let n = digits(rest, radix).max(1);
            out.push(number(&rest[..n], radix));
            return n;
        }
        other => out.push(other),
    }
    1
}

/// Which of the three output styles a [`Formatter`] uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Style {
    /// Value, then the message delimiter; with a key delimiter: key, delimiter,
    /// value, message delimiter.
    ValuePerLine {
        /// `-K DELIM`, if given.
        key_delimiter: Option<Vec<u8>>,
        /// `-D DELIM` (default a newline).
        delimiter: Vec<u8>,
    },
    /// A compiled `-f` format.
    Format(Vec<Token>),
    /// `-J`.
    Json,
}

/// Formats records into a reusable buffer.
#[derive(Debug, Clone)]
pub struct Formatter {
    style: Style,
    buf: Vec<u8>,
}

impl Formatter {
    /// A formatter of the given style.
    pub fn new(style: Style) -> Self {
        Formatter {
            style,
            buf: Vec::with_capacity(4096),
        }
    }

    /// A formatter for a kcat `-f` string.
    pub fn from_format(format: &str) -> Result<Self, FormatError> {
        Ok(Self::new(Style::Format(compile(format)?)))
    }

    /// The style in use.
    pub fn style(&self) -> &Style {
        &self.style
    }

    /// Formats `record` and returns the bytes, valid until the next call.
    pub fn format<'a, H>(&mut self, record: &RecordView<'a, H>) -> &[u8]
    where
        H: Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + Clone,
    {
        self.buf.clear();
        let buf = &mut self.buf;
        match &self.style {
            Style::ValuePerLine {
                key_delimiter,
                delimiter,
            } => {
                if let Some(d) = key_delimiter {
                    buf.extend_from_slice(record.key.unwrap_or_default());
                    buf.extend_from_slice(d);
                }
                buf.extend_from_slice(record.value.unwrap_or_default());
                buf.extend_from_slice(delimiter);
            }
            Style::Format(tokens) => {
                for t in tokens {
                    write_token(buf, t, record);
                }
            }
            Style::Json => write_json(buf, record),
        }
        &self.buf
    }

    /// Formats `record` and writes it to `out`.
    pub fn write<'a, H, W>(&mut self, record: &RecordView<'a, H>, out: &mut W) -> io::Result<()>
    where
        H: Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + Clone,
        W: Write + ?Sized,
    {
        let bytes = self.format(record);
        out.write_all(bytes)
    }
}

fn write_int(buf: &mut Vec<u8>, n: i64) {
    // Two digits at a time, right to left, from a table of "00".."99" into a small
    // stack buffer (no formatting machinery): a 13-digit timestamp takes 7 steps.
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    let mut v = n.unsigned_abs();
    while v >= 100 {
        let d = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        tmp[i..i + 2].copy_from_slice(&PAIRS[d..d + 2]);
    }
    if v >= 10 {
        let d = v as usize * 2;
        i -= 2;
        tmp[i..i + 2].copy_from_slice(&PAIRS[d..d + 2]);
    } else {
        i -= 1;
        tmp[i] = b'0' + v as u8;
    }
    if n < 0 {
        buf.push(b'-');
    }
    buf.extend_from_slice(&tmp[i..]);
}

fn write_token<'a, H>(buf: &mut Vec<u8>, token: &Token, r: &RecordView<'a, H>)
where
    H: Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + Clone,
{
    let len = |b: Option<&[u8]>| b.map_or(-1, |b| b.len() as i64);
    match token {
        Token::Literal(l) => buf.extend_from_slice(l),
        Token::Topic => buf.extend_from_slice(r.topic.as_bytes()),
        Token::Partition => write_int(buf, i64::from(r.partition)),
        Token::Offset => write_int(buf, r.offset),
        Token::Key => buf.extend_from_slice(r.key.unwrap_or_default()),
        Token::KeyLen => write_int(buf, len(r.key)),
        Token::Value => buf.extend_from_slice(r.value.unwrap_or_default()),
        Token::ValueLen => write_int(buf, len(r.value)),
        Token::ValueLenBinary => buf.extend_from_slice(&(len(r.value) as i32).to_be_bytes()),
        Token::Timestamp => write_int(
            buf,
            if r.timestamp_type == TimestampType::NotAvailable {
                -1
            } else {
                r.timestamp
            },
        ),
        Token::Headers => {
            for (i, (name, value)) in r.headers.clone().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                buf.extend_from_slice(name);
                buf.push(b'=');
                buf.extend_from_slice(value.unwrap_or_default());
            }
        }
    }
}

/// Appends `s` as a JSON string, escaped as kcat's JSON library escapes it.
pub fn write_json_string(buf: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    // Bytes that need an escape: control bytes, `"` and `\`.
    const fn escape_table() -> [bool; 256] {
        let mut t = [false; 256];
        let mut i = 0;
        while i < 0x20 {
            t[i] = true;
            i += 1;
        }
        t[b'"' as usize] = true;
        t[b'\\' as usize] = true;
        t
    }
    static NEEDS_ESCAPE: [bool; 256] = escape_table();
    buf.push(b'"');
    let mut rest = s;
    while let Some(i) = find_escape(rest, &NEEDS_ESCAPE) {
        buf.extend_from_slice(&rest[..i]);
        let b = rest[i];
        match b {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            0x08 => buf.extend_from_slice(b"\\b"),
            0x0c => buf.extend_from_slice(b"\\f"),
            _ => buf.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
        }
        rest = &rest[i + 1..];
    }
    buf.extend_from_slice(rest);
    buf.push(b'"');
}

/// The index of the first byte of `s` that JSON must escape (a control byte, `"` or
/// `\\`). Eight bytes at a time: a word with none of them is skipped with a few
/// arithmetic operations (the classic "has a zero byte" test applied to the word, to
/// the word xor `"` and to the word xor `\\`, and a "has a byte below 0x20" test);
/// only a flagged word is looked at byte by byte.
fn find_escape(s: &[u8], table: &[bool; 256]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Whether some byte of `x` is a control byte, `"` or `\\`. Exact for "some byte
    // is below 0x20" (0x20 <= 0x80) and for "some byte is zero" in the other two, so
    // no clean word is flagged and no dirty one missed.
    let flagged = |x: u64| {
        let quote = x ^ (ONES * u64::from(b'"'));
        let backslash = x ^ (ONES * u64::from(b'\\'));
        ((x.wrapping_sub(ONES * 0x20) & !x)
            | (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash))
            & HIGH
    };
    let word = |w: &[u8]| {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        u64::from_le_bytes(b)
    };
    let mut at = 0;
    let mut pairs = s.chunks_exact(16);
    for p in &mut pairs {
        // Two words per step: independent arithmetic the CPU overlaps.
        if flagged(word(&p[..8])) | flagged(word(&p[8..])) != 0 {
            if let Some(i) = p.iter().position(|&c| table[usize::from(c)]) {
                return Some(at + i);
            }
        }
        at += 16;
    }
    let mut rest = pairs.remainder();
    if rest.len() >= 8 {
        if flagged(word(&rest[..8])) != 0 {
            if let Some(i) = rest[..8].iter().position(|&c| table[usize::from(c)]) {
                return Some(at + i);
            }
        }
        rest = &rest[8..];
        at += 8;
    }
    rest.iter()
        .position(|&c| table[usize::from(c)])
        .map(|i| at + i)
}

fn write_json_opt(buf: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => write_json_string(buf, s),
        None => buf.extend_from_slice(b"null"),
    }
}

fn write_json<'a, H>(buf: &mut Vec<u8>, r: &RecordView<'a, H>)
where
    H: Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + Clone,
{
    // One reservation for the whole line (escapes may add more), so the pushes below
    // rarely grow the buffer.
    buf.reserve(
        160 + r.topic.len() + r.key.map_or(0, <[u8]>::len) + r.value.map_or(0, <[u8]>::len),
    );
    buf.extend_from_slice(b"{\"topic\":");
    if r.topic
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        // Kafka's topic names ([a-zA-Z0-9._-]) never need an escape.
        buf.push(b'"');
        buf.extend_from_slice(r.topic.as_bytes());
        buf.push(b'"');
    } else {
        write_json_string(buf, r.topic.as_bytes());
    }
    buf.extend_from_slice(b",\"partition\":");
    write_int(buf, i64::from(r.partition));
    buf.extend_from_slice(b",\"offset\":");
    write_int(buf, r.offset);
    let tstype: Option<&[u8]> = match r.timestamp_type {
        TimestampType::NotAvailable => None,
        TimestampType::CreateTime => Some(b",\"tstype\":\"create\",\"ts\":"),
        TimestampType::LogAppendTime => Some(b",\"tstype\":\"logappend\",\"ts\":"),
    };
    if let Some(t) = tstype {
        buf.extend_from_slice(t);
        write_int(buf, r.timestamp);
    }
    buf.extend_from_slice(b",\"broker\":");
    write_int(buf, i64::from(r.broker));
    let mut headers = r.headers.clone().peekable();
    if headers.peek().is_some() {
        buf.extend_from_slice(b",\"headers\":[");
        for (i, (name, value)) in headers.enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            write_json_string(buf, name);
            buf.push(b',');
            write_json_opt(buf, value);
        }
        buf.push(b']');
    }
    buf.extend_from_slice(b",\"key\":");
    write_json_opt(buf, r.key);
    buf.extend_from_slice(b",\"payload\":");
    write_json_opt(buf, r.value);
    buf.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    type Hdrs<'a> = std::iter::Copied<std::slice::Iter<'a, (&'a [u8], Option<&'a [u8]>)>>;

    fn rec<'a>(hdrs: &'a [(&'a [u8], Option<&'a [u8]>)]) -> RecordView<'a, Hdrs<'a>> {
        RecordView {
            topic: "logs",
            partition: 3,
            offset: 42,
            timestamp_type: TimestampType::CreateTime,
            timestamp: 1_700_000_000_123,
            broker: 1,
            key: Some(b"k1"),
            value: Some(b"hello"),
            headers: hdrs.iter().copied(),
        }
    }

    fn fmt(style: &str, r: &RecordView<'_, Hdrs<'_>>) -> Vec<u8> {
        Formatter::from_format(style).unwrap().format(r).to_vec()
    }

    #[test]
    fn value_per_line_and_key_delimiter() {
        let r = rec(&[]);
        let mut f = Formatter::new(Style::ValuePerLine {
            key_delimiter: None,
            delimiter: b"\n".to_vec(),
        });
        assert_eq!(f.format(&r), b"hello\n");
        let mut f = Formatter::new(Style::ValuePerLine {
            key_delimiter: Some(b"::".to_vec()),
            delimiter: b"\n".to_vec(),
        });
        assert_eq!(f.format(&r), b"k1::hello\n");
        // -D: kcat's message delimiter, any bytes (here none at all, then NUL).
        let mut f = Formatter::new(Style::ValuePerLine {
            key_delimiter: None,
            delimiter: Vec::new(),
        });
        assert_eq!(f.format(&r), b"hello");
        let mut f = Formatter::new(Style::ValuePerLine {
            key_delimiter: None,
            delimiter: vec![0],
        });
        assert_eq!(f.format(&r), b"hello\0");
        let mut f = Formatter::new(Style::ValuePerLine {
            key_delimiter: Some(b"::".to_vec()),
            delimiter: b"\n".to_vec(),
        });
        let mut r2 = rec(&[]);
        r2.key = None;
        r2.value = None;
        assert_eq!(f.format(&r2), b"::\n");
    }

    #[test]
    fn kcat_tokens() {
        let h: &[(&[u8], Option<&[u8]>)] = &[(b"a", Some(b"1")), (b"b", None)];
        let r = rec(h);
        assert_eq!(
            fmt("%t/%p@%o k=%k(%K) v=%s(%S) ts=%T h=%h 100%%\\n", &r),
            b"logs/3@42 k=k1(2) v=hello(5) ts=1700000000123 h=a=1,b= 100%\n"
        );
        assert_eq!(fmt("%R%s", &r), b"\x00\x00\x00\x05hello");
        let mut n = rec(&[]);
        n.key = None;
        n.value = None;
        n.timestamp_type = TimestampType::NotAvailable;
        assert_eq!(fmt("[%k|%K|%s|%S|%T|%h]", &n), b"[|-1||-1|-1|]");
        assert_eq!(fmt("%R", &n), b"\xff\xff\xff\xff");
    }

    #[test]
    fn escapes() {
        assert_eq!(
            compile("a\\tb\\rc\\x41\\65\\0101\\q\\").unwrap(),
            vec![Token::Literal(b"a\tb\rcAAAq\\".to_vec())]
        );
        assert_eq!(
            compile("\\xzz").unwrap(),
            vec![Token::Literal(b"xzz".to_vec())]
        );
    }

    #[test]
    fn format_errors() {
        assert_eq!(
            compile("%s %q").unwrap_err(),
            FormatError::UnknownToken('q')
        );
        assert_eq!(compile("%s %").unwrap_err(), FormatError::DanglingPercent);
        assert!(
            FormatError::UnknownToken('q')
                .to_string()
                .starts_with("unsupported format token %q in -f")
        );
        assert_eq!(compile("%é").unwrap_err(), FormatError::UnknownToken('é'));
    }

    #[test]
    fn json_envelope_matches_kcat() {
        let h: &[(&[u8], Option<&[u8]>)] = &[(b"trace", Some(b"x\"y")), (b"n", None)];
        let r = rec(h);
        let mut f = Formatter::new(Style::Json);
        let out = f.format(&r).to_vec();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "{\"topic\":\"logs\",\"partition\":3,\"offset\":42,\"tstype\":\"create\",\"ts\":1700000000123,\"broker\":1,\"headers\":[\"trace\",\"x\\\"y\",\"n\",null],\"key\":\"k1\",\"payload\":\"hello\"}\n"
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["headers"][1], "x\"y");

        let mut r = rec(&[]);
        r.key = None;
        r.value = None;
        r.timestamp_type = TimestampType::NotAvailable;
        r.broker = -1;
        assert_eq!(
            std::str::from_utf8(f.format(&r)).unwrap(),
            "{\"topic\":\"logs\",\"partition\":3,\"offset\":42,\"broker\":-1,\"key\":null,\"payload\":null}\n"
        );
        r.timestamp_type = TimestampType::LogAppendTime;
        let v: serde_json::Value = serde_json::from_slice(f.format(&r)).unwrap();
        assert_eq!(v["tstype"], "logappend");
    }

    #[test]
    fn integers() {
        for n in [
            0,
            1,
            -1,
            9,
            10,
            42,
            99,
            100,
            101,
            999,
            1000,
            -4200,
            1_700_000_000_123,
            i64::from(i32::MIN),
            i64::MAX,
            i64::MIN,
        ] {
            let mut b = Vec::new();
            write_int(&mut b, n);
            assert_eq!(b, n.to_string().into_bytes());
        }
    }

    #[test]
    fn json_string_escaping() {
        let mut b = Vec::new();
        write_json_string(&mut b, b"a\"\\\n\r\t\x08\x0c\x01\x1f/\xc3\xa9z");
        assert_eq!(b, b"\"a\\\"\\\\\\n\\r\\t\\b\\f\\u0001\\u001F/\xc3\xa9z\"");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v, "a\"\\\n\r\t\u{8}\u{c}\u{1}\u{1f}/éz");
        // Any UTF-8 value survives the round trip through a JSON parser.
        let all: String = (0u32..0x800).filter_map(char::from_u32).collect();
        b.clear();
        write_json_string(&mut b, all.as_bytes());
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v, all.as_str());
    }

    #[test]
    fn buffer_is_reused() {
        let r = rec(&[]);
        let mut f = Formatter::new(Style::Json);
        f.format(&r);
        let cap = f.buf.capacity();
        let ptr = f.buf.as_ptr();
        for _ in 0..100 {
            f.format(&r);
        }
        assert_eq!((f.buf.capacity(), f.buf.as_ptr()), (cap, ptr));
        let mut out = Vec::new();
        f.write(&r, &mut out).unwrap();
        assert!(out.ends_with(b"}\n"));
    }

    #[test]
    fn the_word_scan_finds_exactly_the_bytes_that_need_escaping() {
        let table = {
            let mut t = [false; 256];
            for (b, e) in t.iter_mut().enumerate() {
                *e = b < 0x20 || b == usize::from(b'"') || b == usize::from(b'\\');
            }
            t
        };
        // Every byte value at every position of words and tails, among clean
        // neighbours of every kind (high bytes included: the "below 0x20" test must
        // not fire on them).
        for fill in [b'a', 0x7f, 0x80, 0xff, b' ', b'!', b'#', b']'] {
            for len in [1usize, 7, 8, 9, 15, 16, 17, 24, 31, 40] {
                for pos in 0..len {
                    for b in 0..=255u8 {
                        let mut v = vec![fill; len];
                        v[pos] = b;
                        let want = v.iter().position(|&c| table[usize::from(c)]);
                        assert_eq!(find_escape(&v, &table), want, "{v:?}");
                    }
                }
            }
        }
    }

    /// Measurement, not a timed test: formatting cost per record.
    /// `cargo test -p weir --release --lib format::tests::measure -- --ignored --nocapture`;
    /// instructions per record: `WEIR_MEASURE=-J valgrind --tool=callgrind <test binary>
    /// format::tests::measure --ignored` (2,000,000 records).
    #[test]
    #[ignore]
    fn measure() {
        let value = vec![b'v'; 100];
        let h: &[(&[u8], Option<&[u8]>)] = &[(b"trace-id", Some(b"0123456789abcdef"))];
        let n = 2_000_000u64;
        for (name, style) in [
            (
                "value per line",
                Style::ValuePerLine {
                    key_delimiter: None,
                    delimiter: b"\n".to_vec(),
                },
            ),
            (
                "-f '%t %p %o %k %s %h\\n'",
                Style::Format(compile("%t %p %o %k %s %h\\n").unwrap()),
            ),
            ("-J", Style::Json),
        ] {
            // WEIR_MEASURE=-J (say) measures one style alone, for instruction counts
            // under `valgrind --tool=callgrind`.
            if std::env::var("WEIR_MEASURE").is_ok_and(|only| only != name) {
                continue;
            }
            let mut f = Formatter::new(style);
            let mut total = 0usize;
            let start = std::time::Instant::now();
            for o in 0..n {
                let mut r = rec(h);
                r.offset = o as i64;
                r.value = Some(&value);
                total += f.format(&r).len();
            }
            let el = start.elapsed();
            println!(
                "{name:<28} {:>6.1} ns/record  {:>7.0} MB/s of output",
                el.as_nanos() as f64 / n as f64,
                total as f64 / el.as_secs_f64() / 1e6
            );
        }
    }

    #[test]
    fn batch_timestamp_types_map_to_the_output_formats() {
        use weir_protocol::record::TimestampType as Wire;
        assert_eq!(
            TimestampType::from(Wire::CreateTime),
            TimestampType::CreateTime
        );
        assert_eq!(
            TimestampType::from(Wire::LogAppendTime),
            TimestampType::LogAppendTime
        );
        assert_eq!(
            TimestampType::from(Wire::NoTimestamp),
            TimestampType::NotAvailable
        );
    }
}
