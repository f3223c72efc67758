//! `sasl.jaas.config`, as the Java client reads it: one login module, a control flag,
//! `key=value` options (values bare or in double quotes, `\` escaping inside quotes),
//! and a closing `;`. For example:
//!
//! ```text
//! org.apache.kafka.common.security.scram.ScramLoginModule required username="weir" password="s3cret";
//! ```
//!
//! Error messages say where the text is wrong, never what it holds (it holds a
//! password).

use std::collections::BTreeMap;

/// A parsed login configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct Jaas {
    /// The login module's class name.
    pub module: String,
    /// The control flag (`required`, `optional`, ...).
    pub flag: String,
    /// The options, by name.
    pub options: BTreeMap<String, String>,
}

impl std::fmt::Debug for Jaas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jaas")
            .field("module", &self.module)
            .field("flag", &self.flag)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Java's PLAIN login module.
pub const PLAIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
/// Java's SCRAM login module.
pub const SCRAM_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";
/// Java's OAUTHBEARER login module (its `unsecuredLogin*` options make an unsecured
/// token; with `sasl.oauthbearer.token.endpoint.url` it is only the module's name).
pub const OAUTH_MODULE: &str =
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Equals,
    End,
}

fn tokens(text: &str) -> Result<Vec<Token>, &'static str> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '=' => {
                chars.next();
                out.push(Token::Equals);
            }
            ';' => {
                chars.next();
                out.push(Token::End);
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err("a quoted value is not closed"),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e) => s.push(e),
                            None => return Err("a quoted value ends in a backslash"),
                        },
                        Some(ch) => s.push(ch),
                    }
                }
                out.push(Token::Quoted(s));
            }
            _ => {
                let mut s = String::new();
                while let Some(&ch) = chars.peek() {
                    if ch.is_whitespace() || ch == '=' || ch == ';' || ch == '"' {
                        break;
                    }
                    s.push(ch);
                    chars.next();
                }
                out.push(Token::Word(s));
            }
        }
    }
    Ok(out)
}

/// Parses one login module entry.
pub fn parse(text: &str) -> Result<Jaas, &'static str> {
    let mut t = tokens(text)?.into_iter();
    let Some(Token::Word(module)) = t.next() else {
        return Err("it must start with a login module class name");
    };
    let Some(Token::Word(flag)) = t.next() else {
        return Err("the login module must be followed by a flag such as `required`");
    };
    let flag = flag.to_ascii_lowercase();
    if !["required", "requisite", "sufficient", "optional"].contains(&flag.as_str()) {
        return Err("the flag must be required, requisite, sufficient or optional");
    }
    let mut options = BTreeMap::new();
    loop {
        match t.next() {
            Some(Token::End) => break,
            Some(Token::Word(key)) => {
                if t.next() != Some(Token::Equals) {
                    return Err("an option must be key=value");
                }
                let value = match t.next() {
                    Some(Token::Word(v) | Token::Quoted(v)) => v,
                    _ => return Err("an option has no value"),
                };
                options.insert(key, value);
            }
            None => return Err("the entry must end with `;`"),
            Some(_) => return Err("an option must be key=value"),
        }
    }
    if t.next().is_some() {
        return Err("sasl.jaas.config holds one login module; there is text after its `;`");
    }
    Ok(Jaas {
        module,
        flag,
        options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_style_entries_parse() {
        let j = parse(
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="weir" password="se\"cr=et;";"#,
        )
        .unwrap();
        assert_eq!(j.module, SCRAM_MODULE);
        assert_eq!(j.flag, "required");
        assert_eq!(j.options["username"], "weir");
        assert_eq!(j.options["password"], "se\"cr=et;");
        let j = parse("org.apache.kafka.common.security.plain.PlainLoginModule  REQUIRED username=u password=p ;").unwrap();
        assert_eq!(
            (j.flag.as_str(), j.options["password"].as_str()),
            ("required", "p")
        );
        assert!(!format!("{j:?}").contains("\"p\""), "{j:?}");
    }

    #[test]
    fn malformed_entries_say_where_not_what() {
        for (text, want) in [
            ("", "it must start with a login module class name"),
            (
                "Module",
                "the login module must be followed by a flag such as `required`",
            ),
            (
                "Module always;",
                "the flag must be required, requisite, sufficient or optional",
            ),
            (
                "Module required password=\"secret",
                "a quoted value is not closed",
            ),
            ("Module required password", "an option must be key=value"),
            ("Module required password=;", "an option has no value"),
            (
                "Module required password=secret",
                "the entry must end with `;`",
            ),
            (
                "Module required a=b; Other required;",
                "sasl.jaas.config holds one login module; there is text after its `;`",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e, want, "{text:?}");
            assert!(!e.contains("secret"));
        }
    }
}
